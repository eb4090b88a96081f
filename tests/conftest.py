"""Shared fixtures: every device-parametrised test runs on the CPU, and on CUDA (marked `gpu`)
where CuPy sees a GPU; without one the CUDA cases skip with a reason."""
import pytest

import gradflow as gf


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
