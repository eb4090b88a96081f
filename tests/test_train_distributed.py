"""The training command under a launcher: `mpiexec -n 2 python -m gradflow.train` trains
data-parallel, rank 0 alone prints and writes, and its checkpoints resume, also under
another number of processes at an epoch's end (and are refused, naming why, in an epoch's
middle).

Each rank runs in a folder of its own (MPMD sections with -wdir), as on machines that share
no disk: so a file rank 1 wrote would show, and a resume works only if rank 0 hands the
checkpoint to the others.
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradflow as gf
import gradflow.distributed as dist
from gradflow.train import INTERRUPTED, main, parallel
from gradflow.train.cli import USAGE_ERROR, Run, StopRequest, build_parser

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}"
                       f"{os.environ.get('PATH', '')}")
MISSING = ("mpi4py" if importlib.util.find_spec("mpi4py") is None
           else "mpiexec" if MPIEXEC is None else None)
needs_mpi = pytest.mark.skipif(MISSING is not None, reason=f"needs {MISSING}: pip install "
                               "'gradflow[distributed]' (mpi4py, and mpich with its mpiexec)")
# 100 images, 10 per rank per step: 5 steps an epoch on 2 ranks, 10 in one process
TINY = ["--model", "mlp", "--subset", "100", "--epochs", "2", "--batch-size", "10",
        "--lr", "0.05", "--threads", "1"]
STEPS_2, STEPS_1 = 5, 10


def _launch(tmp_path: Path, argv: list[str], ranks: int = 2) -> subprocess.CompletedProcess:
    """`mpiexec` with rank r in tmp_path/rank{r}; the output of every rank, joined."""
    command = [MPIEXEC]
    for rank in range(ranks):
        folder = tmp_path / f"rank{rank}"
        folder.mkdir(exist_ok=True)
        command += ([":"] if rank else []) + ["-n", "1", "-wdir", str(folder), sys.executable,
                                              "-m", "gradflow.train", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120,
                          stdin=subprocess.DEVNULL)  # mpiexec forwards stdin to rank 0


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1"}


def _params(path: Path) -> dict:
    return gf.load(path)["model"]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An uninterrupted run on two ranks: (the launch, rank 0's --out, the tmp folder)."""
    tmp = tmp_path_factory.mktemp("whole")
    done = _launch(tmp, TINY + ["--out", "run"])
    assert done.returncode == 0, done.stdout + done.stderr
    return done, tmp / "rank0" / "run", tmp


@needs_mpi
def test_two_ranks_train_and_rank_0_alone_prints_and_writes(whole):
    done, out, tmp = whole
    assert done.stdout.count("test accuracy") == 1, done.stdout
    assert done.stdout.count("total parameters:") == 1, done.stdout
    assert "data-parallel on 2 processes (mpi): 10 images per step on each, 20 in all" \
        in done.stdout
    assert {"last.ckpt", "best.ckpt", "metrics.csv"} <= {p.name for p in out.iterdir()}
    assert not any(p.name.endswith(".tmp") for p in out.iterdir()), list(out.iterdir())
    assert list((tmp / "rank1").iterdir()) == [], "rank 1 wrote files"
    ckpt = gf.load(out / "last.ckpt")
    assert ckpt["world_size"] == 2 and ckpt["epoch"] == 2
    assert not any(k.startswith("module.") for k in ckpt["model"]), list(ckpt["model"])
    assert ckpt["scheduler"]["last_epoch"] == 2 * STEPS_2  # the per-step cosine's count
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3, rows
    history = ckpt["history"]  # (that the sums cover every rank: the fake-GPU test below)
    assert all(0 < row["train_loss"] < 5 and 0 <= row["train_acc"] <= 1 for row in history)
    assert history[1]["val_loss"] < history[0]["train_loss"], history


