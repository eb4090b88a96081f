"""kernels/depthwise.cu (through gradflow/cuda/depthwise.py) against its NumPy twin, the
grouped-convolution path of gradflow/ops/conv.py: conv2d with groups == in_channels, forward,
input gradient and weight gradient, on awkward sizes and both dtypes. Without a GPU the
kernels run through the emulator (tests/emulator/); on one, also on the device. The CuPy path
(the fake's stand-in) is held to PyTorch's conv2d(groups=C), and a gpu-marked test holds the
real device to PyTorch on MobileNet-sized layers."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import check_cupy_path, check_op, check_op_raises, data, distinct, to_numpy
from test_kernels import TOLERANCE, run

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.cuda import compiler, depthwise

DTYPES = [np.float32, np.float64]
KERNELS = ["depthwise.depthwise2d_fwd", "depthwise.depthwise2d_bwd_input",
           "depthwise.depthwise2d_bwd_weight"]
LOWERING = {"conv.im2col", "conv.col2im"}  # the grouped path's kernels: must not run

CASES = {
    # name: (x shape, weight shape, conv2d keyword arguments without groups = x's channels)
    "batch1_3x3": ((1, 3, 5, 7), (3, 1, 3, 3), dict(padding=1)),
    "prime_stride2": ((2, 7, 11, 13), (7, 1, 3, 3), dict(stride=2, padding=1)),
    "1x1": ((3, 5, 4, 6), (5, 1, 1, 1), {}),
    "7x7_pad3": ((2, 3, 9, 8), (3, 1, 7, 7), dict(padding=3)),
    "dilation2_pad2": ((2, 5, 10, 9), (5, 1, 3, 3), dict(dilation=2, padding=2)),
    "multiplier2": ((2, 3, 8, 7), (6, 1, 3, 2), dict(stride=(2, 1), padding=(2, 1),
                                                     dilation=(1, 2))),
    "same_uneven": ((2, 4, 6, 5), (4, 1, 4, 3), dict(padding="same")),
    "pixel1": ((3, 2, 1, 1), (2, 1, 1, 1), {}),
    "pad_beyond_kernel": ((1, 3, 2, 3), (3, 1, 2, 2), dict(padding=3, stride=3)),
    "large": ((3, 16, 23, 19), (32, 1, 3, 3), dict(stride=2, padding=1)),
}


class _Poisoned:
    """An array module whose `empty` is NaN-filled, so an output element a kernel leaves
    unwritten cannot pass by holding a freed buffer's right value."""

    def __init__(self, xp) -> None:
        self.xp = xp

    def __getattr__(self, name: str):
        return getattr(self.xp, name)

    def empty(self, shape, dtype):
        return self.xp.full(shape, np.nan, dtype)


def check_depthwise(backend, fn, *arrays, noncontiguous=False):
    """fn through kernels/depthwise.cu equals fn on the NumPy path (values and gradients);
    all three depthwise kernels ran and the im2col lowering did not."""
    ref_outs, ref_grads = run(fn, arrays, "cpu")
    module = depthwise.array_module
    with backend.active() as launched, pytest.MonkeyPatch.context() as patch:
        patch.setattr(depthwise, "array_module", lambda a: _Poisoned(module(a)))
        outs, grads = run(fn, arrays, backend.device, noncontiguous)
    assert set(KERNELS) <= set(launched) and not LOWERING & set(launched), launched
    tolerance = TOLERANCE[arrays[0].dtype.type]
    for what, got, want in (("output", outs, ref_outs), ("gradient", grads, ref_grads)):
        assert len(got) == len(want) > 0, (what, len(got), len(want))
        for i, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g, w, **tolerance,
                                       err_msg=f"{what} {i} differs from the NumPy path")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_depthwise_kernels_equal_the_grouped_path(kernel_backend, case, dtype):
    xs, ws, kw = CASES[case]
    check_depthwise(kernel_backend, lambda x, w: F.conv2d(x, w, groups=xs[1], **kw),
                    data(*xs, dtype=dtype), data(*ws, dtype=dtype, seed=1),
                    noncontiguous=case in ("prime_stride2", "multiplier2"))


