"""Process groups: joining the launcher's world, ranks, sub-groups (torch.distributed's).

The world is MPI's: `mpiexec -n N python script.py` starts the processes and mpi4py's
COMM_WORLD connects them. torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK) are read and
held to MPI's world, so a script written for torchrun runs unchanged under mpiexec; torchrun
itself starts processes that share no MPI world, and `init_process_group` says so rather
than waiting for peers that will never come.
"""
from __future__ import annotations

import datetime
import importlib.util
import os
from typing import Any, Sequence

from . import faults

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)  # torch.distributed's default


class Backend(str):
    """The engines (torch.distributed.Backend): 'mpi' for processes and CPU tensors, 'nccl'
    for CUDA tensors (CPU tensors of an NCCL group still go over MPI, as torch's default
    'cpu:gloo,cuda:nccl' does with gloo)."""

    MPI = "mpi"
    NCCL = "nccl"

    def __new__(cls, name: str) -> "Backend":
        if not isinstance(name, str):
            raise TypeError(f"Backend: expected a string, got {type(name).__name__}")
        value = name.lower()
        if value not in (cls.MPI, cls.NCCL):
            raise ValueError(f"Backend: unknown backend {name!r}; gradflow.distributed has "
                             "'mpi' and 'nccl'")
        return super().__new__(cls, value)


def mpi():
    """mpi4py's MPI module (importing it initialises MPI), or an ImportError that says how
    to install it."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError("gradflow.distributed needs mpi4py and an MPI: pip install "
                          "'gradflow[distributed]' (mpi4py and the mpich wheel)") from err
    return MPI


class ProcessGroup:
    """A set of ranks that run collectives together (torch.distributed.ProcessGroup).

    `comm` is its MPI communicator (None on a process outside the group), `ranks` the global
    ranks of its members in group-rank order, `nccl` its NCCL engine when the backend is
    NCCL."""

    def __init__(self, backend: Backend, comm: Any, ranks: Sequence[int],
                 timeout: datetime.timedelta) -> None:
        from .mpi import MPIEngine
        self.backend = backend
        self.comm = comm
        self.ranks = tuple(ranks)
        self.timeout = timeout
        self.mpi = MPIEngine(comm) if comm is not None else None
        self.nccl: Any = None
        if backend == Backend.NCCL and comm is not None:
            from .nccl import NCCLEngine
            self.nccl = NCCLEngine(comm)

    def rank(self) -> int:
        """This process's rank in the group; -1 outside it."""
        return -1 if self.comm is None else self.comm.Get_rank()

    def size(self) -> int:
        return len(self.ranks)

    def name(self) -> str:
        return str(self.backend)

    def group_rank(self, global_rank: int, what: str) -> int:
        """The group rank of a global rank (`what` names the argument in the error)."""
        try:
            return self.ranks.index(global_rank)
        except ValueError:
            raise ValueError(f"{what}={global_rank} is not a rank of this group (its global "
                             f"ranks are {list(self.ranks)})") from None

    def destroy(self) -> None:
        if self.nccl is not None:
            self.nccl.destroy()
            self.nccl = None
        if self.comm is not None:
            self.comm.Free()
            self.comm = None

    def __repr__(self) -> str:
        return f"ProcessGroup(backend={self.backend!r}, ranks={list(self.ranks)})"


class _State:
    world: ProcessGroup | None = None
    groups: list[ProcessGroup] = []
    local_rank = 0


STATE = _State()


class GroupMember:
    """torch.distributed.GroupMember: `WORLD` is the default group while one is initialised
    (None otherwise)."""

    WORLD: ProcessGroup | None = None


class group:  # noqa: N801  (torch's name: dist.group.WORLD)
    """torch.distributed.group: `WORLD` is the default group, as GroupMember.WORLD."""

    WORLD: ProcessGroup | None = None


def _set_world(world: ProcessGroup | None) -> None:
    STATE.world = GroupMember.WORLD = group.WORLD = world


def is_available() -> bool:
    """True: the package is always importable (torch.distributed.is_available); whether an
    engine can run is `is_mpi_available()` / `is_nccl_available()`."""
    return True


