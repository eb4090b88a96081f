"""conv2d, pooling and pad against PyTorch (values, gradients, second derivatives) and finite
differences, on awkward shapes: batch 1 and odd, prime channels and sizes, non-square kernels,
strides, 'same' padding with even kernels, dilation, groups, ceil_mode windows, views."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import check_gradcheck, check_op, data, distinct, require_torch

import gradflow as gf
from gradflow.nn.modules.conv import Conv2d
from gradflow.nn.modules.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from gradflow.ops import conv, pad, pool

torch = require_torch()
# torch warns that it copies the input for 'same' with even kernels; the result is what we test
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

_GF = SimpleNamespace(conv2d=conv.conv2d, max_pool2d=pool.max_pool2d,
                      avg_pool2d=pool.avg_pool2d, adaptive_avg_pool2d=pool.adaptive_avg_pool2d,
                      adaptive_max_pool2d=pool.adaptive_max_pool2d, pad=pad.pad)


def F(lib):
    """torch.nn.functional, or gradflow's ops under the same names."""
    return _GF if lib is gf else torch.nn.functional


# (id, fn(lib, *tensors), inputs)
CONV_CASES = [
    ("basic_bias", lambda L, x, w, b: F(L).conv2d(x, w, b),
     [data(2, 3, 7, 7), data(4, 3, 3, 3, seed=1), data(4, seed=2)]),
    ("batch1_channel1", lambda L, x, w: F(L).conv2d(x, w),
     [data(1, 1, 5, 5), data(1, 1, 3, 3, seed=1)]),
    ("odd_batch_prime_channels_nonsquare", lambda L, x, w: F(L).conv2d(x, w),
     [data(3, 5, 7, 5), data(7, 5, 2, 3, seed=1)]),
    ("kernel_1x1", lambda L, x, w, b: F(L).conv2d(x, w, b),
     [data(2, 3, 5, 4), data(5, 3, 1, 1, seed=1), data(5, seed=2)]),
    ("stride2_pad1", lambda L, x, w: F(L).conv2d(x, w, stride=2, padding=1),
     [data(2, 3, 9, 7), data(4, 3, 3, 3, seed=1)]),
    ("stride3_pair_padding", lambda L, x, w, b: F(L).conv2d(x, w, b, stride=(3, 2),
                                                            padding=(2, 1)),
     [data(1, 2, 11, 10), data(3, 2, 3, 2, seed=1), data(3, seed=2)]),
    ("same_odd", lambda L, x, w: F(L).conv2d(x, w, padding="same"),
     [data(2, 3, 6, 5), data(2, 3, 3, 3, seed=1)]),
    ("same_even", lambda L, x, w: F(L).conv2d(x, w, padding="same"),
     [data(1, 2, 5, 6), data(3, 2, 4, 2, seed=1)]),
    ("same_even_dilated", lambda L, x, w: F(L).conv2d(x, w, padding="same", dilation=(3, 2)),
     [data(2, 2, 7, 6), data(2, 2, 2, 3, seed=1)]),
    ("valid", lambda L, x, w: F(L).conv2d(x, w, padding="valid"),
     [data(1, 2, 5, 5), data(2, 2, 3, 3, seed=1)]),
    ("dilation2", lambda L, x, w: F(L).conv2d(x, w, padding=1, dilation=2),
     [data(2, 3, 9, 8), data(4, 3, 3, 3, seed=1)]),
    ("groups2_bias", lambda L, x, w, b: F(L).conv2d(x, w, b, groups=2),
     [data(2, 4, 6, 6), data(6, 2, 3, 3, seed=1), data(6, seed=2)]),
    ("depthwise_stride2", lambda L, x, w: F(L).conv2d(x, w, stride=2, groups=3),
     [data(3, 3, 7, 7), data(3, 1, 3, 3, seed=1)]),
    ("depthwise_multiplier", lambda L, x, w, b: F(L).conv2d(x, w, b, padding=1, groups=3),
     [data(1, 3, 5, 5), data(6, 1, 3, 3, seed=1), data(6, seed=2)]),
    ("groups_dilation_stride", lambda L, x, w: F(L).conv2d(x, w, stride=(2, 3), padding=(1, 2),
                                                           dilation=(2, 1), groups=2),
     [data(2, 4, 9, 11), data(4, 2, 3, 2, seed=1)]),
    ("unbatched", lambda L, x, w, b: F(L).conv2d(x, w, b, padding=1),
     [data(3, 6, 5), data(2, 3, 3, 3, seed=1), data(2, seed=2)]),
]

