"""gradflow's float16 and bfloat16 kernels against their NumPy twins, on awkward sizes.

Each case runs a launcher of gradflow/cuda/ on 16-bit inputs (through the kernel emulator on
the CPU, or on a GPU where there is one) and its NumPy twin in float32 on the same values
(the 16-bit inputs widened exactly), the twin's outputs rounded to the dtype. The kernels
compute in float32 and round each output once, so the two agree up to one rounding step of
the dtype, plus float32 summation-order noise on cancelling sums:

    float16  (11-bit significand): rtol 2**-10, atol 1e-5
    bfloat16 ( 8-bit significand): rtol 2**-7,  atol 1e-5

Outputs the kernels keep in float32 (batch statistics, the log-sum-exp) are held to float32
tolerances; pure copies (im2col, max pooling, the conversions) must match bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow as gf
from gradflow.cuda import batchnorm, blas, compiler, conv, optim, pool, rnn, softmax_xent
from gradflow.cuda import random as cuda_random
from gradflow.ops import pool_arrays, rnn_arrays
from gradflow.ops.batchnorm import backward_reference, batch_stats_reference
from gradflow.ops.conv import Window, col2im_reference, im2col_reference

F16, BF16 = gf.float16, gf.bfloat16
DTYPES = [pytest.param(F16, id="float16"), pytest.param(BF16, id="bfloat16")]
TOLERANCE = {F16: dict(rtol=2.0 ** -10, atol=1e-5), BF16: dict(rtol=2.0 ** -7, atol=1e-5)}
FLOAT32 = dict(rtol=2e-5, atol=1e-6)
F32 = np.float32


# -- moving arrays to the backend and back ---------------------------------------------------
def _xp(backend):
    if backend.name == "cuda":
        import cupy
        return cupy
    return np


def dev(backend, a):
    return _xp(backend).asarray(a) if isinstance(a, np.ndarray) else a


def host(a) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)


def low(shape, dtype, seed=0, scale=1.0) -> np.ndarray:
    """Random values of `dtype` (rounded from float32 normals)."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def close(got, want32, dtype, what=""):
    """A kernel's 16-bit output against its float32 twin's output rounded to `dtype`."""
    got = host(got)
    assert got.dtype == dtype, (what, got.dtype)
    np.testing.assert_allclose(got.astype(F32), want32.astype(dtype).astype(F32),
                               **TOLERANCE[dtype], err_msg=what)


def launched_all(launched, names):
    missing = set(names) - set(launched)
    assert not missing, f"kernels {sorted(missing)} did not run (launched {set(launched)})"


# -- the element types ------------------------------------------------------------------------
SPECIAL = np.array([0.0, 1.0, -2.5, 1 / 3, 65504.0, 65519.996, 65520.0, 1e6, -1e6, 6.1e-5,
                    6.0e-8, 2.9e-8, 3.0e-8, 1e-10, 1.0009765625, 1.00048828125,
                    1.001953125 + 2 ** -12, 1.00390625, 1.005859375, 3e38, -3e38,
                    np.inf, -np.inf, np.nan, 1e-40, 2 ** -133, 255.5, 257.0], F32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conversions_round_to_nearest_even(kernel_backend, dtype):
    """float32 -> 16 bits rounds to nearest even (ties, subnormals, overflow to inf, NaN), and
    every 16-bit value survives the trip to float32 and back: bn_apply with x = 1 and
    shift = -0.0 (which keeps a -0.0) stores round(scale[c]); with scale = 1 it stores x."""
    rng = np.random.default_rng(0)
    values = np.concatenate([SPECIAL, -SPECIAL,
                             (rng.standard_normal(3000) * 10.0 ** rng.integers(-9, 6, 3000))
                             .astype(F32),
                             rng.integers(0, 2 ** 32, 2000, dtype=np.uint64)
                             .astype(np.uint32).view(F32)])
    c = values.size
    with kernel_backend.active() as launched:
        y = batchnorm.affine(dev(kernel_backend, np.ones((1, c), dtype)),
                             dev(kernel_backend, values),
                             dev(kernel_backend, np.full(c, -0.0, F32)))
    launched_all(launched, ["batchnorm.bn_apply"])
    with np.errstate(over="ignore", invalid="ignore"):
        want = values.astype(dtype)
    got = host(y)[0]
    nan = np.isnan(want.astype(F32))
    np.testing.assert_array_equal(np.isnan(got.astype(F32)), nan)
    keep = ~nan & ~_flushed(kernel_backend, values, want)
    np.testing.assert_array_equal(got.view(np.uint16)[keep], want.view(np.uint16)[keep])

    every = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16).view(dtype)
    with kernel_backend.active():
        y = batchnorm.affine(dev(kernel_backend, every.reshape(1, 1, -1)),
                             dev(kernel_backend, np.ones(1, F32)),
                             dev(kernel_backend, np.full(1, -0.0, F32)))
    got = host(y).reshape(-1)
    nan = np.isnan(every.astype(F32))
    assert np.isnan(got.astype(F32)[nan]).all()
    keep = ~nan & ~_flushed(kernel_backend, every.astype(F32), every)
    np.testing.assert_array_equal(got.view(np.uint16)[keep], every.view(np.uint16)[keep])
    assert keep.sum() > 60000


