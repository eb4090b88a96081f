"""Classification metrics on logits (the top-k accuracy of the ImageNet examples)."""
from __future__ import annotations

from typing import Sequence

from ..backend import on_device
from ..tensor import Tensor


def correct_topk(output: Tensor, target: Tensor, topk: Sequence[int] = (1,)) -> list:
    """How many rows of `output` (N, C) have their target among the k largest scores, for
    each k, as 0-d tensors on the output's device (no host synchronisation)."""
    if output.ndim != 2 or tuple(target.shape) != (output.shape[0],):
        raise ValueError(f"accuracy: expected output (N, C) and target (N,), got "
                         f"{tuple(output.shape)} and {tuple(target.shape)}")
    classes = output.shape[1]
    for k in topk:
        if not 1 <= k <= classes:
            raise ValueError(f"accuracy: k={k} must be in [1, {classes}] for {classes} classes")
    xp = output._xp
    with on_device(output.device):
        order = xp.argsort(-output.detach().array, axis=1)[:, :max(topk)]
        hits = order == target.array[:, None]
        return [Tensor._wrap(xp.asarray(hits[:, :k].sum())) for k in topk]


def accuracy(output: Tensor, target: Tensor, topk: Sequence[int] = (1,)) -> list:
    """Top-k accuracies (fractions in [0, 1]) of logits `output` against class indices."""
    n = max(output.shape[0], 1)
    return [c.item() / n for c in correct_topk(output, target, topk)]
