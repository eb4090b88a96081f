"""The activations (softplus ... threshold, the softmax family with dtype=) and the losses
(cross entropy over class probabilities, kl_div ... ctc_loss) of torch.nn.functional and
their modules, against PyTorch: values, dtypes, first and second derivatives on awkward
shapes and every reduction; PyTorch's errors for bad arguments; finite differences; and the
CuPy path."""
import numpy as np
import pytest
from helpers import (
    I_CUPY,
    X_CUPY,
    check_cupy_path,
    check_gradcheck,
    check_op,
    check_op_raises,
    data,
    require_torch,
)

import gradflow as gf

torch = require_torch()


def F(L):
    return L.nn.functional


def probs(*shape, seed=0, axis=1):
    """Rows of class probabilities along `axis`."""
    e = np.exp(data(shape, seed=seed))
    return e / e.sum(axis, keepdims=True)


def signs(*shape, seed=0):
    return np.where(data(shape, seed=seed) > 0, 1.0, -1.0)


def classes(*shape, n=4, seed=0):
    return np.random.default_rng(seed).integers(0, n, size=shape)


W3 = np.array([0.5, 1.0, 2.0])
W4 = np.array([0.5, 1.0, 2.0, 0.25])
WIDE = data(3, 1, 5) * 5  # crosses relu6's 6, hardsigmoid's +-3 and softplus's threshold
# multilabel targets: each row lists its classes, ended by the first -1
ML_TARGET = np.array([[3, 0, -1, 1, 2], [1, -1, 4, 4, 4], [0, 1, 2, 3, 4]])

# -- activations ---------------------------------------------------------------------------------
ACTIVATIONS = [
    ("softplus", lambda L, a: F(L).softplus(a), [(3, 1, 5)], {}),
    ("softplus_beta_threshold", lambda L, a: F(L).softplus(a, beta=2.0, threshold=1.5),
     [(7, 3)], {"noncontiguous": True}),
    ("softplus_large", lambda L, a: F(L).softplus(a * 40), [(2, 7)], {}),
    ("softplus_0d", lambda L, a: F(L).softplus(a, 0.5), [()], {}),
    ("softsign", lambda L, a: F(L).softsign(a), [(3, 1, 5)], {}),
    ("celu", lambda L, a: F(L).celu(a, 0.5), [(7, 3)], {"noncontiguous": True}),
    ("celu_inplace", lambda L, a: F(L).celu(a * 1.0, 1.5, inplace=True), [(3, 4)], {}),
    ("selu", lambda L, a: F(L).selu(a), [(3, 1, 5)], {}),
    ("selu_inplace", lambda L, a: F(L).selu(a * 1.0, inplace=True), [()], {}),
    ("silu", lambda L, a: F(L).silu(a), [(7, 3)], {"noncontiguous": True}),
    ("silu_inplace", lambda L, a: F(L).silu(a * 1.0, True), [(1,)], {}),
    ("mish", lambda L, a: F(L).mish(a * 3), [(3, 1, 5)], {}),
    ("mish_inplace", lambda L, a: F(L).mish(a * 1.0, inplace=True), [(2, 3)], {}),
    ("hardtanh", lambda L, a: F(L).hardtanh(a), [(3, 1, 5)], {}),
    ("hardtanh_bounds", lambda L, a: F(L).hardtanh(a, -0.5, 0.8), [(7, 3)],
     {"noncontiguous": True}),
    ("hardtanh_inplace", lambda L, a: F(L).hardtanh(a * 1.0, -0.5, 0.8, True), [(3, 4)], {}),
    ("relu6", lambda L, a: F(L).relu6(a), [WIDE], {}),
    ("relu6_inplace", lambda L, a: F(L).relu6(a * 1.0, inplace=True), [WIDE], {}),
    ("hardsigmoid", lambda L, a: F(L).hardsigmoid(a), [WIDE], {"second_order": False}),
    ("hardsigmoid_inplace", lambda L, a: F(L).hardsigmoid(a * 1.0, True), [WIDE],
     {"second_order": False}),
    ("hardswish", lambda L, a: F(L).hardswish(a), [WIDE], {}),
    ("hardswish_inplace", lambda L, a: F(L).hardswish(a * 1.0, inplace=True), [WIDE], {}),
    ("hardshrink", lambda L, a: F(L).hardshrink(a), [(3, 1, 5)], {}),
    ("hardshrink_lambd", lambda L, a: F(L).hardshrink(a, 0.9), [(7, 3)],
     {"noncontiguous": True}),
    ("softshrink", lambda L, a: F(L).softshrink(a), [(3, 1, 5)], {}),
    ("softshrink_lambd", lambda L, a: F(L).softshrink(a, lambd=1.1), [()], {}),
    ("tanhshrink", lambda L, a: F(L).tanhshrink(a), [(7, 3)], {"noncontiguous": True}),
    ("logsigmoid", lambda L, a: F(L).logsigmoid(a), [(3, 1, 5)], {}),
    ("logsigmoid_large", lambda L, a: F(L).logsigmoid(a * 500), [(2, 7)], {}),
    ("threshold", lambda L, a: F(L).threshold(a, 0.4, -2.0), [(3, 1, 5)], {}),
    ("threshold_inplace", lambda L, a: F(L).threshold(a * 1.0, -0.5, 0.0, inplace=True),
     [(7, 3)], {}),
    ("glu", lambda L, a: F(L).glu(a), [(3, 1, 6)], {}),
    ("glu_dim", lambda L, a: F(L).glu(a, 1), [(3, 4, 5)], {}),
    ("glu_negative_dim_strided", lambda L, a: F(L).glu(a, -2), [(6, 3)],
     {"noncontiguous": True}),
    ("prelu_shared", lambda L, a, w: F(L).prelu(a, w), [(2, 3, 4), data(1, seed=5)], {}),
    ("prelu_channels", lambda L, a, w: F(L).prelu(a, w), [(2, 3, 4), data(3, seed=5)], {}),
    ("prelu_channels_strided", lambda L, a, w: F(L).prelu(a, w), [(5, 3), data(3, seed=5)],
     {"noncontiguous": True}),
    ("prelu_1d", lambda L, a, w: F(L).prelu(a, w), [(7,), data(1, seed=5)], {}),
    ("prelu_0d", lambda L, a, w: F(L).prelu(a, w), [(), data((), seed=5)], {}),
    ("rrelu_eval", lambda L, a: F(L).rrelu(a), [(3, 1, 5)], {}),
    ("rrelu_eval_bounds", lambda L, a: F(L).rrelu(a * 1.0, 0.1, 0.6, inplace=True), [(7, 3)],
     {}),
    ("relu_", lambda L, a: F(L).relu_(a * 1.0), [(3, 4)], {}),
    ("elu_", lambda L, a: F(L).elu_(a * 1.0, 0.5), [(3, 4)], {}),
    ("leaky_relu_", lambda L, a: F(L).leaky_relu_(a * 1.0, 0.2), [(3, 4)], {}),
    ("celu_", lambda L, a: F(L).celu_(a * 1.0, 2.0), [(3, 4)], {}),
    ("selu_", lambda L, a: F(L).selu_(a * 1.0), [(3, 4)], {}),
    ("hardtanh_", lambda L, a: F(L).hardtanh_(a * 1.0, -0.5, 0.5), [(3, 4)], {}),
    ("rrelu_eval_", lambda L, a: F(L).rrelu_(a * 1.0, 0.2, 0.4), [(3, 4)], {}),
    ("threshold_", lambda L, a: F(L).threshold_(a * 1.0, 0.2, 7.0), [(3, 4)], {}),
    ("gelu_tanh", lambda L, a: F(L).gelu(a, approximate="tanh"), [(7, 3)],
     {"noncontiguous": True}),
    ("gelu_0d", lambda L, a: F(L).gelu(a), [()], {}),
    ("softmin", lambda L, a: F(L).softmin(a, 1), [(3, 4, 5)], {}),
    ("softmin_negative_dim", lambda L, a: F(L).softmin(a, dim=-1), [(7, 3)],
     {"noncontiguous": True}),
    ("softmin_dtype", lambda L, a: F(L).softmin(a, 0, dtype=L.float64),
     [data(3, 2, dtype=np.float32)], {}),
    ("softmax_dtype", lambda L, a: F(L).softmax(a, -1, dtype=L.float64),
     [data(3, 5, dtype=np.float32)], {}),
    ("log_softmax_dtype", lambda L, a: F(L).log_softmax(a, 0, dtype=L.float64),
     [data(4, 3, dtype=np.float32)], {}),
    ("softmax_0d", lambda L, a: F(L).softmax(a, 0), [()], {}),
    ("softmax_size_1", lambda L, a: F(L).softmax(a, 1), [(3, 1, 5)], {}),
    ("tensor_softmax", lambda L, a: a.softmax(1), [(7, 3)], {"noncontiguous": True}),
    ("tensor_softmax_dtype", lambda L, a: a.softmax(-1, dtype=L.float64),
     [data(2, 3, dtype=np.float32)], {}),
    ("tensor_log_softmax", lambda L, a: a.log_softmax(-2), [(3, 4, 5)], {}),
    ("tensor_log_softmax_dtype", lambda L, a: a.log_softmax(0, L.float64),
     [data(5, dtype=np.float32)], {}),
    ("top_softmax", lambda L, a: L.softmax(a, 0, dtype=L.float64), [(3, 4)], {}),
    ("top_log_softmax", lambda L, a: L.log_softmax(a, dim=-1), [(3, 1, 5)], {}),
]


