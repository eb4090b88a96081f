"""nn.functional and nn modules against PyTorch and finite differences; Module mechanics
(registration, state_dict, train/eval) and the initialisers."""
import numpy as np
import pytest
from helpers import check_gradcheck, check_op, data, require_torch, to_numpy

import gradflow as gf
import gradflow.nn as nn


def F(L):
    return L.nn.functional


def targets(*shape, classes=4, seed=0):
    return np.random.default_rng(seed).integers(0, classes, size=shape)


W4 = np.array([0.5, 1.0, 2.0, 0.25])
CASES = [
    ("linear", lambda L, x, w, b: F(L).linear(x, w, b), [data((3, 4)), data((5, 4), seed=1),
                                                          data((5,), seed=2)]),
    ("linear_3d", lambda L, x, w: F(L).linear(x, w), [data((2, 3, 4)), data((2, 4), seed=1)]),
    ("linear_1d", lambda L, x, w, b: F(L).linear(x, w, b), [data((4,)), data((3, 4), seed=1),
                                                             data((3,), seed=2)]),
    ("leaky_relu", lambda L, x: F(L).leaky_relu(x, 0.2), [data((3, 4))]),
    ("elu", lambda L, x: F(L).elu(x, 0.7), [data((3, 4))]),
    ("gelu", lambda L, x: F(L).gelu(x), [data((3, 4))]),
    ("gelu_tanh", lambda L, x: F(L).gelu(x, approximate="tanh"), [data((3, 4))]),
    ("softmax", lambda L, x: F(L).softmax(x, 1), [data((3, 4))]),
    ("log_softmax", lambda L, x: F(L).log_softmax(x, -1), [data((2, 3, 4))]),
    ("batch_norm_train", lambda L, x, w, b: F(L).batch_norm(x, None, None, w, b, True),
     [data((4, 3, 2, 2)), data((3,), seed=1), data((3,), seed=2)]),
    ("batch_norm_eval", lambda L, x: F(L).batch_norm(
        x, L.tensor([0.1, -0.2, 0.3], dtype=L.float64), L.tensor([1.5, 0.5, 2.0],
                                                                 dtype=L.float64)),
     [data((2, 3, 2))]),
    ("layer_norm", lambda L, x, w, b: F(L).layer_norm(x, (4,), w, b),
     [data((3, 4)), data((4,), seed=1), data((4,), seed=2)]),
    ("group_norm", lambda L, x, w, b: F(L).group_norm(x, 2, w, b),
     [data((2, 4, 3)), data((4,), seed=1), data((4,), seed=2)]),
    ("instance_norm", lambda L, x: F(L).instance_norm(x), [data((2, 3, 2, 3))]),
    ("local_response_norm", lambda L, x: F(L).local_response_norm(x, 3, 0.1, 0.75, 2.0),
     [data((2, 5, 2, 2))]),
    ("local_response_norm_even", lambda L, x: F(L).local_response_norm(x, 2),
     [data((1, 3, 2))]),
    ("cross_entropy", lambda L, x, t: F(L).cross_entropy(x, t), [data((5, 4)), targets(5)]),
    ("cross_entropy_weight_ignore", lambda L, x, t: F(L).cross_entropy(
        x, t, weight=L.tensor(W4), ignore_index=2), [data((6, 4)), targets(6, seed=3)]),
    ("cross_entropy_smoothing", lambda L, x, t: F(L).cross_entropy(
        x, t, label_smoothing=0.2), [data((5, 4)), targets(5)]),
    ("cross_entropy_smoothing_weight", lambda L, x, t: F(L).cross_entropy(
        x, t, weight=L.tensor(W4), label_smoothing=0.1, ignore_index=1),
     [data((6, 4)), targets(6, seed=4)]),
    ("cross_entropy_sum_2d", lambda L, x, t: F(L).cross_entropy(x, t, reduction="sum"),
     [data((2, 4, 3)), targets(2, 3)]),
    ("cross_entropy_none", lambda L, x, t: F(L).cross_entropy(
        x, t, reduction="none", label_smoothing=0.1), [data((3, 4)), targets(3)]),
    ("nll_loss", lambda L, x, t: F(L).nll_loss(x, t, reduction="sum"),
     [data((4, 4)), targets(4)]),
    ("mse_loss", lambda L, x, y: F(L).mse_loss(x, y), [data((3, 4)), data((3, 4), seed=1)]),
    ("l1_loss", lambda L, x, y: F(L).l1_loss(x, y, reduction="sum"),
     [data((3, 4)), data((3, 4), seed=1)]),
    ("bce", lambda L, p, y: F(L).binary_cross_entropy(L.sigmoid(p), y),
     [data((3, 4)), (data((3, 4), seed=1) > 0).astype(np.float64)]),
    ("bce_logits", lambda L, x, y: F(L).binary_cross_entropy_with_logits(
        x, y, pos_weight=L.tensor([1.0, 2.0, 0.5, 3.0], dtype=L.float64)),
     [data((3, 4)) * 3, data((3, 4), kind="pos", seed=1) / 2]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=IDS)
def test_functional_matches_torch(name, fn, inputs, device):
    check_op(fn, *inputs, device=device)


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=IDS)
def test_functional_gradcheck(name, fn, inputs):
    check_gradcheck(fn, *inputs)


