"""Dtype queries with PyTorch's API: finfo, iinfo, promote_types, result_type, can_cast.

The values are PyTorch's (Python numbers; `dtype` a string such as "bfloat16"), read from NumPy's
and ml_dtypes' tables, which agree with it bit for bit; the promotion rules are gradflow's own
(dtypes.py), PyTorch's, not NumPy's.
"""
from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from .. import dtypes
from ..tensor import Tensor
from .util import check_operand, result_dtype


def _dtype(op: str, value: Any) -> np.dtype:
    if isinstance(value, Tensor):
        raise TypeError(f"{op}: expected a dtype, got a Tensor (pass its .dtype)")
    return dtypes.as_dtype(value)


class finfo:
    """Machine limits of a floating dtype (torch.finfo): bits, eps, max, min, tiny,
    smallest_normal, resolution, dtype. With no argument, those of the default dtype."""

    def __init__(self, type: Any = None) -> None:
        dt = dtypes.get_default_dtype() if type is None else _dtype("finfo", type)
        if not dtypes.is_floating(dt):
            raise TypeError(f"finfo: requires a floating point input type, got {dt}; use "
                            "gradflow.iinfo for integer types")
        info = ml_dtypes.finfo(dt)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        # NOTE: torch's resolution is 10 ** -precision as a Python float (0.01 for bfloat16),
        # NumPy's the same number rounded to the dtype (0.0100098)
        self.resolution = 10.0 ** -int(info.precision)
        self.dtype = dt.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype (torch.iinfo): bits, max, min, dtype."""

    def __init__(self, type: Any) -> None:
        dt = _dtype("iinfo", type)
        if dt.kind not in "iu":
            raise TypeError(f"iinfo: requires an integer input type, got {dt}; use "
                            "gradflow.finfo for floating point types")
        info = np.iinfo(dt)
        self.bits, self.max, self.min, self.dtype = int(info.bits), int(info.max), \
            int(info.min), dt.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def promote_types(type1: Any, type2: Any) -> np.dtype:
    """The smallest dtype both promote to (torch.promote_types): float16 with bfloat16 gives
    float32, an integer with a float gives the float."""
    return dtypes.promote(_dtype("promote_types", type1), _dtype("promote_types", type2))


def result_type(tensor: Any, other: Any) -> np.dtype:
    """The dtype of an arithmetic op on `tensor` and `other` (torch.result_type): dimensioned
    tensors first, then 0-d tensors, then Python numbers, each changing it only by category."""
    for v in (tensor, other):
        check_operand("result_type", v)
    return result_dtype(tensor, other)


def can_cast(from_: Any, to: Any) -> bool:
    """Whether PyTorch allows casting `from_` to `to` in type promotion (torch.can_cast): never
    to a lower category (floating > integer > bool)."""
    return dtypes.can_cast(_dtype("can_cast", from_), _dtype("can_cast", to))


__all__ = ["can_cast", "finfo", "iinfo", "promote_types", "result_type"]
