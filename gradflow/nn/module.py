"""Module: the base of every layer, with registries for parameters, buffers and submodules
filled by attribute assignment, as in torch.nn.Module."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator

from ..autograd.grad_mode import no_grad
from ..creation import zeros_like
from ..tensor import RemovableHandle, Tensor
from . import failures
from .parameter import Parameter

_calls = failures.calls


class Module:
    """Base class for layers and models: subclasses set attributes and define `forward`."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # -- registration -------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called")
        if isinstance(value, (Parameter, Module)):
            self.__dict__.pop(name, None)
            for registry in (self._parameters, self._buffers, self._modules):
                registry.pop(name, None)
            target = self._parameters if isinstance(value, Parameter) else self._modules
            target[name] = value
            return
        for registry, kind in ((self._parameters, "gradflow.nn.Parameter"),
                               (self._modules, "gradflow.nn.Module"),
                               (self._buffers, "Tensor")):
            if name in registry:
                if value is not None and not (registry is self._buffers
                                              and isinstance(value, Tensor)):
                    raise TypeError(f"cannot assign {type(value).__name__} as {name!r} ("
                                    f"{kind} or None expected)")
                registry[name] = value
                return
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is state but not trained (BatchNorm's running mean, say)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got "
                            f"{type(tensor).__name__}")
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got "
                            f"{type(module).__name__}")
        self._modules[name] = module

    register_module = add_module

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set | None = None) -> Iterator:
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in memo:
                continue
            memo.add(id(mod))
            yield name, mod
            children = [(f"{name}.{n}" if name else n, m) for n, m in mod._modules.items()
                        if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator:
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool) -> Iterator:
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{mod_name}.{name}" if mod_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator:
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call fn on every submodule, children first, then self (torch's order)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes and devices --------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            # NOTE: a fresh zero tensor, not an in-place fill: autograd may hand several
            # leaves one shared (even read-only, broadcast) gradient array.
            p.grad = None if set_to_none else zeros_like(p.grad)

    def _convert(self, fn: Callable[[Tensor], Tensor]) -> "Module":
        """Replace every parameter's and buffer's values in place (to(), float(), ...)."""
        with no_grad():
            for mod in self.modules():
                for p in mod._parameters.values():
                    if p is not None:
                        new = fn(p)
                        p.array, p._device = new.array, None
                        if p.grad is not None:
                            g = fn(p.grad)
                            p.grad = g
                for name, b in mod._buffers.items():
                    if b is not None:
                        mod._buffers[name] = fn(b)
        return self

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Move (and optionally cast floating) parameters and buffers, in place."""
        def convert(t: Tensor) -> Tensor:
            if t.is_floating_point():
                return t.to(*args, **kwargs)
            return t.to(*[a for a in args if not _is_dtype(a)],
                        **{k: v for k, v in kwargs.items() if k != "dtype"})
        return self._convert(convert)

    def cuda(self, device: Any = None) -> "Module":
        return self.to("cuda" if device is None else device)

    def cpu(self) -> "Module":
        return self.to("cpu")

    def float(self) -> "Module":
        return self._convert(lambda t: t.float() if t.is_floating_point() else t)

    def double(self) -> "Module":
        return self._convert(lambda t: t.double() if t.is_floating_point() else t)

    def half(self) -> "Module":
        return self._convert(lambda t: t.half() if t.is_floating_point() else t)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self, prefix: str = "") -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers under dotted names ('features.0.weight')."""
        out: OrderedDict = OrderedDict()
        for mod_name, mod in self.named_modules(prefix.rstrip(".")):
            base = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[base + name] = p.detach()
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[base + name] = b.detach()
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True):
        """Copy values in; with `strict`, missing, unexpected and mis-shaped keys are errors."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for k, target in own.items():
            if k in state_dict:
                src = state_dict[k]
                if not isinstance(src, Tensor):
                    raise TypeError(f"load_state_dict: value for {k!r} is a "
                                    f"{type(src).__name__}, expected a Tensor")
                if src.shape != target.shape:
                    mismatched.append(f"size mismatch for {k}: copying a param with shape "
                                      f"{tuple(src.shape)} from checkpoint, the shape in "
                                      f"current model is {tuple(target.shape)}")
        errors = list(mismatched)
        if strict:
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(
                    f'"{k}"' for k in missing))
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(
                    f'"{k}"' for k in unexpected))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for k, target in own.items():
                if k in state_dict:
                    target.copy_(state_dict[k])
        return _IncompatibleKeys(missing, unexpected)

    # -- calling and printing -----------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        depth = _calls.depth
        _calls.depth = depth + 1
        try:
            out = self.forward(*args, **kwargs)
            if self._forward_hooks:
                for hook in list(self._forward_hooks.values()):
                    new = hook(self, args, out)
                    if new is not None:
                        out = new
        except Exception as err:
            inputs = args + tuple(kwargs.values()) if kwargs else args
            failures.record(err, self, inputs, outermost=depth == 0)
            raise
        finally:
            _calls.depth = depth
        return out

    def _failure_hint(self, args: tuple, model: "Module") -> str:
        """A likely cause to add when this module's forward fails inside `model` ('' if none
        is known); layers override it (see gradflow/nn/failures.py)."""
        return ""

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """Call hook(module, inputs, output) after every forward; it may replace the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = ([extra] if extra else []) + lines
        return f"{type(self).__name__}(\n  " + "\n  ".join(body) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))


class _IncompatibleKeys(tuple):
    """(missing_keys, unexpected_keys), as load_state_dict returns in PyTorch."""

    missing_keys: list
    unexpected_keys: list

    def __new__(cls, missing: list, unexpected: list) -> _IncompatibleKeys:
        obj = super().__new__(cls, (missing, unexpected))
        obj.missing_keys, obj.unexpected_keys = missing, unexpected
        return obj


def _is_dtype(a: Any) -> bool:
    import numpy as np
    return isinstance(a, np.dtype) or (isinstance(a, type) and issubclass(a, np.generic))
