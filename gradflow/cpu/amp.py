"""gradflow.cpu.amp: torch.cpu.amp's deprecated names (autocast, GradScaler), each warning
and handing over to gradflow.amp with device_type 'cpu'."""
from __future__ import annotations

from .. import dtypes
from ..amp import device_aliases

autocast = device_aliases.autocast_class("cpu", dtypes.bfloat16)
GradScaler = device_aliases.grad_scaler_class("cpu")

__all__ = ["GradScaler", "autocast"]
