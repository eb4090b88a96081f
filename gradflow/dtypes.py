"""Dtypes and PyTorch's type-promotion rules.

gradflow dtypes are NumPy dtype objects, so they pass straight to NumPy and CuPy. The names
mirror torch (`float32`, `long`, `bool`, ...), which is why this module shadows builtins.
`bfloat16` is ml_dtypes' NumPy dtype (kind "V", so test floating-ness with `is_floating`, never
`dtype.kind == "f"`); PyTorch's promotion rules are applied here, not NumPy's.
"""
from __future__ import annotations

import builtins
from typing import Any

import ml_dtypes
import numpy as np

float16 = half = np.dtype(np.float16)
bfloat16 = np.dtype(ml_dtypes.bfloat16)
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)

SUPPORTED = (float16, bfloat16, float32, float64, int8, uint8, int16, int32, int64, bool)
_default_float = [float32]


def get_default_dtype() -> np.dtype:
    """The dtype of Python floats and of float factories (float32 unless changed)."""
    return _default_float[0]


def set_default_dtype(dtype: Any) -> None:
    """Set the default floating dtype, like torch.set_default_dtype."""
    dt = as_dtype(dtype)
    if not is_floating(dt):
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


def is_floating(dtype: Any) -> builtins.bool:
    """Whether a dtype is floating point (float16, bfloat16, float32, float64)."""
    try:  # NOTE: a dtype object's own kind first: Function.apply asks this of every output
        kind = dtype.kind
    except AttributeError:
        dtype = np.dtype(dtype)
        kind = dtype.kind
    return kind == "f" or dtype == bfloat16


def kind(dtype: Any) -> str:
    """NumPy's `dtype.kind`, but "f" for bfloat16 (whose own kind is "V"): for "biuf"-style
    membership tests."""
    dt = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
    return "f" if dt == bfloat16 else dt.kind


def accumulation(dtype: Any) -> np.dtype:
    """The dtype torch's CPU reductions and matmuls accumulate `dtype` in: float32 for float16
    and bfloat16 (one rounding at the end), the dtype itself otherwise."""
    dt = np.dtype(dtype)
    return float32 if dt == float16 or dt == bfloat16 else dt


def astype(array: Any, dtype: np.dtype, copy: builtins.bool = True) -> Any:
    """`array.astype(dtype)` (NumPy or CuPy) rounded as torch's casts are: to float16 or
    bfloat16 from float64 or an integer through float32 (c10 converts through float, so
    float64 rounds twice), and from bfloat16 to an integer through float32 (ml_dtypes' direct
    cast treats out-of-range values differently from torch's)."""
    src = array.dtype
    if src == dtype:
        return array.astype(dtype, copy=copy)
    low_target = dtype == float16 or dtype == bfloat16
    if (low_target and src != float32 and src.kind != "b" and src != float16 and src != bfloat16) \
            or (src == bfloat16 and dtype.kind in "iu"):
        array = array.astype(float32)
    return array.astype(dtype)


def _category(dtype: np.dtype) -> builtins.int:
    return 2 if dtype == bfloat16 else _CATEGORY[dtype.kind]


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
    if a != b and {a, b} == {float16, bfloat16}:
        return float32  # PyTorch's rule; NumPy with ml_dtypes raises here
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
        if _category(g) > rank:
            result, rank = g, _category(g)
    for value in scalars:
        d = scalar_dtype(value)
        if _category(d) > rank:
            result, rank = d, _category(d)
    if result is None:
        raise ValueError("result_type: no tensors or scalars to promote")
    return result


def can_cast(source: np.dtype, target: np.dtype) -> builtins.bool:
    """Whether an op's result may be written into a tensor of `target` dtype (in-place ops,
    `out=`): never to a lower category (float into an integer tensor, an integer into a bool
    one), as PyTorch's canCast."""
    return _category(source) <= _category(target)


_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
                "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                "bool": "Bool"}


def torch_name(dtype: np.dtype) -> str:
    """PyTorch's scalar-type name of a dtype (Float, Long, ...), as its errors spell it."""
    return _TORCH_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)
