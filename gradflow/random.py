"""Random number generation: one seeded generator per backend, and `Generator` objects for
code that wants its own stream (DataLoader shuffling, random_split)."""
from __future__ import annotations

import secrets
from typing import Any

import numpy as np


def _fresh_seed() -> int:
    """A seed from the operating system's entropy, below 2**63."""
    return secrets.randbits(63)


class Generator:
    """An independent random stream on the CPU (torch.Generator)."""

    def __init__(self, device: str = "cpu") -> None:
        if str(device) != "cpu":
            raise ValueError(f"Generator: only CPU generators are supported, got {device}")
        self._seed = _fresh_seed()
        self.rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict[str, Any]:
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state


default_generator = Generator()


class CudaGeneratorState:
    """The GPU generators: Philox counters, so each device's whole state is (seed, offset),
    and the offset advances by the number of elements each draw makes."""

    def __init__(self) -> None:
        self.seed = _fresh_seed()
        self.offsets: dict = {}
        self.captured: dict | None = None  # per-device draws of a step being captured

    def take(self, index: int, n: int) -> tuple:
        """(seed, offset) for a draw of n elements on device `index`; advances the offset.
        While a CUDA graph captures a step, offsets count from the step's start instead (the
        kernels add the graph's base, set before each replay) and the generator stays put."""
        counts = self.offsets if self.captured is None else self.captured
        offset = counts.get(index, 0)
        counts[index] = offset + n
        return self.seed, offset

    def begin_capture(self) -> None:
        self.captured = {}

    def end_capture(self) -> dict:
        """How many numbers the captured step draws per device, each time it runs."""
        drawn, self.captured = self.captured or {}, None
        return drawn


cuda_generators = CudaGeneratorState()


def manual_seed(seed: int) -> Generator:
    """Seed the CPU generator and every CUDA device's, so both backends repeat their runs."""
    seed = int(seed)
    default_generator.manual_seed(seed)
    seed_cuda(seed)
    return default_generator


def seed_cuda(seed: int) -> None:
    """Reseed the GPU generators only (torch.cuda.manual_seed): every device starts again
    at offset 0 of the stream of `seed`."""
    cuda_generators.seed = int(seed) % (2 ** 64)
    cuda_generators.offsets.clear()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    """The default CPU generator's state (torch.get_rng_state), for checkpoints."""
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    """Restore a state from `get_rng_state`."""
    default_generator.set_state(state)


def get_cuda_rng_state(index: int) -> dict:
    """GPU `index`'s generator state (torch.cuda.get_rng_state), for checkpoints."""
    return {"seed": cuda_generators.seed, "offset": cuda_generators.offsets.get(index, 0)}


def set_cuda_rng_state(state: dict, index: int) -> None:
    """Restore GPU `index`'s generator from `get_cuda_rng_state`. The seed is shared by all
    devices, as `manual_seed` sets it."""
    seed, offset = _state_count(state, "seed"), _state_count(state, "offset")
    cuda_generators.seed = seed
    cuda_generators.offsets[index] = offset


def _state_count(state: dict, name: str) -> int:
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"set_rng_state: the CUDA state's {name} must be a non-negative "
                         f"int, got {value!r} (state {state!r})")
    return value


def cpu_rng(generator: Generator | None = None) -> np.random.Generator:
    return (generator or default_generator).rng
