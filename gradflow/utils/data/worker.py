"""What runs inside a DataLoader worker process (torch.utils.data._utils.worker): seeding, the
`get_worker_info` record, the fetch loop, and the messages it exchanges with the main process.

A worker takes `(task, indices)` from its own index queue, builds the batch and puts
`(task, pickled batch)` on the shared result queue. The batch is pickled in the worker, so a
batch (or an exception) that cannot be pickled is reported as that worker's error instead of
being dropped by the queue's feeder thread, which would leave the main process waiting.
Tensors cross the process boundary as host NumPy arrays (the reducer registered below).
"""
from __future__ import annotations

import os
import pickle
import queue
import random
import sys
import traceback
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable, Iterator

import numpy as np

from ...backend import CPU, move_array
from ...tensor import Tensor

# How often a waiting worker checks that its parent is alive, and a waiting main process that
# its workers are (seconds). torch polls every 5 s; a dead worker is reported within this.
STATUS_CHECK_INTERVAL = 0.2


class WorkerInfo:
    """Read-only facts about the current worker (torch.utils.data.WorkerInfo): `id`,
    `num_workers`, `seed` (what gradflow's and Python's generators were seeded with) and
    `dataset` (this process's copy)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any
    _keys: tuple

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_keys", tuple(kwargs))

    def __setattr__(self, key: str, value: Any) -> None:
        raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._keys)
        return f"{type(self).__name__}({items})"


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """This worker's `WorkerInfo` inside a DataLoader worker process, None in the main process
    (torch.utils.data.get_worker_info). An IterableDataset shards its stream with it."""
    return _worker_info


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process with its traceback text
    (torch's ExceptionWrapper). Exception types that cannot be pickled (local classes) travel
    as their name and are re-raised as RuntimeError."""

    def __init__(self, exc_info: tuple, where: str) -> None:
        exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where
        try:
            pickle.dumps(exc_type)
            self.exc_type: type | None = exc_type
        except Exception:  # a local or otherwise unpicklable exception class
            self.exc_type = None
        self.type_name = exc_type.__name__

    def reraise(self) -> None:
        """Raise 'Caught ValueError in DataLoader worker process 0.\\nOriginal Traceback ...' as
        the original type where it can be built from one message, else as RuntimeError."""
        msg = f"Caught {self.type_name} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            raise KeyError(_KeyErrorMessage(msg))
        if self.exc_type is None:
            raise RuntimeError(msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exception


class _KeyErrorMessage(str):
    """KeyError shows repr() of its argument; this string shows itself, newlines and all."""

    def __repr__(self) -> str:
        return str(self)


class IterableStopped:
    """Sent by a worker whose IterableDataset copy is exhausted: it gets no more tasks."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id


class ResumeIteration:
    """Sent to persistent workers at the start of a new epoch; each echoes it back, so the main
    process knows that every result it reads afterwards belongs to the new epoch."""


# -- tensors across processes -----------------------------------------------------------------
def _rebuild_tensor(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor._wrap(array, requires_grad)


def _reduce_tensor(t: Tensor) -> tuple:
    if t.requires_grad and t.grad_fn is not None:
        raise RuntimeError("Cowardly refusing to serialize non-leaf tensor which requires_grad, "
                           "since autograd does not support crossing process boundaries. If you "
                           "just want to transfer the data, call detach() on the tensor before "
                           "serializing (e.g., putting it on the queue).")
    return _rebuild_tensor, (move_array(t.array, CPU), t.requires_grad)


# NOTE: multiprocessing's pickler looks reducers up by exact type, so this covers Tensor and
# leaves subclasses (Parameter) to their default pickling; ordinary pickle is unaffected.
ForkingPickler.register(Tensor, _reduce_tensor)


# -- seeding ----------------------------------------------------------------------------------
def numpy_seed_state(base_seed: int, worker_id: int) -> list:
    """Four 32-bit words seeding NumPy's legacy global generator in worker `worker_id`, by
    torch's `_generate_state` (a SeedSequence-style hash of the ids), so `np.random` draws
    neither repeat across workers nor mirror Python's `random`, seeded with base_seed + id."""
    mask = 0xFFFFFFFF
    mult_a, mult_b = 0x931E8875, 0x58F38DED
    hash_a = [0x43B0D7E5]

    def hashed(value: int) -> int:
        value = (value ^ hash_a[0]) & mask
        hash_a[0] = (hash_a[0] * mult_a) & mask
        value = (value * hash_a[0]) & mask
        return (value ^ (value >> 16)) & mask

    def mix(x: int, y: int) -> int:
        result = ((0xCA01F9DD * x) - (0x4973F715 * y)) & mask
        return (result ^ (result >> 16)) & mask

    pool = [hashed(v) for v in (worker_id, base_seed & mask, base_seed >> 32, 0)]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hashed(pool[src]))
    hash_b, state = 0x8B51F9DD, []
    for value in pool:
        value = (value ^ hash_b) & mask
        hash_b = (hash_b * mult_b) & mask
        value = (value * hash_b) & mask
        state.append((value ^ (value >> 16)) & mask)
    return state


