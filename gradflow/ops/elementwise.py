"""Elementwise ops with NumPy broadcasting: arithmetic, math functions, comparisons, where,
clamp, maximum/minimum, casts and device moves.

Each differentiable op saves what its backward needs and writes that backward with tensor
ops, so gradients of gradients work. Broadcast inputs get their gradient summed back to their
own shape by `_grad_for`. The one-input math functions (exp, log, floor, ...) are rows of one
table, each a formula and its derivative (`_unary`), as are the two-operand ones (atan2, fmod,
..., `_binary`) and the ops without a gradient (`_nondiff`).
"""
from __future__ import annotations

import math
import typing
from typing import Any, Callable

import numpy as np

from .. import dtypes
from ..autograd.function import Op
from ..backend import array_module, move_array
from ..creation import zeros_like
from ..cuda import checks
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .shape import sum_to
from .util import check_operand, operand_arrays, result_dtype


def _meta(v: Any):
    """What `_grad_for` needs of an operand: its array's shape and dtype (None for a number)."""
    return (v.array.shape, v.array.dtype) if isinstance(v, Tensor) else None


def _grad_for(g: Tensor | None, meta) -> Tensor | None:
    """Reduce a broadcast gradient to an input's shape and dtype (None for numbers)."""
    if g is None or meta is None:
        return None
    shape, dtype = meta
    g = sum_to(g, shape)
    return g if g.array.dtype == dtype else cast(g, dtype=dtype)


def _save_operands(ctx, *operands: Any, keep: tuple | None = None) -> None:
    """Save the tensor operands for backward (those that `keep` marks True, when given: the
    others `_operands` gives as None), and keep the numbers and every operand's meta."""
    saved, numbers, metas = [], [], []
    for i, v in enumerate(operands):
        tensor = isinstance(v, Tensor)
        saved.append(v if tensor and (keep is None or keep[i]) else None)
        numbers.append(None if tensor else v)
        metas.append(_meta(v))
    ctx.save_for_backward(*saved)
    ctx.numbers, ctx.metas = numbers, metas


def _operands(ctx) -> tuple:
    return tuple([n if t is None else t for t, n in zip(ctx.saved_tensors, ctx.numbers)])


def _is_bool(v: Any) -> bool:
    """A bool tensor or a bool number."""
    if isinstance(v, Tensor):
        return v.array.dtype == dtypes.bool
    return isinstance(v, (bool, np.bool_))


def _float_array(x: Tensor):
    """The array to feed a floating-point function (ints become the default float)."""
    return x.array if x.dtype.kind == "f" else x.array.astype(dtypes.get_default_dtype())


# -- arithmetic -------------------------------------------------------------------------------
class Add(Op):
    op_name = "add"

    @staticmethod
    def forward(ctx, a, b):
        xa, xb = operand_arrays("add", a, b)
        ctx.metas = (_meta(a), _meta(b))
        return xa + xb

    @staticmethod
    def backward(ctx, g):
        return _grad_for(g, ctx.metas[0]), _grad_for(g, ctx.metas[1])


class Sub(Op):
    op_name = "sub"

    @staticmethod
    def forward(ctx, a, b):
        if _is_bool(a) or _is_bool(b):
            raise TypeError("sub: subtraction, the `-` operator, with a bool tensor or number "
                            "is not supported (as in PyTorch); use `~` or logical_not to invert "
                            "a mask, or cast it with .float()")
        xa, xb = operand_arrays("sub", a, b)
        ctx.metas = (_meta(a), _meta(b))
        return xa - xb

    @staticmethod
    def backward(ctx, g):
        return _grad_for(g, ctx.metas[0]), _grad_for(-g, ctx.metas[1])


