"""Whether operations record the graph: `no_grad`, `enable_grad`, `set_grad_enabled`.

The flag is per thread, as in PyTorch, so a data-loading thread cannot switch it for the
training loop.
"""
from __future__ import annotations

import functools
import threading


class _GradState(threading.local):
    """This thread's switch; `Function.apply` reads `STATE.enabled` itself, once per op."""

    enabled = True


STATE = _GradState()


def is_grad_enabled() -> bool:
    """True when new operations record the graph for autograd."""
    return STATE.enabled


def _set(mode: bool) -> None:
    STATE.enabled = bool(mode)


class _GradMode:
    """A context manager that is also a decorator, restoring the previous mode on exit."""

    mode: bool

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
