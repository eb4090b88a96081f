"""gradflow's CUDA kernels against the NumPy path, forward and backward, on awkward shapes.

Each case runs an op twice on the same inputs: through the reference (the NumPy path on the
CPU) and through the kernels (on a GPU, or on the CPU through the kernel emulator), then
compares outputs and input gradients. Every case also asserts which kernels ran, so a
dispatch that silently fell back to the reference cannot pass.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import as_tuple, data, distinct, to_numpy
from test_optim import TRAJECTORY_CASES, trajectory

import gradflow as gf
import gradflow.nn.functional as F

TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def _inputs(arrays, device, noncontiguous):
    out = []
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and noncontiguous and a.ndim >= 2:
            t = gf.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), device=device)
            t = t.transpose(-1, -2)
        elif isinstance(a, np.ndarray):
            t = gf.tensor(a, device=device)
        else:
            out.append(a)
            continue
        out.append(t.requires_grad_(a.dtype.kind == "f"))
    return out


def run(fn, arrays, device, noncontiguous=False):
    """fn's float outputs and the gradients of a fixed random weighting of them with respect
    to every float input, as NumPy arrays."""
    inputs = _inputs(arrays, device, noncontiguous)
    outs = [o for o in as_tuple(fn(*inputs)) if o.dtype.kind == "f"]
    rng = np.random.default_rng(7)
    loss = sum((o * gf.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype,
                              device=device)).sum() for o in outs)
    loss.backward()
    grads = [to_numpy(t.grad) for t in inputs if isinstance(t, gf.Tensor) and t.requires_grad]
    return [to_numpy(o) for o in as_tuple(fn(*inputs))], grads


def check_kernel(backend, kernels, fn, *arrays, noncontiguous=False):
    """fn through `backend`'s kernels equals fn on the NumPy path; `kernels` must all run."""
    ref_outs, ref_grads = run(fn, arrays, "cpu")
    with backend.active() as launched:
        outs, grads = run(fn, arrays, backend.device, noncontiguous)
    missing = set(kernels) - set(launched)
    assert not missing, f"kernels {sorted(missing)} did not run (launched: {set(launched)})"
    dtype = next(a.dtype.type for a in arrays if isinstance(a, np.ndarray) and
                 a.dtype.kind == "f")
    for what, got, want in (("output", outs, ref_outs), ("gradient", grads, ref_grads)):
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g, w, **TOLERANCE[dtype],
                                       err_msg=f"{what} {i} differs from the NumPy path")


DTYPES = [np.float32, np.float64]

CONV_CASES = {
    # name: (x shape, weight shape, conv2d keyword arguments)
    "batch1_1x1": ((1, 3, 5, 7), (4, 3, 1, 1), {}),
    "odd_pad": ((3, 5, 9, 7), (7, 5, 3, 3), dict(padding=1)),
    "stride_dilation": ((2, 3, 11, 13), (5, 3, 3, 2), dict(stride=(2, 3), dilation=(2, 1),
                                                          padding=(2, 1))),
    "groups": ((2, 6, 8, 8), (9, 2, 3, 3), dict(groups=3, padding=1)),
    "same": ((2, 3, 6, 5), (2, 3, 4, 3), dict(padding="same")),
    "pixel1": ((2, 4, 1, 1), (3, 4, 1, 1), {}),
    "batch257": ((257, 2, 4, 3), (3, 2, 2, 2), dict(stride=2)),
    "channels37": ((2, 37, 5, 5), (33, 37, 3, 3), {}),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_kernels(kernel_backend, case, dtype):
    xs, ws, kw = CONV_CASES[case]
    check_kernel(kernel_backend, ["conv.im2col", "conv.col2im"],
                 lambda x, w, b: F.conv2d(x, w, b, **kw),
                 data(*xs, dtype=dtype), data(*ws, dtype=dtype, seed=1),
                 data(ws[0], dtype=dtype, seed=2), noncontiguous=case == "odd_pad")


@pytest.mark.parametrize("dtype", DTYPES)
def test_unfold_layout_kernels(kernel_backend, dtype):
    """im2col/col2im in the per-sample layout (unfold's; conv uses the batch-inner one)."""
    from gradflow.ops.conv import Im2col, Window
    window = Window((3, 2), (2, 1), (1, 2), (1, 0, 2, 1))
    check_kernel(kernel_backend, ["conv.im2col", "conv.col2im"],
                 lambda x: Im2col.apply(x, window=window, value=0.0),
                 data(3, 5, 7, 6, dtype=dtype))


def test_conv2d_chunks_the_batch(kernel_backend):
    """With a workspace of one sample's columns, conv runs a sample at a time, same result."""
    default = gf.get_conv_workspace_limit()
    gf.set_conv_workspace_limit(3 * 9 * 25 * 8)
    try:
        check_kernel(kernel_backend, ["conv.im2col"], lambda x, w: F.conv2d(x, w, padding=1),
                     data(5, 3, 5, 5), data(4, 3, 3, 3, seed=1))
        with kernel_backend.active() as launched:
            F.conv2d(gf.tensor(data(5, 3, 5, 5), device=kernel_backend.device),
                     gf.tensor(data(4, 3, 3, 3), device=kernel_backend.device), padding=1)
        assert launched.count("conv.im2col") == 5, launched
    finally:
        gf.set_conv_workspace_limit(default)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="set_conv_workspace_limit: nbytes must be a "
                                             "positive int, got " + re.escape(repr(bad))):
            gf.set_conv_workspace_limit(bad)


