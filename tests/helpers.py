"""The tests' shared scaffolding. `check_op` checks an op against PyTorch (forward values and
gradients, first and second order) from a single lambda `fn(lib, *tensors)` that runs with
lib=gradflow or lib=torch; `check_op_raises` holds a bad call's error to PyTorch's; `data` and
`distinct` build inputs that finite differences and max/min can trust."""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import gradflow as gf

try:
    import torch
except ImportError:  # parity tests skip without it
    torch = None
else:
    # NOTE: one intra-op thread, like the one BLAS thread conftest.py sets: a second one
    # stalls when another process loads the machine.
    torch.set_num_threads(1)


def _shape(shape: tuple) -> tuple:
    """`data(2, 3)` and `data((2, 3))` alike, as NumPy and torch take shapes."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) \
        else tuple(shape)


def data(*shape, kind: str = "any", seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Random inputs of `shape` (ints or one tuple), seeded by `seed` and the shape.

    kind 'any': |x| in [0.3, 1.5] of either sign, away from kinks (abs, relu) and ties, so
    finite differences are meaningful; 'pos': in [0.3, 1.5] (log, sqrt, division); 'unit': in
    (-0.8, 0.8) (asin, atanh); 'normal': standard normal.
    """
    shape = _shape(shape)
    rng = np.random.default_rng(seed + 7 * len(shape) + math.prod(shape))
    if kind == "normal":
        return np.asarray(rng.standard_normal(shape), dtype=dtype)
    mag = rng.uniform(0.3, 1.5, size=shape)
    if kind == "pos":
        return np.asarray(mag, dtype=dtype)
    if kind == "unit":
        return np.asarray(rng.uniform(-0.8, 0.8, size=shape), dtype=dtype)
    if kind != "any":
        raise ValueError(f"data: kind must be 'any', 'pos', 'unit' or 'normal', got {kind!r}")
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return np.asarray(mag * sign, dtype=dtype)


