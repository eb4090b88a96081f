"""Whole training steps captured as CUDA graphs and replayed with one launch.

Small nets are bound by launch overhead: a LeNet step is a few hundred kernel launches of a
few microseconds each, each paid in Python. `compile_step(fn)` runs `fn` eagerly for a few
warm-up calls, then records one call into a CUDA graph (stream capture) and from then on
replays the graph instead of running Python:

    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    step = gf.compile_step(train_step)
    for x, y in loader:
        loss = step(x, y)

What changes between replays is handled outside the graph, in stream order before each
launch: the tensor arguments are copied into the graph's static inputs; every optimizer that
stepped during capture advances its step counts and uploads its current hyperparameters (a
scheduler's new learning rate takes effect; gradflow/cuda/step_tables.py has that protocol);
the GPU random generator's offset is written to the graph's counter and advanced, so dropout
draws fresh masks exactly where eager steps would. Allocations made during capture come from
a memory pool private to the graph, so no eager allocation can reuse memory the graph writes.

Rules for `fn` (as for any CUDA graph): it must not read GPU values on the host (`.item()`,
printing, `bool(t)`; capture fails with an error that says so); it must zero or drop the
gradients itself (`opt.zero_grad()`, at its start or end), since a replay cannot accumulate
into gradients from before the capture; and the parameters and optimizer state must not be
replaced by new arrays (in-place updates are fine). A different argument signature (shapes,
dtypes, non-tensor arguments) is captured separately. A changed optimizer flag or replaced
state array is detected and the step is captured again. On the CPU there is nothing to
capture and `fn` runs eagerly, so the same script runs everywhere.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from ..backend import cupy_module
from . import checks, memory, step_tables

_local = threading.local()


def capturing() -> bool:
    """True while this thread is capturing a step."""
    return getattr(_local, "session", None) is not None


def note_optimizer(optimizer: Any, stepped: list) -> None:
    """Called (by `step_tables.for_step`) for an optimizer stepping during capture, with the
    parameters it updates, so each replay can do that step's host side (step counts,
    hyperparameters)."""
    _local.session.optimizers[id(optimizer)] = (optimizer, stepped)


def note_upload(table: Any, rows: np.ndarray) -> None:
    """A hyperparameter upload asked for during capture (by `step_tables`); done on the
    capture stream once the capture ends."""
    _local.session.uploads.append((table, rows))


def rng_state() -> Any:
    """The graph's (seed, base offset) device pair that the random kernels read during this
    capture; each replay sets it to the generator's state."""
    return _local.session.rng_state


class _Capture:
    """What one capture records besides the graph itself; `rng_state` must be made (zeroed)
    before the capture stream waits on the current stream, so it is ready when captured work
    and the first replay read it."""

    def __init__(self, rng_state: Any) -> None:
        self.optimizers: dict = {}
        self.uploads: list = []
        self.rng_state = rng_state


class _Graph:
    """One captured call: the graph, its private pool, static inputs and outputs, and what
    each replay must refresh."""

    def __init__(self, graph: Any, pool: Any, inputs: list, outputs: Any, session: _Capture,
                 drawn: int, device: Any) -> None:
        self.graph, self.pool, self.inputs, self.outputs = graph, pool, inputs, outputs
        self.optimizers = list(session.optimizers.values())
        self.signatures = [step_tables.launch_signature(opt, stepped)
                           for opt, stepped in self.optimizers]
        self.rng_state, self.drawn, self.device = session.rng_state, drawn, device

    def still_valid(self) -> bool:
        return all(step_tables.launch_signature(opt, stepped) == sig
                   for (opt, stepped), sig in zip(self.optimizers, self.signatures))


