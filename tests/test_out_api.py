"""torch's `out=` on gradflow's public functions (gradflow/ops/out.py), against PyTorch: the
values written, the tensor returned, resizing and its warning, the dtype rules (cast, exact,
computed in out's dtype), the refusal of autograd, views as out and the CuPy path."""
import re
import warnings

import numpy as np
import pytest
from helpers import data, require_torch, to_numpy

import gradflow as gf
from gradflow.ops.out import OUT_FUNCTIONS

torch = require_torch()

ANY, POS, UNIT = data(3, 4), data(3, 4, kind="pos"), data(3, 4, kind="unit")
ROW = data(4, seed=1)
F32 = ANY.astype(np.float32)
INTS = np.array([[3, 0, -2, 7], [1, 4, 2, -5], [6, -1, 0, 2]])
SHIFTS = np.array([[1, 0, 2, 3], [2, 1, 0, 1], [3, 2, 1, 0]])
INFS = np.array([[np.inf, -np.inf, 0.5], [1.0, -np.inf, np.nan]])

# (id, fn(lib, *tensors, **out), inputs): one or more cases per name of OUT_FUNCTIONS
UNARY = {"abs": ANY, "acos": UNIT, "acosh": POS + 1, "asin": UNIT, "asinh": ANY, "atan": ANY,
         "atanh": UNIT, "ceil": ANY, "cos": ANY, "cosh": ANY, "erf": ANY, "erfc": ANY,
         "exp": ANY, "exp2": ANY, "expm1": ANY, "floor": ANY, "frac": ANY, "log": POS,
         "log10": POS, "log1p": POS, "log2": POS, "logical_not": INTS, "logit": UNIT * 0.5 + 0.5,
         "nan_to_num": INFS, "neg": ANY, "reciprocal": POS, "round": ANY * 3, "rsqrt": POS,
         "sgn": ANY, "sigmoid": ANY, "sign": ANY, "sin": ANY, "sinh": ANY, "sqrt": POS,
         "square": ANY, "tan": UNIT, "tanh": ANY, "trunc": ANY * 3, "isneginf": INFS,
         "isposinf": INFS, "bitwise_not": INTS}
BINARY = {"add": (ANY, ROW), "sub": (ANY, ROW), "mul": (ANY, ROW), "div": (ANY, POS),
          "atan2": (ANY, ROW), "copysign": (ANY, ROW), "eq": (ANY, ANY), "ne": (ANY, ROW),
          "lt": (ANY, ROW), "le": (ANY, ROW), "gt": (ANY, ROW), "ge": (ANY, ROW),
          "floor_divide": (ANY, POS), "fmod": (ANY, POS), "hypot": (ANY, ROW),
          "logaddexp": (ANY, ROW), "logaddexp2": (ANY, ROW), "logical_and": (ANY, INTS),
          "logical_or": (INTS, ROW), "logical_xor": (ANY, INTS), "maximum": (ANY, ROW),
          "minimum": (ANY, ROW), "pow": (POS, ROW), "remainder": (ANY, POS), "xlogy": (POS, ROW),
          "bitwise_and": (INTS, SHIFTS), "bitwise_or": (INTS, SHIFTS),
          "bitwise_xor": (INTS, SHIFTS), "bitwise_left_shift": (INTS, SHIFTS),
          "bitwise_right_shift": (INTS, SHIFTS)}
REDUCTIONS = ["amax", "amin", "argmax", "argmin", "logsumexp", "mean", "nanmean", "nansum",
              "prod", "std", "sum", "var", "cumprod", "cumsum", "logcumsumexp", "cummax",
              "cummin"]

