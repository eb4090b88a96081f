"""gf.set_num_threads / gf.get_num_threads (torch's names) on NumPy's BLAS pool, through
threadpoolctl, and the degraded path without it.

tests/conftest.py runs the suite with one BLAS thread; each test here restores the pools, the
environment variables and the module's state it found.
"""
import os

import numpy as np
import pytest
from helpers import check_op_raises

import gradflow as gf
from gradflow import threads

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def _restore(monkeypatch):
    for name in threads.ENV_VARS:
        old = os.environ.get(name)
        monkeypatch.setenv(name, old or "")  # records the old value (or its absence) for teardown
        if old is None:
            monkeypatch.delenv(name)
    monkeypatch.setattr(threads, "_limit", None)
    monkeypatch.setattr(threads, "_limiter", None)
    with threadpoolctl.threadpool_limits(limits=None):  # restores every pool's size on exit
        yield


def _blas_threads():
    return [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"]


def test_set_get_round_trip():
    gf.set_num_threads(1)
    assert gf.get_num_threads() == 1
    gf.set_num_threads(2)
    if _blas_threads() != [2] * len(_blas_threads()):
        pytest.skip(f"the BLAS pool does not take 2 threads: {threadpoolctl.threadpool_info()}")
    assert gf.get_num_threads() == 2
    gf.set_num_threads(1)
    assert gf.get_num_threads() == 1


def test_limits_the_blas_pool():
    if not _blas_threads():
        pytest.skip("NumPy loaded no BLAS library that threadpoolctl knows")
    gf.set_num_threads(2)
    gf.set_num_threads(1)
    np.testing.assert_array_equal(_blas_threads(), 1, err_msg=str(threadpoolctl.threadpool_info()))


def test_sets_the_environment_for_subprocesses():
    gf.set_num_threads(3)
    assert {name: os.environ[name] for name in threads.ENV_VARS} == dict.fromkeys(
        threads.ENV_VARS, "3")


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_bad_values_raise(n):
    """RuntimeError, as torch.set_num_threads raises for all of these."""
    before = gf.get_num_threads()
    with pytest.raises(RuntimeError, match=rf"set_num_threads: n must be .*got {n!r}"):
        gf.set_num_threads(n)
    assert gf.get_num_threads() == before


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_bad_values_raise_as_in_torch(n):
    check_op_raises(lambda lib: lib.set_num_threads(n), op="set_num_threads")


def test_numpy_integer_is_accepted():
    gf.set_num_threads(np.int64(1))
    assert gf.get_num_threads() == 1


@pytest.mark.parametrize("env, expected", [
    ({}, None), ({"OMP_NUM_THREADS": "4"}, 4),
    ({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "4"}, 2),
    ({"OMP_NUM_THREADS": "0"}, None), ({"OMP_NUM_THREADS": "4,2"}, None)])
def test_env_num_threads(monkeypatch, env, expected):
    for name in threads.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert threads.env_num_threads() == expected


def test_without_threadpoolctl(monkeypatch):
    """Degraded: the environment variables are set, the last value is reported, and a
    fresh process reports what the environment says, else os.cpu_count()."""
    monkeypatch.setattr(threads, "ThreadpoolController", None)
    for name in threads.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    assert gf.get_num_threads() == (os.cpu_count() or 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert gf.get_num_threads() == 5
    gf.set_num_threads(3)
    assert gf.get_num_threads() == 3
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
