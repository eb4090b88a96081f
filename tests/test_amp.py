"""Automatic mixed precision against PyTorch 2.13's own: the output dtype of every op in the
autocast policy tables under CPU autocast (bfloat16 and float16), the CUDA table on the fake
CuPy against PyTorch's documented lists, regions (nesting, disabling, decorators, the weight
cache), gradients reaching float32 leaves, and a 50-step GradScaler run with injected infs
that must give torch.amp.GradScaler('cpu')'s scales, skipped steps and parameters."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import data, require_torch

import gradflow as gf
import gradflow.nn.functional as GF
from gradflow.amp import autocast_mode, policy

torch = require_torch()
TF = torch.nn.functional

# Public functions made of several ops (or that check dtypes before their op runs): they take
# their policy from `@autocast_policy(name)`, which the lead adds in their own modules. Until
# then the tests below apply it here, and test_the_composites_carry_their_policy says so.
COMPOSITES = """matmul mm bmm addmm baddbmm addbmm mv addmv dot tensordot trace cross einsum
    conv1d conv2d conv_transpose1d conv_transpose2d conv3d conv_transpose3d addcdiv addcmul
    index_copy index_put scatter_add grid_sample dist linear prelu softmax log_softmax softmin
    softplus scaled_dot_product_attention cross_entropy nll_loss mse_loss l1_loss
    smooth_l1_loss huber_loss binary_cross_entropy binary_cross_entropy_with_logits kl_div
    poisson_nll_loss soft_margin_loss margin_ranking_loss hinge_embedding_loss
    cosine_embedding_loss triplet_margin_loss multi_margin_loss multilabel_margin_loss
    layer_norm group_norm normalize cosine_similarity cdist inverse pinverse linalg.inv
    linalg.solve linalg.cholesky linalg.qr linalg.eigh linalg.svd""".split()


class _WithPolicy:
    """gradflow's namespace `ns` with the composites' policy applied where not yet carried."""

    def __init__(self, ns, prefix: str = "") -> None:
        self.ns, self.prefix = ns, prefix

    def __getattr__(self, name):
        if name == "linalg":
            return _WithPolicy(gf.linalg, "linalg.")
        fn = getattr(self.ns, name)
        policy_name = self.prefix + name
        if policy_name in COMPOSITES and not hasattr(fn, "autocast_policy"):
            return autocast_mode.autocast_policy(policy_name)(fn)
        return fn


GF_NS = _WithPolicy(gf)
GF_F = _WithPolicy(GF)


def _pos(shape):
    return np.abs(data(shape)) + 0.5


def _prob(shape):
    return np.random.default_rng(1).uniform(0.1, 0.9, shape)


# name: (fn(lib, F, *tensors), arrays); the first array takes the varied dtype, the rest are
# float32 (or integer targets)
CASES = {
    "matmul": (lambda L, F, a, b: L.matmul(a, b), [(3, 4), (4, 5)]),
    "mm": (lambda L, F, a, b: L.mm(a, b), [(3, 4), (4, 5)]),
    "bmm": (lambda L, F, a, b: L.bmm(a, b), [(2, 3, 4), (2, 4, 5)]),
    "baddbmm": (lambda L, F, a, b, c: L.baddbmm(c, a, b), [(2, 3, 4), (2, 4, 5), (2, 3, 5)]),
    "addmm": (lambda L, F, a, b, c: L.addmm(c, a, b), [(3, 4), (4, 5), (3, 5)]),
    "addbmm": (lambda L, F, a, b, c: L.addbmm(c, a, b), [(2, 3, 4), (2, 4, 5), (3, 5)]),
    "linear": (lambda L, F, x, w, b: F.linear(x, w, b), [(3, 4), (5, 4), (5,)]),
    "einsum": (lambda L, F, a, b: L.einsum("ij,jk->ik", a, b), [(3, 4), (4, 5)]),
    "conv1d": (lambda L, F, x, w: F.conv1d(x, w), [(1, 2, 7), (3, 2, 3)]),
    "conv2d": (lambda L, F, x, w, b: F.conv2d(x, w, b), [(1, 2, 7, 7), (3, 2, 3, 3), (3,)]),
    "conv3d": (lambda L, F, x, w: F.conv3d(x, w), [(1, 2, 5, 5, 5), (3, 2, 3, 3, 3)]),
    "conv_transpose1d": (lambda L, F, x, w: F.conv_transpose1d(x, w), [(1, 2, 7), (2, 3, 3)]),
    "conv_transpose2d": (lambda L, F, x, w: F.conv_transpose2d(x, w),
                         [(1, 2, 5, 5), (2, 3, 3, 3)]),
    "conv_transpose3d": (lambda L, F, x, w: F.conv_transpose3d(x, w),
                         [(1, 2, 4, 4, 4), (2, 3, 3, 3, 3)]),
    "prelu": (lambda L, F, x, w: F.prelu(x, w), [(2, 3), (3,)]),
    "scaled_dot_product_attention": (lambda L, F, q, k, v: F.scaled_dot_product_attention(
        q, k, v), [(2, 3, 4), (2, 3, 4), (2, 3, 4)]),
    "softmax": (lambda L, F, x: F.softmax(x, -1), [(3, 4)]),
    "log_softmax": (lambda L, F, x: F.log_softmax(x, -1), [(3, 4)]),
    "layer_norm": (lambda L, F, x: F.layer_norm(x, (4,)), [(3, 4)]),
    "group_norm": (lambda L, F, x: F.group_norm(x, 2), [(2, 4, 3)]),
    "exp": (lambda L, F, x: L.exp(x), [(3,)]),
    "log": (lambda L, F, x: L.log(x), [_pos((3,))]),
    "pow": (lambda L, F, x: L.pow(x, 2), [(3,)]),
    "sum": (lambda L, F, x: L.sum(x), [(3, 2)]),
    "cumsum": (lambda L, F, x: L.cumsum(x, 0), [(3,)]),
    "prod": (lambda L, F, x: L.prod(x), [(3,)]),
    "cross_entropy": (lambda L, F, x, t: F.cross_entropy(x, t), [(3, 4), np.array([0, 3, 1])]),
    "nll_loss": (lambda L, F, x, t: F.nll_loss(x, t), [(3, 4), np.array([0, 3, 1])]),
    "mse_loss": (lambda L, F, x, y: F.mse_loss(x, y), [(3,), (3,)]),
    "l1_loss": (lambda L, F, x, y: F.l1_loss(x, y), [(3,), (3,)]),
    "smooth_l1_loss": (lambda L, F, x, y: F.smooth_l1_loss(x, y), [(3,), (3,)]),
    "huber_loss": (lambda L, F, x, y: F.huber_loss(x, y), [(3,), (3,)]),
    "binary_cross_entropy": (lambda L, F, x, y: F.binary_cross_entropy(x, y),
                             [_prob((3,)), _prob((3,))]),
    "binary_cross_entropy_with_logits": (lambda L, F, x, y: F.binary_cross_entropy_with_logits(
        x, y), [(3,), _prob((3,))]),
    "kl_div": (lambda L, F, x, y: F.kl_div(x, y, reduction="batchmean"), [(3,), _prob((3,))]),
    "cdist": (lambda L, F, a, b: L.cdist(a, b), [(3, 4), (2, 4)]),
    "cosine_similarity": (lambda L, F, a, b: F.cosine_similarity(a, b), [(3, 4), (3, 4)]),
    "max_pool3d": (lambda L, F, x: F.max_pool3d(x, 2), [(1, 1, 4, 4, 4)]),
    "trace": (lambda L, F, x: L.trace(x), [(3, 3)]),
    "cat": (lambda L, F, a, b: L.cat([a, b]), [(3,), (2,)]),
    "stack": (lambda L, F, a, b: L.stack([a, b]), [(3,), (3,)]),
    "poisson_nll_loss": (lambda L, F, x, y: F.poisson_nll_loss(x, y), [(3,), _prob((3,))]),
    "soft_margin_loss": (lambda L, F, x, y: F.soft_margin_loss(x, y), [(3,), (3,)]),
    "margin_ranking_loss": (lambda L, F, a, b, y: F.margin_ranking_loss(a, b, y.sign()),
                            [(3,), (3,), (3,)]),
    "hinge_embedding_loss": (lambda L, F, x, y: F.hinge_embedding_loss(x, y.sign()),
                             [(3,), (3,)]),
    "cosine_embedding_loss": (lambda L, F, a, b, y: F.cosine_embedding_loss(a, b, y[:, 0].sign()),
                              [(3, 4), (3, 4), (3, 2)]),
    "triplet_margin_loss": (lambda L, F, a, p, n: F.triplet_margin_loss(a, p, n),
                            [(3, 4), (3, 4), (3, 4)]),
    "multi_margin_loss": (lambda L, F, x, t: F.multi_margin_loss(x, t),
                          [(3, 4), np.array([0, 3, 1])]),
    "avg_pool3d": (lambda L, F, x: F.avg_pool3d(x, 2), [(1, 1, 4, 4, 4)]),
    "adaptive_avg_pool3d": (lambda L, F, x: F.adaptive_avg_pool3d(x, 2), [(1, 1, 4, 4, 4)]),
    "inverse": (lambda L, F, x: L.inverse(x + 4 * L.eye(3, dtype=x.dtype)), [(3, 3)]),
    "pinverse": (lambda L, F, x: L.pinverse(x), [(3, 3)]),
    "linalg.inv": (lambda L, F, x: L.linalg.inv(x + 4 * L.eye(3, dtype=x.dtype)), [(3, 3)]),
    "linalg.solve": (lambda L, F, a, b: L.linalg.solve(a + 4 * L.eye(3, dtype=a.dtype), b),
                     [(3, 3), (3, 2)]),
    "linalg.cholesky": (lambda L, F, x: L.linalg.cholesky(x @ x.mT + L.eye(3, dtype=x.dtype)),
                        [(3, 3)]),
    "linalg.qr": (lambda L, F, x: L.linalg.qr(x)[0], [(3, 3)]),
    "linalg.eigh": (lambda L, F, x: L.linalg.eigh(x + x.mT)[0], [(3, 3)]),
    "linalg.svd": (lambda L, F, x: L.linalg.svd(x)[1], [(3, 3)]),
    "softmin": (lambda L, F, x: F.softmin(x, -1), [(3, 4)]),
    "softplus": (lambda L, F, x: F.softplus(x), [(3,)]),
    "normalize": (lambda L, F, x: F.normalize(x), [(3, 4)]),
    "cumprod": (lambda L, F, x: L.cumprod(x, 0), [(3,)]),
    "tensordot": (lambda L, F, a, b: L.tensordot(a, b, 1), [(3, 4), (4, 5)]),
    "add": (lambda L, F, a, b: a + b, [(3,), (3,)]),
    "relu": (lambda L, F, x: F.relu(x), [(3,)]),
    "max_pool2d": (lambda L, F, x: F.max_pool2d(x, 2), [(1, 1, 4, 4)]),
}

LOW = {"bfloat16": (gf.bfloat16, torch.bfloat16), "float16": (gf.float16, torch.float16)}
_TORCH_DT = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
             "float64": torch.float64}


def _arrays(spec):
    return [data(s) if isinstance(s, tuple) else s for s in spec]


def _run(name, lib, device_type, low, first, all64=False):
    """The op's output under `lib`'s autocast with the first input in dtype `first` and the
    other floating ones float32 ("all": every floating input in the region's low dtype)."""
    fn, spec = CASES[name]
    arrays = _arrays(spec)
    ins = []
    for i, a in enumerate(arrays):
        if a.dtype.kind != "f":
            ins.append(gf.tensor(a, device=device_type) if lib == "gf" else torch.tensor(a))
            continue
        dt = "float64" if all64 else low if first == "all" else first if i == 0 else \
            "float32"
        if lib == "gf":
            ins.append(gf.tensor(a, dtype=getattr(gf, dt), device=device_type))
        else:
            ins.append(torch.tensor(a, dtype=_TORCH_DT[dt]))
    if lib == "gf":
        with gf.autocast(device_type, dtype=LOW[low][0]):
            return fn(GF_NS, GF_F, *ins)
    with torch.autocast("cpu", dtype=LOW[low][1]):
        return fn(torch, TF, *ins)


@pytest.mark.parametrize("low", list(LOW))
@pytest.mark.parametrize("name", list(CASES))
def test_the_cpu_policy_gives_torch_cpu_autocasts_dtypes(name, low):
    for first in ("float32", low, "all"):
        try:
            want = str(_run(name, "torch", "cpu", low, first).dtype).replace("torch.", "")
        except RuntimeError:  # PyTorch refuses this mix of dtypes: so must gradflow
            with pytest.raises((RuntimeError, TypeError)):
                _run(name, "gf", "cpu", low, first)
            continue
        got = str(_run(name, "gf", "cpu", low, first).dtype)
        assert got == want, f"{name} with a {first} input under {low} autocast: gradflow " \
                            f"gives {got}, PyTorch {want}"


@pytest.mark.parametrize("name", ["matmul", "linear", "conv2d", "mse_loss", "cat", "exp"])
def test_float64_inputs_are_left_alone(name):
    got = _run(name, "gf", "cpu", "bfloat16", "float64", all64=True)
    want = _run(name, "torch", "cpu", "bfloat16", "float64", all64=True)
    assert str(got.dtype) == str(want.dtype).replace("torch.", "") == "float64"


def test_integer_inputs_are_left_alone():
    a = gf.ones(2, 2, dtype=gf.int64)
    with gf.autocast("cpu"):
        assert gf.matmul(a, a).dtype == gf.int64
        assert gf.cat([a, a]).dtype == gf.int64


def test_promote_gives_the_widest_floating_dtype():
    a16, b32 = gf.ones(2, dtype=gf.float16), gf.ones(2)
    with gf.autocast("cpu"):  # bfloat16 region
        assert gf.cat([a16, b32]).dtype == gf.float32
        assert gf.cat([gf.ones(2, dtype=gf.bfloat16)] * 2).dtype == gf.bfloat16
        # NOTE: PyTorch raises here ("Unexpected floating ScalarType in prioritize");
        # gradflow applies PyTorch's own promotion rule, float16 with bfloat16 is float32
        assert gf.cat([a16, a16]).dtype == gf.float32


def test_an_explicit_dtype_is_respected(fake_cuda):
    x = gf.randn(3, 4, device="cuda").to(gf.float16)
    with gf.autocast("cuda"):
        assert gf.sum(x).dtype == GF_F.softmax(x, -1).dtype == gf.float32
        assert gf.sum(x, dtype=gf.float64).dtype == gf.float64
        assert GF_F.softmax(x, -1, dtype=gf.float64).dtype == gf.float64


# -- CUDA: the documented table on the fake CuPy ---------------------------------------------
CUDA_LOWER = ["matmul", "mm", "bmm", "baddbmm", "addmm", "addbmm", "linear", "conv1d",
              "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "prelu",
              "scaled_dot_product_attention"]
CUDA_FP32 = ["softmax", "log_softmax", "layer_norm", "group_norm", "exp", "log", "pow", "sum",
             "cumsum", "prod", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
             "smooth_l1_loss", "binary_cross_entropy_with_logits", "kl_div", "cdist",
             "cosine_similarity"]
CUDA_FOLLOW = ["relu", "max_pool2d", "add"]


@pytest.mark.parametrize("low", list(LOW))
def test_the_cuda_policy_on_the_fake_cupy(fake_cuda, low):
    low_dt = LOW[low][0]
    for names, want in ((CUDA_LOWER, low_dt), (CUDA_FP32, gf.float32)):
        for name in names:
            for first in ("float32", low):
                out = _run(name, "gf", "cuda", low, first)
                assert out.device.type == "cuda"
                assert out.dtype == want, f"{name} ({first} input) on CUDA under {low}: " \
                                          f"{out.dtype}, documented {want}"
    for name in CUDA_FOLLOW:
        assert _run(name, "gf", "cuda", low, "all").dtype == low_dt, name


def test_a_cpu_region_leaves_cuda_tensors_alone(fake_cuda):
    a = gf.randn(3, 4, device="cuda")
    with gf.autocast("cpu"):
        assert gf.matmul(a, a.t()).dtype == gf.float32
        assert gf.matmul(a.cpu(), a.cpu().t()).dtype == gf.bfloat16
    with gf.autocast("cuda"):
        assert gf.matmul(a.cpu(), a.cpu().t()).dtype == gf.float32
        assert gf.matmul(a, a.t()).dtype == gf.float16


def test_a_linear_layer_trains_under_cuda_autocast(fake_cuda):
    gf.manual_seed(0)
    lin = gf.nn.Linear(4, 3).to("cuda")
    x = gf.randn(5, 4, device="cuda")
    with gf.autocast("cuda"):
        y = GF_F.linear(x, lin.weight, lin.bias)
        loss = GF_F.mse_loss(y, gf.zeros(5, 3, device="cuda"))
    assert (y.dtype, loss.dtype) == (gf.float16, gf.float32)
    loss.backward()
    assert lin.weight.grad.dtype == gf.float32 and lin.weight.grad.device.type == "cuda"


# -- regions ---------------------------------------------------------------------------------
def test_defaults_and_switches():
    assert not gf.is_autocast_enabled() and not gf.is_autocast_enabled("cpu")
    assert gf.get_autocast_dtype("cpu") == gf.bfloat16
    assert gf.get_autocast_dtype("cuda") == gf.float16
    assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert torch.get_autocast_dtype("cuda") == torch.float16
    with gf.autocast("cpu"):
        assert gf.is_autocast_enabled("cpu") and not gf.is_autocast_enabled()
    assert not autocast_mode.STATE.on
    gf.set_autocast_dtype("cpu", gf.float16)
    try:
        gf.set_autocast_enabled("cpu", True)
        assert gf.matmul(gf.ones(2, 2), gf.ones(2, 2)).dtype == gf.float16
    finally:
        gf.set_autocast_enabled("cpu", False)
        gf.set_autocast_dtype("cpu", gf.bfloat16)
    assert gf.matmul(gf.ones(2, 2), gf.ones(2, 2)).dtype == gf.float32


def test_a_cuda_region_is_the_default_device_types_and_needs_cuda(fake_cuda):
    with gf.amp.autocast("cuda"):
        assert gf.is_autocast_enabled() and gf.is_autocast_enabled("cuda")
        assert not gf.is_autocast_enabled("cpu")
    assert not autocast_mode.STATE.on


def test_a_cuda_region_without_cuda_is_disabled_with_a_warning_as_torchs():
    if gf.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.warns(UserWarning, match="CUDA is not available. Disabling autocast"):
        with gf.autocast("cuda"):
            assert not gf.is_autocast_enabled()
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert not gf.amp.GradScaler().is_enabled()


def test_nested_and_disabled_regions_restore_the_outer_one():
    a = gf.ones(2, 2)
    with gf.autocast("cpu"):
        with gf.autocast("cpu", enabled=False):
            assert not gf.is_autocast_enabled("cpu")
            assert gf.matmul(a, a).dtype == gf.float32
        with gf.autocast("cpu", dtype=gf.float16):
            assert gf.get_autocast_dtype("cpu") == gf.float16
            assert gf.matmul(a, a).dtype == gf.float16
        assert gf.get_autocast_dtype("cpu") == gf.bfloat16
        assert gf.matmul(a, a).dtype == gf.bfloat16
    assert not gf.is_autocast_enabled("cpu") and gf.matmul(a, a).dtype == gf.float32


def test_a_region_is_restored_when_its_body_raises():
    with pytest.raises(KeyError):
        with gf.autocast("cpu"):
            raise KeyError("x")
    assert not gf.is_autocast_enabled("cpu") and autocast_mode.STATE.nesting == 0


def test_autocast_as_a_decorator():
    @gf.autocast("cpu", dtype=gf.float16)
    def f(a):
        """doc"""
        return gf.is_autocast_enabled("cpu"), gf.matmul(a, a).dtype

    assert f(gf.ones(2, 2)) == (True, gf.float16)
    assert f.__doc__ == "doc" and not gf.is_autocast_enabled("cpu")
    with gf.autocast("cpu"):
        assert f(gf.ones(2, 2)) == (True, gf.float16)
        assert gf.get_autocast_dtype("cpu") == gf.bfloat16


def test_bad_arguments_raise_as_torch():
    with pytest.raises(ValueError, match="device_type"):
        gf.autocast(3)
    with pytest.raises(ValueError, match="device_type"):
        torch.autocast(3)
    with pytest.raises(RuntimeError, match="'tpu'"):
        gf.autocast("tpu")
    with pytest.raises(RuntimeError):
        torch.autocast("tpu")
    with pytest.raises(RuntimeError, match="get_autocast_dtype"):
        gf.get_autocast_dtype("tpu")
    with pytest.raises(RuntimeError, match="float16 and bfloat16"):
        gf.set_autocast_dtype("cpu", gf.float32)
    for dt, tdt in ((gf.float32, torch.float32), (gf.float64, torch.float64)):
        with pytest.warns(UserWarning, match="not supported. Disabling autocast"):
            with gf.autocast("cpu", dtype=dt):
                assert not gf.is_autocast_enabled("cpu")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with torch.autocast("cpu", dtype=tdt):
                assert not torch.is_autocast_enabled("cpu")
        assert "Disabling autocast" in str(caught[0].message)


# -- the weight cache and gradients -----------------------------------------------------------
def test_weight_casts_are_cached_per_outermost_region():
    w = gf.randn(3, 3, requires_grad=True)
    with gf.autocast("cpu"):
        a = gf.matmul(w, w)
        with gf.autocast("cpu"):
            b = gf.matmul(w, w)
        casts = {id(e[0]) for e in a.grad_fn.next_functions + b.grad_fn.next_functions}
        assert len(casts) == 1, "one cast of w serves every op of the region"
        assert len(autocast_mode.STATE.cache) == 1
    assert not autocast_mode.STATE.cache, "the cache is cleared when the outer region exits"
    with gf.autocast("cpu"):
        c = gf.matmul(w, w)
    assert c.grad_fn.next_functions[0][0] is not a.grad_fn.next_functions[0][0]
    with gf.autocast("cpu", cache_enabled=False):
        d = gf.matmul(w, w)
        assert not autocast_mode.STATE.cache
    assert d.grad_fn.next_functions[0][0] is not d.grad_fn.next_functions[1][0]
    # torch's own: the same ToCopy node feeds both operands
    tw = torch.randn(3, 3, requires_grad=True)
    with torch.autocast("cpu"):
        t = torch.mm(tw, tw)
    assert t.grad_fn.next_functions[0][0] is t.grad_fn.next_functions[1][0]


def test_a_nested_region_of_the_other_dtype_casts_again():
    w = gf.randn(3, 3, requires_grad=True)
    with gf.autocast("cpu"):
        assert gf.matmul(w, w).dtype == gf.bfloat16
        with gf.autocast("cpu", dtype=gf.float16):
            assert gf.matmul(w, w).dtype == gf.float16
        assert len(autocast_mode.STATE.cache) == 2


def test_non_leaves_are_not_cached():
    w = gf.randn(3, 3, requires_grad=True)
    with gf.autocast("cpu"):
        h = w * 2
        gf.matmul(h, h)
        gf.matmul(gf.randn(3, 3), gf.randn(3, 3))
        assert not autocast_mode.STATE.cache


@pytest.mark.parametrize("low", list(LOW))
def test_gradients_reach_float32_leaves_in_float32(low):
    x = data((4, 3))
    w, b = data((2, 3), seed=1), data((2,), seed=2)
    t = np.array([1, 0, 1, 1])
    results = []
    for lib in ("gf", "torch"):
        if lib == "gf":
            ins = [gf.tensor(a, dtype=gf.float32, requires_grad=True) for a in (x, w, b)]
            with gf.autocast("cpu", dtype=LOW[low][0]):
                y = GF_F.linear(*ins)
                loss = GF_F.cross_entropy(y, gf.tensor(t))
        else:
            ins = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in (x, w, b)]
            with torch.autocast("cpu", dtype=LOW[low][1]):
                y = TF.linear(*ins)
                loss = TF.cross_entropy(y, torch.tensor(t))
        loss.backward()
        results.append([str(y.dtype).replace("torch.", ""), str(loss.dtype).replace(
            "torch.", "")] + [(str(i.grad.dtype).replace("torch.", ""),
                               np.asarray(i.grad.tolist())) for i in ins])
    ours, theirs = results
    assert ours[:2] == theirs[:2] == [low, "float32"]
    for (gdt, g), (tdt, tg) in zip(ours[2:], theirs[2:]):
        assert gdt == tdt == "float32"
        np.testing.assert_allclose(g, tg, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("low", ["bfloat16", "float16"])
@pytest.mark.parametrize("kind,kwargs", [("LSTM", {}), ("LSTM", {"proj_size": 2}),
                                         ("RNN", {}), ("RNN", {"nonlinearity": "relu"}),
                                         ("GRU", {})])
def test_the_recurrent_layers_follow_torchs_cpu_policy(kind, kwargs, low):
    """PyTorch's CPU autocast lowers the LSTM and the Elman RNN and leaves the GRU alone; the
    outputs, the final states and the float32 weights' gradients have torch's dtypes, and the
    values agree to the low dtype's precision."""
    results = []
    gf_m = getattr(gf.nn, kind)(4, 5, 2, **kwargs)
    th_m = getattr(torch.nn, kind)(4, 5, 2, **kwargs)
    th_m.load_state_dict({k: torch.tensor(v.numpy()) for k, v in gf_m.state_dict().items()})
    x = data(3, 2, 4, seed=1).astype(np.float32)
    for lib, m in ((gf, gf_m), (torch, th_m)):
        with warnings.catch_warnings(), lib.autocast("cpu", dtype=getattr(lib, low)):
            warnings.simplefilter("ignore")  # torch: projections are not supported with oneDNN
            try:
                y, state = m(lib.tensor(x))
            except RuntimeError as err:  # torch's oneDNN LSTM has no float16 form on the CPU
                if lib is torch and "primitive descriptor" in str(err):
                    pytest.skip(f"PyTorch itself fails here: {err}")
                raise
        h = state[0] if isinstance(state, tuple) else state
        y.float().sum().backward()
        results.append((str(y.dtype).split(".")[-1], str(h.dtype).split(".")[-1],
                        str(m.weight_hh_l1.grad.dtype).split(".")[-1],
                        np.asarray(y.float().tolist())))
    (*gf_dtypes, gf_y), (*th_dtypes, th_y) = results
    assert gf_dtypes == th_dtypes, (gf_dtypes, th_dtypes)
    np.testing.assert_allclose(gf_y, th_y, rtol=5e-2, atol=2e-2)


def test_the_composites_carry_their_policy():
    missing = [n for n in COMPOSITES if not any(
        hasattr(getattr(ns, n.removeprefix("linalg."), None), "autocast_policy")
        for ns in ((gf.linalg,) if n.startswith("linalg.") else (GF, gf)))]
    assert not missing, f"without @autocast_policy: {missing}"


def test_every_composite_has_a_row_in_a_table():
    for n in COMPOSITES:
        assert n in policy.TABLES["cpu"] or n in policy.TABLES["cuda"], n


# -- GradScaler --------------------------------------------------------------------------------
INF_STEPS = {3, 4, 17, 30}


def _scaler_run(lib, steps=50, amp=False):
    """`steps` SGD steps of a small MLP under a GradScaler that grows every 5 clean steps,
    with the gradient of one weight made inf at INF_STEPS: the scales, skipped steps and
    final parameters."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(8, 4)) * 0.5, np.zeros(8)
    w2, b2 = rng.normal(size=(3, 8)) * 0.5, np.zeros(3)
    xs, ts = rng.normal(size=(steps, 6, 4)), rng.integers(0, 3, (steps, 6))
    if lib == "gf":
        params = [gf.tensor(a, dtype=gf.float32, requires_grad=True) for a in (w1, b1, w2, b2)]
        opt = gf.optim.SGD(params, lr=0.1, momentum=0.9)
        scaler = gf.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=5)
        mk, ac, F = gf.tensor, gf.autocast("cpu", enabled=amp), GF_F
    else:
        params = [torch.tensor(a, dtype=torch.float32, requires_grad=True)
                  for a in (w1, b1, w2, b2)]
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=5)
        mk, ac, F = torch.tensor, torch.autocast("cpu", enabled=amp), TF
    scales, skipped = [], []
    for i in range(steps):
        opt.zero_grad()
        with ac:
            h = F.relu(F.linear(mk(xs[i].astype(np.float32)), params[0], params[1]))
            loss = F.cross_entropy(F.linear(h, params[2], params[3]), mk(ts[i]))
        scaler.scale(loss).backward()
        if i in INF_STEPS:
            params[2].grad = params[2].grad * float("inf") if i % 2 else \
                params[2].grad * float("nan")
        before = params[0].detach().clone()
        scaler.step(opt)
        if np.array_equal(np.asarray(before.tolist()), np.asarray(params[0].tolist())):
            skipped.append(i)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, skipped, [np.asarray(p.tolist()) for p in params], scaler


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16-autocast"])
def test_a_50_step_gradscaler_run_matches_torch(amp):
    """The same scales and skipped steps; the same parameters to float32 rounding (under
    bfloat16 autocast the two libraries' bf16 products round differently, and 50 steps of
    that drift apart by a few 1e-2, so there only the scales and skips are compared)."""
    ours, theirs = _scaler_run("gf", amp=amp), _scaler_run("torch", amp=amp)
    assert ours[0] == theirs[0], "scale sequences differ"
    assert ours[1] == theirs[1] == sorted(INF_STEPS), "skipped steps differ"
    assert ours[3].state_dict() == theirs[3].state_dict()
    if not amp:
        for p, tp in zip(ours[2], theirs[2]):
            np.testing.assert_allclose(p, tp, rtol=1e-4, atol=1e-5)


def test_gradscaler_state_dict_round_trip():
    scaler = _scaler_run("gf", steps=8)[3]
    sd = scaler.state_dict()
    assert set(sd) == {"scale", "growth_factor", "backoff_factor", "growth_interval",
                       "_growth_tracker"}
    fresh = gf.amp.GradScaler("cpu")
    fresh.load_state_dict(sd)
    assert fresh.state_dict() == sd and fresh.get_scale() == scaler.get_scale()
    fresh.scale(gf.ones(()))  # the device arrays are made from the loaded values
    assert fresh.state_dict() == sd
    with pytest.raises(RuntimeError, match="state dict is empty"):
        fresh.load_state_dict({})
    off = gf.amp.GradScaler("cpu", enabled=False)
    assert off.state_dict() == {} and off.get_scale() == 1.0 and not off.is_enabled()
    x = gf.ones(())
    assert off.scale(x) is x


def test_gradscaler_scale_nested_outputs():
    scaler = gf.amp.GradScaler("cpu", init_scale=4.0)
    out = scaler.scale([gf.ones(2), (gf.ones(()), gf.ones(1))])
    assert isinstance(out, list) and isinstance(out[1], tuple)
    assert out[0].tolist() == [4.0, 4.0] and out[1][0].item() == 4.0
    with pytest.raises(ValueError, match="Tensor or an iterable"):
        scaler.scale(3.0)


def test_gradscaler_errors_as_torch():
    p = gf.zeros(2, requires_grad=True)
    opt = gf.optim.SGD([p], lr=0.1)
    scaler = gf.amp.GradScaler("cpu")
    with pytest.raises(AssertionError, match="did not use scaler.scale"):
        scaler.step(opt)
    scaler.scale((p * 2).sum()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    scaler.update()
    with pytest.raises(RuntimeError, match="Closure"):
        scaler.step(opt, closure=lambda: None)
    with pytest.raises(ValueError, match="growth factor"):
        gf.amp.GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(ValueError, match="backoff factor"):
        gf.amp.GradScaler("cpu", backoff_factor=1.0)
    h = gf.zeros(2, dtype=gf.float16, requires_grad=True)
    hopt = gf.optim.SGD([h], lr=0.1)
    scaler = gf.amp.GradScaler("cpu", init_scale=2.0)
    scaler.scale((h * 2).sum()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients."):
        scaler.unscale_(hopt)


def test_gradscaler_update_with_a_new_scale():
    scaler = gf.amp.GradScaler("cpu")
    scaler.scale(gf.ones(()))
    scaler.update(8.0)
    assert scaler.get_scale() == 8.0
    scaler.update(gf.tensor(2.0))
    assert scaler.get_scale() == 2.0
    with pytest.raises(AssertionError, match="new_scale"):
        scaler.update(gf.tensor([1.0, 2.0]))


def test_gradscaler_unscales_bfloat16_gradients():
    h = gf.ones(3, dtype=gf.bfloat16, requires_grad=True)
    opt = gf.optim.SGD([h], lr=0.5)
    scaler = gf.amp.GradScaler("cpu", init_scale=256.0)
    scaler.scale((h * 2).sum()).backward()
    scaler.unscale_(opt)
    assert h.grad.dtype == gf.bfloat16 and h.grad.tolist() == [2.0, 2.0, 2.0]


def test_a_masked_step_puts_back_a_skipped_update(monkeypatch):
    """While compile_step captures (no host reads), a step with an inf runs and is undone."""
    from gradflow.amp import grad_scaler
    p = gf.ones(2, requires_grad=True)
    opt = gf.optim.SGD([p], lr=0.5, momentum=0.9)
    scaler = gf.amp.GradScaler("cpu", init_scale=2.0)
    monkeypatch.setattr(grad_scaler, "_host_reads_allowed", lambda: False)
    for bad, want in ((False, [0.75, 0.75]), (True, [0.75, 0.75]), (False, [0.275, 0.275])):
        opt.zero_grad()
        scaler.scale((p * 0.5).sum()).backward()
        if bad:
            p.grad = p.grad * float("inf")
        scaler.step(opt)
        scaler.update()
        np.testing.assert_allclose(p.tolist(), want, rtol=1e-6)
    assert scaler.get_scale() == 1.0


def test_gradscaler_on_the_fake_cupy(fake_cuda):
    p = gf.ones(2, device="cuda", requires_grad=True)
    opt = gf.optim.SGD([p], lr=0.5)
    scaler = gf.amp.GradScaler("cuda", init_scale=4.0, growth_interval=1)
    assert scaler.is_enabled()
    scaler.scale((p * 0.5).sum()).backward()
    assert p.grad.tolist() == [2.0, 2.0]
    scaler.step(opt)
    scaler.update()
    assert p.tolist() == [0.75, 0.75] and scaler.get_scale() == 8.0
    assert scaler._scale.device.type == "cuda"


@pytest.mark.parametrize("host_reads", [False, True], ids=["masked", "eager-refused"])
def test_a_gradscaler_step_is_captured_by_compile_step(fake_cuda, monkeypatch, host_reads):
    """Inside compile_step the scaler reads nothing on the host (the fake CuPy refuses host
    reads during capture, as CUDA does): the eager step's one read is refused there."""
    from gradflow.amp import grad_scaler
    if host_reads:
        monkeypatch.setattr(grad_scaler, "_host_reads_allowed", lambda: True)
    gf.manual_seed(0)
    lin = gf.nn.Linear(3, 2).to("cuda")
    opt = gf.optim.SGD(lin.parameters(), lr=0.1)
    scaler = gf.amp.GradScaler("cuda", init_scale=4.0, growth_interval=2)

    def step(x, y):
        opt.zero_grad()
        with gf.autocast("cuda"):
            loss = GF_F.mse_loss(GF_F.linear(x, lin.weight, lin.bias), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    compiled = gf.compile_step(step, warmup=2)
    x, y = gf.randn(4, 3, device="cuda"), gf.randn(4, 2, device="cuda")
    compiled(x, y)
    compiled(x, y)  # two clean eager warm-up steps: the scale grows once
    assert scaler.get_scale() == 8.0
    before = lin.weight.tolist()
    if host_reads:
        with pytest.raises(RuntimeError, match="could not be captured"):
            compiled(x, y)
        return
    compiled(x, y)  # the capture, which also runs the step once
    assert lin.weight.tolist() != before


# -- where users switch it on ------------------------------------------------------------------
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_the_train_cli_trains_under_autocast(tmp_path, capsys, amp):
    from gradflow.train import cli
    code = cli.main(["--amp", amp, "--device", "cpu", "--subset", "64", "--epochs", "1",
                     "--batch-size", "32", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().out
    ckpt = gf.load(tmp_path / "last.ckpt")
    assert ckpt["args"]["amp"] == amp
    assert (ckpt["scaler"] != {}) == (amp == "fp16"), ckpt["scaler"]


def test_a_lenet_under_autocast_keeps_float32_weights_and_gradients():
    gf.manual_seed(0)
    model = gf.models.lenet5(num_classes=10)
    with gf.autocast("cpu"):
        logits = model(gf.randn(4, 1, 28, 28))
        loss = GF.cross_entropy(logits, gf.tensor([0, 1, 2, 3]))
    assert (logits.dtype, loss.dtype) == (gf.bfloat16, gf.float32)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.dtype == p.grad.dtype == gf.float32, name


@pytest.mark.slow
def test_lenet5_under_bf16_autocast_ends_within_half_a_point_of_fp32(tmp_path, monkeypatch):
    """Issue 21's target, on the bundled digits with gradflow.train's defaults (minutes)."""
    from pathlib import Path
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from benchmarks import amp_lenet
    fp32 = amp_lenet.test_accuracy("none", "cpu", 8, tmp_path / "fp32")
    bf16 = amp_lenet.test_accuracy("bf16", "cpu", 8, tmp_path / "bf16")
    assert abs(bf16 - fp32) <= 0.5, f"bf16 {bf16:.2f}% against fp32 {fp32:.2f}%"
