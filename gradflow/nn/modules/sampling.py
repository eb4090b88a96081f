"""Resampling layers (torch.nn.Upsample, Fold, Unfold, PixelShuffle, ...)."""
from __future__ import annotations

__all__: list[str] = []
