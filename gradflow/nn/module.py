"""Module: the base of every layer, with registries for parameters, buffers and submodules
filled by attribute assignment, as in torch.nn.Module."""
from __future__ import annotations

import warnings
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled, no_grad
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
        # NOTE: the other hooks' registries live in `_hooks`, made by the first registration;
        # __call__ takes its fast path while it is None.
        object.__setattr__(self, "_hooks", None)

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
        """Register `module` as the child `name` (torch.nn.Module.add_module)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got "
                            f"{type(module).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"add_module: module name should be a string, got "
                            f"{type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"add_module: module name can't be empty or contain \".\", got "
                           f"{name!r}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"add_module: attribute {name!r} already exists")
        self._modules[name] = module

    register_module = add_module

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator:
        """(dotted name, module) for self and every submodule, depth first in registration
        order; with `remove_duplicate`, a module reached twice is given once (torch's)."""
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if remove_duplicate:
                if mod in memo:
                    continue
                memo.add(mod)
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

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator:
        seen = set()
        mods = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse
                else [(prefix, self)])
        for mod_name, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_name}.{name}" if mod_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator:
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        """The submodule at dotted path `target` ('' is self), as torch's."""
        if target == "":
            return self
        mod: Module = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(f"get_submodule: {mod._get_name()} has no attribute "
                                     f"`{item}`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError(f"get_submodule: `{item}` is not an nn.Module")
        return mod

    def _owner_of(self, op: str, target: str) -> tuple:
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, name):
            raise AttributeError(f"{op}: {mod._get_name()} has no attribute `{name}`")
        return mod, name

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path `target` ('layer.0.weight')."""
        mod, name = self._owner_of("get_parameter", target)
        param = getattr(mod, name)
        if not isinstance(param, Parameter):
            raise AttributeError(f"get_parameter: `{name}` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path `target` ('bn.running_mean')."""
        mod, name = self._owner_of("get_buffer", target)
        if name not in mod._buffers:
            raise AttributeError(f"get_buffer: `{name}` is not a buffer")
        return mod._buffers[name]

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
        """Move parameters and buffers to a device and cast the floating ones to a floating
        dtype, in place: `.to('cuda')`, `.to(gf.float64)`, `.to(tensor)` (torch's)."""
        dev, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dev, dtype = a.device, a.dtype
            elif _is_dtype(a) or isinstance(a, type):
                dtype = a
            else:
                dev = a
        if dtype is not None:
            dtype = _floating("to", dtype)
        target = [x for x in (dev, dtype) if x is not None]

        def convert(t: Tensor) -> Tensor:
            return t.to(*target) if t.is_floating_point() else (
                t if dev is None else t.to(dev))
        return self._convert(convert)

    def cuda(self, device: Any = None) -> "Module":
        return self.to("cuda" if device is None else device)

    def cpu(self) -> "Module":
        return self.to("cpu")

    def type(self, dst_type: Any) -> "Module":
        """Cast every parameter and buffer to `dst_type`."""
        return self._convert(lambda t: t.to(dst_type))

    def float(self) -> "Module":
        return self._convert(lambda t: t.float() if t.is_floating_point() else t)

    def double(self) -> "Module":
        return self._convert(lambda t: t.double() if t.is_floating_point() else t)

    def half(self) -> "Module":
        return self._convert(lambda t: t.half() if t.is_floating_point() else t)

    def bfloat16(self) -> "Module":
        return self._convert(lambda t: t.bfloat16() if t.is_floating_point() else t)

    def to_empty(self, *, device: Any = None, recurse: bool = True) -> "Module":
        """Parameters and buffers replaced by uninitialised ones of the same shape on
        `device` (torch's, for modules built on the meta device; here any device)."""
        from ..creation import empty
        mods = self.modules() if recurse else [self]
        with no_grad():
            for mod in mods:
                for p in mod._parameters.values():
                    if p is not None:
                        new = empty(*p.shape, dtype=p.dtype,
                                    device=p.device if device is None else device)
                        p.array, p._device = new.array, None
                for name, b in mod._buffers.items():
                    if b is not None:
                        mod._buffers[name] = empty(*b.shape, dtype=b.dtype,
                                                   device=b.device if device is None else device)
        return self

    # -- state --------------------------------------------------------------------------------
    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers under dotted names ('features.0.weight'); a
        module reached by two paths gives its tensors under both, as torch's does."""
        if args:  # torch's deprecated positional form: (destination, prefix, keep_vars)
            destination = args[0]
            prefix = args[1] if len(args) > 1 else prefix
            keep_vars = args[2] if len(args) > 2 else keep_vars
        out: Any = OrderedDict() if destination is None else destination
        for mod_name, mod in self.named_modules(prefix=prefix.rstrip("."),
                                                remove_duplicate=False):
            base = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[base + name] = p if keep_vars else p.detach()
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[base + name] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict: Any, strict: bool = True,
                        assign: bool = False) -> "_IncompatibleKeys":
        """Copy values in (or, with `assign`, take the given tensors as the parameters and
        buffers); with `strict`, missing and unexpected keys are errors, and mis-shaped
        values always are. Returns (missing_keys, unexpected_keys), as torch's."""
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected state_dict to be dict-like, got "
                            f"{type(state_dict).__name__}")
        slots = self._state_slots()
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in slots]
        errors = []
        for k, (mod, registry, name) in slots.items():
            if k not in state_dict:
                continue
            src, target = state_dict[k], getattr(mod, registry)[name]
            if not isinstance(src, Tensor):
                raise TypeError(f"load_state_dict: value for {k!r} is a "
                                f"{type(src).__name__}, expected a Tensor")
            if src.shape != target.shape:
                errors.append(f"size mismatch for {k}: copying a param with shape "
                              f"{tuple(src.shape)} from checkpoint, the shape in current model "
                              f"is {tuple(target.shape)}.")
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(
                    f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(
                    f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {self._get_name()}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for k, (mod, registry, name) in slots.items():
                if k not in state_dict:
                    continue
                src, target = state_dict[k], getattr(mod, registry)[name]
                if not assign:
                    target.copy_(src)
                elif registry == "_parameters":
                    mod._parameters[name] = Parameter(src.detach(),
                                                      requires_grad=target.requires_grad)
                else:
                    mod._buffers[name] = src
        return _IncompatibleKeys(missing, unexpected)

    def _state_slots(self) -> dict:
        """{state_dict key: (module, registry name, entry name)}, in state_dict's order."""
        out = {}
        for mod_name, mod in self.named_modules(remove_duplicate=False):
            base = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[base + name] = (mod, "_parameters", name)
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[base + name] = (mod, "_buffers", name)
        return out

    # -- calling and printing -----------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        depth = _calls.depth
        _calls.depth = depth + 1
        try:
            if self._hooks is None:
                out = self.forward(*args, **kwargs)
                if self._forward_hooks:
                    for hook in list(self._forward_hooks.values()):
                        new = hook(self, args, out)
                        if new is not None:
                            out = new
            else:
                out = self._call_with_hooks(args, kwargs)
        except Exception as err:
            inputs = args + tuple(kwargs.values()) if kwargs else args
            failures.record(err, self, inputs, outermost=depth == 0)
            raise
        finally:
            _calls.depth = depth
        return out

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        """__call__ once a pre-hook, backward hook or hook option is registered: torch's
        order (forward pre-hooks, forward, forward hooks; the backward hooks wrap the
        inputs and outputs in identity nodes whose backward calls them)."""
        hooks = self._hooks
        for key, hook in list(hooks.forward_pre.items()):
            if key in hooks.pre_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        backward = None
        if (hooks.backward or hooks.backward_pre) and is_grad_enabled():
            backward = _BackwardHooks(self, len(args))
            args = backward.wrap_inputs(args)
        out = None
        called: set = set()
        try:
            out = self.forward(*args, **kwargs)
            for key, hook in list(self._forward_hooks.items()):
                called.add(key)
                new = (hook(self, args, kwargs, out) if key in hooks.with_kwargs
                       else hook(self, args, out))
                if new is not None:
                    out = new
        except Exception:
            for key, hook in list(self._forward_hooks.items()):
                if key in hooks.always_call and key not in called:
                    try:
                        if key in hooks.with_kwargs:
                            hook(self, args, kwargs, out)
                        else:
                            hook(self, args, out)
                    except Exception as err:  # the forward's error is the one to see
                        warnings.warn(f"forward hook with always_call=True raised an exception "
                                      f"that was silenced as another error was raised in "
                                      f"forward: {err}", stacklevel=3)
            raise
        return out if backward is None else backward.wrap_outputs(out)

    def _hook_registry(self) -> "_HookRegistry":
        if self._hooks is None:
            object.__setattr__(self, "_hooks", _HookRegistry())
        return self._hooks

    def _failure_hint(self, args: tuple, model: "Module") -> str:
        """A likely cause to add when this module's forward fails inside `model` ('' if none
        is known); layers override it (see gradflow/nn/failures.py)."""
        return ""

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call hook(module, args) before every forward (hook(module, args, kwargs) with
        `with_kwargs`); it may return new args (or (args, kwargs))."""
        hooks = self._hook_registry()
        handle = _Handle(hooks.forward_pre, hooks.pre_with_kwargs)
        _insert(hooks.forward_pre, handle.id, hook, prepend)
        if with_kwargs:
            hooks.pre_with_kwargs[handle.id] = True
        return handle

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call hook(module, args, output) after every forward (hook(module, args, kwargs,
        output) with `with_kwargs`); it may replace the output. With `always_call`, it runs
        even when forward raises."""
        if prepend or with_kwargs or always_call:
            hooks = self._hook_registry()
            handle = _Handle(self._forward_hooks, hooks.with_kwargs, hooks.always_call)
            if with_kwargs:
                hooks.with_kwargs[handle.id] = True
            if always_call:
                hooks.always_call[handle.id] = True
        else:
            handle = _Handle(self._forward_hooks)
        _insert(self._forward_hooks, handle.id, hook, prepend)
        return handle

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False
                                    ) -> RemovableHandle:
        """Call hook(module, grad_input, grad_output) when the gradients of the module's
        inputs are computed; it may return new grad_input (torch's full backward hook)."""
        hooks = self._hook_registry()
        handle = _Handle(hooks.backward)
        _insert(hooks.backward, handle.id, hook, prepend)
        return handle

    def register_full_backward_pre_hook(self, hook: Callable, prepend: bool = False
                                        ) -> RemovableHandle:
        """Call hook(module, grad_output) when the gradients of the module's outputs are
        known, before those of its inputs; it may return new grad_output."""
        hooks = self._hook_registry()
        handle = _Handle(hooks.backward_pre)
        _insert(hooks.backward_pre, handle.id, hook, prepend)
        return handle

    def extra_repr(self) -> str:
        """The layer's settings, printed inside its parentheses; layers override it."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        """torch's layout: extra_repr on the first line, then one `(name): child` a line."""
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + addindent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_hooks", None)  # modules pickled before hook registries

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """(missing_keys, unexpected_keys), as load_state_dict returns in PyTorch."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class _HookRegistry:
    """A module's hooks other than plain forward hooks, made on first registration."""

    __slots__ = ("forward_pre", "pre_with_kwargs", "with_kwargs", "always_call", "backward",
                 "backward_pre")

    def __init__(self) -> None:
        self.forward_pre: OrderedDict = OrderedDict()
        self.pre_with_kwargs: dict = {}
        self.with_kwargs: dict = {}
        self.always_call: dict = {}
        self.backward: OrderedDict = OrderedDict()
        self.backward_pre: OrderedDict = OrderedDict()


class _Handle(RemovableHandle):
    """A hook's handle that also forgets the hook's options (with_kwargs, always_call)."""

    def __init__(self, hooks: dict, *extra: dict) -> None:
        super().__init__(hooks)
        self._extra = extra

    def remove(self) -> None:
        super().remove()
        for d in self._extra:
            d.pop(self.id, None)

    def __enter__(self) -> "_Handle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _insert(hooks: OrderedDict, key: int, hook: Callable, prepend: bool) -> None:
    hooks[key] = hook
    if prepend:
        hooks.move_to_end(key, last=False)


class _Identity(Op):
    """Passes its tensors through; its backward hands their gradients to `ctx.on_grads`
    (the backward hooks' node: torch's BackwardHookFunction)."""

    op_name = "backward_hook"

    @staticmethod
    def forward(ctx, on_grads: Callable, *tensors: Tensor) -> Any:
        ctx.on_grads = on_grads
        arrays = tuple(t.array for t in tensors)
        return arrays if len(arrays) > 1 else arrays[0]

    @staticmethod
    def backward(ctx, *grads: Any) -> tuple:
        return (None,) + tuple(ctx.on_grads(grads))


def _passed_through(on_grads: Callable, tensors: list) -> tuple:
    """The tensors through one `_Identity` node. Each output shares its input's memory and
    version counter, so an in-place change of either is seen by the saved-tensor checks."""
    new = _Identity.apply(on_grads, *tensors)
    new = new if isinstance(new, tuple) else (new,)
    for out, src in zip(new, tensors):
        out._version_box = src._version_box
    return new


class _BackwardHooks:
    """One call's full backward hooks: the outputs' identity node runs the pre-hooks on
    grad_output, the inputs' node runs the hooks on (grad_input, grad_output)."""

    def __init__(self, module: Module, n_inputs: int) -> None:
        self.module, self.n_inputs = module, n_inputs
        self.input_slots: list = []
        self.grad_outputs: tuple = ()

    def wrap_inputs(self, args: tuple) -> tuple:
        self.input_slots = [i for i, a in enumerate(args)
                            if isinstance(a, Tensor) and a.requires_grad]
        if not self.input_slots:
            return args
        new = _passed_through(self._on_input_grads, [args[i] for i in self.input_slots])
        wrapped = list(args)
        for i, t in zip(self.input_slots, new):
            wrapped[i] = t
        return tuple(wrapped)

    def wrap_outputs(self, out: Any) -> Any:
        single = isinstance(out, Tensor)
        outs = (out,) if single else out
        if not isinstance(outs, tuple):
            return out
        slots = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        if not slots:
            return out
        self.n_outputs = len(outs)
        self.output_slots = slots
        new = _passed_through(self._on_output_grads, [outs[i] for i in slots])
        outs = list(outs)
        for i, t in zip(slots, new):
            outs[i] = t
        return outs[0] if single else tuple(outs)

    def _on_output_grads(self, grads: tuple) -> tuple:
        full = [None] * self.n_outputs
        for i, g in zip(self.output_slots, grads):
            full[i] = g
        grad_output = tuple(full)
        for hook in list(self.module._hooks.backward_pre.values()):
            new = hook(self.module, grad_output)
            if new is not None:
                grad_output = tuple(new) if isinstance(new, (tuple, list)) else (new,)
        self.grad_outputs = grad_output
        if not self.input_slots:
            if self.module._hooks.backward:
                warnings.warn("Full backward hook is firing when gradients are computed with "
                              "respect to module outputs since no inputs require gradients.",
                              stacklevel=2)
            nones = (None,) * self.n_inputs
            for hook in list(self.module._hooks.backward.values()):
                new = hook(self.module, nones, grad_output)
                if new is not None and any(g is not None for g in new):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
        return tuple(grad_output[i] for i in self.output_slots)

    def _on_input_grads(self, grads: tuple) -> tuple:
        full = [None] * self.n_inputs
        for i, g in zip(self.input_slots, grads):
            full[i] = g
        grad_input = tuple(full)
        for hook in list(self.module._hooks.backward.values()):
            new = hook(self.module, grad_input, self.grad_outputs)
            if new is not None:
                new = tuple(new) if isinstance(new, (tuple, list)) else (new,)
                if len(new) != len(grad_input):
                    raise RuntimeError(f"backward hook returned {len(new)} gradient(s), "
                                       f"expected {len(grad_input)} (one per input)")
                grad_input = new
        return tuple(grad_input[i] for i in self.input_slots)


def addindent(text: str, spaces: int) -> str:
    """Indent every line but the first by `spaces` (torch's _addindent, for reprs)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line if line.strip() else ""
                                         for line in lines[1:])


def _floating(op: str, dtype: Any) -> Any:
    from .. import dtypes
    dt = dtypes.as_dtype(dtype)
    if not dtypes.is_floating(dt):
        raise TypeError(f"{op}: nn.Module.to only accepts floating point dtypes, but got "
                        f"desired dtype={dt}")
    return dt


def _is_dtype(a: Any) -> bool:
    import numpy as np
    return isinstance(a, np.dtype) or (isinstance(a, type) and issubclass(a, np.generic))
