"""gradflow.nn.utils and the newer nn.init fills against PyTorch: parameters_to_vector and
back, weight_norm and spectral_norm (after copying torch's parameters and power-iteration
vectors: outputs, gradients, updated vectors, state_dict keys, removal), pruning (masks,
outputs, iterative pruning, remove, is_pruned), and trunc_normal_/eye_/dirac_/sparse_."""
import numpy as np
import pytest
from helpers import require_torch

import gradflow as gf
from gradflow import nn
from gradflow.nn.utils import prune

torch = require_torch()
pytestmark = pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
tnn = torch.nn
import torch.nn.utils.prune as tprune  # noqa: E402
from torch.nn.utils import parametrizations as tparam  # noqa: E402


def copy_params(src, dst):
    """torch module `src`'s parameters and buffers into gradflow module `dst`, by name."""
    state = {k: gf.tensor(v.detach().numpy().copy()) for k, v in src.state_dict().items()}
    result = dst.load_state_dict(state)
    assert repr(result) == "<All keys matched successfully>", result


def close(g, t, **kw):
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), **kw)


def linear_pair(i=4, o=3, seed=0):
    torch.manual_seed(seed)
    t = tnn.Linear(i, o).double()
    g = nn.Linear(i, o).double()
    copy_params(t, g)
    return g, t


# -- parameters_to_vector / vector_to_parameters --------------------------------------------
def test_parameters_to_vector_and_back():
    g, t = linear_pair()
    vg = nn.utils.parameters_to_vector(g.parameters())
    vt = tnn.utils.parameters_to_vector(t.parameters())
    close(vg, vt)
    assert vg.requires_grad
    vg.sum().backward()
    np.testing.assert_array_equal(g.weight.grad.numpy(), np.ones((3, 4)))
    new = np.arange(vg.numel(), dtype=np.float64)
    nn.utils.vector_to_parameters(gf.tensor(new), g.parameters())
    tnn.utils.vector_to_parameters(torch.tensor(new), t.parameters())
    close(g.weight, t.weight)
    close(g.bias, t.bias)


def test_vector_to_parameters_checks_its_arguments():
    g, _ = linear_pair()
    with pytest.raises(TypeError, match="vector_to_parameters: expected a Tensor"):
        nn.utils.vector_to_parameters(np.zeros(15), g.parameters())
    with pytest.raises(RuntimeError, match="vector_to_parameters: vec of shape"):
        nn.utils.vector_to_parameters(gf.zeros(14, dtype=gf.float64), g.parameters())


def test_clip_grad_exists_and_matches_torch():
    g, t = linear_pair()
    x = np.random.default_rng(0).standard_normal((5, 4))
    (g(gf.tensor(x)) ** 2).sum().backward()
    (t(torch.tensor(x)) ** 2).sum().backward()
    close(nn.utils.get_total_norm([p.grad for p in g.parameters()], 3.0),
          tnn.utils.get_total_norm([p.grad for p in t.parameters()], 3.0))
    close(nn.utils.clip_grad_norm_(g.parameters(), 0.5, foreach=None),
          tnn.utils.clip_grad_norm_(t.parameters(), 0.5))
    close(g.weight.grad, t.weight.grad)
    nn.utils.clip_grads_with_norm_(g.parameters(), 0.1, gf.tensor(2.0, dtype=gf.float64))
    tnn.utils.clip_grads_with_norm_(t.parameters(), 0.1, torch.tensor(2.0, dtype=torch.float64))
    close(g.bias.grad, t.bias.grad)
    nn.utils.clip_grad_value_(g.parameters(), 0.01, foreach=None)
    tnn.utils.clip_grad_value_(t.parameters(), 0.01)
    close(g.weight.grad, t.weight.grad)


# -- weight_norm ----------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, None, -1])
def test_weight_norm_matches_torch(dim):
    torch.manual_seed(0)
    t = tnn.utils.weight_norm(tnn.Conv2d(2, 3, 3).double(), dim=dim)
    g = nn.utils.weight_norm(nn.Conv2d(2, 3, 3).double(), dim=dim)
    assert list(g.state_dict()) == list(t.state_dict()) == ["bias", "weight_g", "weight_v"]
    copy_params(t, g)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5))
    yg, yt = g(gf.tensor(x)), t(torch.tensor(x))
    close(yg, yt, atol=1e-12)
    weights = np.random.default_rng(2).standard_normal(tuple(yt.shape))
    (yg * gf.tensor(weights)).sum().backward()
    (yt * torch.tensor(weights)).sum().backward()
    close(g.weight_g.grad, t.weight_g.grad, atol=1e-10)
    close(g.weight_v.grad, t.weight_v.grad, atol=1e-10)


