"""The CPU bodies of max and average pooling (gradflow.ops.pool_arrays, run by the ops
`MaxPool2d` and `LinearPool`) against PyTorch (values, indices, gradients, second
derivatives), finite differences, and the composite references built from Im2col, on awkward
shapes and options; plus torch's max-pool rules for ties, NaN and windows of -inf."""
import numpy as np
import pytest
from helpers import check_gradcheck, check_op, data, distinct, require_torch, to_numpy

import gradflow as gf
from gradflow.backend import array_module
from gradflow.ops import pool

torch = require_torch()


def F(lib):
    """torch.nn.functional, or gradflow's pooling ops under the same names."""
    return pool if lib is gf else torch.nn.functional


# (id, fn(lib, x), input); max-pool inputs are `distinct`, so every window has one maximum.
CASES = [
    ("max_k1", lambda L, x: F(L).max_pool2d(x, 1), distinct(2, 3, 7, 5)),
    ("max_k2_odd", lambda L, x: F(L).max_pool2d(x, 2), distinct(2, 3, 7, 5)),
    ("max_k2_s1_overlap", lambda L, x: F(L).max_pool2d(x, 2, 1), distinct(2, 2, 7, 5)),
    ("max_k2_s3_gaps", lambda L, x: F(L).max_pool2d(x, 2, 3), distinct(2, 2, 13, 11)),
    ("max_k3_s2_p1", lambda L, x: F(L).max_pool2d(x, 3, 2, 1), distinct(2, 3, 13, 11)),
    ("max_k3_s3_ceil", lambda L, x: F(L).max_pool2d(x, 3, 3, ceil_mode=True),
     distinct(2, 2, 13, 11)),
    ("max_k3_s2_p1_ceil", lambda L, x: F(L).max_pool2d(x, 3, 2, 1, ceil_mode=True),
     distinct(1, 2, 7, 5)),
    ("max_dilation2", lambda L, x: F(L).max_pool2d(x, (3, 2), (1, 3), (1, 1), dilation=2),
     distinct(2, 2, 13, 11)),
    ("max_dilation2_ceil", lambda L, x: F(L).max_pool2d(x, 2, 3, 1, dilation=2, ceil_mode=True),
     distinct(2, 2, 7, 5)),
    ("max_batch1_indices", lambda L, x: F(L).max_pool2d(x, 3, 2, 1, return_indices=True),
     distinct(1, 1, 13, 11)),
    ("max_dilated_indices", lambda L, x: F(L).max_pool2d(x, 3, (2, 1), (1, 1), dilation=(2, 1),
                                                         ceil_mode=True, return_indices=True),
     distinct(2, 3, 7, 5)),
    ("max_unbatched_indices", lambda L, x: F(L).max_pool2d(x, 2, return_indices=True),
     distinct(3, 7, 5)),
    ("avg_k1", lambda L, x: F(L).avg_pool2d(x, 1), data(2, 3, 7, 5)),
    ("avg_k2_odd", lambda L, x: F(L).avg_pool2d(x, 2), data(2, 3, 7, 5)),
    ("avg_k2_s3_gaps", lambda L, x: F(L).avg_pool2d(x, 2, 3), data(2, 2, 13, 11)),
    ("avg_k3_s2_p1", lambda L, x: F(L).avg_pool2d(x, 3, 2, 1), data(2, 3, 13, 11)),
    ("avg_k3_s1_p1_exclude", lambda L, x: F(L).avg_pool2d(x, 3, 1, 1, count_include_pad=False),
     data(1, 2, 7, 5)),
    ("avg_ceil", lambda L, x: F(L).avg_pool2d(x, 3, 2, 1, ceil_mode=True), data(2, 2, 13, 11)),
    ("avg_ceil_overhang", lambda L, x: F(L).avg_pool2d(x, 3, 2, ceil_mode=True),
     data(2, 2, 8, 6)),
    ("avg_ceil_exclude", lambda L, x: F(L).avg_pool2d(x, (3, 2), (2, 3), (1, 1), ceil_mode=True,
                                                      count_include_pad=False),
     data(2, 2, 13, 11)),
    ("avg_divisor", lambda L, x: F(L).avg_pool2d(x, (2, 3), (1, 2), (1, 1), ceil_mode=True,
                                                 divisor_override=5),
     data(2, 2, 7, 5)),
    ("avg_batch1", lambda L, x: F(L).avg_pool2d(x, 3, 3), data(1, 1, 13, 11)),
    ("avg_unbatched", lambda L, x: F(L).avg_pool2d(x, 2, 1, 1), data(3, 7, 5)),
    ("adaptive_avg_tiles", lambda L, x: F(L).adaptive_avg_pool2d(x, (2, 5)), data(2, 3, 6, 10)),
    ("adaptive_avg_global", lambda L, x: F(L).adaptive_avg_pool2d(x, 1), data(2, 3, 7, 5)),
    ("adaptive_avg_same", lambda L, x: F(L).adaptive_avg_pool2d(x, (13, 11)),
     data(1, 2, 13, 11)),
    ("adaptive_max_tiles", lambda L, x: F(L).adaptive_max_pool2d(x, (7, 1), True),
     distinct(2, 2, 7, 5)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,x", CASES, ids=IDS)
def test_matches_torch(name, fn, x):
    check_op(fn, x)


@pytest.mark.parametrize("name,fn,x", CASES, ids=IDS)
def test_matches_torch_noncontiguous(name, fn, x):
    check_op(fn, x, noncontiguous=True, second_order=False)


@pytest.mark.parametrize("name,fn,x", CASES, ids=IDS)
def test_float32_matches_torch(name, fn, x):
    check_op(fn, x.astype(np.float32), atol=1e-5, rtol=1e-5, second_order=False)


@pytest.mark.parametrize("name,x", [
    ("max_k2_s1_overlap", distinct(1, 2, 5, 4)), ("max_k2_s3_gaps", distinct(1, 2, 7, 5)),
    ("max_k3_s2_p1_ceil", distinct(1, 2, 5, 5)), ("max_dilation2_ceil", distinct(1, 1, 7, 5)),
    ("max_unbatched_indices", distinct(2, 5, 4)), ("avg_k2_s3_gaps", data(1, 2, 7, 5)),
    ("avg_ceil_exclude", data(1, 1, 7, 5)), ("avg_divisor", data(1, 2, 5, 4)),
    ("avg_unbatched", data(2, 5, 4)), ("adaptive_avg_tiles", data(1, 2, 4, 10)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_gradcheck(name, x):
    """Finite differences, first and second order, in float64 on small planes."""
    check_gradcheck(CASES[IDS.index(name)][1], x)


def test_runs_the_array_bodies_not_the_references():
    """The CPU ops are `MaxPool2d` and `LinearPool`, so the comparisons below with the
    composite references compare two implementations."""
    x = gf.tensor(data(1, 1, 4, 4), requires_grad=True)
    assert isinstance(pool.max_pool2d(x, 2).grad_fn, pool.MaxPool2d)
    assert isinstance(pool.avg_pool2d(x, 2).grad_fn, pool.LinearPool)
    assert isinstance(pool.adaptive_avg_pool2d(x, 2).grad_fn, pool.AdaptiveLinearPool)


def _geometries(count: int):
    """Seeded random pooling geometries on small odd planes, each with at least one input
    cell in every window (a dilated window may otherwise lie wholly in the padding)."""
    rng = np.random.default_rng(0)
    found = []
    while len(found) < count:
        shape = (2, 2) + tuple(int(n) for n in rng.integers(1, 14, 2))
        kernel, stride, dilation = (tuple(int(v) for v in rng.integers(1, 4, 2))
                                    for _ in range(3))
        padding = tuple(int(rng.integers(0, (d * (k - 1) + 1) // 2 + 1))
                        for k, d in zip(kernel, dilation))
        ceil_mode = bool(rng.integers(2))
        probe = gf.tensor(np.zeros(shape))
        try:
            window, out_size = pool._pool_window("max_pool2d", probe, kernel, stride, padding,
                                                 dilation, ceil_mode)
        except RuntimeError:  # no window fits
            continue
        reads = [(np.arange(o)[:, None] * s - p + np.arange(k) * d) for o, k, s, p, d in
                 zip(out_size, kernel, stride, padding, dilation)]
        if all(((r >= 0) & (r < n)).any(1).all() for r, n in zip(reads, shape[2:])):
            found.append((shape, kernel, stride, padding, dilation, ceil_mode, window,
                          out_size))
    return found


GEOMETRIES = _geometries(40)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[str(g[:6]) for g in GEOMETRIES])
def test_max_pool_equals_composite_reference(geometry):
    shape, kernel, stride, padding, dilation, ceil_mode, window, out_size = geometry
    x = gf.tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
    g = gf.tensor(np.random.default_rng(2).standard_normal((shape[:2]) + out_size))
    ref_x = gf.tensor(to_numpy(x), requires_grad=True)
    got, indices = pool.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, True)
    want, want_indices = pool._max_pool2d_reference(ref_x, window, out_size, True)
    np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
    np.testing.assert_array_equal(to_numpy(indices), to_numpy(want_indices))
    (got * g).sum().backward()
    (want * g).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), to_numpy(ref_x.grad), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("options", [dict(count_include_pad=True, divisor_override=None),
                                     dict(count_include_pad=False, divisor_override=None),
                                     dict(count_include_pad=True, divisor_override=3)],
                         ids=["include_pad", "exclude_pad", "divisor"])
@pytest.mark.parametrize("geometry", GEOMETRIES[::2], ids=[str(g[:6]) for g in GEOMETRIES[::2]])
def test_avg_pool_equals_composite_reference(geometry, options):
    shape, kernel, stride, padding, _, ceil_mode, _, _ = geometry
    # NOTE: undilated, a kernel may pad only half its size
    padding = tuple(min(p, k // 2) for p, k in zip(padding, kernel))
    x = gf.tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
    window, out_size = pool._pool_window("avg_pool2d", x, kernel, stride, padding, 1,
                                         ceil_mode)
    ref_x = gf.tensor(to_numpy(x), requires_grad=True)
    got = pool.avg_pool2d(x, kernel, stride, padding, ceil_mode, **options)
    want = pool._avg_pool2d_reference(ref_x, window, out_size, options["count_include_pad"],
                                      options["divisor_override"])
    np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-12, atol=1e-12)
    g = gf.tensor(np.random.default_rng(2).standard_normal(tuple(got.shape)))
    (got * g).sum().backward()
    (want * g).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), to_numpy(ref_x.grad), rtol=1e-12, atol=1e-12)


def test_adaptive_avg_pool_tiles_equal_gathered_reference():
    x = gf.tensor(data(2, 3, 12, 10), requires_grad=True)
    ref_x = gf.tensor(to_numpy(x), requires_grad=True)
    got = pool.adaptive_avg_pool2d(x, (4, 5))
    want = pool._adaptive_avg_pool2d_reference(ref_x, (4, 5))
    np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-12, atol=1e-12)
    g = gf.tensor(data(2, 3, 4, 5, seed=3))
    (got * g).sum().backward()
    (want * g).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), to_numpy(ref_x.grad), rtol=1e-12, atol=1e-12)