def _seed_worker(base_seed: int, worker_id: int) -> int:
    from ...random import manual_seed
    seed = base_seed + worker_id
    random.seed(seed)
    manual_seed(seed)
    np.random.seed(numpy_seed_state(base_seed, worker_id))
    return seed


# -- fetching ---------------------------------------------------------------------------------
def iterable_batches(dataset: Any, batch_size: int, drop_last: bool,
                     collate: Callable[[list], Any]) -> Iterator:
    """Batches of `batch_size` samples drawn from an IterableDataset's iterator; the last one
    short unless `drop_last`."""
    it = iter(dataset)
    while True:
        batch = []
        for sample in it:
            batch.append(sample)
            if len(batch) == batch_size:
                break
        if not batch or (drop_last and len(batch) < batch_size):
            return
        yield collate(batch)
        if len(batch) < batch_size:
            return


def worker_loop(iterable: bool, dataset: Any, index_queue: Any, result_queue: Any, done: Any,
                fetch: Callable[[list], Any] | None, batch_size: int, drop_last: bool,
                collate: Callable[[list], Any], base_seed: int, init_fn: Callable | None,
                worker_id: int, num_workers: int) -> None:
    """The body of worker process `worker_id` (torch's `_worker_loop`). It ends when told to,
    or when it is re-parented: its parent (the main process, or forkserver's server) died."""
    global _worker_info
    where = f"in DataLoader worker process {worker_id}"
    parent = os.getppid()
    try:
        seed = _seed_worker(base_seed, worker_id)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                  dataset=dataset)
        init_error = None
        batches: Iterator | None = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            if iterable:
                batches = iterable_batches(dataset, batch_size, drop_last, collate)
        except Exception:
            init_error = ExceptionWrapper(sys.exc_info(), where)
        ended = False
        while os.getppid() == parent:
            try:
                message = index_queue.get(timeout=STATUS_CHECK_INTERVAL)
            except queue.Empty:
                # NOTE: `done` alone also ends the loop: an iterator collected as part of a
                # reference cycle has its queues' finalizers run first, so the None it sends
                # on shutting down may never leave the main process
                if done.is_set():
                    break
                continue
            if message is None:  # the main process is shutting this worker down
                break
            if isinstance(message, ResumeIteration):
                result_queue.put((message, None))
                ended = False
                if iterable and init_error is None:
                    batches = iterable_batches(dataset, batch_size, drop_last, collate)
                continue
            if done.is_set() or ended:
                continue
            task, indices = message
            data: Any
            if init_error is not None:  # every task reports it: the worker cannot fetch
                data = init_error
            else:
                try:
                    if batches is not None:
                        data = next(batches)
                    else:
                        assert fetch is not None  # a map-style dataset's fetcher
                        data = fetch(indices)
                except StopIteration:
                    data, ended = IterableStopped(worker_id), True
                except Exception:
                    data = ExceptionWrapper(sys.exc_info(), where)
            try:
                blob = bytes(ForkingPickler.dumps(data, pickle.HIGHEST_PROTOCOL))
            except Exception:
                failure = ExceptionWrapper(sys.exc_info(), f"{where} (pickling its batch)")
                blob = bytes(ForkingPickler.dumps(failure))
            result_queue.put((task, blob))
            del data, blob, message
    except KeyboardInterrupt:  # the main process sees the Ctrl-C too
        pass
    if done.is_set():
        result_queue.cancel_join_thread()
        result_queue.close()