@needs_mpi
def test_resume_under_the_launcher_matches_an_uninterrupted_run(whole, tmp_path, capsys):
    _, whole_out, _ = whole
    stopped = _launch(tmp_path, TINY + ["--out", "run", "--max-steps", "3"])
    assert stopped.returncode == INTERRUPTED, stopped.stdout + stopped.stderr
    assert stopped.stdout.count("continue with --resume") == 1, stopped.stdout
    out = tmp_path / "rank0" / "run"
    shutil.copy(out / "last.ckpt", tmp_path / "middle.ckpt")
    resumed = _launch(tmp_path, TINY + ["--out", "run", "--resume"])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from run/last.ckpt: epoch 1, step 3" in resumed.stdout
    whole_params, parts = _params(whole_out / "last.ckpt"), _params(out / "last.ckpt")
    for key in whole_params:
        np.testing.assert_array_equal(parts[key].numpy(), whole_params[key].numpy(),
                                      err_msg=key)
    a, b = gf.load(whole_out / "last.ckpt")["history"], gf.load(out / "last.ckpt")["history"]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        np.testing.assert_allclose([r[key] for r in b], [r[key] for r in a], rtol=1e-6,
                                   err_msg=key)

    # a checkpoint from the middle of an epoch keeps its number of processes
    capsys.readouterr()
    assert main(TINY + ["--out", str(tmp_path / "single"), "--resume",
                        str(tmp_path / "middle.ckpt")]) == USAGE_ERROR
    assert "stopped in the middle of epoch 1 with 2 processes" in capsys.readouterr().err


