"""Errors that name the layer that failed: when an exception leaves a model, its message
gets the failed layer's dotted path in the model and its repr (`features.3 (Conv2d(...)): ...`),
plus any likely cause: the layer's own `_failure_hint` (Linear's, for an image of another size)
and parameters on another device than the input. Module.__call__ calls `record` as each
module's forward fails, and keeps the call depth in `calls`."""
from __future__ import annotations

import threading
from itertools import chain
from typing import TYPE_CHECKING

from ..compat import add_note
from ..tensor import Tensor

if TYPE_CHECKING:
    from .module import Module


class _CallDepth(threading.local):
    """How many Module calls are under way in this thread (0 outside any model)."""

    depth = 0


calls = _CallDepth()


def record(err: Exception, module: Module, args: tuple, outermost: bool) -> None:
    """Note each module an exception passes through; at the outermost call, name the innermost
    one (the layer that failed) in the message, once.

    The exception keeps its type and identity: a message-only exception gets the prefix in its
    args, any other a note (`add_note`).
    """
    d = err.__dict__
    if d.get("_gf_named"):
        return
    d.setdefault("_gf_failed", (module, args))
    d.setdefault("_gf_trail", []).append(module)
    if not outermost:
        return
    failed, failed_args = d.pop("_gf_failed")
    model, path = _locate(failed, d.pop("_gf_trail"))
    where = f"{path} ({_describe(failed)})" if path else _describe(failed)
    hints = [h for h in (failed._failure_hint(failed_args, model),
                         _device_hint(failed, path, failed_args)) if h]
    d["_gf_named"] = True
    if (len(err.args) == 1 and isinstance(err.args[0], str)
            and type(err).__str__ is BaseException.__str__):
        err.args = ("; ".join([f"{where}: {err.args[0]}"] + hints),)
    else:
        add_note(err, "; ".join([f"raised in {where}"] + hints))


def _locate(failed: Module, trail: list) -> tuple:
    """The outermost module of the call trail that contains `failed`, and the dotted name of
    `failed` in it (as its named_modules() gives it)."""
    for model in reversed(trail):
        for name, m in model.named_modules():
            if m is failed:
                return model, name
    return failed, ""


def _describe(module: Module) -> str:
    """A leaf's one-line repr; a container's type name (its repr spans many lines)."""
    return repr(module) if not module._modules else type(module).__name__


def _device_hint(module: Module, path: str, args: tuple) -> str:
    """Name the parameters and buffers of `module` that are not on its first input's device."""
    inputs = [a for a in args if isinstance(a, Tensor)]
    if not inputs:
        return ""
    device = inputs[0].device
    prefix = f"{path}." if path else ""
    by_device: dict = {}
    for name, t in chain(module.named_parameters(), module.named_buffers()):
        if t.device != device:
            by_device.setdefault(str(t.device), []).append(prefix + name)
    if not by_device:
        return ""
    parts = [f"{_names(names)} {'is' if len(names) == 1 else 'are'} on {dev}"
             for dev, names in by_device.items()]
    return (f"{' and '.join(parts)} but the input is on {device} (move the model with "
            f"model.to({str(device)!r}) or the input to the model's device)")


def _names(names: list, limit: int = 4) -> str:
    """'a', 'a and b', 'a, b and c'; past `limit` names, 'a, b, c, d and 2 more'."""
    shown = names[:limit] + ([f"{len(names) - limit} more"] if len(names) > limit else [])
    return " and ".join(shown) if len(shown) < 3 else (
        ", ".join(shown[:-1]) + f" and {shown[-1]}")
