"""Automatic mixed precision (torch.amp): `autocast` regions, `GradScaler`, and
`custom_fwd`/`custom_bwd` for custom autograd Functions."""
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
from .custom_function import custom_bwd, custom_fwd
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "autocast_policy", "clear_autocast_cache", "custom_bwd",
           "custom_fwd", "get_autocast_dtype", "is_autocast_cache_enabled",
           "is_autocast_enabled", "set_autocast_cache_enabled", "set_autocast_dtype",
           "set_autocast_enabled"]
