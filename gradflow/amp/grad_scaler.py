"""Dynamic loss scaling (torch.amp.GradScaler).

float16 gradients underflow; scaling the loss by S before backward lifts them into range, and
`unscale_` divides them by S again before the optimizer sees them. When a scaled gradient
overflows (an inf or NaN), that step is skipped and S is multiplied by `backoff_factor`; after
`growth_interval` clean steps in a row S grows by `growth_factor`.

The scale and the growth tracker are 0-d arrays on the gradients' device, and the inf check
and the update are array ops on them (PyTorch's `_amp_foreach_non_finite_check_and_unscale_`
and `_amp_update_scale_`): no host read. `step` reads the inf flag once to decide whether to
call `optimizer.step()`, as PyTorch does; while `compile_step` captures, where no host read is
allowed, it steps always and then puts back the parameters and optimizer state arrays where
an inf was found (a masked step).
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from enum import Enum
from typing import Any, Iterable

import numpy as np

from .. import dtypes
from ..backend import device as _device
from ..backend import module_for, on_device
from ..cuda import graphs
from ..tensor import Tensor


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _fresh_state() -> dict:
    return {"stage": OptState.READY, "found_inf_per_device": {}}


class GradScaler:
    """Scale losses and unscale gradients for mixed-precision training (torch.amp.GradScaler):
    `scaler.scale(loss).backward(); scaler.step(opt); scaler.update()`."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = _device(device).type
        self._enabled = bool(enabled)
        if self._enabled and self._device == "cuda":
            from .. import cuda
            if not cuda.is_available():
                warnings.warn("gradflow.amp.GradScaler is enabled, but CUDA is not available. "
                              "Disabling.", stacklevel=2)
                self._enabled = False
        if self._enabled:
            if not growth_factor > 1.0:
                raise ValueError(f"GradScaler: the growth factor must be > 1.0, got "
                                 f"{growth_factor}")
            if not backoff_factor < 1.0:
                raise ValueError(f"GradScaler: the backoff factor must be < 1.0, got "
                                 f"{backoff_factor}")
            if not isinstance(growth_interval, int) or growth_interval < 1:
                raise ValueError(f"GradScaler: growth_interval must be a positive int, got "
                                 f"{growth_interval!r}")
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._scale: Tensor | None = None
        self._growth_tracker: Tensor | None = None
        self._per_optimizer_states: defaultdict = defaultdict(_fresh_state)

    # -- scaling --------------------------------------------------------------------------------
    def _lazy_init(self, dev: Any) -> None:
        xp = module_for(dev)
        with on_device(dev):
            self._scale = Tensor._wrap(xp.full((), self._init_scale, dtype=dtypes.float32))
            self._growth_tracker = Tensor._wrap(xp.full((), self._init_growth_tracker,
                                                        dtype=dtypes.int32))

    def scale(self, outputs: Any) -> Any:
        """`outputs` (a tensor, or nested lists/tuples of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init(outputs.device)
            return outputs * self._scale_on(outputs.device)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(v) for v in outputs)
        if isinstance(outputs, Iterable) and not isinstance(outputs, (str, bytes)):
            return map(self.scale, outputs)
        raise ValueError("GradScaler.scale: outputs must be a Tensor or an iterable of Tensors, "
                         f"got {type(outputs).__name__}")

    def _scale_on(self, dev: Any) -> Tensor:
        assert self._scale is not None
        return self._scale if self._scale.device == dev else self._scale.to(dev)

    def _check_initialised(self, funcname: str) -> tuple[Tensor, Tensor]:
        if self._scale is None or self._growth_tracker is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  This may indicate "
                                 "your script did not use scaler.scale(loss or outputs) earlier "
                                 "in the iteration.")
        return self._scale, self._growth_tracker

    # -- unscaling ------------------------------------------------------------------------------
    def _unscale_grads_(self, optimizer: Any, inv_scale: Any, allow_fp16: bool) -> dict:
        """Multiply every gradient by `inv_scale` and flag, per device, whether any was not
        finite (a float32 0-d array, 1.0 when so)."""
        scale, _ = self._check_initialised("unscale_")
        found: dict = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if not allow_fp16 and g.dtype == dtypes.float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                dev = g.device
                xp = g._xp
                with on_device(dev):
                    wide = g.array.dtype in (dtypes.float32, dtypes.float64)
                    a = g.array if wide else g.array.astype(dtypes.float32)
                    bad = xp.logical_not(xp.isfinite(a)).any().astype(dtypes.float32)
                    flag = found.get(dev)
                    found[dev] = bad if flag is None else xp.maximum(flag, bad)
                    inv = inv_scale if dev == scale.device else xp.asarray(inv_scale)
                    p.grad = Tensor._wrap((a * inv.astype(a.dtype)).astype(g.array.dtype))
        return found

    def unscale_(self, optimizer: Any) -> None:
        """Divide the optimizer's gradients by the scale (in place of them), once per step;
        `step` calls it when you did not (for gradient clipping, call it first)."""
        if not self._enabled:
            return
        scale, _ = self._check_initialised("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        with on_device(scale.device):
            # NOTE: 1/S computed in float64, then float32, as PyTorch's
            inv = (1.0 / scale.array.astype(np.float64)).astype(dtypes.float32)
        state["found_inf_per_device"] = self._unscale_grads_(optimizer, inv, False)
        state["stage"] = OptState.UNSCALED

    # -- stepping -------------------------------------------------------------------------------
    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """`optimizer.step()` unless an unscaled gradient was inf or NaN (then the step is
        skipped); unscales first if `unscale_` was not called."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is "
                               "enabled.")
        self._check_initialised("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        found = state["found_inf_per_device"]
        if not found:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        if not _host_reads_allowed():
            retval = _masked_step(optimizer, list(found.values()), args, kwargs)
        elif not sum(float(v) for v in found.values()):  # the one host read, as PyTorch's
            retval = optimizer.step(*args, **kwargs)
        else:
            retval = None
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Back the scale off (and reset the growth count) if any step since the last update
        found an inf, else count a clean step and grow the scale every `growth_interval`
        of them; or set it to `new_scale`."""
        if not self._enabled:
            return
        scale, tracker = self._check_initialised("update")
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.device.type != self._device or new_scale.numel() != 1 or \
                        new_scale.requires_grad:
                    raise AssertionError("new_scale should be a float or a 1-element tensor "
                                         f"on {self._device} with requires_grad=False.")
                value = new_scale.array.reshape(()).astype(dtypes.float32)
            else:
                value = float(new_scale)
            scale.array[...] = value
        else:
            flags = [v for s in self._per_optimizer_states.values()
                     for v in s["found_inf_per_device"].values()]
            if not flags:
                raise AssertionError("No inf checks were recorded prior to update.")
            xp = scale._xp
            with on_device(scale.device):
                found = flags[0]
                for f in flags[1:]:
                    found = found + xp.asarray(f)
                _update_scale_(xp, scale.array, tracker.array, found, self._growth_factor,
                               self._backoff_factor, self._growth_interval)
        self._per_optimizer_states = defaultdict(_fresh_state)

    # -- inspection and state -------------------------------------------------------------------
    def get_scale(self) -> float:
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale.array)

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        if self._growth_tracker is None:
            return self._init_growth_tracker
        return int(self._growth_tracker.array)

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        """scale, growth_factor, backoff_factor, growth_interval and _growth_tracker, as
        PyTorch's (empty when disabled)."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        missing = [k for k in ("scale", "growth_factor", "backoff_factor", "growth_interval",
                               "_growth_tracker") if k not in state_dict]
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing key(s) {', '.join(missing)}")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale.array[...] = self._init_scale
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker.array[...] = self._init_growth_tracker


