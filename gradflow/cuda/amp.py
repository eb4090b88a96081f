"""gradflow.cuda.amp: torch.cuda.amp's deprecated names (autocast, GradScaler, custom_fwd,
custom_bwd), each warning and handing over to gradflow.amp with device_type 'cuda'."""
from __future__ import annotations

from .. import dtypes
from ..amp import device_aliases

autocast = device_aliases.autocast_class("cuda", dtypes.float16)
GradScaler = device_aliases.grad_scaler_class("cuda")
custom_fwd = device_aliases.cuda_custom_fwd
custom_bwd = device_aliases.cuda_custom_bwd

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd"]
