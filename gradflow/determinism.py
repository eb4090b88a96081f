"""torch.use_deterministic_algorithms: choose run-to-run reproducible GPU algorithms.

gradflow's own kernels use no atomics (col2im and the pooling backwards gather instead of
scattering), so they are deterministic either way. The one GPU path with atomics is the
scatter-add behind the backward of integer-array indexing; with the flag on it sums
duplicates in a fixed order instead (`gradflow.ops.index`), at some cost in speed.
"""
from __future__ import annotations

_enabled = False


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Make every GPU op reproducible run to run (`warn_only` is accepted for torch's
    signature; every op has a deterministic path, so nothing would warn)."""
    global _enabled
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms: mode must be a bool, got {mode!r}")
    _enabled = mode


def are_deterministic_algorithms_enabled() -> bool:
    return _enabled
