"""Tensors printed as PyTorch prints them (torch/_tensor_str.py), character for character.

The rules: floats print in fixed notation with `precision` decimals unless the nonzero finite
magnitudes span more than 1e3, exceed 1e8 or fall below 1e-4 (then scientific); when every
such value is an integer they print as `1.`; columns share one width, that of the widest
nonzero finite value; a tensor of more than `threshold` elements shows `edgeitems` items at
each end of every long dimension around `...`; lines wrap at `linewidth`. The suffixes say
the device when it is not the CPU, the dtype when it is not the default float dtype,
int64 or bool, then `grad_fn=<...>` or `requires_grad=True`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from . import dtypes
from .backend import CPU, array_module, move_array, on_device

if TYPE_CHECKING:
    from .tensor import Tensor


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = _PrintOptions()
_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80),
             "full": (4, math.inf, 3, 80)}


def set_printoptions(precision: int | None = None, threshold: float | None = None,
                     edgeitems: int | None = None, linewidth: int | None = None,
                     profile: str | None = None, sci_mode: bool | None = None) -> None:
    """Set how tensors print (torch.set_printoptions): `profile` ('default', 'short',
    'full') first, then each option given; `sci_mode` is always set (None: chosen from the
    values), as in torch."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of "
                             f"{', '.join(map(repr, _PROFILES))}; got {profile!r}")
        (PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems,
         PRINT_OPTS.linewidth) = _PROFILES[profile]
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            setattr(PRINT_OPTS, name, value)
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict:
    """The current options, as keyword arguments for `set_printoptions`."""
    return dataclasses.asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs: Any) -> Iterator[None]:
    """Change the print options for a `with` block (torch's printoptions)."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


class _Formatter:
    """The notation and column width for the values of one tensor (torch's _Formatter)."""

    def __init__(self, values: np.ndarray) -> None:
        self.floating = dtypes.is_floating(values.dtype)
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        flat = values.reshape(-1)
        p = PRINT_OPTS.precision
        if not self.floating:
            self.max_width = max([1] + [len(str(v)) for v in flat.tolist()])
            return
        wide = flat.astype(np.float64)
        finite = wide[np.isfinite(wide) & (wide != 0)]
        if finite.size == 0:
            return
        magnitude = np.abs(finite)
        low, high = magnitude.min(), magnitude.max()
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        self.sci_mode = (high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4
                         if PRINT_OPTS.sci_mode is None else PRINT_OPTS.sci_mode)
        if self.sci_mode:
            texts = [f"{v:.{p}e}" for v in finite.tolist()]
        elif self.int_mode:
            texts = [f"{v:.0f}." for v in finite.tolist()]  # the dot marks a float
        else:
            texts = [f"{v:.{p}f}" for v in finite.tolist()]
        self.max_width = max(len(t) for t in texts)

    def format(self, value: Any) -> str:
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:{self.max_width}.{PRINT_OPTS.precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            text = f"{value:.{PRINT_OPTS.precision}f}"
        return text.rjust(self.max_width)


def _edges(array: Any, summarize: bool) -> tuple:
    """The items that will print, as a host array, and per axis whether `...` stands between
    its first and last `edgeitems` (taken on the array's own device, so a large GPU tensor
    copies only what prints)."""
    e = PRINT_OPTS.edgeitems
    cut = tuple(summarize and n > 2 * e for n in array.shape)
    if any(cut):
        xp = array_module(array)
        for axis, n in enumerate(array.shape):
            if cut[axis]:
                keep = xp.concatenate([xp.arange(e), xp.arange(n - e, n)]).astype(np.int64)
                array = xp.take(array, keep, axis=axis)
    return move_array(array, CPU), cut


def _vector(values: np.ndarray, cut: bool, indent: int, fmt: _Formatter) -> str:
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / (fmt.max_width + 2)))
    e = PRINT_OPTS.edgeitems
    items = values.tolist()
    if cut and not e:
        data = ["..."]
    elif cut:
        data = [fmt.format(v) for v in items[:e]] + [" ..."] + [fmt.format(v) for v in items[e:]]
    else:
        data = [fmt.format(v) for v in items]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(values: np.ndarray, cut: tuple, indent: int, fmt: _Formatter) -> str:
    if values.ndim == 0:
        return fmt.format(values.item())
    if values.ndim == 1:
        return _vector(values, cut[0], indent, fmt)
    rows = [_nested(row, cut[1:], indent + 1, fmt) for row in values]
    if cut[0]:
        e = PRINT_OPTS.edgeitems
        rows = rows[:e] + ["..."] + rows[e:]
    return "[" + ("," + "\n" * (values.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _with_suffixes(text: str, suffixes: list, indent: int) -> str:
    parts = [text]
    last_line = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line + len(suffix) + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line += len(suffix) + 2
    return "".join(parts) + ")"


def tensor_repr(t: "Tensor") -> str:
    """`repr(t)` and `str(t)`, as torch writes them."""
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if t.device.type != "cpu":  # NOTE: torch's too ignores set_default_device here
        suffixes.append(f"device='{t.device}'")
    default = dtypes.get_default_dtype()
    dtype_suffix = f"dtype=gradflow.{t.dtype}"
    if t.numel() == 0:
        if t.ndim != 1:
            suffixes.append(f"size={tuple(t.shape)}")
        if t.dtype != default:
            suffixes.append(dtype_suffix)
        body = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(t.shape)}")
        if t.dtype not in (default, dtypes.int64, dtypes.bool):
            suffixes.append(dtype_suffix)
        with on_device(t.device):
            values, cut = _edges(t.array, t.numel() > PRINT_OPTS.threshold)
        body = _nested(values, cut, indent, _Formatter(values))
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _with_suffixes(prefix + body, suffixes, indent)