CASES = (
    [(f"{n}", lambda L, a, n=n, **o: getattr(L, n)(a, **o), [x]) for n, x in UNARY.items()]
    + [(f"{n}", lambda L, a, b, n=n, **o: getattr(L, n)(a, b, **o), list(x))
       for n, x in BINARY.items()]
    + [(f"{n}_dim", lambda L, a, n=n, **o: getattr(L, n)(a, 1, **o), [ANY]) for n in REDUCTIONS]
    + [
        ("add_0d", lambda L, a, b, **o: L.add(a, b, **o), [data(()), ANY]),
        ("sub_number", lambda L, a, **o: L.sub(a, 1.5, **o), [INTS]),
        ("mul_size_1", lambda L, a, b, **o: L.mul(a, b, **o), [data(1), data(5)]),
        ("div_floor", lambda L, a, b, **o: L.div(a, b, rounding_mode="floor", **o),
         [INTS, SHIFTS + 1]),
        ("clamp", lambda L, a, **o: L.clamp(a, -0.5, 0.5, **o), [ANY]),
        ("clamp_min", lambda L, a, **o: L.clamp(a, min=0.1, **o), [ANY]),
        ("lerp", lambda L, a, b, **o: L.lerp(a, b, 0.3, **o), [ANY, ROW]),
        ("where", lambda L, a, b, **o: L.where(a > 0, a, b, **o), [ANY, ROW]),
        ("matmul", lambda L, a, b, **o: L.matmul(a, b, **o), [data(3, 5), data(5, 2)]),
        ("matmul_vec", lambda L, a, b, **o: L.matmul(a, b, **o), [data(7), data(7)]),
        ("cat", lambda L, a, b, **o: L.cat([a, b], -1, **o), [ANY, data(3, 1)]),
        ("stack", lambda L, a, b, **o: L.stack((a, b), 1, **o), [ANY, POS]),
        ("all", lambda L, a, **o: L.all(a, 1, **o), [INTS]),
        ("any_keepdim", lambda L, a, **o: L.any(a, 0, keepdim=True, **o), [INTS]),
        ("aminmax", lambda L, a, **o: L.aminmax(a, dim=0, **o), [ANY]),
        ("max_all", lambda L, a, **o: L.max(a, **o), [ANY]),
        ("max_dim", lambda L, a, **o: L.max(a, -1, **o), [data(7, 3)]),
        ("max_binary", lambda L, a, b, **o: L.max(a, b, **o), [ANY, ROW]),
        ("min_dim_keepdim", lambda L, a, **o: L.min(a, 0, keepdim=True, **o), [ANY]),
        ("min_all", lambda L, a, **o: L.min(a, **o), [data(1)]),
        ("sum_dims", lambda L, a, **o: L.sum(a, (0, -1), **o), [data(2, 3, 5)]),
        ("mean_0d", lambda L, a, **o: L.mean(a, 0, **o), [data(())]),
        ("std_correction", lambda L, a, **o: L.std(a, 0, correction=0, **o), [ANY]),
        ("var_keepdim", lambda L, a, **o: L.var(a, 1, keepdim=True, **o), [ANY]),
        ("argmax_all", lambda L, a, **o: L.argmax(a, **o), [ANY]),
        ("cumsum_transposed", lambda L, a, **o: L.cumsum(a.t(), 0, **o), [data(5, 3)]),
        ("exp_transposed", lambda L, a, **o: L.exp(a.t(), **o), [data(2, 7)]),
    ])
