"""kernels/rnn.cu (through gradflow/cuda/rnn.py) against its NumPy twin,
gradflow/ops/rnn_arrays.py: every cell's forward and backward on the same inputs, on awkward
sizes, both dtypes, and inputs that are not contiguous (the launchers copy them). Without a
GPU the kernels run through the emulator (tests/emulator/); on one, also on the device."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import data

from gradflow.cuda import rnn as kernels
from gradflow.ops import rnn_arrays as twin

TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
DTYPES = [np.float32, np.float64]
# (N, H): one column, one unit, odd, prime, a grid of several blocks with a ragged last one;
# the arrays are feature-major, as the kernels and the twin take them: states (H, N), gates
# (G*H, N)
SIZES = [(1, 1), (1, 7), (5, 1), (3, 13), (17, 31), (37, 129)]


def _array(shape, seed, dtype, scale=2.0, noncontiguous=False):
    """Pre-activations over a wide range (saturated gates included); a strided view of a
    larger array when `noncontiguous`."""
    a = data(*shape, seed=seed, kind="normal", dtype=dtype) * dtype(scale)
    if not noncontiguous:
        return a
    wide = np.zeros((shape[0], 2 * shape[1]), dtype)
    wide[:, 1::2] = a
    view = wide[:, 1::2]
    assert view.size == 1 or not view.flags.c_contiguous
    return view


def _to_device(a):
    """A CuPy copy of `a`, strided like it on the device when `a` is not contiguous (CuPy
    would copy it to a contiguous array)."""
    import cupy
    if a.flags.c_contiguous:
        return cupy.asarray(a)
    return cupy.asarray(np.repeat(a, 2, axis=1))[:, ::2]


def _run(backend, fn, *arrays):
    """fn's results through the kernels on `backend`, as NumPy arrays, and the kernels run."""
    if backend.device == "cuda":
        arrays = tuple(_to_device(a) if isinstance(a, np.ndarray) else a for a in arrays)
    with backend.active() as launched:
        outs = fn(*arrays)
    outs = outs if isinstance(outs, tuple) else (outs,)
    if backend.device == "cuda":
        outs = tuple(o.get() for o in outs)
    return outs, launched


def _check(backend, name, args, kernel_name):
    """kernels.<name>(*args) equals twin.<name>(*args): values, dtype, shape; the kernel ran."""
    want = getattr(twin, name)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    got, launched = _run(backend, getattr(kernels, name), *args)
    assert launched == [f"rnn.{kernel_name}"], launched
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want), (name, len(got), len(want))
    dtype = next(a.dtype.type for a in args if isinstance(a, np.ndarray))
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, (name, i, g.dtype, g.shape, w.shape)
        np.testing.assert_allclose(g, w, **TOLERANCE[dtype],
                                   err_msg=f"{name}: result {i} differs from the NumPy twin")


def _lstm_state(n, h, dtype, noncontiguous=False):
    gates = _array((4 * h, n), 0, dtype, noncontiguous=noncontiguous)
    c_prev = _array((h, n), 1, dtype, noncontiguous=noncontiguous)
    return gates, c_prev


def _gru_state(n, h, dtype, noncontiguous=False):
    return (_array((3 * h, n), 0, dtype, noncontiguous=noncontiguous),
            _array((3 * h, n), 1, dtype, noncontiguous=noncontiguous),
            _array((h, n), 2, dtype, 1.0, noncontiguous))