def _max_pool_both(x: np.ndarray, g: np.ndarray | None = None, **kw):
    """max_pool2d's values, indices and input gradient (for upstream gradient g, default
    ones) from gradflow and from torch."""
    results = []
    for lib in (gf, torch):
        t = (gf.tensor(x, requires_grad=True) if lib is gf
             else torch.tensor(x, requires_grad=True))
        values, indices = F(lib).max_pool2d(t, return_indices=True, **kw)
        upstream = np.ones(tuple(values.shape)) if g is None else g
        (values * lib.tensor(upstream)).sum().backward()
        results.append([a.detach().numpy() for a in (values, indices, t.grad)])
    return results


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                dict(kernel_size=3, stride=2, dilation=2, ceil_mode=True)],
                         ids=["k2", "k3_s1_p1", "k3_s2_dilated_ceil"])
def test_ties_pick_the_first_tap_as_torch(kw):
    """On a constant input every tap ties: torch keeps the first one it scans."""
    got, want = _max_pool_both(np.full((2, 2, 7, 5), 0.5), **kw)
    for what, a, b in zip(("values", "indices", "gradient"), got, want):
        np.testing.assert_array_equal(a, b, err_msg=what)


def test_nan_propagates_with_the_last_nan_index_as_torch():
    """torch moves to a tap that beats the best so far or is NaN, so a window's value is NaN
    once it holds one, and its index that of its last NaN (and the gradient goes there)."""
    x = distinct(2, 2, 7, 5)
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = np.nan  # two NaNs in one window
    x[0, 1, 3, 2] = np.nan  # one NaN shared by overlapping windows
    x[1, 0, 6, 4] = np.nan  # in the ceil_mode overhang's window
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)):
        got, want = _max_pool_both(x, **kw)
        for what, a, b in zip(("values", "indices", "gradient"), got, want):
            np.testing.assert_array_equal(a, b, err_msg=f"{what} with {kw}")


