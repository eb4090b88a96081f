"""Double backward for fused ops: differentiate the op's composite reference instead.

A fused op (one kernel for forward, one for backward) has no recorded backward graph. When a
backward must itself be differentiable (create_graph=True), the op re-runs its reference, the
same math written with differentiable ops, and differentiates that, so higher derivatives
follow the readable definition.
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..tensor import Tensor
from .engine import run_backward
from .grad_mode import enable_grad


def reference_backward(reference: Callable, inputs: Sequence, grads: Sequence) -> tuple:
    """The gradients of `reference(*inputs)` given its output gradients `grads`, one per
    input (None for inputs that need none), recorded for further differentiation."""
    wanted = [isinstance(t, Tensor) and t.requires_grad for t in inputs]
    with enable_grad():
        outs = reference(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
    found = iter(run_backward([o for o, _ in pairs], [g for _, g in pairs], retain_graph=True,
                              create_graph=True,
                              inputs=[t for t, w in zip(inputs, wanted) if w],
                              allow_unused=True, what="double backward"))
    return tuple(next(found) if w else None for w in wanted)
