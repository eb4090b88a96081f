"""gradflow.distributed: torch.distributed's API on MPI (processes, CPU tensors) and NCCL
(CUDA tensors), the engines data-parallel training runs on.

Launch one process per GPU (or per CPU worker) with MPI's launcher::

    mpiexec -n 4 python train.py                  # one machine
    mpiexec -f hosts -n 16 -ppn 8 python train.py  # several machines (MPICH's hydra)

and in the script::

    import gradflow.distributed as dist
    dist.init_process_group()            # 'nccl' when the default device is CUDA, else 'mpi'
    dist.all_reduce(t, op=dist.ReduceOp.SUM)

Install with `pip install 'gradflow[distributed]'` (mpi4py and the mpich wheel, no system
MPI needed); NCCL comes with CuPy's NVIDIA wheels (nvidia-nccl-cu12 / -cu13). A rank that
raises aborts every rank (faults.py); shapes or dtypes that differ across ranks raise the
same error on every rank, naming each rank's. The object collectives pickle: for trusted
peers only.
"""
from .collectives import (
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    all_to_all_single,
    barrier,
    broadcast,
    broadcast_object_list,
    gather,
    gather_object,
    irecv,
    isend,
    recv,
    reduce,
    reduce_scatter_tensor,
    scatter,
    scatter_object_list,
    send,
)
from .process_group import (
    Backend,
    GroupMember,
    ProcessGroup,
    destroy_process_group,
    get_backend,
    get_global_rank,
    get_group_rank,
    get_node_local_rank,
    get_process_group_ranks,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
    new_group,
)
from .reduce_op import ReduceOp
from .work import Work

__all__ = [
    "Backend", "GroupMember", "ProcessGroup", "ReduceOp", "Work", "all_gather",
    "all_gather_into_tensor", "all_gather_object", "all_reduce", "all_to_all_single",
    "barrier", "broadcast", "broadcast_object_list", "destroy_process_group", "gather",
    "gather_object", "get_backend", "get_global_rank", "get_group_rank", "get_node_local_rank",
    "get_process_group_ranks", "get_rank", "get_world_size", "group", "init_process_group",
    "irecv", "is_available", "is_initialized", "is_mpi_available", "is_nccl_available",
    "isend", "new_group", "recv", "reduce", "reduce_scatter_tensor", "scatter",
    "scatter_object_list", "send",
]
