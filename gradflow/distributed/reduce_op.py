"""torch.distributed.ReduceOp: how a reducing collective combines the ranks' values."""
from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """SUM, AVG (the mean over the group's ranks; floating-point tensors), PRODUCT, MIN,
    MAX, and the bitwise BAND, BOR, BXOR (integer and bool tensors; MPI only)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"

    def __repr__(self) -> str:
        return f"<ReduceOp.{self.name}>"


def as_reduce_op(op: object, what: str) -> ReduceOp:
    if isinstance(op, ReduceOp):
        return op
    raise TypeError(f"{what}: op must be a gradflow.distributed.ReduceOp, got {op!r}")
