"""PyTorch's further elementwise ops (inverse trig and hyperbolic functions, logs, rounding,
the rounding divisions, predicates) against PyTorch and finite differences, on awkward shapes
(0-d, size 1, broadcast, odd sizes, views) and awkward values (signs, zeros, infinities)."""
import numpy as np
import pytest
from helpers import check_gradcheck, check_op, check_op_raises, data, require_torch

import gradflow as gf

INF, NAN = np.inf, np.nan
POS = data((7,), kind="pos")
UNIT = data((3, 1, 5), kind="unit")

# (id, fn(lib, *tensors), inputs): the differentiable ops, inputs in each one's domain
SMOOTH = [
    ("tan", lambda L, a: L.tan(a), [UNIT]),
    ("asin", lambda L, a: a.asin(), [UNIT]),
    ("acos", lambda L, a: L.acos(a), [data((), kind="unit")]),
    ("atan", lambda L, a: a.atan(), [data((4, 5))]),
    ("sinh", lambda L, a: L.sinh(a), [data((1,))]),
    ("cosh", lambda L, a: a.cosh(), [data((2, 3))]),
    ("asinh", lambda L, a: L.asinh(a), [data((7,))]),
    ("acosh", lambda L, a: a.acosh(), [POS + 1.0]),
    ("atanh", lambda L, a: L.atanh(a), [UNIT]),
    ("log2", lambda L, a: L.log2(a), [POS]),
    ("log10", lambda L, a: a.log10(), [data((), kind="pos")]),
    ("log1p", lambda L, a: L.log1p(a), [UNIT]),
    ("exp2", lambda L, a: a.exp2(), [data((3, 1, 5))]),
    ("expm1", lambda L, a: L.expm1(a), [data((7,))]),
    ("rsqrt", lambda L, a: a.rsqrt(), [POS]),
    ("reciprocal", lambda L, a: L.reciprocal(a), [data((4, 5))]),
    ("square", lambda L, a: a.square(), [data((3, 1, 5))]),
    ("erfc", lambda L, a: L.erfc(a * 2), [data((7,))]),
    ("logit", lambda L, a: L.logit(a * 0.5 + 0.5), [UNIT]),
    ("logit_eps", lambda L, a: a.logit(eps=0.2), [np.array([0.05, 0.3, 0.5, 0.85, 0.95])]),
    ("frac", lambda L, a: a.frac(), [data((4, 5)) * 3]),
    ("atan2", lambda L, a, b: L.atan2(a, b), [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("hypot", lambda L, a, b: a.hypot(b), [data((4, 5)), data((1,), seed=1)]),
    ("logaddexp", lambda L, a, b: L.logaddexp(a, b), [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("logaddexp2", lambda L, a, b: a.logaddexp2(b), [data(()), data((7,), seed=1)]),
    ("xlogy", lambda L, a, b: L.xlogy(a, b), [data((3, 1, 5)), data((4, 5), kind="pos")]),
    ("xlogy_number", lambda L, b: L.xlogy(2.0, b), [POS]),
    ("copysign", lambda L, a, b: L.copysign(a, b), [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("lerp_number", lambda L, a, b: L.lerp(a, b, 0.3), [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("lerp_tensor", lambda L, a, b, w: a.lerp(b, w),
     [data((4, 5)), data((5,), seed=1), data((4, 1), seed=2)]),
    ("fmod", lambda L, a, b: L.fmod(a, b), [data((3, 1, 5)) * 3, data((4, 5), seed=1)]),
    ("remainder", lambda L, a, b: L.remainder(a, b), [data((4, 5)) * 3, data((5,), seed=1)]),
    ("mod", lambda L, a: a % -0.7, [data((7,)) * 3]),
    ("nan_to_num", lambda L, a: L.nan_to_num(a * 2, nan=1.0, posinf=5.0),
     [np.array([1.0, -INF, INF, NAN, -0.5])]),
    ("rpow_positive", lambda L, b: 2.5 ** b, [data((3, 1, 5))]),
]
SMOOTH_IDS = [c[0] for c in SMOOTH]

# the step functions and rounding divisions: values, dtypes and zero gradients (which torch's
# outputs carry), on negative values, halves and exact multiples
HALVES = np.array([-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 1.25, -3.75])
SIGNS, SIGNS_DIVISOR = np.array([7, -7, 7, -7]), np.array([3, 3, -3, -3])
STEPS = [
    ("floor", lambda L, a: L.floor(a), [HALVES]),
    ("ceil", lambda L, a: a.ceil(), [HALVES]),
    ("trunc", lambda L, a: L.trunc(a), [HALVES]),
    ("round", lambda L, a: a.round(), [HALVES]),
    ("round_decimals", lambda L, a: L.round(a * 1.11, decimals=1), [HALVES]),
    ("round_negative_decimals", lambda L, a: a.round(decimals=-1), [HALVES * 10]),
    ("sign", lambda L, a: L.sign(a), [HALVES]),
    ("sgn", lambda L, a: a.sgn(), [HALVES]),
    ("div_trunc", lambda L, a, b: L.div(a, b, rounding_mode="trunc"),
     [HALVES, np.array([2.0, -2.0, 0.5, -1.0, 1.5, 0.75, -0.5, 0.25, -1.25])]),
    ("div_floor", lambda L, a: a.div(-0.75, rounding_mode="floor"), [HALVES]),
    ("floor_int", lambda L, a: L.floor(a), [np.array([-3, 0, 4])]),
    ("sign_int", lambda L, a: a.sign(), [np.array([-3, 0, 4])]),
    ("int_div_trunc", lambda L, a, b: L.div(a, b, rounding_mode="trunc"),
     [np.array([7, -7, 7, -7, 0]), np.array([2, 2, -2, -2, 3])]),
    ("int_div_floor", lambda L, a, b: L.div(a, b, rounding_mode="floor"),
     [np.array([7, -7, 7, -7, 0]), np.array([2, 2, -2, -2, 3])]),
    ("int_remainder", lambda L, a, b: a % b, [SIGNS, SIGNS_DIVISOR]),
    ("int_fmod", lambda L, a, b: L.fmod(a, b), [SIGNS, SIGNS_DIVISOR]),
    ("int_rmod", lambda L, a: -7 % a, [np.array([3, -3, 5])]),
    ("int_true_div", lambda L, a: L.div(a, 2), [np.array([7, -7, 1])]),
]

# values at the edges of the domains, forward only
EDGES = [
    ("acosh_edges", lambda L, a: L.acosh(a), [np.array([1.0, 0.5, INF, NAN])]),
    ("atanh_edges", lambda L, a: L.atanh(a), [np.array([-1.0, 1.0, 2.0, 0.0])]),
    ("log_family_edges", lambda L, a: (L.log2(a), L.log10(a), L.log1p(a - 1)),
     [np.array([0.0, -1.0, INF, 1.0])]),
    ("rsqrt_reciprocal_zero", lambda L, a: (L.rsqrt(a), L.reciprocal(a)),
     [np.array([0.0, -0.0, INF])]),
    ("logit_edges", lambda L, a: L.logit(a), [np.array([0.0, 1.0, 1.5, -0.5])]),
    ("erfc_tails", lambda L, a: L.erfc(a), [np.array([-INF, -3.0, 0.0, 3.0, INF])]),
    ("atan2_zeros", lambda L, a, b: L.atan2(a, b),
     [np.array([0.0, -0.0, 0.0, 1.0, -1.0]), np.array([0.0, 0.0, -0.0, INF, -INF])]),
    ("xlogy_zero", lambda L, a, b: L.xlogy(a, b),
     [np.array([0.0, 0.0, 0.0, 1.0]), np.array([0.0, -1.0, NAN, 0.0])]),
    ("copysign_zero", lambda L, a, b: L.copysign(a, b),
     [np.array([0.0, 1.0, -2.0, INF]), np.array([-1.0, -0.0, 0.0, -1.0])]),
    ("steps_inf_nan", lambda L, a: (L.floor(a), L.ceil(a), L.trunc(a), L.round(a), L.sign(a)),
     [np.array([INF, -INF, NAN])]),
    ("float_div_zero", lambda L, a: (L.div(a, 0.0, rounding_mode="trunc"),
                                     L.div(a, 0.0, rounding_mode="floor"), a % 0.0),
     [np.array([1.0, -1.0, 0.0])]),
    # (torch has no gradient for a number % a tensor nor for //: its backward raises)
    ("rmod", lambda L, a: 2.5 % a.detach(), [data((7,))]),
    ("floordiv", lambda L, a: (a.detach() // 0.5, 3 // a.detach()), [HALVES[HALVES != 0]]),
    ("float_mod_zero", lambda L, a: L.fmod(a, 0.0), [HALVES]),
    ("nan_to_num_defaults", lambda L, a: L.nan_to_num(a), [np.array([NAN, INF, -INF, 1.0])]),
    ("nan_to_num_f32", lambda L, a: a.float().nan_to_num(), [np.array([NAN, INF, -INF])]),
    ("nan_to_num_given", lambda L, a: a.nan_to_num(1.0, 2.0, -3.0), [np.array([NAN, INF, -INF])]),
    ("nan_to_num_int", lambda L, a: L.nan_to_num(a), [np.array([1, -2])]),
    ("int_promotion", lambda L, a: (L.atan2(a, a + 1), L.xlogy(a, a), L.copysign(a, -a),
                                    L.reciprocal(a), L.exp2(a), L.square(a)),
     [np.array([1, 2, 3])]),
    ("float32", lambda L, a, b: (L.atan2(a, b), L.xlogy(a, b.abs()), L.hypot(a, b),
                                 L.fmod(a, b), L.logaddexp(a, b), L.lerp(a, b, 0.25),
                                 L.erfc(a), a.rsqrt(), L.round(a, decimals=1), 2 ** a),
     [data((5,), kind="pos").astype(np.float32), data((5,), seed=1).astype(np.float32)]),
    ("predicates", lambda L, a: (L.isinf(a), a.isposinf(), L.isneginf(a), L.isnan(a)),
     [np.array([INF, -INF, NAN, 0.0, -1.0])]),
    ("predicates_int", lambda L, a: (L.isinf(a), L.isposinf(a), a.isneginf()), [np.array([1, 2])]),
    ("isclose", lambda L, a, b: (L.isclose(a, b), a.isclose(b, rtol=0.1, atol=0.0),
                                 L.isclose(a, b, equal_nan=True)),
     [np.array([1.0, INF, -INF, NAN, 1.0, 0.0]),
      np.array([1.0 + 1e-6, INF, INF, NAN, 1.05, 1e-9])]),
    ("isclose_int", lambda L, a, b: L.isclose(a, b), [np.array([1, 2, 3]), np.array([1, 3, 3])]),
]


@pytest.mark.parametrize("name,fn,inputs", SMOOTH + STEPS, ids=SMOOTH_IDS + [c[0] for c in STEPS])
def test_matches_torch(name, fn, inputs, device):
    check_op(fn, *inputs, device=device)


@pytest.mark.parametrize("name,fn,inputs", SMOOTH, ids=SMOOTH_IDS)
def test_matches_torch_noncontiguous(name, fn, inputs):
    check_op(fn, *inputs, noncontiguous=True, second_order=False)


# (nan_to_num's case has infinities, where finite differences are NaN)
@pytest.mark.parametrize("name,fn,inputs", [c for c in SMOOTH if c[0] != "nan_to_num"],
                         ids=[n for n in SMOOTH_IDS if n != "nan_to_num"])
def test_gradcheck(name, fn, inputs):
    check_gradcheck(fn, *inputs)


@pytest.mark.parametrize("name,fn,inputs", EDGES, ids=[c[0] for c in EDGES])
def test_edge_values_match_torch(name, fn, inputs, device):
    # (first gradients only: second ones at the domain's edges are inf or NaN by luck)
    with np.errstate(all="ignore"):
        check_op(fn, *inputs, device=device, second_order=False)


@pytest.mark.parametrize("base", [-5.5, -2, 0, 0.0, 3])
def test_number_to_tensor_power_matches_torch(base):
    # NOTE: a base <= 0 has no real log: torch gives NaN gradients, and zero ones at 0 ** x
    # for x >= 0 (and -inf for x < 0).
    with np.errstate(all="ignore"):
        check_op(lambda L, x: base ** x, np.array([2.0, 0.0, 1.5, -1.0, 3.0]), second_order=False)


def test_step_outputs_require_grad_with_zero_gradient():
    x = gf.tensor([0.4, -1.6], requires_grad=True)
    for y in (x.sign(), x.sgn(), x.floor(), x.ceil(), x.trunc(), x.round(decimals=1),
              x.div(0.3, rounding_mode="floor"), x // 0.3):
        assert y.requires_grad
        (gx,) = gf.autograd.grad(y.sum(), [x])
        np.testing.assert_array_equal(gx.numpy(), np.zeros(2))


@pytest.mark.parametrize("fn,expect", [
    (lambda L, a, b: L.allclose(a, b), True),
    (lambda L, a, b: a.allclose(b + 1e-3), False),
    (lambda L, a, b: L.allclose(a, b * 1.01, rtol=0.1), True),
    (lambda L, a, b: L.equal(a, b), True),
    (lambda L, a, b: a.equal(b + 1), False),
    (lambda L, a, b: L.equal(a, b[:1]), False),
    (lambda L, a, b: L.equal(a.long(), b), True),
], ids=["allclose", "allclose_far", "allclose_rtol", "equal", "equal_values", "equal_shapes",
        "equal_dtypes"])
def test_python_bool_predicates_match_torch(fn, expect):
    torch = require_torch()
    a = np.array([1.0, 2.0, 3.0])
    got, want = fn(gf, gf.tensor(a), gf.tensor(a)), fn(torch, torch.tensor(a), torch.tensor(a))
    assert type(got) is bool and got == want == expect, (got, want, expect)


@pytest.mark.parametrize("op,fn,args", [
    ("div", lambda L, a, b: L.div(a, b, rounding_mode="round"), [(3,), (3,)]),
    ("floor_divide", lambda L, a, b: a // b, [np.array([1, -3]), np.array([2, 0])]),
    ("remainder", lambda L, a: a % 0, [np.array([1, -3])]),
    ("remainder", lambda L, a: 5 % a, [np.array([1, 0])]),
    ("fmod", lambda L, a, b: L.fmod(a, b), [np.array([1, -3]), np.array([0, 1])]),
    ("div", lambda L, a: L.div(a, 0, rounding_mode="trunc"), [np.array([4])]),
    ("isclose", lambda L, a, b: L.isclose(a, b), [np.array([1, 2]), (2,)]),
    ("lerp", lambda L, a, b: L.lerp(a, b, 0.5), [(2,), np.array([1, 2])]),
], ids=["rounding_mode", "int_floordiv_zero", "int_mod_zero", "int_rmod_zero", "int_fmod_zero",
        "int_trunc_zero", "isclose_dtypes", "lerp_dtypes"])
def test_bad_call_raises_like_torch(op, fn, args):
    check_op_raises(fn, *args, op=op)


BITWISE = np.array([5, 3, -8, 0, 127], np.int64)


@pytest.mark.parametrize("call", [
    lambda lib, a, b: a & b, lambda lib, a, b: a | b, lambda lib, a, b: a ^ b,
    lambda lib, a, b: ~a, lambda lib, a, b: a & 6, lambda lib, a, b: 6 | a,
    lambda lib, a, b: 3 ^ a, lambda lib, a, b: a << 2, lambda lib, a, b: 1 << (b % 8).abs(),
    lambda lib, a, b: a >> 1, lambda lib, a, b: lib.bitwise_and(a, b),
    lambda lib, a, b: lib.bitwise_not(b), lambda lib, a, b: lib.bitwise_left_shift(a, 1),
    lambda lib, a, b: lib.logical_and(a, b), lambda lib, a, b: lib.logical_not(a),
    lambda lib, a, b: (a > 0) & (b > 0), lambda lib, a, b: ~(a > 0),
], ids=["and", "or", "xor", "invert", "and_int", "rand_int", "rxor_int", "lshift",
        "rlshift", "rshift", "bitwise_and", "bitwise_not", "left_shift", "logical_and_ints",
        "logical_not_ints", "and_bools", "invert_bools"])
def test_bitwise_and_logical_ops_match_torch(call):
    check_op(call, BITWISE, np.array([1, -2, 6, 7, 9], np.int32))


@pytest.mark.parametrize("call,op", [
    (lambda lib, x: x & 1, "bitwise_and"), (lambda lib, x: ~x, "bitwise_not"),
    (lambda lib, x: lib.bitwise_not(x), "bitwise_not"),
    (lambda lib, x: x << 1, "bitwise_left_shift")], ids=["and", "invert", "not", "lshift"])
def test_bitwise_ops_refuse_floats_as_torch(call, op):
    err = check_op_raises(call, np.array([1.5, 2.0], np.float32), op=op)
    assert "float32" in str(err)
