"""Distance layers (torch.nn.CosineSimilarity, PairwiseDistance)."""
from __future__ import annotations

from ... import argcheck
from ...tensor import Tensor
from .. import functional as F
from ..module import Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = argcheck.integer("CosineSimilarity", "dim", dim)
        self.eps = argcheck.real("CosineSimilarity", "eps", eps, 0)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = argcheck.real("PairwiseDistance", "p", p)
        self.eps = argcheck.real("PairwiseDistance", "eps", eps)
        self.keepdim = keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
