"""Finite-difference gradient checks (the seeds' recommended debugging tool).

`gradcheck` compares the analytic Jacobian, built one backward pass per output element, with
central differences in float64; `gradgradcheck` does the same for the gradient function itself.
With `fast_mode=True` (torch's name) both check one random direction per input instead, as
Chainer's `check_backward` does: two evaluations of `fn` per input however large it is.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .. import dtypes
from ..backend import CPU, move_array
from ..tensor import Tensor
from .engine import run_backward
from .grad_mode import enable_grad, no_grad


class GradcheckError(RuntimeError):
    """Raised when analytic and numerical gradients disagree."""


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn: Callable, inputs: tuple) -> list:
    return [o for o in _as_tuple(fn(*inputs))
            if isinstance(o, Tensor) and dtypes.is_floating(o.dtype)]


def _snapshot(t: Tensor) -> np.ndarray:
    """A float64 host copy: outputs may be views of the input being perturbed."""
    return np.array(move_array(t.array, CPU), dtype=np.float64).ravel()


def _numerical(fn: Callable, inputs: tuple, wrt: list, eps: float) -> list:
    """d(outputs)/d(input) by central differences: one (n_out, n_in) matrix per input."""
    jacobians = []
    with no_grad():
        for i in wrt:
            x = inputs[i]
            flat = x.array.reshape(-1)  # NOTE: a view when contiguous, which we require
            cols = []
            for k in range(flat.size):
                orig = flat[k].item()
                flat[k] = orig + eps
                plus = [_snapshot(o) for o in _outputs(fn, inputs)]
                flat[k] = orig - eps
                minus = [_snapshot(o) for o in _outputs(fn, inputs)]
                flat[k] = orig
                cols.append(np.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)]))
            jacobians.append(np.stack(cols, axis=1) if cols else np.zeros((0, 0)))
    return jacobians


def _analytic(fn: Callable, inputs: tuple, wrt: list) -> list:
    outs = _outputs(fn, inputs)
    n_out = sum(o.numel() for o in outs)
    jac = [np.zeros((n_out, inputs[i].numel())) for i in wrt]
    row = 0
    for o in outs:
        for k in range(o.numel()):
            seed = o._xp.zeros(o.shape, o.dtype)
            seed.reshape(-1)[k] = 1
            if o.requires_grad:
                grads = run_backward([o], [Tensor._wrap(seed)], retain_graph=True,
                                     create_graph=False, inputs=[inputs[i] for i in wrt],
                                     allow_unused=True, what="gradcheck")
                for j, g in enumerate(grads):
                    if g is not None:
                        jac[j][row] = move_array(g.array, CPU).ravel()
            row += 1
    return jac


def _directional(fn: Callable, inputs: tuple, wrt: list, eps: float, seed: int) -> list:
    """(analytic, numerical) derivative of <v, fn(x)> along a random direction d_i, per input.

    NOTE: d/dt <v, f(x + t d)> at t=0 is <J^T v, d>; the analytic side is one backward pass
    seeded with v, the numerical side a central difference in t (Chainer's check_backward).
    """
    rng = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    weights = [rng.standard_normal(tuple(o.shape)) for o in outs]
    live = [(o, w) for o, w in zip(outs, weights) if o.requires_grad]
    grads = [None] * len(wrt)
    if live:
        grads = run_backward([o for o, _ in live],
                             [Tensor._wrap(move_array(w.astype(o.dtype), o.device))
                              for o, w in live],
                             retain_graph=False, create_graph=False,
                             inputs=[inputs[i] for i in wrt], allow_unused=True,
                             what="gradcheck")

    def weighted(outs) -> float:
        return sum(float(_snapshot(o) @ w.ravel()) for o, w in zip(outs, weights))

    results = []
    with no_grad():
        for i, g in zip(wrt, grads):
            x = inputs[i]
            d = rng.standard_normal(tuple(x.shape))
            analytic = 0.0 if g is None else float(move_array(g.array, CPU).ravel() @ d.ravel())
            orig = x.array.copy()
            step = move_array(eps * d, x.device)
            x.array[...] = orig + step
            plus = weighted(_outputs(fn, inputs))
            x.array[...] = orig - step
            minus = weighted(_outputs(fn, inputs))
            x.array[...] = orig
            results.append((analytic, (plus - minus) / (2 * eps)))
    return results


def gradcheck(fn: Callable, inputs: Sequence | Tensor, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, fast_mode: bool = False,
              seed: int = 0) -> bool:
    """Check the gradients of `fn` at `inputs` against finite differences (torch's gradcheck).

    Inputs that require grad must be float64 and contiguous so that small perturbations are
    meaningful. The full check covers every Jacobian entry, so keep the inputs small; with
    `fast_mode` it compares one random directional derivative per input (direction and output
    weights drawn from `seed`), which suits large inputs. A wrong gradient then shows unless
    its error happens to be orthogonal to the direction, but one wrong element among n moves
    the result only about 1/sqrt(n) as much: rerun without `fast_mode` to find the entry.
    """
    inputs = _as_tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad; nothing to check")
    for i in wrt:
        x = inputs[i]
        if x.dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} is {x.dtype}; finite differences need "
                             "float64 inputs")
        if not x.is_contiguous():
            raise ValueError(f"gradcheck: input {i} must be contiguous")
    if fast_mode:
        return _check_directional(fn, inputs, wrt, eps, atol, rtol, seed, raise_exception)
    numerical = _numerical(fn, inputs, wrt, eps)
    analytic = _analytic(fn, inputs, wrt)
    for i, num, ana in zip(wrt, numerical, analytic):
        if not np.allclose(ana, num, rtol=rtol, atol=atol, equal_nan=False):
            err = np.abs(ana - num)
            r, c = np.unravel_index(np.argmax(err), err.shape)
            msg = (f"gradcheck: Jacobian mismatch for input {i} (shape "
                   f"{tuple(inputs[i].shape)}): at output element {r}, input element {c} the "
                   f"analytic value is {ana[r, c]:.8g} but finite differences give "
                   f"{num[r, c]:.8g}\nanalytic:\n{ana}\nnumerical:\n{num}")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def _check_directional(fn: Callable, inputs: tuple, wrt: list, eps: float, atol: float,
                       rtol: float, seed: int, raise_exception: bool) -> bool:
    for i, (ana, num) in zip(wrt, _directional(fn, inputs, wrt, eps, seed)):
        if not np.isclose(ana, num, rtol=rtol, atol=atol, equal_nan=False):
            msg = (f"gradcheck (fast_mode): directional derivative mismatch for input {i} "
                   f"(shape {tuple(inputs[i].shape)}): along a random direction (seed {seed}) "
                   f"the analytic value is {ana:.10g} but finite differences give {num:.10g}; "
                   "rerun with fast_mode=False to find the wrong Jacobian entry")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(fn: Callable, inputs: Sequence | Tensor, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0,
                  raise_exception: bool = True, fast_mode: bool = False) -> bool:
    """Check second derivatives: gradcheck of (inputs -> grad of <fn(inputs), v>) for a fixed
    random v, which exercises every backward rule under create_graph=True; `fast_mode` as in
    gradcheck."""
    inputs = _as_tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    with no_grad():
        outs = _outputs(fn, inputs)
    rng = np.random.default_rng(seed)
    weights = [Tensor._wrap(move_array(rng.standard_normal(o.shape), o.device)) for o in outs]

    def first_grads(*xs):
        with enable_grad():
            return _first_grads(xs)

    def _first_grads(xs):
        outs = _outputs(fn, xs)
        grads = run_backward(outs, weights, retain_graph=True, create_graph=True,
                             inputs=[xs[i] for i in wrt], allow_unused=True,
                             what="gradgradcheck")
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_grads, inputs, eps, atol, rtol, raise_exception, fast_mode,
                     seed + 1)