SQUARE = data(3, 3)
SPD = SQUARE @ SQUARE.T + 3 * np.eye(3)
IDX = np.array([[0, 3], [2, 0], [1, 1]])
ROWS = np.array([2, 0])
VEC = data(3, seed=4)
TIES = np.round(ANY * 2) / 2  # repeated values, for mode
CASES += [  # the sorting, layout, indexing and linear-algebra functions
    ("erfinv", lambda L, a, **o: L.erfinv(a, **o), [UNIT]),
    ("sort", lambda L, a, **o: L.sort(a, 1, **o), [ANY]),
    ("msort", lambda L, a, **o: L.msort(a, **o), [ANY]),
    ("topk", lambda L, a, **o: L.topk(a, 2, **o), [ANY]),
    ("kthvalue", lambda L, a, **o: L.kthvalue(a, 2, 0, **o), [ANY]),
    ("median", lambda L, a, **o: L.median(a, 1, **o), [ANY]),
    ("nanmedian", lambda L, a, **o: L.nanmedian(a, 0, **o), [ANY]),
    ("mode", lambda L, a, **o: L.mode(a, 1, **o), [TIES]),
    ("diag", lambda L, a, **o: L.diag(a, **o), [ANY]),
    ("tril", lambda L, a, **o: L.tril(a, **o), [ANY]),
    ("triu", lambda L, a, **o: L.triu(a, 1, **o), [ANY]),
    ("column_stack", lambda L, a, b, **o: L.column_stack([a, b], **o), [VEC, VEC + 1]),
    ("dstack", lambda L, a, b, **o: L.dstack([a, b], **o), [ANY, POS]),
    ("hstack", lambda L, a, b, **o: L.hstack([a, b], **o), [ANY, POS]),
    ("vstack", lambda L, a, b, **o: L.vstack([a, b], **o), [ANY, ROW]),
    ("row_stack", lambda L, a, b, **o: L.row_stack([a, b], **o), [ANY, ROW]),
    ("gather", lambda L, a, i, **o: L.gather(a, 1, i, **o), [ANY, IDX]),
    ("index_select", lambda L, a, i, **o: L.index_select(a, 0, i, **o), [ANY, ROWS]),
    ("masked_select", lambda L, a, **o: L.masked_select(a, a > 0, **o), [ANY]),
    ("nonzero", lambda L, a, **o: L.nonzero(a > 0, **o), [ANY]),
    ("take", lambda L, a, i, **o: L.take(a, i, **o), [ANY, IDX]),
    ("take_along_dim", lambda L, a, i, **o: L.take_along_dim(a, i, 1, **o), [ANY, IDX]),
    ("index_add", lambda L, a, i, b, **o: L.index_add(a, 0, i, b, **o), [ANY, ROWS, ANY[:2]]),
    ("index_copy", lambda L, a, i, b, **o: L.index_copy(a, 0, i, b, **o), [ANY, ROWS, POS[:2]]),
    ("scatter", lambda L, a, i, b, **o: L.scatter(a, 1, i, b, **o), [ANY, IDX, POS]),
    ("scatter_add", lambda L, a, i, b, **o: L.scatter_add(a, 1, i, b, **o), [ANY, IDX, POS]),
    ("scatter_reduce", lambda L, a, i, b, **o: L.scatter_reduce(a, 1, i, b, "amax", **o),
     [ANY, IDX, POS]),
    ("mm", lambda L, a, b, **o: L.mm(a, b, **o), [ANY, data(4, 2)]),
    ("bmm", lambda L, a, b, **o: L.bmm(a, b, **o), [data(2, 3, 4), data(2, 4, 5)]),
    ("mv", lambda L, a, b, **o: L.mv(a, b, **o), [ANY, ROW]),
    ("addmm", lambda L, c, a, b, **o: L.addmm(c, a, b, **o), [data(3, 2), ANY, data(4, 2)]),
    ("addbmm", lambda L, c, a, b, **o: L.addbmm(c, a, b, **o),
     [data(3, 5), data(2, 3, 4), data(2, 4, 5)]),
    ("baddbmm", lambda L, c, a, b, **o: L.baddbmm(c, a, b, **o),
     [data(2, 3, 5), data(2, 3, 4), data(2, 4, 5)]),
    ("addmv", lambda L, c, a, b, **o: L.addmv(c, a, b, **o), [VEC, ANY, ROW]),
    ("dot", lambda L, a, b, **o: L.dot(a, b, **o), [ROW, ROW + 1]),
    ("vdot", lambda L, a, b, **o: L.vdot(a, b, **o), [ROW, ROW + 1]),
    ("inner", lambda L, a, b, **o: L.inner(a, b, **o), [ANY, data(2, 4)]),
    ("outer", lambda L, a, b, **o: L.outer(a, b, **o), [VEC, ROW]),
    ("ger", lambda L, a, b, **o: L.ger(a, b, **o), [VEC, ROW]),
    ("kron", lambda L, a, b, **o: L.kron(a, b, **o), [data(2, 3), data(3, 2)]),
    ("tensordot", lambda L, a, b, **o: L.tensordot(a, b, 1, **o), [ANY, data(4, 2)]),
    ("cross", lambda L, a, b, **o: L.cross(a, b, dim=1, **o), [SQUARE, SQUARE.T + 1]),
    ("inverse", lambda L, a, **o: L.inverse(a, **o), [SPD]),
    ("cholesky", lambda L, a, **o: L.cholesky(a, **o), [SPD]),
    ("norm", lambda L, a, **o: L.norm(a, **o), [ANY]),
    ("qr", lambda L, a, **o: L.qr(a, **o), [np.triu(SPD)]),
    ("svd", lambda L, a, **o: L.svd(a, **o), [np.diag([3.0, 2.0, 0.5])]),
    ("slogdet", lambda L, a, **o: L.slogdet(a, **o), [SPD]),
]
EDGES = np.array([0.6, 0.9, 1.2])
CASES += [  # the aliases and further elementwise and counting functions
    ("true_divide", lambda L, a, b, **o: L.true_divide(a, b, **o), [ANY, POS]),
    ("clamp_min", lambda L, a, **o: L.clamp_min(a, 0.2, **o), [ANY]),
    ("clamp_max", lambda L, a, **o: L.clamp_max(a, 0.2, **o), [ANY]),
    ("deg2rad", lambda L, a, **o: L.deg2rad(a, **o), [ANY]),
    ("rad2deg", lambda L, a, **o: L.rad2deg(a, **o), [ANY]),
    ("sinc", lambda L, a, **o: L.sinc(a, **o), [ANY]),
    ("gcd", lambda L, a, b, **o: L.gcd(a, b, **o), [INTS, SHIFTS]),
    ("lcm", lambda L, a, b, **o: L.lcm(a, b, **o), [INTS, SHIFTS]),
    ("ldexp", lambda L, a, b, **o: L.ldexp(a, b, **o), [ANY, SHIFTS]),
    ("i0", lambda L, a, **o: L.i0(a, **o), [ANY]),
    ("float_power", lambda L, a, **o: L.float_power(a, 2, **o), [ANY]),
    ("signbit", lambda L, a, **o: L.signbit(a, **o), [ANY]),
    ("heaviside", lambda L, a, b, **o: L.heaviside(a, b, **o), [ANY, ROW]),
    ("fmax", lambda L, a, b, **o: L.fmax(a, b, **o), [INFS, np.full((2, 3), 0.5)]),
    ("fmin", lambda L, a, b, **o: L.fmin(a, b, **o), [ANY, ROW]),
    ("nextafter", lambda L, a, b, **o: L.nextafter(a, b, **o), [ANY, ROW]),
    ("addcmul", lambda L, a, b, c, **o: L.addcmul(a, b, c, value=2, **o), [ANY, POS, ROW]),
    ("addcdiv", lambda L, a, b, c, **o: L.addcdiv(a, b, c, value=2, **o), [ANY, ROW, POS]),
    ("diff", lambda L, a, **o: L.diff(a, **o), [ANY]),
    ("histc", lambda L, a, **o: L.histc(a, 5, **o), [ANY]),
    ("bucketize", lambda L, a, e, **o: L.bucketize(a, e, **o), [POS, EDGES]),
    ("searchsorted", lambda L, e, a, **o: L.searchsorted(e, a, **o), [EDGES, POS]),
    ("matrix_power", lambda L, a, **o: L.matrix_power(a, 3, **o), [SQUARE]),
    ("narrow_copy", lambda L, a, **o: L.narrow_copy(a, 1, 1, 2, **o), [ANY]),
    ("index_reduce", lambda L, a, i, b, **o: L.index_reduce(a, 0, i, b, "prod", **o),
     [ANY, ROWS, POS[:2]]),
    ("frexp", lambda L, a, **o: L.frexp(a, **o), [ANY]),
]
CASE_IDS = [c[0] for c in CASES]