def test_nan_and_inf_gradients_reach_only_their_maxima():
    """A non-finite upstream gradient goes to its window's maximum alone, as torch routes it
    (multiplying by a mask would put NaN on the other cells of the window)."""
    x = distinct(1, 2, 7, 5)
    kw = dict(kernel_size=3, stride=2, padding=1)
    g = np.ones((1, 2, 4, 3))
    g[0, 0, 1, 1], g[0, 1, 0, 2], g[0, 1, 3, 0] = np.nan, np.inf, -np.inf
    for overlap in (kw, dict(kernel_size=2)):
        g_here = g if overlap is kw else g[..., :3, :2]
        got, want = _max_pool_both(x, g_here, **overlap)
        np.testing.assert_array_equal(got[2], want[2], err_msg=f"gradient with {overlap}")


def test_windows_of_minus_inf_point_at_their_first_cell_inside():
    """A window no value beats (all -inf) keeps torch's starting index: its first tap inside
    the input, rows and columns each stepped past the padding by the dilation."""
    x = np.full((1, 2, 7, 5), -np.inf)
    x[0, 1, 3, 3] = 1.0
    for kw in (dict(kernel_size=3, stride=2, padding=1),
               dict(kernel_size=4, stride=2, padding=2, dilation=2, ceil_mode=True)):
        got, want = _max_pool_both(x, **kw)
        for what, a, b in zip(("values", "indices", "gradient"), got, want):
            np.testing.assert_array_equal(a, b, err_msg=f"{what} with {kw}")