class CompiledStep:
    """`fn` replayed as a CUDA graph after `warmup` eager calls per argument signature; see
    the module docstring for the rules `fn` must follow."""

    def __init__(self, fn: Callable, warmup: int = 2) -> None:
        if not callable(fn):
            raise TypeError(f"compile_step: expected a callable, got {type(fn).__name__}")
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 1:
            raise ValueError(f"compile_step: warmup must be an integer >= 1 (the optimizers "
                             f"create their state eagerly), got {warmup!r}")
        self.fn, self.warmup = fn, warmup
        self._graphs: dict = {}
        self._calls: dict = {}
        self._streams: dict = {}  # device id -> the stream this step captures and replays on

    def __call__(self, *args: Any) -> Any:
        from ..tensor import Tensor
        tensors = [a for a in args if isinstance(a, Tensor)]
        if not any(t.is_cuda for t in tensors):
            return self.fn(*args)
        key = _signature(args)
        graph = self._graphs.get(key)
        if graph is not None and not graph.still_valid():
            del self._graphs[key]
            self._calls[key] = 0
            graph = None
        if graph is not None:
            return self._replay(graph, args)
        self._calls[key] = self._calls.get(key, 0) + 1
        if self._calls[key] <= self.warmup:
            return self.fn(*args)
        graph = self._graphs[key] = self._capture(args)
        return self._launch(graph)

    def reset(self) -> None:
        """Forget every captured graph (the next calls warm up and capture again)."""
        self._graphs.clear()
        self._calls.clear()

    # -- capture and replay ---------------------------------------------------------------
    def _capture(self, args: tuple) -> _Graph:
        from ..random import cuda_generators
        from ..tensor import Tensor
        from . import blas
        cp = cupy_module()
        device = next(a.array.device for a in args if isinstance(a, Tensor) and a.is_cuda)
        for i, a in enumerate(args):
            if isinstance(a, Tensor) and a.requires_grad:
                raise ValueError(f"compile_step: argument {i} (shape {tuple(a.shape)}) requires "
                                 "grad; a captured step takes data, and reaches parameters "
                                 "through the model and optimizer")
        with device:
            blas.handle()  # cuBLAS's handle and workspace exist before capture,
            checks.prepare(device.id)  # and so does the word of the deferred checks
            static = [Tensor._wrap(a.array.copy()) if isinstance(a, Tensor) else a
                      for a in args]
            stream = self._capture_stream(device.id)
            session = _Capture(cp.zeros(2, np.uint64))
            stream.wait_event(cp.cuda.get_current_stream().record())
            pool = memory.private_pool(device.id)
            with stream, cp.cuda.using_allocator(pool.malloc):
                _local.session = session
                cuda_generators.begin_capture()
                stream.begin_capture()
                try:
                    outputs = self.fn(*static)
                except BaseException as err:
                    _abandon(stream)
                    raise _capture_error(err) from err
                finally:
                    _local.session = None
                    drawn = cuda_generators.end_capture().get(device.id, 0)
                try:
                    graph = stream.end_capture()
                except Exception as err:  # the capture was invalidated along the way
                    raise _capture_error(err) from err
            _check_outputs(outputs)
        with device, stream:
            for table, rows in session.uploads:
                step_tables.upload(table, rows)
        return _Graph(graph, pool, static, outputs, session, drawn, device)

    def _replay(self, graph: _Graph, args: tuple) -> Any:
        from ..tensor import Tensor
        cp = cupy_module()
        with graph.device:
            stream = self._capture_stream(graph.device.id)
            stream.wait_event(cp.cuda.get_current_stream().record())
            with stream:
                for static, a in zip(graph.inputs, args):
                    if isinstance(a, Tensor):
                        cp.copyto(static.array, a.array)
                for opt, stepped in graph.optimizers:
                    step_tables.replay_host_step(opt, stepped)
            return self._launch(graph)

    def _launch(self, graph: _Graph) -> Any:
        from ..random import cuda_generators
        cp = cupy_module()
        stream = self._capture_stream(graph.device.id)
        with graph.device:
            with stream:
                if graph.drawn:
                    seed, offset = cuda_generators.take(graph.device.id, graph.drawn)
                    graph.rng_state[:1].fill(np.uint64(seed))
                    graph.rng_state[1:].fill(np.uint64(offset))
                graph.graph.launch(stream)
                checks.replayed(graph.device.id)
                result = _detached_copies(graph.outputs)
            cp.cuda.get_current_stream().wait_event(stream.record())
        return result

    def _capture_stream(self, device_id: int) -> Any:
        """This step's stream on GPU `device_id` (a stream belongs to one device)."""
        if device_id not in self._streams:
            with cupy_module().cuda.Device(device_id):
                self._streams[device_id] = cupy_module().cuda.Stream(non_blocking=True)
        return self._streams[device_id]


