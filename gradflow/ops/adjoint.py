"""`LinearOp`, the base of the ops that are linear in their one tensor input and come paired
with their adjoint: im2col and col2im, indexing and its scatter-add, expand and sum_to, the
average-pooling kernels, reshape and casts (their own adjoints).

The gradient of a linear map is its adjoint applied to the output gradient, and the adjoint's
gradient is the map again, so a pair closes under differentiation: gradients of every order
are made of the two ops, and no backward rule is written twice.
"""
from __future__ import annotations

from typing import Any, Callable

from ..autograd.function import Op

# NOTE: the adjoint maps back into the input's space, so these of its arguments are always the
# input's (an im2col's adjoint folds to the input's shape); the rest are the op's own.
_OF_INPUT = ("shape", "dtype", "device")


class LinearOp(Op):
    """An op linear in its tensor input: forward runs `compute(array, **kwargs)`; backward
    applies `adjoint` to the gradient. `params` names the keyword arguments the op takes when
    it runs as its partner's adjoint; any others keep their defaults there."""

    params: tuple = ()
    compute: Callable  # (array, **kwargs) -> array
    adjoint: type[LinearOp]  # set by `adjoints`

    @classmethod
    def forward(cls, ctx, x, **kwargs):
        ctx.adjoint_args = {name: _of_input(x, name) if name in _OF_INPUT else kwargs[name]
                            for name in cls.adjoint.params}
        return cls.compute(x.array, **kwargs)

    @classmethod
    def backward(cls, ctx, g):
        return cls.adjoint.apply(g, **ctx.adjoint_args)


def _of_input(x, name: str) -> Any:
    return tuple(x.shape) if name == "shape" else getattr(x, name)


def adjoints(op: type[LinearOp], adjoint: type[LinearOp]) -> None:
    """Make two LinearOps each other's backward; a self-adjoint op is passed twice."""
    op.adjoint, adjoint.adjoint = adjoint, op