def _flushed(backend, values, want) -> np.ndarray:
    """Where a GPU may differ: CuPy compiles kernels with -ftz=true, so float32 subnormals
    (below 2**-126, where bfloat16's subnormals lie too) flush to zero in device arithmetic.
    The emulator keeps them, and is held to them."""
    if backend.name != "cuda":
        return np.zeros(values.shape, bool)
    tiny = 2.0 ** -126
    with np.errstate(invalid="ignore"):
        return ((np.abs(values.astype(F32)) < tiny) & (values != 0)) | \
            ((np.abs(want.astype(F32)) < tiny) & (want.astype(F32) != 0))


# -- conv lowering ----------------------------------------------------------------------------
WINDOWS = {
    "pad_stride_dilation": Window((3, 2), (2, 1), (1, 2), (1, 0, 2, 1)),
    "1x1": Window((1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
    "overlap": Window((3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_inner", [False, True], ids=["per_sample", "batch_inner"])
@pytest.mark.parametrize("window", WINDOWS)
def test_conv_lowering(kernel_backend, dtype, batch_inner, window):
    win, shape = WINDOWS[window], (3, 5, 7, 6)
    x = low(shape, dtype)
    with kernel_backend.active() as launched:
        cols = conv.im2col(dev(kernel_backend, x), win, float("-inf"), batch_inner)
        cols16 = low(host(cols).shape, dtype, seed=1)
        back = conv.col2im(dev(kernel_backend, cols16), shape, win, batch_inner)
    launched_all(launched, ["conv.im2col", "conv.col2im"])
    want = im2col_reference(x.astype(F32), win, float("-inf"), batch_inner)
    got = host(cols)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.astype(F32), want)  # a copy: exact, -inf padding too
    close(back, col2im_reference(cols16.astype(F32), shape, win, batch_inner), dtype, "col2im")


# -- pooling ----------------------------------------------------------------------------------
def _distinct_planes(shape, dtype, seed=0):
    """Values distinct within each plane and exact in bfloat16 (multiples of 1/2 below 128),
    so the window maxima and their positions are unambiguous."""
    n, c, h, w = shape
    assert h * w <= 256
    rng = np.random.default_rng(seed)
    planes = [rng.permutation(h * w) * 0.5 - 40.0 for _ in range(n * c)]
    return np.stack(planes).reshape(shape).astype(dtype)


POOL_SHAPES = [(1, 1, 7, 5), (3, 5, 11, 13), (2, 2, 16, 16)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", POOL_SHAPES, ids=["1x1x7x5", "3x5x11x13", "2x2x16x16"])
def test_max_pool(kernel_backend, dtype, shape):
    x = _distinct_planes(shape, dtype)
    geometry = ((3, 2), (2, 1), (1, 1), (2, 1))  # kernel, stride, padding, dilation
    h, w = shape[2:]
    out = tuple((s + 2 * p - d * (k - 1) - 1) // st + 1 for s, k, st, p, d in
                zip((h, w), *geometry))
    gy = low(shape[:2] + out, dtype, seed=2)
    with kernel_backend.active() as launched:
        y, argmax = pool.maxpool2d(dev(kernel_backend, x), out, *geometry)
        gx = pool.maxpool2d_backward(dev(kernel_backend, gy), argmax, shape, *geometry)
    launched_all(launched, ["pool.maxpool2d_fwd", "pool.maxpool2d_bwd"])
    want_y, want_arg = pool_arrays.maxpool(x.astype(F32), out, *geometry)
    assert host(y).dtype == dtype
    np.testing.assert_array_equal(host(y).astype(F32), want_y)
    np.testing.assert_array_equal(host(argmax), want_arg)
    close(gx, pool_arrays.maxpool_backward(gy.astype(F32), want_arg, shape, *geometry), dtype,
          "maxpool backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [(True, None), (False, None), (False, 5)],
                         ids=["include_pad", "exclude_pad", "divisor5"])
@pytest.mark.parametrize("shape", POOL_SHAPES, ids=["1x1x7x5", "3x5x11x13", "2x2x16x16"])
def test_avg_pool(kernel_backend, dtype, options, shape):
    include_pad, divisor = options
    x = low(shape, dtype)
    geometry = ((3, 3), (2, 2), (1, 1))
    out = tuple((s + 2 - 3) // 2 + 1 for s in shape[2:])
    gy = low(shape[:2] + out, dtype, seed=3)
    with kernel_backend.active() as launched:
        y = pool.avgpool2d(dev(kernel_backend, x), out, *geometry, include_pad, divisor)
        gx = pool.avgpool2d_backward(dev(kernel_backend, gy), shape, *geometry, include_pad,
                                     divisor)
    launched_all(launched, ["pool.avgpool2d_fwd", "pool.avgpool2d_bwd"])
    close(y, pool_arrays.avgpool(x.astype(F32), out, *geometry, include_pad, divisor), dtype,
          "avgpool")
    close(gx, pool_arrays.avgpool_backward(gy.astype(F32), shape, *geometry, include_pad,
                                           divisor), dtype, "avgpool backward")


def _adaptive_twin(x, out):
    """adaptive_avg_pool2d in float32 by its definition: window o of n_out over n cells is
    [floor(o n / n_out), ceil((o + 1) n / n_out))."""
    h, w = x.shape[2:]
    y = np.empty(x.shape[:2] + out, F32)
    for oy in range(out[0]):
        for ox in range(out[1]):
            ys = slice(oy * h // out[0], -(-(oy + 1) * h // out[0]))
            xs = slice(ox * w // out[1], -(-(ox + 1) * w // out[1]))
            y[:, :, oy, ox] = x[:, :, ys, xs].mean(axis=(2, 3))
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out", [(3, 4), (1, 1), (9, 2)], ids=["uneven", "1x1", "grow"])
def test_adaptive_avg_pool(kernel_backend, dtype, out):
    shape = (2, 3, 7, 5)
    x = low(shape, dtype)
    gy = low(shape[:2] + out, dtype, seed=4)
    with kernel_backend.active() as launched:
        y = pool.adaptive_avgpool2d(dev(kernel_backend, x), out)
        gx = pool.adaptive_avgpool2d_backward(dev(kernel_backend, gy), shape)
    launched_all(launched, ["pool.adaptive_avgpool2d_fwd", "pool.adaptive_avgpool2d_bwd"])
    close(y, _adaptive_twin(x.astype(F32), out), dtype, "adaptive")
    # the backward is the adjoint: <gx, x'> = <gy, pool(x')> for the twin's pool, in float64
    probe = np.random.default_rng(5).standard_normal(shape)
    lhs = (host(gx).astype(np.float64) * probe).sum()
    rhs = (gy.astype(np.float64) * _adaptive_twin(probe, out).astype(np.float64)).sum()
    assert math.isclose(lhs, rhs, rel_tol=TOLERANCE[dtype]["rtol"] * 4, abs_tol=1e-3)


# -- batch norm -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,stats_dtype", [
    ((4, 3), np.float32), ((2, 5, 7), None), ((3, 13, 5, 3), np.float32),
    ((257, 2, 1, 1), None)], ids=["NC-f32_stats", "NCL-low_stats", "NCHW_13-f32_stats",
                                  "N257-low_stats"])
def test_batch_norm(kernel_backend, dtype, shape, stats_dtype):
    """float32 statistics and parameters, 16-bit activations in and out; running averages
    of the activations' dtype are updated through a float32 copy."""
    c = shape[1]
    sd = stats_dtype or dtype
    x = (low(shape, dtype) * 3 + 1).astype(dtype)
    gy = low(shape, dtype, seed=1)
    weight = low(c, dtype, seed=3)
    rm0, rv0 = low(c, sd, seed=4), (np.abs(low(c, sd, seed=5)) + 0.5).astype(sd)
    rm, rv = dev(kernel_backend, rm0.copy()), dev(kernel_backend, rv0.copy())
    with kernel_backend.active() as launched:
        mean, invstd = batchnorm.batch_stats(dev(kernel_backend, x), rm, rv, 0.3, 1e-5)
        scale = invstd * dev(kernel_backend, weight.astype(F32))
        y = batchnorm.affine(dev(kernel_backend, x), scale, -mean * scale)
        gx, gw, gb = batchnorm.backward(dev(kernel_backend, gy), dev(kernel_backend, x), mean,
                                        invstd, dev(kernel_backend, weight))
    launched_all(launched, ["batchnorm.bn_stats", "batchnorm.bn_apply",
                            "batchnorm.bn_grad_sums", "batchnorm.bn_grad_input"])
    want_rm, want_rv = rm0.astype(F32), rv0.astype(F32)
    want_mean, want_invstd = batch_stats_reference(x.astype(F32), want_rm, want_rv, 0.3, 1e-5)
    for got, want in ((mean, want_mean), (invstd, want_invstd)):
        assert host(got).dtype == F32
        np.testing.assert_allclose(host(got), want, **FLOAT32)
    for got, want in ((rm, want_rm), (rv, want_rv)):
        assert host(got).dtype == sd
        np.testing.assert_allclose(host(got).astype(F32), want.astype(sd).astype(F32),
                                   **(FLOAT32 if sd == F32 else TOLERANCE[dtype]))
    scale32 = want_invstd * weight.astype(F32)
    want_y = x.astype(F32) * scale32[None, :, None].reshape((1, c) + (1,) * (len(shape) - 2)) \
        - (want_mean * scale32).reshape((1, c) + (1,) * (len(shape) - 2))
    close(y, want_y, dtype, "affine")
    want_gx, want_gw, want_gb = backward_reference(gy.astype(F32), x.astype(F32), want_mean,
                                                   want_invstd, weight.astype(F32))
    close(gx, want_gx, dtype, "input gradient")
    for got, want in ((gw, want_gw), (gb, want_gb)):
        assert host(got).dtype == dtype  # the weight's dtype
        np.testing.assert_allclose(host(got).astype(F32), want.astype(dtype).astype(F32),
                                   rtol=TOLERANCE[dtype]["rtol"],
                                   atol=1e-4 * math.prod(shape) / c)


# -- softmax cross-entropy --------------------------------------------------------------------
def _xent_twin(z, t, w, ignore, eps):
    """Per-row losses, row weights, log-sum-exps and the gradient of sum_r s_r loss_r, in
    float32 (the kernel's formulas, NumPy's float32 arithmetic)."""
    rows, classes = z.shape
    w = np.ones(classes, F32) if w is None else w
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    keep = t != ignore
    ts = np.where(keep, t, 0)
    wt = np.where(keep, w[ts], 0).astype(F32)
    nll = lse - z[np.arange(rows), ts]
    smooth = (w[None, :] * (lse[:, None] - z)).sum(axis=1)
    loss = np.where(keep, (1 - eps) * wt * nll + eps / classes * smooth, 0).astype(F32)
    p = np.exp(z - lse[:, None])
    onehot = np.eye(classes, dtype=F32)[ts]
    grad = ((1 - eps) * wt[:, None] * (p - onehot)
            + (eps / classes) * (w.sum() * p - w[None, :]) * keep[:, None]).astype(F32)
    return loss, wt, lse.astype(F32), grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,case", [
    ((1, 1), "plain"), ((7, 10), "weighted_ignore_smooth"), ((5, 37), "plain"),
    ((257, 3), "weighted_ignore_smooth"), ((3, 1000), "weighted_ignore_smooth"),
    ((2, 1000), "plain")], ids=["1x1", "7x10-weighted", "5x37", "257x3-weighted",
                                "3x1000-weighted", "2x1000"])
def test_softmax_cross_entropy(kernel_backend, dtype, shape, case):
    rows, classes = shape
    z = low(shape, dtype, scale=4.0)
    t = np.random.default_rng(5).integers(0, classes, rows)
    weighted = case != "plain"
    ignore = 0 if weighted else -100
    if weighted and rows > 1:
        t[::3] = ignore
    w = np.random.default_rng(6).uniform(0.5, 2.0, classes).astype(dtype) if weighted else None
    eps = 0.1 if weighted else 0.0
    scale = low(rows, dtype, seed=7)
    with kernel_backend.active() as launched:
        loss, row_weight, lse = softmax_xent.forward(
            dev(kernel_backend, z), dev(kernel_backend, t), dev(kernel_backend, w), ignore, eps)
        grad = softmax_xent.backward(dev(kernel_backend, z), dev(kernel_backend, t),
                                     dev(kernel_backend, w), lse, dev(kernel_backend, scale),
                                     ignore, eps)
    launched_all(launched, ["softmax_xent.softmax_xent_fwd", "softmax_xent.softmax_xent_bwd"])
    want_loss, want_w, want_lse, want_grad = _xent_twin(
        z.astype(F32), t, None if w is None else w.astype(F32), ignore, eps)
    close(loss, want_loss, dtype, "loss")
    close(row_weight, want_w, dtype, "row weight")
    assert host(lse).dtype == F32
    np.testing.assert_allclose(host(lse), want_lse, **FLOAT32)
    close(grad, want_grad * scale.astype(F32)[:, None], dtype, "gradient")


# -- optimizer updates ------------------------------------------------------------------------
OPTIM = {
    "sgd_nesterov": ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01,
                                 nesterov=True, maximize=False)),
    "adam": ("adam", dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                          maximize=False, decoupled_weight_decay=False)),
    "adamw_amsgrad": ("adam", dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1,
                                   maximize=True, decoupled_weight_decay=True, amsgrad=True)),
    "rmsprop_centered": ("rmsprop", dict(lr=1e-2, alpha=0.9, eps=1e-8, weight_decay=0.0,
                                         momentum=0.5, centered=True, maximize=False)),
    "adagrad": ("adagrad", dict(lr=0.1, lr_decay=0.0, weight_decay=0.05, eps=1e-10,
                                maximize=False)),
}