def compile_step(fn: Callable, *, warmup: int = 2) -> CompiledStep:
    """Capture `fn` (a whole training step) as a CUDA graph after `warmup` eager calls and
    replay it from then on; on the CPU `fn` simply runs. See gradflow.cuda.graphs."""
    return CompiledStep(fn, warmup)


def _signature(args: tuple) -> tuple:
    from ..tensor import Tensor
    key: list[tuple] = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            key.append(("tensor", tuple(a.shape), str(a.dtype), str(a.device)))
            continue
        try:
            hash(a)
        except TypeError:
            raise TypeError(f"compile_step: argument {i} is a {type(a).__name__}, which "
                            "cannot key a captured graph; pass tensors, or hashable values "
                            "that select a graph") from None
        key.append(("value", a))
    return tuple(key)


def _check_outputs(outputs: Any) -> None:
    from ..tensor import Tensor
    if outputs is None or isinstance(outputs, Tensor):
        return
    if isinstance(outputs, (tuple, list)):
        for o in outputs:
            _check_outputs(o)
        return
    raise TypeError(f"compile_step: the step returned a {type(outputs).__name__}; a captured "
                    "step can return tensors (or tuples and lists of them) or None, whose "
                    "values each replay refreshes")


def _detached_copies(outputs: Any) -> Any:
    """Each replay overwrites the graph's outputs, so the caller gets copies to keep."""
    from ..tensor import Tensor
    if isinstance(outputs, Tensor):
        return Tensor._wrap(outputs.array.copy())
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_detached_copies(o) for o in outputs)
    return outputs


def _abandon(stream: Any) -> None:
    """End a failed capture so the stream is usable again (the partial graph is dropped)."""
    try:
        stream.end_capture()
    except Exception:  # an invalidated capture reports its error here too; already raising
        pass


# What CUDA or CuPy says when a capture is refused, and what it means for the step.
_HOST_READ = ("it read a GPU value on the host or synchronised (.item(), print(tensor), "
              "bool(tensor), float(tensor), .cpu(), .numpy(), gf.cuda.synchronize())")
_REFUSALS = (
    ("calling cuBLAS API during stream capture",
     "it called CuPy's cuBLAS wrappers (cupy.matmul, cupy.dot, cupy.linalg, ...), which refuse "
     "stream capture; use gradflow's ops (gf.matmul, @, F.linear), which call cuBLAS "
     "themselves"),
    ("StreamCaptureImplicit",
     "it used the legacy default stream (a synchronous CUDA call or a stream made without "
     "non_blocking=True)"),
    ("StreamCaptureUnsupported", _HOST_READ),
    ("operation not permitted when stream is capturing", _HOST_READ),
    ("StreamCaptureInvalidated",
     "an earlier operation of the step invalidated the capture (typically a host read or a "
     "synchronisation, which CUDA reports at the next call)"),
)


def _capture_error(err: BaseException) -> BaseException:
    """A refused capture said in terms of the step, naming what CUDA or CuPy refused."""
    text = f"{type(err).__name__}: {err}"
    for marker, meaning in _REFUSALS:
        if marker in text:
            return RuntimeError(f"compile_step: the step could not be captured as a CUDA graph: "
                                f"{meaning}. Refused: {text}")
    if "capture" in text.lower():
        return RuntimeError(f"compile_step: the step could not be captured as a CUDA graph: "
                            f"it did something a graph cannot record. Refused: {text}")
    return err
