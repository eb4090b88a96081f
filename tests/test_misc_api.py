"""PyTorch's everyday functions of the second round: the aliases (arccos, multiply, greater,
...), the further elementwise math (sinc, i0, float_power, fmax, frexp, gcd, ...), counting
and searching (histc, bincount, bucketize, searchsorted), combinations and index sets,
trace/matrix_power/dist, diff/select/narrow_copy/ravel, index_reduce, and the in-place
functions torch exposes at the top level; against PyTorch and finite differences, on awkward
shapes (0-d, size 1, broadcast, odd sizes, views) and on the CuPy path."""
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
    distinct,
    require_torch,
)

import gradflow as gf

# (torch warns that its index_reduce is a beta API on each first call)
pytestmark = pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta:UserWarning")

INF, NAN = np.inf, np.nan
UNIT = data((3, 1, 5), kind="unit")
POS = data((7,), kind="pos")
INTS = np.array([12, -6, 0, 7, 35, -9, 1])
INTS_B = np.array([8, 4, 0, -21, 14, 6, 1])
SORTED = np.array([-1.5, -0.25, 0.0, 0.5, 0.5, 2.0, 3.25])
SORTED_ROWS = np.sort(data((2, 3, 7)), axis=-1)

# (id, fn(lib, *tensors), inputs): differentiable ops, values, dtypes and gradients
SMOOTH = [
    ("arccos", lambda L, a: L.arccos(a), [UNIT]),
    ("arcsin", lambda L, a: a.arcsin(), [data((), kind="unit")]),
    ("arctan", lambda L, a: L.arctan(a), [data((4, 5))]),
    ("arcsinh", lambda L, a: a.arcsinh(), [data((7,))]),
    ("arccosh", lambda L, a: L.arccosh(a), [POS + 1.0]),
    ("arctanh", lambda L, a: a.arctanh(), [UNIT]),
    ("arctan2", lambda L, a, b: L.arctan2(a, b), [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("arctan2_method", lambda L, a, b: a.arctan2(b), [data((1,)), data((2, 3), seed=1)]),
    ("negative", lambda L, a: L.negative(a) + a.negative(), [data((4, 5))]),
    ("positive", lambda L, a: L.positive(a) * a.positive(), [data((7,))]),
    ("absolute", lambda L, a: L.absolute(a) + a.absolute(), [data((3, 1, 5))]),
    ("multiply", lambda L, a, b: L.multiply(a, b) + a.multiply(2.0), [data((3, 1, 5)),
                                                                      data((4, 5), seed=1)]),
    ("divide", lambda L, a, b: L.divide(a, b) + a.divide(b, rounding_mode="floor"),
     [data((4, 5)), data((5,), kind="pos", seed=1)]),
    ("true_divide", lambda L, a, b: L.true_divide(a, b) + a.true_divide(3),
     [data((1,)), data((7,), kind="pos", seed=1)]),
    ("subtract", lambda L, a, b: L.subtract(a, b, alpha=2) + a.subtract(b),
     [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("rsub", lambda L, a, b: L.rsub(a, b) + L.rsub(a, 3.0, alpha=2),
     [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("clamp_min", lambda L, a: L.clamp_min(a, 0.1) + a.clamp_min(-0.5), [data((4, 5))]),
    ("clamp_max", lambda L, a: L.clamp_max(a, 0.1) + a.clamp_max(-0.5), [data((3, 1, 5))]),
    ("clamp_min_tensor", lambda L, a, b: L.clamp_min(a, b), [data((4, 5)), data((5,), seed=1)]),
    ("deg2rad", lambda L, a: L.deg2rad(a * 90), [data((3, 1, 5))]),
    ("rad2deg", lambda L, a: a.rad2deg(), [data(())]),
    ("sinc", lambda L, a: L.sinc(a * 2), [data((4, 5))]),
    ("i0", lambda L, a: L.i0(a * 3), [data((3, 1, 5))]),
    ("i0_far", lambda L, a: a.i0(), [np.array([9.5, -12.0, 20.0, 0.25])]),
    ("float_power", lambda L, a, b: L.float_power(a, b), [data((3, 1, 5), kind="pos"),
                                                         data((4, 5), seed=1)]),
    ("float_power_number", lambda L, a: a.float_power(2.5) + L.float_power(1.5, a),
     [data((7,), kind="pos")]),
    ("ldexp", lambda L, a, b: L.ldexp(a, b), [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("fmax", lambda L, a, b: L.fmax(a, b), [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("fmin", lambda L, a, b: a.fmin(b), [data((4, 5)), data((5,), seed=1)]),
    ("addcmul", lambda L, a, b, c: L.addcmul(a, b, c, value=0.5),
     [data((3, 1, 5)), data((4, 5), seed=1), data((5,), seed=2)]),
    ("addcdiv", lambda L, a, b, c: a.addcdiv(b, c, value=-2),
     [data((4, 5)), data((4, 1), seed=1), data((5,), kind="pos", seed=2)]),
    ("addcmul_default", lambda L, a, b, c: a.addcmul(b, c), [data(()), data((7,), seed=1),
                                                           data((1,), seed=2)]),
    ("frexp_mantissa", lambda L, a: L.frexp(a * 5).mantissa, [data((4, 5))]),
    ("diff", lambda L, a: L.diff(a), [data((4, 5))]),
    ("diff_n2_dim0", lambda L, a: a.diff(n=2, dim=0), [data((5, 3))]),
    ("diff_negative_dim", lambda L, a: L.diff(a, dim=-2), [data((2, 3, 4))]),
    ("diff_prepend_append", lambda L, a, p, q: L.diff(a, n=2, dim=1, prepend=p, append=q),
     [data((3, 4)), data((3, 1), seed=1), data((3, 2), seed=2)]),
    ("diff_too_many", lambda L, a: L.diff(a, n=9), [data((7,))]),
    ("diff_size_one", lambda L, a: L.diff(a), [data((1,))]),
    ("trace", lambda L, a: L.trace(a), [data((3, 3))]),
    ("trace_wide", lambda L, a: a.trace(), [data((2, 5))]),
    ("matrix_power", lambda L, a: L.matrix_power(a, 3), [data((3, 3)) * 0.5]),
    ("matrix_power_batch", lambda L, a: a.matrix_power(5), [data((2, 3, 3)) * 0.4]),
    ("matrix_power_one", lambda L, a: L.matrix_power(a, 1), [data((2, 2))]),
    ("matrix_power_negative", lambda L, a: L.linalg.matrix_power(a + 2 * L.eye(3, dtype=a.dtype),
                                                                 -2), [data((3, 3)) * 0.3]),
    ("dist", lambda L, a, b: L.dist(a, b), [data((3, 1, 5)), data((4, 5), seed=1)]),
    ("dist_p1", lambda L, a, b: a.dist(b, p=1), [data((7,)), data((7,), seed=1)]),
    ("dist_p3", lambda L, a, b: L.dist(a, b, 3), [data((4, 5)), data((5,), seed=1)]),
    ("dist_inf", lambda L, a, b: L.dist(a, b, float("inf")), [distinct(2, 3),
                                                              distinct(2, 3, seed=1)]),
    ("clone", lambda L, a: L.clone(a.t()) * 2, [data((3, 5))]),
    ("ravel", lambda L, a: L.ravel(a) * 2, [data((3, 1, 5))]),
    ("ravel_0d", lambda L, a: a.ravel(), [data(())]),
    ("select", lambda L, a: L.select(a, 1, 2) * 3, [data((3, 4, 2))]),
    ("select_negative", lambda L, a: a.select(-1, -1), [data((3, 5))]),
    ("narrow_copy", lambda L, a: a.narrow_copy(1, 1, 3) * 2, [data((2, 5))]),
    ("narrow_copy_fn", lambda L, a: L.narrow_copy(a, 0, 5, 2), [data((7,))]),
    ("cartesian_prod", lambda L, a, b: L.cartesian_prod(a, b), [data((3,)), data((2,), seed=1)]),
    ("cartesian_prod_three", lambda L, a, b, c: L.cartesian_prod(a, b, c),
     [data((2,)), data((1,), seed=1), data((3,), seed=2)]),
    ("cartesian_prod_one", lambda L, a: L.cartesian_prod(a), [data((5,))]),
    ("combinations", lambda L, a: L.combinations(a), [data((5,))]),
    ("combinations_r3", lambda L, a: L.combinations(a, r=3), [data((4,))]),
    ("combinations_replacement", lambda L, a: L.combinations(a, 2, with_replacement=True),
     [data((3,))]),
    ("combinations_r_too_big", lambda L, a: L.combinations(a, r=4), [data((3,))]),
    ("block_diag", lambda L, a, b, c: L.block_diag(a, b, c),
     [data(()), data((3,), seed=1), data((2, 2), seed=2)]),
    ("block_diag_one", lambda L, a: L.block_diag(a), [data((2, 3))]),
    ("trapezoid", lambda L, y: L.trapezoid(y), [data((3, 4))]),
    ("trapezoid_dx_dim0", lambda L, y: L.trapezoid(y, dx=0.5, dim=0), [data((4, 3))]),
    ("trapezoid_x", lambda L, y, x: L.trapezoid(y, x), [data((3, 5)),
                                                       np.cumsum(data((5,), kind="pos"))]),
    ("trapezoid_x_full", lambda L, y, x: L.trapezoid(y, x, dim=-2), [data((4, 3)),
                                                                    data((4, 3), seed=1)]),
    ("trapz", lambda L, y, x: L.trapz(y, x) + L.trapz(y, dx=2.0), [data((7,)),
                                                                  data((7,), seed=1)]),
    ("cumulative_trapezoid", lambda L, y: L.cumulative_trapezoid(y), [data((3, 5))]),
    ("cumulative_trapezoid_x", lambda L, y, x: L.cumulative_trapezoid(y, x, dim=0),
     [data((4, 2)), data((4,), seed=1)]),
    ("index_reduce_prod", lambda L, a, s, i: a.index_reduce(0, i, s, "prod"),
     [data((4, 3)), data((5, 3), seed=1), np.array([0, 2, 0, 3, 2])]),
    ("index_reduce_mean", lambda L, a, s, i: L.index_reduce(a, 1, i, s, "mean"),
     [data((2, 4)), data((2, 3), seed=1), np.array([3, 3, 0])]),
    ("index_reduce_mean_exclude", lambda L, a, s, i: a.index_reduce(-1, i, s, "mean",
                                                                    include_self=False),
     [data((2, 4)), data((2, 3), seed=1), np.array([3, 3, 0])]),
    ("index_reduce_amax", lambda L, a, s, i: a.index_reduce(0, i, s, "amax"),
     [distinct(3, 2), distinct(4, 2, seed=1), np.array([1, 1, 2, 0])]),
    ("index_reduce_amin_exclude", lambda L, a, s, i: a.index_reduce(0, i, s, "amin",
                                                                    include_self=False),
     [distinct(3, 2), distinct(4, 2, seed=1), np.array([1, 1, 2, 1])]),
]
SMOOTH_IDS = [c[0] for c in SMOOTH]

# ops without a gradient (or integer ones): values and dtypes
EXACT = [
    ("fix", lambda L, a: (L.fix(a), a.fix()), [np.array([-2.5, -0.5, 0.0, 0.5, 1.75])]),
    ("comparisons", lambda L, a, b: (L.greater(a, b), a.less(b), L.greater_equal(a, 0.5),
                                     a.less_equal(b), L.not_equal(a, b), a.greater(b)),
     [np.array([1.0, 0.5, -2.0, 0.5]), np.array([0.5, 0.5, 3.0, -1.0])]),
    ("signbit", lambda L, a: (L.signbit(a), a.signbit()), [np.array([-0.0, 0.0, -1.5, INF,
                                                                     -INF, 2.0])]),
    ("signbit_int", lambda L, a: L.signbit(a), [INTS]),
    ("gcd", lambda L, a, b: (L.gcd(a, b), a.gcd(b)), [INTS, INTS_B]),
    ("lcm", lambda L, a, b: (L.lcm(a, b), a.lcm(b)), [INTS, INTS_B]),
    ("gcd_broadcast_int32", lambda L, a, b: L.gcd(a, b), [INTS.astype(np.int32).reshape(7, 1),
                                                          INTS_B[:3]]),
    ("heaviside", lambda L, a, b: (L.heaviside(a.detach(), b.detach()),
                                   a.detach().heaviside(b[:1].detach())),
     [np.array([-1.5, 0.0, 2.0, 0.0, NAN]), np.array([0.5, 0.25, 0.5, -1.0, 0.5])]),
    ("heaviside_int", lambda L, a, b: L.heaviside(a, b), [INTS, INTS_B]),
    ("nextafter", lambda L, a, b: (L.nextafter(a.detach(), b.detach()),
                                   a.detach().float().nextafter(b.detach().float())),
     [np.array([1.0, 0.0, -2.0, 5.0]), np.array([2.0, -1.0, -2.0, 0.0])]),
    ("frexp", lambda L, a: tuple(L.frexp(a)) + tuple(a.float().frexp()),
     [np.array([0.0, 1.0, -3.5, 1e-310, 1024.0, INF])]),
    ("float_power_int", lambda L, a, b: (L.float_power(a, b), L.float_power(a, 2)),
     [np.array([2, -3, 4]), np.array([3, 2, 0])]),
    ("ldexp_int", lambda L, a, b: L.ldexp(a, b), [np.array([1, -2, 3]), np.array([2, 3, -1])]),
    ("fmax_nan", lambda L, a, b: (L.fmax(a, b), L.fmin(a, b)),
     [np.array([1.0, NAN, NAN, -2.0]), np.array([NAN, 2.0, NAN, -3.0])]),
    ("fmax_int", lambda L, a, b: (L.fmax(a, b), a.fmin(b)), [INTS, INTS_B]),
    ("sinc_zero_int", lambda L, a: (L.sinc(a), L.sinc(a.float()), L.i0(a), L.deg2rad(a)),
     [np.array([0, 1, -2, 3])]),
    ("sinc_f32", lambda L, a: (L.sinc(a), L.i0(a), L.rad2deg(a), L.float_power(a, 2)),
     [data((5,)).astype(np.float32)]),
    ("clamp_min_int", lambda L, a: (L.clamp_min(a, 3), L.clamp_min(a, 3.5), a.clamp_max(0)),
     [INTS]),
    ("addcmul_int", lambda L, a, b: (L.addcmul(a, b, b, value=1.7), a.addcmul(a, b, value=-0.5),
                                     L.addcmul(a.double(), b, b, value=0.5)), [INTS, INTS_B]),
    ("rsub_int", lambda L, a: (L.rsub(a, 10), L.rsub(a, a, alpha=3)), [INTS]),
    ("true_divide_int", lambda L, a, b: L.true_divide(a, b), [INTS, INTS_B + 100]),
    ("trace_int", lambda L, a: L.trace(a), [np.arange(12, dtype=np.int32).reshape(3, 4)]),
    ("matrix_power_int", lambda L, a: (L.matrix_power(a, 3), L.matrix_power(a, 0)),
     [np.array([[1, 2], [3, -4]])]),
    ("matrix_power_zero", lambda L, a: L.matrix_power(a, 0), [data((2, 3, 3))]),
    ("diff_bool", lambda L, a: L.diff(a > 0), [data((2, 6))]),
    ("diff_int", lambda L, a: L.diff(a, n=2), [INTS]),
    ("diff_n0", lambda L, a: L.diff(a, n=0), [INTS]),
    ("select_int", lambda L, a: (L.select(a, 0, -3), L.narrow_copy(a, 0, -3, 2)), [INTS]),
    ("is_nonzero", lambda L, a: L.tensor([L.is_nonzero(a[:1]), a[2:3].is_nonzero()]), [INTS]),
    ("is_predicates", lambda L, a: L.tensor([L.is_floating_point(a), L.is_complex(a),
                                             L.is_floating_point(a.float()), L.numel(a)]),
     [INTS]),
    ("histc", lambda L, a: (L.histc(a, bins=4, min=-1, max=1), a.histc(7)),
     [data((3, 5))]),
    ("histc_data_range", lambda L, a: (L.histc(a, bins=5), L.histc(a[:1], bins=3)),
     [np.array([0.5, -1.0, 2.0, 2.0, 1.25, NAN])[:5]]),
    ("histc_outside_and_nan", lambda L, a: L.histc(a, bins=3, min=0, max=2),
     [np.array([-0.5, 0.0, 0.66, 1.0, 2.0, 2.5, NAN, 1.999])]),
    ("histc_f32", lambda L, a: L.histc(a, bins=6, min=-2, max=2),
     [data((4, 5)).astype(np.float32)]),
    ("bincount", lambda L, a: (L.bincount(a), a.bincount(minlength=9)),
     [np.array([0, 3, 3, 1, 7, 3])]),
    ("bincount_weights", lambda L, a, w: (L.bincount(a, w.detach()), a.bincount(
        w.detach().float()), L.bincount(a, (w * 10).long())),
     [np.array([0, 3, 3, 1]), data((4,))]),
    ("bincount_empty", lambda L, a: L.bincount(a[:0], minlength=3), [np.array([1, 2])]),
    ("searchsorted", lambda L, s, v: (L.searchsorted(s, v), L.searchsorted(s, v, right=True),
                                      L.searchsorted(s, v, side="right", out_int32=True)),
     [SORTED, np.array([[0.5, -3.0, 9.0], [2.0, 0.0, -0.25]])]),
    ("searchsorted_nan", lambda L, s, v: (L.searchsorted(s, v), L.searchsorted(s, v, right=True),
                                          L.searchsorted(s[:2], v), L.bucketize(v, s)),
     [np.array([-1.0, 2.0, INF, NAN, NAN]), np.array([NAN, 0.5, 2.0, -INF])]),
    ("searchsorted_rows", lambda L, s, v: (L.searchsorted(s, v), L.searchsorted(s, v,
                                                                                side="right")),
     [SORTED_ROWS, np.concatenate([SORTED_ROWS[..., :2], data((2, 3, 2), seed=1)], -1)]),
    ("searchsorted_rows_ties", lambda L, s, v: (L.searchsorted(s, v), L.searchsorted(s, v,
                                                                                    right=True)),
     [np.sort(np.random.default_rng(3).integers(-3, 4, (2, 3, 8)), -1),
      np.random.default_rng(4).integers(-4, 5, (2, 3, 5))]),
    ("searchsorted_scalar", lambda L, s: (L.searchsorted(s, 0.5), L.searchsorted(s, 1,
                                                                                  right=True)),
     [SORTED]),
    ("searchsorted_sorter", lambda L, s, k: L.searchsorted(s, L.tensor([0.3, 1.0, -9.0],
                                                                       dtype=s.dtype), sorter=k),
     [np.array([2.0, -1.0, 0.5, 1.0]), np.array([1, 2, 3, 0])]),
    ("searchsorted_int_float", lambda L, s, v: L.searchsorted(s, v),
     [np.array([1, 3, 5, 7]), np.array([2.5, 7.0, 0.0])]),
    ("bucketize", lambda L, v, b: (L.bucketize(v, b), L.bucketize(v, b, right=True),
                                   L.bucketize(v, b, out_int32=True)),
     [np.array([[1, 5, 3], [9, -2, 7]]), np.array([1, 3, 5, 7])]),
    ("bucketize_scalar", lambda L, b: L.bucketize(3, b), [np.array([1, 3, 5, 7])]),
    ("tril_indices", lambda L: (L.tril_indices(3, 4, 1), L.tril_indices(4, 3, -1),
                                L.tril_indices(0, 4), L.tril_indices(1, 1, dtype=L.int32)), []),
    ("triu_indices", lambda L: (L.triu_indices(3, 4, -1), L.triu_indices(4, 3, 1),
                                L.triu_indices(3, 3, 5), L.triu_indices(2, 5, dtype=L.int32)),
     []),
    ("combinations_int", lambda L, a: (L.combinations(a, 2), L.combinations(a, 0),
                                       L.combinations(a, 1)), [INTS[:4]]),
    ("block_diag_mixed", lambda L, a, b: (L.block_diag(a, b), L.block_diag(b[:0], a)),
     [np.array([[1, 2]]), data((2, 2))]),
    ("index_reduce_int_mean", lambda L, a, s, i: L.index_reduce(a, 0, i, s, "mean"),
     [np.array([1, 2, 5]), np.array([2, 3, 8]), np.array([0, 0, 2])]),
    ("trapezoid_int_empty", lambda L, a: (L.trapezoid(a), L.trapezoid(a[:0]),
                                          L.cumulative_trapezoid(a[:1]),
                                          L.trapezoid(a, a.flip(0)), L.trapezoid(a, dx=3)),
     [INTS]),
    ("index_reduce_0d", lambda L, a, s, i: L.index_reduce(a, 0, i, s, "prod"),
     [np.array(2.0), np.array(3.0), np.array(0)]),
]
EXACT_IDS = [c[0] for c in EXACT]


@pytest.mark.parametrize("name,fn,inputs", SMOOTH + EXACT, ids=SMOOTH_IDS + EXACT_IDS)
def test_matches_torch(name, fn, inputs, device):
    with np.errstate(all="ignore"):
        check_op(fn, *inputs, device=device)


def _pick(cases: list, names: set) -> list:
    """The cases named in `names`, each name one of them (so a renamed case is not dropped
    silently)."""
    picked = [c for c in cases if c[0] in names]
    assert {c[0] for c in picked} == names, f"no such cases: {names - {c[0] for c in picked}}"
    return picked


NONCONTIGUOUS = _pick(SMOOTH, {
    "arctan2", "sinc", "i0", "float_power", "ldexp", "fmax", "fmin", "addcmul", "addcdiv",
    "diff", "diff_n2_dim0", "trace", "matrix_power", "dist", "ravel", "select", "narrow_copy",
    "index_reduce_prod", "index_reduce_mean"})


@pytest.mark.parametrize("name,fn,inputs", NONCONTIGUOUS, ids=[c[0] for c in NONCONTIGUOUS])
def test_matches_torch_noncontiguous(name, fn, inputs):
    check_op(fn, *inputs, noncontiguous=True, second_order=False)


EXACT_NONCONTIGUOUS = _pick(EXACT, {
    "signbit", "gcd", "gcd_broadcast_int32", "heaviside", "frexp", "fmax_nan", "fmax_int",
    "trace_int", "matrix_power_int", "diff_bool", "diff_int", "histc", "bincount_weights",
    "searchsorted", "searchsorted_rows", "searchsorted_rows_ties", "bucketize", "block_diag_mixed",
    "index_reduce_int_mean", "trapezoid_int_empty"})


@pytest.mark.parametrize("name,fn,inputs", EXACT_NONCONTIGUOUS,
                         ids=[c[0] for c in EXACT_NONCONTIGUOUS])
def test_exact_ops_match_torch_noncontiguous(name, fn, inputs):
    check_op(fn, *inputs, noncontiguous=True)


# (index_reduce's ties and mixed-in extremes are not smooth; dist's inf norm neither)
GRADCHECK = [c for c in SMOOTH if c[0] not in {"dist_inf", "index_reduce_amax",
                                               "index_reduce_amin_exclude"}]


@pytest.mark.parametrize("name,fn,inputs", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, fn, inputs):
    check_gradcheck(fn, *inputs)


def test_sinc_and_i0_at_zero_match_torch():
    # sinc's gradient is 0 at 0, i0's is i1(0) = 0 and its second derivative 1/2
    check_op(lambda L, a: L.sinc(a), np.array([0.0, 0.5, -1.0]), second_order=False)
    check_op(lambda L, a: L.i0(a), np.array([0.0, 0.5, -7.5, 30.0]), rtol=1e-9)


def test_fmax_fmin_gradients_follow_torch_at_ties_and_nan():
    check_op(lambda L, a, b: (L.fmax(a, b), L.fmin(a, b)),
             np.array([1.0, NAN, 0.5, -2.0, 3.0]), np.array([1.0, 2.0, NAN, -2.0, NAN]),
             second_order=False)


def test_float_power_computes_in_float64_as_torch():
    check_op(lambda L, a, b: L.float_power(a, b), data((4,), kind="pos").astype(np.float32),
             data((4,), seed=1).astype(np.float32))
    x = gf.tensor([2.0], dtype=gf.float32, requires_grad=True)
    y = gf.float_power(x, 3)
    y.backward()
    assert y.dtype == gf.float64 and x.grad.dtype == gf.float32, (y.dtype, x.grad.dtype)
    np.testing.assert_allclose(x.grad.numpy(), [12.0])


def test_frexp_returns_torch_return_type():
    m, e = gf.frexp(gf.tensor([8.0, -0.375]))
    out = gf.frexp(gf.tensor([8.0]))
    assert type(out).__name__ == "frexp" and out.mantissa.item() == 0.5 and out.exponent.item() == 4
    np.testing.assert_array_equal(m.numpy(), [0.5, -0.75])
    np.testing.assert_array_equal(e.numpy(), [4, -1])


def test_aliases_are_the_same_function():
    pairs = [("arccos", "acos"), ("arccosh", "acosh"), ("arcsin", "asin"), ("arcsinh", "asinh"),
             ("arctan", "atan"), ("arctan2", "atan2"), ("arctanh", "atanh"), ("negative", "neg"),
             ("fix", "trunc"), ("absolute", "abs"), ("multiply", "mul"), ("divide", "div"),
             ("subtract", "sub"), ("greater", "gt"), ("less", "lt"), ("greater_equal", "ge"),
             ("less_equal", "le"), ("not_equal", "ne")]
    for alias, name in pairs:
        assert getattr(gf, alias) is getattr(gf, name), alias
        assert getattr(gf.Tensor, alias) is getattr(gf.Tensor, name), alias
        assert getattr(gf.ops.elementwise, alias) is getattr(gf.ops.elementwise, name), alias
    assert gf.matrix_power.__wrapped__ is gf.linalg.matrix_power  # gf.matrix_power takes out=


def test_aliases_take_out_as_their_names_do():
    a, b = gf.tensor([1.0, -2.0]), gf.tensor([0.5, 4.0])
    out = gf.empty(2)
    assert gf.multiply(a, b, out=out) is out
    np.testing.assert_allclose(out.numpy(), [0.5, -8.0])


def test_top_level_in_place_functions_match_torch():
    torch = require_torch()
    theirs = [n for n in dir(torch) if n.endswith("_") and not n.startswith("_")
              and hasattr(torch.Tensor, n)]
    ours = [n for n in theirs if hasattr(gf.Tensor, n)]
    missing = [n for n in ours if getattr(gf, n, None) is not getattr(gf.Tensor, n)]
    assert not missing, f"Tensor methods not bound as top-level functions: {missing}"
    assert {"relu_", "abs_", "exp_", "zero_", "fill_", "clamp_", "index_put_"} <= set(ours)
    x = gf.tensor([-1.0, 2.0])
    assert gf.relu_(x) is x and x.tolist() == [0.0, 2.0]
    gf.fill_(x, 3.0)
    gf.clamp_(x, max=1.5)
    assert x.tolist() == [1.5, 1.5]


def test_is_nonzero_refuses_many_values_as_torch():
    torch = require_torch()
    assert gf.is_nonzero(gf.tensor([0.5])) is True and gf.tensor(0).is_nonzero() is False
    for values in ([1, 2], []):
        with pytest.raises(RuntimeError, match="is_nonzero") as ours:
            gf.is_nonzero(gf.tensor(values))
        with pytest.raises(RuntimeError) as theirs:
            torch.is_nonzero(torch.tensor(values))
        assert ("no values" in str(ours.value)) == ("no values" in str(theirs.value))


def test_select_is_a_view_and_narrow_copy_is_not():
    x = gf.zeros(3, 4)
    x.select(1, 2).fill_(1.0)
    x.narrow_copy(0, 0, 2).fill_(5.0)
    gf.ravel(x)[0] = 7.0
    expect = np.zeros((3, 4))
    expect[:, 2] = 1.0
    expect[0, 0] = 7.0
    np.testing.assert_array_equal(x.numpy(), expect)


def test_matrix_power_one_is_a_copy():
    a = gf.ones(2, 2)
    b = gf.matrix_power(a, 1)
    b.fill_(3.0)
    assert b is not a and a.tolist() == [[1.0, 1.0], [1.0, 1.0]]


@pytest.mark.parametrize("op,fn,args", [
    ("positive", lambda L, a: L.positive(a), [np.array([True, False])]),
    ("gcd", lambda L, a, b: L.gcd(a, b), [(3,), (3,)]),
    ("lcm", lambda L, a, b: L.lcm(a, b), [np.array([True]), np.array([True])]),
    ("nextafter", lambda L, a, b: L.nextafter(a, b), [INTS, INTS_B]),
    ("heaviside", lambda L, a, b: L.heaviside(a, b), [(3,), INTS[:3]]),
    ("heaviside", lambda L, a: L.heaviside(a, 0.5), [(3,)]),
    ("fmax", lambda L, a: L.fmax(a, 2.0), [(3,)]),
    ("frexp", lambda L, a: L.frexp(a), [INTS]),
    ("addcdiv", lambda L, a, b, c: L.addcdiv(a, b, c), [INTS, INTS, INTS_B]),
    ("addcmul", lambda L, a, b, c: L.addcmul(a, b, c), [(3,), (2, 1), (4,)]),
    ("addcdiv", lambda L, a, b, c: a.addcdiv(b, c, value=2), [(2, 3), (2, 1), (2, 2)]),
    ("float_power", lambda L: L.float_power(2, 3), []),
    ("diff", lambda L, a: L.diff(a), [np.array(1.0)]),
    ("diff", lambda L, a: L.diff(a, n=-1), [(3,)]),
    ("diff", lambda L, a: L.diff(a, dim=2), [(3, 2)]),
    ("diff", lambda L, a, p: L.diff(a, prepend=p), [(2, 3), (3,)]),
    ("select", lambda L, a: L.select(a, 0, 5), [(2, 3)]),
    ("select", lambda L, a: L.select(a, 0, 0), [np.array(1.0)]),
    ("select", lambda L, a: L.select(a, 2, 0), [(2, 3)]),
    ("narrow_copy", lambda L, a: L.narrow_copy(a, 0, 1, 5), [(3,)]),
    ("trace", lambda L, a: L.trace(a), [(3,)]),
    ("trace", lambda L, a: L.trace(a), [(2, 2, 2)]),
    ("trace", lambda L, a: L.trace(a), [np.array([[True, False], [False, True]])]),
    ("matrix_power", lambda L, a: L.matrix_power(a, 2), [(2, 3)]),
    ("matrix_power", lambda L, a: L.matrix_power(a, 2), [(3,)]),
    ("matrix_power", lambda L, a: L.linalg.matrix_power(a, 2.0), [(2, 2)]),
    ("inv", lambda L, a: L.matrix_power(a, -1), [np.array([[1, 2], [3, 4]])]),
    ("dist", lambda L, a, b: L.dist(a, b), [INTS, INTS_B]),
    ("dist", lambda L, a, b: L.dist(a, b), [(2,), (3,)]),
    ("histc", lambda L, a: L.histc(a, bins=3), [INTS]),
    ("histc", lambda L, a: L.histc(a, bins=0), [(3,)]),
    ("histc", lambda L, a: L.histc(a, bins=3, min=3, max=1), [(3,)]),
    ("histc", lambda L, a: L.histc(a, bins=3), [np.array([1.0, INF])]),
    ("bincount", lambda L, a: L.bincount(a), [np.array([1, -2, 2])]),
    ("bincount", lambda L, a: L.bincount(a), [np.array([[1, 2]])]),
    ("bincount", lambda L, a: L.bincount(a), [(3,)]),
    ("bincount", lambda L, a: L.bincount(a), [np.array([True, False])]),
    ("bincount", lambda L, a, w: L.bincount(a, w), [np.array([1, 2]), (3,)]),
    ("bincount", lambda L, a: L.bincount(a, minlength=-1), [np.array([1, 2])]),
    ("searchsorted", lambda L, s, v: L.searchsorted(s, v, side="left", right=True),
     [SORTED, (2,)]),
    ("searchsorted", lambda L, s, v: L.searchsorted(s, v, side="middle"), [SORTED, (2,)]),
    ("searchsorted", lambda L, s, v: L.searchsorted(s, v), [SORTED_ROWS, (2, 2, 3)]),
    ("searchsorted", lambda L, s, v: L.searchsorted(s, v), [SORTED_ROWS, (4,)]),
    ("searchsorted", lambda L, s, v: L.searchsorted(s, v), [np.array(1.0), (4,)]),
    ("searchsorted", lambda L, s: L.searchsorted(s, 1.0), [SORTED_ROWS]),
    ("searchsorted", lambda L, s, v, k: L.searchsorted(s, v, sorter=k),
     [SORTED[:3], (2,), np.array([0, 1])]),
    ("searchsorted", lambda L, s, v, k: L.searchsorted(s, v, sorter=k),
     [SORTED[:3], (2,), np.array([0, 1, 5])]),
    ("bucketize", lambda L, v, b: L.bucketize(v, b), [(3,), SORTED_ROWS]),
    ("combinations", lambda L, a: L.combinations(a), [(3, 1)]),
    ("combinations", lambda L, a: L.combinations(a, r=-1), [(3,)]),
    ("cartesian_prod", lambda L, a, b: L.cartesian_prod(a, b), [(3, 1), (2,)]),
    ("meshgrid", lambda L, a, b: L.cartesian_prod(a, b), [(3,), INTS]),
    ("tril_indices", lambda L: L.tril_indices(-1, 4), []),
    ("triu_indices", lambda L: L.triu_indices(3, -2), []),
    ("triu_indices", lambda L: L.triu_indices(3, 3, dtype=L.float32), []),
    ("block_diag", lambda L, a: L.block_diag(a), [(2, 2, 2)]),
    ("index_reduce", lambda L, a, s, i: L.index_reduce(a, 0, i, s, "sum"),
     [(3, 2), (2, 2), np.array([0, 1])]),
    ("index_reduce", lambda L, a, s, i: L.index_reduce(a, 0, i, s, "amax"),
     [(3, 2), (3, 2), np.array([0, 1])]),
    ("index_reduce", lambda L, a, s, i: L.index_reduce(a, 0, i, s, "amax"),
     [(3, 2), (2, 2), np.array([0.0, 1.0])]),
    ("index_reduce", lambda L, a, s, i: L.index_reduce(a, 0, i, s, "amax"),
     [(3, 2), (2, 2), np.array([[0, 1]])]),
    ("index_reduce", lambda L, a, s, i: L.index_reduce(a, 0, i, s, "amax"),
     [(3, 2), (3, 2), np.array([0, 2, 5])]),
    ("index_reduce", lambda L, a, s, i: L.index_reduce(a.float(), 0, i, s, "amin"),
     [(3, 2), (2, 2), np.array([0, 1])]),
    ("index_reduce", lambda L, a, s, i: L.index_reduce(a, 0, i, s, "prod"),
     [(3, 2), (2, 3), np.array([0, 1])]),
    ("trapezoid", lambda L, y: L.trapezoid(y), [np.array(1.0)]),
    ("trapezoid", lambda L, y, x: L.trapezoid(y, x), [(3, 4), (3,)]),
    ("trapezoid", lambda L, y: L.trapezoid(y, dim=2), [(3, 4)]),
    ("cumulative_trapezoid", lambda L, y, x: L.cumulative_trapezoid(y, x, dim=0),
     [(3, 4), (2,)]),
    ("is_nonzero", lambda L, a: L.is_nonzero(a), [(2,)]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_call_raises_like_torch(op, fn, args):
    with np.errstate(all="ignore"):
        check_op_raises(fn, *args, op=op)


CUPY = {  # name -> call on (x float, i int) tensors, for the CuPy path
    "arccos": lambda x, i: gf.arccos(x / 4), "multiply": lambda x, i: gf.multiply(x, i),
    "rsub": lambda x, i: gf.rsub(x, 2.0, alpha=3), "clamp_min": lambda x, i: x.clamp_min(0.3),
    "clamp_max": lambda x, i: gf.clamp_max(x, i), "deg2rad": lambda x, i: gf.deg2rad(x),
    "rad2deg": lambda x, i: x.rad2deg(), "sinc": lambda x, i: gf.sinc(x * (i != 0)),
    "i0": lambda x, i: gf.i0(x * 4), "float_power": lambda x, i: gf.float_power(x.abs(), i),
    "ldexp": lambda x, i: gf.ldexp(x, i % 4), "fmax": lambda x, i: gf.fmax(x, x.t().t() * -1),
    "fmin": lambda x, i: gf.fmin(x / 0.0, x), "addcmul": lambda x, i: gf.addcmul(x, x, x, value=2),
    "addcdiv": lambda x, i: x.addcdiv(x, x.abs() + 1), "frexp": lambda x, i: gf.frexp(x * 9)[0],
    "frexp_exponent": lambda x, i: gf.frexp(x * 9).exponent, "signbit": lambda x, i: gf.signbit(x),
    "gcd": lambda x, i: gf.gcd(i, i + 4), "lcm": lambda x, i: gf.lcm(i, i - 3),
    "heaviside": lambda x, i: gf.heaviside(x - 0.5, x), "nextafter": lambda x, i:
    gf.nextafter(x, x * 0), "positive": lambda x, i: gf.positive(x) * 2,
    "true_divide": lambda x, i: gf.true_divide(i, 4), "diff": lambda x, i: gf.diff(x, n=2),
    "diff_prepend": lambda x, i: x.diff(dim=0, prepend=x[:1]),
    "trace": lambda x, i: x[:, :2].trace(),
    "matrix_power": lambda x, i: gf.matrix_power(x[:, :2], 3),
    "matrix_power_inverse": lambda x, i: gf.linalg.matrix_power(x[:, 1:], -2),
    "dist": lambda x, i: gf.dist(x, x.flip(0), 3), "ravel": lambda x, i: gf.ravel(x.t()),
    "select": lambda x, i: x.select(1, -1), "narrow_copy": lambda x, i: gf.narrow_copy(x, 1, 1, 2),
    "index_reduce": lambda x, i: x.index_reduce(1, gf.tensor([2, 0, 2], device=x.device),
                                                x * 3, "prod"),
    "index_reduce_amax": lambda x, i: gf.index_reduce(x, 0, gf.tensor([1, 1], device=x.device),
                                                      x.flip(1), "amax", include_self=False),
    "trapezoid": lambda x, i: gf.trapezoid(x, i[0].float().cumsum(0)),
    "cumulative_trapezoid": lambda x, i: gf.cumulative_trapezoid(x, dx=0.5, dim=0),
    "histc": lambda x, i: gf.histc(x, bins=4), "bincount": lambda x, i: gf.bincount(i.abs()[0]),
    "bincount_weights": lambda x, i: gf.bincount(i.abs().ravel(), x.ravel(), minlength=12),
    "searchsorted": lambda x, i: gf.searchsorted(x.sort().values, x.t().contiguous().t()),
    "searchsorted_1d": lambda x, i: gf.searchsorted(i[0].sort().values, i, right=True),
    "bucketize": lambda x, i: gf.bucketize(x, gf.tensor([-1.0, 0.3, 2.0], device=x.device)),
    "cartesian_prod": lambda x, i: gf.cartesian_prod(x[0], x[1]),
    "combinations": lambda x, i: gf.combinations(x[1], r=2, with_replacement=True),
    "tril_indices": lambda x, i: gf.tril_indices(3, 4, device=x.device) + i[0, 0],
    "triu_indices": lambda x, i: gf.triu_indices(4, 3, 1, device=x.device) * 1,
    "block_diag": lambda x, i: gf.block_diag(x, x[0], x[0, 0]),
}


@pytest.mark.parametrize("name", CUPY)
def test_runs_on_the_cupy_path(fake_cuda, name):
    """Each op runs on CuPy arrays (the fake's NumPy-backed stand-in) and equals its CPU
    result; differentiable ones give the CPU's gradient too."""
    with np.errstate(all="ignore"):
        check_cupy_path(CUPY[name], X_CUPY, I_CUPY)
