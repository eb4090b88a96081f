"""Argument checks, one home shared by the layers, their functional forms, the ops and the
optimizers. Each error names the owner, the argument and the value: `StepLR: step_size must
be positive, got 0`. A wrong type is a TypeError, a value out of range a ValueError (but a
RuntimeError for the sliding-window sizes of `pair`, as torch raises)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence


def _is_int(value: Any) -> bool:
    # NOTE: `type(...) is int` first: the Integral check costs an ABC lookup, and conv and
    # pooling make six of these checks a call
    return type(value) is int or (isinstance(value, numbers.Integral)
                                  and not isinstance(value, bool))


def _at_least(minimum: int) -> str:
    return {0: "non-negative", 1: "positive"}.get(minimum, f">= {minimum}")


def integer(owner: str, name: str, value: Any, minimum: int | None = None) -> int:
    """`value` as an int, at least `minimum` when given (bools are refused)."""
    if not _is_int(value):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be {_at_least(minimum)}, got {value!r}")
    return int(value)


def pair(owner: str, name: str, value: Any, minimum: int | None = None) -> tuple:
    """An int or a pair of ints as a (height, width) pair, each at least `minimum` when given:
    the sizes of the 2-D sliding-window ops and layers (kernel_size, stride, padding, ...).
    NOTE: a value out of range is a RuntimeError here, as torch's conv and pooling raise."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not (_is_int(items[0]) and _is_int(items[1])):
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")
    items = (int(items[0]), int(items[1]))
    if minimum is not None and min(items) < minimum:
        raise RuntimeError(f"{owner}: {name} must be {_at_least(minimum)}, got {value!r}")
    return items


def real(owner: str, name: str, value: Any, low: float | None = None,
         high: float | None = None, *, open_low: bool = False, open_high: bool = False) -> float:
    """`value` as a float within [low, high] (an end is excluded when open; None: no bound).
    NaN is always out of range."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    number = float(value)
    too_low = low is not None and (number < low or (open_low and number == low))
    too_high = high is not None and (number > high or (open_high and number == high))
    if too_low or too_high or math.isnan(number):
        raise ValueError(f"{owner}: {name} must be {_range(low, high, open_low, open_high)}, "
                         f"got {value!r}")
    return number


def _range(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    if low is None and high is None:
        return "a number, not NaN"
    if high is None:
        if low == 0:
            return "positive" if open_low else "non-negative"
        return f"> {low}" if open_low else f">= {low}"
    if low is None:
        return f"< {high}" if open_high else f"<= {high}"
    return f"in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"


def momentum(owner: str, value: Any) -> None:
    """A running-average momentum: in [0, 1], or None (a cumulative average)."""
    if value is not None and not 0.0 <= real(owner, "momentum", value) <= 1.0:
        raise ValueError(f"{owner}: momentum must be in [0, 1] or None, got {value!r}")


def choice(owner: str, name: str, value: Any, choices: Sequence) -> Any:
    """`value`, which must be one of `choices`."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise ValueError(f"{owner}: {name} must be {options}, got {value!r}")
    return value


def sizes(owner: str, name: str, value: Any, length: int | None = None,
          allow_none: bool = False) -> tuple:
    """A positive int, or a sequence of them (of `length` when given), as a tuple; None
    entries are kept when allowed."""
    seq = isinstance(value, (tuple, list))
    items = tuple(value) if seq else (value,)
    ok = all((v is None and allow_none) or _is_int(v) for v in items)
    if not items or not ok or (seq and length is not None and len(items) != length):
        what = "an int or a sequence of ints" if length is None else (
            f"an int or {length} ints")
        what += " (or None)" if allow_none else ""
        raise TypeError(f"{owner}: {name} must be {what}, got {value!r}")
    if any(v is not None and v < 1 for v in items):
        raise ValueError(f"{owner}: {name} must be positive, got {value!r}")
    return items


def probability(owner: str, p: Any) -> None:
    """A dropout probability, in [0, 1] (torch's wording)."""
    real(owner, "p", p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{owner}: dropout probability p has to be between 0 and 1, but got "
                         f"{p}")


def ntuple(owner: str, name: str, value: Any, n: int, minimum: int | None = None,
           count_error: type = RuntimeError) -> tuple:
    """An int or n ints as a tuple of n (torch's _single, _pair, _triple): the window sizes of
    the convolutions, the pools and their layers. A wrong type is a TypeError; a value below
    `minimum` a RuntimeError, and so is a wrong count unless `count_error` says otherwise, as
    torch's ops raise (layers, which torch does not check, call a wrong count a TypeError)."""
    if type(value) is int and (minimum is None or value >= minimum):  # the common case, fast
        return (value,) * n
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    # NOTE: `type(...) is int` first: the Integral check costs an ABC lookup
    if not all(type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))
               for v in items):
        raise TypeError(f"{owner}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if len(items) != n:
        raise count_error(f"{owner}: {name} must be a single int or {n} ints (one per "
                          f"spatial dimension), got {value!r}")
    if minimum is not None and min(items) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise RuntimeError(f"{owner}: {name} must be {what}, got {value!r}")
    return tuple(int(v) for v in items)
