"""Anomaly detection (torch.autograd.detect_anomaly): find the op that first made a NaN or Inf.

While enabled, every op remembers where user code called it and checks its outputs, and the
engine checks each node's gradients, so the error names the op and the line that created it
instead of a loss that turns NaN many steps later. The mode is process-wide, as in PyTorch;
while it is off, an op pays one attribute check for it.
"""
from __future__ import annotations

import functools
import os
import traceback

from .. import dtypes
from ..backend import array_module
from ..compat import add_note

_PACKAGE_DIR = os.path.dirname(os.path.dirname(__file__)) + os.sep
_MAX_FRAMES = 32  # user frames kept per node: enough to reach the script from a model


class _Mode:
    """The switches read by `Function.apply` and the engine."""

    __slots__ = ("enabled", "check_nan", "in_backward")

    def __init__(self) -> None:
        self.enabled = False
        self.check_nan = True
        self.in_backward = False  # ops run by a backward rule: the node's gradients are checked


MODE = _Mode()


def is_anomaly_enabled() -> bool:
    """True while ops record their creation site (torch.is_anomaly_enabled)."""
    return MODE.enabled


def is_anomaly_check_nan_enabled() -> bool:
    """True while anomaly mode also checks for NaN/Inf (torch.is_anomaly_check_nan_enabled)."""
    return MODE.enabled and MODE.check_nan


class detect_anomaly:
    """Turn anomaly detection on inside a `with` block or a decorated function, restoring the
    previous mode on exit (torch.autograd.detect_anomaly). With `check_nan=False`, ops still
    record where they were created, for errors raised in their backward, but no values are
    checked."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = bool(check_nan)

    def __enter__(self) -> None:
        self._prev = (MODE.enabled, MODE.check_nan)
        MODE.enabled, MODE.check_nan = True, self.check_nan

    def __exit__(self, *exc) -> None:
        MODE.enabled, MODE.check_nan = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:
    """Switch anomaly detection on or off at once; in a `with` block the previous mode comes
    back on exit (torch.autograd.set_detect_anomaly)."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._prev = (MODE.enabled, MODE.check_nan)
        MODE.enabled, MODE.check_nan = bool(mode), bool(check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        MODE.enabled, MODE.check_nan = self._prev


def user_stack() -> traceback.StackSummary:
    """The calling frames outside gradflow, outermost first. Source lines are read only when
    the trace is printed, which keeps recording one per op affordable."""
    frames = []
    for frame, lineno in traceback.walk_stack(None):
        if not frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            frames.append((frame, lineno))
            if len(frames) == _MAX_FRAMES:
                break
    frames.reverse()
    return traceback.StackSummary.extract(frames, lookup_lines=False)


def record_forward(node, outputs: list) -> None:
    """Keep where user code created `node`, then check its outputs for NaN/Inf."""
    node.creation_trace = user_stack()
    if not MODE.check_nan or MODE.in_backward:
        return
    for i, out in enumerate(outputs):
        bad = _non_finite(out.array)
        if bad:
            raise RuntimeError(
                f"Function '{node.label()}' returned {bad} values in its {_ordinal(i)} output "
                f"(shape {tuple(out.shape)}, dtype {out.dtype}), called at "
                f"{_site(node.creation_trace)}")


def checked_backward(node, grads: list) -> tuple:
    """`node.run_backward(grads)` in anomaly mode: an error it raises gets the node's creation
    traceback, and a NaN/Inf among its gradients raises, naming the node (as PyTorch does)."""
    prev, MODE.in_backward = MODE.in_backward, True
    try:
        in_grads = node.run_backward(grads)
    except Exception as err:
        add_note(err, _forward_trace(node))
        raise
    finally:
        MODE.in_backward = prev
    if MODE.check_nan:
        for i, g in enumerate(in_grads):
            bad = None if g is None else _non_finite(g.array)
            if bad:
                raise RuntimeError(
                    f"Function '{node.name()}' (op '{node.label()}') returned "
                    f"{bad} values in its {_ordinal(i)} output (the gradient of input {i}, "
                    f"shape {tuple(g.shape)}).\n{_forward_trace(node)}")
    return in_grads


def _forward_trace(node) -> str:
    if node.creation_trace is None:
        return (f"No forward traceback for '{node.label()}': it was created with anomaly "
                "detection off.")
    return (f"Traceback of the forward call that created '{node.label()}':\n"
            + "".join(node.creation_trace.format()).rstrip())


def _non_finite(array) -> str | None:
    """'nan' or 'inf' when a floating array holds one (a device sync for CuPy), else None."""
    if dtypes.kind(array.dtype) not in "fc":
        return None
    xp = array_module(array)
    if bool(xp.isfinite(array).all()):
        return None
    return "nan" if bool(xp.isnan(array).any()) else "inf"


def _site(trace: traceback.StackSummary) -> str:
    """The innermost user frame as `file:line, in function` and its code line."""
    if not trace:
        return "a gradflow-internal call (no user frame on the stack)"
    frame = trace[-1]
    code = (frame.line or "").strip()
    return f"{frame.filename}:{frame.lineno}, in {frame.name}" + (f"\n    {code}" if code else "")


def _ordinal(i: int) -> str:
    suffix = "th" if 10 <= i % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(i % 10, "th")
    return f"{i}{suffix}"
