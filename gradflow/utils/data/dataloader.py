"""DataLoader: batches a dataset through a sampler and a collate function, optionally moves
each batch to a device, and builds the next batches on a background thread while the caller
trains on the current one (torch.utils.data.DataLoader with an in-process prefetcher)."""
from __future__ import annotations

import collections.abc
import queue
import threading
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ...backend import as_device, device, move_array, on_device
from ...creation import from_numpy, tensor
from ...random import Generator
from ...tensor import Tensor
from .dataset import Dataset, Subset, TensorDataset
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
        if elem.dtype.kind in "OUSV":
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


def _batch_fetcher(loader: "DataLoader") -> Callable[[list], Any]:
    """indices -> finished batch. A TensorDataset with the default collate is gathered with one
    index array per tensor instead of per-sample indexing and stacking (same result)."""
    source = _tensor_source(loader.dataset) if loader.collate_fn is default_collate else None
    if source is None:
        dataset, collate = loader.dataset, loader.collate_fn

        def fetch(indices: list) -> Any:
            return collate([dataset[i] for i in indices])
    else:
        tensors, index_map = source

        def fetch(indices: list) -> Any:
            idx = np.asarray(indices, dtype=np.int64)
            if index_map is not None:
                idx = index_map[idx]
            return [_take_rows(t, idx) for t in tensors]
    dev = loader.device
    if dev is None:
        return fetch
    return lambda indices: _to_device(fetch(indices), dev)


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


def _produce(fetch: Callable, batches: list, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for indices in batches:
            if stop.is_set() or not _offer(out, fetch(indices), stop):
                return
    except BaseException as exc:  # every failure goes to the caller, which re-raises it
        _offer(out, _Failure(exc), stop)
        return
    _offer(out, _END, stop)


class _PrefetchIterator:
    """Yields batches built ahead by a daemon thread through a bounded queue.

    NOTE: the thread holds no reference to this iterator, so an abandoned iterator (an early
    `break`) is garbage-collected, and `close` stops the thread and frees the queued batches.
    """

    def __init__(self, fetch: Callable, batches: list, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_produce, daemon=True,
                                        args=(fetch, batches, self._queue, self._stop),
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


class DataLoader:
    """Iterates over batches of a dataset (torch.utils.data.DataLoader).

    Extensions: `device` puts every batch on that device (one host-to-device copy per tensor);
    `prefetch` builds the next batches on a background thread. The index order of a pass is
    drawn when iteration starts, in the caller's thread, so a seeded shuffle repeats exactly.
    Samples are still read on the prefetch thread: a dataset whose per-sample transforms draw
    from gradflow's default generator is reproducible only with `prefetch=False` (or give the
    transforms their own generator, or apply them to whole batches in the training loop).
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool = False,
                 sampler: Sampler | Iterable | None = None,
                 batch_sampler: Sampler | Iterable | None = None, drop_last: bool = False,
                 collate_fn: Callable | None = None, generator: Generator | None = None,
                 device: Any = None, prefetch: bool = True) -> None:
        if batch_sampler is not None:
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
        self.generator = generator
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.device = None if device is None else as_device(device)
        self.prefetch = prefetch

    def __len__(self) -> int:
        if not isinstance(self.batch_sampler, collections.abc.Sized):
            raise TypeError(f"DataLoader: its batch_sampler ({type(self.batch_sampler).__name__}) "
                            "has no length")
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator:
        batches = list(self.batch_sampler)
        fetch = _batch_fetcher(self)
        return _PrefetchIterator(fetch, batches) if self.prefetch else map(fetch, batches)