def _optim_twin(rule, o, p, g, state, step):
    """One update in float32 by the NumPy rules of gradflow/optim (in place)."""
    from gradflow.optim.adagrad import adagrad_step
    from gradflow.optim.adam import adam_step
    from gradflow.optim.rmsprop import rmsprop_step
    from gradflow.optim.sgd import sgd_step
    if rule == "sgd":
        sgd_step(p, g, state[0], lr=o["lr"], momentum=o["momentum"], dampening=o["dampening"],
                 weight_decay=o["weight_decay"], nesterov=o["nesterov"], maximize=o["maximize"])
    elif rule == "adam":
        adam_step(p, g, state[0], state[1], state[2], step=step, lr=o["lr"], beta1=o["beta1"],
                  beta2=o["beta2"], eps=o["eps"], weight_decay=o["weight_decay"],
                  maximize=o["maximize"], decoupled_weight_decay=o["decoupled_weight_decay"])
    elif rule == "rmsprop":
        rmsprop_step(p, g, state[0], state[1], state[2], lr=o["lr"], alpha=o["alpha"],
                     eps=o["eps"], weight_decay=o["weight_decay"], momentum=o["momentum"],
                     maximize=o["maximize"])
    else:
        adagrad_step(p, g, state[0], step=step, lr=o["lr"], lr_decay=o["lr_decay"],
                     weight_decay=o["weight_decay"], eps=o["eps"], maximize=o["maximize"])


