"""Distances and similarities (torch.nn.functional.cosine_similarity, pairwise_distance, ...)."""
from __future__ import annotations

__all__: list[str] = []
