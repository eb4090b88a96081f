"""DataLoader: batches a dataset through a sampler and a collate function, in the caller's
process (the next batches built ahead on a background thread) or in worker processes, and
optionally pins each batch or moves it to a device (torch.utils.data.DataLoader)."""
from __future__ import annotations

import collections.abc
import itertools
import multiprocessing
import pickle
import queue
import threading
import time
import warnings
from multiprocessing.context import BaseContext
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ... import dtypes
from ...backend import as_device, cuda_available, cupy_module, device, move_array, on_device
from ...creation import from_numpy, tensor
from ...random import Generator, cpu_rng
from ...tensor import Tensor
from . import worker
from .dataset import Dataset, IterableDataset, Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler


def _stack_tensors(batch: list) -> Tensor:
    first = batch[0]
    for i, t in enumerate(batch):
        if t.shape != first.shape or t.device != first.device:
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size and "
                               f"on one device, but got {tuple(first.shape)} on {first.device} at "
                               f"entry 0 and {tuple(t.shape)} on {t.device} at entry {i}")
    with on_device(first.device):
        return Tensor._wrap(first._xp.stack([t.array for t in batch]))


def _take_rows(t: Tensor, idx: np.ndarray) -> Tensor:
    """Rows `idx` (host indices) of a dataset tensor, gathered on its device."""
    rows = move_array(idx, t.device)
    with on_device(t.device):
        return Tensor._wrap(t.array[rows])


