"""The random in-place fills (uniform_, normal_, exponential_, bernoulli_, random_, and
bernoulli): against PyTorch where the draw is determined (degenerate ranges and
probabilities), against their distributions on seeded draws otherwise, and PyTorch's errors."""
import numpy as np
import pytest
from helpers import check_op, check_op_raises, data

import gradflow as gf

A = data(3, 4)

# draws fixed by their parameters, in the graph: the history they replace gets zeros
DETERMINED = [
    ("uniform_point", lambda L, a: (a * 1).uniform_(1.5, 1.5) * a),
    ("normal_no_spread", lambda L, a: (a * 2).normal_(-2.0, 0.0) + a),
    ("bernoulli_zero", lambda L, a: (a * 1).bernoulli_(0.0) + a),
    ("bernoulli_one", lambda L, a: (a * 1).bernoulli_(1.0) * a),
    ("bernoulli_tensor", lambda L, a: (a * 1).bernoulli_((a.detach() > 0).double()) * a),
    ("random_one_value", lambda L, a: (a * 1).random_(3, 4) * a),
    ("bernoulli_fn", lambda L, a: L.bernoulli((a.detach() > 0).double()) * a),
]


@pytest.mark.parametrize("fn", [c[1] for c in DETERMINED], ids=[c[0] for c in DETERMINED])
def test_determined_draws_match_torch(fn):
    check_op(fn, A)


def test_integer_tensors_take_integer_draws():
    check_op(lambda L, i: i.random_(7, 8) + i.bernoulli_(1.0), np.zeros((2, 3), np.int64))


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_draws_follow_their_distributions(device, request):
    """Seeded draws of 40,000 values: moments within about 5 standard errors."""
    if device == "cuda":
        request.getfixturevalue("fake_cuda")
    gf.manual_seed(0)
    x = gf.empty(40_000, dtype=gf.float64, device=device)
    se = 5 / np.sqrt(x.numel())
    checks = [
        (x.uniform_(-1.0, 3.0).cpu().numpy().copy(), 1.0, 4 / np.sqrt(12)),
        (x.normal_(2.0, 0.5).cpu().numpy().copy(), 2.0, 0.5),
        (x.exponential_(4.0).cpu().numpy().copy(), 0.25, 0.25),
        (x.bernoulli_(0.3).cpu().numpy().copy(), 0.3, np.sqrt(0.21)),
    ]
    for values, mean, std in checks:
        np.testing.assert_allclose(values.mean(), mean, atol=se * std * 2)
        np.testing.assert_allclose(values.std(), std, rtol=0.05)
    ints = x.random_(5, 9).cpu().numpy()
    np.testing.assert_array_equal(np.unique(ints), [5, 6, 7, 8])
    assert x.uniform_(2, 3).min().item() >= 2 and x.max().item() < 3


def test_a_generator_makes_draws_repeat():
    draws = []
    for _ in range(2):
        g = gf.Generator().manual_seed(7)
        draws.append(gf.zeros(5).normal_(generator=g).tolist()
                     + gf.zeros(5).uniform_(generator=g).tolist())
    assert draws[0] == draws[1]


def test_default_random_range_is_torchs():
    """random_() draws from [0, 2**24] on float32 and [0, max] on int64."""
    f = gf.zeros(2000).random_()
    assert f.min().item() >= 0 and f.max().item() <= 2 ** 24 and f.max().item() > 2 ** 20
    i = gf.zeros(2000, dtype=gf.int16).random_()
    assert i.min().item() >= 0 and i.max().item() <= 2 ** 15 - 1 and i.max().item() > 2 ** 13


BAD = [
    ("uniform_bounds", lambda L, a: a.uniform_(2.0, 1.0), [A], "uniform_"),
    ("normal_std", lambda L, a: a.normal_(0.0, -1.0), [A], "normal_"),
    ("exponential_rate", lambda L, a: a.exponential_(0.0), [A], "exponential_"),
    ("bernoulli_p", lambda L, a: a.bernoulli_(1.5), [A], "bernoulli_"),
    ("random_bounds", lambda L, a: a.random_(5, 3), [A], "random_"),
    ("uniform_of_ints", lambda L, i: i.uniform_(), [np.zeros(3, np.int64)], "uniform_"),
    ("leaf", lambda L, a: a.requires_grad_().normal_(), [A], "normal_"),
]


@pytest.mark.parametrize("fn,arrays,op", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_fills_raise_as_torch(fn, arrays, op):
    check_op_raises(fn, *arrays, op=op)