def test_linear_second_derivatives_and_weight_gradient_layout():
    """Linear's backward is built from ops, so it differentiates again; its weight gradient
    comes out in the weight's own (contiguous) layout, not as a transposed view."""
    x = gf.tensor(data((2, 3, 4)), requires_grad=True)
    w = gf.tensor(data((5, 4), seed=1), requires_grad=True)
    gf.autograd.gradgradcheck(lambda a, b: F(gf).linear(a, b), (x, w))
    F(gf).linear(x, w).sum().backward()
    assert w.grad.is_contiguous() and x.grad.is_contiguous()
    lin = nn.Linear(6, 7)
    lin(gf.randn(3, 6)).sum().backward()
    assert lin.weight.grad.is_contiguous(), "weight gradient is a strided view"


def test_losses_are_stable_for_huge_logits():
    torch = require_torch()
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]])
    t = np.array([1, 2])
    got = gf.nn.functional.cross_entropy(gf.tensor(x), gf.tensor(t))
    want = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t))
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-7)
    y = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    got = gf.nn.functional.binary_cross_entropy_with_logits(gf.tensor(x), gf.tensor(y))
    want = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(x),
                                                                torch.tensor(y))
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-7)


def test_one_hot():
    out = gf.nn.functional.one_hot(gf.tensor([0, 2, 1]), 4)
    assert out.dtype == gf.int64
    np.testing.assert_array_equal(out.numpy(), np.eye(4, dtype=np.int64)[[0, 2, 1]])
    with pytest.raises(RuntimeError, match=r"one_hot: class values must be in \[0, 2\)"):
        gf.nn.functional.one_hot(gf.tensor([0, 2]), 2)


@pytest.mark.parametrize("action,error,pattern", [
    (lambda: gf.nn.functional.linear(gf.ones(2, 3), gf.ones(4, 5)), RuntimeError,
     r"linear: input has 3 features but weight expects 5"),
    (lambda: gf.nn.functional.cross_entropy(gf.ones(2, 3), gf.tensor([0, 3])), IndexError,
     r"cross_entropy: target 3 is out of bounds for 3 classes"),
    (lambda: gf.nn.functional.nll_loss(gf.ones(2, 3), gf.tensor([0, 3])), IndexError,
     r"nll_loss: target 3 is out of bounds for 3 classes"),
    (lambda: gf.nn.functional.cross_entropy(gf.ones(2, 3), gf.tensor([0.0, 1.0])), TypeError,
     "integer dtype"),
    (lambda: gf.nn.functional.cross_entropy(gf.ones(2, 3), gf.tensor([0, 1, 2])), ValueError,
     r"expected target shape \(2,\)"),
    (lambda: gf.nn.functional.mse_loss(gf.ones(2), gf.ones(3)), ValueError,
     r"mse_loss: target size \(3,\)"),
    (lambda: gf.nn.functional.dropout(gf.ones(2), 1.5), ValueError, "between 0 and 1"),
    (lambda: gf.nn.functional.batch_norm(gf.ones(1, 3), None, None, training=True), ValueError,
     "more than 1 value per channel"),
    (lambda: nn.MSELoss(reduction="avg"), ValueError, "reduction must be"),
    (lambda: nn.GroupNorm(3, 4), ValueError, "divisible"),
])
def test_bad_input_gives_clear_errors(action, error, pattern):
    with pytest.raises(error, match=pattern):
        action()


# -- modules -------------------------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6))
        self.head = nn.Linear(6, 3)
        self.blocks = nn.ModuleList([nn.Identity(), nn.Dropout(0.5)])

    def forward(self, x):
        h = self.features(x)
        for b in self.blocks:
            h = b(h)
        return self.head(h)


