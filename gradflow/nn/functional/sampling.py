"""Resampling: interpolation, grid sampling, folding and pixel shuffles (torch.nn.functional):
the op family in `gradflow.ops.sampling`."""
from __future__ import annotations

from ...ops.sampling import (
    affine_grid,
    fold,
    grid_sample,
    interpolate,
    pixel_shuffle,
    pixel_unshuffle,
    unfold,
)

__all__ = ["interpolate", "grid_sample", "affine_grid", "unfold", "fold", "pixel_shuffle",
           "pixel_unshuffle"]
