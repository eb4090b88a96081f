"""Attention (torch.nn.functional.scaled_dot_product_attention)."""
from __future__ import annotations

__all__: list[str] = []