def distinct(*shape, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """Values all distinct and well separated (0.37 apart), so max, min and max pooling have no
    ties and their argmax is unique."""
    shape = _shape(shape)
    n = math.prod(shape)
    rng = np.random.default_rng(seed)
    return (rng.permutation(n).reshape(shape) * 0.37 - n * 0.15).astype(dtype)


def inputs(args) -> list:
    """Arrays as given; a shape (a tuple) becomes `data(shape, seed=position)`."""
    return [data(a, seed=i) if isinstance(a, tuple) else a for i, a in enumerate(args)]


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
    """Compare fn's outputs, gradients and (optionally) second derivatives with PyTorch.

    Each of `arrays` is an input array or just its shape, for `data(shape)`: adding an op's test
    is then one line, `check_op(lambda L, a, b: L.maximum(a, b), (3, 1), (4,))`.
    """
    th = require_torch()
    arrays = inputs(arrays)
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


# the CuPy-path checks' usual inputs: a float tensor and an int tensor of one shape
X_CUPY = np.array([[0.5, -1.5, 2.0], [0.25, 3.0, -0.75]], np.float32)
I_CUPY = np.array([[5, -3, 8], [0, 7, -1]], np.int64)


def check_cupy_path(fn, *arrays, rtol=1e-6, atol=0.0):
    """Run `fn(*tensors)` on the CPU and on the CuPy path (the `fake_cuda` fixture's stand-in,
    which the test must request): the same values and dtype on both and, where the output
    requires grad, the same gradients of its weighted sum (distinct weights, so a gradient in
    the wrong place is caught). Float arrays become tensors that require grad."""
    results = []
    for device in ("cpu", "cuda"):
        ins = [gf.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
        out = fn(*ins)
        grads = None
        if out.requires_grad:
            weights = gf.arange(1, out.numel() + 1, device=device, dtype=out.dtype)
            (out * weights.reshape(out.shape)).sum().backward()
            grads = [t.grad.tolist() for t in ins if t.requires_grad and t.grad is not None]
        results.append((out.device.type, out.dtype, out.tolist(), grads))
    (cpu_type, cpu_dtype, cpu_out, cpu_grads), (cuda_type, cuda_dtype, cuda_out, cuda_grads) = \
        results
    assert (cpu_type, cuda_type) == ("cpu", "cuda"), (cpu_type, cuda_type)
    assert cpu_dtype == cuda_dtype, f"dtype {cuda_dtype} on the CuPy path, {cpu_dtype} on the CPU"
    np.testing.assert_allclose(np.array(cuda_out, float), np.array(cpu_out, float), rtol=rtol,
                               atol=atol, err_msg="values differ between the CPU and CuPy paths")
    assert (cpu_grads is None) == (cuda_grads is None), "only one path's output requires grad"
    for cpu_g, cuda_g in zip(cpu_grads or [], cuda_grads or []):
        np.testing.assert_allclose(cuda_g, cpu_g, rtol=rtol * 10, atol=atol,
                                   err_msg="gradients differ between the CPU and CuPy paths")


def check_gradcheck(fn, *arrays, second_order=True, fast_mode=False):
    """Finite-difference checks (first and second order) of fn on float64 CPU inputs (arrays or
    shapes, as for check_op); `fast_mode` checks one random direction per input."""
    leaves = [gf.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs(arrays)]

    def f(*xs):
        return fn(gf, *xs)

    assert gf.autograd.gradcheck(f, leaves, fast_mode=fast_mode)
    if second_order:
        assert gf.autograd.gradgradcheck(f, leaves, fast_mode=fast_mode)


# Where gradflow raises another type than PyTorch on purpose: {op: (torch's, gradflow's)},
# each with its reason.
DIFFERENT_ERRORS = {
    # torch warns and broadcasts target against input (failing only when they do not
    # broadcast); gradflow refuses any size mismatch up front, as a bad argument.
    "mse_loss": (RuntimeError, ValueError),
}


def _raised(call) -> BaseException | None:
    try:
        call()
    except Exception as error:  # any type: the caller compares them
        return error
    return None


def check_op_raises(fn, *arrays, op: str | None = None) -> BaseException:
    """Make the same bad call on gradflow and on PyTorch: both must raise, gradflow an instance
    of PyTorch's exception type (so an `except` written for PyTorch catches it; DIFFERENT_ERRORS
    lists the deliberate exceptions), and gradflow's message must name the op. Returns
    gradflow's exception, for further checks on its message.

    `fn` is an op's name, looked up in gradflow / torch and then in their nn.functional, or a
    lambda `fn(lib, *tensors)` as for check_op, with `op` naming the op its message must name.
    Each of `arrays` is an array (made a tensor; integer arrays stay integer) or a shape.
    """
    th = require_torch()
    if isinstance(fn, str):
        name, op = fn, op or fn

        def fn(lib, *xs):
            functional = gf.nn.functional if lib is gf else th.nn.functional
            return getattr(lib if hasattr(lib, name) else functional, name)(*xs)

    if op is None:
        raise TypeError("check_op_raises: pass op=... with a lambda: the op its message names")
    arrays = inputs(arrays)
    got = _raised(lambda: fn(gf, *[gf.tensor(a) for a in arrays]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's warning before its own error is not ours
        want = _raised(lambda: fn(th, *[th.tensor(a) for a in arrays]))
    if want is None:
        raise AssertionError(f"{op}: PyTorch accepts this call, so it tests no error")
    if got is None:
        raise AssertionError(f"{op}: gradflow accepts a call PyTorch rejects with "
                             f"{type(want).__name__}: {want}")
    torch_type, gf_type = DIFFERENT_ERRORS.get(op, (type(want), type(want)))
    expected = gf_type if isinstance(want, torch_type) else type(want)
    if not isinstance(got, expected):
        raise AssertionError(f"{op}: gradflow raised {type(got).__name__} ({got}) where PyTorch "
                             f"raises {type(want).__name__} ({want}); expected "
                             f"{expected.__name__}")
    if not re.search(rf"\b{re.escape(op)}\b", str(got)):
        raise AssertionError(f"{op}: gradflow's message does not name the op: {got}")
    return got


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
