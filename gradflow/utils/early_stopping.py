"""Stop training when a monitored value (validation loss) stops improving."""
from __future__ import annotations

import math
from typing import Any


class EarlyStopping:
    """Call `step(value)` once per epoch; it returns True when `patience` epochs in a row
    brought no improvement larger than `min_delta`. `improved` says whether the last value
    was a new best (the moment to save a best checkpoint). mode 'min' (losses) or 'max'."""

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min") -> None:
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be a positive int, got {patience!r}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0
        self.improved = False

    def step(self, value: float) -> bool:
        value = float(value)
        gain = (self.best - value) if self.mode == "min" else (value - self.best)
        self.improved = gain > self.min_delta or (math.isinf(self.best) and math.isfinite(value))
        if self.improved:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "improved": self.improved}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.improved = bool(state["improved"])
