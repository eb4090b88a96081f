"""Data-parallel training on the CPU: step time on 1 and N ranks, and how much of the step
waits for the gradients' all-reduce.

The command launches itself under `mpiexec -n R` once per `--ranks` value (each rank one
BLAS thread). Every rank trains the same small net on a batch of `--batch` random images of
its own (weak scaling: the global batch grows with the ranks). One rank is the plain model,
as `python -m gradflow.train` runs it; more ranks wrap it in DistributedDataParallel. A step
is zero_grad, forward, cross-entropy, backward (during which DDP launches each bucket's
all-reduce as its gradients become ready) and SGD with momentum.

Per world size it reports rank 0's median step, the ratio to one rank's step, the scaling
efficiency (images per second over R times one rank's), and two measures of the all-reduce:
- `wait`: from the last gradient ready to the averaged gradients in place, from DDP's
  `reduction_trace`: the part of the all-reduce that backward did not hide;
- `sync`: the step under DDP against the same step inside `no_sync()` (no all-reduce at all),
  as a share of the synced step: everything the all-reduces cost, overlapped or not.

    python -m benchmarks.distributed [--ranks 1 2] [--nets lenet5 mlp] [--batch B]
                                     [--warmup W] [--steps S] [--rounds K] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import gradflow as gf
from gradflow import models, nn, optim

from .report import environment
from .train_step import at_least

NETS = {  # name: (builder, input shape); lenet5: 62k parameters, mlp: 536k
    "lenet5": (lambda: models.lenet5(10), (1, 28, 28)),
    "mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(),
                                  nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)),
            (1, 28, 28)),
}
ROOT = Path(__file__).resolve().parents[1]


def find_mpiexec() -> str | None:
    """The mpiexec beside this Python (the mpich wheel's), else the one on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return shutil.which("mpiexec", path=path)


# -- one rank's side (run under mpiexec) ------------------------------------------------------
def _step(model: nn.Module, opt: optim.Optimizer, x: gf.Tensor, y: gf.Tensor) -> None:
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def time_net(name: str, batch: int, warmup: int, steps: int, rounds: int) -> dict[str, Any]:
    """This rank's timings of net `name`: per round a synced block, then (on several ranks)
    a no_sync block, each of `warmup` untimed and `steps` timed steps."""
    import gradflow.distributed as dist
    world, rank = dist.get_world_size(), dist.get_rank()
    gf.manual_seed(0)
    build, shape = NETS[name]
    model = build()
    net = model if world == 1 else nn.parallel.DistributedDataParallel(model)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    x = gf.tensor(rng.standard_normal((batch, *shape), dtype=np.float32))
    y = gf.tensor(rng.integers(0, 10, batch))
    synced: list[float] = []
    unsynced: list[float] = []
    waits: list[float] = []
    for _ in range(rounds):
        for block, times in ((True, synced), (False, unsynced)):
            if not block and world == 1:
                continue
            dist.barrier()
            for i in range(warmup + steps):
                start = time.perf_counter()
                if block:
                    _step(net, opt, x, y)
                else:
                    with net.no_sync():
                        _step(net, opt, x, y)
                elapsed = (time.perf_counter() - start) * 1e3
                if i >= warmup:
                    times.append(elapsed)
                    trace = net.reduction_trace if block and world > 1 else None
                    if trace is not None:
                        waits.append((trace.finished - trace.last_grad_ready) * 1e3)
    step_ms = float(np.median(synced))
    row: dict[str, Any] = {"net": name, "ranks": world, "batch_per_rank": batch,
                           "parameters": sum(p.numel() for p in model.parameters()),
                           "step_ms": step_ms,
                           "step_ms_p10_p90": [float(v) for v in np.percentile(synced, [10, 90])],
                           "images_per_s": world * batch / (step_ms / 1e3)}
    if world > 1:
        row["buckets"] = len(net.bucket_parameter_names)
        row["wait_ms"] = float(np.median(waits))
        row["no_sync_step_ms"] = float(np.median(unsynced))
    return row


def worker(args: argparse.Namespace) -> int:
    import gradflow.distributed as dist
    dist.init_process_group("mpi")
    gf.set_num_threads(1)
    rows = [time_net(name, args.batch, args.warmup, args.steps, args.rounds)
            for name in args.nets]
    if dist.get_rank() == 0:
        Path(args.worker).write_text(json.dumps(rows))
    dist.destroy_process_group()
    return 0


# -- the command ------------------------------------------------------------------------------
def launch(mpiexec: str, ranks: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Rank 0's rows from `mpiexec -n ranks python -m benchmarks.distributed --worker`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "benchmarks.distributed",
                   "--worker", str(out), "--nets", *args.nets, "--batch", str(args.batch),
                   "--warmup", str(args.warmup), "--steps", str(args.steps),
                   "--rounds", str(args.rounds)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
        # NOTE: mpiexec forwards its stdin to rank 0: without DEVNULL a launch from a
        # background job can stop on reading the terminal
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])} ... exited {done.returncode}:\n"
                               f"{done.stdout}{done.stderr}")
        return json.loads(out.read_text())


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's step against the same net's one-rank step, its scaling efficiency and its
    all-reduce shares (None where the row has no reference or no all-reduce)."""
    base = {r["net"]: r for r in rows if r["ranks"] == 1}
    for r in rows:
        one = base.get(r["net"])
        r["step_vs_1_rank"] = None if one is None else r["step_ms"] / one["step_ms"]
        r["efficiency"] = None if one is None else \
            r["images_per_s"] / (r["ranks"] * one["images_per_s"])
        r["wait_share"] = r["wait_ms"] / r["step_ms"] if "wait_ms" in r else None
        r["sync_share"] = (1 - r["no_sync_step_ms"] / r["step_ms"]) \
            if "no_sync_step_ms" in r else None


def format_report(rows: list[dict[str, Any]]) -> str:
    def cell(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    lines = [f"{'net':<7} {'ranks':>5} {'step ms':>8} {'vs 1 rank':>9} {'img/s':>7} "
             f"{'efficiency':>10} {'wait share':>10} {'sync share':>10}"]
    for r in rows:
        lines.append(f"{r['net']:<7} {r['ranks']:>5} {r['step_ms']:>8.2f} "
                     f"{cell(r['step_vs_1_rank'], '.2f'):>9} {r['images_per_s']:>7.0f} "
                     f"{cell(r['efficiency'], '.2f'):>10} {cell(r['wait_share'], '.1%'):>10} "
                     f"{cell(r['sync_share'], '.1%'):>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=at_least(1), nargs="+", default=[1, 2],
                        help="world sizes to time (default 1 2)")
    parser.add_argument("--nets", nargs="+", choices=sorted(NETS), default=["lenet5", "mlp"],
                        help="nets to time (default lenet5 mlp)")
    parser.add_argument("--batch", type=at_least(1), default=32,
                        help="images per rank per step (default 32)")
    parser.add_argument("--warmup", type=at_least(0), default=3,
                        help="untimed steps per block (default 3)")
    parser.add_argument("--steps", type=at_least(1), default=20,
                        help="timed steps per block (default 20)")
    parser.add_argument("--rounds", type=at_least(1), default=2,
                        help="synced and no_sync blocks per net (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--worker", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args)
    mpiexec = find_mpiexec()
    if mpiexec is None:
        print("benchmarks.distributed: needs mpiexec and mpi4py: pip install "
              "'gradflow[distributed]'", file=sys.stderr)
        return 1
    load = os.getloadavg()[0]  # a shared machine's other work competes with the ranks
    rows = [row for ranks in args.ranks for row in launch(mpiexec, ranks, args)]
    add_ratios(rows)
    print(format_report(rows))
    notes = [f"{os.cpu_count()} CPUs, load average {load:.1f} at the start; each rank runs one "
             f"BLAS thread; batch {args.batch} per rank (the global batch grows with the ranks)",
             "wait share: the all-reduce time backward did not hide (DDP's reduction_trace); "
             "sync share: 1 - no_sync step / synced step"]
    for note in notes:
        print(f"note: {note}")
    if args.json is not None:
        run = {"environment": environment("cpu", "fp32", None),
               "settings": {k: getattr(args, k) for k in ("ranks", "nets", "batch", "warmup",
                                                          "steps", "rounds")},
               "notes": notes, "rows": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(run, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
