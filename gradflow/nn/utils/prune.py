"""Pruning (torch.nn.utils.prune): `<name>` becomes `<name>_orig * <name>_mask`, recomputed by
a forward pre-hook, with the mask a buffer; `remove` makes the pruned tensor permanent.
Entries (unstructured) or whole slices along a dimension (structured) go by their magnitude
or at random, in one tensor or across several (global_unstructured). Pruning a pruned tensor
again prunes among the entries or slices still kept, as torch's PruningContainer does."""
from __future__ import annotations

from typing import Any

from ...autograd.grad_mode import no_grad
from ...creation import ones_like, rand
from ...tensor import Tensor
from ..module import Module
from ..parameter import Parameter
from .weight_norm import _pre_hooks, _remove_pre_hook

__all__ = ["BasePruningMethod", "L1Unstructured", "RandomUnstructured", "LnStructured",
           "RandomStructured", "CustomFromMask", "Identity", "l1_unstructured",
           "random_unstructured", "ln_structured", "random_structured", "global_unstructured",
           "custom_from_mask", "identity", "remove", "is_pruned"]


def _count(op: str, amount: Any, n: int) -> int:
    """How many of n entries `amount` (a count, or a fraction in [0, 1]) prunes."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise TypeError(f"{op}: amount must be an int or a float, got {type(amount).__name__}")
    if isinstance(amount, int):
        if amount < 0:
            raise ValueError(f"{op}: amount={amount} should either be a float in the range "
                             f"[0, 1] or a non-negative integer")
        if amount > n:
            raise ValueError(f"{op}: amount={amount} should be smaller than the number of "
                             f"parameters to prune={n}")
        return amount
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"{op}: amount={amount} should either be a float in the range [0, 1] "
                         f"or a non-negative integer")
    return round(amount * n)


class BasePruningMethod:
    """A pruning method: `compute_mask(t, default_mask)` says which entries stay; the
    instance is the forward pre-hook that applies the mask."""

    PRUNING_TYPE = "unstructured"
    importance_scores: Tensor | None = None
    amount: Any = 0

    def __init__(self, name: str = "weight") -> None:
        self._tensor_name = name

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def _scores(self, t: Tensor) -> Any:
        """The values whose smallest entries are pruned (an array like t's)."""
        raise NotImplementedError

    def _prune_among_kept(self, op: str, t: Tensor, default_mask: Tensor) -> Tensor:
        """default_mask with the `amount` lowest-scored of its kept entries set to 0."""
        mask = default_mask.detach().clone()
        keep = mask.array.reshape(-1) != 0
        xp = t._xp
        kept = xp.nonzero(keep)[0]
        k = _count(op, self.amount, int(kept.size))
        if k:
            scores = self._scores(t).reshape(-1)[kept]
            lowest = kept[xp.argsort(scores, kind="stable")[:k]]
            flat = mask.array.reshape(-1)
            flat[lowest] = 0
        return mask

    def apply_mask(self, module: Module) -> Tensor:
        name = self._tensor_name
        return getattr(module, name + "_orig") * getattr(module, name + "_mask")

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self._tensor_name, self.apply_mask(module))

    @classmethod
    def apply(cls, module: Module, name: str, *args: Any,
              importance_scores: Tensor | None = None, **kwargs: Any) -> "BasePruningMethod":
        method = cls(*args, **kwargs)
        method._tensor_name = name
        method.importance_scores = importance_scores
        previous = next((h for h in _pre_hooks(module)
                         if isinstance(h, BasePruningMethod) and h._tensor_name == name), None)
        if previous is None:
            orig = module._parameters.get(name)
            if not isinstance(orig, Parameter):
                raise AttributeError(f"prune: {module._get_name()} has no parameter {name!r}")
            default_mask = ones_like(orig)
        else:
            orig = getattr(module, name + "_orig")
            default_mask = getattr(module, name + "_mask")
        with no_grad():
            mask = method.compute_mask(orig, default_mask)
        if previous is None:
            del module._parameters[name]
            module.register_parameter(name + "_orig", orig)
            module.register_buffer(name + "_mask", mask)
            module.register_forward_pre_hook(method)
        else:
            module._buffers[name + "_mask"] = mask
        setattr(module, name, method.apply_mask(module))
        return method

    def remove(self, module: Module) -> None:
        name = self._tensor_name
        with no_grad():
            weight = self.apply_mask(module)
        delattr(module, name)
        orig = module._parameters.pop(name + "_orig")
        del module._buffers[name + "_mask"]
        orig.array = weight.array
        module.register_parameter(name, orig)


