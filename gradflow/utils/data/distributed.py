"""DistributedSampler: each process's share of a dataset (torch.utils.data.DistributedSampler).

Torch's rule: one permutation per epoch seeded by `seed + epoch` (the same on every rank),
padded by repeating its start (or cut, with `drop_last`) to a multiple of the world size, and
every `num_replicas`-th index from `rank` on. The permutation comes from gradflow's Generator,
so its order differs from torch's for the same seed; the rule that splits it is the same.
"""
from __future__ import annotations

import math
from typing import Iterator, Sized

from ... import creation
from ...random import Generator
from .sampler import Sampler

__all__ = ["DistributedSampler"]


def _group_value(what: str) -> int:
    """The default process group's rank or world size (gradflow.distributed, loaded only when
    a sampler is not told them)."""
    from ... import distributed as dist

    return dist.get_rank() if what == "rank" else dist.get_world_size()


class DistributedSampler(Sampler):
    """Restricts a DataLoader to this rank's share of `dataset`; call `set_epoch(epoch)` before
    each epoch's iterator so that the shuffle differs between epochs."""

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None:
            num_replicas = _group_value("world_size")
        if rank is None:
            rank = _group_value("rank")
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas should be a positive integer, "
                             f"got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be in the "
                             f"interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self.drop_last, self.shuffle, self.seed = drop_last, shuffle, seed
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            g = Generator().manual_seed(self.seed + self.epoch)
            indices = creation.randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        elif indices:
            padding = self.total_size - len(indices)
            indices += (indices * math.ceil(padding / len(indices)))[:padding]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose permutation the next iterator draws (torch's set_epoch)."""
        self.epoch = epoch
