"""In-place ops on tensors in the graph, as PyTorch rebases history.

`x.add_(y)` computes `add(x, y)` with autograd recording, writes the result into x's memory
and makes that op x's history. When x is a view of a base, the base's history becomes a
`CopySlices` node (the old base with the view's region replaced by the result) and x's
history is the view taken again from the new base; the base's other views take theirs again
when next used (function.gradient_edge), as the version counter they share has moved. A node
of the new op that saved x itself gets a copy of x's old values, which the write destroys.
"""
from __future__ import annotations

from typing import Any, Callable

from .. import dtypes
from ..backend import on_device
from ..tensor import Tensor
from .function import NEW_NODES, Op, _SavedInput, replay_view, retake_view
from .grad_mode import STATE as _GRAD
from .grad_mode import no_grad


def records(target: Tensor, args: tuple, kwargs: dict) -> bool:
    """Whether an in-place op on `target` with these operands enters the graph."""
    if not _GRAD.enabled:
        return False
    if target._requires_grad or (target._base is not None and target._base._requires_grad):
        return True
    for a in args:
        if isinstance(a, Tensor) and a._requires_grad:
            return True
    return any(isinstance(a, Tensor) and a._requires_grad for a in kwargs.values())


def apply_inplace(target: Tensor, name: str, fn: Callable, args: tuple = (),
                  kwargs: dict | None = None, any_dtype: bool = False) -> Tensor:
    """`target.name(*args, **kwargs)` for an in-place op `name` whose value is
    `fn(target, *args, **kwargs)`; `any_dtype` lets the result be cast to target's dtype
    whatever it is (copy_, fill_, comparisons), else PyTorch's casting rule holds."""
    kwargs = {} if kwargs is None else kwargs
    check_writable(target, name)
    if not records(target, args, kwargs):
        with no_grad():
            result = fn(target, *args, **kwargs)
        write(target, name, result, any_dtype)
        return target
    _check_rebase_allowed(target, name)
    outer, NEW_NODES.nodes = NEW_NODES.nodes, []
    try:
        result = fn(target, *args, **kwargs)
        nodes = NEW_NODES.nodes
    finally:
        NEW_NODES.nodes = outer
    for node in nodes:
        _keep_old_values(node, target)
    write(target, name, result, any_dtype)
    rebase(target, result)
    return target


def restride(target: Tensor, name: str, fn: Callable, args: tuple) -> Tensor:
    """An in-place change of layout (t_, transpose_, squeeze_, unsqueeze_): the tensor becomes
    the view `fn(target, *args)` of itself, history included."""
    if records(target, (), {}):
        _check_rebase_allowed(target, name)
    view = fn(target, *args)
    target.array = view.array
    if view.grad_fn is not None:
        target.grad_fn, target._output_nr = view.grad_fn, view._output_nr
    if target._base is not None:
        target._view_chain = view._view_chain
    target._version_box[0] += 1
    return target


def maybe_inplace(name: str, values: Callable, input: Tensor, inplace: bool,
                  *args: Any) -> Tensor:
    """`values(input, *args)`, written into input when `inplace` (torch's `inplace=True` of
    the activations and dropout)."""
    if inplace:
        return apply_inplace(input, name + "_", values, args)
    return values(input, *args)


def check_writable(target: Tensor, name: str) -> None:
    """Refuse a write into an expanded tensor, where elements share memory (as PyTorch); an
    empty tensor has no elements to share (NumPy gives its dims stride 0)."""
    if target.array.size == 0:
        return
    for size, step in zip(target.array.shape, target.array.strides):
        if step == 0 and size > 1:
            raise RuntimeError(
                f"{name}: unsupported operation: more than one element of the written-to "
                "tensor refers to a single memory location. Please clone() the tensor before "
                "performing the operation.")


def _check_rebase_allowed(target: Tensor, name: str) -> None:
    base = target._base
    if base is None:
        if target.grad_fn is None and target._requires_grad:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in "
                               "an in-place operation.")
        return
    if base.grad_fn is None and base._requires_grad:
        raise RuntimeError(f"{name}: a view of a leaf Variable that requires grad is being used "
                           "in an in-place operation.")
    if target._view_chain is None:
        raise RuntimeError(
            f"{name}: this tensor is a view and is being modified inplace. This view is the "
            "output of a function that returns multiple views. Such functions do not allow "
            "the output views to be modified inplace. You should replace the inplace "
            "operation by an out-of-place one.")


