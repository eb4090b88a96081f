"""Run with plain `python` (one process, MPI's singleton world): the launcher checks and the
argument errors of init_process_group, and the hook it installs and removes."""
import os
import sys

import gradflow.distributed as dist


def raises(fn, kind, *texts):
    try:
        fn()
    except kind as err:
        for text in texts:
            assert text in str(err), (text, str(err))
        return
    raise AssertionError(f"no {kind.__name__} naming {texts}")


assert dist.is_available() and dist.is_mpi_available() and not dist.is_initialized()
raises(dist.get_rank, RuntimeError, "get_rank", "init_process_group")
raises(lambda: dist.init_process_group("gloo"), ValueError, "'gloo'", "'mpi' and 'nccl'")
raises(lambda: dist.init_process_group("mpi", init_method="tcp://10.0.0.1:23456"), ValueError,
       "init_method", "mpiexec")
raises(lambda: dist.init_process_group("mpi", world_size=2), ValueError, "world_size=2",
       "1 process(es)")
os.environ.update(WORLD_SIZE="4", RANK="0")  # as torchrun sets them
raises(lambda: dist.init_process_group("mpi"), RuntimeError, "WORLD_SIZE=4",
       "mpiexec -n 4 python script.py")
os.environ.update(WORLD_SIZE="1", RANK="0", LOCAL_RANK="0")
hook = sys.excepthook
dist.init_process_group()  # the default device is the CPU: MPI
assert dist.get_backend() == "mpi" and dist.get_world_size() == 1 and dist.get_rank() == 0
assert dist.get_node_local_rank() == 0
assert sys.excepthook is hook, "alone, a rank keeps its exception hook (a REPL would abort)"
raises(lambda: dist.init_process_group("mpi"), RuntimeError, "twice")
raises(lambda: dist.all_reduce([1.0]), TypeError, "all_reduce: tensor must be a Tensor")
raises(lambda: dist.new_group([0, 1]), ValueError, "new_group", "world of 1")
dist.destroy_process_group()
assert sys.excepthook is hook and not dist.is_initialized()
print("OK init", flush=True)
