"""gradflow.utils.checkpoint against torch.utils.checkpoint: the same gradients as without
checkpointing (inputs and the parameters used inside), the forward keeping no graph, dropout
recomputed with the same mask, torch's warnings and errors, and the CuPy path."""
import warnings

import numpy as np
import pytest
from helpers import check_gradcheck, data, require_torch, to_numpy

import gradflow as gf
from gradflow.utils.checkpoint import Checkpoint, checkpoint, checkpoint_sequential

torch = require_torch()
from torch.utils import checkpoint as th_ckpt  # noqa: E402

W1, W2 = data(4, 5), data(5, 3, seed=1)
X = data(6, 4, seed=2)


def ckpt(L):
    return checkpoint if L is gf else th_ckpt.checkpoint


def block(L, w1, w2):
    """A two-layer block whose weights are closed over, as a module's parameters are."""
    def f(x, scale=1.0):
        return ((x @ w1).tanh() @ w2).sigmoid() * scale
    return f


def leaves(L, *arrays):
    return [L.tensor(a, requires_grad=True) for a in arrays]


def grads_of(L, use_reentrant, x_requires_grad=True, checkpointed=True):
    x, w1, w2 = leaves(L, X, W1, W2)
    x.requires_grad_(x_requires_grad)
    f = block(L, w1, w2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = ckpt(L)(f, x, use_reentrant=use_reentrant) if checkpointed else f(x)
    (y * L.tensor(data(6, 3, seed=3))).sum().backward()
    return [None if t.grad is None else to_numpy(t.grad) for t in (x, w1, w2)]


def assert_grads(got, want):
    assert [g is None for g in got] == [w is None for w in want]
    for g, w in zip(got, want):
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_gradients_match_torch_and_the_unchecked_run(use_reentrant):
    plain = grads_of(gf, use_reentrant, checkpointed=False)
    assert_grads(grads_of(gf, use_reentrant), plain)
    assert_grads(grads_of(gf, use_reentrant), grads_of(torch, use_reentrant))


def test_without_an_input_requiring_grad_as_torch():
    """Reentrant: torch warns and nothing gets a gradient (its output does not require
    grad); non-reentrant: the parameters inside still get theirs."""
    for L in (gf, torch):
        x, w1, w2 = leaves(L, X, W1, W2)
        x.requires_grad_(False)
        with pytest.warns(UserWarning, match="(?i)none of the inputs have requires_grad=True"):
            y = ckpt(L)(block(L, w1, w2), x, use_reentrant=True)
        assert not y.requires_grad
    assert_grads(grads_of(gf, False, x_requires_grad=False),
                 grads_of(torch, False, x_requires_grad=False))


def test_the_forward_keeps_no_graph_and_backward_recomputes_once():
    calls = []
    x, w1, w2 = leaves(gf, X, W1, W2)
    inner = block(gf, w1, w2)

    def f(t):
        calls.append(gf.is_grad_enabled())
        return inner(t)

    y = checkpoint(f, x, use_reentrant=True)
    assert calls == [False]  # the forward ran without recording
    assert isinstance(y.grad_fn, Checkpoint)
    assert [type(n).__name__ for n, _ in y.grad_fn.next_edges if n is not None] == \
        ["AccumulateGrad"]  # its only edge leads to x: nothing of f's graph was kept
    y.sum().backward()
    assert calls == [False, True]


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_dropout_inside_draws_the_same_mask_in_the_recomputation(use_reentrant):
    gf.manual_seed(0)
    x = gf.tensor(data(200, kind="pos"), requires_grad=True)
    y = checkpoint(lambda t: gf.nn.functional.dropout(t, 0.5) * 1.0, x,
                   use_reentrant=use_reentrant)
    after_forward = gf.get_rng_state()
    y.sum().backward()
    kept = to_numpy(y) / to_numpy(x.detach())  # the forward's mask, scaled by 1/(1-p)
    assert set(np.round(np.unique(kept), 6)) == {0.0, 2.0}
    np.testing.assert_allclose(to_numpy(x.grad), kept, rtol=1e-6)
    assert gf.get_rng_state() == after_forward  # backward restored the generator after use


def test_without_preserving_the_rng_state_the_mask_changes():
    gf.manual_seed(0)
    x = gf.tensor(data(200, kind="pos"), requires_grad=True)
    y = checkpoint(lambda t: gf.nn.functional.dropout(t, 0.5), x, use_reentrant=True,
                   preserve_rng_state=False)
    y.sum().backward()
    assert not np.allclose(to_numpy(x.grad), to_numpy(y) / to_numpy(x.detach()))


def test_several_outputs_and_non_tensor_arguments_match_torch():
    results = []
    for L in (gf, torch):
        x, w1, w2 = leaves(L, X, W1, W2)

        def f(t, scale, w=w1):
            h = t @ w
            return h.tanh() * scale, h.exp().sum()

        a, b = ckpt(L)(f, x, 0.5, use_reentrant=True)
        (a.sum() + b).backward()
        results.append([to_numpy(x.grad), to_numpy(w1.grad)])
    assert_grads(*results)


def test_keyword_arguments_need_use_reentrant_false_as_torch():
    for L in (gf, torch):
        x, w1, w2 = leaves(L, X, W1, W2)
        with pytest.raises(ValueError, match="(?i)unexpected keyword arguments: scale"):
            ckpt(L)(block(L, w1, w2), x, use_reentrant=True, scale=2.0)
    outs = []
    for L in (gf, torch):
        x, w1, w2 = leaves(L, X, W1, W2)
        y = ckpt(L)(block(L, w1, w2), x, use_reentrant=False, scale=2.0)
        y.sum().backward()
        outs.append([to_numpy(y.detach()), to_numpy(x.grad), to_numpy(w2.grad)])
    assert_grads(*outs)


def test_use_reentrant_must_be_passed_explicitly_as_torch_warns():
    for L in (gf, torch):
        x, w1, w2 = leaves(L, X, W1, W2)
        with pytest.warns(UserWarning, match="use_reentrant parameter should be passed "
                                             "explicitly"):
            ckpt(L)(block(L, w1, w2), x)


def test_an_input_changed_in_place_before_backward_is_caught():
    x, w1, w2 = leaves(gf, X, W1, W2)
    h = x * 1.0
    y = checkpoint(block(gf, w1, w2), h, use_reentrant=True)
    with gf.no_grad():
        h.array[...] = 0.0  # what an in-place op does, version bump included
        h._version_box[0] += 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


@pytest.mark.parametrize("segments", [1, 2, 3, 5])
def test_checkpoint_sequential_matches_torch(segments):
    grads = []
    for L in (gf, torch):
        layers = [L.nn.Linear(4, 5), L.nn.ReLU(), L.nn.Linear(5, 3), L.nn.Tanh(),
                  L.nn.Linear(3, 2)]
        for i, layer in enumerate(layers[::2]):
            with L.no_grad():
                layer.weight.copy_(L.tensor(data(*layer.weight.shape, seed=i)))
                layer.bias.copy_(L.tensor(data(*layer.bias.shape, seed=i + 9)))
        model = L.nn.Sequential(*layers).double()
        x = L.tensor(X, requires_grad=True)
        y = (checkpoint_sequential if L is gf else th_ckpt.checkpoint_sequential)(
            model, segments, x, use_reentrant=True)
        y.sum().backward()
        grads.append([to_numpy(y.detach()), to_numpy(x.grad)]
                     + [to_numpy(p.grad) for p in model.parameters()])
    assert_grads(*grads)


def test_checkpoint_sequential_rejects_unknown_keywords_as_torch():
    for L in (gf, torch):
        fn = checkpoint_sequential if L is gf else th_ckpt.checkpoint_sequential
        with pytest.raises(ValueError, match="(?i)unexpected keyword arguments: foo"):
            fn([L.nn.ReLU()], 1, L.ones(2), use_reentrant=True, foo=1)


def test_gradcheck_through_a_checkpoint():
    w = gf.tensor(W1)
    check_gradcheck(lambda L, x: checkpoint(lambda t: (t @ w).tanh(), x, use_reentrant=True),
                    (3, 4), second_order=False)


def test_checkpoint_on_the_cupy_path(fake_cuda):
    """The GPU generator is saved and restored too: dropout on CUDA gets its mask back."""
    gf.manual_seed(0)
    x = gf.tensor(data(64, kind="pos", dtype=np.float32), device="cuda", requires_grad=True)
    y = checkpoint(lambda t: gf.nn.functional.dropout(t, 0.5), x, use_reentrant=False)
    state = gf.cuda.get_rng_state()
    y.sum().backward()
    assert x.grad.device.type == "cuda"
    kept = y.detach().cpu().numpy() / x.detach().cpu().numpy()
    np.testing.assert_allclose(x.grad.cpu().numpy(), kept, rtol=1e-6)
    assert gf.cuda.get_rng_state() == state
