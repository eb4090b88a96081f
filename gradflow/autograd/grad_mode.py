"""Whether operations record the graph: `no_grad`, `enable_grad`, `set_grad_enabled`,
`inference_mode`.

The flags are per thread, as in PyTorch, so a data-loading thread cannot switch them for the
training loop.
"""
from __future__ import annotations

import functools
import threading


class _GradState(threading.local):
    """This thread's switch; `Function.apply` reads `STATE.enabled` itself, once per op."""

    enabled = True
    inference = False


STATE = _GradState()


def is_grad_enabled() -> bool:
    """True when new operations record the graph for autograd."""
    return STATE.enabled


def _set(mode: bool) -> None:
    STATE.enabled = bool(mode)


class _GradMode:
    """A context manager that is also a decorator, restoring the previous mode on exit; used
    bare (`@no_grad`) it decorates the function it is given, as torch's does."""

    mode: bool

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)

    def __enter__(self) -> None:
        self._prev = is_grad_enabled()
        _set(self.mode)

    def __exit__(self, *exc) -> None:
        _set(self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Run without recording the graph (torch.no_grad)."""

    mode = False


class enable_grad(_GradMode):
    """Record the graph even inside `no_grad` (torch.enable_grad)."""

    mode = True


class set_grad_enabled(_GradMode):
    """Switch recording on or off; takes effect at once, and restores on `with` exit."""

    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        self._prev = is_grad_enabled()
        self.mode = bool(mode)
        _set(self.mode)

    def __enter__(self) -> None:
        pass

    def __call__(self, fn):
        mode = self.mode
        _set(self._prev)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


def is_inference_mode_enabled() -> bool:
    """True inside `inference_mode()` (torch.is_inference_mode_enabled)."""
    return STATE.inference


class inference_mode:
    """No graph recording, for inference (torch.inference_mode); a context manager and a
    decorator, also bare (`@inference_mode`). `inference_mode(False)` leaves it, turning
    recording back on, as torch does.

    NOTE: unlike torch, tensors made inside are ordinary tensors, not "inference tensors":
    they may later be saved for backward or updated in place outside the block, and
    `enable_grad()` inside the block records the graph again (torch keeps not recording).
    Its speed is that of no_grad, which is all gradflow's inference mode saves.
    """

    def __new__(cls, mode=True):
        if isinstance(mode, bool) or mode is None:
            return super().__new__(cls)
        return cls()(mode)  # used bare, as a decorator

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)

    def __enter__(self) -> None:
        self._prev = (STATE.enabled, STATE.inference)
        STATE.enabled, STATE.inference = not self.mode, self.mode

    def __exit__(self, *exc) -> None:
        STATE.enabled, STATE.inference = self._prev

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)
        return wrapper

    def clone(self) -> "inference_mode":
        return inference_mode(self.mode)