POOL_CASES = [
    ("max_k2", lambda L, x: F(L).max_pool2d(x, 2), [distinct(2, 3, 6, 6)]),
    ("max_k3_s2_p1", lambda L, x: F(L).max_pool2d(x, 3, 2, 1), [distinct(1, 2, 7, 8)]),
    ("max_ceil", lambda L, x: F(L).max_pool2d(x, 3, 2, 1, ceil_mode=True),
     [distinct(3, 1, 8, 7)]),
    ("max_ceil_prime", lambda L, x: F(L).max_pool2d(x, 3, 3, ceil_mode=True),
     [distinct(1, 1, 7, 5)]),
    ("max_dilation_nonsquare", lambda L, x: F(L).max_pool2d(x, (2, 3), (1, 2), (1, 1),
                                                            dilation=2, ceil_mode=True),
     [distinct(2, 2, 7, 9)]),
    ("max_indices", lambda L, x: F(L).max_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                 return_indices=True),
     [distinct(2, 3, 8, 7)]),
    ("max_indices_dilated", lambda L, x: F(L).max_pool2d(x, 2, 2, 1, dilation=3,
                                                         return_indices=True),
     [distinct(1, 2, 9, 10)]),
    ("max_unbatched", lambda L, x: F(L).max_pool2d(x, 2, 1, return_indices=True),
     [distinct(3, 5, 4)]),
    ("avg_k2", lambda L, x: F(L).avg_pool2d(x, 2), [data(2, 3, 6, 6)]),
    ("avg_s2_p1", lambda L, x: F(L).avg_pool2d(x, 3, 2, 1), [data(1, 2, 7, 8)]),
    ("avg_ceil", lambda L, x: F(L).avg_pool2d(x, 3, 2, 1, ceil_mode=True),
     [data(3, 1, 8, 7)]),
    ("avg_ceil_exclude_pad", lambda L, x: F(L).avg_pool2d(x, (3, 2), 2, (1, 1), ceil_mode=True,
                                                          count_include_pad=False),
     [data(1, 2, 8, 7)]),
    ("avg_divisor_override", lambda L, x: F(L).avg_pool2d(x, (2, 3), (2, 1), (1, 1),
                                                          divisor_override=5),
     [data(2, 2, 5, 7)]),
    ("avg_unbatched", lambda L, x: F(L).avg_pool2d(x, 2, 1), [data(3, 5, 4)]),
    ("adaptive_avg_divisible", lambda L, x: F(L).adaptive_avg_pool2d(x, (3, 2)),
     [data(2, 3, 6, 6)]),
    ("adaptive_avg_uneven", lambda L, x: F(L).adaptive_avg_pool2d(x, (3, 4)),
     [data(3, 2, 7, 5)]),
    ("adaptive_avg_none_grow", lambda L, x: F(L).adaptive_avg_pool2d(x, (None, 7)),
     [data(1, 2, 5, 5)]),
    ("adaptive_avg_global", lambda L, x: F(L).adaptive_avg_pool2d(x, 1), [data(2, 3, 5, 7)]),
    ("adaptive_max_divisible", lambda L, x: F(L).adaptive_max_pool2d(x, 2, True),
     [distinct(2, 3, 6, 4)]),
    ("adaptive_max_uneven", lambda L, x: F(L).adaptive_max_pool2d(x, (3, 2), True),
     [distinct(3, 2, 7, 5)]),
    ("adaptive_max_grow_unbatched", lambda L, x: F(L).adaptive_max_pool2d(x, (4, 5), True),
     [distinct(2, 3, 4)]),
]

