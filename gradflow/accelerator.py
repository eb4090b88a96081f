"""The current accelerator, device-agnostic (torch.accelerator): CUDA when a GPU is usable."""
from __future__ import annotations

from . import cuda
from .backend import device


def is_available() -> bool:
    return cuda.is_available()


def current_accelerator(check_available: bool = False) -> device | None:
    """`device('cuda')` where CUDA is usable, else None (gradflow has no other accelerator)."""
    return device("cuda") if cuda.is_available() else None


def device_count() -> int:
    return cuda.device_count()