def test_a_window_wholly_in_the_padding_passes_no_gradient():
    """A dilated window may hold only padding: its value is -inf and its index torch's
    starting one (here a position past the plane's width, which torch's backward then adds
    to another cell); the output does not depend on the input, so no gradient flows."""
    x = gf.tensor(distinct(1, 2, 5, 1), requires_grad=True)
    values, indices = pool.max_pool2d(x, 2, 3, 1, dilation=2, return_indices=True)
    want, want_indices = torch.nn.functional.max_pool2d(
        torch.tensor(distinct(1, 2, 5, 1)), 2, 3, 1, dilation=2, return_indices=True)
    np.testing.assert_array_equal(to_numpy(values), want.numpy())
    np.testing.assert_array_equal(to_numpy(indices), want_indices.numpy())
    (values * gf.ones_like(values)).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), np.zeros((1, 2, 5, 1)))


def test_indices_are_int64_plane_positions_on_strided_views():
    """return_indices gives torch's int64 flat positions in the (unpadded) input plane, also
    for a sliced, transposed view, whose plane is the view's."""
    base = distinct(2, 3, 15, 12)
    x = gf.tensor(base)[:, :, 1::2, 1:].transpose(2, 3)  # (2, 3, 11, 7), no unit strides
    assert not x.array.flags.c_contiguous and not x.array.flags.f_contiguous
    got, idx = pool.max_pool2d(x, 3, 2, 1, return_indices=True)
    view = np.ascontiguousarray(base[:, :, 1::2, 1:].transpose(0, 1, 3, 2))
    want, want_idx = torch.nn.functional.max_pool2d(torch.tensor(view), 3, 2, 1,
                                                    return_indices=True)
    assert idx.dtype == gf.int64
    np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
    np.testing.assert_array_equal(to_numpy(idx), to_numpy(want_idx))


def test_integer_inputs_match_torch():
    """Integer planes pool too (no NaN to track; the lowest integer stands for -inf)."""
    x = np.random.default_rng(0).integers(-3, 3, (2, 3, 7, 5))
    check_op(lambda L, t: F(L).max_pool2d(t, 3, 2, 1, ceil_mode=True, return_indices=True), x)


def test_lenet_pooling_matches_torch():
    """LeNet-5's 2x2 average pooling on its feature maps (gradflow.models.lenet)."""
    check_op(lambda L, x: F(L).avg_pool2d(x, 2) * 4, data(3, 6, 28, 28).astype(np.float32),
             atol=1e-5, rtol=1e-5, second_order=False)


@pytest.mark.parametrize("fn", [
    lambda x: pool.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True),
    lambda x: pool.max_pool2d(x, 2),
    lambda x: pool.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda x: pool.adaptive_avg_pool2d(x, (2, 5)),
], ids=["max_overlap", "max_k2", "avg", "adaptive_tiles"])
def test_array_bodies_run_on_cupy_arrays_the_kernels_do_not_take(fake_cuda, fn, monkeypatch):
    """CuPy arrays the kernels do not take (here: any, the kernels switched off) take the
    array-module path, so the bodies must be CuPy-generic: values and gradients equal the
    NumPy ones."""
    from gradflow.cuda import compiler
    monkeypatch.setattr(compiler, "uses_kernels", lambda a: False)
    x = distinct(2, 3, 6, 10, dtype=np.float16) / 64
    results = []
    for device in ("cpu", "cuda"):
        t = gf.tensor(x, device=device, requires_grad=True)
        assert (array_module(t.array) is fake_cuda) == (device == "cuda")
        outs = fn(t)
        outs = outs if isinstance(outs, tuple) else (outs,)
        outs[0].sum().backward()
        results.append([to_numpy(o) for o in outs] + [to_numpy(t.grad)])
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)
