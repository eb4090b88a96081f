"""One helper checks an op against PyTorch (forward values and gradients, first and second
order) from a single lambda `fn(lib, *tensors)` that runs with lib=gradflow or lib=torch."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf

try:
    import torch
except ImportError:  # parity tests skip without it
    torch = None


def require_torch():
    if torch is None:
        # NOTE: allowed at module level too, so a torch-only test file skips, never errors
        pytest.skip("PyTorch is not installed: the parity reference is unavailable",
                    allow_module_level=True)
    return torch


def to_numpy(x) -> np.ndarray:
    if isinstance(x, gf.Tensor):
        return x.detach().cpu().numpy()
    return x.detach().numpy(force=True)


def as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def float_outputs(outs) -> list:
    return [o for o in as_tuple(outs) if o.dtype in (gf.float32, gf.float64, gf.float16)
            or getattr(o, "is_floating_point", lambda: False)()]


def gf_input(arr: np.ndarray, device: str, noncontiguous: bool = False,
             requires_grad: bool = True) -> gf.Tensor:
    """A leaf tensor holding `arr`; with `noncontiguous`, a strided view of a larger array."""
    if noncontiguous and arr.ndim >= 2:
        rev = tuple(range(arr.ndim))[::-1]
        t = gf.tensor(np.ascontiguousarray(arr.transpose(rev)), device=device).permute(*rev)
    elif noncontiguous and arr.ndim == 1:
        padded = np.zeros(2 * arr.size, arr.dtype)
        padded[::2] = arr
        t = gf.tensor(padded, device=device)[::2]
    else:
        t = gf.tensor(arr, device=device)
    return t.requires_grad_(requires_grad and arr.dtype.kind == "f")


def _weights(outs, rng) -> list:
    return [None if o is None else rng.standard_normal(tuple(o.shape)) for o in outs]


def _weighted_sum(lib, outs, weights, device):
    total = None
    for o, w in zip(outs, weights):
        wt = (gf.tensor(w, dtype=o.dtype, device=device) if lib is gf
              else torch.tensor(w, dtype=o.dtype))
        term = (o * wt).sum()
        total = term if total is None else total + term
    return total


def check_op(fn, *arrays, device="cpu", noncontiguous=False, atol=1e-6, rtol=1e-5,
             second_order=True):
    """Compare fn's outputs, gradients and (optionally) second derivatives with PyTorch."""
    th = require_torch()
    rng = np.random.default_rng(1)
    gf_in = [gf_input(a, device, noncontiguous) for a in arrays]
    th_in = [th.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    gf_out, th_out = as_tuple(fn(gf, *gf_in)), as_tuple(fn(th, *th_in))
    assert len(gf_out) == len(th_out), "different number of outputs"
    for g, t in zip(gf_out, th_out):
        assert tuple(g.shape) == tuple(t.shape), f"shape {tuple(g.shape)} != {tuple(t.shape)}"
        assert str(g.dtype) == str(t.dtype).replace("torch.", ""), f"{g.dtype} vs {t.dtype}"
        np.testing.assert_allclose(to_numpy(g), to_numpy(t), atol=atol, rtol=rtol,
                                   err_msg="forward values differ from PyTorch")
    diff_idx = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    outs = [i for i, o in enumerate(th_out) if o.requires_grad]
    if not diff_idx or not outs:
        return
    weights = _weights([th_out[i] for i in outs], rng)
    gf_loss = _weighted_sum(gf, [gf_out[i] for i in outs], weights, device)
    th_loss = _weighted_sum(th, [th_out[i] for i in outs], weights, device)
    gf_g = gf.autograd.grad(gf_loss, [gf_in[i] for i in diff_idx], create_graph=second_order,
                            allow_unused=True)
    th_g = th.autograd.grad(th_loss, [th_in[i] for i in diff_idx], create_graph=second_order,
                            allow_unused=True)
    for i, g, t in zip(diff_idx, gf_g, th_g):
        expect = np.zeros(arrays[i].shape) if t is None else to_numpy(t)
        got = np.zeros(arrays[i].shape) if g is None else to_numpy(g)
        np.testing.assert_allclose(got, expect, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {i} differs from PyTorch")
    if not second_order:
        return
    # NOTE: a first gradient that is constant in the inputs (abs, relu) has no graph in
    # gradflow; its second derivative is then zero, which is what PyTorch must report too.
    pairs = [(g, t, w) for g, t, w in zip(gf_g, th_g, _weights(th_g, rng))
             if t is not None and t.requires_grad]
    if not pairs:
        return
    th_gg = th.autograd.grad(_weighted_sum(th, [t for _, t, _ in pairs], [w for *_, w in pairs],
                                           device),
                             [th_in[i] for i in diff_idx], allow_unused=True)
    live = [(g, w) for g, _, w in pairs if g is not None and g.requires_grad]
    gf_gg = [None] * len(diff_idx)
    if live:
        gf_gg = gf.autograd.grad(_weighted_sum(gf, [g for g, _ in live], [w for _, w in live],
                                               device),
                                 [gf_in[i] for i in diff_idx], allow_unused=True)
    for i, g, t in zip(diff_idx, gf_gg, th_gg):
        expect = np.zeros(arrays[i].shape) if t is None else to_numpy(t)
        got = np.zeros(arrays[i].shape) if g is None else to_numpy(g)
        np.testing.assert_allclose(got, expect, atol=atol, rtol=rtol,
                                   err_msg=f"second derivative for input {i} differs from "
                                           "PyTorch")


def check_gradcheck(fn, *arrays, second_order=True):
    """Finite-difference checks (first and second order) of fn on float64 CPU inputs."""
    inputs = [gf.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]

    def f(*xs):
        return fn(gf, *xs)

    assert gf.autograd.gradcheck(f, inputs)
    if second_order:
        assert gf.autograd.gradgradcheck(f, inputs)


def train_step(model, opt):
    """The standard training step on (x, y) as a closure, for eager calls and compile_step:
    zero the gradients, cross-entropy, backward, optimizer step; returns the loss."""
    def step(x, y):
        opt.zero_grad()
        loss = gf.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step
