"""torch.set_num_threads / torch.get_num_threads for NumPy's BLAS and OpenMP thread pools.

gradflow's CPU ops run in NumPy, so its thread pools are those of the BLAS library NumPy loads
(OpenBLAS in NumPy's wheels, MKL in some builds) and of any OpenMP runtime. threadpoolctl
(a dependency) changes them in a running process. On a loaded machine fewer threads can be
much faster: idle OpenBLAS threads spin before they sleep, and where there are more runnable
threads than cores that spinning takes the time slices the working thread needs (the train job
took 7 min 24 s with the default threads against 58 s with one).

Importing gradflow changes no pool: the BLAS library keeps its own default (OpenBLAS: one
thread per core; OPENBLAS_NUM_THREADS and OMP_NUM_THREADS, read when it loads, override it).
"""
from __future__ import annotations

import os

from . import argcheck

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # NOTE: a dependency, so only a broken install gets here (see below)
    ThreadpoolController = None

# Read by BLAS and OpenMP libraries when they load: libraries loaded later in this process
# (torch, say) and subprocesses follow set_num_threads through them.
ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_limit: int | None = None
_limiter = None  # the threadpoolctl limiter of the last set_num_threads, kept for the process


def set_num_threads(n: int) -> None:
    """Use at most `n` threads in every BLAS and OpenMP pool loaded by now (torch.set_num_threads),
    and set OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS to `n` for libraries loaded
    later and for subprocesses. Without threadpoolctl only the environment variables change,
    which does not reach libraries already loaded."""
    global _limit, _limiter
    try:
        n = argcheck.integer("set_num_threads", "n", n, minimum=1)
    except (TypeError, ValueError) as err:  # NOTE: torch raises RuntimeError for both
        raise RuntimeError(str(err)) from None
    os.environ.update({name: str(n) for name in ENV_VARS})
    if ThreadpoolController is not None:
        _limiter = ThreadpoolController().limit(limits=n)
    _limit = n


def get_num_threads() -> int:
    """The number of threads a BLAS call may use (torch.get_num_threads): the largest BLAS pool
    as threadpoolctl reports it (the OpenMP pool where no BLAS library is loaded). Without
    threadpoolctl, or with neither pool loaded: the last set_num_threads, else
    OPENBLAS_NUM_THREADS or OMP_NUM_THREADS, else os.cpu_count()."""
    if ThreadpoolController is not None:
        controller = ThreadpoolController()
        for user_api in ("blas", "openmp"):
            pools = controller.select(user_api=user_api).info()
            if pools:
                return max(pool["num_threads"] for pool in pools)
    return _limit or env_num_threads() or os.cpu_count() or 1


def env_num_threads() -> int | None:
    """The thread count OPENBLAS_NUM_THREADS (else OMP_NUM_THREADS) asks for; None where
    neither holds a positive int. `python -m gradflow.train --threads` defaults to it, else 1."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return None