@pytest.mark.parametrize("case", ["conv1d", "conv_transpose2d", "conv_transpose2d_mult2"])
def test_conv1d_and_transposed_depthwise_run_the_kernels(kernel_backend, case):
    """conv1d runs conv2d's ops on a height-1 image, and a transposed convolution whose
    groups equal its output channels is a depthwise conv2d's input gradient: both take the
    depthwise kernels."""
    fns = {
        "conv1d": (lambda x, w: F.conv1d(x, w, groups=5, stride=2, padding=2),
                   (2, 5, 17), (10, 1, 4)),
        "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, groups=4, stride=2,
                                                             padding=1, output_padding=1),
                             (2, 4, 5, 6), (4, 1, 3, 3)),
        "conv_transpose2d_mult2": (lambda x, w: F.conv_transpose2d(x, w, groups=3,
                                                                   dilation=2),
                                   (1, 6, 4, 5), (6, 1, 2, 3)),
    }
    fn, xs, ws = fns[case]
    check_depthwise(kernel_backend, fn, data(*xs), data(*ws, seed=1))


def test_depthwise_kernels_past_their_grid_cap(kernel_backend, monkeypatch):
    """With the grid capped at 2 blocks, the grid-stride loops (forward, input gradient) and
    the weight gradient's block-stride loop over its entries cover every element."""
    monkeypatch.setattr(compiler, "MAX_BLOCKS", 2)
    check_depthwise(kernel_backend, lambda x, w: F.conv2d(x, w, groups=3, padding=1),
                    data(2, 3, 17, 19), data(6, 1, 3, 3, seed=1))


def test_depthwise_gradcheck_on_the_kernels(kernel_backend):
    """Finite differences in float64 agree with the kernels' first and second derivatives
    (one random direction per input: the full Jacobians cost hundreds of emulated launches)."""
    with kernel_backend.active() as launched:
        inputs = [gf.tensor(distinct(*shape, seed=seed), device=kernel_backend.device,
                            requires_grad=True)
                  for seed, shape in enumerate([(2, 3, 6, 5), (6, 1, 3, 2)])]

        def fn(x, w):
            return F.conv2d(x, w, groups=3, stride=(2, 1), padding=(1, 2), dilation=(1, 2))

        assert gf.autograd.gradcheck(fn, inputs, fast_mode=True)
        assert gf.autograd.gradgradcheck(fn, inputs, fast_mode=True)
    assert set(KERNELS) <= set(launched) and not LOWERING & set(launched), launched


def test_depthwise_weight_gradient_of_an_empty_batch(kernel_backend):
    """N = 0: an empty output and input gradient, and a zero weight gradient."""
    with kernel_backend.active():
        x = gf.tensor(np.zeros((0, 3, 5, 5)), device=kernel_backend.device, requires_grad=True)
        w = gf.tensor(data(3, 1, 3, 3), device=kernel_backend.device, requires_grad=True)
        y = F.conv2d(x, w, groups=3, padding=1)
        y.sum().backward()
    assert tuple(y.shape) == (0, 3, 5, 5) and tuple(x.grad.shape) == (0, 3, 5, 5)
    np.testing.assert_array_equal(to_numpy(w.grad), np.zeros((3, 1, 3, 3)))


def test_depthwise_dtypes_are_the_files_instantiations():
    """The launcher's DTYPES, which the op's dispatch asks, are exactly the element types
    kernels/depthwise.cu instantiates for each of its three kernels (so a dtype added to
    compiler.C_TYPES for other families takes the grouped path, not a missing kernel)."""
    c_names = {compiler.C_TYPES.get(dt, str(dt)) for dt in depthwise.DTYPES}
    expressions = compiler.name_expressions(compiler.source("depthwise"))
    want = {f"{k.split('.')[1]}<{c}>" for k in KERNELS for c in c_names}
    assert set(expressions) == want, (expressions, want)



