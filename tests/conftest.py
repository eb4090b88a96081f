"""Shared fixtures: every device-parametrised test runs on the CPU, and on CUDA (marked `gpu`)
where CuPy sees a GPU; without one the CUDA cases skip with a reason."""
import contextlib

import emulator
import numpy as np
import pytest
from emulator import cublas

import gradflow as gf
from gradflow.cuda import blas, compiler

# fake_cuda: gradflow's GPU path on a NumPy stand-in for CuPy (tests/fakecuda.py)
pytest_plugins = ("fakecuda",)


def pytest_collection_modifyitems(config, items):
    if gf.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="CUDA is not available (no CuPy or no GPU)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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
