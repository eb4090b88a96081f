"""Activation checkpointing (torch.utils.checkpoint): trade compute for memory.

`checkpoint(fn, *args)` runs `fn` without recording the graph, keeping only its inputs; the
backward pass runs `fn` again with the graph on, from the random state the forward saw (so a
dropout inside draws the same mask), and backpropagates through that recomputation.

Both of torch's variants are one custom Function here, and in both the recomputed backward
accumulates the gradients of parameters used inside `fn` into their `.grad`, as torch's
reentrant variant does. `use_reentrant=False` adds what torch's other variant gives: keyword
arguments for `fn`, and gradients for the parameters inside `fn` even when no input requires
grad (its outputs then require grad whenever grad mode is on, where torch's may not).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from .. import random as _random
from ..autograd.engine import run_backward
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled
from ..creation import zeros
from ..nn import Sequential
from ..tensor import Tensor

_EXPLICIT = ("the use_reentrant parameter should be passed explicitly. use_reentrant=False is "
             "recommended; use_reentrant=True keeps the current default behavior.")


def _rng_states(tensors: list) -> tuple:
    """The CPU generator's state and that of each GPU holding one of `tensors`."""
    cuda = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
    return _random.get_rng_state(), {i: _random.get_cuda_rng_state(i) for i in cuda}


def _set_rng_states(states: tuple) -> None:
    cpu, cuda = states
    _random.set_rng_state(cpu)
    for index, state in cuda.items():
        _random.set_cuda_rng_state(state, index)


class Checkpoint(Function):
    """forward(run, preserve_rng_state, kwargs, anchor, *args): `run(*args, **kwargs)` without
    its graph. `anchor` is None, or an empty tensor requiring grad that makes the node record
    even when no input requires grad (use_reentrant=False)."""

    @staticmethod
    def forward(ctx, run, preserve_rng_state, kwargs, anchor, *args):
        tensors = [a for a in args if isinstance(a, Tensor)]
        ctx.run, ctx.kwargs, ctx.reentrant = run, kwargs, anchor is None
        ctx.rng = _rng_states(tensors) if preserve_rng_state else None
        # NOTE: the tensors are kept only as saved tensors (version-checked, freed after
        # backward); `args` keeps the other arguments, with a None in each tensor's place
        ctx.tensor_at = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.args = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*tensors)
        return run(*args, **kwargs)

    @staticmethod
    def backward(ctx, *grads):
        inputs = list(ctx.args)
        for i, t in zip(ctx.tensor_at, ctx.saved_tensors):  # checks they were not changed
            inputs[i] = t.detach().requires_grad_(t.requires_grad)
        create_graph = is_grad_enabled()
        outer = _rng_states([t for t in inputs if isinstance(t, Tensor)]) if ctx.rng else None
        try:
            if ctx.rng:
                _set_rng_states(ctx.rng)
            with enable_grad():
                outputs = ctx.run(*inputs, **ctx.kwargs)
        finally:
            if outer:
                _set_rng_states(outer)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grads)
                 if isinstance(o, Tensor) and o.requires_grad]
        if not pairs and ctx.reentrant:
            raise RuntimeError("checkpoint: none of output has requires_grad=True, this "
                               "checkpoint() is not necessary")
        if pairs:
            run_backward([o for o, _ in pairs], [g for _, g in pairs], create_graph,
                         create_graph, what="checkpoint")
        grads_in = tuple(t.grad if isinstance(t, Tensor) else None for t in inputs)
        return (None, None, None, None) + grads_in


def _reentrant(op: str, use_reentrant: bool | None) -> bool:
    if use_reentrant is None:
        warnings.warn(f"{op}: {_EXPLICIT}", UserWarning, stacklevel=3)
        return True
    return bool(use_reentrant)


def checkpoint(function: Callable, *args: Any, use_reentrant: bool | None = None,
               preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """`function(*args, **kwargs)`, keeping only the inputs for backward, which recomputes
    the rest (torch.utils.checkpoint.checkpoint). `function` returns a tensor or a tuple of
    tensors. Without `use_reentrant`, warns and takes True, as torch 2.x does."""
    reentrant = _reentrant("checkpoint", use_reentrant)
    if kwargs and reentrant:
        raise ValueError("checkpoint: unexpected keyword arguments: " + ",".join(kwargs) +
                         " (keyword arguments for the function need use_reentrant=False)")
    tensors = [a for a in args if isinstance(a, Tensor)]
    if reentrant:
        if not any(t.requires_grad for t in tensors):
            warnings.warn("checkpoint: none of the inputs have requires_grad=True. Gradients "
                          "will be None", UserWarning, stacklevel=2)
        anchor = None
    elif not is_grad_enabled():
        return function(*args, **kwargs)
    else:
        anchor = zeros(0, device=tensors[0].device if tensors else None, requires_grad=True)
    return Checkpoint.apply(function, preserve_rng_state, kwargs, anchor, *args)


def checkpoint_sequential(functions: Any, segments: int, input: Tensor,
                          use_reentrant: bool | None = None, **kwargs: Any) -> Tensor:
    """Run a sequence of modules (or an nn.Sequential) in `segments` checkpointed chunks; the
    last chunk runs normally (torch.utils.checkpoint.checkpoint_sequential)."""
    reentrant = _reentrant("checkpoint_sequential", use_reentrant)
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("checkpoint_sequential: unexpected keyword arguments: " +
                         ",".join(kwargs))
    if isinstance(functions, Sequential):
        functions = list(functions.children())
    functions = list(functions)
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int, got "
                         f"{segments!r}")

    def run(chunk: list) -> Callable:
        def forward(x):
            for f in chunk:
                x = f(x)
            return x
        return forward

    size = len(functions) // segments
    start = 0
    for _ in range(segments - 1):
        if size:
            input = checkpoint(run(functions[start:start + size]), input,
                               use_reentrant=reentrant, preserve_rng_state=preserve)
        start += size
    return run(functions[start:])(input)


__all__ = ["checkpoint", "checkpoint_sequential"]
