"""Argument checks shared by the ops: dimension normalisation and operand preparation."""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import numpy as np

from .. import dtypes
from ..tensor import Tensor

Number = (int, float, bool, np.number, np.bool_)
_OPERAND = (Tensor,) + Number
F = TypeVar("F", bound=Callable[..., Any])


def normalize_dim(op: str, dim: Any, ndim: int) -> int:
    """Map a possibly negative `dim` into [0, ndim), naming `op` when it is out of range."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
    if not lo <= dim <= hi:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{lo}, {hi}], but got {dim})")
    return int(dim) % max(ndim, 1)


def normalize_dims(op: str, dim: Any, ndim: int) -> tuple:
    """`dim` as a sorted tuple of distinct non-negative axes; None means all axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    axes = tuple(normalize_dim(op, d, ndim) for d in dims)
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"{op}: dim {dims} names a dimension more than once")
    # NOTE: a 0-d tensor accepts dim 0 or -1 (as in PyTorch) but has no axis to reduce.
    return tuple(sorted(axes)) if ndim else ()


def numpy_names(fn: F) -> F:
    """Accept NumPy's `axis=` and `keepdims=` for `dim=` and `keepdim=`, as PyTorch's reductions
    and scans do."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for alias, name in (("axis", "dim"), ("keepdims", "keepdim")):
            if alias in kwargs:
                if name in kwargs:
                    raise TypeError(f"{fn.__name__}: got both {name}= and its alias {alias}=")
                kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def check_operand(op: str, value: Any) -> None:
    if not isinstance(value, _OPERAND):
        raise TypeError(f"{op}: expected a Tensor or a number, got {type(value).__name__}")


def result_dtype(*operands: Any) -> np.dtype:
    """PyTorch's result dtype for tensors and Python numbers combined."""
    dims: list[np.dtype] = []
    zero_dims: list[np.dtype] = []
    scalars: list[Any] = []
    for v in operands:
        if isinstance(v, Tensor):
            a = v.array
            (dims if a.ndim else zero_dims).append(a.dtype)
        else:
            scalars.append(v)
    return dtypes.result_type(dims, zero_dims, scalars)


def _settled_dtype(operands: tuple) -> np.dtype | None:
    """The result dtype when no promotion is needed: tensors all of one dtype, with numbers
    only if that dtype is floating (no number lifts a float tensor's dtype); else None, also
    for an operand that is neither, which `check_operand` then reports."""
    dt = None
    numbers = False
    for v in operands:
        if isinstance(v, Tensor):
            d = v.array.dtype
            if dt is None:
                dt = d
            elif d != dt:
                return None
        elif isinstance(v, Number):
            numbers = True
        else:
            return None
    return None if dt is None or (numbers and not dtypes.is_floating(dt)) else dt


def operand_arrays(op: str, *operands: Any, dtype: np.dtype | None = None) -> list:
    """The arrays (or Python numbers) to compute with, all cast to one result dtype.

    Python numbers stay numbers, so NumPy and CuPy treat them as weak scalars and no tiny
    host-to-device copy is made for them.
    """
    dt = _settled_dtype(operands) if dtype is None else None
    if dt is None:
        for v in operands:
            check_operand(op, v)
        dt = result_dtype(*operands) if dtype is None else dtype
    kind = dtypes.kind(dt)
    out = []
    for v in operands:
        if isinstance(v, Tensor):
            a = v.array
            out.append(a if a.dtype == dt else dtypes.astype(a, dt))
        elif kind == "f":
            out.append(float(v))
        elif kind == "b":
            out.append(bool(v))
        else:
            out.append(int(v))
    return out