def test_a_kernel_dtype_without_depthwise_lines_takes_the_grouped_path(kernel_backend,
                                                                        monkeypatch):
    """A kernel dtype that kernels/depthwise.cu does not instantiate runs im2col + GEMM."""
    monkeypatch.setattr(depthwise, "DTYPES", (np.dtype(np.float64),))
    x, w = data(2, 3, 6, 5, dtype=np.float32), data(3, 1, 3, 3, dtype=np.float32, seed=1)
    with kernel_backend.active() as launched:
        y = F.conv2d(gf.tensor(x, device=kernel_backend.device),
                     gf.tensor(w, device=kernel_backend.device), groups=3, padding=1)
    assert "conv.im2col" in launched and not set(KERNELS) & set(launched), launched
    np.testing.assert_allclose(to_numpy(y), to_numpy(F.conv2d(gf.tensor(x), gf.tensor(w),
                                                              groups=3, padding=1)),
                               **TOLERANCE[np.float32])

# -- the CuPy path (tests/fakecupy.py) against PyTorch --------------------------------------
TORCH_CASES = {
    # name: (x shape, weight shape, keywords), on the fake CuPy
    "multiplier2_stride2": ((2, 3, 7, 8), (6, 1, 3, 3), dict(stride=2, padding=1, groups=3)),
    "prime_dilation": ((1, 5, 9, 7), (5, 1, 3, 2), dict(dilation=2, padding=(2, 1),
                                                        groups=5)),
    "7x7_same": ((2, 2, 7, 7), (2, 1, 7, 7), dict(padding="same", groups=2)),
}


@pytest.mark.parametrize("case", TORCH_CASES)
def test_depthwise_cupy_path_equals_torch(fake_cuda, case):
    """On the CuPy path the depthwise kernels give PyTorch's conv2d(groups=C): values, first
    and second derivatives (float64), and the same results as the CPU twin in float32; the
    bias is added outside the kernels."""
    xs, ws, kw = TORCH_CASES[case]
    fake_cuda.clear_events()
    check_op(lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, **kw), xs, ws, (ws[0],),
             device="cuda", noncontiguous=case == "prime_dilation")
    launched = {e.where.split("<")[0] for e in fake_cuda.events_of("launch")}
    assert set(KERNELS) <= launched and not LOWERING & launched, launched
    check_cupy_path(lambda x, w: F.conv2d(x, w, **kw), data(*xs, dtype=np.float32),
                    data(*ws, dtype=np.float32, seed=1), rtol=2e-5, atol=2e-6)


def test_depthwise_module_on_the_cupy_path(fake_cuda):
    """nn.Conv2d(C, 2C, groups=C), MobileNet's depthwise layer, trains on the CuPy path
    through the kernels and gives the CPU's output and gradients."""
    gf.manual_seed(3)
    layer = gf.nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4, bias=False)
    x = data(2, 4, 9, 9, dtype=np.float32)
    results = []
    for device in ("cpu", "cuda"):
        layer.to(device)
        layer.weight.grad = None
        fake_cuda.clear_events()
        y = layer(gf.tensor(x, device=device))
        (y * y).sum().backward()
        results.append((to_numpy(y), to_numpy(layer.weight.grad)))
        launched = {e.where.split("<")[0] for e in fake_cuda.events_of("launch")}
        ran = set(KERNELS[::2]) <= launched  # no input gradient: x needs none
        assert ran == (device == "cuda") and not LOWERING & launched, (device, launched)
    for cpu, cuda in zip(*results):
        np.testing.assert_allclose(cuda, cpu, **TOLERANCE[np.float32])


def test_depthwise_errors_name_conv2d():
    """A depthwise weight with the wrong channel count, or of another dtype, is refused as
    PyTorch refuses it, naming conv2d and the shapes."""
    err = check_op_raises(lambda lib, x, w: lib.nn.functional.conv2d(x, w, groups=3),
                          (2, 3, 5, 5), (6, 2, 3, 3), op="conv2d")
    assert "(6, 2, 3, 3)" in str(err), err
    check_op_raises(lambda lib, x, w: lib.nn.functional.conv2d(x, w.float(), groups=3),
                    (2, 3, 5, 5), (3, 1, 3, 3), op="conv2d")