def module(name, *args, **kwargs):
    """fn(L, *tensors) calling L.nn.<name>(*args, **kwargs) on the tensors."""
    return lambda L, *xs: getattr(L.nn, name)(*args, **kwargs)(*xs)


# modules whose torch has no second derivative to compare with
NO_TORCH_DOUBLE_BACKWARD = {"Hardsigmoid", "MultiLabelMarginLoss", "MultiMarginLoss", "CTCLoss"}


MODULES = [
    ("Softplus", module("Softplus", 2.0, 1.0), [(3, 1, 5)]),
    ("Softsign", module("Softsign"), [(3, 4)]),
    ("CELU", module("CELU", 0.7), [(3, 4)]),
    ("SELU", module("SELU"), [(3, 4)]),
    ("SiLU", module("SiLU", inplace=False), [(3, 4)]),
    ("Mish", module("Mish"), [(3, 4)]),
    ("Hardtanh", module("Hardtanh", -0.5, 0.5), [(3, 4)]),
    ("ReLU6", module("ReLU6"), [WIDE]),
    ("Hardsigmoid", module("Hardsigmoid"), [WIDE]),
    ("Hardswish", module("Hardswish"), [WIDE]),
    ("Hardshrink", module("Hardshrink", 0.6), [(3, 4)]),
    ("Softshrink", module("Softshrink", 0.6), [(3, 4)]),
    ("Tanhshrink", module("Tanhshrink"), [(3, 4)]),
    ("LogSigmoid", module("LogSigmoid"), [(3, 4)]),
    ("Threshold", module("Threshold", 0.1, 20.0), [(3, 4)]),
    ("GLU", module("GLU", 0), [(4, 3)]),
    ("Softmin", module("Softmin", -1), [(3, 4)]),
    ("Softmax2d", module("Softmax2d"), [(2, 3, 4, 5)]),
    ("Softmax2d_unbatched", module("Softmax2d"), [(3, 4, 5)]),
    ("LogSoftmax", module("LogSoftmax", 1), [(3, 4)]),
]