PAD_CASES = [
    ("constant", lambda L, x: F(L).pad(x, (1, 2)), [data(2, 3, 4)]),
    ("constant_value_4d", lambda L, x: F(L).pad(x, (1, 0, 2, 3), value=1.5),
     [data(2, 2, 3, 4)]),
    ("constant_crop", lambda L, x: F(L).pad(x, (-1, 2, 0, -2, 1, 1)), [data(2, 3, 4, 5)]),
    ("reflect_3d", lambda L, x: F(L).pad(x, (2, 3), mode="reflect"), [data(2, 3, 5)]),
    ("reflect_4d_crop", lambda L, x: F(L).pad(x, (-1, 2, 3, 1), mode="reflect"),
     [data(2, 2, 5, 4)]),
    ("replicate", lambda L, x: F(L).pad(x, (3, 1, 0, 2), mode="replicate"),
     [data(1, 2, 3, 4)]),
    ("replicate_crop", lambda L, x: F(L).pad(x, (1, -2), mode="replicate"), [data(3, 5)]),
    ("circular", lambda L, x: F(L).pad(x, (4, 1, 2, -1), mode="circular"),
     [data(1, 2, 4, 4)]),
]

ALL = CONV_CASES + POOL_CASES + PAD_CASES


@pytest.mark.parametrize("name,fn,inputs", ALL, ids=[c[0] for c in ALL])
def test_matches_torch(name, fn, inputs, device):
    check_op(fn, *inputs, device=device)


@pytest.mark.parametrize("name,fn,inputs", ALL, ids=[c[0] for c in ALL])
def test_matches_torch_noncontiguous(name, fn, inputs, device):
    check_op(fn, *inputs, device=device, noncontiguous=True, second_order=False)


