"""conv1d, conv3d and the transposed convolutions (functional forms and layers) against
PyTorch: values, gradients and second derivatives on awkward shapes (batch 1, odd and prime
sizes, strides 2-3, dilation, groups, 'same' padding with even kernels, output_padding, every
padding_mode, unbatched and non-contiguous inputs, float32 and float64), torch's errors for
bad arguments, finite differences, and the CuPy path (the fake_cuda stand-in)."""
import math

import numpy as np
import pytest
from helpers import check_cupy_path, check_gradcheck, check_op, check_op_raises, data, require_torch

import gradflow as gf

torch = require_torch()
# torch warns that it copies the input for 'same' with even kernels; the result is what we test
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def F(lib):
    return lib.nn.functional


# (id, fn(lib, *tensors), inputs)
FUNCTION_CASES = [
    # conv1d
    ("conv1d_bias", lambda L, x, w, b: F(L).conv1d(x, w, b), [(2, 3, 7), (4, 3, 3), (4,)]),
    ("conv1d_batch1_stride3_pad2", lambda L, x, w: F(L).conv1d(x, w, stride=3, padding=2),
     [(1, 2, 11), (3, 2, 4)]),
    ("conv1d_same_even_dilated", lambda L, x, w: F(L).conv1d(x, w, padding="same", dilation=3),
     [(2, 2, 9), (3, 2, 2)]),
    ("conv1d_valid_groups3", lambda L, x, w, b: F(L).conv1d(x, w, b, padding="valid", groups=3),
     [(3, 6, 5), (9, 2, 3), (9,)]),
    ("conv1d_unbatched_tuples", lambda L, x, w: F(L).conv1d(x, w, stride=(2,), padding=(1,),
                                                           dilation=(2,), groups=2),
     [(4, 8), (2, 2, 3)]),
    # conv3d
    ("conv3d_bias", lambda L, x, w, b: F(L).conv3d(x, w, b), [(2, 3, 4, 5, 4), (2, 3, 2, 3, 2),
                                                              (2,)]),
    ("conv3d_stride_padding_dilation",
     lambda L, x, w: F(L).conv3d(x, w, stride=(2, 1, 3), padding=(1, 0, 2), dilation=(1, 2, 1)),
     [(1, 2, 5, 7, 6), (3, 2, 3, 2, 3)]),
    ("conv3d_same_even_groups2", lambda L, x, w: F(L).conv3d(x, w, padding="same", groups=2),
     [(2, 4, 3, 4, 5), (2, 2, 2, 3, 2)]),
    ("conv3d_depthwise_stride2", lambda L, x, w, b: F(L).conv3d(x, w, b, stride=2, groups=3),
     [(1, 3, 5, 5, 3), (6, 1, 2, 2, 1), (6,)]),
    ("conv3d_unbatched_valid", lambda L, x, w: F(L).conv3d(x, w, padding="valid"),
     [(2, 3, 4, 3), (2, 2, 2, 2, 2)]),
    # conv_transpose1d
    ("convt1d_bias", lambda L, x, w, b: F(L).conv_transpose1d(x, w, b), [(2, 3, 5), (3, 4, 3),
                                                                        (4,)]),
    ("convt1d_stride3_output_padding",
     lambda L, x, w: F(L).conv_transpose1d(x, w, stride=3, padding=1, output_padding=2),
     [(1, 2, 4), (2, 3, 4)]),
    ("convt1d_groups_dilation",
     lambda L, x, w, b: F(L).conv_transpose1d(x, w, b, stride=2, groups=2, dilation=2),
     [(3, 4, 5), (4, 3, 3), (6,)]),
    ("convt1d_output_padding_below_dilation",
     lambda L, x, w: F(L).conv_transpose1d(x, w, output_padding=1, dilation=2),
     [(2, 2, 4), (2, 3, 3)]),
    ("convt1d_unbatched", lambda L, x, w: F(L).conv_transpose1d(x, w, stride=2, padding=1),
     [(3, 6), (3, 2, 4)]),
    # conv_transpose2d
    ("convt2d_bias", lambda L, x, w, b: F(L).conv_transpose2d(x, w, b), [(2, 3, 4, 5),
                                                                        (3, 2, 3, 3), (2,)]),
    ("convt2d_stride_output_padding",
     lambda L, x, w: F(L).conv_transpose2d(x, w, stride=(2, 3), padding=(1, 2),
                                           output_padding=(1, 2)),
     [(1, 2, 5, 4), (2, 3, 3, 4)]),
    ("convt2d_groups3_dilation",
     lambda L, x, w, b: F(L).conv_transpose2d(x, w, b, stride=2, groups=3, dilation=(2, 1)),
     [(2, 3, 3, 5), (3, 2, 2, 3), (6,)]),
    ("convt2d_output_padding_below_dilation",
     lambda L, x, w: F(L).conv_transpose2d(x, w, output_padding=(1, 0), dilation=(2, 1)),
     [(1, 2, 3, 4), (2, 2, 2, 2)]),
    ("convt2d_unbatched", lambda L, x, w: F(L).conv_transpose2d(x, w, stride=2),
     [(2, 3, 3), (2, 3, 2, 2)]),
    # conv_transpose3d
    ("convt3d_bias", lambda L, x, w, b: F(L).conv_transpose3d(x, w, b), [(2, 3, 3, 4, 3),
                                                                        (3, 2, 2, 3, 2), (2,)]),
    ("convt3d_stride_padding_output_padding",
     lambda L, x, w: F(L).conv_transpose3d(x, w, stride=(2, 1, 3), padding=(1, 0, 1),
                                           output_padding=(1, 0, 2), dilation=(1, 2, 1)),
     [(1, 2, 3, 4, 3), (2, 3, 3, 2, 2)]),
    ("convt3d_groups2_dilation", lambda L, x, w, b: F(L).conv_transpose3d(
        x, w, b, stride=2, groups=2, dilation=2, output_padding=1),
     [(2, 4, 2, 3, 2), (4, 1, 2, 2, 2), (2,)]),
    ("convt3d_output_padding_below_dilation",
     lambda L, x, w: F(L).conv_transpose3d(x, w, output_padding=(0, 1, 0), dilation=2),
     [(1, 2, 2, 3, 2), (2, 2, 2, 2, 2)]),
    ("convt3d_unbatched", lambda L, x, w: F(L).conv_transpose3d(x, w, stride=2, padding=1),
     [(2, 3, 2, 3), (2, 2, 3, 2, 2)]),
]
IDS = [c[0] for c in FUNCTION_CASES]


