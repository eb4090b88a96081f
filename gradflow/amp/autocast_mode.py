"""Autocast (torch.autocast): regions where each op runs in the dtype its policy names.

The state is per thread and per device type ("cpu", "cuda"), as PyTorch's: enabled or not,
the low dtype (bfloat16 on the CPU, float16 on CUDA by default) and whether weight casts are
cached. Two places apply the policy tables of `gradflow.amp.policy`:
- `Function.apply` calls `cast_inputs` before every op's forward while some device type has
  autocast on (`STATE.on`, one attribute test per op when off): ops that are one `Op`
  (matmul, linear, conv2d, cross_entropy, mse_loss, exp, sum, ...) are covered there.
- public functions made of several ops, or that check their operands' dtypes before their op
  runs (mm, prelu, layer_norm, the composite losses, ...), carry `@autocast_policy(name)`:
  they cast their tensor arguments, then run with autocast off for that device type, as
  PyTorch's autocast kernels run the op itself outside autocast.
Casts are `Tensor.to` (differentiable: a float32 weight gets a float32 gradient). The low-dtype
cast of a float32 leaf that requires grad is cached until the outermost region exits.
"""
from __future__ import annotations

import functools
import threading
import warnings
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from .. import dtypes
from ..tensor import Tensor
from .policy import FP32, LOWER, TABLES

F = TypeVar("F", bound=Callable[..., Any])

DEVICE_TYPES = ("cpu", "cuda")
_DEFAULT_DTYPE = {"cpu": dtypes.bfloat16, "cuda": dtypes.float16}
_LOW_DTYPES = (dtypes.bfloat16, dtypes.float16)


class _State(threading.local):
    """This thread's autocast switches. `on` is true while any device type has autocast
    enabled: the one flag `Function.apply` reads."""

    def __init__(self) -> None:
        self.on = False
        self.enabled = {d: False for d in DEVICE_TYPES}
        self.dtype = dict(_DEFAULT_DTYPE)
        self.cache_enabled = True
        self.nesting = 0
        self.cache: dict[tuple[int, np.dtype], tuple[Tensor, Tensor]] = {}

    def refresh(self) -> None:
        self.on = any(self.enabled.values())


STATE: _State = _State()


def _device_type(device_type: Any, op: str) -> str:
    if not isinstance(device_type, str):
        raise ValueError(f"{op}: expected `device_type` of type `str`, got: "
                         f"`{type(device_type)}`")
    if device_type not in DEVICE_TYPES:
        raise RuntimeError(f"{op}: unsupported device_type {device_type!r}; gradflow's autocast "
                           f"knows {', '.join(DEVICE_TYPES)}")
    return device_type


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether autocast is on for `device_type` (CUDA when not given, as
    torch.is_autocast_enabled())."""
    return STATE.enabled[_device_type("cuda" if device_type is None else device_type,
                                      "is_autocast_enabled")]


def set_autocast_enabled(device_type: str, enabled: bool) -> None:
    """Switch autocast on or off for a device type (torch.set_autocast_enabled)."""
    STATE.enabled[_device_type(device_type, "set_autocast_enabled")] = bool(enabled)
    STATE.refresh()


def get_autocast_dtype(device_type: str) -> np.dtype:
    """The low dtype autocast uses on `device_type` (torch.get_autocast_dtype)."""
    return STATE.dtype[_device_type(device_type, "get_autocast_dtype")]


def set_autocast_dtype(device_type: str, dtype: Any) -> None:
    """Set the low dtype of a device type's autocast (torch.set_autocast_dtype)."""
    dev = _device_type(device_type, "set_autocast_dtype")
    dt = dtypes.as_dtype(dtype)
    if dt not in _LOW_DTYPES:
        raise RuntimeError(f"set_autocast_dtype: autocast on {dev} supports float16 and "
                           f"bfloat16, got {dt}")
    STATE.dtype[dev] = dt


def is_autocast_cache_enabled() -> bool:
    return STATE.cache_enabled


def set_autocast_cache_enabled(enabled: bool) -> None:
    STATE.cache_enabled = bool(enabled)


def clear_autocast_cache() -> None:
    """Drop the cached weight casts (done when the outermost region exits)."""
    STATE.cache.clear()