class Mul(Op):
    op_name = "mul"

    @staticmethod
    def forward(ctx, a, b):
        xa, xb = operand_arrays("mul", a, b)
        # NOTE: each operand's gradient is g times the other operand, so an operand is kept
        # only for the other's gradient (as torch's MulBackward0): nothing, in a backward pass
        # run without create_graph, and not the tensor in `x * 2`.
        need_a, need_b = ctx.needs_input_grad
        _save_operands(ctx, a, b, keep=(need_b, need_a))
        return xa * xb

    @staticmethod
    def backward(ctx, g):
        a, b = _operands(ctx)
        ga = _grad_for(g * b, ctx.metas[0]) if ctx.needs_input_grad[0] else None
        gb = _grad_for(g * a, ctx.metas[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Op):
    op_name = "div"

    @staticmethod
    def forward(ctx, a, b):
        dt = result_dtype(a, b)
        if dt.kind != "f":
            dt = dtypes.get_default_dtype()
        xa, xb = operand_arrays("div", a, b, dtype=dt)
        # NOTE: both gradients need the divisor; only the divisor's needs the dividend.
        need_a, need_b = ctx.needs_input_grad
        _save_operands(ctx, a, b, keep=(need_b, need_a or need_b))
        return xa / xb

    @staticmethod
    def backward(ctx, g):
        a, b = _operands(ctx)
        ga = _grad_for(g / b, ctx.metas[0]) if ctx.needs_input_grad[0] else None
        gb = _grad_for(-g * a / (b * b), ctx.metas[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


def _log(v):
    """log of a tensor or a number; a number's log is -inf at 0 and NaN below (as torch's
    log), so `0 ** x` and `(-2) ** x` get torch's gradients rather than a math domain error."""
    if isinstance(v, Tensor):
        return log(v)
    return math.log(v) if v > 0 else -math.inf if v == 0 else math.nan


class Pow(Op):
    op_name = "pow"

    @staticmethod
    def forward(ctx, a, b):
        xa, xb = operand_arrays("pow", a, b)
        _save_operands(ctx, a, b)
        if getattr(xa, "dtype", np.dtype(float)).kind in "iub" and not isinstance(b, Tensor) \
                and b < 0:
            raise RuntimeError(f"pow: integers to negative integer powers are not allowed "
                               f"(base dtype {xa.dtype}, exponent {b})")
        return xa ** xb

    @staticmethod
    def backward(ctx, g):
        a, b = _operands(ctx)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            if isinstance(b, Tensor):
                ga = where(b == 0, 0.0, g * b * a ** (b - 1))
            else:
                ga = g * 0.0 if b == 0 else g * b * a ** (b - 1)
            ga = _grad_for(ga, ctx.metas[0])
        if ctx.needs_input_grad[1]:
            term = g * a ** b * _log(a)
            if isinstance(a, Tensor):
                term = where((a == 0) & (b >= 0), 0.0, term)
            elif a == 0:
                term = where(b >= 0, 0.0, term)
            gb = _grad_for(term, ctx.metas[1])
        return ga, gb


class Neg(Op):
    op_name = "neg"

    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind == "b":
            raise TypeError("neg: negation of a bool tensor is not supported; use ~ or "
                            "logical_not() instead")
        return -x.array

    @staticmethod
    def backward(ctx, g):
        return -g


# -- math functions ---------------------------------------------------------------------------
class Unary(Op):
    """A one-input math function, one row of the table below: `function(xp, array)` is its
    value and `derivative(g, saved)` its backward, from the input x or, for the rows marked
    `of_output`, from the output y (saved instead of x). Integer inputs become the default
    float, except where `keeps_dtype` (abs, relu). Keyword parameters (round's decimals) go
    to `function`."""

    keeps_dtype = False

    @classmethod
    def forward(cls, ctx, x, **params):
        if not cls.saves_outputs and ctx.needs_input_grad[0]:
            ctx.save_for_backward(x)
        return cls.function(x._xp, x.array if cls.keeps_dtype else _float_array(x), **params)

    @classmethod
    def backward(cls, ctx, g):
        saved, = ctx.outputs if cls.saves_outputs else ctx.saved_tensors
        return cls.derivative(g, saved)


def _unary(name: str, function: Callable, derivative: Callable, of_output: bool = False,
           keeps_dtype: bool = False) -> Callable[..., Tensor]:
    """One row: a `Unary` op class named like the function (`Exp`, as anomaly reports show
    it), returned as the function users call."""
    op = typing.cast("type[Unary]", type(name.capitalize(), (Unary,), {  # a subclass, by its bases
        "op_name": name, "function": staticmethod(function),
        "derivative": staticmethod(derivative), "saves_outputs": of_output,
        "keeps_dtype": keeps_dtype}))
    return op.apply


def _sigmoid_array(xp, a):
    # NOTE: exp(-log(1 + exp(-x))) never overflows, for logits of either sign.
    return xp.exp(-xp.logaddexp(a.dtype.type(0), -a))


def _erfc_of_abs(xp, x):
    """erfc(|x|) to a relative error below 1.2e-7 (the Chebyshev fit in Numerical Recipes),
    in plain array arithmetic so NumPy and CuPy share it."""
    z = xp.abs(x)
    t = 1 / (1 + 0.5 * z)
    poly = (-1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    return t * xp.exp(-z * z + poly)


def _erf_array(xp, x):
    erfc = _erfc_of_abs(xp, x)
    return xp.where(x >= 0, 1 - erfc, erfc - 1).astype(x.dtype, copy=False)


def _erfc_array(xp, x):
    erfc = _erfc_of_abs(xp, x)
    return xp.where(x >= 0, erfc, 2 - erfc).astype(x.dtype, copy=False)


# Giles' double-precision erfinv ("Approximating the erfinv function", GPU Computing Gems Jade
# Edition, 2011): polynomials in w = -log(1 - x^2), highest power first, one per range of w.
_ERFINV_CENTRAL = (  # w < 6.25, in w - 3.125
    -3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
    1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
    6.6376381343583238325e-15, -4.0545662729752068639e-14, -8.1519341976054721522e-14,
    2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
    1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08,
    4.2347877827932403518e-07, -1.3654692000834678645e-06, -1.3882523362786468719e-05,
    0.0001867342080340571352, -0.00074070253416626697512, -0.0060336708714301490533,
    0.24015818242558961693, 1.6536545626831027356)
_ERFINV_TAIL = (  # 6.25 <= w < 16, in sqrt(w) - 3.25
    2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
    1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
    2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
    6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
    0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
    -0.0037512085075692412107, 0.005370914553590063617, 1.0052589676941592334,
    3.0838856104922207635)
_ERFINV_FAR_TAIL = (  # w >= 16, in sqrt(w) - 5
    -2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
    -3.7894654401267369937e-09, 7.6157012080783393804e-09, -1.4960026627149240478e-08,
    2.9147953450901080826e-08, -6.7711997758452339498e-08, 2.2900482228026654717e-07,
    -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
    7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026,
    1.0103004648645343977, 4.8499064014085844221)


def _horner(coefficients: tuple, t):
    p = coefficients[0]
    for c in coefficients[1:]:
        p = p * t + c
    return p


def _erfinv_array(xp, a):
    """erfinv: CuPy's kernel (cupyx.scipy.special) on the GPU; on the CPU, Giles' polynomials
    in float64, within 1e-15 (relative) of PyTorch's on (-1, 1); +-inf at +-1, NaN outside."""
    if xp is not np:
        from cupyx.scipy.special import erfinv
        return erfinv(a).astype(a.dtype, copy=False)
    x = a.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # NOTE: (1 - x)(1 + x), not 1 - x * x, which loses the digits of x near +-1
        w = -np.log((1 - x) * (1 + x))
        root = np.sqrt(w)
        p = np.where(w < 6.25, _horner(_ERFINV_CENTRAL, w - 3.125),
                     np.where(w < 16, _horner(_ERFINV_TAIL, root - 3.25),
                              _horner(_ERFINV_FAR_TAIL, root - 5.0)))
        return np.where(np.abs(x) == 1, x * math.inf, p * x).astype(a.dtype, copy=False)


def _integral(function: Callable) -> Callable:
    """A rounding function (floor, ...) that returns integer arrays as they are, as torch."""
    return lambda xp, a: function(xp, a) if a.dtype.kind == "f" else a.copy()


def _sign_array(xp, a):
    # NOTE: torch's sign of NaN is 0 (NumPy's is NaN)
    return xp.where(xp.isnan(a), 0, xp.sign(a)) if a.dtype.kind == "f" else xp.sign(a)


def _no_grad(g, *operands):
    """The zero gradient of a step function (floor, sign, ...): torch's outputs of these
    require grad when the input does, and pass back zeros."""
    return zeros_like(g)


# name, f(x) on the array, g * f'(x) from x (or from y = f(x) where of_output)
exp = _unary("exp", lambda xp, a: xp.exp(a), lambda g, y: g * y, of_output=True)
log = _unary("log", lambda xp, a: xp.log(a), lambda g, x: g / x)
sqrt = _unary("sqrt", lambda xp, a: xp.sqrt(a), lambda g, y: g / (2 * y), of_output=True)
abs = _unary("abs", lambda xp, a: xp.abs(a), lambda g, x: g * sign(x), keeps_dtype=True)
sin = _unary("sin", lambda xp, a: xp.sin(a), lambda g, x: g * cos(x))
# (cos and sign are annotated: rows above them call them, so mypy meets them before they exist)
cos: Callable[..., Tensor] = _unary("cos", lambda xp, a: xp.cos(a), lambda g, x: -g * sin(x))
tanh = _unary("tanh", lambda xp, a: xp.tanh(a), lambda g, y: g * (1 - y * y), of_output=True)
sigmoid = _unary("sigmoid", _sigmoid_array, lambda g, y: g * y * (1 - y), of_output=True)
relu = _unary("relu", lambda xp, a: xp.maximum(a, a.dtype.type(0)), lambda g, y: g * (y > 0),
              of_output=True, keeps_dtype=True)
erf = _unary("erf", _erf_array, lambda g, x: g * (2 / math.sqrt(math.pi)) * exp(-x * x))
erfc = _unary("erfc", _erfc_array, lambda g, x: g * (-2 / math.sqrt(math.pi)) * exp(-x * x))
erfinv = _unary("erfinv", _erfinv_array,
                lambda g, y: g * (math.sqrt(math.pi) / 2) * exp(y * y), of_output=True)
tan = _unary("tan", lambda xp, a: xp.tan(a), lambda g, y: g * (1 + y * y), of_output=True)
asin = _unary("asin", lambda xp, a: xp.arcsin(a), lambda g, x: g / sqrt(1 - x * x))
acos = _unary("acos", lambda xp, a: xp.arccos(a), lambda g, x: -g / sqrt(1 - x * x))
atan = _unary("atan", lambda xp, a: xp.arctan(a), lambda g, x: g / (1 + x * x))
sinh = _unary("sinh", lambda xp, a: xp.sinh(a), lambda g, x: g * cosh(x))
cosh: Callable[..., Tensor] = _unary("cosh", lambda xp, a: xp.cosh(a),
                                     lambda g, x: g * sinh(x))
asinh = _unary("asinh", lambda xp, a: xp.arcsinh(a), lambda g, x: g / sqrt(x * x + 1))
acosh = _unary("acosh", lambda xp, a: xp.arccosh(a), lambda g, x: g / sqrt((x - 1) * (x + 1)))
atanh = _unary("atanh", lambda xp, a: xp.arctanh(a), lambda g, x: g / (1 - x * x))
log2 = _unary("log2", lambda xp, a: xp.log2(a), lambda g, x: g / (x * math.log(2)))
log10 = _unary("log10", lambda xp, a: xp.log10(a), lambda g, x: g / (x * math.log(10)))
log1p = _unary("log1p", lambda xp, a: xp.log1p(a), lambda g, x: g / (1 + x))
exp2 = _unary("exp2", lambda xp, a: xp.exp2(a), lambda g, y: g * y * math.log(2),
              of_output=True)
expm1 = _unary("expm1", lambda xp, a: xp.expm1(a), lambda g, y: g * (y + 1), of_output=True)
rsqrt = _unary("rsqrt", lambda xp, a: 1 / xp.sqrt(a), lambda g, y: -0.5 * g * y * y * y,
               of_output=True)
reciprocal = _unary("reciprocal", lambda xp, a: 1 / a, lambda g, y: -g * y * y, of_output=True)
square = _unary("square", lambda xp, a: a * a, lambda g, x: 2 * g * x, keeps_dtype=True)
_logit = _unary("logit", lambda xp, a: xp.log(a / (1 - a)),
                lambda g, x: where((x < 0) | (x > 1), math.nan, g / (x * (1 - x))))
frac = _unary("frac", lambda xp, a: a - xp.trunc(a), lambda g, x: g)
_nan_to_num = _unary("nan_to_num", lambda xp, a, **bounds: xp.nan_to_num(a, **bounds),
                     lambda g, x: g * isfinite(x), keeps_dtype=True)
# the step functions: zero gradients (`of_output` only so that no input is kept for them)
floor = _unary("floor", _integral(lambda xp, a: xp.floor(a)), _no_grad, of_output=True,
               keeps_dtype=True)
ceil = _unary("ceil", _integral(lambda xp, a: xp.ceil(a)), _no_grad, of_output=True,
              keeps_dtype=True)
trunc = _unary("trunc", _integral(lambda xp, a: xp.trunc(a)), _no_grad, of_output=True,
               keeps_dtype=True)
round = _unary("round", lambda xp, a, decimals=0: xp.round(a, decimals), _no_grad,
               of_output=True, keeps_dtype=True)
sign: Callable[..., Tensor] = _unary("sign", _sign_array, _no_grad, of_output=True,
                                     keeps_dtype=True)
sgn = _unary("sgn", _sign_array, _no_grad, of_output=True, keeps_dtype=True)


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)) (torch.logit); with `eps`, p is first clamped to [eps, 1 - eps], and
    the gradient is zero outside that range."""
    return _logit(input if eps is None else clamp(input, eps, 1 - eps))


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN and infinities replaced by numbers (torch.nan_to_num; the infinities default to the
    dtype's largest and lowest finite values); the gradient passes where the input is finite."""
    return _nan_to_num(input, nan=nan, posinf=posinf, neginf=neginf)


class Binary(Op):
    """A two-operand function, one row of the table below: `function(xp, a, b)` on arrays
    (or numbers) of the result dtype, and `grad_a(g, a, b)`, `grad_b(g, a, b)` its backward
    terms before un-broadcasting. Integer results become the default float, except where
    `keeps_dtype` (the divisions), where an integer divisor of zero raises, as in PyTorch on
    the CPU (NumPy would give 0 with a warning)."""

    keeps_dtype = False

    @classmethod
    def forward(cls, ctx, a, b):
        for v in (a, b):
            check_operand(cls.op_name, v)
        dt = result_dtype(a, b)
        if dt.kind != "f" and not cls.keeps_dtype:
            dt = dtypes.get_default_dtype()
        xa, xb = operand_arrays(cls.op_name, a, b, dtype=dt)
        if dt.kind in "iu":
            _check_divisor(cls.op_name, xb, dt)
        _save_operands(ctx, a, b)
        xp = a._xp if isinstance(a, Tensor) else b._xp
        return xp.asarray(cls.function(xp, xa, xb)).astype(dt, copy=False)

    @classmethod
    def backward(cls, ctx, g):
        a, b = _operands(ctx)
        ga = _grad_for(cls.grad_a(g, a, b), ctx.metas[0]) if ctx.needs_input_grad[0] else None
        gb = _grad_for(cls.grad_b(g, a, b), ctx.metas[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


def _check_divisor(op: str, divisor: Any, dtype: np.dtype) -> None:
    """An integer divisor of zero raises, as PyTorch does on the CPU: at once on the host, at
    the next host read on a GPU (gradflow.cuda.checks), so the division makes no sync."""
    message = f"{op}: ZeroDivisionError (an integer divisor, of dtype {dtype}, is zero)"
    if not hasattr(divisor, "any"):
        if divisor == 0:
            raise RuntimeError(message)
    elif array_module(divisor) is np:
        if (divisor == 0).any():
            raise RuntimeError(message)
    else:
        checks.defer(divisor, lambda d: (d == 0).any(), message)


def _binary(name: str, function: Callable, grad_a: Callable, grad_b: Callable,
            keeps_dtype: bool = False) -> Callable[..., Tensor]:
    """One row: a `Binary` op class named like the function, returned as the function users
    call."""
    op = typing.cast("type[Binary]", type(name.capitalize(), (Binary,), {  # a subclass
        "op_name": name, "function": staticmethod(function), "grad_a": staticmethod(grad_a),
        "grad_b": staticmethod(grad_b), "keeps_dtype": keeps_dtype}))
    return op.apply


def _xlogy_array(xp, a, b):
    # NOTE: 0 * log(y) is 0 for every y but NaN (b == b), as in torch, where 0 * log(0) alone
    # would give NaN.
    return xp.where((a == 0) & (b == b), 0, a * xp.log(b))


def _trunc_divide_array(xp, a, b):
    if getattr(a, "dtype", getattr(b, "dtype", None)).kind == "f":
        return xp.trunc(a / b)
    return (a - xp.fmod(a, b)) // b  # exact for integers, where a - fmod(a, b) is a multiple


def _atan2_scale(a, b):
    """1 / (a^2 + b^2), the factor of both atan2 gradients; 0 at the origin, as in torch."""
    d = a * a + b * b
    return where(d == 0, 0.0, 1 / d)


# name, f(a, b) on the arrays, g * df/da, g * df/db
atan2 = _binary("atan2", lambda xp, a, b: xp.arctan2(a, b),
                lambda g, a, b: g * b * _atan2_scale(a, b),
                lambda g, a, b: -g * a * _atan2_scale(a, b))
hypot: Callable[..., Tensor] = _binary("hypot", lambda xp, a, b: xp.hypot(a, b),
                                       lambda g, a, b: g * a / hypot(a, b),
                                       lambda g, a, b: g * b / hypot(a, b))
logaddexp = _binary("logaddexp", lambda xp, a, b: xp.logaddexp(a, b),
                    lambda g, a, b: g * sigmoid(a - b), lambda g, a, b: g * sigmoid(b - a))
logaddexp2 = _binary("logaddexp2", lambda xp, a, b: xp.logaddexp2(a, b),
                     lambda g, a, b: g * sigmoid((a - b) * math.log(2)),
                     lambda g, a, b: g * sigmoid((b - a) * math.log(2)))
xlogy: Callable[..., Tensor] = _binary(
    "xlogy", _xlogy_array, lambda g, a, b: where((a == 0) & (b <= 0), 0.0, xlogy(g, b)),
    lambda g, a, b: g * a / b)
# NOTE: copysign passes the gradient with the sign flip it made (none at a zero input, as in
# torch) and none to the sign's source.
copysign: Callable[..., Tensor] = _binary(
    "copysign", lambda xp, a, b: xp.copysign(a, b),
    lambda g, a, b: where(a == 0, 0.0, g * copysign(a, b) / a), _no_grad)
fmod = _binary("fmod", lambda xp, a, b: xp.fmod(a, b), lambda g, a, b: g,
               lambda g, a, b: -g * _trunc_divide(a, b), keeps_dtype=True)
remainder = _binary("remainder", lambda xp, a, b: xp.remainder(a, b), lambda g, a, b: g,
                    lambda g, a, b: -g * floor_divide(a, b), keeps_dtype=True)
# the rounding divisions: zero gradients, as torch.div with a rounding_mode (torch's own
# floor_divide has no gradient at all: its backward raises)
_trunc_divide: Callable[..., Tensor] = _binary("div", _trunc_divide_array, _no_grad, _no_grad,
                                               keeps_dtype=True)
floor_divide: Callable[..., Tensor] = _binary(
    "floor_divide", lambda xp, a, b: xp.floor_divide(a, b), _no_grad, _no_grad,
    keeps_dtype=True)


def div(a: Any, b: Any, rounding_mode: str | None = None) -> Tensor:
    """a / b (torch.div): true division, or with rounding_mode 'trunc' (towards zero) or
    'floor' (towards -inf) a rounded quotient that keeps integer dtypes."""
    if rounding_mode is None:
        return Div.apply(a, b)
    if rounding_mode == "trunc":
        return _trunc_divide(a, b)
    if rounding_mode == "floor":
        return floor_divide(a, b)
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                       f"found {rounding_mode!r}")


def lerp(input: Tensor, end: Tensor, weight: Any) -> Tensor:
    """input + weight * (end - input) (torch.lerp); weight is a number or a tensor."""
    if isinstance(end, Tensor) and end.dtype != input.dtype:
        raise RuntimeError(f"lerp: expected dtype {input.dtype} for `end` but got dtype "
                           f"{end.dtype}")
    return input + weight * (end - input)


class Clamp(Op):
    op_name = "clamp"

    @staticmethod
    def forward(ctx, x, lo, hi):
        present = [v for v in (x, lo, hi) if v is not None]
        dt = result_dtype(*present)
        xx, *bounds = operand_arrays("clamp", *present, dtype=dt)
        xlo = bounds.pop(0) if lo is not None else None
        xhi = bounds.pop(0) if hi is not None else None
        _save_operands(ctx, x, lo, hi)
        xp = x._xp
        out = xx if xlo is None else xp.maximum(xx, xlo)
        return out if xhi is None else xp.minimum(out, xhi)

    @staticmethod
    def backward(ctx, g):
        x, lo, hi = _operands(ctx)
        inside = None
        if lo is not None:
            inside = x >= lo
        if hi is not None:
            inside = (x <= hi) if inside is None else inside & (x <= hi)
        gx = _grad_for(where(inside, g, 0.0), ctx.metas[0])
        glo = _grad_for(where(x < lo, g, 0.0), ctx.metas[1]) if ctx.needs_input_grad[1] else None
        ghi = _grad_for(where(x > hi, g, 0.0), ctx.metas[2]) if ctx.needs_input_grad[2] else None
        return gx, glo, ghi


class BinaryExtreme(Op):
    """maximum/minimum, the larger (`largest`) or smaller of two operands elementwise: the
    gradient goes to the winner, split evenly on ties (as PyTorch)."""

    largest: bool

    @classmethod
    def forward(cls, ctx, a, b):
        xa, xb = operand_arrays(cls.op_name, a, b)
        _save_operands(ctx, a, b)
        xp = a._xp if isinstance(a, Tensor) else b._xp
        return (xp.maximum if cls.largest else xp.minimum)(xa, xb)

    @classmethod
    def backward(cls, ctx, g):
        a, b = _operands(ctx)
        wins = (a > b) if cls.largest else (a < b)
        share_a = wins + (a == b) * 0.5
        ga = _grad_for(g * share_a, ctx.metas[0]) if ctx.needs_input_grad[0] else None
        gb = _grad_for(g * (1 - share_a), ctx.metas[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


class Maximum(BinaryExtreme):
    op_name, largest = "maximum", True


class Minimum(BinaryExtreme):
    op_name, largest = "minimum", False


class Where(Op):
    op_name = "where"

    @staticmethod
    def forward(ctx, cond, a, b):
        if not isinstance(cond, Tensor) or cond.dtype != dtypes.bool:
            got = cond.dtype if isinstance(cond, Tensor) else type(cond).__name__
            raise TypeError(f"where: expected condition to be a bool tensor, got {got}")
        dt = result_dtype(a, b)
        xa, xb = operand_arrays("where", a, b, dtype=dt)
        ctx.save_for_backward(cond)
        ctx.metas = (None, _meta(a), _meta(b))
        return cond._xp.where(cond.array, xa, xb).astype(dt, copy=False)

    @staticmethod
    def backward(ctx, g):
        cond = ctx.saved_tensors[0]
        ga = _grad_for(where(cond, g, 0.0), ctx.metas[1]) if ctx.needs_input_grad[1] else None
        gb = _grad_for(where(cond, 0.0, g), ctx.metas[2]) if ctx.needs_input_grad[2] else None
        return None, ga, gb


# -- copies, casts, moves ---------------------------------------------------------------------
class Cast(LinearOp):
    """x.to(dtype); its own adjoint, casting the gradient back to the input's dtype."""

    op_name, params = "to", ("dtype",)

    @staticmethod
    def compute(a, dtype):
        return a.astype(dtype)


class ToDevice(LinearOp):
    """x.to(device); its own adjoint, moving the gradient back to the input's device."""

    op_name, params = "to", ("device",)

    @staticmethod
    def compute(a, device):
        return move_array(a, device)


adjoints(Cast, Cast)
adjoints(ToDevice, ToDevice)


class Clone(Op):
    op_name = "clone"

    @staticmethod
    def forward(ctx, x):
        return x.array.copy()

    @staticmethod
    def backward(ctx, g):
        return g


# -- ops without a gradient -------------------------------------------------------------------
class NonDifferentiable(Op):
    """An elementwise function whose result never requires grad (comparisons, masks)."""

    differentiable = False
    function = ""

    @classmethod
    def forward(cls, ctx, *operands):
        arrays = operand_arrays(cls.op_name, *operands)
        xp = next(v for v in operands if isinstance(v, Tensor))._xp
        return getattr(xp, cls.function)(*arrays)


def _nondiff(name: str, function: str) -> Callable[..., Tensor]:
    op = typing.cast("type[NonDifferentiable]", type(  # a subclass, by its bases
        name.capitalize(), (NonDifferentiable,), {"op_name": name, "function": function}))
    return op.apply


eq = _nondiff("eq", "equal")
ne = _nondiff("ne", "not_equal")
lt = _nondiff("lt", "less")
le = _nondiff("le", "less_equal")
gt = _nondiff("gt", "greater")
ge = _nondiff("ge", "greater_equal")
isnan = _nondiff("isnan", "isnan")
isfinite: Callable[..., Tensor] = _nondiff("isfinite", "isfinite")
isinf = _nondiff("isinf", "isinf")
logical_and = _nondiff("logical_and", "logical_and")
logical_or = _nondiff("logical_or", "logical_or")
logical_xor = _nondiff("logical_xor", "logical_xor")
logical_not = _nondiff("logical_not", "logical_not")
_bitwise = {name: _nondiff(name, function) for name, function in (
    ("bitwise_and", "bitwise_and"), ("bitwise_or", "bitwise_or"),
    ("bitwise_xor", "bitwise_xor"), ("bitwise_not", "invert"),
    ("bitwise_left_shift", "left_shift"), ("bitwise_right_shift", "right_shift"))}


def _bitwise_op(name: str) -> Callable[..., Tensor]:
    """torch's bitwise op `name`: integer and bool tensors, Python ints on either side."""
    def op(*operands):
        for v in operands:
            check_operand(name, v)
            kind = v.dtype.kind if isinstance(v, Tensor) else (
                "b" if isinstance(v, bool) else "i" if isinstance(v, int) else "f")
            if kind not in "biu":
                what = v.dtype if isinstance(v, Tensor) else type(v).__name__
                raise NotImplementedError(f"{name}: expected integer or bool operands, got "
                                          f"{what}")  # torch's type for this refusal
        return _bitwise[name](*operands)
    op.__name__ = op.__qualname__ = name
    return op


bitwise_and = _bitwise_op("bitwise_and")
bitwise_or = _bitwise_op("bitwise_or")
bitwise_xor = _bitwise_op("bitwise_xor")
bitwise_not = _bitwise_op("bitwise_not")
bitwise_left_shift = _bitwise_op("bitwise_left_shift")
bitwise_right_shift = _bitwise_op("bitwise_right_shift")


def isposinf(x: Tensor) -> Tensor:
    return isinf(x) & (x > 0)


def isneginf(x: Tensor) -> Tensor:
    return isinf(x) & (x < 0)


class IsClose(NonDifferentiable):
    """|a - b| <= atol + rtol * |b| elementwise (torch.isclose): infinities are close only to
    themselves, and NaN to NaN only with `equal_nan`."""

    op_name = "isclose"

    @staticmethod
    def forward(ctx, a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
        for v in (a, b):
            if not isinstance(v, Tensor):
                raise TypeError(f"isclose: expected tensors, got {type(v).__name__}")
        if a.dtype != b.dtype:
            raise RuntimeError(f"isclose: expected both inputs to have the same dtype, got "
                               f"{a.dtype} and {b.dtype}")
        xp, xa, xb = a._xp, a.array, b.array
        close = xa == xb
        if equal_nan:
            close = close | (xp.isnan(xa) & xp.isnan(xb))
        if a.dtype.kind != "f":
            return close
        gap = xp.abs(xa - xb)
        return close | (xp.isfinite(gap) & (gap <= atol + xp.abs(rtol * xb)))


isclose = IsClose.apply


def allclose(a: Tensor, b: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """Whether isclose holds everywhere (torch.allclose): a Python bool."""
    return bool(isclose(a, b, rtol, atol, equal_nan).array.all())


def equal(a: Tensor, b: Tensor) -> bool:
    """Same shape and the same values (torch.equal): a Python bool."""
    return a.shape == b.shape and bool(eq(a, b).array.all())


# -- public functions -------------------------------------------------------------------------
mul, pow, neg = Mul.apply, Pow.apply, Neg.apply


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """input + alpha * other (torch.add)."""
    return Add.apply(input, other if alpha == 1 else other * alpha)


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """input - alpha * other (torch.sub)."""
    return Sub.apply(input, other if alpha == 1 else other * alpha)
maximum, minimum = Maximum.apply, Minimum.apply


def where(condition: Tensor, input: Any = None, other: Any = None) -> Any:
    """torch.where: input where condition holds, else other; with the condition alone, the
    indices where it holds (nonzero(condition, as_tuple=True))."""
    if input is None and other is None:
        from .index import nonzero  # NOTE: index builds on this module
        return nonzero(condition, as_tuple=True)
    return Where.apply(condition, input, other)


cast, to_device, clone = Cast.apply, ToDevice.apply, Clone.apply


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Limit values to [min, max] (torch.clamp); min and max may be numbers or tensors."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    return Clamp.apply(x, min, max)
