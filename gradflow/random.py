"""Random number generation: one seeded generator per backend, and `Generator` objects for
code that wants its own stream (DataLoader shuffling, random_split)."""
from __future__ import annotations

import numpy as np

from .backend import cupy_module


class Generator:
    """An independent random stream on the CPU (torch.Generator)."""

    def __init__(self, device: str = "cpu") -> None:
        if str(device) != "cpu":
            raise ValueError(f"Generator: only CPU generators are supported, got {device}")
        self._seed = int(np.random.SeedSequence().entropy % (2 ** 63))
        self.rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


default_generator = Generator()
_cuda_states: dict = {}


def manual_seed(seed: int) -> Generator:
    """Seed the CPU generator and every CUDA device's, so both backends repeat their runs."""
    seed = int(seed)
    default_generator.manual_seed(seed)
    seed_cuda(seed)
    return default_generator


def seed_cuda(seed: int) -> None:
    """Reseed the GPU generators only (torch.cuda.manual_seed)."""
    _cuda_states.clear()
    _cuda_states["seed"] = int(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    """The default CPU generator's state (torch.get_rng_state), for checkpoints."""
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    """Restore a state from `get_rng_state`."""
    default_generator.set_state(state)


def cpu_rng(generator: Generator | None = None) -> np.random.Generator:
    return (generator or default_generator).rng


def cuda_rng(index: int):
    """The CuPy RandomState of GPU `index`, seeded from the last `manual_seed`."""
    rs = _cuda_states.get(index)
    if rs is None:
        cp = cupy_module()
        seed = _cuda_states.get("seed")
        with cp.cuda.Device(index):
            rs = cp.random.RandomState(None if seed is None else seed + index)
        _cuda_states[index] = rs
    return rs