def tensors(lib, arrays):
    return [gf.tensor(a) if lib is gf else torch.tensor(a) for a in arrays]


def run(lib, fn, arrays, out):
    """fn with out=...; the result and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(lib, *tensors(lib, arrays), out=out)
    return result, [str(w.message) for w in caught
                    if issubclass(w.category, UserWarning) and "resized" in str(w.message)]


def like(lib, ref, shape=None, fill=None):
    """An out tensor of torch result `ref`'s dtype, of `shape` (default: ref's)."""
    shape = tuple(ref.shape) if shape is None else shape
    dtype = getattr(gf, str(ref.dtype).replace("torch.", ""))
    arr = np.zeros(shape) if fill is None else np.full(shape, fill)
    return (gf.tensor(arr, dtype=dtype) if lib is gf
            else torch.tensor(arr, dtype=ref.dtype))


def as_outs(x):
    return tuple(x) if isinstance(x, tuple) else (x,)


def outs_for(lib, expected, shape=None, fill=None):
    made = tuple(like(lib, e, shape, fill) for e in as_outs(expected))
    return made if isinstance(expected, tuple) else made[0]


def assert_same(got, want):
    for g, w in zip(as_outs(got), as_outs(want)):
        assert tuple(g.shape) == tuple(w.shape), f"shape {tuple(g.shape)} != {tuple(w.shape)}"
        assert str(g.dtype) == str(w.dtype).replace("torch.", ""), f"{g.dtype} vs {w.dtype}"
        np.testing.assert_allclose(to_numpy(g), to_numpy(w), rtol=1e-6, atol=1e-12,
                                   err_msg="values written into out differ from PyTorch")


# Where torch's resize warnings differ from its own rule (one per non-empty out resized, with
# its shape and the result's), which gradflow follows: {name: reason}.
TORCH_WARNS_OTHERWISE = {
    "kthvalue": "torch names the shapes with the reduced dimension kept (its inner keepdim)",
    "mode": "torch names the shapes with the reduced dimension kept (its inner keepdim)",
    "addbmm": "torch resizes addbmm's out silently",
    "narrow_copy": "torch resizes narrow_copy's out silently",
}


def resize_sentence(message: str) -> str:
    """The resize warning's first sentence, without the op-name prefix gradflow adds."""
    text = re.sub(r"^\w+\(\): ", "", message)
    return text.split(" This behavior")[0].lower()