def _host_reads_allowed() -> bool:
    """False while compile_step captures a step (a host read would break the capture)."""
    return not graphs.capturing()


def _update_scale_(xp: Any, scale: Any, tracker: Any, found_inf: Any, growth_factor: float,
                   backoff_factor: float, growth_interval: int) -> None:
    """PyTorch's `_amp_update_scale_` on 0-d arrays, in place, without a branch on the host:
    an inf backs the scale off and resets the count; otherwise the count grows, and at
    `growth_interval` the scale grows (if still finite) and the count resets."""
    inf = found_inf > 0
    counted = tracker + 1
    grow = xp.logical_and(xp.logical_not(inf), counted == growth_interval)
    grown = scale * np.float32(growth_factor)
    grown = xp.where(xp.isfinite(grown), grown, scale)
    new_scale = xp.where(inf, scale * np.float32(backoff_factor), xp.where(grow, grown, scale))
    new_tracker = xp.where(xp.logical_or(inf, grow), 0, counted)
    scale[...] = new_scale.astype(scale.dtype)
    tracker[...] = new_tracker.astype(tracker.dtype)


def _masked_step(optimizer: Any, flags: list, args: tuple, kwargs: dict) -> Any:
    """Step, then put back every parameter and state array where an inf was found: the skip
    of a step that may not read the flag on the host (a captured step)."""
    arrays = [p for group in optimizer.param_groups for p in group["params"]
              if p.grad is not None]
    for st in optimizer.state.values():
        arrays.extend(v for v in st.values() if isinstance(v, Tensor))
    before = [(t, t.array.copy()) for t in arrays]
    retval = optimizer.step(*args, **kwargs)
    for t, old in before:
        xp = t._xp
        found = flags[0]
        for f in flags[1:]:
            found = found + f
        t.array[...] = xp.where(found > 0, old, t.array)
    return retval