POOL_CASES = {
    "max_2x2": lambda x: F.max_pool2d(x, 2),
    "max_ceil_pad_dilation": lambda x: F.max_pool2d(x, 3, stride=2, padding=1, dilation=2,
                                                    ceil_mode=True, return_indices=True),
    "max_overlap_indices": lambda x: F.max_pool2d(x, (3, 2), stride=1, return_indices=True),
    "avg_pad_exclude": lambda x: F.avg_pool2d(x, 3, stride=2, padding=1,
                                              count_include_pad=False),
    "avg_ceil_include": lambda x: F.avg_pool2d(x, (2, 3), stride=2, ceil_mode=True),
    "avg_divisor": lambda x: F.avg_pool2d(x, 2, stride=1, divisor_override=3),
    "adaptive_uneven": lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
    "adaptive_1x1": lambda x: F.adaptive_avg_pool2d(x, 1),
    "adaptive_grow": lambda x: F.adaptive_avg_pool2d(x, (9, 2)),
}
POOL_KERNELS = {"max": ["pool.maxpool2d_fwd", "pool.maxpool2d_bwd"],
                "avg": ["pool.avgpool2d_fwd", "pool.avgpool2d_bwd"],
                "adaptive": ["pool.adaptive_avgpool2d_fwd", "pool.adaptive_avgpool2d_bwd"]}