def test_module_registration_and_state_dict():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "features.2.weight",
                     "features.2.bias", "head.weight", "head.bias"]
    keys = list(net.state_dict())
    assert "features.2.running_mean" in keys and "features.2.num_batches_tracked" in keys
    other = Net()
    other.load_state_dict(net.state_dict())
    for (k, a), b in zip(net.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert "head" in repr(net) and "BatchNorm1d(6" in repr(net)


def test_load_state_dict_names_bad_keys():
    net = Net()
    sd = net.state_dict()
    sd["extra.weight"] = gf.zeros(1)
    del sd["head.bias"]
    sd["head.weight"] = gf.zeros(2, 2)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert '"extra.weight"' in msg and '"head.bias"' in msg and "size mismatch for head.weight" \
        in msg, msg
    sd["head.weight"] = net.head.weight.detach()
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra.weight"]


def test_train_eval_dropout_and_batchnorm():
    net = Net()
    x = gf.randn(8, 4)
    assert all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    np.testing.assert_array_equal(net(x).detach().numpy(), net(x).detach().numpy())
    drop = nn.Dropout(0.5)
    y = drop(gf.ones(1000)).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 350 < (y == 0).sum() < 650
    assert np.array_equal(drop.eval()(gf.ones(10)).numpy(), np.ones(10))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_running_stats_match_torch(momentum, device):
    torch = require_torch()
    bn, tbn = nn.BatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    bn.to(device)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1
        bn(gf.tensor(x, device=device))
        tbn(torch.tensor(x))
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(to_numpy(getattr(bn, name)),
                                   getattr(tbn, name).numpy(), rtol=1e-5, atol=1e-6)
    assert bn.num_batches_tracked.item() == 3
    bn.eval(), tbn.eval()
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(to_numpy(bn(gf.tensor(x, device=device))),
                               tbn(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_modules_match_torch_with_copied_weights():
    torch = require_torch()
    pairs = [
        (nn.Linear(5, 3), torch.nn.Linear(5, 3), (4, 5)),
        (nn.LayerNorm(5), torch.nn.LayerNorm(5), (2, 5)),
        (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), (2, 4, 3, 3)),
        (nn.InstanceNorm2d(3, affine=True), torch.nn.InstanceNorm2d(3, affine=True),
         (2, 3, 4, 4)),
        (nn.LocalResponseNorm(3), torch.nn.LocalResponseNorm(3), (2, 4, 3, 3)),
        (nn.Softmax(dim=1), torch.nn.Softmax(dim=1), (2, 5)),
        (nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1), (2, 5)),
        (nn.GELU(), torch.nn.GELU(), (3, 3)),
        (nn.ELU(), torch.nn.ELU(), (3, 3)),
        (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1), (3, 3)),
    ]
    rng = np.random.default_rng(0)
    for ours, theirs, shape in pairs:
        theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in
                                ours.state_dict().items()})
        x = rng.standard_normal(shape).astype(np.float32)
        xg, xt = gf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yg, yt = ours(xg), theirs(xt)
        np.testing.assert_allclose(yg.detach().numpy(), yt.detach().numpy(), rtol=1e-5,
                                   atol=1e-5, err_msg=repr(ours))
        yg.sum().backward(), yt.sum().backward()
        np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=repr(ours))
        assert repr(ours) == repr(theirs), (repr(ours), repr(theirs))


def test_maxout_and_scaled_tanh():
    m = nn.Maxout(4, 3, pool_size=2)
    x = gf.randn(5, 4)
    pieces = \
        m.linear(x).detach().numpy().reshape(5, 3, 2)
    np.testing.assert_allclose(m(x).detach().numpy(), pieces.max(-1), rtol=1e-6)
    y = nn.ScaledTanh()(gf.tensor([0.0, 1.0, 100.0]))
    np.testing.assert_allclose(y.numpy(), 1.7159 * np.tanh(np.array([0.0, 2 / 3, 200 / 3])),
                               rtol=1e-6)


def test_default_init_statistics():
    lin = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    w = lin.weight.detach().numpy()
    assert np.abs(w).max() <= bound and abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound
    assert np.abs(lin.bias.detach().numpy()).max() <= bound


@pytest.mark.parametrize("fn,expected_std", [
    (lambda t: nn.init.xavier_uniform_(t), np.sqrt(2 / (200 + 100))),
    (lambda t: nn.init.xavier_normal_(t, gain=2.0), 2 * np.sqrt(2 / (200 + 100))),
    (lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu"), np.sqrt(2 / 200)),
    (lambda t: nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"),
     np.sqrt(2 / 100)),
    (lambda t: nn.init.normal_(t, 0.0, 0.3), 0.3),
])
def test_initialisers_have_the_right_spread(fn, expected_std):
    t = gf.empty(100, 200)
    fn(t)
    np.testing.assert_allclose(t.numpy().std(), expected_std, rtol=0.03)


def test_init_helpers():
    assert nn.init.calculate_gain("tanh") == 5 / 3
    np.testing.assert_allclose(nn.init.calculate_gain("leaky_relu", 0.2), np.sqrt(2 / 1.04))
    q = nn.init.orthogonal_(gf.empty(3, 5))
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, np.eye(3), atol=1e-5)
    assert nn.init.constant_(gf.empty(2), 3.0).tolist() == [3.0, 3.0]
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(gf.empty(3))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2
    seq.append(nn.Sigmoid())
    assert len(list(seq.parameters())) == 4
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.Tanh()
    assert list(md) == ["a", "b"] and len(list(md.parameters())) == 2
    with pytest.raises(IndexError, match="out of range"):
        seq[7]


def test_module_to_dtype_and_zero_grad():
    net = nn.Linear(3, 2).double()
    assert net.weight.dtype == gf.float64
    net(gf.ones(1, 3, dtype=gf.float64)).sum().backward()
    assert net.weight.grad is not None
    net.zero_grad()
    assert net.weight.grad is None


def test_module_zero_grad_keeps_shared_gradients_intact():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    x = gf.ones(1, 2)
    (a(x) + b(x)).sum().backward()
    bias_grad = b.bias.grad.numpy().copy()
    a.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.bias.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(b.bias.grad.numpy(), bias_grad)