def test_weight_norm_init_and_remove():
    g, t = linear_pair()
    before = g.weight.detach().numpy().copy()
    nn.utils.weight_norm(g)
    tnn.utils.weight_norm(t)
    close(g.weight_g, t.weight_g)
    np.testing.assert_allclose(g.weight.detach().numpy(), before, rtol=1e-12)
    with pytest.raises(RuntimeError, match="two weight_norm hooks"):
        nn.utils.weight_norm(g)
    nn.utils.remove_weight_norm(g)
    assert [n for n, _ in g.named_parameters()] == ["bias", "weight"]
    np.testing.assert_allclose(g.weight.detach().numpy(), before, rtol=1e-12)
    with pytest.raises(ValueError, match="remove_weight_norm: weight_norm of 'weight' not found"):
        nn.utils.remove_weight_norm(g)


# -- spectral_norm --------------------------------------------------------------------------
@pytest.mark.parametrize("iterations", [1, 3])
def test_spectral_norm_matches_torch(iterations):
    torch.manual_seed(0)
    t = tnn.utils.spectral_norm(tnn.Linear(5, 4).double(), n_power_iterations=iterations)
    g = nn.utils.spectral_norm(nn.Linear(5, 4).double(), n_power_iterations=iterations)
    assert list(g.state_dict()) == list(t.state_dict()) == ["bias", "weight_orig", "weight_u",
                                                            "weight_v"]
    copy_params(t, g)
    x = np.random.default_rng(1).standard_normal((3, 5))
    for _ in range(2):  # training: each call iterates and updates u and v
        yg, yt = g(gf.tensor(x)), t(torch.tensor(x))
        close(yg, yt, atol=1e-12)
        close(g.weight_u, t.weight_u, atol=1e-12)
        close(g.weight_v, t.weight_v, atol=1e-12)
    yg.sum().backward()
    yt.sum().backward()
    close(g.weight_orig.grad, t.weight_orig.grad, atol=1e-10)
    g.eval()
    t.eval()
    u = g.weight_u.detach().numpy().copy()
    close(g(gf.tensor(x)), t(torch.tensor(x)), atol=1e-12)
    np.testing.assert_array_equal(g.weight_u.detach().numpy(), u)  # eval: no iteration


def test_spectral_norm_of_a_conv_weight_and_remove():
    torch.manual_seed(0)
    t = tnn.utils.spectral_norm(tnn.Conv2d(2, 3, 3).double())
    g = nn.utils.spectral_norm(nn.Conv2d(2, 3, 3).double())
    copy_params(t, g)
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4))
    close(g(gf.tensor(x)), t(torch.tensor(x)), atol=1e-12)
    nn.utils.remove_spectral_norm(g)
    tnn.utils.remove_spectral_norm(t)
    assert [n for n, _ in g.named_parameters()] == ["bias", "weight"]
    close(g.weight, t.weight, atol=1e-12)
    with pytest.raises(ValueError, match="n_power_iterations"):
        nn.utils.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)


def test_spectral_norm_bounds_the_largest_singular_value():
    gf.manual_seed(0)
    m = nn.utils.spectral_norm(nn.Linear(6, 5).double(), n_power_iterations=30)
    m(gf.zeros(1, 6, dtype=gf.float64))
    s = np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)
    np.testing.assert_allclose(s[0], 1.0, rtol=1e-6)


# -- pruning --------------------------------------------------------------------------------
@pytest.mark.parametrize("amount", [0.3, 5, 0, 1.0])
def test_l1_unstructured_matches_torch(amount):
    g, t = linear_pair(5, 4)
    prune.l1_unstructured(g, "weight", amount)
    tprune.l1_unstructured(t, "weight", amount)
    assert list(g.state_dict()) == list(t.state_dict()) == ["bias", "weight_orig",
                                                            "weight_mask"]
    close(g.weight_mask, t.weight_mask)
    close(g.weight, t.weight)
    x = np.random.default_rng(0).standard_normal((2, 5))
    yg, yt = g(gf.tensor(x)), t(torch.tensor(x))
    close(yg, yt, atol=1e-12)
    yg.sum().backward()
    yt.sum().backward()
    close(g.weight_orig.grad, t.weight_orig.grad, atol=1e-12)
    assert prune.is_pruned(g) and not prune.is_pruned(nn.Linear(2, 2))


