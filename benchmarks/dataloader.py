"""What DataLoader worker processes buy: samples per second for several `num_workers` on a
dataset whose per-sample transform costs about `--sample-ms` of Python and NumPy work.

The transform (a random crop, flip and normalisation of a 3x32x32 image, repeated) is
calibrated once, in the main process, to the requested cost. Each pass is timed from
`iter(loader)` to its last batch, so starting the workers is part of the cost, as it is of an
epoch without persistent workers. Rates are the best of `--repeats` passes; ratios are against
num_workers=0 measured in the same run. Workers cannot beat the cores they get: the report
gives the CPUs this process may use.

    python -m benchmarks.dataloader [--samples N] [--batch B] [--workers 0 1 2]
                                    [--sample-ms MS] [--repeats R] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gradflow.utils.data import DataLoader, Dataset

from .report import environment
from .train_step import at_least


def augment(image: np.ndarray, rng: np.random.Generator, rounds: int) -> np.ndarray:
    """`rounds` times: pad by 4, crop a random 32x32 window, maybe flip, normalise."""
    out = image
    for _ in range(rounds):
        padded = np.pad(out, ((0, 0), (4, 4), (4, 4)), mode="reflect")
        top, left = rng.integers(0, 9, 2)
        out = padded[:, top:top + 32, left:left + 32]
        if rng.random() < 0.5:
            out = out[:, :, ::-1]
        out = (out - out.mean(axis=(1, 2), keepdims=True)) / (out.std() + 1e-6)
    return np.ascontiguousarray(out, dtype=np.float32)


class Augmented(Dataset):
    """`n` random images, each augmented on every read; sample i is (image, label)."""

    def __init__(self, n: int, rounds: int) -> None:
        self.images = np.random.default_rng(0).standard_normal((n, 3, 32, 32)).astype(np.float32)
        self.rounds = rounds

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple:
        rng = np.random.default_rng(i)
        return augment(self.images[i], rng, self.rounds), i % 10


def calibrate(sample_ms: float) -> tuple[int, float]:
    """(rounds, measured ms per sample) making one sample cost about `sample_ms`."""
    image = np.random.default_rng(1).standard_normal((3, 32, 32)).astype(np.float32)
    rng = np.random.default_rng(2)
    augment(image, rng, 10)
    start = time.perf_counter()
    augment(image, rng, 200)
    per_round = (time.perf_counter() - start) * 1e3 / 200
    rounds = max(1, round(sample_ms / per_round))
    return rounds, rounds * per_round


def samples_per_s(dataset: Dataset, batch: int, workers: int, repeats: int) -> float:
    """The best rate over `repeats` full passes, worker start included."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        seen = sum(len(labels) for _, labels in loader)
        best = min(best, time.perf_counter() - start)
    assert seen == len(dataset), f"a pass saw {seen} of {len(dataset)} samples"
    return len(dataset) / best


def measure(samples: int, batch: int, workers: list[int], sample_ms: float,
            repeats: int) -> dict[str, Any]:
    rounds, measured_ms = calibrate(sample_ms)
    dataset = Augmented(samples, rounds)
    rows: list[dict[str, Any]] = [
        {"num_workers": w, "samples_per_s": samples_per_s(dataset, batch, w, repeats)}
        for w in workers]
    base = next((r["samples_per_s"] for r in rows if r["num_workers"] == 0), None)
    for r in rows:
        r["ratio_vs_0"] = None if base is None else r["samples_per_s"] / base
    return {"rounds": rounds, "sample_ms": measured_ms, "rows": rows}


def format_report(result: dict[str, Any], cpus: int) -> str:
    lines = [f"per-sample transform: {result['sample_ms']:.2f} ms ({result['rounds']} rounds); "
             f"{cpus} CPUs usable",
             f"{'num_workers':>11} {'samples/s':>10} {'vs 0 workers':>12}"]
    for r in result["rows"]:
        ratio = "n/a" if r["ratio_vs_0"] is None else f"{r['ratio_vs_0']:.2f}"
        lines.append(f"{r['num_workers']:>11} {r['samples_per_s']:>10.0f} {ratio:>12}")
    return "\n".join(lines)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dataloader",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=at_least(1), default=2000,
                        help="dataset size (default 2000)")
    parser.add_argument("--batch", type=at_least(1), default=32, help="batch size (default 32)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                        help="num_workers values to time (default 0 1 2)")
    parser.add_argument("--sample-ms", type=float, default=1.0,
                        help="target cost of one sample's transform (default 1.0 ms)")
    parser.add_argument("--repeats", type=at_least(1), default=3,
                        help="passes per setting; the best counts (default 3)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if any(w < 0 for w in args.workers):
        parser.error(f"--workers must be non-negative, got {args.workers}")
    result = measure(args.samples, args.batch, args.workers, args.sample_ms, args.repeats)
    cpus = usable_cpus()
    print(format_report(result, cpus))
    notes = ["rates are the best pass; each pass starts its workers (no persistent_workers)",
             "ratios above 1: the workers are faster than loading in the main process"]
    for note in notes:
        print(f"note: {note}")
    if args.json is not None:
        run = {"environment": environment("cpu", "fp32", None),
               "settings": {"samples": args.samples, "batch": args.batch,
                            "workers": args.workers, "sample_ms": args.sample_ms,
                            "repeats": args.repeats, "cpus": cpus},
               "notes": notes, **result}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(run, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
