"""LeNet-5 on the bundled digits in float32 and under autocast: test accuracy of each.

Trains `python -m gradflow.train` (its defaults: 8 epochs, SGD with momentum, cosine
schedule, seed 0) once per --amp setting and prints each run's test accuracy and its
distance from the float32 run's. Issue 21 asks bf16 to end within 0.5 points of fp32.

    python -m benchmarks.amp_lenet [--device cpu|cuda] [--amp bf16,fp16] [--epochs N]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import tempfile
from pathlib import Path

from gradflow.train import cli


def test_accuracy(amp: str, device: str, epochs: int, out: Path) -> float:
    """The test accuracy (percent) of one training run with `--amp amp`."""
    text = io.StringIO()
    argv = ["--amp", amp, "--device", device, "--epochs", str(epochs), "--out", str(out),
            "--exist-ok"]
    with contextlib.redirect_stdout(text), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(argv)
    found = re.search(r"test accuracy ([0-9.]+)%", text.getvalue())
    if code != 0 or found is None:
        raise RuntimeError(f"gradflow.train {' '.join(argv)} failed (exit {code}):\n"
                           f"{text.getvalue()[-2000:]}")
    return float(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.amp_lenet",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--amp", default="bf16", help="comma list of bf16, fp16")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for amp in ["none", *args.amp.split(",")]:
            results[amp] = test_accuracy(amp, args.device, args.epochs, Path(tmp) / amp)
            print(f"{amp:>5}: test accuracy {results[amp]:.2f}%"
                  + ("" if amp == "none" else
                     f" ({results[amp] - results['none']:+.2f} points from fp32)"), flush=True)
    worst = max(abs(v - results["none"]) for v in results.values())
    print(f"largest distance from fp32: {worst:.2f} points (target: at most 0.5)")
    return 0 if worst <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