def test_iterative_pruning_prunes_among_the_kept_entries():
    g, t = linear_pair(6, 5)
    for amount in (0.4, 3, 0.5):
        prune.l1_unstructured(g, "weight", amount)
        tprune.l1_unstructured(t, "weight", amount)
        close(g.weight_mask, t.weight_mask)
    x = np.random.default_rng(0).standard_normal((2, 6))
    close(g(gf.tensor(x)), t(torch.tensor(x)), atol=1e-12)


def test_importance_scores():
    g, t = linear_pair(5, 4)
    scores = np.random.default_rng(3).standard_normal((4, 5))
    prune.l1_unstructured(g, "weight", 7, importance_scores=gf.tensor(scores))
    tprune.l1_unstructured(t, "weight", 7, importance_scores=torch.tensor(scores))
    close(g.weight_mask, t.weight_mask)


def test_random_unstructured_and_remove():
    gf.manual_seed(0)
    g, _ = linear_pair(10, 8)
    orig = g.weight.detach().numpy().copy()
    prune.random_unstructured(g, "weight", amount=0.25)
    mask = g.weight_mask.numpy()
    assert int((mask == 0).sum()) == 20
    np.testing.assert_array_equal(g.weight.detach().numpy(), orig * mask)
    gf.manual_seed(0)
    h, _ = linear_pair(10, 8)
    prune.random_unstructured(h, "weight", amount=0.25)
    np.testing.assert_array_equal(h.weight_mask.numpy(), mask)  # the seed decides
    param = g.weight_orig
    prune.remove(g, "weight")
    assert g.weight is param and list(g.state_dict()) == ["bias", "weight"]
    np.testing.assert_array_equal(g.weight.detach().numpy(), orig * mask)
    assert not prune.is_pruned(g)
    with pytest.raises(ValueError, match="has to be pruned before"):
        prune.remove(g, "weight")


def test_prune_checks_amount():
    g, t = linear_pair(3, 2)
    for bad, err in ((1.5, ValueError), (-1, ValueError), (7, ValueError), ("a", TypeError)):
        with pytest.raises(err):
            tprune.l1_unstructured(t, "weight", bad)
        with pytest.raises(err, match="l1_unstructured: amount"):
            prune.l1_unstructured(g, "weight", bad)


@pytest.mark.parametrize("n, dim, amount", [(2, 0, 0.5), (1, 1, 2), (float("inf"), -1, 1),
                                           (2, 0, 0)])
def test_ln_structured_matches_torch(n, dim, amount):
    torch.manual_seed(0)
    t = tnn.Conv2d(3, 4, 3).double()
    g = nn.Conv2d(3, 4, 3).double()
    copy_params(t, g)
    prune.ln_structured(g, "weight", amount, n, dim)
    tprune.ln_structured(t, "weight", amount, n, dim)
    close(g.weight_mask, t.weight_mask)
    prune.ln_structured(g, "weight", 1, n, dim)  # again: among the slices left
    tprune.ln_structured(t, "weight", 1, n, dim)
    close(g.weight_mask, t.weight_mask)
    x = np.random.default_rng(0).standard_normal((1, 3, 5, 5))
    close(g(gf.tensor(x)), t(torch.tensor(x)), atol=1e-12)


def test_random_structured_prunes_whole_slices():
    gf.manual_seed(0)
    g, _ = linear_pair(6, 5)
    prune.random_structured(g, "weight", amount=2, dim=0)
    rows = g.weight_mask.numpy().sum(1)
    assert sorted(rows.tolist()) == [0, 0, 6, 6, 6]


