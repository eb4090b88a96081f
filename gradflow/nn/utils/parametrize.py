"""Parametrizations (torch.nn.utils.parametrize): `module.<name>` computed on every access
from the tensor(s) it was built from, kept under `module.parametrizations.<name>.original`
(or `original0`, `original1`, ... when the parametrization's `right_inverse` returns several).
As in torch, the module's class is swapped for a subclass `Parametrized<Class>` that holds
the property."""
from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from ..module import Module
from ..modules.container import ModuleDict, ModuleList
from ..parameter import Parameter

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized",
           "ParametrizationList"]


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, with the original tensor(s)."""

    def __init__(self, modules: list, original: Tensor, unsafe: bool = False) -> None:
        super().__init__(modules)
        object.__setattr__(self, "unsafe", unsafe)
        first = modules[0]
        with no_grad():
            new = first.right_inverse(original) if hasattr(first, "right_inverse") else original
        is_param = isinstance(original, Parameter)
        object.__setattr__(self, "is_tensor", isinstance(new, Tensor))
        if self.is_tensor:
            self._register("original", new, original, is_param)
        else:
            object.__setattr__(self, "ntensors", len(new))
            for i, t in enumerate(new):
                self._register(f"original{i}", t, original, is_param)

    def _register(self, name: str, value: Tensor, original: Tensor, is_param: bool) -> None:
        if is_param:
            self.register_parameter(name, Parameter(value.detach(),
                                                    requires_grad=original.requires_grad))
        else:
            self.register_buffer(name, value.detach())

    def right_inverse(self, value: Tensor) -> None:
        """Set the original(s) so that the parametrized tensor becomes `value`."""
        with no_grad():
            for module in reversed(list(self)[1:]):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {module._get_name()} does not "
                                       "implement right_inverse")
                value = module.right_inverse(value)
            first = self[0]
            new = first.right_inverse(value) if hasattr(first, "right_inverse") else value
            targets = ([self.original] if self.is_tensor
                       else [getattr(self, f"original{i}") for i in range(self.ntensors)])
            for target, t in zip(targets, [new] if self.is_tensor else new):
                target.copy_(t)

    def forward(self) -> Tensor:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*[getattr(self, f"original{i}") for i in range(self.ntensors)])
        for module in list(self)[1:]:
            x = module(x)
        return x


def _inject_class(module: Module) -> None:
    cls = type(module)
    new = type(f"Parametrized{cls.__name__}", (cls,), {"_unparametrized": cls})
    object.__setattr__(module, "__class__", new)


def _inject_property(module: Module, name: str) -> None:
    def get(self: Module) -> Tensor:
        return self.parametrizations[name]()

    def set_(self: Module, value: Tensor) -> None:
        self.parametrizations[name].right_inverse(value)

    setattr(type(module), name, property(get, set_))


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether `module` (or its tensor `tensor_name`) has a parametrization."""
    parametrizations = module._modules.get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    return len(parametrizations) > 0 if tensor_name is None else tensor_name in parametrizations


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make `module.<tensor_name>` the output of `parametrization` applied to the original
    tensor (torch.nn.utils.parametrize.register_parametrization); a second registration on
    the same tensor applies after the first."""
    if is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].append(parametrization)
        return module
    if tensor_name in module._parameters:
        original = module._parameters[tensor_name]
    elif tensor_name in module._buffers:
        original = module._buffers[tensor_name]
    else:
        raise ValueError(f"register_parametrization: module '{module._get_name()}' has no "
                         f"parameter or buffer with name '{tensor_name}'")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if not is_parametrized(module):
        _inject_class(module)
        module.parametrizations = ModuleDict()
    module.parametrizations[tensor_name] = plist
    _inject_property(module, tensor_name)
    return module


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo the parametrizations of `module.<tensor_name>`: it becomes a parameter again,
    holding its parametrized value (or the original with `leave_parametrized=False`)."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"remove_parametrizations: module {module._get_name()} does not have "
                         f"a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            original.array = value.detach().array.copy()
    else:
        if not leave_parametrized:
            raise ValueError("remove_parametrizations: cannot leave unparametrized "
                             "(`leave_parametrized=False`) a tensor that is parametrized in "
                             "terms of a sequence of tensors")
        with no_grad():
            value = getattr(module, tensor_name)
        original = Parameter(value.detach(), requires_grad=value.requires_grad) \
            if isinstance(plist.original0, Parameter) else value.detach()
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    if isinstance(original, Parameter):
        module.register_parameter(tensor_name, original)
    else:
        module.register_buffer(tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        object.__setattr__(module, "__class__", getattr(type(module), "_unparametrized"))
    return module