# -- a real GPU against PyTorch -------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,stride", [((8, 32, 56, 56), 1), ((4, 96, 28, 28), 2),
                                          ((2, 37, 15, 13), 1)])
def test_depthwise_on_the_gpu_equals_torch(shape, stride, dtype):
    """MobileNet v2's depthwise layers on the device against PyTorch's CPU conv2d(groups=C),
    forward and both gradients, through the depthwise kernels; the weight gradient (a block
    reduction) is bitwise the same run to run."""
    torch = pytest.importorskip("torch")
    c = shape[1]
    x, w = data(*shape, dtype=dtype), data(c, 1, 3, 3, dtype=dtype, seed=1)
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
    ty = torch.nn.functional.conv2d(tx, tw, stride=stride, padding=1, groups=c)
    gy = np.random.default_rng(2).standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(gy))
    launched: list = []
    real_launch = compiler.launch

    def counting_launch(family, name, *args, **kwargs):
        launched.append(f"{family}.{name}")
        return real_launch(family, name, *args, **kwargs)

    grads = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiler, "launch", counting_launch)
        for _ in range(2):
            xt, wt = (gf.tensor(a, device="cuda", requires_grad=True) for a in (x, w))
            y = F.conv2d(xt, wt, stride=stride, padding=1, groups=c)
            y.backward(gf.tensor(gy, device="cuda"))
            grads.append((to_numpy(y), to_numpy(xt.grad), to_numpy(wt.grad)))
    assert set(KERNELS) <= set(launched) and not LOWERING & set(launched), launched
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10,
                                                                             atol=1e-10)
    for got, want, what in zip(grads[0], (ty, tx.grad, tw.grad), ("output", "input grad",
                                                                  "weight grad")):
        np.testing.assert_allclose(got, want.detach().numpy(), **tolerance,
                                   err_msg=f"{what} differs from torch")
    for first, second in zip(*grads):
        np.testing.assert_array_equal(first, second, err_msg="not deterministic")


@pytest.mark.parametrize("dtype", [gf.float16, gf.bfloat16])
def test_16_bit_depthwise_kernels_round_their_float32_results(kernel_backend, dtype):
    """The __half and __nv_bfloat16 kernels sum in float32 and round once: each output is
    the float32 kernel's on the same (rounded) inputs, rounded to the dtype."""
    from gradflow.ops.window import Window
    window = Window(kernel=(3, 2), stride=(2, 1), dilation=(1, 2), padding=(1, 1, 2, 1))
    x = data(2, 6, 9, 7, dtype=np.float32).astype(dtype)
    w = data(12, 1, 3, 2, dtype=np.float32, seed=1).astype(dtype)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    tolerance = {gf.float16: dict(rtol=2.0 ** -10, atol=1e-4),
                 gf.bfloat16: dict(rtol=2.0 ** -7, atol=1e-3)}[dtype]
    with kernel_backend.active() as launched:
        y, y32 = depthwise.forward(x, w, window), depthwise.forward(x32, w32, window)
        gy = y32.astype(dtype)
        gx = depthwise.grad_input(gy, w, x.shape, window)
        gx32 = depthwise.grad_input(gy.astype(np.float32), w32, x.shape, window)
        gw = depthwise.grad_weight(x, gy, w.shape, window)
        gw32 = depthwise.grad_weight(x32, gy.astype(np.float32), w.shape, window)
    assert set(KERNELS) <= set(launched)
    for what, got, want in (("output", y, y32), ("input gradient", gx, gx32),
                            ("weight gradient", gw, gw32)):
        got, want = (a if isinstance(a, np.ndarray) else a.get() for a in (got, want))
        assert got.dtype == dtype, (what, got.dtype)
        np.testing.assert_allclose(got.astype(np.float32), want.astype(dtype).astype(np.float32),
                                   **tolerance, err_msg=what)
