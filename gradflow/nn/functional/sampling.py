"""Resampling: interpolation, grid sampling, folding and pixel shuffles (torch.nn.functional)."""
from __future__ import annotations

__all__: list[str] = []