@pytest.mark.parametrize("name,fn,inputs", [
    ("conv_f32", lambda L, x, w, b: F(L).conv2d(x, w, b, stride=2, padding=1, groups=2),
     [data(2, 4, 9, 8), data(6, 2, 3, 3, seed=1), data(6, seed=2)]),
    ("max_f32", lambda L, x: F(L).max_pool2d(x, 3, 2, 1, return_indices=True),
     [distinct(2, 3, 7, 7)]),
    ("avg_f32", lambda L, x: F(L).avg_pool2d(x, 3, 2, 1, ceil_mode=True), [data(2, 3, 7, 7)]),
    ("adaptive_avg_f32", lambda L, x: F(L).adaptive_avg_pool2d(x, 3), [data(2, 3, 7, 7)]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_float32_matches_torch(name, fn, inputs, device):
    check_op(fn, *[a.astype(np.float32) for a in inputs], device=device, atol=1e-4, rtol=1e-4,
             second_order=False)


@pytest.mark.parametrize("name,fn,inputs", [
    ("conv_groups_dilation_stride",
     lambda L, x, w, b: F(L).conv2d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
     [data(1, 4, 5, 5), data(2, 2, 2, 2, seed=1), data(2, seed=2)]),
    ("conv_same_even", lambda L, x, w: F(L).conv2d(x, w, padding="same"),
     [data(2, 1, 3, 4), data(2, 1, 2, 2, seed=1)]),
    ("max_ceil_dilated", lambda L, x: F(L).max_pool2d(x, 2, 2, 1, dilation=2, ceil_mode=True),
     [distinct(1, 2, 5, 6)]),
    ("avg_ceil_exclude_pad", lambda L, x: F(L).avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                          count_include_pad=False),
     [data(1, 2, 6, 5)]),
    ("adaptive_avg_uneven", lambda L, x: F(L).adaptive_avg_pool2d(x, (2, 3)),
     [data(1, 2, 5, 4)]),
    ("adaptive_max_uneven", lambda L, x: F(L).adaptive_max_pool2d(x, (3, 2)),
     [distinct(1, 2, 5, 5)]),
    ("pad_constant_crop", lambda L, x: F(L).pad(x, (2, -1, -1, 1), value=0.5),
     [data(1, 2, 3, 4)]),
    ("pad_reflect", lambda L, x: F(L).pad(x, (2, 1, 1, 2), mode="reflect"),
     [data(1, 3, 4)]),
    ("pad_replicate", lambda L, x: F(L).pad(x, (2, 1), mode="replicate"), [data(2, 3)]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_gradcheck(name, fn, inputs):
    check_gradcheck(fn, *inputs)


def t(*shape, dtype=None):
    return gf.tensor(data(*shape), dtype=dtype)


@pytest.mark.parametrize("call,match", [
    (lambda: conv.conv2d(t(1, 3, 5, 5), t(4, 2, 3, 3)),
     r"conv2d: input has 3 channels but weight expects 2 \(weight shape \(4, 2, 3, 3\)\)"),
    (lambda: conv.conv2d(t(1, 4, 5, 5), t(4, 1, 3, 3), groups=2),
     r"conv2d: input has 4 channels but weight expects 2 \(2 groups of 1\)"),
    (lambda: conv.conv2d(t(1, 3, 5, 5), t(4, 1, 3, 3), groups=3),
     r"conv2d: groups=3 must divide the weight's 4 output channels"),
    (lambda: conv.conv2d(t(5, 5), t(4, 1, 3, 3)), r"conv2d: expected a 3-D .* got shape \(5, 5\)"),
    (lambda: conv.conv2d(t(1, 1, 5, 5), t(1, 1, 3)), r"conv2d: weight must be 4-D"),
    (lambda: conv.conv2d(t(1, 1, 2, 5), t(1, 1, 3, 3)),
     r"conv2d: kernel size \(3, 3\) .* larger than the padded input \(2, 5\)"),
    (lambda: conv.conv2d(t(1, 1, 4, 4), t(1, 1, 2, 2), dilation=4),
     r"conv2d: kernel size \(2, 2\) \(dilated span \(5, 5\)\)"),
    (lambda: conv.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), stride=0),
     r"conv2d: stride must be positive, got 0"),
    (lambda: conv.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), dilation=(1, 0)),
     r"conv2d: dilation must be positive"),
    (lambda: conv.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding=-1),
     r"conv2d: negative padding"),
    (lambda: conv.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding="same", stride=2),
     r"conv2d: padding='same' is not supported for strided convolutions"),
    (lambda: conv.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding="full"),
     r"conv2d: invalid padding string 'full'"),
    (lambda: conv.conv2d(t(1, 1, 5, 5, dtype=gf.float32), t(1, 1, 3, 3)),
     r"conv2d: input dtype float32 does not match weight dtype float64"),
    (lambda: conv.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), t(3)),
     r"conv2d: bias must have shape \(2,\)"),
    (lambda: pool.max_pool2d(t(1, 1, 5, 5), 3, padding=2),
     r"max_pool2d: padding \(2, 2\) should be at most half of the kernel size"),
    (lambda: pool.max_pool2d(t(1, 1, 5, 5), 7), r"max_pool2d: kernel size \(7, 7\)"),
    (lambda: pool.max_pool2d(t(1, 1, 5, 5), (2, 2, 2)),
     r"max_pool2d: kernel_size must be an int or a pair of ints"),
    (lambda: pool.avg_pool2d(t(1, 1, 5, 5), 2, divisor_override=0),
     r"avg_pool2d: divisor_override must be non-zero"),
    (lambda: pool.adaptive_avg_pool2d(t(1, 1, 5, 5), (0, 2)),
     r"adaptive_avg_pool2d: output_size must be positive"),
    (lambda: pad.pad(t(2, 3), (1, 2, 3)), r"pad: padding length must be divisible by 2"),
    (lambda: pad.pad(t(2, 3), (1, 1, 1, 1, 1, 1)), r"pad: padding length 6 is too large"),
    (lambda: pad.pad(t(2, 3), (-2, -2)), r"pad: input size 3 at dimension 1"),
    (lambda: pad.pad(t(2, 3), (1, 1), mode="wrap"), r"pad: unknown padding mode 'wrap'"),
    (lambda: pad.pad(t(2, 2, 3, 4), (1, 1), mode="reflect"),
     r"pad: padding size 2 is not supported for 4D input"),
    (lambda: pad.pad(t(2, 3), (3, 0), mode="reflect"),
     r"pad: padding size should be less than the corresponding input dimension"),
    (lambda: pad.pad(t(2, 3), (4, 0), mode="circular"), r"pad: .* more than once"),
    (lambda: pad.pad(t(2, 3), (1, 0), mode="replicate", value=1.0),
     r'pad: padding mode "replicate" doesn\'t take in value argument'),
])
def test_errors(call, match):
    with pytest.raises((RuntimeError, TypeError, ValueError, NotImplementedError), match=match):
        call()


