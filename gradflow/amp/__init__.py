"""Automatic mixed precision (torch.amp): `autocast` regions and `GradScaler`."""
from __future__ import annotations

from .autocast_mode import (
    autocast,
    autocast_policy,
    clear_autocast_cache,
    get_autocast_dtype,
    is_autocast_cache_enabled,
    is_autocast_enabled,
    set_autocast_cache_enabled,
    set_autocast_dtype,
    set_autocast_enabled,
)
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "autocast_policy", "clear_autocast_cache",
           "get_autocast_dtype", "is_autocast_cache_enabled", "is_autocast_enabled",
           "set_autocast_cache_enabled", "set_autocast_dtype", "set_autocast_enabled"]
