"""Data parallelism across processes (torch.nn.parallel); it needs mpi4py only once a
DistributedDataParallel is built."""
from .distributed import DistributedDataParallel
from .reducer import ReductionTrace

__all__ = ["DistributedDataParallel", "ReductionTrace"]