@pytest.mark.parametrize("name,fn,arrays,options", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
def test_activations_match_torch(name, fn, arrays, options):
    check_op(fn, *arrays, **options)


@pytest.mark.parametrize("name,fn,arrays", MODULES, ids=[c[0] for c in MODULES])
def test_activation_modules_match_torch(name, fn, arrays):
    check_op(fn, *arrays, second_order=name not in NO_TORCH_DOUBLE_BACKWARD)


def test_prelu_module_matches_torch_with_the_same_weights():
    w = data(3, seed=4)
    for lib in (gf, torch):
        assert tuple(lib.nn.PReLU(3, init=0.1).weight.shape) == (3,)
        assert lib.nn.PReLU().weight.dtype == lib.float32
    np.testing.assert_allclose(gf.nn.PReLU(3, init=0.1).weight.detach().numpy(), [0.1] * 3)

    def fn(L, x):
        m = L.nn.PReLU(3, dtype=L.float64)
        with L.no_grad():
            m.weight.copy_(L.tensor(w))
        return m(x)

    check_op(fn, data(2, 3, 5))
    assert "num_parameters=3" in repr(gf.nn.PReLU(3))


def test_softmax_without_dim_takes_torchs_legacy_dim_and_warns():
    for shape, dim in (((3, 4), 1), ((2, 3, 4), 0), ((5,), 0)):
        x = data(shape)
        with pytest.warns(UserWarning, match="softmax: implicit dimension choice"):
            got = gf.nn.functional.softmax(gf.tensor(x))
        want = torch.softmax(torch.tensor(x), dim)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    with pytest.warns(UserWarning, match="log_softmax"):
        gf.nn.LogSoftmax()(gf.tensor(data(2, 3)))


def test_rrelu_training_draws_slopes_in_bounds_and_evaluation_uses_their_mean():
    x = gf.tensor(data(50, 7), requires_grad=True)
    y = gf.nn.functional.rrelu(x, 0.1, 0.3, training=True)
    y.sum().backward()
    xs, ys, g = x.detach().numpy(), y.detach().numpy(), x.grad.numpy()
    neg = xs < 0
    slopes = ys[neg] / xs[neg]
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03, slopes
    np.testing.assert_allclose(g[neg], slopes, rtol=1e-12)  # the gradient is the drawn slope
    np.testing.assert_array_equal(ys[~neg], xs[~neg])
    np.testing.assert_array_equal(g[~neg], 1.0)
    layer = gf.nn.RReLU(0.1, 0.3)
    assert layer(x).requires_grad
    layer.eval()
    np.testing.assert_allclose(layer(x).detach().numpy(), np.where(xs > 0, xs, 0.2 * xs))


ACTIVATION_ERRORS = [
    ("glu", lambda L, a: F(L).glu(a, 1), (3, 5)),
    ("glu", lambda L, a: F(L).glu(a), ()),
    ("glu", lambda L, a: F(L).glu(a, 2), (3, 4)),
    ("prelu", lambda L, a: F(L).prelu(a, L.ones(3, 1, dtype=L.float64)), (2, 3, 4)),
    ("prelu", lambda L, a: F(L).prelu(a, L.ones(4, dtype=L.float64)), (2, 3, 4)),
    ("prelu", lambda L, a: F(L).prelu(a, L.ones(3, dtype=L.float64)), (3,)),
    ("prelu", lambda L, a: F(L).prelu(a, L.ones(1, dtype=L.float32)), (3,)),
    ("rrelu", lambda L, a: F(L).rrelu(a, 0.5, 0.2), (3,)),
    ("softshrink", lambda L, a: F(L).softshrink(a, -1.0), (3,)),
    ("hardtanh", lambda L, a: F(L).hardtanh(a, 1.0, -1.0), (3,)),
    ("celu", lambda L, a: F(L).celu(a, 0.0), (3,)),
    ("softmax", lambda L, a: F(L).softmax(a, 2), (3, 4)),
    ("softmin", lambda L, a: F(L).softmin(a, -3), (3, 4)),
    ("log_softmax", lambda L, a: a.log_softmax(2), (3, 4)),
    ("Softmax2d", lambda L, a: L.nn.Softmax2d()(a), (3, 4)),
    ("threshold", lambda L, a: F(L).threshold(a, 0.5, "a"), (3,)),
]


@pytest.mark.parametrize("name,fn,array", ACTIVATION_ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ACTIVATION_ERRORS)])
def test_activation_errors_match_torch(name, fn, array):
    check_op_raises(fn, array, op=name)


def test_hardtanh_module_rejects_crossed_bounds():
    with pytest.raises(ValueError, match="Hardtanh: min_val cannot be greater than max_val"):
        gf.nn.Hardtanh(1.0, -1.0)


# -- losses --------------------------------------------------------------------------------------
def lp(L, x, dim=2):
    return F(L).log_softmax(x, dim)


CTC_TARGETS = np.array([[1, 2, 2], [3, 0, 0], [1, 3, 0]])
CTC_TARGETS_B3 = np.array([[1, 2, 2], [0, 3, 3], [1, 0, 3]])  # no label is the blank, 3
CTC_FLAT = np.array([1, 2, 2, 3, 1, 3])
CTC_IN, CTC_LEN = [6, 4, 5], [3, 1, 2]

# the margin losses, whose torch has no second derivative to compare with (gradcheck checks ours)
FIRST = {"second_order": False}