def default_collate(batch: list) -> Any:
    """Merge a list of samples into a batch (torch's default_collate).

    Tensors and NumPy arrays are stacked along a new first dimension; Python ints become int64,
    bools bool and floats the default float dtype (float32; torch uses float64); strings stay a
    list; tuples, lists and dicts are collated field by field (a tuple gives a list, as in
    torch). Batches are data: stacked tensors carry no autograd graph.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack_tensors(batch)
    if isinstance(elem, (np.ndarray, np.generic)):
        if dtypes.kind(elem.dtype) in "OUSV":
            raise TypeError(f"default_collate: NumPy arrays of dtype {elem.dtype} cannot be "
                            "collated into a tensor")
        return from_numpy(np.stack(batch))
    if isinstance(elem, (int, float)):
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError(f"default_collate: each element in list of batch should be of "
                               f"equal size, got sizes {[len(sample) for sample in batch]}")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, NumPy arrays, numbers, "
                    f"strings, dicts or lists; found {type(elem).__name__}")


def _to_device(batch: Any, dev: device) -> Any:
    """The batch with every tensor moved to `dev` (one copy per tensor, none if already there)."""
    if isinstance(batch, Tensor):
        return Tensor._wrap(move_array(batch.array, dev))
    if isinstance(batch, collections.abc.Mapping):
        return {key: _to_device(value, dev) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_to_device(value, dev) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(value, dev) for value in batch)
    return batch


def _pinned(array: np.ndarray) -> np.ndarray:
    """A copy of a host array in page-locked memory, from which CuPy copies to the GPU
    asynchronously and without a staging copy.
    NOTE: the block is freed when the returned array is; CuPy keeps the source of a copy in
    flight alive until the copy has finished."""
    block = cupy_module().cuda.alloc_pinned_memory(max(array.nbytes, 1))
    out = np.frombuffer(block, array.dtype, array.size).reshape(array.shape)
    np.copyto(out, array)
    return out


def pin_memory(batch: Any) -> Any:
    """The batch with every CPU tensor copied into pinned host memory (torch's pin_memory);
    objects with their own `pin_memory()` method are asked to pin themselves."""
    if isinstance(batch, Tensor):
        if batch.device.type != "cpu":
            return batch
        return Tensor._wrap(_pinned(batch.array))
    if isinstance(batch, collections.abc.Mapping):
        return {key: pin_memory(value) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(pin_memory(value) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(pin_memory(value) for value in batch)
    if hasattr(batch, "pin_memory"):
        return batch.pin_memory()
    return batch


def _overrides(dataset: Dataset, cls: type[Dataset]) -> bool:
    return type(dataset).__getitem__ is not cls.__getitem__


def _tensor_source(dataset: Dataset) -> tuple | None:
    """The tensors behind a TensorDataset, or behind Subsets of one, with the index map that
    the Subsets compose to (None for the identity); None for any other dataset."""
    index_map = None
    while isinstance(dataset, Subset) and not _overrides(dataset, Subset):
        indices = np.asarray(dataset.indices, dtype=np.int64)
        index_map = indices if index_map is None else indices[index_map]
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset) and not _overrides(dataset, TensorDataset):
        return dataset.tensors, index_map
    return None


class _SampleFetcher:
    """indices -> collate([dataset[i] for i in indices]). A class, not a closure, so that it
    pickles to workers started by 'spawn' or 'forkserver'."""

    def __init__(self, dataset: Dataset, collate: Callable[[list], Any]) -> None:
        self.dataset, self.collate = dataset, collate

    def __call__(self, indices: list) -> Any:
        return self.collate([self.dataset[i] for i in indices])


class _RowFetcher:
    """indices -> the rows of each tensor of a TensorDataset, gathered with one index array per
    tensor instead of per-sample indexing and stacking (the same batch as default_collate)."""

    def __init__(self, tensors: tuple, index_map: np.ndarray | None) -> None:
        self.tensors, self.index_map = tensors, index_map

    def __call__(self, indices: list) -> list:
        idx = np.asarray(indices, dtype=np.int64)
        if self.index_map is not None:
            idx = self.index_map[idx]
        return [_take_rows(t, idx) for t in self.tensors]


def _batch_fetcher(dataset: Dataset, collate_fn: Callable) -> Callable[[list], Any]:
    source = _tensor_source(dataset) if collate_fn is default_collate else None
    return _SampleFetcher(dataset, collate_fn) if source is None else _RowFetcher(*source)


_END = object()


class _Failure:
    """An exception raised while building a batch, carried to the caller's thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _offer(out: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put `item` on the queue, giving up once `stop` is set; True if it was put."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _produce(source: Iterator, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for batch in source:
            if stop.is_set() or not _offer(out, batch, stop):
                return
    except BaseException as exc:  # every failure goes to the caller, which re-raises it
        _offer(out, _Failure(exc), stop)
        return
    _offer(out, _END, stop)


class _PrefetchIterator:
    """Yields the batches of `source`, built ahead by a daemon thread through a bounded queue.

    NOTE: the thread holds no reference to this iterator, so an abandoned iterator (an early
    `break`) is garbage-collected, and `close` stops the thread and frees the queued batches.
    """

    def __init__(self, source: Iterator, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_produce, daemon=True,
                                        args=(source, self._queue, self._stop),
                                        name="gradflow-dataloader-prefetch")
        self._thread.start()

    def __iter__(self) -> "_PrefetchIterator":
        return self

    def __next__(self) -> Any:
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.exc
        return item

    def close(self) -> None:
        self._stop.set()
        while True:  # make room so a producer blocked on a full queue sees the stop at once
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def __del__(self) -> None:
        self.close()


class _WorkerIterator:
    """Batches built by `num_workers` worker processes (torch's _MultiProcessingDataLoaderIter).

    Tasks go round-robin to the workers, at most `prefetch_factor` per worker outstanding, and
    results are handed out in task order. The main process draws the index order when an epoch
    starts and one base seed when the workers start. Waiting for a result it checks every
    `worker.STATUS_CHECK_INTERVAL` s that the workers live, and gives up after `timeout` s.
    Workers are joined when an epoch ends (unless persistent), on an error that ends the
    loader, and when the iterator is garbage-collected.
    NOTE: nothing the workers or the queues' threads hold refers to this object, so an
    abandoned iterator is collected and its `__del__` shuts the workers down.
    """

    def __init__(self, loader: "DataLoader") -> None:
        ctx: Any = loader._context()
        assert loader.prefetch_factor is not None  # DataLoader sets it when there are workers
        self._n = loader.num_workers
        self._iterable = loader._iterable
        self._batch_sampler = loader.batch_sampler
        self._prefetch = loader.prefetch_factor * self._n
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        self._pin = loader.pin_memory and cuda_available()
        self._device = loader.device
        # NOTE: the pass's order is drawn before the workers' base seed (torch draws the seed
        # first), so a first pass visits the same order as with num_workers=0
        tasks = self._epoch_tasks()
        base_seed = int(cpu_rng(loader.generator).integers(0, 2 ** 63 - 1, endpoint=True))
        fetch = None if self._iterable else _batch_fetcher(loader.dataset, loader.collate_fn)
        self._done = ctx.Event()
        self._results = ctx.Queue()
        self._queues: list = []
        self._workers: list = []
        self._shutdown = False
        try:
            for worker_id in range(self._n):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()  # NOTE: never wait at exit to flush tasks
                process = ctx.Process(
                    target=worker.worker_loop, daemon=True, name=f"gradflow-dataloader-{worker_id}",
                    args=(self._iterable, loader.dataset, index_queue, self._results, self._done,
                          fetch, loader.batch_size or 1, loader.drop_last, loader.collate_fn,
                          base_seed, loader.worker_init_fn, worker_id, self._n))
                process.start()
                self._queues.append(index_queue)
                self._workers.append(process)
        except BaseException:  # e.g. a dataset that does not pickle for 'spawn'
            self.shutdown()
            raise
        self._start_epoch(tasks)

    def _epoch_tasks(self) -> Iterator:
        if self._iterable:
            return itertools.repeat(None)
        assert self._batch_sampler is not None  # a map-style dataset has one
        return iter(list(self._batch_sampler))

    def _start_epoch(self, tasks: Iterator) -> None:
        self._tasks = tasks
        self._sent = self._received = self._outstanding = 0
        self._pending: dict = {}  # task -> [worker id] while out, [worker id, data] when early
        self._active = [True] * self._n
        self._cycle = itertools.cycle(range(self._n))
        for _ in range(self._prefetch):
            self._send_task()

    def reset(self) -> None:
        """Start a new epoch with the same (persistent) workers: each acknowledges the resume,
        and every result of the old epoch still in flight is dropped on the way."""
        if self._shutdown:
            raise RuntimeError("DataLoader: its persistent workers were shut down by an "
                               "earlier error; make a new DataLoader")
        resume = worker.ResumeIteration()
        for index_queue in self._queues:
            index_queue.put(resume)
        acknowledged = 0
        while acknowledged < self._n:
            task, _ = self._get()
            acknowledged += isinstance(task, worker.ResumeIteration)
        self._start_epoch(self._epoch_tasks())

    def _send_task(self) -> None:
        if self._outstanding >= self._prefetch:
            return
        for _ in range(self._n):
            worker_id = next(self._cycle)
            if self._active[worker_id]:
                break
        else:
            return
        indices = next(self._tasks, _END)
        if indices is _END:
            return
        self._queues[worker_id].put((self._sent, indices))
        self._pending[self._sent] = [worker_id]
        self._outstanding += 1
        self._sent += 1

    def __iter__(self) -> "_WorkerIterator":
        return self

    def __next__(self) -> Any:
        while True:
            while self._received < self._sent:  # skip tasks of workers whose stream ended
                entry = self._pending[self._received]
                if len(entry) == 2 or self._active[entry[0]]:
                    break
                del self._pending[self._received]
                self._received += 1
            else:
                if not self._persistent:
                    self.shutdown()
                raise StopIteration
            entry = self._pending[self._received]
            if len(entry) == 2:
                del self._pending[self._received]
                self._received += 1
                return self._finish(entry[1])
            task, blob = self._get()
            self._outstanding -= 1
            data = self._unpickle(self._pending[task][0], blob)
            if isinstance(data, worker.IterableStopped):
                self._retire(data.worker_id)
                self._send_task()
                continue
            if task != self._received:
                self._pending[task].append(data)
                continue
            del self._pending[task]
            self._received += 1
            return self._finish(data)

    def _retire(self, worker_id: int) -> None:
        """No more tasks for a worker whose IterableDataset copy is exhausted; a worker that is
        not persistent is also told to exit."""
        self._active[worker_id] = False
        if not self._persistent:
            self._queues[worker_id].put(None)

    def _finish(self, data: Any) -> Any:
        self._send_task()
        if isinstance(data, worker.ExceptionWrapper):
            data.reraise()
        if self._pin:
            data = pin_memory(data)
        return data if self._device is None else _to_device(data, self._device)

    def _unpickle(self, worker_id: int, blob: bytes) -> Any:
        try:
            return pickle.loads(blob)
        except Exception as err:
            self.shutdown()
            raise RuntimeError(f"DataLoader: the batch from worker {worker_id} cannot be "
                               f"unpickled in the main process: {type(err).__name__}: "
                               f"{err}") from err

    def _get(self) -> tuple:
        """The next message from any worker, checking on the workers while waiting."""
        deadline = None if self._timeout == 0 else time.monotonic() + self._timeout
        while True:
            wait = worker.STATUS_CHECK_INTERVAL
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                return self._results.get(timeout=wait)
            except queue.Empty:
                pass
            dead = [(i, w) for i, w in enumerate(self._workers)
                    if (self._active[i] or self._persistent) and not w.is_alive()]
            if dead:
                self.shutdown()
                what = ", ".join(f"{i} (pid {w.pid}, exit code {w.exitcode})" for i, w in dead)
                raise RuntimeError(f"DataLoader worker {what} exited unexpectedly")
            if deadline is not None and time.monotonic() >= deadline:
                self.shutdown()
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")

    def shutdown(self) -> None:
        """Stop and join the workers (terminating any still busy after a second) and close the
        queues; idempotent."""
        if self._shutdown:
            return
        self._shutdown = True
        self._done.set()
        for index_queue in self._queues:
            try:
                index_queue.put(None)
            except (OSError, ValueError):  # already closed
                pass
        for process in self._workers:
            process.join(timeout=1.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=1.0)
        for q in [*self._queues, self._results]:
            q.cancel_join_thread()
            q.close()

    def __del__(self) -> None:
        try:
            self.shutdown()
        except Exception:  # NOTE: at interpreter exit the modules it needs may be gone
            pass


def _check_context(context: Any) -> BaseContext:
    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(f"DataLoader: multiprocessing_context option should specify a "
                             f"valid start method in {methods!r}, but got "
                             f"multiprocessing_context={context!r}")
        return multiprocessing.get_context(context)
    if not isinstance(context, BaseContext):
        raise TypeError(f"DataLoader: multiprocessing_context option should be a valid context "
                        f"object or a string specifying the start method, but got "
                        f"multiprocessing_context={context!r}")
    return context


class DataLoader:
    """Iterates over batches of a dataset (torch.utils.data.DataLoader).

    `num_workers > 0` builds batches in that many worker processes started by the platform's
    default multiprocessing method (fork on Linux) or `multiprocessing_context`. Worker i seeds
    gradflow's and Python's generators with base_seed + i and NumPy's global one from both, as
    torch's do (see `get_worker_info`); base_seed is drawn from `generator` (else gradflow's
    default) when the workers start, just after the pass's order, so a first pass has the same
    order for any num_workers (torch draws it first, in every mode). Batches come back from the
    workers in order, pickled, tensors as NumPy arrays.
    `pin_memory` copies each batch into page-locked memory when CUDA is available, so that
    `.to('cuda')` copies it asynchronously.

    Extensions: `device` puts every batch on that device (one host-to-device copy per tensor);
    with `num_workers=0`, `prefetch` builds the next batches on a background thread. The index
    order of a pass is drawn when iteration starts, in the caller's thread, so a seeded shuffle
    repeats exactly. Samples are still read on the prefetch thread: a dataset whose per-sample
    transforms draw from gradflow's default generator is reproducible only with
    `prefetch=False` (or workers, each seeded, or a generator of the transforms' own).
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable | None = None,
                 batch_sampler: Sampler | Iterable | None = None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: str | BaseContext | None = None,
                 generator: Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, device: Any = None,
                 prefetch: bool = True) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be non-negative; use "
                             f"num_workers=0 to disable multiprocessing (got {num_workers!r})")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, got "
                             f"timeout={timeout!r}")
        if num_workers == 0:
            if prefetch_factor is not None:
                raise ValueError("DataLoader: prefetch_factor option could only be specified in "
                                 "multiprocessing. let num_workers > 0 to enable "
                                 "multiprocessing, otherwise set prefetch_factor to None.")
            if persistent_workers:
                raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
            if multiprocessing_context is not None:
                raise ValueError("DataLoader: multiprocessing_context can only be used with "
                                 "multi-process loading (num_workers > 0), but got "
                                 "num_workers=0")
        else:
            prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
            if isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int) \
                    or prefetch_factor < 1:
                raise ValueError(f"DataLoader: prefetch_factor option should be a positive "
                                 f"integer, got prefetch_factor={prefetch_factor!r}")
            if multiprocessing_context is not None:
                multiprocessing_context = _check_context(multiprocessing_context)
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            for name, value in (("shuffle", shuffle), ("sampler", sampler),
                                ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                     f"{name} option, but got {name}={value!r}")
            if batch_size is None:
                raise ValueError("DataLoader: batch_size=None (no automatic batching) is not "
                                 "supported")
        elif batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size = None
        else:
            if sampler is not None and shuffle:
                raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
            if batch_size is None:
                raise ValueError("DataLoader: batch_size=None (no automatic batching) is not "
                                 "supported; use batch_size=1 or a batch_sampler")
            if sampler is None:
                sampler = (RandomSampler(dataset, generator=generator) if shuffle
                           else SequentialSampler(dataset))
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = persistent_workers
        self.generator = generator
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.device = None if device is None else as_device(device)
        self.prefetch = prefetch
        self._iterator: _WorkerIterator | None = None

    def _context(self) -> BaseContext:
        context = self.multiprocessing_context
        return multiprocessing.get_context() if context is None else context

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # type: ignore[arg-type]  # TypeError without a __len__
            assert self.batch_size is not None
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if not isinstance(self.batch_sampler, collections.abc.Sized):
            raise TypeError(f"DataLoader: its batch_sampler ({type(self.batch_sampler).__name__}) "
                            "has no length")
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator:
        if self.pin_memory and not cuda_available():
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, "
                          "then device pinned memory won't be used.", stacklevel=2)
        if self.num_workers > 0:
            if not self.persistent_workers:
                return _WorkerIterator(self)
            if self._iterator is None:
                self._iterator = _WorkerIterator(self)
            else:
                self._iterator.reset()
            return self._iterator
        source = self._batches()
        return _PrefetchIterator(source) if self.prefetch else source

    def _batches(self) -> Iterator:
        """This pass's batches, built in the calling process."""
        if self._iterable:
            assert self.batch_size is not None
            source = worker.iterable_batches(self.dataset, self.batch_size, self.drop_last,
                                             self.collate_fn)
        else:
            assert self.batch_sampler is not None  # a map-style dataset has one
            source = map(_batch_fetcher(self.dataset, self.collate_fn), list(self.batch_sampler))
        if self.pin_memory and cuda_available():
            source = map(pin_memory, source)
        dev = self.device
        return source if dev is None else (_to_device(batch, dev) for batch in source)