def _hp(rule, o, step):
    if rule == "sgd":
        row = [o["lr"], o["momentum"], o["dampening"], o["weight_decay"]]
    elif rule == "adam":
        row = [o["lr"], o["beta1"], o["beta2"], o["eps"], o["weight_decay"],
               1 - o["beta1"] ** step, math.sqrt(1 - o["beta2"] ** step)]
    elif rule == "rmsprop":
        row = [o["lr"], o["alpha"], o["eps"], o["weight_decay"], o["momentum"]]
    else:
        row = [o["lr"] / (1 + (step - 1) * o["lr_decay"]), o["weight_decay"], o["eps"]]
    return np.array(row + [0.0] * (8 - len(row)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", OPTIM)
def test_optimizer_update(kernel_backend, dtype, case):
    """One update (step 3, state already warm) of 16-bit parameters and state, against the
    NumPy rule in float32 from the same values, rounded."""
    rule, o = OPTIM[case]
    shape, step = (5, 7), 3
    p, g = low(shape, dtype), low(shape, dtype, seed=1)
    n_state = {"sgd": 1, "adam": 3 if o.get("amsgrad") else 2,
               "rmsprop": 3, "adagrad": 1}[rule]
    state = [np.abs(low(shape, dtype, seed=10 + i)) * (0.01 if rule == "adam" and i else 1)
             for i in range(n_state)]
    state = [s.astype(dtype) for s in state]
    if rule == "rmsprop":  # square_avg above grad_avg**2, so the centred variance is positive
        state[0] = (state[0].astype(F32) + 2.0).astype(dtype)
        state[1] = (state[1].astype(F32) * 0.1).astype(dtype)
    arrays = [dev(kernel_backend, a.copy()) for a in (p, *state)]
    hp = dev(kernel_backend, _hp(rule, o, step))
    with kernel_backend.active() as launched:
        gd = dev(kernel_backend, g)
        if rule == "sgd":
            optim.sgd(arrays[0], gd, arrays[1], hp, nesterov=o["nesterov"],
                      maximize=o["maximize"], first_step=False)
        elif rule == "adam":
            optim.adam(arrays[0], gd, arrays[1], arrays[2],
                       arrays[3] if o.get("amsgrad") else None, hp, maximize=o["maximize"],
                       decoupled_weight_decay=o["decoupled_weight_decay"])
        elif rule == "rmsprop":
            optim.rmsprop(arrays[0], gd, arrays[1], arrays[2], arrays[3], hp,
                          maximize=o["maximize"])
        else:
            optim.adagrad(arrays[0], gd, arrays[1], hp, maximize=o["maximize"])
    launched_all(launched, [f"optim.{rule}_update"])
    want = [a.astype(F32) for a in (p, *state)]
    twin_state = want[1:] + [None] * (3 - len(want[1:]))
    _optim_twin(rule, o, want[0], g.astype(F32), twin_state, step)
    for i, (got, w) in enumerate(zip(arrays, want)):
        close(got, w, dtype, f"{case}: array {i}")


# -- recurrent cells --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims", [(1, 1), (3, 5), (7, 33)], ids=["1x1", "3x5", "7x33"])
def test_rnn_cells(kernel_backend, dtype, dims):
    n, h = dims
    gates, c_prev = low((4 * h, n), dtype, scale=2.0), low((h, n), dtype, seed=1)  # (G*H, N)
    gi, gh = low((3 * h, n), dtype, seed=2), low((3 * h, n), dtype, seed=3)
    g_h, g_c = low((h, n), dtype, seed=4), low((h, n), dtype, seed=5)
    d = lambda a: dev(kernel_backend, a)  # noqa: E731
    with kernel_backend.active() as launched:
        lstm = rnn.lstm_cell_forward(d(gates), d(c_prev))
        lstm_b = rnn.lstm_cell_backward(d(g_h), d(g_c), lstm[2], d(c_prev), lstm[1])
        gru = rnn.gru_cell_forward(d(gi), d(gh), d(c_prev))
        gru_b = rnn.gru_cell_backward(d(g_h), gru[1], d(gh[2 * h:]), d(c_prev))
        plain = {nl: rnn.rnn_cell_forward(d(gates[:h]), nl) for nl in ("tanh", "relu")}
        plain_b = {nl: rnn.rnn_cell_backward(d(g_h), plain[nl], nl) for nl in plain}
    launched_all(launched, [f"rnn.{k}_cell_{p}" for k in ("lstm", "gru", "rnn")
                            for p in ("fwd", "bwd")])
    f = lambda a: host(a).astype(F32)  # noqa: E731  (the kernel's 16-bit values, widened)
    want = rnn_arrays.lstm_cell_forward(gates.astype(F32), c_prev.astype(F32))
    for i, (got, w) in enumerate(zip(lstm, want)):
        close(got, w, dtype, f"lstm forward {i}")
    # the backward twins read the kernel's own (rounded) activations and cell state
    want = rnn_arrays.lstm_cell_backward(g_h.astype(F32), g_c.astype(F32), f(lstm[2]),
                                         c_prev.astype(F32), f(lstm[1]))
    for i, (got, w) in enumerate(zip(lstm_b, want)):
        close(got, w, dtype, f"lstm backward {i}")
    want = rnn_arrays.gru_cell_forward(gi.astype(F32), gh.astype(F32), c_prev.astype(F32))
    for i, (got, w) in enumerate(zip(gru, want)):
        close(got, w, dtype, f"gru forward {i}")
    want = rnn_arrays.gru_cell_backward(g_h.astype(F32), f(gru[1]),
                                        gh[2 * h:].astype(F32), c_prev.astype(F32))
    for i, (got, w) in enumerate(zip(gru_b, want)):
        close(got, w, dtype, f"gru backward {i}")
    for nl in plain:
        close(plain[nl], rnn_arrays.rnn_cell_forward(gates[:h].astype(F32), nl), dtype, nl)
        close(plain_b[nl], rnn_arrays.rnn_cell_backward(g_h.astype(F32), f(plain[nl]), nl),
              dtype, f"{nl} backward")


# -- random draws -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_draws(kernel_backend, dtype):
    """16-bit draws are the float32 draws of the same generator state, rounded: uniform ones
    truncated to the type's significand (k / 2**11, k / 2**8: exact, never 1), normal ones
    rounded to nearest."""
    xp = _xp(kernel_backend)
    bits = {F16: 11, BF16: 8}[dtype]
    key = (2 ** 63 + 12345, 7)
    with kernel_backend.active() as launched:
        u16 = cuda_random.uniform(xp, (1001,), dtype, key)
        u32 = cuda_random.uniform(xp, (1001,), F32, key)
        n16 = cuda_random.normal(xp, (37, 3), dtype, key, 0.5, 2.0)
        n32 = cuda_random.normal(xp, (37, 3), F32, key, 0.5, 2.0)
    launched_all(launched, ["random.uniform", "random.normal"])
    u = host(u16)
    assert u.dtype == dtype and u.shape == (1001,)
    uf = u.astype(F32)
    assert (uf >= 0).all() and (uf < 1).all()
    np.testing.assert_array_equal(uf, np.floor(host(u32) * 2 ** bits) / 2 ** bits)
    assert len(np.unique(uf)) > min(2 ** bits, 1001) // 4  # not stuck on a few values
    n = host(n16)
    assert n.dtype == dtype
    np.testing.assert_array_equal(n.view(np.uint16), host(n32).astype(dtype).view(np.uint16))


# -- GEMMs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 7, 33), (2, 33, 1)),
                                    ((1, 300), (300, 3))], ids=["3x4x5", "batched", "k300"])