LOSSES = [
    ("ce_probs", lambda L, x, p: F(L).cross_entropy(x, p), [(5, 4), probs(5, 4, seed=1)], {}),
    ("ce_probs_sum_weight", lambda L, x, p: F(L).cross_entropy(
        x, p, weight=L.tensor(W4), reduction="sum"), [(5, 4), probs(5, 4, seed=1)], {}),
    ("ce_probs_smoothing_weight", lambda L, x, p: F(L).cross_entropy(
        x, p, L.tensor(W4), label_smoothing=0.2), [(5, 4), probs(5, 4, seed=1)], {}),
    ("ce_probs_none_3d", lambda L, x, p: F(L).cross_entropy(
        x, p, L.tensor(W3), reduction="none", label_smoothing=0.1),
     [(2, 3, 5), probs(2, 3, 5, seed=1)], {}),
    ("ce_probs_mean_3d_strided", lambda L, x, p: F(L).cross_entropy(x, p),
     [(2, 3, 5), probs(2, 3, 5, seed=1)], {"noncontiguous": True}),
    ("ce_probs_1d", lambda L, x, p: F(L).cross_entropy(x, p, label_smoothing=0.3),
     [(4,), probs(4, seed=1, axis=0)], {}),
    ("ce_probs_one_class", lambda L, x, p: F(L).cross_entropy(x, p), [(3, 1), np.ones((3, 1))],
     {}),
    ("ce_probs_empty_batch", lambda L, x, p: F(L).cross_entropy(x, p), [(0, 4), np.ones((0, 4))],
     {}),
    ("ce_indices_still", lambda L, x: F(L).cross_entropy(x, L.tensor(classes(5))), [(5, 4)],
     {}),
    ("kl_div_batchmean", lambda L, x, t: F(L).kl_div(lp(L, x, 1), t, reduction="batchmean"),
     [(3, 4), probs(3, 4, seed=1)], {}),
    ("kl_div_batchmean_empty", lambda L, x, t: F(L).kl_div(x, t, reduction="batchmean"),
     [(0, 3), data(0, 3, kind="pos", seed=1)], {}),
    ("kl_div_mean", lambda L, x, t: F(L).kl_div(lp(L, x, 1), t), [(3, 4), probs(3, 4, seed=1)],
     {}),
    ("kl_div_sum_zero_target", lambda L, x, t: F(L).kl_div(x, t, reduction="sum"),
     [(3, 4), np.array([[0.0, 0.5, 0.5, 0.0]] * 3)], {}),
    ("kl_div_none_log_target", lambda L, x, t: F(L).kl_div(x, t, reduction="none",
                                                           log_target=True),
     [(7, 3), data(7, 3, seed=1)], {"noncontiguous": True}),
    ("kl_div_batchmean_0d", lambda L, x, t: F(L).kl_div(x, t, reduction="batchmean"),
     [(), data((), kind="pos", seed=1)], {}),
    ("kl_div_legacy_flags", lambda L, x, t: F(L).kl_div(x, t, size_average=False),
     [(3, 4), data(3, 4, kind="pos", seed=1)], {}),
    ("huber", lambda L, x, y: F(L).huber_loss(x, y), [(3, 1, 5), data(3, 1, 5, seed=1)], {}),
    ("huber_empty", lambda L, x, y: F(L).huber_loss(x, y), [(0, 3), data(0, 3, seed=1)], {}),
    ("huber_delta_sum", lambda L, x, y: F(L).huber_loss(x, y, "sum", 0.4),
     [(7, 3), data(7, 3, seed=1)], {"noncontiguous": True}),
    ("huber_weight_none", lambda L, x, y, w: F(L).huber_loss(x, y, "none", 0.7, weight=w),
     [(3, 4), data(3, 4, seed=1), data(3, 4, kind="pos", seed=2)], {}),
    ("huber_weight_mean_0d", lambda L, x, y, w: F(L).huber_loss(x, y, weight=w),
     [(), data((), seed=1), data((), kind="pos", seed=2)], {}),
    ("smooth_l1", lambda L, x, y: F(L).smooth_l1_loss(x, y), [(3, 1, 5), data(3, 1, 5, seed=1)],
     {}),
    ("smooth_l1_beta_none", lambda L, x, y: F(L).smooth_l1_loss(x, y, reduction="none",
                                                                beta=0.5),
     [(7, 3), data(7, 3, seed=1)], {"noncontiguous": True}),
    ("smooth_l1_beta_0_sum", lambda L, x, y: F(L).smooth_l1_loss(x, y, reduction="sum",
                                                                 beta=0.0),
     [(3, 4), data(3, 4, seed=1)], {}),
    ("soft_margin", lambda L, x: F(L).soft_margin_loss(x, L.tensor(signs(3, 1, 5, seed=1))),
     [(3, 1, 5)], {}),
    ("soft_margin_sum_large", lambda L, x: F(L).soft_margin_loss(
        x * 300, L.tensor(signs(2, 7, seed=1)), reduction="sum"), [(2, 7)], {}),
    ("soft_margin_none_0d", lambda L, x: F(L).soft_margin_loss(x, L.tensor(-1.0),
                                                               reduction="none"), [()], {}),
    ("multilabel_soft_margin", lambda L, x: F(L).multilabel_soft_margin_loss(
        x, L.tensor((data(3, 5, seed=1) > 0) * 1.0)), [(3, 5)], {}),
    ("multilabel_soft_margin_weight_none", lambda L, x: F(L).multilabel_soft_margin_loss(
        x, L.tensor((data(4, 3, seed=1) > 0) * 1.0), L.tensor(W3), reduction="none"),
     [(4, 3)], {"noncontiguous": True}),
    ("multilabel_soft_margin_sum_1d", lambda L, x: F(L).multilabel_soft_margin_loss(
        x, L.tensor((data(5, seed=1) > 0) * 1.0), reduction="sum"), [(5,)], {}),
    ("multilabel_margin", lambda L, x: F(L).multilabel_margin_loss(x, L.tensor(ML_TARGET)),
     [(3, 5)], FIRST),
    ("multilabel_margin_none_strided", lambda L, x: F(L).multilabel_margin_loss(
        x, L.tensor(ML_TARGET), reduction="none"), [(3, 5)], {**FIRST, "noncontiguous": True}),
    ("multilabel_margin_1d_sum", lambda L, x: F(L).multilabel_margin_loss(
        x, L.tensor(ML_TARGET[0]), reduction="sum"), [(5,)], FIRST),
    ("multi_margin", lambda L, x: F(L).multi_margin_loss(x, L.tensor(classes(5, n=3))),
     [(5, 3)], FIRST),
    ("multi_margin_p2_weight_sum", lambda L, x: F(L).multi_margin_loss(
        x, L.tensor(classes(5, n=3)), p=2, margin=0.7, weight=L.tensor(W3), reduction="sum"),
     [(5, 3)], {**FIRST, "noncontiguous": True}),
    ("multi_margin_none", lambda L, x: F(L).multi_margin_loss(
        x, L.tensor(classes(4, n=7, seed=2)), margin=2.0, reduction="none"), [(4, 7)], FIRST),
    ("multi_margin_1d", lambda L, x: F(L).multi_margin_loss(x, L.tensor(2)), [(5,)], FIRST),
    ("margin_ranking", lambda L, a, b: F(L).margin_ranking_loss(
        a, b, L.tensor(signs(7, seed=2))), [(7,), data(7, seed=1)], {}),
    ("margin_ranking_margin_sum", lambda L, a, b: F(L).margin_ranking_loss(
        a, b, L.tensor(signs(3, 4, seed=2)), 0.3, reduction="sum"),
     [(3, 4), data(3, 4, seed=1)], {"noncontiguous": True}),
    ("margin_ranking_none_broadcast", lambda L, a, b: F(L).margin_ranking_loss(
        a, b, L.tensor(signs(3, 1, seed=2)), margin=0.1, reduction="none"),
     [(3, 4), data(1, 4, seed=1)], {}),
    ("hinge_embedding", lambda L, x: F(L).hinge_embedding_loss(x, L.tensor(signs(3, 5))),
     [(3, 5)], {}),
    ("hinge_embedding_margin_none", lambda L, x: F(L).hinge_embedding_loss(
        x, L.tensor(np.array([1.0, -1.0, 0.0, 1.0, -1.0])), 0.5, reduction="none"), [(5,)],
     {}),
    ("hinge_embedding_sum_0d", lambda L, x: F(L).hinge_embedding_loss(
        x, L.tensor(-1.0), 2.0, reduction="sum"), [()], {}),
    ("cosine_embedding", lambda L, a, b: F(L).cosine_embedding_loss(
        a, b, L.tensor(signs(4))), [(4, 3), data(4, 3, seed=1)], {}),
    ("cosine_embedding_margin_none", lambda L, a, b: F(L).cosine_embedding_loss(
        a, b, L.tensor(signs(5, seed=3)), margin=-0.5, reduction="none"),
     [(5, 3), data(5, 3, seed=1)], {"noncontiguous": True}),
    ("cosine_embedding_1d", lambda L, a, b: F(L).cosine_embedding_loss(
        a, b, L.tensor(1.0), reduction="sum"), [(7,), data(7, seed=1)], {}),
    ("triplet", lambda L, a, p, n: F(L).triplet_margin_loss(a, p, n),
     [(4, 3), data(4, 3, seed=1), data(4, 3, seed=2)], {}),
    ("triplet_p1_swap_sum", lambda L, a, p, n: F(L).triplet_margin_loss(
        a, p, n, margin=0.5, p=1, swap=True, reduction="sum"),
     [(5, 3), data(5, 3, seed=1), data(5, 3, seed=2)], {"noncontiguous": True}),
    ("triplet_none_1d", lambda L, a, p, n: F(L).triplet_margin_loss(
        a, p, n, 2.0, 3, eps=1e-3, reduction="none"),
     [(4,), data(4, seed=1), data(4, seed=2)], {}),
    ("triplet_distance", lambda L, a, p, n: F(L).triplet_margin_with_distance_loss(a, p, n),
     [(4, 3), data(4, 3, seed=1), data(4, 3, seed=2)], {}),
    ("triplet_distance_cosine_swap", lambda L, a, p, n: F(L).triplet_margin_with_distance_loss(
        a, p, n, distance_function=lambda u, v: 1 - F(L).cosine_similarity(u, v), margin=0.4,
        swap=True, reduction="none"), [(5, 3), data(5, 3, seed=1), data(5, 3, seed=2)], {}),
    ("triplet_distance_sum", lambda L, a, p, n: F(L).triplet_margin_with_distance_loss(
        a, p, n, reduction="sum"), [(4, 3), data(4, 3, seed=1), data(4, 3, seed=2)], {}),
    ("poisson", lambda L, x, t: F(L).poisson_nll_loss(x, t), [(3, 1, 5),
                                                               data(3, 1, 5, kind="pos") * 3],
     {}),
    ("poisson_rates_full_sum", lambda L, x, t: F(L).poisson_nll_loss(
        x, t, log_input=False, full=True, reduction="sum"),
     [data(7, 3, kind="pos"), data(7, 3, kind="pos", seed=1) * 2], {"noncontiguous": True}),
    ("poisson_full_none", lambda L, x, t: F(L).poisson_nll_loss(
        x, t, full=True, eps=1e-4, reduction="none"), [(3, 4), data(3, 4, kind="pos") * 2],
     {}),
    ("gaussian", lambda L, x, y, v: F(L).gaussian_nll_loss(x, y, v),
     [(3, 4), data(3, 4, seed=1), data(3, 4, kind="pos", seed=2)], {}),
    ("gaussian_var_short_full_sum", lambda L, x, y, v: F(L).gaussian_nll_loss(
        x, y, v, full=True, reduction="sum"),
     [(3, 4), data(3, 4, seed=1), data(3, kind="pos", seed=2)], {}),
    ("gaussian_var_broadcast_none", lambda L, x, y, v: F(L).gaussian_nll_loss(
        x, y, v, eps=0.5, reduction="none"),
     [(2, 3, 4), data(2, 3, 4, seed=1), data(2, 1, 4, kind="pos", seed=2)], {}),
    ("gaussian_var_float", lambda L, x, y: F(L).gaussian_nll_loss(x, y, 0.7),
     [(7, 3), data(7, 3, seed=1)], {"noncontiguous": True}),
    ("ctc_mean", lambda L, x: F(L).ctc_loss(lp(L, x), L.tensor(CTC_TARGETS), CTC_IN, CTC_LEN),
     [(6, 3, 4)], {"second_order": False}),
    ("ctc_flat_sum_tensor_lengths", lambda L, x: F(L).ctc_loss(
        lp(L, x), L.tensor(CTC_FLAT), L.tensor(CTC_IN), L.tensor(CTC_LEN), reduction="sum"),
     [(6, 3, 4)], {"second_order": False}),
    ("ctc_none_blank", lambda L, x: F(L).ctc_loss(
        lp(L, x), L.tensor(CTC_TARGETS_B3), CTC_IN, CTC_LEN, blank=3, reduction="none"),
     [(6, 3, 4)], {"second_order": False}),
    ("ctc_unbatched", lambda L, x: F(L).ctc_loss(
        lp(L, x, 1), L.tensor([2, 1, 1]), L.tensor(7), L.tensor(3), reduction="sum"), [(7, 5)],
     {"second_order": False}),
    ("ctc_empty_target", lambda L, x: F(L).ctc_loss(
        lp(L, x), L.tensor(CTC_TARGETS), CTC_IN, [3, 0, 2], reduction="none"), [(6, 3, 4)],
     {"second_order": False}),
    ("ctc_zero_infinity", lambda L, x: F(L).ctc_loss(
        lp(L, x), L.tensor(CTC_TARGETS), [3, 4, 5], CTC_LEN, zero_infinity=True,
        reduction="none"), [(6, 3, 4)], {"second_order": False}),
]


