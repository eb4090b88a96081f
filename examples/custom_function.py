"""A user-defined autograd Function, checked with gradcheck and used in a model.

    python examples/custom_function.py

`SiLU` (x * sigmoid(x)) is written as a Function with its own backward, as one would in
PyTorch with torch.autograd.Function. Its backward uses gradflow's tensor ops, so it is itself
differentiable: gradgradcheck tests the second derivative too. Then a small net built on it
fits a curve.
"""
from __future__ import annotations

import argparse

import gradflow as gf
import gradflow.nn as nn
from gradflow.autograd import Function, gradcheck, gradgradcheck


class SiLU(Function):
    """y = x * sigmoid(x); dy/dx = s * (1 + x * (1 - s)) with s = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x: gf.Tensor) -> gf.Tensor:
        ctx.save_for_backward(x)
        return x * gf.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output: gf.Tensor) -> gf.Tensor:
        (x,) = ctx.saved_tensors
        s = gf.sigmoid(x)
        return grad_output * s * (1 + x * (1 - s))


class SiLUModule(nn.Module):
    def forward(self, x: gf.Tensor) -> gf.Tensor:
        return SiLU.apply(x)


def check_gradients() -> None:
    """Finite differences in float64: first and second derivatives, on awkward values."""
    x = (gf.randn(7, 3, dtype=gf.float64) * 4).requires_grad_()
    gradcheck(SiLU.apply, (x,))
    gradgradcheck(SiLU.apply, (x,))
    diff = (SiLU.apply(x) - x * gf.sigmoid(x)).abs().max().item()
    if diff > 1e-12:
        raise SystemExit(f"SiLU differs from x * sigmoid(x) by {diff:.3g}")
    print(f"gradcheck and gradgradcheck passed; largest difference from x * sigmoid(x): "
          f"{diff:.2e}")


def fit_curve(steps: int) -> float:
    """Fit y = sin(3x) on [-1, 1] with a 1-32-32-1 net that uses the custom activation."""
    x = gf.linspace(-1, 1, 256).unsqueeze(1)
    y = gf.sin(3 * x)
    model = nn.Sequential(nn.Linear(1, 32), SiLUModule(), nn.Linear(32, 32), SiLUModule(),
                          nn.Linear(32, 1))
    optimizer = gf.optim.Adam(model.parameters(), lr=0.01)
    for step in range(1, steps + 1):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, steps // 5) == 0:
            print(f"step {step}: mean squared error {loss.item():.5f}")
    return loss.item()


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args(argv)
    gf.manual_seed(0)
    check_gradients()
    fit_curve(args.steps)


if __name__ == "__main__":
    main()