def test_every_out_function_is_tested_and_takes_out_in_torch():
    tested = {c if c in OUT_FUNCTIONS else
              re.sub(r"_(dim|all|binary|keepdim|0d|number|size_1|floor|min|vec|dims|"
                     r"correction|transposed|dim_keepdim)$", "", c) for c in CASE_IDS}
    assert sorted(set(OUT_FUNCTIONS) - tested) == []
    for name in OUT_FUNCTIONS:
        assert getattr(gf, name).__wrapped__ is not None, name


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_out_matches_torch(case):
    """out of the right shape: written in place and returned; a non-empty out of another
    shape: resized with torch's warning; an empty one: resized silently."""
    name, fn, arrays = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notices (ger, qr, cholesky)
        want = fn(torch, *tensors(torch, arrays))
    for shape, fill in ((None, None), ((2,), 7.0), ((0,), None)):
        gf_out, th_out = outs_for(gf, want, shape, fill), outs_for(torch, want, shape, fill)
        arrays_before = [o.array for o in as_outs(gf_out)]
        got, gf_warned = run(gf, fn, arrays, gf_out)
        ref, th_warned = run(torch, fn, arrays, th_out)
        assert all(g is o for g, o in zip(as_outs(got), as_outs(gf_out))), "out not returned"
        assert type(got).__name__ in ("Tensor", "tuple") or hasattr(got, "_fields")
        assert_same(got, ref)
        assert [o._version for o in as_outs(gf_out)] == [1] * len(as_outs(gf_out))
        n_resized = sum(1 for o in as_outs(th_out) if o.numel()) if shape == (2,) else 0
        assert len(gf_warned) == n_resized, gf_warned
        if name not in TORCH_WARNS_OTHERWISE:  # in torch's order of outputs, which may differ
            assert sorted(map(resize_sentence, gf_warned)) == \
                sorted(map(resize_sentence, th_warned))
        if shape is None:  # written into the very array, not replaced
            assert all(o.array is a for o, a in zip(as_outs(gf_out), arrays_before))