@pytest.mark.parametrize("noncontiguous", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_lstm_cell_kernels(kernel_backend, size, dtype, noncontiguous):
    n, h = size
    gates, c_prev = _lstm_state(n, h, dtype, noncontiguous)
    _check(kernel_backend, "lstm_cell_forward", (gates, c_prev), "lstm_cell_fwd")
    _, c, act = twin.lstm_cell_forward(gates.copy(), c_prev.copy())
    g_h = _array((h, n), 3, dtype, 1.0, noncontiguous)
    g_c = _array((h, n), 4, dtype, 1.0, noncontiguous)
    _check(kernel_backend, "lstm_cell_backward", (g_h, g_c, act, c_prev, c), "lstm_cell_bwd")


@pytest.mark.parametrize("noncontiguous", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_gru_cell_kernels(kernel_backend, size, dtype, noncontiguous):
    n, h = size
    gi, gh, h_prev = _gru_state(n, h, dtype, noncontiguous)
    _check(kernel_backend, "gru_cell_forward", (gi, gh, h_prev), "gru_cell_fwd")
    _, act = twin.gru_cell_forward(gi.copy(), gh.copy(), h_prev.copy())
    g_h = _array((h, n), 3, dtype, 1.0, noncontiguous)
    gh_n = gh[2 * h:]  # the recurrent n block
    _check(kernel_backend, "gru_cell_backward", (g_h, act, gh_n, h_prev), "gru_cell_bwd")


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("noncontiguous", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_rnn_cell_kernels(kernel_backend, size, dtype, noncontiguous, nonlinearity):
    pre = _array(size, 0, dtype, noncontiguous=noncontiguous)
    _check(kernel_backend, "rnn_cell_forward", (pre, nonlinearity), "rnn_cell_fwd")
    h = twin.rnn_cell_forward(pre.copy(), nonlinearity)
    g_h = _array(size, 3, dtype, 1.0, noncontiguous)
    _check(kernel_backend, "rnn_cell_backward", (g_h, h, nonlinearity), "rnn_cell_bwd")


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturated_and_special_values(kernel_backend, dtype):
    """Gates far into saturation (exp overflows in sigmoid), zeros, and NaN, as the twin."""
    special = np.array([-1e4, -80.0, -30.0, -0.0, 0.0, 30.0, 80.0, 1e4], dtype)
    gates = np.tile(special, (3, 4))[:, :32].T.copy()  # (32, 3): H = 8, N = 3
    c_prev = np.tile(special[::-1], (3, 1)).T.copy()
    _check(kernel_backend, "lstm_cell_forward", (gates, c_prev), "lstm_cell_fwd")
    gi, gh = gates[:24].copy(), gates[8:].copy()
    _check(kernel_backend, "gru_cell_forward", (gi, gh, c_prev * dtype(1e-3)), "gru_cell_fwd")
    pre = np.array([[np.nan, -np.inf, -1.0, -0.0, 0.0, 2.0, np.inf]], dtype)
    for nonlinearity in ("tanh", "relu"):
        _check(kernel_backend, "rnn_cell_forward", (pre, nonlinearity), "rnn_cell_fwd")


@pytest.mark.parametrize("dtype", DTYPES)
def test_grid_stride_loop_covers_more_items_than_threads(kernel_backend, dtype, monkeypatch):
    """With the grid capped at 2 blocks of 256 threads, each thread visits several (n, j)."""
    from gradflow.cuda import compiler
    monkeypatch.setattr(compiler, "MAX_BLOCKS", 2)
    n, h = 37, 129
    gates, c_prev = _lstm_state(n, h, dtype)
    _check(kernel_backend, "lstm_cell_forward", (gates, c_prev), "lstm_cell_fwd")
    _, c, act = twin.lstm_cell_forward(gates, c_prev)
    g_h, g_c = _array((h, n), 3, dtype, 1.0), _array((h, n), 4, dtype, 1.0)
    _check(kernel_backend, "lstm_cell_backward", (g_h, g_c, act, c_prev, c), "lstm_cell_bwd")
    gi, gh, h_prev = _gru_state(n, h, dtype)
    _check(kernel_backend, "gru_cell_forward", (gi, gh, h_prev), "gru_cell_fwd")
    _, act = twin.gru_cell_forward(gi, gh, h_prev)
    _check(kernel_backend, "gru_cell_backward", (g_h, act, gh[2 * h:], h_prev),
           "gru_cell_bwd")
    _check(kernel_backend, "rnn_cell_forward", (gates, "tanh"), "rnn_cell_fwd")
    _check(kernel_backend, "rnn_cell_backward", (g_h, c, "relu"), "rnn_cell_bwd")


def test_empty_batch_launches_nothing(kernel_backend):
    """N = 0: empty results of the right shapes, and no launch (a 0-block grid is an error)."""
    gates, c_prev = np.zeros((8, 0)), np.zeros((2, 0))
    (h, c, act), launched = _run(kernel_backend, kernels.lstm_cell_forward, gates, c_prev)
    assert launched == [] and (h.shape, c.shape, act.shape) == ((2, 0), (2, 0), (8, 0))


def test_unknown_nonlinearity_is_named(kernel_backend):
    for fn, args in ((kernels.rnn_cell_forward, (np.zeros((2, 3)),)),
                     (kernels.rnn_cell_backward, (np.zeros((2, 3)), np.zeros((2, 3))))):
        with pytest.raises(ValueError, match=r"rnn cell: unknown nonlinearity 'sigmoid' "
                                             r"\(expected one of \('tanh', 'relu'\)\)"):
            fn(*args, "sigmoid")


def test_launchers_on_the_fake_cupy(fake_cuda):
    """The launchers on CuPy arrays (tests/fakecupy.py, kernels emulated): every input given
    strided on the device is copied, the results are device arrays equal to the twin's, and
    each call launches its one kernel."""
    n, h = 3, 5
    gates, c_prev = _lstm_state(n, h, np.float32)
    gi, gh, h_prev = _gru_state(n, h, np.float32)
    g_h = _array((h, n), 3, np.float32, 1.0)
    _, c, act = twin.lstm_cell_forward(gates, c_prev)
    _, gru_act = twin.gru_cell_forward(gi, gh, h_prev)
    cases = [("lstm_cell_forward", "lstm_cell_fwd", (gates, c_prev)),
             ("lstm_cell_backward", "lstm_cell_bwd", (g_h, g_h, act, c_prev, c)),
             ("gru_cell_forward", "gru_cell_fwd", (gi, gh, h_prev)),
             ("gru_cell_backward", "gru_cell_bwd", (g_h, gru_act, gh[2 * h:], h_prev)),
             ("rnn_cell_forward", "rnn_cell_fwd", (gates, "relu")),
             ("rnn_cell_backward", "rnn_cell_bwd", (g_h, c, "tanh"))]
    for name, kernel_name, args in cases:
        device_args = [fake_cuda.asarray(np.repeat(a, 2, axis=1))[:, ::2]
                       if isinstance(a, np.ndarray) else a for a in args]
        assert not device_args[0].flags.c_contiguous
        fake_cuda.clear_events()
        got = getattr(kernels, name)(*device_args)
        launched = [e.where for e in fake_cuda.events_of("launch") if e.where.startswith("rnn.")]
        assert launched == [f"rnn.{kernel_name}<float>"], (name, launched)
        want = getattr(twin, name)(*args)
        for g, w in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            assert isinstance(g, fake_cuda.ndarray), (name, type(g))
            np.testing.assert_allclose(fake_cuda.asnumpy(g), w, **TOLERANCE[np.float32],
                                       err_msg=name)


def test_launchers_write_into_given_outputs(fake_cuda):
    """`out=` on the fake CuPy: the LSTM kernels write the caller's arrays (ops/rnn.py passes
    slices of its per-sequence buffers) and refuse strided ones, which they would misindex."""
    n, h = 3, 5
    gates, c_prev = _lstm_state(n, h, np.float32)
    g_h = _array((h, n), 3, np.float32, 1.0)
    d = fake_cuda.asarray
    out = (fake_cuda.empty((h, n), np.float32), fake_cuda.empty((h, n), np.float32),
           fake_cuda.empty((4 * h, n), np.float32))
    got = kernels.lstm_cell_forward(d(gates), d(c_prev), out=out)
    assert all(g is o for g, o in zip(got, out))
    want = twin.lstm_cell_forward(gates, c_prev)
    for g, w in zip(out, want):
        np.testing.assert_allclose(fake_cuda.asnumpy(g), w, **TOLERANCE[np.float32])
    g_out = fake_cuda.empty((4 * h, n), np.float32)
    g_gates, _ = kernels.lstm_cell_backward(d(g_h), d(g_h), out[2], d(c_prev), out[1],
                                            out=g_out)
    assert g_gates is g_out
    np.testing.assert_allclose(fake_cuda.asnumpy(g_out),
                               twin.lstm_cell_backward(g_h, g_h, want[2], c_prev, want[1])[0],
                               **TOLERANCE[np.float32])
    strided = fake_cuda.empty((4 * h, 2 * n), np.float32)[:, ::2]
    with pytest.raises(ValueError, match=r"lstm_cell_forward: out arrays must be contiguous"):
        kernels.lstm_cell_forward(d(gates), d(c_prev), out=(out[0], out[1], strided))
    with pytest.raises(ValueError, match=r"lstm_cell_backward: out arrays must be contiguous"):
        kernels.lstm_cell_backward(d(g_h), d(g_h), out[2], d(c_prev), out[1], out=strided)