def test_matmul_16_bit(kernel_backend, dtype, shapes):
    """blas.matmul of 16-bit arrays: float32 products rounded once (the emulated cuBLAS on
    the CPU, cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F on a GPU)."""
    a, b = low(shapes[0], dtype), low(shapes[1], dtype, seed=1)
    with kernel_backend.active():
        got = blas.matmul(dev(kernel_backend, a), dev(kernel_backend, b.T.copy()).T
                          if b.ndim == 2 else dev(kernel_backend, b))
    close(got, a.astype(F32) @ b.astype(F32), dtype, "matmul")


def test_kernel_dtypes_and_accumulation_types():
    assert compiler.C_TYPES[F16] == "__half" and compiler.C_TYPES[BF16] == "__nv_bfloat16"
    assert compiler.acc_dtype(F16) == compiler.acc_dtype(BF16) == F32
    assert compiler.acc_dtype(np.float64) == np.float64
    for family in ("conv", "pool", "batchnorm", "softmax_xent", "optim", "rnn", "random"):
        names = compiler.name_expressions(compiler.source(family))
        for ctype in ("float", "double", "__half", "__nv_bfloat16"):
            kernels = {n.split("<")[0] for n in names if n.endswith(f"<{ctype}>")}
            assert kernels == {n.split("<")[0] for n in names}, (family, ctype)


