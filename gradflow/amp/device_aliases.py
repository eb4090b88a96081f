"""The device-specific spellings PyTorch deprecated but scripts still use:
torch.cuda.amp.{autocast, GradScaler, custom_fwd, custom_bwd} and torch.cpu.amp.{autocast,
GradScaler}, served as gradflow.cuda.amp and gradflow.cpu.amp. Each warns as torch does
(a FutureWarning naming the gradflow.amp form) and hands over to gradflow.amp."""
from __future__ import annotations

import warnings
from typing import Any, Callable

from . import autocast_mode, custom_function, grad_scaler


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"`{old}(args...)` is deprecated. Please use `{new}` instead.",
                  FutureWarning, stacklevel=3)


def autocast_class(device_type: str, default_dtype: Any) -> type:
    """torch.<device_type>.amp.autocast: autocast for one device type, `dtype` defaulting to
    `default_dtype`."""

    class DeviceAutocast(autocast_mode.autocast):
        def __init__(self, enabled: bool = True, dtype: Any = default_dtype,
                     cache_enabled: bool = True) -> None:
            _deprecated(f"gradflow.{device_type}.amp.autocast",
                        f"gradflow.amp.autocast('{device_type}', args...)")
            super().__init__(device_type, dtype=dtype, enabled=enabled,
                             cache_enabled=cache_enabled)

    DeviceAutocast.__name__ = DeviceAutocast.__qualname__ = "autocast"
    return DeviceAutocast


def grad_scaler_class(device_type: str) -> type:
    """torch.<device_type>.amp.GradScaler: a GradScaler for one device type."""

    class DeviceGradScaler(grad_scaler.GradScaler):
        def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                     backoff_factor: float = 0.5, growth_interval: int = 2000,
                     enabled: bool = True) -> None:
            _deprecated(f"gradflow.{device_type}.amp.GradScaler",
                        f"gradflow.amp.GradScaler('{device_type}', args...)")
            super().__init__(device_type, init_scale, growth_factor, backoff_factor,
                             growth_interval, enabled)

    DeviceGradScaler.__name__ = DeviceGradScaler.__qualname__ = "GradScaler"
    return DeviceGradScaler


def cuda_custom_fwd(fwd: Callable | None = None, *, cast_inputs: Any = None) -> Callable:
    """torch.cuda.amp.custom_fwd: gradflow.amp.custom_fwd with device_type 'cuda'."""
    _deprecated("gradflow.cuda.amp.custom_fwd",
                "gradflow.amp.custom_fwd(args..., device_type='cuda')")
    return custom_function.custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def cuda_custom_bwd(bwd: Callable) -> Callable:
    """torch.cuda.amp.custom_bwd: gradflow.amp.custom_bwd with device_type 'cuda'."""
    _deprecated("gradflow.cuda.amp.custom_bwd",
                "gradflow.amp.custom_bwd(args..., device_type='cuda')")
    return custom_function.custom_bwd(bwd, device_type="cuda")