@pytest.mark.parametrize("shape", [(1, 1, 7, 5), (3, 5, 11, 13), (257, 2, 4, 4)],
                         ids=["1x1x7x5", "3x5x11x13", "257x2x4x4"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_kernels(kernel_backend, case, dtype, shape):
    fn = POOL_CASES[case]
    check_kernel(kernel_backend, POOL_KERNELS[case.split("_")[0]], fn,
                 distinct(*shape, dtype=dtype), noncontiguous=shape[0] == 3)


def test_max_pool_kernel_propagates_nan_with_the_last_nans_index(kernel_backend):
    """A window holding NaNs gives NaN and the index of its last NaN (torch's rule on both of
    its backends), so the gradient reaches that cell on the kernel and the CPU path alike."""
    x = distinct(2, 3, 6, 5)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[1, 2, 3, 3] = np.nan
    check_kernel(kernel_backend, POOL_KERNELS["max"],
                 lambda x: F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True), x)
    _, indices = F.max_pool2d(gf.tensor(x), 3, stride=2, padding=1, return_indices=True)
    assert to_numpy(indices)[0, 0, 0, 0] == 1 * 5 + 0  # the later of the window's two NaNs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 7), (3, 37, 5, 3), (257, 2, 1, 1)],
                         ids=["NC", "NCL", "NCHW_37", "N257"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_norm_kernels(kernel_backend, shape, dtype, affine):
    c = shape[1]
    weight = data(c, dtype=dtype, seed=3) if affine else None
    bias = data(c, dtype=dtype, seed=4) if affine else None

    def fn(x, *wb):
        rm, rv = gf.zeros(c, dtype=x.dtype, device=x.device), gf.ones(c, dtype=x.dtype,
                                                                      device=x.device)
        out = F.batch_norm(x, rm, rv, *wb, training=True, momentum=0.3)
        return out, rm, rv

    arrays = [data(*shape, dtype=dtype) * 3 + 1] + ([weight, bias] if affine else [])
    check_kernel(kernel_backend, ["batchnorm.bn_stats", "batchnorm.bn_apply",
                                  "batchnorm.bn_grad_sums", "batchnorm.bn_grad_input"],
                 fn, *arrays)


XENT_CASES = {
    "plain": dict(),
    "sum": dict(reduction="sum"),
    "none": dict(reduction="none"),
    "weighted_ignore": dict(weight=True, ignore_index=2),
    "smoothing": dict(label_smoothing=0.2),
    "all_options": dict(weight=True, ignore_index=0, label_smoothing=0.1, reduction="sum"),
    "none_smooth_weight": dict(weight=True, label_smoothing=0.3, reduction="none"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 10), (5, 37), (257, 3), (3, 1000), (2, 5, 3, 4)],
                         ids=["1x1", "7x10", "5x37", "257x3", "3x1000", "NCHW"])
@pytest.mark.parametrize("case", XENT_CASES)
def test_cross_entropy_kernels(kernel_backend, case, shape, dtype):
    options = dict(XENT_CASES[case])
    c = shape[1]
    target_shape = (shape[0],) + shape[2:]
    target = np.random.default_rng(5).integers(0, c, target_shape)
    if options.get("ignore_index") is not None and target.size > 1:
        target.reshape(-1)[::3] = options["ignore_index"]
    # NOTE: the class weights are constants (torch gives them no gradient either).
    weight = np.random.default_rng(6).uniform(0.5, 2.0, c).astype(dtype) \
        if options.pop("weight", False) else None

    def fn(x, t):
        w = None if weight is None else gf.tensor(weight, device=x.device)
        return F.cross_entropy(x, t, w, **options)

    check_kernel(kernel_backend, ["softmax_xent.softmax_xent_fwd",
                                  "softmax_xent.softmax_xent_bwd"],
                 fn, data(*shape, dtype=dtype) * 4, target)


def test_cross_entropy_bad_target_is_nan_and_named(kernel_backend):
    """The kernel never reads out of bounds for a class index out of range (that row's loss
    is NaN), and the op reports the index as an IndexError naming cross_entropy: at once on
    the host, at the next host read on a GPU."""
    from gradflow.cuda import softmax_xent
    with kernel_backend.active():
        x = gf.tensor(data(3, 4), device=kernel_backend.device)
        t = gf.tensor(np.array([0, 4, 1]), device=kernel_backend.device)
        loss = softmax_xent.forward(x.array, t.array, None, -100, 0.0)[0]
        with pytest.raises(IndexError, match="cross_entropy: .*target.* out of bounds for 4 "
                           "classes"):
            to_numpy(F.cross_entropy(x, t, reduction="none"))
    values = loss.get() if hasattr(loss, "get") else loss
    assert np.isnan(values[1]) and np.isfinite(values[[0, 2]]).all(), values


@pytest.mark.parametrize("op", ["conv", "max_pool", "avg_pool", "adaptive", "batch_norm",
                                "cross_entropy"])
def test_kernel_ops_gradcheck(kernel_backend, op):
    """Finite differences in float64 agree with the kernels' first and second derivatives."""
    target = gf.tensor(np.array([1, 0, 2]), device=kernel_backend.device)
    fns = {
        "conv": lambda x, w: F.conv2d(x, w, stride=2, padding=1),
        "max_pool": lambda x: F.max_pool2d(x, 2, stride=1, padding=1),
        "avg_pool": lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        "adaptive": lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
        "batch_norm": lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        "cross_entropy": lambda x: F.cross_entropy(x, target, label_smoothing=0.1),
    }
    shapes = {"conv": [(2, 2, 5, 4), (3, 2, 3, 3)], "batch_norm": [(3, 2, 2, 3), (2,), (2,)],
              "cross_entropy": [(3, 4)]}
    arrays = [distinct(*s, seed=i) for i, s in enumerate(shapes.get(op, [(2, 2, 5, 4)]))]
    with kernel_backend.active() as launched:
        inputs = [gf.tensor(a, device=kernel_backend.device, requires_grad=True)
                  for a in arrays]
        # NOTE: conv's and batch norm's full Jacobians cost hundreds of emulated launches (the
        # slowest gradchecks of the suite); one random direction per input costs a handful.
        # Their NumPy twins get the full check in test_conv_pool.py and test_nn.py.
        fast = op in ("conv", "batch_norm")
        assert gf.autograd.gradcheck(fns[op], inputs, fast_mode=fast)
        assert gf.autograd.gradgradcheck(fns[op], inputs, fast_mode=fast)
    assert launched, "no kernel ran"


RULES = {"SGD": "sgd", "Adam": "adam", "AdamW": "adam", "RMSprop": "rmsprop",
         "Adagrad": "adagrad"}


@pytest.mark.parametrize("name,kwargs,groups", TRAJECTORY_CASES,
                         ids=[f"{n}-{k}-{g}" for n, k, g in TRAJECTORY_CASES])
def test_fused_optimizer_kernels(kernel_backend, name, kwargs, groups):
    """20 steps of each optimizer through its fused kernel follow the NumPy update rule."""
    want = trajectory(gf, name, kwargs, groups, "cpu")
    with kernel_backend.active() as launched:
        got = trajectory(gf, name, kwargs, groups, kernel_backend.device)
    assert f"optim.{RULES[name]}_update" in launched, set(launched)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=f"parameter {i}")