def test_global_unstructured_and_custom_from_mask_match_torch():
    torch.manual_seed(0)
    ts = [tnn.Linear(4, 3).double(), tnn.Linear(3, 2).double()]
    gs = [nn.Linear(4, 3).double(), nn.Linear(3, 2).double()]
    for t, g in zip(ts, gs):
        copy_params(t, g)
    prune.global_unstructured([(gs[0], "weight"), (gs[1], "weight")],
                              pruning_method=prune.L1Unstructured, amount=0.4)
    tprune.global_unstructured([(ts[0], "weight"), (ts[1], "weight")],
                               pruning_method=tprune.L1Unstructured, amount=0.4)
    for t, g in zip(ts, gs):
        close(g.weight_mask, t.weight_mask)
    mask = (np.arange(3) % 2).astype(np.float64)
    prune.custom_from_mask(gs[0], "bias", gf.tensor(mask))
    tprune.custom_from_mask(ts[0], "bias", torch.tensor(mask))
    close(gs[0].bias, ts[0].bias)
    with pytest.raises(ValueError):
        tprune.ln_structured(ts[1], "bias", 1, 2, 0)
    with pytest.raises(ValueError, match="ln_structured: structured pruning"):
        prune.ln_structured(gs[1], "bias", 1, 2, 0)
    with pytest.raises(TypeError, match="global_unstructured"):
        prune.global_unstructured([(gs[0], "weight")], prune.LnStructured, amount=1, n=2)


# -- init -----------------------------------------------------------------------------------
def test_trunc_normal_statistics():
    gf.manual_seed(0)
    w = nn.init.trunc_normal_(gf.empty(200, 200), mean=0.5, std=2.0, a=-1.0, b=3.0).numpy()
    assert w.min() >= -1.0 and w.max() <= 3.0
    tw = tnn.init.trunc_normal_(torch.empty(200, 200), mean=0.5, std=2.0, a=-1.0, b=3.0)
    np.testing.assert_allclose(w.mean(), tw.mean().item(), atol=0.03)
    np.testing.assert_allclose(w.std(), tw.std().item(), atol=0.03)
    with pytest.raises(ValueError, match="trunc_normal_"):
        nn.init.trunc_normal_(gf.empty(2), a=1.0, b=0.0)


def test_eye_and_dirac_match_torch():
    close(nn.init.eye_(gf.empty(3, 5)), tnn.init.eye_(torch.empty(3, 5)))
    for shape, groups in (((4, 2, 3), 1), ((6, 3, 3, 3), 2), ((2, 4, 1, 3, 2), 1),
                          ((4, 2, 2, 2), 4)):
        close(nn.init.dirac_(gf.empty(*shape), groups),
              tnn.init.dirac_(torch.empty(*shape), groups))
    for bad in (lambda L: L.nn.init.eye_(L.empty(2, 2, 2)),
                lambda L: L.nn.init.dirac_(L.empty(2, 2)),
                lambda L: L.nn.init.dirac_(L.empty(3, 2, 2), groups=2)):
        with pytest.raises(ValueError):
            bad(torch)
        with pytest.raises(ValueError, match="eye_|dirac_"):
            bad(gf)


def test_sparse_zeros_per_column():
    gf.manual_seed(0)
    w = nn.init.sparse_(gf.empty(10, 7), sparsity=0.25, std=0.5).numpy()
    np.testing.assert_array_equal((w == 0).sum(0), np.full(7, 3))
    assert 0.2 < w[w != 0].std() < 0.8
    with pytest.raises(ValueError, match="sparse_"):
        nn.init.sparse_(gf.empty(3), 0.5)


def test_existing_fills_are_still_there():
    t = nn.init.constant_(gf.empty(2, 3), 1.5)
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), 1.5))
    u = nn.init.uniform_(gf.empty(1000), -2.0, -1.0).numpy()
    assert u.min() >= -2.0 and u.max() < -1.0
    n = nn.init.normal_(gf.empty(4000), 3.0, 0.5).numpy()
    np.testing.assert_allclose([n.mean(), n.std()], [3.0, 0.5], atol=0.05)
    q = nn.init.orthogonal_(gf.empty(4, 6)).numpy()
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)


