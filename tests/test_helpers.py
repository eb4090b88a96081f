"""The test scaffolding holds: check_op_raises fails when gradflow's error differs from
PyTorch's, the shapes-only check_op still catches a wrong op, data() and distinct() give what
they promise, and the suite runs with one BLAS thread."""
import os

import numpy as np
import pytest
from helpers import check_op, check_op_raises, data, distinct, inputs, require_torch

import gradflow as gf


def raising(gf_error: Exception, torch_error: Exception | None):
    """fn(lib, x) that raises gf_error under gradflow and torch_error under torch."""
    def fn(lib, x):
        error = gf_error if lib is gf else torch_error
        if error is not None:
            raise error
        return x
    return fn


def test_check_op_raises_fails_when_the_types_differ():
    require_torch()
    with pytest.raises(AssertionError, match="gradflow raised ValueError .* where PyTorch "
                                             "raises RuntimeError"):
        check_op_raises(raising(ValueError("demo: bad"), RuntimeError("bad")), (2,), op="demo")


def test_check_op_raises_takes_a_subclass_of_torchs_type():
    """An `except RuntimeError` written for PyTorch still catches gradflow's error."""
    require_torch()

    class ShapeError(RuntimeError):
        pass

    got = check_op_raises(raising(ShapeError("demo: bad"), RuntimeError("bad")), (2,), op="demo")
    assert isinstance(got, ShapeError)


@pytest.mark.parametrize("gf_error,torch_error,match", [
    (RuntimeError("bad shapes"), RuntimeError("bad"), "does not name the op"),
    (RuntimeError("demonstration: bad"), RuntimeError("bad"), "does not name the op"),
    (None, RuntimeError("bad"), "gradflow accepts a call PyTorch rejects"),
    (RuntimeError("demo: bad"), None, "PyTorch accepts this call"),
], ids=["unnamed", "name_as_a_prefix_only", "gradflow_accepts", "torch_accepts"])
def test_check_op_raises_fails_on(gf_error, torch_error, match):
    require_torch()
    with pytest.raises(AssertionError, match=match):
        check_op_raises(raising(gf_error, torch_error), (2,), op="demo")


def test_check_op_raises_needs_the_op_name_with_a_lambda():
    require_torch()
    with pytest.raises(TypeError, match="op="):
        check_op_raises(raising(ValueError("x"), ValueError("x")), (2,))


def test_shapes_only_check_op_catches_a_wrong_op():
    require_torch()
    check_op(lambda L, a, b: a * b + a, (3, 1), (4,))
    with pytest.raises(AssertionError, match="forward values differ"):
        check_op(lambda L, a: a * (2 if L is gf else 3), (3, 2))


def test_data_takes_a_shape_either_way_and_keeps_its_ranges():
    np.testing.assert_array_equal(data(2, 3), data((2, 3)))
    assert data(()).shape == () and isinstance(data(()), np.ndarray)
    assert not np.array_equal(data(2, 3), data(2, 3, seed=1))
    magnitude = np.abs(data(50, 40))
    assert magnitude.min() >= 0.3 and magnitude.max() <= 1.5, (magnitude.min(), magnitude.max())
    assert data(50, 40, kind="pos").min() >= 0.3
    assert np.abs(data(50, 40, kind="unit")).max() < 0.8
    assert data(3, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="kind"):
        data(3, kind="positive")


def test_distinct_values_are_well_separated():
    values = np.sort(distinct(3, 4, 5).ravel())
    assert np.diff(values).min() >= 0.36, np.diff(values).min()
    np.testing.assert_array_equal(distinct(3, 4), distinct((3, 4)))


def test_inputs_builds_data_from_shapes_and_keeps_arrays():
    given = np.arange(3.0)
    made = inputs([(2, 3), given, (4,)])
    np.testing.assert_array_equal(made[0], data((2, 3), seed=0))
    assert made[1] is given
    np.testing.assert_array_equal(made[2], data((4,), seed=2))


def test_the_suite_runs_with_one_blas_thread():
    """conftest.py limits BLAS and OpenMP to one thread (threadpoolctl where installed, the
    environment otherwise), and helpers.py torch's intra-op pool."""
    assert os.environ.get("OPENBLAS_NUM_THREADS"), "subprocesses would start two BLAS threads"
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pools = {(p["internal_api"], p["num_threads"]) for p in threadpoolctl.threadpool_info()}
    assert all(n == 1 for _, n in pools), pools
    torch = require_torch()
    assert torch.get_num_threads() == 1
