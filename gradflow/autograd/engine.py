"""The backward engine: an iterative walk of the graph in reverse topological order.

No recursion, so a chain of any depth works. Gradients arriving at the same node output are
summed before the node runs; leaves receive theirs through their `AccumulateGrad` node. A node
whose backward runs out of GPU memory is named in the error (gradflow.cuda.oom); in anomaly
mode each node's gradients are checked for NaN/Inf (anomaly.py).
"""
from __future__ import annotations

from typing import Any, Sequence

from ..backend import CPU, on_device, on_device_of
from ..cuda import oom
from ..tensor import Tensor
from . import anomaly
from .function import AccumulateGrad, gradient_edge
from .grad_mode import set_grad_enabled

_ANOMALY = anomaly.MODE


def _topological_order(roots: list) -> list:
    """Nodes reachable from `roots`, every node before the nodes it sends gradients to."""
    order, visited = [], set()
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.next_edges))]
        while stack:
            node, children = stack[-1]
            for child, _ in children:
                if child is not None and child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child.next_edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _check_gradient(out: Tensor, grad, what: str) -> Tensor:
    if grad is None:
        if out.numel() != 1:
            raise RuntimeError(f"{what}: grad can be implicitly created only for scalar outputs "
                               f"(output has shape {tuple(out.shape)}); pass a gradient")
        with on_device(out.device):
            return Tensor._wrap(out._xp.ones(out.shape, out.dtype))
    if not isinstance(grad, Tensor):
        raise TypeError(f"{what}: gradient must be a Tensor, got {type(grad).__name__}")
    if grad.shape != out.shape:
        raise RuntimeError(f"{what}: gradient has shape {tuple(grad.shape)} but the output "
                           f"has shape {tuple(out.shape)}")
    if grad.device != out.device:
        raise RuntimeError(f"{what}: gradient is on {grad.device} but the output is on "
                           f"{out.device}")
    return grad


def run_backward(outputs: Sequence[Tensor], grad_outputs: Sequence, retain_graph: bool,
                 create_graph: bool, inputs: Sequence[Tensor] | None = None,
                 allow_unused: bool = False, what: str = "backward"):
    """Propagate gradients from `outputs`.

    Without `inputs`, leaves accumulate into `.grad` (Tensor.backward). With `inputs`, their
    gradients are returned and no `.grad` is touched (autograd.grad); only the part of the
    graph that leads to them runs.
    """
    buffers: dict = {}
    roots = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"{what}: element {i} of tensors does not require grad and does "
                               "not have a grad_fn")
        g = _check_gradient(out, g, what)
        node, slot = gradient_edge(out)
        roots.append(node)
        _add(buffers, node, slot, g)
    order = _topological_order(roots)

    targets: dict[tuple[Any, int], Tensor | None] | None = None  # (node, slot) -> gradient
    if inputs is not None:
        targets = {}
        for t in inputs:
            if not t.requires_grad:
                raise RuntimeError(f"{what}: one of the differentiated Tensors does not require "
                                   "grad")
            targets.setdefault(gradient_edge(t), None)
        wanted = {node for node, _ in targets}
        needed = set()
        for node in reversed(order):
            if any(child in needed or child in wanted for child, _ in node.next_edges):
                needed.add(node)

    with set_grad_enabled(create_graph):
        for node in order:
            grads = buffers.pop(node, None)
            if grads is None:
                continue
            if node._pre_hooks:
                _run_pre_hooks(node, grads)
            leaf = isinstance(node, AccumulateGrad)
            if leaf:
                grads[0] = node.run_hooks(grads[0])
            if targets is not None:
                for slot, g in enumerate(grads):
                    if (node, slot) in targets:
                        targets[(node, slot)] = g
                if node not in needed:
                    continue
            if leaf:
                node.accumulate(grads[0])
                continue
            try:
                if _on_cpu(grads):
                    in_grads = _node_backward(node, grads)
                else:
                    with on_device_of(g for g in grads if g is not None):  # backward's guard
                        in_grads = _node_backward(node, grads)
            except oom.error_types() as err:
                raise oom.out_of_memory(f"{node.label()} (backward)", err) from None
            if not retain_graph:
                node.release()
            for (child, slot), g in zip(node.next_edges, in_grads):
                if child is not None and g is not None:
                    _add(buffers, child, slot, g)

    if inputs is None or targets is None:  # both or neither
        return None
    result = []
    for t in inputs:
        g = targets[gradient_edge(t)]
        if g is None and not allow_unused:
            raise RuntimeError(f"{what}: one of the differentiated Tensors (shape "
                               f"{tuple(t.shape)}) appears to not have been used in the graph. "
                               "Set allow_unused=True if this is the desired behavior.")
        result.append(g)
    return tuple(result)


def _run_pre_hooks(node, grads: list) -> None:
    """Tensor.register_hook's hooks on the node's outputs, each of which may replace its
    gradient."""
    for slot, hooks in node._pre_hooks.items():
        if grads[slot] is not None:
            for hook in list(hooks.values()):
                new = hook(grads[slot])
                if new is not None:
                    grads[slot] = new


def _on_cpu(grads: list) -> bool:
    """Whether every gradient is known to be on the CPU (Tensor._init), where the node's
    backward needs no device guard."""
    for g in grads:
        if g is not None and g._device is not CPU:
            return False
    return True


def _node_backward(node, grads: list) -> tuple:
    """The node's input gradients; in anomaly mode, checked (anomaly.checked_backward)."""
    if _ANOMALY.enabled:
        return anomaly.checked_backward(node, grads)
    return node.run_backward(grads)


def _add(buffers: dict, node, slot: int, grad: Tensor) -> None:
    grads = buffers.get(node)
    if grads is None:
        grads = buffers[node] = [None] * node.num_outputs
    grads[slot] = grad if grads[slot] is None else grads[slot] + grad
