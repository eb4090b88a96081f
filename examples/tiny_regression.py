"""Fit y = 3x - 2 + noise with a linear model written directly with gradflow tensors.

    python examples/tiny_regression.py [--device auto|cpu|cuda]

Prints the loss every 50 steps and the fitted w, b; exits non-zero if they are off by more
than 0.1 from 3 and -2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import gradflow as gf
except ModuleNotFoundError:  # run from a checkout without installing: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import gradflow as gf

TRUE_W, TRUE_B = 3.0, -2.0
STEPS, LR, N = 200, 0.1, 256


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if gf.cuda.is_available() else "cpu"
    if name == "cuda" and not gf.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available (needs CuPy and a GPU)")
    return name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="where to run (auto: cuda if available, else cpu)")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    print(f"device: {device}")

    gf.manual_seed(0)
    x = gf.randn(N, 1, device=device)
    y = x * TRUE_W + TRUE_B + gf.randn(N, 1, device=device) * 0.1

    w = gf.zeros(1, device=device, requires_grad=True)
    b = gf.zeros(1, device=device, requires_grad=True)

    for step in range(1, STEPS + 1):
        loss = ((x * w + b - y) ** 2).mean()
        loss.backward()
        with gf.no_grad():
            w.sub_(LR * w.grad)
            b.sub_(LR * b.grad)
        w.grad = None
        b.grad = None
        if step % 50 == 0:
            print(f"step {step:4d}  loss {loss.item():.6f}")

    w_fit, b_fit = w.item(), b.item()
    print(f"w = {w_fit:.4f} (true {TRUE_W}), b = {b_fit:.4f} (true {TRUE_B})")
    if abs(w_fit - TRUE_W) > 0.1 or abs(b_fit - TRUE_B) > 0.1:
        raise SystemExit(f"fit failed: w = {w_fit:.4f}, b = {b_fit:.4f}, "
                         f"expected w = {TRUE_W} and b = {TRUE_B} within 0.1")


if __name__ == "__main__":
    main()