def raised(call):
    try:
        call()
    except Exception as error:  # the callers compare types
        return error
    raise AssertionError("no error raised")


def check_both_raise(call, name, text=None):
    """call(lib) raises the same type on both; gradflow's message names the op (and `text`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = raised(lambda: call(torch))
    got = raised(lambda: call(gf))
    assert isinstance(got, type(want)), f"gradflow raised {got!r}, torch {want!r}"
    assert re.search(rf"\b{name}\(\)", str(got)), f"message does not name {name}: {got}"
    if text is not None:
        assert text in str(got) and text.lower() in str(want).lower(), (str(got), str(want))
    return got


def test_result_casts_into_a_wider_out_as_torch():
    for lib_out in ((gf, gf.float64), (torch, torch.float64)):
        lib, dt = lib_out
        o = lib.zeros(3, 4, dtype=dt)
        lib.add(lib.tensor(ANY, dtype=lib.float32), 1, out=o)
        assert str(o.dtype).endswith("float64")
    o_gf, o_th = gf.zeros(3, 4), torch.zeros(3, 4)
    gf.mul(gf.tensor(INTS), 2, out=o_gf)
    torch.mul(torch.tensor(INTS), 2, out=o_th)  # an integer result into a float out
    assert_same(o_gf, o_th)
    o_gf, o_th = gf.zeros(0, dtype=gf.float64), torch.zeros(0, dtype=torch.float64)
    gf.hstack([gf.tensor(F32), gf.tensor(F32)], out=o_gf)
    torch.hstack([torch.tensor(F32), torch.tensor(F32)], out=o_th)
    assert_same(o_gf, o_th)
    o_gf, o_th = gf.zeros(3, 4, dtype=gf.int32), torch.zeros(3, 4, dtype=torch.int32)
    gf.eq(gf.tensor(INTS), 0, out=o_gf)
    torch.eq(torch.tensor(INTS), 0, out=o_th)
    assert_same(o_gf, o_th)


@pytest.mark.parametrize("call, name, text", [
    (lambda L: L.add(L.tensor(F32), 1, out=L.zeros(3, 4, dtype=L.long)), "add",
     "result type Float can't be cast to the desired output type Long"),
    (lambda L: L.div(L.tensor(INTS), 2, out=L.zeros(3, 4, dtype=L.int64)), "div",
     "result type Float can't be cast to the desired output type Long"),
    (lambda L: L.add(L.tensor(INTS), 1, out=L.zeros(3, 4, dtype=L.bool)), "add",
     "result type Long can't be cast to the desired output type Bool"),
    (lambda L: L.mean(L.tensor(F32), 0, out=L.zeros(4, dtype=L.long)), "mean",
     "result type Float can't be cast to the desired output type Long"),
    (lambda L: L.abs(L.tensor(F32), out=L.zeros(3, 4, dtype=L.float64)), "abs", None),
    (lambda L: L.neg(L.tensor(INTS), out=L.zeros(3, 4)), "neg", None),
    (lambda L: L.matmul(L.tensor(F32), L.tensor(F32).t(), out=L.zeros(3, 3, dtype=L.float64)),
     "matmul", None),
    (lambda L: L.argmax(L.tensor(ANY), 0, out=L.zeros(4)), "argmax", None),
    (lambda L: L.all(L.tensor(ANY), 0, out=L.zeros(4)), "all", None),
    (lambda L: L.max(L.tensor(F32), 0, out=(L.zeros(4, dtype=L.float64),
                                            L.zeros(4, dtype=L.long))), "max", None),
    (lambda L: L.sum(L.tensor(ANY), 0, dtype=L.float64, out=L.zeros(4)), "sum", None),
    (lambda L: L.mm(L.tensor(F32), L.tensor(F32).t(), out=L.zeros(3, 3, dtype=L.float64)),
     "mm", None),
    (lambda L: L.sort(L.tensor(F32), out=(L.zeros(0), L.zeros(0))), "sort", None),
    (lambda L: L.gather(L.tensor(F32), 1, L.tensor(IDX), out=L.zeros(0, dtype=L.float64)),
     "gather", None),
])
def test_out_dtype_errors_match_torch(call, name, text):
    check_both_raise(call, name, text)


def test_reductions_compute_in_the_dtype_of_out_as_torch():
    x = np.array([[0.6, 0.6], [0.7, 0.9]])
    for name in ("sum", "prod", "cumsum", "cumprod"):
        outs = {}
        for lib in (gf, torch):
            o = lib.zeros(0, dtype=lib.long)
            getattr(lib, name)(lib.tensor(x), 0, out=o)
            outs[lib] = o
        assert_same(outs[gf], outs[torch])


@pytest.mark.parametrize("name, call", [
    ("exp", lambda L, a: L.exp(a, out=L.zeros(3))),
    ("add", lambda L, a: L.add(a.detach(), 1, out=L.zeros(3, requires_grad=True))),
    ("cat", lambda L, a: L.cat([a.detach(), a], out=L.zeros(6))),
    ("max", lambda L, a: L.max(a, 0, out=(L.zeros(0), L.zeros(0, dtype=L.long)))),
], ids=["input", "out", "inside_a_list", "tuple_out"])
def test_out_refuses_autograd_as_torch(name, call):
    def with_leaf(L):
        return call(L, L.tensor([0.5, 1.0, 2.0], requires_grad=True))
    check_both_raise(with_leaf, name, "functions with out=... arguments don't support "
                                      "automatic differentiation, but one of the arguments "
                                      "requires grad.")
    for lib in (gf, torch):  # under no_grad it is allowed
        with lib.no_grad():
            with_leaf(lib)


def test_out_rejects_what_is_not_a_tensor_as_torch():
    check_both_raise(lambda L: L.exp(L.tensor(ANY), out="x"), "exp")
    check_both_raise(lambda L: L.max(L.tensor(ANY), 0, out=L.zeros(4)), "max")


def test_out_may_be_a_view_and_the_base_sees_the_values():
    for lib in (gf, torch):
        base = lib.zeros(4, 3)
        lib.add(lib.tensor(ANY), 1, out=base.t())
        row = lib.zeros(3, 4)
        lib.exp(lib.tensor(ANY[0]), out=row[1])
        np.testing.assert_allclose(to_numpy(base), ANY.T + 1)
        np.testing.assert_allclose(to_numpy(row)[1], np.exp(ANY[0]))
        np.testing.assert_allclose(to_numpy(row)[[0, 2]], 0.0)


def test_out_may_alias_an_input():
    for lib in (gf, torch):
        x = lib.tensor(ANY)
        assert lib.mul(x, 2, out=x) is x
        np.testing.assert_allclose(to_numpy(x), ANY * 2)


def test_public_functions_wrap_the_ops_and_methods_stay_unwrapped():
    """The Tensor operators call the ops module, not the out= wrapper."""
    assert gf.add.__wrapped__ is gf.ops.elementwise.add
    assert gf.clip is gf.clamp and gf.concat is gf.cat
    x = gf.tensor(ANY, requires_grad=True)
    (gf.add(x, 1) * 2).sum().backward()  # without out=, autograd works as before
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_out_on_the_cupy_path(fake_cuda):
    x = gf.tensor(F32, device="cuda")
    o = gf.empty(0, device="cuda")
    assert gf.exp(x, out=o) is o
    assert o.device.type == "cuda"
    np.testing.assert_allclose(o.cpu().numpy(), np.exp(ANY).astype(np.float32), rtol=1e-6)
    same = gf.zeros(3, 4, device="cuda")
    gf.add(x, x, out=same)
    np.testing.assert_allclose(same.cpu().numpy(), (2 * ANY).astype(np.float32), rtol=1e-6)
    v, i = gf.max(x, 1, out=(gf.empty(0, device="cuda"), gf.empty(0, dtype=gf.long,
                                                                  device="cuda")))
    assert v.device.type == i.device.type == "cuda"
    np.testing.assert_array_equal(i.cpu().numpy(), ANY.argmax(1))
    with pytest.raises(RuntimeError, match=r"exp\(\): expected out tensor to have device"):
        gf.exp(x, out=gf.empty(3, 4))