def test_mid_epoch_checkpoint_under_another_world_size_is_refused_by_name(tmp_path, capsys):
    gf.save({"args": {}, "step": 3, "epoch": 0, "world_size": 2}, tmp_path / "middle.ckpt")
    capsys.readouterr()
    assert main(TINY + ["--out", str(tmp_path / "run"), "--resume",
                        str(tmp_path / "middle.ckpt")]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for needle in ("stopped in the middle of epoch 1 with 2 processes",
                   "this run has 1 process", "finish the epoch with 2 processes and "
                   f"--max-steps {STEPS_2 - 3}"):
        assert needle in err, (needle, err)


@needs_mpi
def test_an_epoch_end_checkpoint_resumes_under_another_world_size(tmp_path):
    stopped = _launch(tmp_path, TINY + ["--out", "run", "--max-steps", str(STEPS_2)])
    assert stopped.returncode == INTERRUPTED, stopped.stdout + stopped.stderr
    assert "stopped after epoch 1" in stopped.stdout
    out = tmp_path / "rank0" / "run"
    assert main(TINY + ["--out", str(out), "--resume"]) == 0  # one process now
    ckpt = gf.load(out / "last.ckpt")
    assert ckpt["world_size"] == 1 and len(ckpt["history"]) == 2
    # the per-step cosine was re-planned over one process's 10 steps an epoch: it ends at 0
    assert (ckpt["scheduler"]["T_max"], ckpt["scheduler"]["last_epoch"]) == (2 * STEPS_1,
                                                                             2 * STEPS_1)
    assert math.isclose(ckpt["history"][1]["lr"], 0.025, rel_tol=1e-9), ckpt["history"]
    assert ckpt["optimizer"]["param_groups"][0]["lr"] < 1e-12


@needs_mpi
def test_a_refusal_on_one_rank_is_every_rank_s_in_one_line(tmp_path):
    # rank 0's --out holds a previous run, rank 1's (another machine's disk) does not: both
    # ranks must refuse, rather than rank 1 waiting for rank 0 in a collective
    (tmp_path / "rank0" / "run").mkdir(parents=True)
    (tmp_path / "rank0" / "run" / "last.ckpt").write_bytes(b"")
    done = _launch(tmp_path, TINY + ["--out", "run"])
    assert done.returncode == USAGE_ERROR, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines == ["python -m gradflow.train: error: --out run holds a previous run "
                     "(last.ckpt): continue it with --resume, replace it with --exist-ok, or "
                     "choose another --out"], done.stderr
    assert done.stdout == ""


@needs_mpi
def test_more_processes_than_gpus_on_a_machine_is_refused_on_every_rank(tmp_path):
    script = ("import sys\n"
              "import gradflow.cuda\n"
              "gradflow.cuda.device_count = lambda: 1\n"
              "from mpi4py import MPI\n"
              "from gradflow.train import parallel\n"
              "try:\n"
              "    parallel.check_gpus_per_machine()\n"
              "    said = 'accepted'\n"
              "except parallel.LaunchError as err:\n"
              "    said = f'refused: {err}'\n"
              "open(f'{MPI.COMM_WORLD.Get_rank()}.txt', 'w').write(said)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    for rank in (0, 1):
        said = (tmp_path / f"{rank}.txt").read_text()
        assert said.startswith("refused: one process per GPU: machine "), said
        assert "runs 2 processes but has 1 GPU; launch at most 1 there (mpiexec -ppn), or " \
               "train on the CPU with --device cpu" in said, said


@needs_mpi
def test_ctrl_c_stops_every_rank_at_an_agreed_step_after_saving(tmp_path):
    # mpiexec passes the Ctrl-C on to the ranks; they stop together at a multiple of 20 steps
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "gradflow.train", "--model", "mlp",
               "--epochs", "20", "--batch-size", "10", "--threads", "1", "--out", "run"]
    launch = subprocess.Popen(command, cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = b""
    while b"batch/s" not in seen:  # the progress bar: the loop has started
        chunk = os.read(launch.stdout.fileno(), 4096)
        assert chunk, seen.decode()
        seen += chunk
    launch.send_signal(signal.SIGINT)
    rest, _ = launch.communicate(timeout=60)
    text = (seen + rest).decode()
    assert launch.returncode == INTERRUPTED, text
    assert text.count("continue with --resume") == 1, text
    ckpt = gf.load(tmp_path / "run" / "last.ckpt")
    assert ckpt["step"] > 0 and ckpt["step"] % 20 == 0, ckpt["step"]


class _TwinRanks(parallel.ProcessGroup):
    """Rank 1 of two ranks that see the same numbers, on one process: an all-reduce SUM
    doubles, MAX and broadcasts keep; every collective's tensor is recorded."""

    def __init__(self) -> None:
        self.rank, self.size, self.local_rank, self.backend = 1, 2, 1, "nccl"
        self.seen: list = []
        twin = self

        class Dist:
            ReduceOp = dist.ReduceOp

            @staticmethod
            def all_reduce(t, op):
                twin.seen.append(t.device)
                if op == dist.ReduceOp.SUM:
                    t.array[...] *= 2

            @staticmethod
            def broadcast(t, src):
                twin.seen.append(t.device)

        self.dist = Dist


def test_a_rank_trains_on_the_gpu_of_its_local_rank(fake_cuda_launch_only, tmp_path):
    group = _TwinRanks()
    args = build_parser().parse_args(TINY + ["--device", "cuda", "--out", str(tmp_path)])
    run = Run(args, group)
    assert run.device == "cuda:1" and gf.cuda.current_device() == 1
    assert {p.device for p in run.model.parameters()} == {gf.device("cuda:1")}
    assert (run.sampler.rank, run.sampler.num_replicas, run.steps_per_epoch) == (1, 2, STEPS_2)
    with StopRequest(max_steps=1) as stop:
        assert run.train_epoch(stop) is None  # --max-steps 1: the ranks agree to stop
    assert run.partial[2] == 2 * 10  # both ranks' images: the sums were all-reduced
    run.evaluate(run.val)
    assert group.seen and set(group.seen) == {gf.device("cuda:1")}, group.seen
    assert fake_cuda_launch_only.count("device_mismatch") == 0


def test_a_launch_without_mpi4py_is_refused_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PMI_SIZE", "2")  # as mpiexec -n 2 sets it
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py: ImportError
    assert main(TINY + ["--out", str(tmp_path / "run")]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert err == ("python -m gradflow.train: error: launched as one of 2 MPI processes, but "
                   "mpi4py is not installed, so they cannot train together: pip install "
                   "'gradflow[distributed]'\n"), err
    assert not (tmp_path / "run").exists()


@needs_mpi
def test_torchrun_is_refused_naming_mpiexec(tmp_path):
    env = {**_env(), "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    done = subprocess.run([sys.executable, "-m", "gradflow.train", *TINY, "--out", "run"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == USAGE_ERROR, done.stdout + done.stderr
    assert done.stderr.startswith("python -m gradflow.train: error: ") and \
        done.stderr.count("\n") == 1, done.stderr
    assert "launch with `mpiexec -n 2" in done.stderr, done.stderr
    assert not (tmp_path / "run").exists()
