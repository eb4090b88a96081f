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
from collections import namedtuple
from typing import Any, Callable

import numpy as np

from .. import dtypes
from ..amp.autocast_mode import autocast_policy
from ..autograd.function import Op
from ..backend import array_module, move_array
from ..creation import zeros_like
from ..cuda import checks
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .shape import broadcast_shapes, sum_to
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
    return x.array if dtypes.is_floating(x.dtype) else x.array.astype(dtypes.get_default_dtype())


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
        if not dtypes.is_floating(dt):
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
        a = x.array if cls.keeps_dtype else _float_array(x)
        if a.dtype == dtypes.bfloat16 or a.dtype == dtypes.float16:
            # NOTE: in float32, rounded once, as torch's (its "opmath" type for half types)
            return cls.function(x._xp, a.astype(dtypes.float32), **params).astype(a.dtype)
        return cls.function(x._xp, a, **params)

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
    return lambda xp, a: function(xp, a) if dtypes.is_floating(a.dtype) else a.copy()


def _sign_array(xp, a):
    # NOTE: torch's sign of NaN is 0 (NumPy's is NaN)
    return xp.where(xp.isnan(a), 0, xp.sign(a)) if dtypes.is_floating(a.dtype) else xp.sign(a)


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

# Cephes' Chebyshev series for I1 (the modified Bessel function of order one, i0's derivative):
# exp(-x) I1(x) / x on [0, 8], in x / 2 - 2, and exp(-x) I1(x) sqrt(x) beyond, in 32 / x - 2
_I1_SMALL = (
    2.77791411276104639959e-18, -2.11142121435816608115e-17, 1.55363195773620046921e-16,
    -1.10559694773538630805e-15, 7.60068429473540693410e-15, -5.04218550472791168711e-14,
    3.22379336594557470981e-13, -1.98397439776494371520e-12, 1.17361862988909016308e-11,
    -6.66348972350202774223e-11, 3.62559028155211703701e-10, -1.88724975172282928790e-9,
    9.38153738649577178388e-9, -4.44505912879632808065e-8, 2.00329475355213526229e-7,
    -8.56872026469545474066e-7, 3.47025130813767847674e-6, -1.32731636560394358279e-5,
    4.78156510755005422638e-5, -1.61760815825896745588e-4, 5.12285956168575772895e-4,
    -1.51357245063125314899e-3, 4.15642294431288815669e-3, -1.05640848946261981558e-2,
    2.47264490306265168283e-2, -5.29459812080949914269e-2, 1.02643658689847095384e-1,
    -1.76416518357834055153e-1, 2.52587186443633654823e-1)
_I1_LARGE = (
    7.51729631084210481353e-18, 4.41434832307170791151e-18, -4.65030536848935832153e-17,
    -3.20952592199342395980e-17, 2.96262899764595013876e-16, 3.30820231092092828324e-16,
    -1.88035477551078244854e-15, -3.81440307243700780478e-15, 1.04202769841288027642e-14,
    4.27244001671195135429e-14, -2.10154184277266431302e-14, -4.08355111109219731823e-13,
    -7.19855177624590851209e-13, 2.03562854414708950722e-12, 1.41258074366137813316e-11,
    3.25260358301548823856e-11, -1.89749581235054123450e-11, -5.58974346219658380687e-10,
    -3.83538038596423702205e-9, -2.63146884688951950684e-8, -2.51223623787020892529e-7,
    -3.88256480887769039346e-6, -1.10588938762623716291e-4, -9.76109749136146840777e-3,
    7.78576235018280120474e-1)


def _chebyshev(coefficients: tuple, t):
    """Cephes' chbevl: a Chebyshev series at t in [-2, 2], highest degree first."""
    b0, b1, b2 = coefficients[0], 0.0, 0.0
    for c in coefficients[1:]:
        b2, b1 = b1, b0
        b0 = t * b1 - b2 + c
    return 0.5 * (b0 - b2)


def _i1_array(xp, a):
    """I1 (torch.special.i1) in float64 plain array arithmetic, so NumPy and CuPy share it."""
    x = xp.abs(a.astype(np.float64))
    small = _chebyshev(_I1_SMALL, xp.minimum(x, 8.0) / 2 - 2) * x
    far = xp.maximum(x, 8.0)
    large = _chebyshev(_I1_LARGE, 32 / far - 2) / xp.sqrt(far)
    out = xp.exp(x) * xp.where(x <= 8, small, large)
    return xp.where(a < 0, -out, out).astype(a.dtype, copy=False)


def _off_zero(x: Tensor) -> Tensor:
    """x with its zeros replaced by ones: a divisor whose quotient `where` discards at 0, kept
    finite so that no NaN reaches the gradient through the discarded branch."""
    return where(x == 0, 1.0, x)


def _sinc_grad(g, x):
    # NOTE: d/dx sin(pi x) / (pi x) = pi (u cos u - sin u) / u^2 at u = pi x; 0 at x = 0
    u = _off_zero(x) * math.pi
    return g * where(x == 0, 0.0, (u * cos(u) - sin(u)) * math.pi / (u * u))


