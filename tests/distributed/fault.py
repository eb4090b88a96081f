"""Run under `mpiexec -n N python fault.py MODE`: MODE 'raise' makes the last rank raise
while the others wait in a collective; 'mismatch' leaves a shape mismatch uncaught;
'absent' has the last rank end without joining a collective, which the 2 s timeout bounds.
Every rank must exit non-zero, soon: each prints when it is ready (its imports and the
process group done, which take longest on a loaded machine), and the test bounds the time from
the last of them to the end."""
import datetime
import sys
import time

import gradflow as gf
import gradflow.distributed as dist

dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=2))
R, W = dist.get_rank(), dist.get_world_size()
print(f"READY {time.time():.3f}", flush=True)
if sys.argv[1] == "absent":
    if R == W - 1:
        sys.exit(0)
    dist.all_reduce(gf.ones(3))
elif sys.argv[1] == "raise":
    if R == W - 1:
        time.sleep(0.2)
        raise ValueError(f"boom from rank {R}")
    dist.all_reduce(gf.ones(3))  # waits for the raising rank, which never comes
else:
    dist.all_reduce(gf.ones(R + 2))
print(f"rank {R} was not stopped", flush=True)