@pytest.mark.parametrize("index", [
    lambda: (np.array([0, 3, 3, 1, 3, 0]),),
    lambda: (np.array([[1, 1], [2, 1]]), np.array([0, 0])),
    lambda: (slice(None), np.array([2, 0, 2, 2])),
    lambda: (np.array([True, False, True, True, False]),),
    lambda: (np.array([], dtype=np.int64),),
], ids=["repeats", "pairs", "slice_then_array", "mask", "empty"])
def test_ordered_scatter_add_equals_add_at(index):
    """The deterministic scatter-add (used on the GPU under use_deterministic_algorithms)
    sums exactly what NumPy's sequential add.at sums."""
    from gradflow.ops.index import scatter_add_in_order
    items = index()
    base = np.zeros((5, 4))
    values = data(*base[items].shape, seed=3)
    want = base.copy()
    np.add.at(want, items, values)
    got = base.copy()
    scatter_add_in_order(got, items, values)
    np.testing.assert_array_equal(got, want)


@pytest.mark.gpu
def test_deterministic_indexing_backward_on_gpu():
    """With use_deterministic_algorithms(True), the indexing backward sums duplicates in a
    fixed order: two runs agree bit for bit, and match the CPU."""
    idx = np.random.default_rng(0).integers(0, 50, 100_000)
    x = data(50, 3, dtype=np.float32)
    gf.use_deterministic_algorithms(True)
    try:
        grads = []
        for _ in range(2):
            t = gf.tensor(x, device="cuda", requires_grad=True)
            (t[gf.tensor(idx, device="cuda")] * 1.5).sum().backward()
            grads.append(to_numpy(t.grad))
    finally:
        gf.use_deterministic_algorithms(False)
    np.testing.assert_array_equal(grads[0], grads[1])
    want = np.zeros_like(x)
    np.add.at(want, idx, np.float32(1.5))
    np.testing.assert_allclose(grads[0], want, rtol=1e-5)


def test_use_deterministic_algorithms_flag():
    assert not gf.are_deterministic_algorithms_enabled()
    gf.use_deterministic_algorithms(True)
    try:
        assert gf.are_deterministic_algorithms_enabled()
    finally:
        gf.use_deterministic_algorithms(False)
    with pytest.raises(TypeError, match="mode must be a bool"):
        gf.use_deterministic_algorithms(1)


def _small_net():
    return gf.nn.Sequential(
        gf.nn.Conv2d(3, 6, 3, padding=1), gf.nn.BatchNorm2d(6), gf.nn.ReLU(), gf.nn.MaxPool2d(2),
        gf.nn.Conv2d(6, 8, 3, stride=2, groups=2, padding=1), gf.nn.AvgPool2d(2, ceil_mode=True),
        gf.nn.AdaptiveAvgPool2d((1, 2)), gf.nn.Flatten(), gf.nn.Linear(16, 5)).double()


def test_training_steps_of_a_small_net(kernel_backend):
    """Three SGD steps of a net using every kernel family follow the NumPy path."""
    def train(device):
        gf.manual_seed(0)
        model = _small_net().to(device)
        opt = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x = gf.tensor(data(4, 3, 9, 11), device=device)
        y = gf.tensor(np.array([0, 4, 2, 2]), device=device)
        for _ in range(3):
            opt.zero_grad()
            gf.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1).backward()
            opt.step()
        return [to_numpy(t) for t in model.state_dict().values()]

    want = train("cpu")
    with kernel_backend.active() as launched:
        got = train(kernel_backend.device)
    families = {name.split(".")[0] for name in launched}
    assert families == {"conv", "pool", "batchnorm", "softmax_xent", "optim"}, families
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=f"state entry {i}")


def test_compiled_source_inlines_headers():
    """The loader hands NVRTC each family with common.cuh pasted in, so CuPy's cache (keyed on
    the code) is invalidated by a header change, and lists every instantiated kernel."""
    from gradflow.cuda import compiler
    from gradflow.kernels_path import kernel_dir
    header = (kernel_dir() / "common.cuh").read_text()
    for path in sorted(kernel_dir().glob("*.cu")):
        code = compiler.source(path.stem)
        assert "#include" not in code and "block_sum" in code and "#pragma once" not in code
        assert header.split("#pragma once")[1].strip() in code
        assert len(compiler.name_expressions(code)) == path.read_text().count(
            "template __global__"), path.name
