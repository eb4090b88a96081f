"""The optimizers' side of a GPU step: hyperparameter tables, and what lets
`gradflow.cuda.graphs.compile_step` replay a captured optimizer step.

Tables. A fused update (gradflow/cuda/optim.py) reads its hyperparameters from `hp`, its
parameter's row of a float64 device table, not by value: one table per optimizer, GPU and
shape, one row per parameter stepped (the optimizer's `_scalars`: learning rate, bias
corrections, ...). `for_step` writes a step's rows with `upload`: on the current stream,
ahead of the launches that read them, and from pinned memory, so a step already queued keeps
its values and the host never waits. Rows equal to those last written are not copied again.

What a captured step bakes in: its launches' arguments, i.e. the addresses of each parameter,
its gradient, the state arrays its update writes (`_state_arrays`) and its table row, and the
flags passed by value (`_flags`: nesterov, maximize, amsgrad, ...). `launch_signature` lists
the parameter and state addresses and the flags; compile_step replays a graph only while it
is unchanged and captures the step again otherwise. (The gradients are the graph's own, and
the row stays put: a table lives as long as its optimizer, and a replay steps the same
parameters, so it finds the same table.) The rows' values are not baked in: writes asked for
during capture wait (`graphs.note_upload`) until it ends, then go on the capture stream
before the first launch. A reference (NumPy/CuPy) update would bake this step's values into
its kernels as scalars, so `check_reference_update` refuses it during capture.

What each replay refreshes, in this order on the capture stream, the host never waiting: the
graph's inputs; for each optimizer that stepped during capture (`graphs.note_optimizer`),
`replay_host_step` advances the step counts and versions of the same parameters on the host
and writes their recomputed rows (a scheduler's learning rate takes effect); the random
generator's counter (graphs.py); then the graph launches.
"""
from __future__ import annotations

import collections
import weakref
from typing import Any

import numpy as np

from ..backend import array_module, cupy_module
from . import graphs, optim

# optimizer -> {(device key, shape): (device table, the rows last written to it)}
_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def for_step(opt: Any, todo: list) -> list:
    """The row `hp` of each (parameter, state, group) of `todo`: a view of `opt`'s table on
    the parameter's GPU, holding this step's hyperparameters in stream order, or None where
    no fused kernel runs (on the CPU). During a capture `opt` and the parameters are noted
    for the replays, and the rows are written once the capture ends."""
    if graphs.capturing():
        graphs.note_optimizer(opt, [p for p, _, _ in todo])
    keys = [_device_key(p.array) for p, _, _ in todo]
    fused_on = {key for key, (p, _, _) in zip(keys, todo) if optim.fusable(p.array)}
    if not fused_on:
        return [None] * len(todo)
    rows = np.array([opt._scalars(state, group) for _, state, group in todo], np.float64)
    tables = {key: _write(opt, key, rows) for key in fused_on}
    return [tables[key][i] if key in tables else None for i, key in enumerate(keys)]


def replay_host_step(opt: Any, stepped: list) -> None:
    """What `opt.step` does on the host, for a captured step about to be replayed: advance
    the step counts of the parameters it updates (`stepped`, as noted during capture) and
    write this step's rows to the table the graph reads."""
    for_step(opt, opt._begin_step(stepped))


def launch_signature(opt: Any, stepped: list) -> tuple:
    """Everything a captured step of `opt` baked into its launches besides the gradients:
    the arrays each update of `stepped` writes, and the flags passed by value. A replay is
    valid only while it is unchanged."""
    chosen = {id(p) for p in stepped}
    return tuple((_address(p.array), opt._flags(opt.state[p], group),
                  tuple(None if a is None else _address(a)
                        for a in opt._state_arrays(opt.state[p], group)))
                 for group in opt.param_groups for p in group["params"] if id(p) in chosen)


def check_reference_update(opt: Any, p: Any) -> None:
    """Called before an update of `p` takes the NumPy/CuPy reference path: refused during a
    capture, whose launches would bake this step's hyperparameters in."""
    if graphs.capturing():
        raise RuntimeError(f"{type(opt).__name__}: a parameter of shape {tuple(p.shape)} "
                           "cannot use the fused update (non-contiguous, or state of another "
                           "dtype), so its step cannot be captured in a CUDA graph")


def tables(opt: Any) -> dict:
    """`opt`'s device tables by (GPU id, None under the kernel emulator; shape)."""
    return {key: table for key, (table, _) in _tables.get(opt, {}).items()}


def _write(opt: Any, key: int | None, rows: np.ndarray) -> Any:
    """`opt`'s table for GPU `key` and the shape of `rows`, made on first use, with `rows`
    written to it (deferred during a capture; skipped when they are the rows last written,
    as in most steps of SGD)."""
    known = _tables.setdefault(opt, {})
    table, written = known.get((key, rows.shape), (None, None))
    if table is None:
        table = _new_table(key, rows.shape)
    if graphs.capturing():
        graphs.note_upload(table, rows)
    elif written is None or not np.array_equal(written, rows):
        upload(table, rows)
    known[(key, rows.shape)] = (table, rows)
    return table


_in_flight: dict = {}  # device id -> uploads still queued: (event, their pinned host block)


def upload(table: Any, rows: np.ndarray) -> None:
    """Write the host `rows` into the device `table` in order on the current stream.

    NOTE: the copy is made from pinned memory, so it is truly asynchronous: a copy from
    pageable memory makes the host wait for the stream. Each upload takes a fresh pinned
    block and keeps it until an event after its copy has passed, so no queued copy ever
    reads a block that a later upload is filling."""
    if array_module(table) is np:  # the kernel emulator runs on NumPy arrays
        table[...] = rows
        return
    cp = cupy_module()
    stream = cp.cuda.get_current_stream()
    pending = _in_flight.setdefault(table.device.id, collections.deque())
    while pending and pending[0][0].done:  # cudaEventQuery: asks, never waits
        pending.popleft()
    block = cp.cuda.alloc_pinned_memory(rows.nbytes)
    host = np.frombuffer(block, rows.dtype, rows.size).reshape(rows.shape)
    host[...] = rows
    table.set(host, stream=stream)
    event = cp.cuda.Event(disable_timing=True)
    event.record(stream)
    pending.append((event, block))


def _device_key(array: Any) -> int | None:
    """Which GPU's table a parameter's kernel reads (None for NumPy arrays, which the kernel
    emulator runs)."""
    return None if array_module(array) is np else array.device.id


def _new_table(key: int | None, shape: tuple) -> Any:
    if key is None:
        return np.empty(shape, np.float64)
    cp = cupy_module()
    with cp.cuda.Device(key):
        return cp.empty(shape, np.float64)


def _address(array: Any) -> int:
    return array.__array_interface__["data"][0] if array_module(array) is np else \
        array.data.ptr
