"""Dtypes and PyTorch's type-promotion rules.

gradflow dtypes are NumPy dtype objects, so they pass straight to NumPy and CuPy. The names
mirror torch (`float32`, `long`, `bool`, ...), which is why this module shadows builtins.
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)

SUPPORTED = (float16, float32, float64, int8, uint8, int16, int32, int64, bool)
_default_float = [float32]


def get_default_dtype() -> np.dtype:
    """The dtype of Python floats and of float factories (float32 unless changed)."""
    return _default_float[0]


def set_default_dtype(dtype: Any) -> None:
    """Set the default floating dtype, like torch.set_default_dtype."""
    dt = as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes are allowed, got {dt}")
    _default_float[0] = dt


def as_dtype(dtype: Any) -> np.dtype:
    """Normalise a dtype argument and reject the ones gradflow does not support."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None
    if dt not in SUPPORTED:
        raise TypeError(f"dtype {dt} is not supported; use one of "
                        + ", ".join(str(d) for d in SUPPORTED))
    return dt


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}  # by dtype.kind: bool < integer < floating


def _category(dtype: np.dtype) -> builtins.int:
    return _CATEGORY[dtype.kind]


def scalar_dtype(value: Any) -> np.dtype:
    """The dtype PyTorch gives a Python scalar standing alone."""
    if isinstance(value, (builtins.bool, np.bool_)):
        return bool
    if isinstance(value, (builtins.int, np.integer)):
        return int64
    if isinstance(value, (builtins.float, np.floating)):
        return get_default_dtype()
    raise TypeError(f"expected a Python number, got {type(value).__name__}")


def promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """Promote two tensor dtypes: the higher category wins (int64 + float16 -> float16)."""
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def result_type(tensor_dtypes: list, zero_dim_dtypes: list, scalars: list) -> np.dtype:
    """PyTorch's promotion: dimensioned tensors, then 0-d tensors, then Python scalars.

    A lower-priority group changes the result only when its category is higher, so a
    float32 tensor times 2.0 stays float32 and an int64 tensor times 2.0 becomes the default
    float dtype.
    """
    result: np.dtype | None = None
    rank = -1  # the category of `result`
    for group in (tensor_dtypes, zero_dim_dtypes):
        if not group:
            continue
        g = group[0]
        for d in group:
            if d != g:
                g = promote(g, d)
        if _CATEGORY[g.kind] > rank:
            result, rank = g, _CATEGORY[g.kind]
    for value in scalars:
        d = scalar_dtype(value)
        if _CATEGORY[d.kind] > rank:
            result, rank = d, _CATEGORY[d.kind]
    if result is None:
        raise ValueError("result_type: no tensors or scalars to promote")
    return result


def can_cast(source: np.dtype, target: np.dtype) -> builtins.bool:
    """Whether an op's result may be written into a tensor of `target` dtype (in-place ops,
    `out=`): never to a lower category (float into an integer tensor, an integer into a bool
    one), as PyTorch's canCast."""
    return _category(source) <= _category(target)


_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
                "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                "bool": "Bool"}


def torch_name(dtype: np.dtype) -> str:
    """PyTorch's scalar-type name of a dtype (Float, Long, ...), as its errors spell it."""
    return _TORCH_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)
