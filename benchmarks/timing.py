"""Per-step timers and peak-memory probes: CUDA events on a GPU (CuPy's for gradflow, torch's
for torch), the wall clock on the CPU, where every op is synchronous."""
from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable

import numpy as np

from gradflow.backend import cupy_module

Step = Callable[[], Any]


def step_timer(device: str, torch: Any = None) -> Callable[[Step], float]:
    """A function that runs one step and returns its time in ms. On CUDA it uses torch's
    events when `torch` is given, else CuPy's; the GPU is idle when each step starts."""
    if device == "cpu":
        return _wall_ms
    if torch is not None:
        return partial(_events_ms, lambda: torch.cuda.Event(enable_timing=True),
                       lambda start, end: start.elapsed_time(end))
    cp = cupy_module()
    return partial(_events_ms, cp.cuda.Event, cp.cuda.get_elapsed_time)


def _wall_ms(step: Step) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1e3


def _events_ms(make_event: Callable[[], Any], elapsed: Callable[[Any, Any], float],
               step: Step) -> float:
    # NOTE: events bracket the step on the stream, so host-side gaps between kernels (Python
    # dispatch) count too; syncing on `end` leaves the GPU idle for the next step.
    start, end = make_event(), make_event()
    start.record()
    step()
    end.record()
    end.synchronize()
    return float(elapsed(start, end))


def counts_peaks(cuda_module: Any) -> bool:
    """Whether `cuda_module` (torch.cuda or gradflow.cuda) keeps a peak-allocation counter."""
    return all(hasattr(cuda_module, n) for n in ("reset_peak_memory_stats",
                                                 "max_memory_allocated"))


def peak_memory(cuda_module: Any) -> Callable[[], float] | None:
    """Reset the peak-allocation counter of `cuda_module` and return a reader of the peak in
    MiB; None when the module has no such counter."""
    if not counts_peaks(cuda_module):
        return None
    cuda_module.reset_peak_memory_stats()
    return lambda: cuda_module.max_memory_allocated() / 2**20


def summarize(times_ms: list[float], batch: int) -> dict[str, float]:
    """Median and 10th/90th percentiles in ms, and images per second at the median."""
    p10, median, p90 = np.percentile(times_ms, [10, 50, 90])
    return {"ms_median": float(median), "ms_p10": float(p10), "ms_p90": float(p90),
            "images_per_s": batch / (median / 1e3)}