def _copy_to_torch(module, reference):
    with torch.no_grad():
        for name, p in module.named_parameters():
            getattr(reference, name).copy_(torch.from_numpy(p.detach().numpy()))


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3),
    dict(kernel_size=(2, 3), stride=2, padding=1, bias=False),
    dict(kernel_size=4, padding="same", dilation=2, groups=2),
    dict(kernel_size=3, padding=(1, 2), padding_mode="reflect"),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=2,
         padding_mode="circular", groups=2),
    dict(kernel_size=2, padding="same", padding_mode="replicate"),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_conv2d_module_matches_torch(kwargs):
    gf.manual_seed(3)
    m = Conv2d(4, 6, **kwargs)
    ref = torch.nn.Conv2d(4, 6, **kwargs)
    assert repr(m) == repr(ref)
    assert tuple(m.weight.shape) == tuple(ref.weight.shape)
    assert (m.bias is None) == (ref.bias is None)
    _copy_to_torch(m, ref)
    x = data(2, 4, 7, 6).astype(np.float32)
    out = m(gf.tensor(x))
    expect = ref(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), expect.detach().numpy(), atol=1e-5,
                               rtol=1e-5)
    out.sum().backward()
    expect.sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), ref.weight.grad.numpy(), atol=1e-4,
                               rtol=1e-4)


def test_conv2d_module_default_init():
    gf.manual_seed(0)
    m = Conv2d(8, 16, (3, 5), groups=2)
    assert tuple(m.weight.shape) == (16, 4, 3, 5)
    assert tuple(m.bias.shape) == (16,)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.weight.dtype == gf.float32
    bound = 1 / math.sqrt(4 * 3 * 5)  # kaiming_uniform_(a=sqrt(5)) and the bias share it
    for p in (m.weight, m.bias):
        values = p.detach().numpy()
        assert np.abs(values).max() <= bound
    w = m.weight.detach().numpy()
    np.testing.assert_allclose(np.abs(w).max(), bound, rtol=0.02)
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.1)
    np.testing.assert_allclose(w.mean(), 0.0, atol=0.1 * bound)