def _arrays(shapes, dtype=np.float64):
    return [data(s, seed=i, dtype=dtype) for i, s in enumerate(shapes)]


@pytest.mark.parametrize("name,fn,shapes", FUNCTION_CASES, ids=IDS)
def test_functions_match_torch(name, fn, shapes):
    check_op(fn, *_arrays(shapes))


@pytest.mark.parametrize("name,fn,shapes", FUNCTION_CASES, ids=IDS)
def test_functions_match_torch_on_noncontiguous_inputs(name, fn, shapes):
    check_op(fn, *_arrays(shapes), noncontiguous=True, second_order=False)


@pytest.mark.parametrize("name,fn,shapes", FUNCTION_CASES[::2], ids=IDS[::2])
def test_functions_match_torch_in_float32(name, fn, shapes):
    check_op(fn, *_arrays(shapes, np.float32), atol=1e-4, rtol=1e-4, second_order=False)


@pytest.mark.parametrize("fn,shapes", [
    (lambda L, x, w: F(L).conv1d(x, w), [(0, 2, 5), (3, 2, 2)]),
    (lambda L, x, w: F(L).conv3d(x, w), [(0, 2, 3, 3, 3), (3, 2, 2, 2, 2)]),
    (lambda L, x, w: F(L).conv_transpose1d(x, w, stride=2), [(0, 2, 5), (2, 3, 2)]),
    (lambda L, x, w: F(L).conv_transpose3d(x, w), [(0, 2, 2, 2, 2), (2, 3, 2, 2, 2)]),
], ids=["conv1d", "conv3d", "conv_transpose1d", "conv_transpose3d"])
def test_an_empty_batch_gives_an_empty_output(fn, shapes):
    check_op(fn, *_arrays(shapes), second_order=False)