@pytest.mark.parametrize("name,fn,arrays,options", LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_match_torch(name, fn, arrays, options):
    check_op(fn, *arrays, **options)


def test_ctc_loss_of_an_impossible_alignment_is_infinite():
    x = gf.tensor(data(6, 3, 4))
    # the first target, 1 2 2, needs 4 frames (a blank between the 2s) and gets 3
    loss = gf.nn.functional.ctc_loss(x.log_softmax(2), gf.tensor(CTC_TARGETS), [3, 4, 5],
                                     CTC_LEN, reduction="none")
    want = torch.nn.functional.ctc_loss(torch.tensor(data(6, 3, 4)).log_softmax(2),
                                        torch.tensor(CTC_TARGETS), [3, 4, 5], CTC_LEN,
                                        reduction="none")
    np.testing.assert_allclose(loss.numpy(), want.numpy(), rtol=1e-10)
    assert np.isinf(loss.numpy()[0]) and np.isfinite(loss.numpy()[1:]).all(), loss


LOSS_MODULES = [
    ("KLDivLoss", module("KLDivLoss", reduction="batchmean", log_target=True),
     [(3, 4), data(3, 4, seed=1)]),
    ("HuberLoss", module("HuberLoss", "sum", 0.5), [(3, 4), data(3, 4, seed=1)]),
    ("SmoothL1Loss", module("SmoothL1Loss", beta=0.3), [(3, 4), data(3, 4, seed=1)]),
    ("SmoothL1Loss_legacy", module("SmoothL1Loss", None, False), [(3, 4), data(3, 4, seed=1)]),
    ("SoftMarginLoss", lambda L, x: L.nn.SoftMarginLoss()(x, L.tensor(signs(3, 4))), [(3, 4)]),
    ("MultiLabelSoftMarginLoss", lambda L, x: L.nn.MultiLabelSoftMarginLoss(
        L.tensor(W3), reduction="sum")(x, L.tensor((data(4, 3, seed=1) > 0) * 1.0)), [(4, 3)]),
    ("MultiLabelMarginLoss", lambda L, x: L.nn.MultiLabelMarginLoss()(x, L.tensor(ML_TARGET)),
     [(3, 5)]),
    ("MultiMarginLoss", lambda L, x: L.nn.MultiMarginLoss(2, 0.5, L.tensor(W3))(
        x, L.tensor(classes(5, n=3))), [(5, 3)]),
    ("MarginRankingLoss", lambda L, a, b: L.nn.MarginRankingLoss(0.2)(
        a, b, L.tensor(signs(6))), [(6,), data(6, seed=1)]),
    ("HingeEmbeddingLoss", lambda L, x: L.nn.HingeEmbeddingLoss(0.6, reduction="none")(
        x, L.tensor(signs(3, 4))), [(3, 4)]),
    ("CosineEmbeddingLoss", lambda L, a, b: L.nn.CosineEmbeddingLoss(0.1)(
        a, b, L.tensor(signs(4))), [(4, 3), data(4, 3, seed=1)]),
    ("TripletMarginLoss", module("TripletMarginLoss", 0.5, 1.0, swap=True),
     [(4, 3), data(4, 3, seed=1), data(4, 3, seed=2)]),
    ("TripletMarginWithDistanceLoss", module("TripletMarginWithDistanceLoss", margin=2.0),
     [(4, 3), data(4, 3, seed=1), data(4, 3, seed=2)]),
    ("PoissonNLLLoss", module("PoissonNLLLoss", full=True), [(3, 4), data(3, 4, kind="pos") * 3]),
    ("GaussianNLLLoss", module("GaussianNLLLoss", full=True, reduction="sum"),
     [(3, 4), data(3, 4, seed=1), data(3, 4, kind="pos", seed=2)]),
    ("CrossEntropyLoss_probs", module("CrossEntropyLoss", label_smoothing=0.1),
     [(3, 4), probs(3, 4, seed=1)]),
    ("CTCLoss", lambda L, x: L.nn.CTCLoss(blank=3, reduction="sum")(
        lp(L, x), L.tensor(CTC_TARGETS_B3), CTC_IN, CTC_LEN), [(6, 3, 4)]),
]


@pytest.mark.parametrize("name,fn,arrays", LOSS_MODULES, ids=[c[0] for c in LOSS_MODULES])
def test_loss_modules_match_torch(name, fn, arrays):
    check_op(fn, *arrays, second_order=name not in NO_TORCH_DOUBLE_BACKWARD)


LOSS_ERRORS = [
    ("cross_entropy", lambda L, x: F(L).cross_entropy(x, L.tensor(probs(4, 3)), ignore_index=1),
     (4, 3)),
    ("kl_div", lambda L, x: F(L).kl_div(x, L.tensor(data(3, 2)), reduction="avg"), (3, 4)),
    ("huber_loss", lambda L, x: F(L).huber_loss(x, x, delta=0.0), (3,)),
    ("smooth_l1_loss", lambda L, x: F(L).smooth_l1_loss(x, x, beta=-1.0), (3,)),
    ("multi_margin_loss", lambda L, x: F(L).multi_margin_loss(x, L.tensor([0, 1]), p=3),
     (2, 3)),
    ("multi_margin_loss", lambda L, x: F(L).multi_margin_loss(x, L.tensor([0, 1, 2])), (2, 3)),
    ("multi_margin_loss", lambda L, x: F(L).multi_margin_loss(x, L.tensor([0, 1])),
     (2, 3, 4)),
    ("multilabel_margin_loss", lambda L, x: F(L).multilabel_margin_loss(
        x, L.tensor([[0, 1]])), (2, 3)),
    ("margin_ranking_loss", lambda L, x: F(L).margin_ranking_loss(
        x, L.tensor(data(3, 1)), L.tensor(signs(3))), (3,)),
    ("cosine_embedding_loss", lambda L, x: F(L).cosine_embedding_loss(
        x, x, L.tensor(signs(2, 3))), (2, 3)),
    ("cosine_embedding_loss", lambda L, x: F(L).cosine_embedding_loss(
        x, x, L.tensor(signs(2))), (2, 3, 1)),
    ("triplet_margin_loss", lambda L, x: F(L).triplet_margin_loss(
        x, L.tensor(data(3)), x), (2, 3)),
    ("triplet_margin_with_distance_loss", lambda L, x: F(L).triplet_margin_with_distance_loss(
        x, x, x, margin=0.0), (2, 3)),
    ("gaussian_nll_loss", lambda L, x: F(L).gaussian_nll_loss(x, x, L.tensor(data(2, 3))),
     (3, 4)),
    ("gaussian_nll_loss", lambda L, x: F(L).gaussian_nll_loss(x, x, -1.0), (3, 4)),
    ("ctc_loss", lambda L, x: F(L).ctc_loss(x, L.tensor([[1, 2]]), [7], [2]), (5, 1, 3)),
    ("ctc_loss", lambda L, x: F(L).ctc_loss(x, L.tensor([[1, 2]]), [5], [2], blank=3),
     (5, 1, 3)),
]


@pytest.mark.parametrize("name,fn,array", LOSS_ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(LOSS_ERRORS)])
def test_loss_errors_match_torch(name, fn, array):
    check_op_raises(fn, array, op=name)