def write(target: Tensor, name: str, result: Any, any_dtype: bool = False) -> None:
    """Write an op's result into target's memory and move the shared version counter."""
    if not isinstance(result, Tensor):
        raise TypeError(f"{name}: the in-place result must be a Tensor, got "
                        f"{type(result).__name__}")
    if result.shape != target.shape:
        raise RuntimeError(f"{name}: output with shape {list(target.shape)} doesn't match the "
                           f"broadcast shape {list(result.shape)}")
    if not any_dtype and not dtypes.can_cast(result.dtype, target.dtype):
        raise RuntimeError(f"{name}: result type {dtypes.torch_name(result.dtype)} can't be "
                           f"cast to the desired output type {dtypes.torch_name(target.dtype)}")
    with on_device(target.device):
        target.array[...] = result.array.astype(target.dtype, copy=False)
    target._version_box[0] += 1
    if result.grad_fn is not None and result.grad_fn._saved_outputs:
        _save_target_as_output(result.grad_fn, result, target)


def _keep_old_values(node, target: Tensor) -> None:
    """Give a node of the op run in place a copy of every saved tensor that shares target's
    memory (its version counter), with its history, so backward reads the values from before
    the write (PyTorch saves `original_self` the same way)."""
    saved = node._saved
    box = target._version_box
    if not any(isinstance(s, _SavedInput) and s.tensor._version_box is box for s in saved):
        return
    node._saved = [_SavedInput(_copy_with_history(s.tensor))
                   if isinstance(s, _SavedInput) and s.tensor._version_box is box else s
                   for s in saved]


def _save_target_as_output(node, result: Tensor, target: Tensor) -> None:
    """A node that saved its output (exp_, sigmoid_) keeps the target's memory instead of the
    result's, as PyTorch's does: the result's buffer is freed, and a later in-place change of
    the target is caught at backward."""
    for saved in node._saved_outputs:
        if saved.index == result._output_nr and saved.array is result.array:
            saved.array, saved.version_box = target.array, target._version_box
            saved.version = target._version_box[0]


def _copy_with_history(t: Tensor) -> Tensor:
    copy = Tensor._wrap(t.array.copy(), t._requires_grad)
    copy.grad_fn, copy._output_nr = t.grad_fn, t._output_nr
    return copy


def rebase(target: Tensor, result: Tensor) -> None:
    """Make the op that gave `result` the history of `target` (and of its base)."""
    base = target._base
    if base is None:
        if not result._requires_grad:
            if not target._requires_grad:
                return
            result = Overwrite.apply(target, result)
        target.grad_fn, target._output_nr = result.grad_fn, result._output_nr
        target._requires_grad = True
        return
    if not (result._requires_grad or base._requires_grad):
        return
    whole = CopySlices.apply(base, result, chain=target._view_chain)
    base.grad_fn, base._output_nr, base._requires_grad = whole.grad_fn, 0, True
    target._view_version = -1  # stale: take the view again from the new base
    retake_view(target)


class Overwrite(Op):
    """A tensor overwritten by values that need no gradient (`y.zero_()`, `y.copy_(c)`): its
    old history gets zeros, as PyTorch's FillBackward."""

    op_name = "fill"

    @staticmethod
    def forward(ctx, old, new):
        return new.array

    @staticmethod
    def backward(ctx, g):
        return g * 0, None


class CopySlices(Op):
    """A base after an in-place op through one of its views: the old base everywhere except
    the view's region, which holds the op's result (PyTorch's CopySlices). `chain` takes the
    view from the base; the same chain takes the gradient's part for the result."""

    op_name = "copy_slices"

    @staticmethod
    def forward(ctx, base, value, chain):
        ctx.chain, ctx.value_dtype = chain, value.dtype
        return base.array

    @staticmethod
    def backward(ctx, g):
        need_base, need_value = ctx.needs_input_grad
        g = g.contiguous()  # NOTE: the chain's views (reshape) are always views of it then
        g_base = g_value = None
        if need_base:
            keep = g._xp.ones(g.shape, g.dtype)
            with no_grad():
                replay_view(ctx.chain, Tensor._wrap(keep)).array[...] = 0
            g_base = g * Tensor._wrap(keep)
        if need_value:
            g_value = replay_view(ctx.chain, g)
            if g_value.dtype != ctx.value_dtype:
                g_value = g_value.to(ctx.value_dtype)
        return g_base, g_value