class L1Unstructured(BasePruningMethod):
    """Prune the entries of smallest absolute value."""

    def __init__(self, amount: Any) -> None:
        super().__init__()
        self.amount = amount

    def _scores(self, t: Tensor) -> Any:
        scores = t if self.importance_scores is None else self.importance_scores
        if scores.shape != t.shape:
            raise ValueError(f"l1_unstructured: importance_scores of shape "
                             f"{tuple(scores.shape)} should match the parameter's shape "
                             f"{tuple(t.shape)}")
        return t._xp.abs(scores.array)

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return self._prune_among_kept("l1_unstructured", t, default_mask)


class RandomUnstructured(BasePruningMethod):
    """Prune entries chosen at random (gradflow's generator)."""

    def __init__(self, amount: Any) -> None:
        super().__init__()
        self.amount = amount

    def _scores(self, t: Tensor) -> Any:
        return rand(*t.shape, device=t.device).array

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return self._prune_among_kept("random_unstructured", t, default_mask)


class LnStructured(BasePruningMethod):
    """Prune whole slices along `dim` (channels), those of smallest n-norm."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: Any, n: Any, dim: int = -1) -> None:
        super().__init__()
        self.amount, self.n, self.dim = amount, n, dim

    def _scores(self, t: Tensor) -> Any:
        from ...ops.linalg import vector_norm
        scores = t if self.importance_scores is None else self.importance_scores
        d = self.dim % t.ndim
        dims = tuple(i for i in range(t.ndim) if i != d)
        return vector_norm(scores.detach(), self.n, dim=dims).array

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return _prune_slices("ln_structured", self, t, default_mask)


class RandomStructured(BasePruningMethod):
    """Prune whole slices along `dim` chosen at random (gradflow's generator)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: Any, dim: int = -1) -> None:
        super().__init__()
        self.amount, self.dim = amount, dim

    def _scores(self, t: Tensor) -> Any:
        return rand(t.shape[self.dim], device=t.device).array

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return _prune_slices("random_structured", self, t, default_mask)


def _prune_slices(op: str, method: Any, t: Tensor, default_mask: Tensor) -> Tensor:
    """default_mask with the `amount` lowest-scored slices along `method.dim`, among those not
    pruned away already, set to 0 (torch's iterative structured pruning)."""
    if t.ndim <= 1:
        raise ValueError(f"{op}: structured pruning can only be applied to multidimensional "
                         f"tensors. Found tensor of shape {tuple(t.shape)} with {t.ndim} dims")
    d = method.dim % t.ndim
    xp = t._xp
    mask = default_mask.detach().clone()
    m = xp.moveaxis(mask.array, d, 0)  # a view: writes reach the mask
    alive = xp.nonzero(m.reshape(m.shape[0], -1).any(axis=1))[0]
    k = _count(op, method.amount, int(alive.size))
    if k:
        scores = method._scores(t)[alive]
        m[alive[xp.argsort(scores, kind="stable")[:k]]] = 0
    return mask


class CustomFromMask(BasePruningMethod):
    """Prune where a given mask is 0."""

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        self.mask = mask

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        if tuple(self.mask.shape) != tuple(default_mask.shape):
            raise ValueError(f"custom_from_mask: mask of shape {tuple(self.mask.shape)} should "
                             f"match the parameter's shape {tuple(default_mask.shape)}")
        return default_mask.detach() * self.mask.to(default_mask.dtype)


class Identity(BasePruningMethod):
    """Prune nothing: an all-ones mask (torch's prune.identity)."""

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return default_mask.detach().clone()


def _checked_amount(op: str, module: Module, name: str, amount: Any) -> None:
    t = module._parameters.get(name)
    if t is None:
        t = getattr(module, name + "_orig", None)
    if t is None:
        raise AttributeError(f"{op}: {module._get_name()} has no parameter {name!r}")
    _count(op, amount, t.numel())


def l1_unstructured(module: Module, name: str, amount: Any,
                    importance_scores: Tensor | None = None) -> Module:
    """Prune `amount` (a count or a fraction) of `module.<name>`'s entries, those of smallest
    absolute value (of `importance_scores` where given)."""
    _checked_amount("l1_unstructured", module, name, amount)
    L1Unstructured.apply(module, name, amount, importance_scores=importance_scores)
    return module


def random_unstructured(module: Module, name: str, amount: Any) -> Module:
    """Prune `amount` (a count or a fraction) of `module.<name>`'s entries, at random."""
    _checked_amount("random_unstructured", module, name, amount)
    RandomUnstructured.apply(module, name, amount)
    return module


def ln_structured(module: Module, name: str, amount: Any, n: Any, dim: int,
                  importance_scores: Tensor | None = None) -> Module:
    """Prune `amount` (a count or a fraction) of the slices of `module.<name>` along `dim`,
    those of smallest `n`-norm (of `importance_scores` where given)."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def random_structured(module: Module, name: str, amount: Any, dim: int) -> Module:
    """Prune `amount` (a count or a fraction) of the slices of `module.<name>` along `dim`, at
    random."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def custom_from_mask(module: Module, name: str, mask: Tensor) -> Module:
    """Prune `module.<name>` where `mask` is 0."""
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters: Any, pruning_method: type, importance_scores: Any = None,
                        **kwargs: Any) -> None:
    """Prune across several tensors at once, seen as one vector: `parameters` is an iterable
    of (module, name) pairs and `pruning_method` an unstructured method such as
    L1Unstructured, given its arguments (`amount=`) as keywords."""
    pairs = list(parameters)
    if getattr(pruning_method, "PRUNING_TYPE", None) != "unstructured":
        raise TypeError(f"global_unstructured: only unstructured pruning methods are "
                        f"supported, got {getattr(pruning_method, '__name__', pruning_method)}")
    importance_scores = importance_scores or {}
    tensors, masks = [], []
    for module, name in pairs:
        pruned = hasattr(module, name + "_mask")
        orig = getattr(module, name + "_orig") if pruned else getattr(module, name)
        tensors.append(importance_scores.get((module, name), orig).detach().reshape(-1))
        masks.append(getattr(module, name + "_mask").reshape(-1) if pruned
                     else ones_like(orig).reshape(-1))
    from ...ops.index import cat
    method = pruning_method(**kwargs)
    with no_grad():
        final = method.compute_mask(cat(tensors), cat(masks))
    start = 0
    for (module, name), t in zip(pairs, tensors):
        n = t.numel()
        shape = getattr(module, name).shape
        custom_from_mask(module, name, final[start:start + n].reshape(shape))
        start += n


def identity(module: Module, name: str) -> Module:
    """Reparametrise `module.<name>` with an all-ones mask (prunes nothing)."""
    Identity.apply(module, name)
    return module


def remove(module: Module, name: str) -> Module:
    """Make the pruning of `module.<name>` permanent: it becomes a parameter again holding
    orig * mask, and `<name>_orig`, `<name>_mask` and the hook go."""
    for hook in _pre_hooks(module):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            _remove_pre_hook(module, hook)
            return module
    raise ValueError(f"remove: parameter {name!r} of module {module} has to be pruned before "
                     f"pruning can be removed")


def is_pruned(module: Module) -> bool:
    """Whether any submodule of `module` has a pruning hook."""
    return any(isinstance(h, BasePruningMethod) for m in module.modules() for h in _pre_hooks(m))