class _RecordingCublas:
    """blas.library() stand-in: records the cublasGemmStridedBatchedEx call's arguments."""

    def __init__(self) -> None:
        self.calls: list = []

    def cublasGemmStridedBatchedEx(self, *args):  # noqa: N802  (cuBLAS's name)
        self.calls.append(args)
        return 0


def test_16_bit_gemm_calls_gemm_ex_with_float32_compute(monkeypatch):
    """The cuBLAS call of a 16-bit product: cublasGemmStridedBatchedEx with the data type of
    the dtype (CUDA_R_16F = 2, CUDA_R_16BF = 14) for A, B and C, float32 alpha = 1 and
    beta = 0, CUBLAS_COMPUTE_32F (68) and CUBLAS_GEMM_DEFAULT_TENSOR_OP (99)."""
    import ctypes

    class _Array:  # what _run reads of a CuPy array
        def __init__(self, a):
            self.a, self.dtype, self.data = a, a.dtype, type("P", (), {"ptr": a.ctypes.data})

    class _Stream:
        ptr = 0

    class _FakeCp:
        class cuda:  # noqa: N801
            @staticmethod
            def get_current_stream():
                return _Stream()

    lib = _RecordingCublas()
    monkeypatch.setattr(blas, "library", lambda: lib)
    monkeypatch.setattr(blas, "cupy_module", lambda: _FakeCp)
    monkeypatch.setattr(blas, "handle", lambda: type("H", (), {"ptr": 7, "bind":
                                                               lambda self, lib, s: None})())
    assert "cublasGemmStridedBatchedEx" in blas.PROTOTYPES
    for dtype, kind in ((F16, 2), (BF16, 14)):
        a, b = np.ones((2, 3), dtype), np.ones((3, 4), dtype)
        gemm = blas.plan(a, b, np)
        gemm = blas.Gemm(m=gemm.m, n=gemm.n, k=gemm.k, batch=gemm.batch,
                         a=blas.Operand(_Array(gemm.a.array), gemm.a.op, gemm.a.ld,
                                        gemm.a.batch_stride),
                         b=blas.Operand(_Array(gemm.b.array), gemm.b.op, gemm.b.ld,
                                        gemm.b.batch_stride), out_shape=gemm.out_shape)
        blas._run(gemm, _Array(np.empty(gemm.out_shape, dtype)))
        args = lib.calls[-1]
        assert len(args) == len(blas.PROTOTYPES["cublasGemmStridedBatchedEx"][1]) == 23
        assert (args[8], args[12], args[17]) == (kind, kind, kind)
        assert args[3:6] == (4, 2, 3) and args[20:] == (1, 68, 99)
        alpha, beta = (ctypes.c_float.from_address(args[i]).value for i in (6, 15))
        assert (alpha, beta) == (1.0, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_launchers_on_the_cupy_path(fake_cuda, dtype):
    """The launchers and the cuBLAS binding on (fake) CuPy arrays of 16-bit dtypes: the
    arrays CuPy would hand the kernels, the kernels emulated, results as on the CPU twin."""
    cp = fake_cuda
    x = low((2, 3, 6, 5), dtype)
    win = WINDOWS["overlap"]
    cols = conv.im2col(cp.asarray(x), win, 0.0, True)
    assert isinstance(cols, cp.ndarray) and cols.dtype == dtype
    np.testing.assert_array_equal(cols.get().astype(F32),
                                  im2col_reference(x.astype(F32), win, 0.0, True))
    y, _ = pool.maxpool2d(cp.asarray(_distinct_planes(x.shape, dtype)), (3, 2), (2, 2), (2, 2),
                          (0, 0), (1, 1))
    assert y.dtype == dtype
    z = low((4, 7), dtype, scale=3.0)
    t = np.array([0, 6, 3, 3])
    loss, _, lse = softmax_xent.forward(cp.asarray(z), cp.asarray(t), None, -100, 0.0)
    want_loss, _, want_lse, _ = _xent_twin(z.astype(F32), t, None, -100, 0.0)
    close(loss.get(), want_loss, dtype, "loss")
    np.testing.assert_allclose(lse.get(), want_lse, **FLOAT32)
    a, b = low((3, 33), dtype), low((2, 33, 4), dtype, seed=1)
    got = blas.matmul(cp.asarray(a), cp.asarray(b))
    assert got.dtype == dtype and got.shape == (2, 3, 4)
    close(got.get(), a.astype(F32) @ b.astype(F32), dtype, "matmul")
    assert fake_cuda.count("launch") >= 3


def test_a_family_without_16_bit_kernels_is_refused_by_name(kernel_backend):
    """compiler.instantiated reads each file's instantiations; a launch of a type the file
    lacks names the family, the kernel and the dtype instead of failing inside CuPy."""
    from gradflow.kernels_path import kernel_dir
    assert compiler.instantiated("conv", BF16) and compiler.instantiated("optim", F16)
    assert not compiler.instantiated("conv", np.int64)
    source = compiler.source("conv").replace("<__nv_bfloat16>", "<float>")  # drops them
    compiler._instantiated_types.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch, kernel_backend.active():
            patch.setattr(compiler, "source", lambda family: source)
            assert not compiler.instantiated("conv", BF16)
            with pytest.raises(TypeError, match=r"kernels/conv\.cu has no nope for bfloat16"):
                compiler.kernel("conv", "nope", BF16)
            with pytest.raises(Exception, match="nope"):  # a type it has: the lookup's error
                compiler.kernel("conv", "nope", F16)
    finally:
        compiler._instantiated_types.cache_clear()
    assert (kernel_dir() / "conv.cu").exists() and compiler.instantiated("conv", BF16)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_16_bit_net_runs_every_family_on_the_kernels(kernel_backend, dtype):
    """conv, batch norm, pooling and cross-entropy of 16-bit tensors through the ops: on the
    kernels (float32 inside) the loss and gradients follow the CPU path (NumPy in the dtype)
    within a few roundings of the dtype."""
    import gradflow.nn.functional as F
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))]

    def run(device):
        x, w = (gf.tensor(a.astype(F32), device=device).to(dtype).requires_grad_()
                for a in arrays)
        y = F.batch_norm(F.conv2d(x, w, padding=1), None, None, training=True)
        y = F.adaptive_avg_pool2d(F.max_pool2d(y, 2), 1).reshape(2, 4)
        loss = F.cross_entropy(y, gf.tensor(np.array([1, 0]), device=device))
        loss.backward()
        return [host(t.array).astype(F32) for t in (loss, x.grad, w.grad)], loss.dtype

    want, _ = run("cpu")
    with kernel_backend.active() as launched:
        got, loss_dtype = run(kernel_backend.device)
    assert loss_dtype == dtype
    assert {n.split(".")[0] for n in launched} >= {"conv", "batchnorm", "pool", "softmax_xent"}
    for what, g, w in zip(("loss", "input gradient", "weight gradient"), got, want):
        np.testing.assert_allclose(g, w, rtol=8 * TOLERANCE[dtype]["rtol"],
                                   atol=8 * TOLERANCE[dtype]["rtol"] * np.abs(w).max(),
                                   err_msg=what)
