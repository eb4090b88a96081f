"""Elementwise ops with NumPy broadcasting: arithmetic, math functions, comparisons, where,
clamp, maximum/minimum, casts and device moves.

Each differentiable op saves what its backward needs and writes that backward with tensor
ops, so gradients of gradients work. Broadcast inputs get their gradient summed back to their
own shape by `_grad_for`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import dtypes
from ..autograd.function import Op
from ..backend import move_array
from ..tensor import Tensor
from .util import check_operand, operand_arrays, result_dtype


def _meta(v: Any):
    return (v.shape, v.dtype) if isinstance(v, Tensor) else None


def _grad_for(g: Tensor | None, meta) -> Tensor | None:
    """Reduce a broadcast gradient to an input's shape and dtype (None for numbers)."""
    if g is None or meta is None:
        return None
    from .shape import sum_to
    shape, dtype = meta
    g = sum_to(g, shape)
    return g if g.dtype == dtype else cast(g, dtype=dtype)


def _save_operands(ctx, *operands: Any) -> None:
    ctx.save_for_backward(*(v if isinstance(v, Tensor) else None for v in operands))
    ctx.numbers = tuple(None if isinstance(v, Tensor) else v for v in operands)
    ctx.metas = tuple(_meta(v) for v in operands)


def _operands(ctx) -> tuple:
    return tuple(n if t is None else t for t, n in zip(ctx.saved_tensors, ctx.numbers))


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
        if any(v.dtype == dtypes.bool if isinstance(v, Tensor) else isinstance(v, (bool, np.bool_))
               for v in (a, b)):
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
        _save_operands(ctx, a, b)
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
        _save_operands(ctx, a, b)
        return xa / xb

    @staticmethod
    def backward(ctx, g):
        a, b = _operands(ctx)
        ga = _grad_for(g / b, ctx.metas[0]) if ctx.needs_input_grad[0] else None
        gb = _grad_for(-g * a / (b * b), ctx.metas[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


def _log(v):
    return math.log(v) if not isinstance(v, Tensor) else log(v)


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
class Exp(Op):
    op_name = "exp"
    saves_outputs = True

    @staticmethod
    def forward(ctx, x):
        return x._xp.exp(_float_array(x))

    @staticmethod
    def backward(ctx, g):
        return g * ctx.outputs[0]


class Log(Op):
    op_name = "log"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._xp.log(_float_array(x))

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved_tensors[0]


class Sqrt(Op):
    op_name = "sqrt"
    saves_outputs = True

    @staticmethod
    def forward(ctx, x):
        return x._xp.sqrt(_float_array(x))

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.outputs[0])


class Abs(Op):
    op_name = "abs"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._xp.abs(x.array)

    @staticmethod
    def backward(ctx, g):
        return g * sign(ctx.saved_tensors[0])


class Sin(Op):
    op_name = "sin"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._xp.sin(_float_array(x))

    @staticmethod
    def backward(ctx, g):
        return g * cos(ctx.saved_tensors[0])


class Cos(Op):
    op_name = "cos"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._xp.cos(_float_array(x))

    @staticmethod
    def backward(ctx, g):
        return -g * sin(ctx.saved_tensors[0])


class Tanh(Op):
    op_name = "tanh"
    saves_outputs = True

    @staticmethod
    def forward(ctx, x):
        return x._xp.tanh(_float_array(x))

    @staticmethod
    def backward(ctx, g):
        y = ctx.outputs[0]
        return g * (1 - y * y)


class Sigmoid(Op):
    op_name = "sigmoid"
    saves_outputs = True

    @staticmethod
    def forward(ctx, x):
        xp, arr = x._xp, _float_array(x)
        # NOTE: exp(-log(1 + exp(-x))) never overflows, for logits of either sign.
        return xp.exp(-xp.logaddexp(arr.dtype.type(0), -arr))

    @staticmethod
    def backward(ctx, g):
        y = ctx.outputs[0]
        return g * y * (1 - y)


class Relu(Op):
    op_name = "relu"
    saves_outputs = True

    @staticmethod
    def forward(ctx, x):
        return x._xp.maximum(x.array, x.array.dtype.type(0))

    @staticmethod
    def backward(ctx, g):
        return g * (ctx.outputs[0] > 0)


def _erf_array(xp, x):
    """erf to a relative error below 1.2e-7 (the Chebyshev fit for erfc in Numerical
    Recipes), in plain array arithmetic so NumPy and CuPy share it."""
    z = xp.abs(x)
    t = 1 / (1 + 0.5 * z)
    poly = (-1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    erfc = t * xp.exp(-z * z + poly)
    return xp.where(x >= 0, 1 - erfc, erfc - 1).astype(x.dtype, copy=False)


class Erf(Op):
    op_name = "erf"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf_array(x._xp, _float_array(x))

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * (2 / math.sqrt(math.pi)) * exp(-x * x)


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


class _Extremum(Op):
    """maximum/minimum: the gradient goes to the winner, split evenly on ties (as PyTorch)."""

    @classmethod
    def forward(cls, ctx, a, b):
        xa, xb = operand_arrays(cls.op_name, a, b)
        _save_operands(ctx, a, b)
        return getattr(a._xp if isinstance(a, Tensor) else b._xp, cls.op_name)(xa, xb)

    @classmethod
    def backward(cls, ctx, g):
        a, b = _operands(ctx)
        wins = (a > b) if cls.op_name == "maximum" else (a < b)
        share_a = wins + (a == b) * 0.5
        ga = _grad_for(g * share_a, ctx.metas[0]) if ctx.needs_input_grad[0] else None
        gb = _grad_for(g * (1 - share_a), ctx.metas[1]) if ctx.needs_input_grad[1] else None
        return ga, gb


class Maximum(_Extremum):
    op_name = "maximum"


class Minimum(_Extremum):
    op_name = "minimum"


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
class Cast(Op):
    op_name = "to"

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.array.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return cast(g, dtype=ctx.dtype)


class ToDevice(Op):
    op_name = "to"

    @staticmethod
    def forward(ctx, x, device):
        ctx.device = x.device
        return move_array(x.array, device)

    @staticmethod
    def backward(ctx, g):
        return to_device(g, device=ctx.device)


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


def _nondiff(name: str, function: str):
    op = type(name.capitalize(), (NonDifferentiable,), {"op_name": name, "function": function})
    return op.apply


eq = _nondiff("eq", "equal")
ne = _nondiff("ne", "not_equal")
lt = _nondiff("lt", "less")
le = _nondiff("le", "less_equal")
gt = _nondiff("gt", "greater")
ge = _nondiff("ge", "greater_equal")
sign = _nondiff("sign", "sign")
isnan = _nondiff("isnan", "isnan")
isfinite = _nondiff("isfinite", "isfinite")
floor_divide = _nondiff("floor_divide", "floor_divide")
remainder = _nondiff("remainder", "remainder")
_logical_and = _nondiff("logical_and", "logical_and")
_logical_or = _nondiff("logical_or", "logical_or")
_logical_xor = _nondiff("logical_xor", "logical_xor")
_logical_not = _nondiff("logical_not", "logical_not")


def _bitwise_ok(name: str, *operands) -> None:
    for v in operands:
        check_operand(name, v)
        if isinstance(v, Tensor) and v.dtype != dtypes.bool:
            raise TypeError(f"{name}: expected bool tensors (masks), got {v.dtype}")


def logical_and(a, b):
    _bitwise_ok("logical_and", a, b)
    return _logical_and(a, b)


def logical_or(a, b):
    _bitwise_ok("logical_or", a, b)
    return _logical_or(a, b)


def logical_xor(a, b):
    _bitwise_ok("logical_xor", a, b)
    return _logical_xor(a, b)


def logical_not(x):
    _bitwise_ok("logical_not", x)
    return _logical_not(x)


# -- public functions -------------------------------------------------------------------------
add, sub, mul, div, pow = Add.apply, Sub.apply, Mul.apply, Div.apply, Pow.apply
neg, exp, log, sqrt, abs = Neg.apply, Exp.apply, Log.apply, Sqrt.apply, Abs.apply
sin, cos, tanh, sigmoid, relu = Sin.apply, Cos.apply, Tanh.apply, Sigmoid.apply, Relu.apply
erf = Erf.apply
maximum, minimum, where = Maximum.apply, Minimum.apply, Where.apply
cast, to_device, clone = Cast.apply, ToDevice.apply, Clone.apply


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Limit values to [min, max] (torch.clamp); min and max may be numbers or tensors."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    return Clamp.apply(x, min, max)
