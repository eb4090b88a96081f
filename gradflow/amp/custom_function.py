"""Autocast for a user's own autograd.Function (torch.amp.custom_fwd and custom_bwd).

Autocast casts the inputs of the ops its tables name, so inside a custom Function's forward
each op picks its own dtype. `custom_fwd(cast_inputs=dtype)` instead casts the Function's
floating inputs on the device type once and runs forward with autocast off there;
`custom_bwd` runs backward under the autocast state forward ran in (the engine calls it
outside any region).
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Callable

from .. import dtypes
from ..tensor import Tensor
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled


def _check_device_type(device_type: Any, name: str) -> None:
    if not isinstance(device_type, str):
        raise ValueError(f"{name}: expected `device_type` of type `str`, got: "
                         f"`{type(device_type)}`")


def _cast(value: Any, device_type: str, dtype: Any) -> Any:
    """`value` with its floating tensors on `device_type` (float64 aside) cast to `dtype`,
    through lists, tuples and dicts, as torch.amp does for cast_inputs."""
    if isinstance(value, Tensor):
        eligible = (value.is_floating_point() and value.device.type == device_type
                    and value.dtype != dtypes.float64)
        return value.to(dtype) if eligible else value
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Mapping):
        return {_cast(k, device_type, dtype): _cast(v, device_type, dtype)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, device_type, dtype) for v in value)
    return value


def custom_fwd(fwd: Callable | None = None, *, device_type: str,
               cast_inputs: Any = None) -> Callable:
    """Decorate a custom Function's forward: with `cast_inputs` a dtype, inside an autocast
    region of `device_type` its floating inputs there are cast to it and forward runs with
    autocast off; without, forward runs as called. Either way it records the region's state
    for `custom_bwd`."""
    _check_device_type(device_type, "custom_fwd")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        ctx._dtype = get_autocast_dtype(device_type)
        enabled = is_autocast_enabled(device_type)
        ctx._fwd_used_autocast = enabled and cast_inputs is None
        if cast_inputs is None or not enabled:
            return fwd(ctx, *args, **kwargs)
        with autocast(device_type, enabled=False):
            return fwd(ctx, *_cast(args, device_type, cast_inputs),
                       **_cast(kwargs, device_type, cast_inputs))
    return decorate_fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str) -> Callable:
    """Decorate a custom Function's backward to run under the autocast state (on or off, and
    its dtype) that its `custom_fwd` forward ran in."""
    _check_device_type(device_type, "custom_bwd")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        with autocast(device_type, dtype=ctx._dtype, enabled=ctx._fwd_used_autocast):
            return bwd(ctx, *args, **kwargs)
    return decorate_bwd