# (i0 and _i1 are each other's derivative terms)
i0: Callable[..., Tensor] = _unary("i0", lambda xp, a: xp.i0(a).astype(a.dtype, copy=False),
                                   lambda g, x: g * _i1(x))
_i1: Callable[..., Tensor] = _unary("i1", _i1_array,
                                    lambda g, x: g * where(x == 0, 0.5,
                                                           i0(x) - _i1(x) / _off_zero(x)))
deg2rad = _unary("deg2rad", lambda xp, a: a * (math.pi / 180), lambda g, y: g * (math.pi / 180),
                 of_output=True)
rad2deg = _unary("rad2deg", lambda xp, a: a * (180 / math.pi), lambda g, y: g * (180 / math.pi),
                 of_output=True)
sinc = _unary("sinc", lambda xp, a: xp.sinc(a), _sinc_grad)


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
        if not dtypes.is_floating(dt) and not cls.keeps_dtype:
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
    if dtypes.is_floating(getattr(a, "dtype", getattr(b, "dtype", None))):
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


def float_power(input: Any, exponent: Any) -> Tensor:
    """input ** exponent computed in float64 (torch.float_power), whatever the operands'
    dtypes; the gradients go back to each operand's own dtype."""
    for v in (input, exponent):
        check_operand("float_power", v)
    if not isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        raise TypeError("float_power: expected input or exponent to be a Tensor, got two "
                        "numbers")
    return Pow.apply(_float64(input), _float64(exponent))


def _float64(v: Any) -> Any:
    """A tensor cast to float64 (differentiably), or a number as a Python float."""
    if not isinstance(v, Tensor):
        return float(v)
    return v if v.dtype == dtypes.float64 else cast(v, dtype=dtypes.float64)


def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """input * 2 ** other (torch.ldexp), differentiable in both, as torch composes it; the
    promoted dtype of the two (the default float for integers), as torch's."""
    dt = result_dtype(input, other)
    scale = Pow.apply(2.0, other)
    if dtypes.is_floating(dt) and scale.dtype != dt:
        scale = cast(scale, dtype=dt)  # NOTE: 2 ** k is exact in every float dtype's range
    return Mul.apply(input, scale)


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