# -- parametrizations -----------------------------------------------------------------------
def test_parametrized_weight_norm_matches_torch():
    torch.manual_seed(0)
    t = tparam.weight_norm(tnn.Linear(4, 3).double(), dim=0)
    g = nn.utils.parametrizations.weight_norm(nn.Linear(4, 3).double(), dim=0)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict()) == [
        "bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    copy_params(t, g)
    close(g.weight, t.weight, atol=1e-12)
    x = np.random.default_rng(1).standard_normal((2, 4))
    yg, yt = g(gf.tensor(x)), t(torch.tensor(x))
    close(yg, yt, atol=1e-12)
    yg.sum().backward()
    yt.sum().backward()
    close(g.parametrizations.weight.original0.grad, t.parametrizations.weight.original0.grad,
          atol=1e-10)
    assert nn.utils.parametrize.is_parametrized(g, "weight")
    nn.utils.parametrize.remove_parametrizations(g, "weight")
    tnn.utils.parametrize.remove_parametrizations(t, "weight")
    assert repr(g) == repr(t) and list(g.state_dict()) == list(t.state_dict())
    assert type(g) is nn.Linear and not nn.utils.parametrize.is_parametrized(g)
    close(g.weight, t.weight, atol=1e-12)


def test_parametrized_spectral_norm_matches_torch():
    torch.manual_seed(0)
    t = tparam.spectral_norm(tnn.Conv2d(2, 3, 3).double())
    g = nn.utils.parametrizations.spectral_norm(nn.Conv2d(2, 3, 3).double())
    assert list(g.state_dict()) == list(t.state_dict())
    copy_params(t, g)
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4))
    for _ in range(2):
        close(g(gf.tensor(x)), t(torch.tensor(x)), atol=1e-12)
        close(g.parametrizations.weight[0]._u, t.parametrizations.weight[0]._u, atol=1e-12)
    gf.manual_seed(0)
    s = nn.utils.parametrizations.spectral_norm(nn.Linear(5, 4).double())
    sigma = np.linalg.svd(s.weight.detach().numpy(), compute_uv=False)[0]
    np.testing.assert_allclose(sigma, 1.0, rtol=1e-4)  # 15 iterations at creation


def test_register_parametrization_of_a_custom_module():
    class Symmetric(nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(-1, -2)

    m = nn.Linear(3, 3)
    nn.utils.parametrize.register_parametrization(m, "weight", Symmetric())
    w = m.weight.detach().numpy()
    np.testing.assert_array_equal(w, w.T)
    assert type(m).__name__ == "ParametrizedLinear"
    with pytest.raises(ValueError, match="register_parametrization"):
        nn.utils.parametrize.register_parametrization(m, "nothing", Symmetric())


# -- the CuPy path --------------------------------------------------------------------------
def test_reparametrizations_run_on_the_cupy_path(fake_cuda):
    """weight_norm, spectral_norm and pruning on a model on the (fake) GPU: the CPU's values
    and gradients."""
    x = np.random.default_rng(0).standard_normal((2, 5))
    results = []
    for device in ("cpu", "cuda"):
        gf.manual_seed(0)
        a = nn.utils.weight_norm(nn.Linear(5, 4).double())
        b = nn.utils.parametrizations.spectral_norm(nn.Linear(4, 4).double())
        c = nn.Linear(4, 3).double()
        if device == "cuda":
            for m in (a, b, c):
                m.to("cuda")
        prune.l1_unstructured(c, "weight", 0.5)
        prune.ln_structured(c, "weight", 1, 1, 0)
        out = c(b(a(gf.tensor(x, device=device))))
        out.sum().backward()
        assert out.device.type == device and c.weight_mask.device.type == device
        vec = nn.utils.parameters_to_vector(p.grad for p in a.parameters())
        results.append((out.detach().cpu().numpy(), vec.cpu().numpy(),
                        c.weight_mask.cpu().numpy()))
    for cpu, cuda in zip(*results):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-10)


def test_init_fills_run_on_the_cupy_path(fake_cuda):
    # NOTE: trunc_normal_ needs cupyx.scipy.special.erfinv, which the fake CuPy lacks
    gf.manual_seed(1)
    w = nn.init.sparse_(gf.empty(6, 5, device="cuda"), 0.5)
    assert w.device.type == "cuda"
    np.testing.assert_array_equal((w.cpu().numpy() == 0).sum(0), np.full(5, 3))
    np.testing.assert_array_equal(nn.init.eye_(gf.empty(3, 5, device="cuda")).cpu().numpy(),
                                  np.eye(3, 5))
    np.testing.assert_array_equal(
        nn.init.dirac_(gf.empty(2, 2, 3, device="cuda")).cpu().numpy(),
        nn.init.dirac_(gf.empty(2, 2, 3)).numpy())
