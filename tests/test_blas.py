"""gradflow.cuda.blas: every cuBLAS call it plans, run on the CPU by reading memory exactly as
cuBLAS's column-major strided-batched GEMM would (tests/emulator/cublas.py), must equal
NumPy's matmul.

The GPU suite runs the same products through cuBLAS itself (tests/test_gpu.py).
"""
import itertools

import numpy as np
import pytest
from emulator import cublas

from gradflow.cuda import blas, compiler
from gradflow.ops.matmul import matmul_arrays


@pytest.fixture
def emulated(monkeypatch):
    """The cuBLAS launcher blas.matmul on NumPy arrays, with the emulated call."""
    monkeypatch.setattr(blas, "_run", cublas.gemm_strided_batched)
    return blas.matmul


def _layouts(rng, shape):
    """The same values of `shape` in memory laid out six ways."""
    base = rng.standard_normal(shape)
    yield "contiguous", base
    yield "transposed", np.ascontiguousarray(np.swapaxes(base, -1, -2)).swapaxes(-1, -2)
    wide = np.zeros(shape[:-1] + (shape[-1] + 3,))
    wide[..., 1:shape[-1] + 1] = base
    yield "row-padded", wide[..., 1:shape[-1] + 1]
    tall = np.zeros(shape[:-2] + (shape[-1], shape[-2] + 2))
    tall[..., :shape[-2]] = np.swapaxes(base, -1, -2)
    yield "column-padded", np.swapaxes(tall[..., :shape[-2]], -1, -2)
    yield "reversed rows", np.ascontiguousarray(base[..., ::-1, :])[..., ::-1, :]
    every_other = np.zeros(shape[:-1] + (2 * shape[-1],))
    every_other[..., ::2] = base
    yield "strided columns", every_other[..., ::2]


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 5, 1), (7, 1, 3), (5, 4, 1), (1, 6, 9),
                                   (13, 11, 7), (32, 17, 64)])
def test_every_layout_of_a_matrix_product(emulated, m, k, n):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    for (la, a), (lb, b) in itertools.product(_layouts(rng, (m, k)), _layouts(rng, (k, n))):
        np.testing.assert_allclose(emulated(a, b), a @ b, rtol=1e-12, atol=1e-12,
                                   err_msg=f"a {la}, b {lb}")


@pytest.mark.parametrize("ashape,bshape", [
    ((3, 5, 4), (3, 4, 6)), ((5, 4), (3, 4, 6)), ((3, 5, 4), (4, 6)), ((2, 3, 5, 4), (4, 2)),
    ((3, 1, 5, 4), (1, 2, 4, 6)), ((1, 5, 4), (7, 4, 2)), ((2, 1, 3, 4), (2, 5, 4, 3)),
    ((1, 1, 1), (1, 1, 1)), ((4, 1, 3), (4, 3, 1))])
def test_batched_and_broadcast_products(emulated, ashape, bshape):
    rng = np.random.default_rng(len(ashape) * 10 + len(bshape))
    for (la, a), (lb, b) in itertools.product(_layouts(rng, ashape), _layouts(rng, bshape)):
        np.testing.assert_allclose(emulated(a, b), np.matmul(a, b), rtol=1e-12, atol=1e-12,
                                   err_msg=f"a {la}, b {lb}")


def test_batch_axes_in_any_order_or_step(emulated):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 5, 3))
    y = rng.standard_normal((6, 4, 3, 2))
    for a, b in [(x[::2], y[:, ::2].swapaxes(0, 1)), (x.swapaxes(0, 1), y),
                 (x[:, ::-1], y.swapaxes(0, 1)[:, ::-1]),
                 (x[1:3, 2:5], y[2:5, 1:3].swapaxes(0, 1))]:
        np.testing.assert_allclose(emulated(a, b), np.matmul(a, b), rtol=1e-12, atol=1e-12)


def test_vectors_and_empty_products(emulated):
    rng = np.random.default_rng(4)
    cases = [((5,), (5,)), ((5,), (5, 3)), ((4, 5), (5,)), ((2, 4, 5), (5,)), ((5,), (2, 5, 3)),
             ((0, 5), (5, 3)), ((4, 0), (0, 3)), ((2, 0, 4, 5), (5, 3)), ((0,), (0,))]
    for ashape, bshape in cases:
        a, b = rng.standard_normal(ashape), rng.standard_normal(bshape)
        got, want = emulated(a, b), np.matmul(a, b)
        assert got.shape == want.shape, (ashape, bshape)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_layouts_that_need_a_copy_are_copied_and_others_are_not():
    square = np.zeros((6, 6))
    assert blas._matrix_layout(square) == (blas.OP_N, 6)
    assert blas._matrix_layout(square.T) == (blas.OP_T, 6)
    assert blas._matrix_layout(square[:, :4]) == (blas.OP_N, 6)
    assert blas._matrix_layout(square[::2, ::2]) is None
    assert blas._matrix_layout(np.broadcast_to(np.zeros(4), (3, 4))) is None
    a, b = square[::2, ::2], square[:3, :3]
    gemm = blas.plan(a, b, np)
    assert gemm.b.array is not a and gemm.b.array.flags.c_contiguous
    assert gemm.a.array is b


def test_mismatched_inner_sizes_name_the_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        blas.plan(np.zeros((2, 3)), np.zeros((4, 5)), np)


def test_matmul_arrays_sends_only_kernel_arrays_of_one_dtype_to_cublas(monkeypatch):
    """The op decides: NumPy arrays, and kernel arrays of two dtypes, take xp.matmul."""
    launched = []
    monkeypatch.setattr(blas, "matmul", lambda a, b: launched.append((a.dtype, b.dtype)))
    a, b = np.arange(6.0).reshape(2, 3), np.arange(3.0)
    np.testing.assert_array_equal(matmul_arrays(a, b), a @ b)
    assert launched == []
    monkeypatch.setattr(compiler, "uses_kernels", lambda x: x.dtype in compiler.C_TYPES)
    np.testing.assert_array_equal(matmul_arrays(a, b.astype(np.float32)), a @ b)
    assert launched == []
    matmul_arrays(a, b)
    assert launched == [(np.dtype(np.float64), np.dtype(np.float64))]