class autocast:
    """A region (context manager or decorator) where ops run in their policy's dtype
    (torch.autocast): `device_type` "cpu" or "cuda"; `dtype` the low dtype (None: the device
    type's current one, bfloat16 on the CPU and float16 on CUDA unless set); `enabled=False`
    switches autocast off inside; `cache_enabled` keeps weight casts for the region."""

    def __init__(self, device_type: str, dtype: Any = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        self.device = _device_type(device_type, "autocast")
        self.fast_dtype = get_autocast_dtype(self.device) if dtype is None else \
            dtypes.as_dtype(dtype)
        self._cache_enabled = STATE.cache_enabled if cache_enabled is None else \
            bool(cache_enabled)
        enabled = bool(enabled)
        if enabled and self.device == "cuda":
            from .. import cuda
            if not cuda.is_available():
                warnings.warn("CUDA is not available. Disabling autocast.", stacklevel=2)
                enabled = False
        if enabled and self.fast_dtype not in _LOW_DTYPES:
            warnings.warn(f"In {self.device} autocast, but the target dtype {self.fast_dtype} "
                          "is not supported. Disabling autocast. Autocast supports float16 "
                          "and bfloat16 only.", stacklevel=2)
            enabled = False
        self._enabled = enabled
        self._prev: list[tuple[bool, np.dtype, bool]] = []

    def __enter__(self) -> "autocast":
        st = STATE
        self._prev.append((st.enabled[self.device], st.dtype[self.device], st.cache_enabled))
        st.enabled[self.device] = self._enabled
        st.dtype[self.device] = self.fast_dtype
        st.cache_enabled = self._cache_enabled
        st.nesting += 1
        st.refresh()
        return self

    def __exit__(self, *exc: Any) -> None:
        st = STATE
        st.nesting -= 1
        if st.nesting == 0:
            st.cache.clear()
        st.enabled[self.device], st.dtype[self.device], st.cache_enabled = self._prev.pop()
        st.refresh()

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return func(*args, **kwargs)
        return decorated  # type: ignore[return-value]


# -- applying the policy ---------------------------------------------------------------------
_CAST: list = []  # ops.elementwise.Cast, imported on first use (ops load after autograd)


def _cast_op() -> Any:
    if not _CAST:
        from ..ops.elementwise import Cast
        _CAST.append(Cast)
    return _CAST[0]


def _eligible(t: Any, device_type: str) -> bool:
    """A tensor autocast may cast: floating, not float64, on the region's device type."""
    if not isinstance(t, Tensor):
        return False
    dt = t.array.dtype
    return dt != dtypes.float64 and dtypes.is_floating(dt) and t.device.type == device_type


def _cast(t: Tensor, dtype: np.dtype, device_type: str) -> Tensor:
    st = STATE
    if t.array.dtype == dtype:
        return t
    # NOTE: PyTorch caches only a float32 leaf weight's cast to the low dtype, the cast
    # every op in a region would otherwise repeat.
    cacheable = (st.cache_enabled and dtype == st.dtype[device_type] and t._requires_grad
                 and t.grad_fn is None and t._base is None and t.array.dtype == dtypes.float32)
    key = (id(t), dtype)  # NOTE: by dtype too, so a nested region of the other one recasts
    if cacheable:
        hit = st.cache.get(key)
        if hit is not None and hit[0] is t:
            return hit[1]
    out = _cast_op().apply(t, dtype=dtype)
    if cacheable:
        st.cache[key] = (t, out)
    return out


def _target(policy: str, values: list, device_type: str) -> np.dtype:
    if policy == LOWER:
        return STATE.dtype[device_type]
    if policy == FP32:
        return dtypes.float32
    target = STATE.dtype[device_type]  # PROMOTE: the widest of the region's and the inputs'
    for v in values:
        if _eligible(v, device_type):
            target = dtypes.promote(target, v.array.dtype)
    return target


def _flat(args: Any) -> list:
    """The tensors among arguments, one level into lists and tuples (cat's sequence)."""
    out: list = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(a)
        else:
            out.append(a)
    return out


def _cast_all(args: tuple, dtype: np.dtype, device_type: str) -> tuple:
    out = []
    for a in args:
        if isinstance(a, (list, tuple)) and any(isinstance(x, Tensor) for x in a):
            a = type(a)(_cast(x, dtype, device_type) if _eligible(x, device_type) else x
                        for x in a)
        elif _eligible(a, device_type):
            a = _cast(a, dtype, device_type)
        out.append(a)
    return tuple(out)


def _region_device(values: Sequence) -> str | None:
    """The device type of the first tensor among the arguments, if autocast is on there."""
    for v in values:
        if isinstance(v, Tensor):
            dev = v.device.type
            return dev if STATE.enabled.get(dev) else None
    return None


def cast_inputs(cls: type, args: tuple, kwargs: dict) -> tuple:
    """The positional arguments of op `cls` cast as its policy says (called by
    Function.apply while autocast is on somewhere); unchanged for ops without a policy, for
    an explicit `dtype=` and outside a region of the inputs' device type."""
    name = getattr(cls, "op_name", None)
    if name is None or kwargs.get("dtype") is not None:
        return args
    dev = _region_device(args)
    if dev is None:
        return args
    policy = TABLES[dev].get(name)
    if policy is None:
        return args
    return _cast_all(args, _target(policy, list(args), dev), dev)


class _suspended:
    """Autocast off for one device type while a policy-carrying function runs its ops."""

    def __init__(self, device_type: str) -> None:
        self.device = device_type

    def __enter__(self) -> None:
        STATE.enabled[self.device] = False
        STATE.refresh()

    def __exit__(self, *exc: Any) -> None:
        STATE.enabled[self.device] = True
        STATE.refresh()


def autocast_policy(name: str) -> Callable[[F], F]:
    """Decorate a public function whose autocast policy is `name`'s row of the tables: under
    autocast its floating tensor arguments are cast first and its own ops run uncast. Off
    autocast it costs one flag test."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not STATE.on:
                return fn(*args, **kwargs)
            return _run_with_policy(name, fn, args, kwargs)
        wrapper.autocast_policy = name  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]
    return wrap


def _run_with_policy(name: str, fn: Callable, args: tuple, kwargs: dict) -> Any:
    keys = list(kwargs)
    values = list(args) + [kwargs[k] for k in keys]
    dev = _region_device(_flat(values))
    if dev is None:
        return fn(*args, **kwargs)
    policy = TABLES[dev].get(name)
    if policy is None:  # no row on this device type: its ops take their own policies
        return fn(*args, **kwargs)
    if kwargs.get("dtype") is None:
        cast = _cast_all(tuple(values), _target(policy, _flat(values), dev), dev)
        args, kwargs = cast[:len(args)], dict(zip(keys, cast[len(args):]))
    with _suspended(dev):
        return fn(*args, **kwargs)