@pytest.mark.parametrize("name,fn,shapes", [
    ("conv1d", lambda L, x, w, b: F(L).conv1d(x, w, b, stride=2, padding=1, dilation=2,
                                             groups=2), [(1, 4, 7), (2, 2, 2), (2,)]),
    ("conv3d", lambda L, x, w, b: F(L).conv3d(x, w, b, stride=(1, 2, 1), padding=(1, 0, 1),
                                             dilation=(2, 1, 1), groups=2),
     [(1, 2, 3, 4, 3), (2, 1, 2, 2, 2), (2,)]),
    ("conv3d_same_even", lambda L, x, w: F(L).conv3d(x, w, padding="same"),
     [(1, 1, 2, 3, 3), (1, 1, 2, 2, 1)]),
    ("conv_transpose1d", lambda L, x, w, b: F(L).conv_transpose1d(
        x, w, b, stride=2, padding=1, output_padding=1, groups=2), [(1, 2, 3), (2, 1, 3), (2,)]),
    ("conv_transpose2d", lambda L, x, w, b: F(L).conv_transpose2d(
        x, w, b, stride=(2, 1), output_padding=(1, 0), dilation=(1, 2)),
     [(1, 2, 2, 3), (2, 1, 2, 2), (1,)]),
    ("conv_transpose3d", lambda L, x, w, b: F(L).conv_transpose3d(
        x, w, b, stride=2, padding=(1, 0, 0), output_padding=(1, 0, 1), groups=2),
     [(1, 2, 2, 2, 2), (2, 1, 2, 1, 2), (2,)]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_gradcheck(name, fn, shapes):
    check_gradcheck(fn, *_arrays(shapes))


# -- the layers -------------------------------------------------------------------------------
# (id, make(nn, dtype), input shape, forward kwargs)
MODULE_CASES = [
    ("Conv1d", lambda nn, dt: nn.Conv1d(3, 4, 3, dtype=dt), (2, 3, 7), {}),
    ("Conv1d_stride2_groups_nobias",
     lambda nn, dt: nn.Conv1d(4, 6, 2, stride=2, padding=1, groups=2, bias=False, dtype=dt),
     (1, 4, 9), {}),
    ("Conv1d_same_even_reflect",
     lambda nn, dt: nn.Conv1d(2, 3, 4, padding="same", dilation=2, padding_mode="reflect",
                              dtype=dt), (2, 2, 9), {}),
    ("Conv1d_replicate", lambda nn, dt: nn.Conv1d(2, 2, 3, padding=2, padding_mode="replicate",
                                                  dtype=dt), (1, 2, 5), {}),
    ("Conv1d_circular_unbatched",
     lambda nn, dt: nn.Conv1d(3, 3, 3, stride=3, padding=1, groups=3, padding_mode="circular",
                              dtype=dt), (3, 8), {}),
    ("Conv2d_same_even_circular",
     lambda nn, dt: nn.Conv2d(2, 4, (2, 3), padding="same", groups=2, padding_mode="circular",
                              dtype=dt), (2, 2, 5, 4), {}),
    ("Conv2d_valid_dilated",
     lambda nn, dt: nn.Conv2d(3, 2, 2, padding="valid", dilation=(2, 1), dtype=dt),
     (1, 3, 5, 6), {}),
    ("Conv3d", lambda nn, dt: nn.Conv3d(2, 3, 2, dtype=dt), (2, 2, 3, 4, 3), {}),
    ("Conv3d_strided_padded_groups",
     lambda nn, dt: nn.Conv3d(4, 2, (3, 2, 2), stride=(1, 2, 3), padding=(1, 0, 1), groups=2,
                              bias=False, dtype=dt), (1, 4, 4, 5, 6), {}),
    ("Conv3d_same_even_reflect",
     lambda nn, dt: nn.Conv3d(2, 2, (2, 3, 2), padding="same", padding_mode="reflect",
                              dtype=dt), (1, 2, 3, 4, 3), {}),
    ("Conv3d_replicate_dilated",
     lambda nn, dt: nn.Conv3d(1, 2, 2, padding=1, dilation=2, padding_mode="replicate",
                              dtype=dt), (2, 1, 3, 3, 4), {}),
    ("Conv3d_circular_unbatched",
     lambda nn, dt: nn.Conv3d(2, 2, 3, padding=(1, 2, 1), padding_mode="circular", dtype=dt),
     (2, 3, 4, 3), {}),
    ("ConvTranspose1d", lambda nn, dt: nn.ConvTranspose1d(3, 4, 3, dtype=dt), (2, 3, 5), {}),
    ("ConvTranspose1d_output_padding_groups",
     lambda nn, dt: nn.ConvTranspose1d(4, 6, 3, stride=3, padding=1, output_padding=2,
                                       groups=2, dtype=dt), (1, 4, 4), {}),
    ("ConvTranspose1d_output_size",
     lambda nn, dt: nn.ConvTranspose1d(2, 3, 3, stride=2, padding=1, bias=False, dtype=dt),
     (2, 2, 4), {"output_size": [8]}),
    ("ConvTranspose2d", lambda nn, dt: nn.ConvTranspose2d(2, 3, (2, 3), stride=2, dtype=dt),
     (2, 2, 3, 4), {}),
    ("ConvTranspose2d_dilated_groups3",
     lambda nn, dt: nn.ConvTranspose2d(3, 6, 2, stride=(1, 2), padding=1, output_padding=(0, 1),
                                       groups=3, dilation=2, dtype=dt), (1, 3, 4, 4), {}),
    ("ConvTranspose2d_output_size_unbatched",
     lambda nn, dt: nn.ConvTranspose2d(2, 2, 3, stride=3, dtype=dt), (2, 3, 3),
     {"output_size": (2, 10, 11)}),
    ("ConvTranspose3d", lambda nn, dt: nn.ConvTranspose3d(2, 3, 2, stride=2, dtype=dt),
     (1, 2, 2, 3, 2), {}),
    ("ConvTranspose3d_output_padding_groups",
     lambda nn, dt: nn.ConvTranspose3d(4, 2, (2, 3, 2), stride=(2, 1, 3), padding=(0, 1, 1),
                                       output_padding=(1, 0, 2), groups=2, bias=False,
                                       dtype=dt), (2, 4, 2, 3, 2), {}),
    ("ConvTranspose3d_output_size",
     lambda nn, dt: nn.ConvTranspose3d(2, 2, 3, stride=2, padding=1, dtype=dt),
     (1, 2, 2, 2, 3), {"output_size": [1, 2, 4, 3, 6]}),
]
MODULE_IDS = [c[0] for c in MODULE_CASES]


def _through_tensors(module, w, b, x, kwargs):
    """module(x) with weight w and bias b as its parameters (the tensors check_op made), so
    their gradients are checked too."""
    del module.weight
    module.weight = w
    if b is not None:
        del module.bias
        module.bias = b
    return module(x, **kwargs)


@pytest.mark.parametrize("name,make,shape,kwargs", MODULE_CASES, ids=MODULE_IDS)
def test_layers_match_torch(name, make, shape, kwargs):
    reference, ours = make(torch.nn, torch.float64), make(gf.nn, gf.float64)
    assert repr(ours) == repr(reference)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in reference.named_parameters()]
    params = [p.detach().numpy() for p in reference.parameters()]

    def fn(L, x, w, b=None):
        return _through_tensors(ours if L is gf else reference, w, b, x, kwargs)

    check_op(fn, data(shape, seed=5), *params)


@pytest.mark.parametrize("name,make,shape,kwargs", MODULE_CASES[::3], ids=MODULE_IDS[::3])
def test_layers_load_torch_weights_and_match_in_float32(name, make, shape, kwargs):
    reference, ours = make(torch.nn, torch.float32), make(gf.nn, gf.float32)
    ours.load_state_dict({k: gf.tensor(v.numpy()) for k, v in reference.state_dict().items()})
    x = data(shape, seed=5, dtype=np.float32)
    np.testing.assert_allclose(ours(gf.tensor(x), **kwargs).detach().numpy(),
                               reference(torch.from_numpy(x), **kwargs).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls,shape", [
    ("Conv1d", (12, 3, 5)), ("Conv2d", (12, 3, 3, 2)), ("Conv3d", (12, 3, 2, 3, 2)),
    ("ConvTranspose1d", (6, 6, 5)), ("ConvTranspose2d", (6, 6, 3, 2)),
    ("ConvTranspose3d", (6, 6, 2, 3, 2)),
])
def test_layers_default_init(cls, shape):
    """torch's init: kaiming_uniform_(a=sqrt(5)) weights and a U(+-1/sqrt(fan_in)) bias; the
    transposed weight is (in, out/groups, *kernel), fan_in its shape[1] times the kernel."""
    gf.manual_seed(0)
    m = getattr(gf.nn, cls)(6, 12, shape[2:], groups=2)
    assert tuple(m.weight.shape) == shape and tuple(m.bias.shape) == (12,)
    assert m.weight.dtype == gf.float32
    bound = 1 / math.sqrt(math.prod(shape[1:]))
    w = m.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(m.bias.detach().numpy()).max() <= bound
    np.testing.assert_allclose(np.abs(w).max(), bound, rtol=0.05)
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.15)


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op,fn,shapes", [
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w, groups=2), [(1, 4, 5), (3, 2, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w), [(1, 3, 5), (2, 2, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w), [(1, 2, 3, 5), (2, 2, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w), [(5,), (2, 5, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w), [(1, 2, 5), (2, 2, 3, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w, stride=2, padding="same"),
     [(1, 2, 5), (2, 2, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w, padding="full"), [(1, 2, 5), (2, 2, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w, padding=-1), [(1, 2, 5), (2, 2, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w, stride=(1, 1)), [(1, 2, 5), (2, 2, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w, stride=0), [(1, 2, 5), (2, 2, 3)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w, dilation=3), [(1, 2, 5), (2, 2, 3)]),
    ("conv1d", lambda L, x, w, b: F(L).conv1d(x, w, b), [(1, 2, 5), (2, 2, 3), (3,)]),
    ("conv1d", lambda L, x, w: F(L).conv1d(x, w.double()), [(1, 2, 5), (2, 2, 3)]),
    ("conv3d", lambda L, x, w: F(L).conv3d(x, w, groups=3), [(1, 3, 3, 3, 3), (4, 1, 2, 2, 2)]),
    ("conv3d", lambda L, x, w: F(L).conv3d(x, w), [(1, 2, 3, 3), (2, 2, 2, 2, 2)]),
    ("conv3d", lambda L, x, w: F(L).conv3d(x, w), [(1, 2, 2, 5, 5), (2, 2, 3, 3, 3)]),
    ("conv3d", lambda L, x, w: F(L).conv3d(x, w, stride=(1, 2, 1), padding="same"),
     [(1, 2, 3, 3, 3), (2, 2, 2, 2, 2)]),
    ("conv_transpose1d", lambda L, x, w: F(L).conv_transpose1d(x, w, stride=2,
                                                               output_padding=2),
     [(1, 4, 5), (4, 2, 3)]),
    ("conv_transpose1d", lambda L, x, w: F(L).conv_transpose1d(x, w, groups=2),
     [(1, 4, 5), (3, 2, 3)]),
    ("conv_transpose1d", lambda L, x, w: F(L).conv_transpose1d(x, w), [(1, 3, 5), (4, 2, 3)]),
    ("conv_transpose1d", lambda L, x, w: F(L).conv_transpose1d(x, w, padding=5),
     [(1, 4, 5), (4, 2, 3)]),
    ("conv_transpose1d", lambda L, x, w: F(L).conv_transpose1d(x, w, padding="same"),
     [(1, 4, 5), (4, 2, 3)]),
    ("conv_transpose2d", lambda L, x, w: F(L).conv_transpose2d(x, w, stride=(2, 1),
                                                               output_padding=(1, 1)),
     [(1, 2, 3, 3), (2, 2, 3, 3)]),
    ("conv_transpose2d", lambda L, x, w: F(L).conv_transpose2d(x, w), [(2, 3, 3, 3, 3),
                                                                      (2, 2, 3, 3)]),
    ("conv_transpose2d", lambda L, x, w: F(L).conv_transpose2d(x, w, stride=0),
     [(1, 2, 3, 3), (2, 2, 3, 3)]),
    ("conv_transpose3d", lambda L, x, w: F(L).conv_transpose3d(x, w, stride=2,
                                                               output_padding=2),
     [(1, 2, 2, 2, 2), (2, 2, 2, 2, 2)]),
    ("conv_transpose3d", lambda L, x, w: F(L).conv_transpose3d(x, w, groups=2),
     [(1, 3, 2, 2, 2), (3, 2, 2, 2, 2)]),
    ("conv_transpose3d", lambda L, x, w: F(L).conv_transpose3d(x, w), [(1, 2, 2, 2),
                                                                      (2, 2, 2, 2)]),
])
def test_functions_raise_torchs_errors(op, fn, shapes):
    check_op_raises(fn, *[data(s, dtype=np.float32) for s in shapes], op=op)


@pytest.mark.parametrize("op,make", [
    ("Conv1d", lambda nn: nn.Conv1d(3, 4, 3, groups=2)),
    ("Conv3d", lambda nn: nn.Conv3d(4, 3, 3, groups=2)),
    ("Conv3d", lambda nn: nn.Conv3d(4, 4, 3, groups=0)),
    ("Conv1d", lambda nn: nn.Conv1d(2, 2, 3, stride=2, padding="same")),
    ("Conv3d", lambda nn: nn.Conv3d(2, 2, 3, padding="full")),
    ("Conv1d", lambda nn: nn.Conv1d(2, 2, 3, padding_mode="mirror")),
    ("ConvTranspose2d", lambda nn: nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")),
    ("ConvTranspose3d", lambda nn: nn.ConvTranspose3d(2, 4, 3, groups=3)),
    ("ConvTranspose1d", lambda nn: nn.ConvTranspose1d(2, 2, 3, stride=2)(
        _tensor(nn, (1, 2, 4)), output_size=[12])),
    ("ConvTranspose2d", lambda nn: nn.ConvTranspose2d(2, 2, 3)(
        _tensor(nn, (1, 2, 4, 4)), output_size=[1, 6])),
    ("ConvTranspose1d", lambda nn: nn.ConvTranspose1d(2, 2, 3, stride=2, output_padding=2)(
        _tensor(nn, (1, 2, 4)))),
])
def test_layers_raise_torchs_errors(op, make):
    check_op_raises(lambda L: make(L.nn), op=op)


def _tensor(nn, shape):
    lib = gf if nn is gf.nn else torch
    return lib.tensor(data(shape, dtype=np.float32))


def test_transposed_layers_refuse_string_padding():
    """torch accepts padding='same' on a transposed layer and fails in forward; gradflow
    refuses it when the layer is built, naming the layer and the value."""
    with pytest.raises(ValueError, match=r"^ConvTranspose1d: padding must be an int .* 'same'"):
        gf.nn.ConvTranspose1d(2, 2, 3, padding="same")


# -- the CuPy path ----------------------------------------------------------------------------
def _f32(*shapes):
    return [data(s, seed=i, dtype=np.float32) for i, s in enumerate(shapes)]


CUPY_CASES = {
    "conv1d": (lambda x, w, b: F(gf).conv1d(x, w, b, stride=2, padding=1, groups=2),
               _f32((2, 4, 7), (6, 2, 3), (6,))),
    "conv1d_same_even": (lambda x, w: F(gf).conv1d(x, w, padding="same", dilation=2),
                         _f32((1, 2, 6), (3, 2, 2))),
    "conv3d": (lambda x, w, b: F(gf).conv3d(x, w, b, stride=(1, 2, 1), padding=(1, 0, 1),
                                            dilation=(2, 1, 1), groups=2),
               _f32((2, 4, 4, 5, 3), (2, 2, 2, 3, 2), (2,))),
    "conv_transpose1d": (lambda x, w, b: F(gf).conv_transpose1d(x, w, b, stride=3, padding=1,
                                                                output_padding=2, groups=2),
                         _f32((2, 4, 5), (4, 3, 3), (6,))),
    "conv_transpose2d": (lambda x, w, b: F(gf).conv_transpose2d(
        x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 1), dilation=(1, 2)),
        _f32((2, 3, 4, 3), (3, 2, 3, 2), (2,))),
    "conv_transpose3d": (lambda x, w, b: F(gf).conv_transpose3d(
        x, w, b, stride=2, padding=(0, 1, 0), output_padding=(1, 0, 1), groups=2),
        _f32((1, 4, 2, 3, 2), (4, 1, 2, 3, 2), (2,))),
    "Conv3d_circular": (lambda x, w: _through_tensors(
        gf.nn.Conv3d(2, 3, 2, padding=1, padding_mode="circular", bias=False,
                     device=x.device), w, None, x, {}),
        _f32((1, 2, 3, 3, 2), (3, 2, 2, 2, 2))),
}


@pytest.mark.parametrize("name", CUPY_CASES)
def test_functions_run_on_the_cupy_path(fake_cuda, name):
    """Each runs on CuPy arrays (the fake's NumPy-backed stand-in) with the CPU's values and
    gradients; the 1-D and 2-D ones through kernels/conv.cu's im2col and col2im."""
    fn, arrays = CUPY_CASES[name]
    check_cupy_path(fn, *arrays, rtol=1e-5, atol=1e-6)
    if name[-2:] in ("1d", "2d"):
        launched = {e.where for e in fake_cuda.events_of("launch")}
        assert any("col2im" in w for w in launched), launched


@pytest.mark.parametrize("name", ["conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                  "conv_transpose2d", "conv_transpose3d"])
def test_torchs_top_level_names_are_the_functional_forms(name):
    assert callable(getattr(torch, name))
    assert getattr(gf, name) is getattr(gf.nn.functional, name)
