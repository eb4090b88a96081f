"""PyTorch's `out=` argument, one mechanism for every public function that takes it.

`with_out(fn)` wraps a public function (`wrap_public`, called by gradflow/__init__.py, wraps
the names in `OUT_FUNCTIONS`); the Tensor methods and operators call the ops directly and pay
nothing.
With `out=`, the wrapper runs the op, checks the result against `out` as torch does (device,
dtype), resizes `out` if its shape differs (warning when it had elements), writes the values
into its array in place (so a view's base sees them), bumps its version counter and returns
it. As in torch, `out=` refuses autograd: no input (nor `out`) may require grad while grad
mode is on.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

from ..autograd.grad_mode import is_grad_enabled
from ..backend import on_device
from ..dtypes import can_cast, torch_name
from ..tensor import Tensor

# Whose out must have exactly the result's dtype (torch: "Found dtype Double but expected
# Float"); the other functions write any result that casts without losing its kind.
EXACT_DTYPE = frozenset({
    "abs", "ceil", "floor", "frac", "neg", "round", "sgn", "sign", "trunc", "isneginf",
    "isposinf", "bitwise_not", "nan_to_num", "clamp", "where", "matmul", "amax", "amin",
    "argmax", "argmin", "all", "any", "logcumsumexp", "aminmax", "cummax", "cummin",
    "sort", "msort", "topk", "kthvalue", "median", "nanmedian", "mode", "diag", "tril", "triu",
    "gather", "index_select", "masked_select", "nonzero", "take", "take_along_dim",
    "index_add", "index_copy", "scatter", "scatter_add", "scatter_reduce", "mm", "bmm", "mv",
    "addmm", "addbmm", "baddbmm", "addmv", "dot", "vdot", "inner", "tensordot", "cross",
    "inverse", "norm", "qr", "svd", "slogdet", "clamp_min", "clamp_max", "ldexp", "float_power",
    "signbit", "heaviside", "histc", "bucketize", "searchsorted", "matrix_power", "narrow_copy",
    "index_reduce", "frexp"})
# Whose out's dtype is the dtype to compute in, as their `dtype=` (torch.sum(x, 0, out=long)
# sums x cast to long).
DTYPE_FROM_OUT = frozenset({"sum", "nansum", "prod", "cumsum", "cumprod"})

OUT_FUNCTIONS = (
    "abs", "acos", "acosh", "add", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
    "bitwise_left_shift", "bitwise_not", "bitwise_or", "bitwise_right_shift", "bitwise_xor",
    "ceil", "clamp", "copysign", "cos", "cosh", "div", "eq", "erf", "erfc", "exp", "exp2",
    "expm1", "floor", "floor_divide", "fmod", "frac", "ge", "gt", "hypot", "isneginf",
    "isposinf", "le", "lerp", "log", "log10", "log1p", "log2", "logaddexp", "logaddexp2",
    "logical_and", "logical_not", "logical_or", "logical_xor", "logit", "lt", "maximum",
    "minimum", "mul", "nan_to_num", "ne", "neg", "pow", "reciprocal", "remainder", "round",
    "rsqrt", "sgn", "sigmoid", "sign", "sin", "sinh", "sqrt", "square", "sub", "tan", "tanh",
    "trunc", "where", "xlogy",
    "all", "amax", "amin", "aminmax", "any", "argmax", "argmin", "logsumexp", "max", "mean",
    "min", "nanmean", "nansum", "prod", "std", "sum", "var",
    "cummax", "cummin", "cumprod", "cumsum", "logcumsumexp", "cat", "stack", "matmul",
    "erfinv", "sort", "msort", "topk", "kthvalue", "median", "nanmedian", "mode", "diag", "tril",
    "triu", "column_stack", "dstack", "hstack", "vstack", "row_stack", "gather", "index_select",
    "masked_select", "nonzero", "take", "take_along_dim", "index_add", "index_copy", "scatter",
    "scatter_add", "scatter_reduce", "mm", "bmm", "mv", "addmm", "addbmm", "baddbmm", "addmv",
    "dot", "vdot", "inner", "outer", "ger", "kron", "tensordot", "cross", "inverse", "cholesky",
    "norm", "qr", "svd", "slogdet", "true_divide", "clamp_min", "clamp_max", "deg2rad",
    "rad2deg", "sinc", "gcd", "lcm", "ldexp", "i0", "float_power", "signbit", "heaviside", "fmax",
    "fmin", "nextafter", "addcmul", "addcdiv", "diff", "histc", "bucketize", "searchsorted",
    "matrix_power", "narrow_copy", "index_reduce", "frexp")


def _requires_grad(values: Any) -> bool:
    """Whether any tensor among `values` (one level of lists and tuples too, as cat's and
    stack's sequences) requires grad."""
    for v in values:
        if isinstance(v, Tensor):
            if v.requires_grad:
                return True
        elif isinstance(v, (list, tuple)) and _requires_grad(v):
            return True
    return False


def _shape_text(shape: tuple) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _write(name: str, result: Tensor, out: Tensor, exact: bool) -> None:
    """Check `result` against `out` as torch does, then write it into `out`."""
    if result.device != out.device:
        raise RuntimeError(f"{name}(): expected out tensor to have device {result.device}, but "
                           f"got {out.device} instead")
    src, dst = result.dtype, out.dtype
    if exact and src != dst:
        raise RuntimeError(f"{name}(): found dtype {torch_name(dst)} but expected "
                           f"{torch_name(src)} (out= must have the result's dtype)")
    if not can_cast(src, dst):
        raise RuntimeError(f"{name}(): result type {torch_name(src)} can't be cast to the "
                           f"desired output type {torch_name(dst)}")
    with on_device(out.device):
        if result.shape == out.shape:
            out.array[...] = result.array.astype(dst, copy=False)
        else:
            if out.numel():
                warnings.warn(
                    f"{name}(): an output with one or more elements was resized since it had "
                    f"shape {_shape_text(out.shape)}, which does not match the required output "
                    f"shape {_shape_text(result.shape)}. This behavior is deprecated, and in a "
                    "future PyTorch release outputs will not be resized unless they have zero "
                    "elements.", UserWarning, stacklevel=3)
            out.array = result.array.astype(dst, copy=True)
            if out._base is not None:  # NOTE: its new memory is its own: no longer a view
                out._base, out._view_chain = None, ()
                out._version_box = [out._version_box[0]]
    out._version_box[0] += 1


def with_out(fn: Callable, name: str | None = None) -> Callable:
    """`fn` taking torch's keyword `out=` (a tensor, or a tuple of them for ops returning
    several, as max(dim) and cummax); `name` is its public name, for the errors."""
    name = name or fn.__name__
    exact, from_out = name in EXACT_DTYPE, name in DTYPE_FROM_OUT

    @functools.wraps(fn)
    def wrapper(*args: Any, out: Any = None, **kwargs: Any) -> Any:
        if out is None:
            return fn(*args, **kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        for o in outs:
            if not isinstance(o, Tensor):
                raise TypeError(f"{name}(): argument 'out' must be a Tensor or a tuple of "
                                f"Tensors, not {type(o).__name__}")
        if is_grad_enabled() and (_requires_grad(args) or _requires_grad(kwargs.values())
                                  or _requires_grad(outs)):
            raise RuntimeError(f"{name}(): functions with out=... arguments don't support "
                               "automatic differentiation, but one of the arguments requires "
                               "grad.")
        if from_out and not isinstance(out, tuple):
            dtype = kwargs.get("dtype")
            if dtype is not None and dtype != out.dtype:
                raise RuntimeError(f"{name}(): expected out tensor to have dtype {dtype}, but "
                                   f"got {out.dtype} instead")
            kwargs["dtype"] = out.dtype
        result = fn(*args, **kwargs)
        results = result if isinstance(result, tuple) else (result,)
        if len(results) != len(outs) or isinstance(result, tuple) != isinstance(out, tuple):
            want = f"a tuple of {len(results)} Tensors" if isinstance(result, tuple) \
                else "a Tensor"
            raise TypeError(f"{name}(): argument 'out' must be {want} for this call, got "
                            f"{len(outs)} value(s)")
        for r, o in zip(results, outs):
            # NOTE: several outputs (values, indices) must match exactly, as torch's do
            _write(name, r, o, exact or len(outs) > 1)
        if isinstance(result, tuple):
            return type(result)(*outs) if hasattr(result, "_fields") else tuple(outs)
        return out

    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


def wrap_public(namespace: dict) -> None:
    """Give each function of OUT_FUNCTIONS in `namespace` (gradflow's) its `out=`. A name not
    exported (yet) is skipped, so the package still imports; the tests check every one."""
    for name in OUT_FUNCTIONS:
        if name in namespace:
            namespace[name] = with_out(namespace[name], name)
