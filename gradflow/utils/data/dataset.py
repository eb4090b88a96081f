"""Datasets (torch.utils.data): the map-style `Dataset` protocol with `TensorDataset`, `Subset`,
`ConcatDataset`, `StackDataset` and `random_split`; the stream-style `IterableDataset` with
`ChainDataset`."""
from __future__ import annotations

import bisect
import itertools
import math
import warnings
from typing import Any, Iterable, Iterator, Sequence

from ...creation import randperm
from ...random import Generator
from ...tensor import Tensor


class Dataset:
    """A map from indices 0..len-1 to samples; subclasses define `__getitem__` and `__len__`."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples; subclasses define `__iter__`. In DataLoader workers every worker
    iterates its own copy, so a dataset that should not repeat itself shards its stream by
    `get_worker_info()` (torch.utils.data.IterableDataset)."""

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: Dataset) -> "ChainDataset":  # type: ignore[override]
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Several IterableDatasets read one after another (torch.utils.data.ChainDataset)."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator:
        for dataset in self.datasets:
            if not isinstance(dataset, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got "
                                f"{type(dataset).__name__}")
            yield from dataset

    def __len__(self) -> int:
        total = 0
        for dataset in self.datasets:
            if not isinstance(dataset, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got "
                                f"{type(dataset).__name__}")
            total += len(dataset)  # type: ignore[arg-type]
        return total


class TensorDataset(Dataset):
    """Sample i is `tuple(t[i] for t in tensors)`; the DataLoader gathers whole batches at once."""

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor) or t.ndim == 0:
                raise TypeError(f"TensorDataset: argument {i} must be a tensor with at least one "
                                f"dimension, got {type(t).__name__}"
                                + (" of 0 dimensions" if isinstance(t, Tensor) else ""))
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"TensorDataset: size mismatch between tensors: first dimensions "
                             f"are {sizes} (shapes {shapes})")
        self.tensors = tensors

    def __getitem__(self, index: int) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class StackDataset(Dataset):
    """Sample i is `tuple(d[i] for d in args)` or `{k: d[i] for k, d in kwargs.items()}`: several
    datasets of one length read side by side (torch.utils.data.StackDataset)."""

    def __init__(self, *args: Dataset, **kwargs: Dataset) -> None:
        if args and kwargs:
            raise ValueError("StackDataset: supported either tuple-like (via args) or dict-like "
                             "(via kwargs) input/output, but both types are given")
        datasets: Any = args or kwargs
        if not datasets:
            raise ValueError("StackDataset: at least one dataset should be passed")
        parts = datasets.values() if kwargs else datasets
        sizes = [len(d) for d in parts]  # type: ignore[arg-type]
        if len(set(sizes)) > 1:
            raise ValueError(f"StackDataset: size mismatch between datasets: lengths {sizes}")
        self.datasets = datasets
        self._length = sizes[0]

    def __getitem__(self, index: int) -> Any:
        if isinstance(self.datasets, dict):
            return {key: dataset[index] for key, dataset in self.datasets.items()}
        return tuple(dataset[index] for dataset in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset):
    """Several map-style datasets read one after another as a single dataset."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for dataset in self.datasets:
            if isinstance(dataset, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset; use "
                                "ChainDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} is out of range for a dataset of "
                             f"length {n}")
        index %= n
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def _split_lengths(n: int, lengths: Sequence[float]) -> list:
    """Fractions summing to 1 become counts (floors, then the remainder round-robin), as torch
    does; integer lengths pass through."""
    if not (math.isclose(sum(lengths), 1) and sum(lengths) <= 1):
        return list(lengths)
    counts = []
    for i, frac in enumerate(lengths):
        if not 0 <= frac <= 1:
            raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1, "
                             f"got {frac}")
        counts.append(math.floor(n * frac))
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    for i, count in enumerate(counts):
        if count == 0:
            warnings.warn(f"random_split: length of split at index {i} is 0; this might "
                          "result in an empty dataset", stacklevel=3)
    return counts


def random_split(dataset: Dataset, lengths: Sequence[float],
                 generator: Generator | None = None) -> list:
    """Split into non-overlapping random Subsets of the given lengths (ints, or fractions that
    sum to 1); draws from gradflow's default generator unless one is given."""
    counts = _split_lengths(len(dataset), lengths)
    if sum(counts) != len(dataset):
        raise ValueError(f"random_split: sum of input lengths {list(counts)} = {sum(counts)} "
                         f"does not equal the length of the dataset ({len(dataset)})")
    order = randperm(sum(counts), generator=generator).tolist()
    return [Subset(dataset, order[end - count:end])
            for end, count in zip(itertools.accumulate(counts), counts)]