def is_mpi_available() -> bool:
    """Whether mpi4py is installed (found, not imported: importing it starts MPI)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available() -> bool:
    """Whether CuPy's NCCL binding loads and CUDA is usable (NCCL also needs mpi4py, which
    carries NCCL's unique id to every rank)."""
    from ..backend import cuda_available
    if not cuda_available():
        return False
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", False))


def is_initialized() -> bool:
    return STATE.world is not None


def _default_backend() -> Backend:
    from ..creation import get_default_device
    if get_default_device().type == "cuda" and is_nccl_available():
        return Backend(Backend.NCCL)
    return Backend(Backend.MPI)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"init_process_group: environment variable {name}={value!r} is "
                         "not an integer") from None


def _check_launcher(comm: Any, world_size: int, rank: int) -> None:
    """Hold the launcher's variables and the explicit arguments to MPI's world."""
    size, me = comm.Get_size(), comm.Get_rank()
    env_size, env_rank = _env_int("WORLD_SIZE"), _env_int("RANK")
    if size == 1 and env_size is not None and env_size > 1:
        raise RuntimeError(
            f"init_process_group: WORLD_SIZE={env_size} but this process is alone in its MPI "
            "world: gradflow.distributed runs on MPI, so launch with `mpiexec -n "
            f"{env_size} python script.py` (torchrun's processes share no MPI world)")
    for what, given, actual in (("world_size", world_size, size), ("rank", rank, me),
                                ("WORLD_SIZE", env_size, size), ("RANK", env_rank, me)):
        if given is not None and given != -1 and given != actual:
            raise ValueError(f"init_process_group: {what}={given} but the MPI world "
                             f"launched has {size} process(es) and this one is rank {me}")


def _local_rank(MPI: Any, comm: Any) -> int:
    """This process's rank among those on its machine: the launcher's LOCAL_RANK (torchrun),
    MPI_LOCALRANKID (MPICH) or OMPI_COMM_WORLD_LOCAL_RANK (Open MPI), else the rank in
    MPI's shared-memory split of the world."""
    for name in ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"):
        value = _env_int(name)
        if value is not None:
            return value
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return int(node.Get_rank())
    finally:
        node.Free()


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | None = None, world_size: int = -1,
                       rank: int = -1, store: Any = None, group_name: str = "",
                       pg_options: Any = None, device_id: Any = None) -> None:
    """Join the launcher's world (torch.distributed.init_process_group).

    `backend`: 'mpi', 'nccl', or None for NCCL when CUDA is usable and the default device
    is CUDA, else MPI. Launch with `mpiexec -n N python script.py`; `world_size` and `rank`,
    when given, must match the world mpiexec made. With NCCL each process takes the GPU of
    its local rank (or `device_id`). Installs an exception hook: a rank that raises prints
    its traceback and aborts every rank, instead of leaving them waiting in a collective;
    and a wait on the other ranks longer than `timeout` (30 minutes) aborts them too (both
    only in a world of more than one process).
    """
    if STATE.world is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process "
                           "group twice! (call destroy_process_group first)")
    if init_method not in (None, "env://"):
        raise ValueError(f"init_process_group: init_method={init_method!r} is not supported: "
                         "MPI's launcher (mpiexec) connects the processes; leave it None")
    if store is not None:
        raise ValueError("init_process_group: store= is not supported: MPI's launcher "
                         "(mpiexec) connects the processes")
    chosen = _default_backend() if backend is None else Backend(backend)
    if timeout is not None and not isinstance(timeout, datetime.timedelta):
        raise TypeError(f"init_process_group: timeout must be a datetime.timedelta, got "
                        f"{type(timeout).__name__}")
    MPI = mpi()
    world = MPI.COMM_WORLD
    _check_launcher(world, world_size, rank)
    STATE.local_rank = _local_rank(MPI, world)
    if chosen == Backend.NCCL:
        _use_gpu(device_id)
    comm = world.Dup()
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    _set_world(ProcessGroup(chosen, comm, range(comm.Get_size()), limit))
    if comm.Get_size() > 1:  # NOTE: alone, no rank can wait on this one (nor a REPL abort)
        faults.install(world, limit.total_seconds())