BAD_REDUCTION = {
    "cross_entropy": lambda L, x, r: F(L).cross_entropy(x, L.tensor(probs(2, 3)), reduction=r),
    "kl_div": lambda L, x, r: F(L).kl_div(x, x, reduction=r),
    "huber_loss": lambda L, x, r: F(L).huber_loss(x, x, reduction=r),
    "smooth_l1_loss": lambda L, x, r: F(L).smooth_l1_loss(x, x, reduction=r),
    "soft_margin_loss": lambda L, x, r: F(L).soft_margin_loss(x, x, reduction=r),
    "multilabel_soft_margin_loss": lambda L, x, r: F(L).multilabel_soft_margin_loss(
        x, x, reduction=r),
    "multilabel_margin_loss": lambda L, x, r: F(L).multilabel_margin_loss(
        x, L.tensor([[0, -1, 0], [1, 2, -1]]), reduction=r),
    "multi_margin_loss": lambda L, x, r: F(L).multi_margin_loss(x, L.tensor([0, 2]),
                                                                reduction=r),
    "margin_ranking_loss": lambda L, x, r: F(L).margin_ranking_loss(x, x, x, reduction=r),
    "hinge_embedding_loss": lambda L, x, r: F(L).hinge_embedding_loss(x, x, reduction=r),
    "cosine_embedding_loss": lambda L, x, r: F(L).cosine_embedding_loss(
        x, x, L.tensor([1.0, -1.0]), reduction=r),
    "triplet_margin_loss": lambda L, x, r: F(L).triplet_margin_loss(x, x, x, reduction=r),
    "poisson_nll_loss": lambda L, x, r: F(L).poisson_nll_loss(x, x, reduction=r),
    "gaussian_nll_loss": lambda L, x, r: F(L).gaussian_nll_loss(x, x, x.abs(), reduction=r),
    "ctc_loss": lambda L, x, r: F(L).ctc_loss(x.reshape(2, 1, 3), L.tensor([[1]]), [2], [1],
                                              reduction=r),
}