def test_conv2d_module_errors():
    with pytest.raises(ValueError, match="in_channels must be a non-negative int divisible by "
                                         "groups=2, got 3"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        Conv2d(3, 4, 3, stride=2, padding="same")


@pytest.mark.parametrize("make", [
    lambda nn: nn.MaxPool2d(2),
    lambda nn: nn.MaxPool2d((2, 3), 1, 1, 2, return_indices=True, ceil_mode=True),
    lambda nn: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda nn: nn.AvgPool2d((2, 2), divisor_override=3),
    lambda nn: nn.AdaptiveAvgPool2d((None, 3)),
    lambda nn: nn.AdaptiveMaxPool2d(3, return_indices=True),
])
def test_pooling_modules_match_torch(make):
    ours = SimpleNamespace(MaxPool2d=MaxPool2d, AvgPool2d=AvgPool2d,
                           AdaptiveAvgPool2d=AdaptiveAvgPool2d,
                           AdaptiveMaxPool2d=AdaptiveMaxPool2d)
    m, ref = make(ours), make(torch.nn)
    assert repr(m) == repr(ref)
    x = distinct(2, 3, 7, 8)
    outs, expect = m(gf.tensor(x)), ref(torch.from_numpy(x))
    for o, e in zip(outs if isinstance(outs, tuple) else (outs,),
                    expect if isinstance(expect, tuple) else (expect,)):
        np.testing.assert_allclose(o.numpy(), e.numpy(), atol=1e-12)


def _lowerings(monkeypatch) -> list:
    """Record each CPU im2col of conv2d's inputs (their batch-inner columns)."""
    calls = []
    original = conv.im2col_reference

    def counted(a, window, value=0.0, batch_inner=False):
        calls.append(a.shape)
        return original(a, window, value, batch_inner)

    monkeypatch.setattr(conv, "im2col_reference", counted)
    return calls


def _conv_grads(x, w, **backward):
    xt, wt = (gf.tensor(a, requires_grad=True) for a in (x, w))
    out = gf.nn.functional.conv2d(xt, wt, padding=1)
    (out * gf.tensor(distinct(*out.shape, seed=7))).sum().backward(**backward)
    return out, xt, wt


def test_conv_weight_gradient_reuses_the_forward_columns(monkeypatch):
    """On the CPU the forward's columns serve the weight gradient (one lowering per step);
    a retained graph's second backward lowers again and gives the same gradients."""
    x, w = distinct(3, 2, 5, 4), distinct(4, 2, 3, 3, seed=1)
    want = _conv_grads(x, w)
    calls = _lowerings(monkeypatch)
    out, xt, wt = _conv_grads(x, w, retain_graph=True)
    assert calls == [(3, 2, 5, 4)]
    first = wt.grad.numpy().copy()
    (out * gf.tensor(distinct(*out.shape, seed=7))).sum().backward()
    assert len(calls) == 2
    np.testing.assert_allclose(first, want[2].grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(wt.grad.numpy(), 2 * first, rtol=1e-6)
    np.testing.assert_allclose(xt.grad.numpy(), 2 * want[1].grad.numpy(), rtol=1e-6)


def test_conv_keeps_no_columns_without_weight_gradient_or_across_chunks(monkeypatch):
    x, w = distinct(3, 2, 5, 4), distinct(4, 2, 3, 3, seed=1)
    want = _conv_grads(x, w)
    calls = _lowerings(monkeypatch)
    with gf.no_grad():
        gf.nn.functional.conv2d(gf.tensor(x), gf.tensor(w, requires_grad=True), padding=1)
    assert len(calls) == 1
    calls.clear()
    limit = conv.get_conv_workspace_limit()
    conv.set_conv_workspace_limit(2 * 9 * 5 * 4 * 4)  # one sample's columns per chunk
    try:
        _, xt, wt = _conv_grads(x, w)
    finally:
        conv.set_conv_workspace_limit(limit)
    assert len(calls) == 6  # three chunks, lowered in the forward and again for the weight
    np.testing.assert_allclose(wt.grad.numpy(), want[2].grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(xt.grad.numpy(), want[1].grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("x_shape,w_shape,options", [
    ((1, 3, 5, 7), (4, 3, 1, 1), {}),
    ((3, 5, 9, 7), (7, 5, 3, 3), dict(padding=1)),
    ((2, 3, 11, 13), (5, 3, 3, 2), dict(stride=(2, 3), dilation=(2, 1), padding=(2, 1))),
    ((2, 3, 6, 5), (2, 3, 4, 3), dict(padding="same")),
    ((5, 2, 4, 3), (3, 2, 2, 2), dict(stride=2)),
    ((2, 37, 5, 5), (33, 37, 3, 3), {}),
    ((3, 40, 7, 6), (5, 40, 2, 3), dict(stride=(1, 2), dilation=(2, 1), padding=(1, 2))),
], ids=["1x1", "pad", "stride_dilation", "same", "stride2", "channels37", "channels40_strided"])
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
def test_channels_last_input_gradient_equals_col2im(x_shape, w_shape, options, chunked):
    """The CPU input gradient (folded batch-last, or channels-last in the last two cases)
    equals W^T gy folded by col2im."""
    x = gf.tensor(distinct(*x_shape), requires_grad=True)
    w = distinct(*w_shape, seed=1)
    window = gf.nn.functional.conv2d(x, gf.tensor(w), **options).grad_fn.args["window"]
    gy = distinct(x_shape[0], w_shape[0], *window.out_size(*x_shape[2:]), seed=2)
    cols = w.reshape(w_shape[0], -1).T @ gy.transpose(1, 0, 2, 3).reshape(w_shape[0], -1)
    want = conv.col2im_array(cols, x_shape, window, batch_inner=True)
    limit = conv.get_conv_workspace_limit()
    if chunked:
        conv.set_conv_workspace_limit(1)  # one sample at a time
    try:
        got = conv._grad_input_folded(gy, w, x_shape, window)
    finally:
        conv.set_conv_workspace_limit(limit)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