class NanIgnoringExtreme(BinaryExtreme):
    """fmax/fmin: maximum/minimum where a NaN loses to a number (NumPy's fmax/fmin). As
    torch's, the gradient goes to `input` where it wins or ties or `other` is NaN, else to
    `other`; both operands are tensors."""

    @classmethod
    def forward(cls, ctx, a, b):
        for name, v in (("input", a), ("other", b)):
            if not isinstance(v, Tensor):
                raise TypeError(f"{cls.op_name}(): argument '{name}' must be Tensor, not "
                                f"{type(v).__name__}")
        xa, xb = operand_arrays(cls.op_name, a, b)
        _save_operands(ctx, a, b)
        return (a._xp.fmax if cls.largest else a._xp.fmin)(xa, xb)

    @classmethod
    def backward(cls, ctx, g):
        a, b = _operands(ctx)
        to_a = ((a >= b) if cls.largest else (a <= b)) | isnan(b)
        ga = _grad_for(where(to_a, g, 0.0), ctx.metas[0]) if ctx.needs_input_grad[0] else None
        gb = _grad_for(where(to_a, 0.0, g), ctx.metas[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


class Fmax(NanIgnoringExtreme):
    op_name, largest = "fmax", True


class Fmin(NanIgnoringExtreme):
    op_name, largest = "fmin", False


fmax, fmin = Fmax.apply, Fmin.apply


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
        return dtypes.astype(a, dtype)


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
signbit = _nondiff("signbit", "signbit")
_nextafter = _nondiff("nextafter", "nextafter")
_integer_only = {name: _nondiff(name, name) for name in ("gcd", "lcm")}


def _refuse_kinds(op: str, kinds: str, what: str, *operands: Any) -> None:
    """NotImplementedError (torch's type) for an operand whose dtype kind is in `kinds`."""
    for v in operands:
        check_operand(op, v)
        dt = v.dtype if isinstance(v, Tensor) else result_dtype(v)
        if dtypes.kind(dt) in kinds:
            raise NotImplementedError(f"{op}: expected {what} operands, got {dt}")


def gcd(input: Tensor, other: Tensor) -> Tensor:
    """The greatest common divisor elementwise (torch.gcd), of integer tensors; never negative."""
    _refuse_kinds("gcd", "bf", "integer", input, other)
    return _integer_only["gcd"](input, other)


def lcm(input: Tensor, other: Tensor) -> Tensor:
    """The least common multiple elementwise (torch.lcm), of integer tensors; never negative."""
    _refuse_kinds("lcm", "bf", "integer", input, other)
    return _integer_only["lcm"](input, other)


def nextafter(input: Tensor, other: Tensor) -> Tensor:
    """The next floating-point value after input towards other (torch.nextafter); no gradient
    (torch's backward raises)."""
    _refuse_kinds("nextafter", "biu", "floating-point", input, other)
    return _nextafter(input, other)


class Heaviside(NonDifferentiable):
    """The step function (torch.heaviside): 0 below zero, 1 above, `values` at zero (NaN
    input gives 0, as torch's); input and values share one dtype."""

    op_name = "heaviside"

    @staticmethod
    def forward(ctx, x, values):
        for name, v in (("input", x), ("values", values)):
            if not isinstance(v, Tensor):
                raise TypeError(f"heaviside(): argument '{name}' must be Tensor, not "
                                f"{type(v).__name__}")
        if x.dtype != values.dtype:
            raise RuntimeError(f"heaviside is not yet implemented for tensors with different "
                               f"dtypes ({x.dtype} and {values.dtype})")
        xp, a = x._xp, x.array
        return xp.where(a == 0, values.array, a > 0).astype(a.dtype, copy=False)


heaviside = Heaviside.apply


class Frexp(Op):
    """input = mantissa * 2 ** exponent, the mantissa in [0.5, 1) in magnitude and the
    exponent int32 (torch.frexp); the mantissa's gradient is g / 2 ** exponent."""

    op_name = "frexp"

    @staticmethod
    def forward(ctx, x):
        if not dtypes.is_floating(x.dtype):
            raise RuntimeError(f"frexp: torch.frexp() only supports floating-point dtypes, got "
                               f"{x.dtype}")
        mantissa, exponent = x._xp.frexp(x.array)
        ctx.exponent = exponent = exponent.astype(np.int32, copy=False)
        return mantissa, exponent

    @staticmethod
    def backward(ctx, g, _):
        with np.errstate(over="ignore"):  # a subnormal input's scale is inf, as in torch
            scale = g._xp.exp2(-ctx.exponent.astype(g.dtype))
        return g * Tensor._wrap(scale)


# (named as torch.return_types.frexp, like the function)
frexp_result = namedtuple("frexp", ["mantissa", "exponent"])  # type: ignore[name-match]


def frexp(input: Tensor) -> tuple:
    """(mantissa, exponent) as torch.return_types.frexp: see Frexp."""
    return frexp_result(*Frexp.apply(input))


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
        if not dtypes.is_floating(a.dtype):
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


# -- aliases and small compositions (round 2) -----------------------------------------------
arccos, arccosh, arcsin, arcsinh = acos, acosh, asin, asinh
arctan, arctan2, arctanh = atan, atan2, atanh
negative, fix, absolute = neg, trunc, abs
multiply, divide, subtract, true_divide = mul, div, sub, Div.apply
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def positive(input: Tensor) -> Tensor:
    """input itself (torch.positive); refused for bool tensors, as `+x` is."""
    if input.dtype == dtypes.bool:
        raise RuntimeError("positive: the `+` operator, on a bool tensor is not supported")
    return input


def rsub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """other - alpha * input (torch.rsub)."""
    return Sub.apply(other, input if alpha == 1 else input * alpha)


def clamp_min(input: Tensor, min: Any) -> Tensor:
    """clamp(input, min=min) (torch.clamp_min)."""
    return Clamp.apply(input, min, None)


def clamp_max(input: Tensor, max: Any) -> Tensor:
    """clamp(input, max=max) (torch.clamp_max)."""
    return Clamp.apply(input, None, max)


def _addc(op: str, combine: Callable, input: Tensor, tensor1: Tensor, tensor2: Tensor,
          value: Any) -> Tensor:
    """input + value * combine(tensor1, tensor2), the three tensors broadcast together."""
    for name, v in (("input", input), ("tensor1", tensor1), ("tensor2", tensor2)):
        if not isinstance(v, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(v).__name__}")
    broadcast_shapes(op, tuple(input.shape), tuple(tensor1.shape), tuple(tensor2.shape))
    if result_dtype(input, tensor1, tensor2).kind in "biu":
        value = int(value)  # NOTE: torch truncates the value for integer tensors
    product = combine(tensor1, tensor2)
    return Add.apply(input, product if value == 1 else product * value)


@autocast_policy("addcmul")
def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    """input + value * tensor1 * tensor2 (torch.addcmul)."""
    return _addc("addcmul", Mul.apply, input, tensor1, tensor2, value)


@autocast_policy("addcdiv")
def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    """input + value * tensor1 / tensor2 (torch.addcdiv); integer tensor1 and tensor2 are
    refused, as in torch, which no longer divides them as integers."""
    if all(isinstance(t, Tensor) and t.dtype.kind in "biu" for t in (tensor1, tensor2)):
        raise RuntimeError(f"addcdiv: integer division with addcdiv is no longer supported "
                           f"(tensor1 {tensor1.dtype}, tensor2 {tensor2.dtype}); use "
                           f"input + value * tensor1 / tensor2")
    return _addc("addcdiv", Div.apply, input, tensor1, tensor2, value)


def is_nonzero(input: Tensor) -> bool:
    """Whether a one-element tensor is nonzero, as a Python bool (torch.is_nonzero)."""
    n = input.numel()
    if n != 1:
        raise RuntimeError(f"is_nonzero: Boolean value of Tensor with "
                           f"{'no values' if n == 0 else 'more than one value'} is ambiguous")
    return bool(input.item())