@pytest.mark.parametrize("name", BAD_REDUCTION)
def test_an_unknown_reduction_is_refused_as_by_torch(name):
    error = check_op_raises(lambda L, x: BAD_REDUCTION[name](L, x, "avg"), (2, 3), op=name)
    assert "reduction" in str(error) and "'avg'" in str(error), error


@pytest.mark.parametrize("name,call", [
    ("cross_entropy", lambda f, x: f.cross_entropy(x, [0, 1])),
    ("nll_loss", lambda f, x: f.nll_loss(x, np.array([0, 1]))),
    ("mse_loss", lambda f, x: f.mse_loss(x, [[0.0] * 3] * 2)),
    ("kl_div", lambda f, x: f.kl_div(x, [0.0])),
    ("huber_loss", lambda f, x: f.huber_loss(x, np.zeros((2, 3)))),
    ("multi_margin_loss", lambda f, x: f.multi_margin_loss(x, [0, 1])),
    ("multilabel_margin_loss", lambda f, x: f.multilabel_margin_loss(x, [[0, -1, 0]] * 2)),
    ("margin_ranking_loss", lambda f, x: f.margin_ranking_loss(x, x, [1.0, -1.0])),
    ("hinge_embedding_loss", lambda f, x: f.hinge_embedding_loss(x, 1.0)),
    ("ctc_loss", lambda f, x: f.ctc_loss(x.reshape(2, 1, 3), [[1]], [2], [1])),
    ("one_hot", lambda f, x: f.one_hot([0, 1])),
])
def test_a_list_as_target_is_a_clear_type_error(name, call):
    with pytest.raises(TypeError, match=rf"^{name}: \w+ must be a Tensor, got \w+; wrap it "
                                        r"with gradflow\.tensor\(\.\.\.\)$"):
        call(gf.nn.functional, gf.tensor(data(2, 3)))


def test_cross_entropy_names_probabilities_for_a_float_target_of_another_shape():
    with pytest.raises(TypeError, match=r"cross_entropy: expected target of class indices .*"
                                        r"for class probabilities, pass a floating target of "
                                        r"the input's shape \(2, 3\)"):
        gf.nn.functional.cross_entropy(gf.ones(2, 3), gf.tensor([0.0, 1.0]))


# -- finite differences (float64) -----------------------------------------------------------------
GRADCHECK = {
    "softplus": (lambda L, a: F(L).softplus(a, 2.0, 1.5), [(2, 3)]),
    "softsign": (lambda L, a: F(L).softsign(a), [(2, 3)]),
    "celu": (lambda L, a: F(L).celu(a, 0.5), [(2, 3)]),
    "selu": (lambda L, a: F(L).selu(a), [(2, 3)]),
    "silu": (lambda L, a: F(L).silu(a), [(2, 3)]),
    "mish": (lambda L, a: F(L).mish(a), [(2, 3)]),
    "hardtanh": (lambda L, a: F(L).hardtanh(a, -0.5, 0.8), [(2, 3)]),
    "relu6": (lambda L, a: F(L).relu6(a), [WIDE]),
    "hardsigmoid": (lambda L, a: F(L).hardsigmoid(a), [WIDE]),
    "hardswish": (lambda L, a: F(L).hardswish(a), [WIDE]),
    "hardshrink": (lambda L, a: F(L).hardshrink(a), [(2, 3)]),
    "softshrink": (lambda L, a: F(L).softshrink(a), [(2, 3)]),
    "tanhshrink": (lambda L, a: F(L).tanhshrink(a), [(2, 3)]),
    "logsigmoid": (lambda L, a: F(L).logsigmoid(a), [(2, 3)]),
    "threshold": (lambda L, a: F(L).threshold(a, 0.4, -2.0), [(2, 3)]),
    "glu": (lambda L, a: F(L).glu(a, 0), [(4, 3)]),
    "prelu": (lambda L, a, w: F(L).prelu(a, w), [(2, 3, 2), data(3, seed=5)]),
    "rrelu": (lambda L, a: F(L).rrelu(a), [(2, 3)]),
    "softmin": (lambda L, a: F(L).softmin(a, 1), [(2, 3)]),
    "softmax_method": (lambda L, a: a.softmax(0), [(2, 3)]),
    "ce_probs": (lambda L, x, p: F(L).cross_entropy(x, p, L.tensor(W3), label_smoothing=0.2),
                 [(4, 3), probs(4, 3, seed=1)]),
    "kl_div": (lambda L, x, t: F(L).kl_div(x, t, reduction="batchmean"),
               [(2, 3), data(2, 3, kind="pos", seed=1)]),
    "huber": (lambda L, x, y, w: F(L).huber_loss(x, y, delta=0.5, weight=w),
              [(2, 3), data(2, 3, seed=1), data(2, 3, kind="pos", seed=2)]),
    "smooth_l1": (lambda L, x, y: F(L).smooth_l1_loss(x, y, beta=0.5),
                  [(2, 3), data(2, 3, seed=1)]),
    "soft_margin": (lambda L, x: F(L).soft_margin_loss(x, L.tensor(signs(2, 3))), [(2, 3)]),
    "multilabel_soft_margin": (lambda L, x: F(L).multilabel_soft_margin_loss(
        x, L.tensor((data(2, 3, seed=1) > 0) * 1.0)), [(2, 3)]),
    "multilabel_margin": (lambda L, x: F(L).multilabel_margin_loss(x, L.tensor(ML_TARGET)),
                          [(3, 5)]),
    "multi_margin": (lambda L, x: F(L).multi_margin_loss(x, L.tensor(classes(4, n=3)), p=2),
                     [(4, 3)]),
    "margin_ranking": (lambda L, a, b: F(L).margin_ranking_loss(a, b, L.tensor(signs(5))),
                       [(5,), data(5, seed=1)]),
    "hinge_embedding": (lambda L, x: F(L).hinge_embedding_loss(x, L.tensor(signs(5))), [(5,)]),
    "cosine_embedding": (lambda L, a, b: F(L).cosine_embedding_loss(a, b, L.tensor(signs(3))),
                         [(3, 4), data(3, 4, seed=1)]),
    "triplet": (lambda L, a, p, n: F(L).triplet_margin_loss(a, p, n, swap=True),
                [(3, 2), data(3, 2, seed=1), data(3, 2, seed=2)]),
    "triplet_distance": (lambda L, a, p, n: F(L).triplet_margin_with_distance_loss(a, p, n),
                         [(3, 2), data(3, 2, seed=1), data(3, 2, seed=2)]),
    "poisson": (lambda L, x, t: F(L).poisson_nll_loss(x, t, full=True),
                [(2, 3), data(2, 3, kind="pos") * 3]),
    "gaussian": (lambda L, x, y, v: F(L).gaussian_nll_loss(x, y, v),
                 [(2, 3), data(2, 3, seed=1), data(2, 3, kind="pos", seed=2)]),
    "ctc": (lambda L, x: F(L).ctc_loss(lp(L, x), L.tensor([[1, 2], [2, 0]]), [4, 3], [2, 1]),
            [(4, 2, 3)]),
}


