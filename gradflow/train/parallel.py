"""The training command under a launcher: `mpiexec -n N python -m gradflow.train` trains
data-parallel, one process per GPU or per share of the CPU. torchrun's WORLD_SIZE is read too,
so that its launch is refused with init_process_group's message (its processes share no MPI
world) instead of running as N separate runs that write the same --out.

`launched_world_size` reads the launcher's environment; `start` joins the process group
(NCCL for CUDA tensors, MPI for CPU tensors) and returns a `Group`, the few collective steps
the command needs. A plain `python -m gradflow.train` gets `SINGLE`, whose every step is the
identity, so the one-process path runs exactly as it always has.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..creation import tensor

# Environment variables that MPI launchers set in each process: MPICH's and Intel MPI's
# Hydra and Slurm's PMI, Open MPI, PMIx (which gives the rank only).
MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
MPI_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
INSTALL = "pip install 'gradflow[distributed]'"


class LaunchError(Exception):
    """The launcher started several processes but they cannot form a group."""


def launcher_rank() -> int:
    """This process's rank as the launcher's environment gives it (0 without a launcher);
    read before anything is initialised, to keep the other ranks quiet."""
    for name in ("RANK",) + MPI_RANK_VARIABLES:
        if name in os.environ:
            return int(os.environ[name])
    return 0


def launched_world_size() -> int:
    """How many processes the launcher started: torchrun's WORLD_SIZE, else MPI's
    COMM_WORLD size when an MPI launcher's variables are set; 1 for a plain `python`.
    mpi4py is imported only under an MPI launcher."""
    if "WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    if not any(name in os.environ for name in MPI_SIZE_VARIABLES + MPI_RANK_VARIABLES):
        return 1
    hinted = next((os.environ[name] for name in MPI_SIZE_VARIABLES if name in os.environ), "1")
    try:
        from mpi4py import MPI
    except ImportError:
        if int(hinted) > 1:
            raise LaunchError(f"launched as one of {hinted} MPI processes, but mpi4py is not "
                              f"installed, so they cannot train together: {INSTALL}") from None
        return 1
    return int(MPI.COMM_WORLD.Get_size())


class Group:
    """One process alone (the base: every collective step is the identity)."""

    rank, size, local_rank = 0, 1, 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Whether this process prints, writes metrics and saves checkpoints (rank 0)."""
        return self.rank == 0

    def sum(self, values: list[float], device: str) -> list[float]:
        """`values` summed over the ranks."""
        return values

    def any(self, flag: bool, device: str) -> bool:
        """Whether `flag` holds on any rank."""
        return flag

    def first_error(self, message: str | None) -> str | None:
        """The message of the lowest rank that has one, on every rank, so that all ranks
        refuse a run together."""
        return message

    def share(self, obj: Any) -> Any:
        """Rank 0's `obj`, on every rank."""
        return obj

    def broadcast(self, tensors: Any) -> None:
        """Give every rank rank 0's values of `tensors` (in place)."""

    def close(self) -> None:
        """Leave the process group."""


SINGLE = Group()  # a plain `python -m gradflow.train`


class ProcessGroup(Group):
    """This process's place in the default process group of gradflow.distributed."""

    def __init__(self, backend: str) -> None:
        from .. import distributed as dist
        self.dist = dist
        if not dist.is_initialized():
            try:
                dist.init_process_group(backend=backend)
            except (ImportError, RuntimeError, ValueError) as err:  # torchrun, no mpi4py
                raise LaunchError(str(err)) from None
        self.backend = backend
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        self.local_rank = dist.get_node_local_rank()  # picks the GPU under NCCL

    def sum(self, values: list[float], device: str) -> list[float]:
        totals = tensor(np.asarray(values, np.float64), device=device)
        self.dist.all_reduce(totals, op=self.dist.ReduceOp.SUM)
        return [float(v) for v in totals.tolist()]

    def any(self, flag: bool, device: str) -> bool:
        votes = tensor(np.asarray([int(flag)], np.int64), device=device)
        self.dist.all_reduce(votes, op=self.dist.ReduceOp.MAX)
        return bool(votes.item())

    def first_error(self, message: str | None) -> str | None:
        messages: list[Any] = [None] * self.size
        self.dist.all_gather_object(messages, message)
        return next(((m if r == 0 else f"rank {r}: {m}") for r, m in enumerate(messages)
                     if m is not None), None)

    def share(self, obj: Any) -> Any:
        box = [obj]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast(self, tensors: Any) -> None:
        with no_grad():
            for t in tensors:
                self.dist.broadcast(t, src=0)

    def close(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def start(device: str) -> Group:
    """The group of this process: SINGLE without a launcher, else a new member of the
    default process group, over NCCL when the run is on CUDA (--device cuda, or auto with a
    GPU) and over MPI otherwise."""
    if launched_world_size() <= 1:
        return SINGLE
    from .. import cuda
    cuda_wanted = device != "cpu" and cuda.is_available()
    if cuda_wanted:
        check_gpus_per_machine()
    return ProcessGroup("nccl" if cuda_wanted else "mpi")


def check_gpus_per_machine() -> None:
    """Refuse, on every rank alike, a launch with more processes on a machine than it has
    GPUs (NCCL takes one GPU per process). Under torchrun each process is alone in its MPI
    world, and init_process_group refuses the launch."""
    try:
        from mpi4py import MPI
    except ImportError:
        return
    from .. import cuda
    node = MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED)
    mine = (MPI.Get_processor_name(), node.Get_size(), cuda.device_count())
    node.Free()
    crowded = [m for m in MPI.COMM_WORLD.allgather(mine) if m[1] > m[2]]
    if crowded:
        host, processes, gpus = crowded[0]
        raise LaunchError(f"one process per GPU: machine {host} runs {processes} processes "
                          f"but has {gpus} GPU{'s' if gpus != 1 else ''}; launch at most "
                          f"{gpus} there (mpiexec -ppn), or train on the CPU with --device cpu")
