"""gradflow.distributed under MPI: scripts in tests/distributed/ run under `mpiexec -n 2`
and `-n 3` (each launch checks many things, since starting MPI is the cost), and the fault
cases bounded in time. Skips when mpi4py or mpiexec is missing (pip install
'gradflow[distributed]')."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "distributed"


def _mpiexec() -> str | None:
    """The mpiexec beside this Python (the mpich wheel's, in a venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install 'gradflow[distributed]'")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(name, None)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _launch(n: int, script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    assert MPIEXEC is not None
    return _run([MPIEXEC, "-n", str(n), sys.executable, str(SCRIPTS / script), *args], timeout)


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_match_numpy_on_every_rank(n):
    proc = _launch(n, "check_collectives.py")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for r in range(n):
        assert f"OK rank {r} of {n}" in proc.stdout, out


@needs_mpi
def test_cuda_tensors_through_both_engines_on_the_fake_gpus():
    # tests/fakecupy.py stands in for CuPy (the fake_cuda fixture's), inside each rank
    proc = _launch(2, "check_fake_cuda.py")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for r in range(2):
        assert f"OK fake cuda rank {r}" in proc.stdout, out


@needs_mpi
def test_init_checks_the_launcher_and_its_arguments():
    proc = _run([sys.executable, str(SCRIPTS / "check_init.py")], timeout=60)
    assert proc.returncode == 0 and "OK init" in proc.stdout, proc.stdout + proc.stderr


@needs_mpi
@pytest.mark.parametrize("mode, message", [
    ("raise", "ValueError: boom from rank 2"),
    ("mismatch", "all_reduce: the ranks' tensors differ: rank 0: shape (2,) float32 on cpu; "
                 "rank 1: shape (3,) float32 on cpu; rank 2: shape (4,) float32 on cpu"),
    ("absent", "waited more than 2 s in all_reduce (the process group's timeout)"),
])
def test_a_failing_rank_ends_every_rank_soon(mode, message):
    proc = _launch(3, "fault.py", mode, timeout=60)
    end = time.time()
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    ready = [float(t) for t in re.findall(r"READY (\d+\.\d{3})", proc.stdout)]  # lines may mix
    assert len(ready) == 3, out
    # from the moment every rank could fail or wait (start-up, slow under load, excluded) to
    # the end: a rank left waiting would be stopped by the 60 s launch timeout instead
    elapsed = end - max(ready)
    assert elapsed < 10, f"the ranks took {elapsed:.1f} s to stop\n{out}"
    assert message in out, out
    assert "was not stopped" not in out, out


@pytest.mark.gpu
def test_nccl_backend_with_world_size_one():
    import gradflow.distributed as dist
    if not dist.is_nccl_available():
        pytest.skip("needs CUDA and CuPy's NCCL binding")
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("needs mpi4py, which carries NCCL's unique id: pip install "
                    "'gradflow[distributed]'")
    proc = _run([sys.executable, str(SCRIPTS / "check_nccl.py")], timeout=120)
    assert proc.returncode == 0 and "OK nccl" in proc.stdout, proc.stdout + proc.stderr