def _use_gpu(device_id: Any) -> None:
    from ..backend import cuda_unavailable_reason
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"init_process_group: backend 'nccl' needs CUDA: {reason}")
    from .. import cuda
    if device_id is None:
        device_id = STATE.local_rank % cuda.device_count()
    cuda.set_device(device_id)


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Free a group, or with none given every group and the default one (and restore the
    exception hook init_process_group installed)."""
    if group is not None and group is not STATE.world:
        group.destroy()
        if group in STATE.groups:
            STATE.groups.remove(group)
        return
    if STATE.world is None:
        raise RuntimeError("destroy_process_group: the default process group has not been "
                           "initialized")
    for g in STATE.groups:
        g.destroy()
    STATE.groups = []
    STATE.world.destroy()
    _set_world(None)
    faults.uninstall()


def default_group(what: str) -> ProcessGroup:
    if STATE.world is None:
        raise RuntimeError(f"{what}: the default process group has not been initialized, "
                           "please make sure to call init_process_group.")
    return STATE.world


def resolve(group: ProcessGroup | None, what: str) -> ProcessGroup:
    """The group a call runs on: `group`, or the default one."""
    world = default_group(what)
    if group is None:
        return world
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"{what}: group must be a ProcessGroup from new_group, got "
                        f"{type(group).__name__}")
    return group


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in `group` (default: the world); -1 outside the group."""
    return resolve(group, "get_rank").rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    """The number of processes in `group` (default: the world); -1 outside the group."""
    g = resolve(group, "get_world_size")
    return -1 if g.comm is None else g.size()


def get_backend(group: ProcessGroup | None = None) -> str:
    return str(resolve(group, "get_backend").backend)


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """This process's rank among those on its machine (torch.distributed's); it picks the
    GPU under NCCL."""
    if STATE.world is None:
        env = _env_int("LOCAL_RANK")
        if env is not None:
            return env
        if fallback_rank is not None:
            return int(fallback_rank)
        raise RuntimeError("get_node_local_rank: LOCAL_RANK is not set and the process "
                           "group is not initialized")
    return STATE.local_rank


def get_process_group_ranks(group: ProcessGroup | None) -> list[int]:
    return list(resolve(group, "get_process_group_ranks").ranks)


def get_group_rank(group: ProcessGroup | None, global_rank: int) -> int:
    return resolve(group, "get_group_rank").group_rank(global_rank, "global_rank")


def get_global_rank(group: ProcessGroup | None, group_rank: int) -> int:
    g = resolve(group, "get_global_rank")
    if not 0 <= group_rank < g.size():
        raise ValueError(f"get_global_rank: group_rank={group_rank} is out of range for a "
                         f"group of {g.size()}")
    return g.ranks[group_rank]


def new_group(ranks: Sequence[int] | None = None, timeout: datetime.timedelta | None = None,
              backend: str | None = None, pg_options: Any = None,
              use_local_synchronization: bool = False, group_desc: str | None = None,
              device_id: Any = None) -> ProcessGroup:
    """A group of some of the world's ranks (torch.distributed.new_group); every rank of
    the world must call it, with the same ranks. A process outside the group gets a group
    whose get_rank is -1 and whose collectives do nothing."""
    world = default_group("new_group")
    size = world.size()
    members = list(range(size)) if ranks is None else sorted(int(r) for r in ranks)
    if len(set(members)) != len(members) or any(not 0 <= r < size for r in members):
        raise ValueError(f"new_group: ranks {list(ranks or [])} must be distinct ranks of "
                         f"the world of {size}")
    MPI = mpi()
    with faults.waiting("new_group"):
        agreed = world.comm.allgather(members)
    if any(other != members for other in agreed):
        raise RuntimeError("new_group: every rank must pass the same ranks; got "
                           + ", ".join(f"rank {r}: {m}" for r, m in enumerate(agreed)))
    me = world.comm.Get_rank()
    comm = world.comm.Split(0 if me in members else MPI.UNDEFINED, members.index(me)
                            if me in members else 0)
    chosen = world.backend if backend is None else Backend(backend)
    g = ProcessGroup(chosen, None if comm == MPI.COMM_NULL else comm, members,
                     world.timeout if timeout is None else timeout)
    STATE.groups.append(g)
    return g
