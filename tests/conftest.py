"""Shared fixtures: every device-parametrised test runs on the CPU, and on CUDA (marked `gpu`)
where CuPy sees a GPU; without one the CUDA cases skip with a reason.

The suite runs with one BLAS (and OpenMP) thread: on a loaded machine OpenBLAS's second
thread stalls, and the LeNet training test took 390 s with two threads against 23 s with one.
A test that needs more threads wraps itself in `threadpoolctl.threadpool_limits(n)`.
"""
import contextlib
import os

# NOTE: read when NumPy (and torch) load their BLAS and OpenMP libraries, so set before the
# imports below; the example and packaging tests' subprocesses inherit it. A value already in
# the environment is kept.
os.environ.update({name: os.environ.get(name, "1")
                   for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})

import emulator
import numpy as np
import pytest
from emulator import cublas

import gradflow as gf
from gradflow.cuda import blas, compiler

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # the environment variables above then do the job alone
    threadpool_limits = None

# fake_cuda: gradflow's GPU path on a NumPy stand-in for CuPy (tests/fakecuda.py)
pytest_plugins = ("fakecuda",)


def pytest_collection_modifyitems(config, items):
    if gf.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="CUDA is not available (no CuPy or no GPU)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """One thread for every BLAS and OpenMP library loaded by now (NumPy's, torch's), also
    where they were loaded before this file could set the environment."""
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """The device a test runs on: 'cpu' always, 'cuda' on GPU machines."""
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    gf.manual_seed(0)


class KernelBackend:
    """Where a kernel test runs gradflow's own kernels: on a GPU ('cuda'), or on the CPU
    through the emulator ('emulator'), where NumPy float arrays take the GPU code path."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.device = "cuda" if name == "cuda" else "cpu"

    @contextlib.contextmanager
    def active(self):
        """Route ops through the kernels; yields the list of kernels launched meanwhile."""
        launched = []
        real_launch = compiler.launch

        def counting_launch(family, name, *args, **kwargs):
            launched.append(f"{family}.{name}")
            return real_launch(family, name, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(compiler, "launch", counting_launch)
            if self.name == "emulator":
                patch.setattr(compiler, "uses_kernels", lambda a: isinstance(a, np.ndarray)
                              and a.dtype in compiler.C_TYPES)
                patch.setattr(compiler, "load_module", emulator.load)
                patch.setattr(blas, "_run", cublas.gemm_strided_batched)
            yield launched


@pytest.fixture(params=["emulator", pytest.param("cuda", marks=pytest.mark.gpu)])
def kernel_backend(request):
    """The kernel tests' backend: the CPU emulator always (skipped without g++), a GPU where
    there is one."""
    if request.param == "emulator" and emulator.compiler() is None:
        pytest.skip("no C++ compiler (g++): the kernel emulator cannot build")
    return KernelBackend(request.param)
