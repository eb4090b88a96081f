"""gradflow.cpu, as torch.cpu: its `amp` (torch.cpu.amp's deprecated autocast and
GradScaler)."""
from __future__ import annotations

from . import amp

__all__ = ["amp"]