@pytest.mark.parametrize("name", GRADCHECK)
def test_gradcheck(name):
    fn, arrays = GRADCHECK[name]
    check_gradcheck(fn, *arrays, second_order=name != "ctc")


# -- the CuPy path ---------------------------------------------------------------------------------
def _f():
    return gf.nn.functional


def _on(x, values, **kwargs):
    return gf.tensor(values, device=x.device, **kwargs)


CUPY = {
    "softplus": lambda x, i: _f().softplus(x, 2.0, 1.0), "softsign": lambda x, i: _f().softsign(x),
    "celu": lambda x, i: _f().celu(x, 0.5), "selu": lambda x, i: _f().selu(x),
    "silu": lambda x, i: _f().silu(x), "mish": lambda x, i: _f().mish(x),
    "hardtanh": lambda x, i: _f().hardtanh(x, -0.6, 0.9), "relu6": lambda x, i: _f().relu6(x * 3),
    "hardsigmoid": lambda x, i: _f().hardsigmoid(x * 2),
    "hardswish": lambda x, i: _f().hardswish(x * 2), "hardshrink": lambda x, i: _f().hardshrink(x),
    "softshrink": lambda x, i: _f().softshrink(x, 0.3),
    "tanhshrink": lambda x, i: _f().tanhshrink(x), "logsigmoid": lambda x, i: _f().logsigmoid(x),
    "softmin": lambda x, i: _f().softmin(x, 1), "glu": lambda x, i: _f().glu(x, 0),
    "prelu": lambda x, i: _f().prelu(x, _on(x, [0.1, 0.2, 0.3])),
    "rrelu_eval": lambda x, i: _f().rrelu(x), "threshold": lambda x, i: _f().threshold(x, 0.3, 5.0),
    "relu6_inplace": lambda x, i: _f().relu6(x * 2, inplace=True),
    "gelu_tanh": lambda x, i: _f().gelu(x, approximate="tanh"),
    "celu_": lambda x, i: _f().celu_(x * 1.0, 0.5),
    "softmax_dtype": lambda x, i: x.softmax(1, dtype=gf.float64),
    "log_softmax_dtype": lambda x, i: gf.log_softmax(x, 0, dtype=gf.float64),
    "softmax2d": lambda x, i: gf.nn.Softmax2d()(x.reshape(1, 2, 3, 1)),
    "ce_probs": lambda x, i: _f().cross_entropy(x, x.detach().softmax(0).t().t(),
                                                label_smoothing=0.1),
    # NOTE: a target other than the input's own softmax: KL(p || p) is rounding noise
    "kl_div": lambda x, i: _f().kl_div(x.log_softmax(1), (2 * x.detach()).softmax(1),
                                       reduction="batchmean"),
    "huber": lambda x, i: _f().huber_loss(x, x.detach() * 0.1, delta=0.5),
    "smooth_l1": lambda x, i: _f().smooth_l1_loss(x, x.detach().flip(1), beta=0.7),
    "soft_margin": lambda x, i: _f().soft_margin_loss(x, (i > 0).float() * 2 - 1),
    "multilabel_soft_margin": lambda x, i: _f().multilabel_soft_margin_loss(x, (i > 0).float()),
    "multilabel_margin": lambda x, i: _f().multilabel_margin_loss(x, _on(x, [[2, -1, 0],
                                                                             [0, 1, -1]])),
    "multi_margin": lambda x, i: _f().multi_margin_loss(x, _on(x, [2, 0]), p=2),
    "margin_ranking": lambda x, i: _f().margin_ranking_loss(x, x.detach().flip(1),
                                                            (i > 0).float() * 2 - 1, 0.3),
    "hinge_embedding": lambda x, i: _f().hinge_embedding_loss(x, (i > 0).float() * 2 - 1),
    "cosine_embedding": lambda x, i: _f().cosine_embedding_loss(x, x.detach().flip(1),
                                                                _on(x, [1.0, -1.0])),
    "triplet": lambda x, i: _f().triplet_margin_loss(x, x.detach().flip(0), x.detach() * 2,
                                                     swap=True),
    "poisson": lambda x, i: _f().poisson_nll_loss(x, x.detach().abs(), full=True),
    "gaussian": lambda x, i: _f().gaussian_nll_loss(x, x.detach() * 0.5, x.detach().abs()),
    "ctc": lambda x, i: _f().ctc_loss(x.reshape(2, 1, 3).log_softmax(2), _on(x, [[1]]), [2],
                                      [1]),
}


@pytest.mark.parametrize("name", CUPY)
def test_the_cupy_path(fake_cuda, name):
    check_cupy_path(CUPY[name], X_CUPY, I_CUPY, rtol=1e-5)


def test_rrelu_training_draws_on_the_cupy_path(fake_cuda):
    x = gf.tensor(-data(4, 5, kind="pos"), device="cuda", requires_grad=True)
    y = gf.nn.functional.rrelu(x, 0.2, 0.3, training=True)
    y.sum().backward()
    assert y.device.type == "cuda" and x.grad.device.type == "cuda"
    slopes = np.array(y.tolist()) / np.array(x.tolist())
    assert slopes.min() >= 0.2 and slopes.max() <= 0.3, slopes
    np.testing.assert_allclose(np.array(x.grad.tolist()), slopes, rtol=1e-12)
