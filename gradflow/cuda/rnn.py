"""Launchers for kernels/rnn.cu on CuPy arrays: one fused kernel per cell and pass for a time
step of LSTM, GRU and the tanh/relu RNN. The same names, arguments and results as the NumPy
twins in gradflow/ops/rnn_arrays.py, in their feature-major layout (states (H, N), gates
(G*H, N)); inputs that are not contiguous are copied first."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import array_module
from . import compiler

NONLINEARITIES = ("tanh", "relu")


def _contiguous(*arrays: Any) -> list:
    xp = array_module(arrays[0])
    return [xp.ascontiguousarray(a) for a in arrays]


def _outputs(name: str, *arrays: Any) -> None:
    """Refuse output arrays the kernels cannot write: they index them as contiguous."""
    for a in arrays:
        if not a.flags.c_contiguous:
            raise ValueError(f"{name}: out arrays must be contiguous, got strides {a.strides} "
                             f"for shape {a.shape}")


def _size(state: Any) -> np.int64:
    """The H*N elements of an (H, N) state as int64: the kernels' loop bound and the distance
    between two gates' blocks."""
    return np.int64(state.size)


def lstm_cell_forward(gates: Any, c_prev: Any, out: tuple | None = None) -> tuple:
    """One LSTM step from the (4H, N) gate pre-activations (torch's i, f, g, o order) and the
    cell state: (h, c, act), act the activated gates the backward pass reads; written into
    `out` = (h, c, act) when given (contiguous arrays of those shapes)."""
    gates, c_prev = _contiguous(gates, c_prev)
    xp = array_module(gates)
    h, c, act = out if out is not None else (xp.empty_like(c_prev), xp.empty_like(c_prev),
                                             xp.empty_like(gates))
    _outputs("lstm_cell_forward", h, c, act)
    compiler.launch_loop("rnn", "lstm_cell_fwd", gates.dtype, c_prev.size,
                         (gates, c_prev, h, c, act, _size(c_prev)))
    return h, c, act


def lstm_backward_prepare(act: Any, c_prev: Any, c: Any) -> tuple[Any, Any, Any]:
    """What `lstm_backward_step` reads at each step: the forward's arrays as they are (the
    fused kernel derives everything from them in one pass)."""
    return act, c_prev, c


def lstm_cell_backward(g_h: Any, g_c: Any, act: Any, c_prev: Any, c: Any,
                       out: Any = None) -> tuple:
    """Gradients of one LSTM step: (g_gates, g_c_prev) from those of h and c; g_gates written
    into `out` when given (a contiguous (4H, N) array)."""
    g_h, g_c, act, c_prev, c = _contiguous(g_h, g_c, act, c_prev, c)
    xp = array_module(act)
    g_gates = xp.empty_like(act) if out is None else out
    _outputs("lstm_cell_backward", g_gates)
    g_c_prev = xp.empty_like(c_prev)
    compiler.launch_loop("rnn", "lstm_cell_bwd", act.dtype, c_prev.size,
                         (g_h, g_c, act, c_prev, c, g_gates, g_c_prev, _size(c_prev)))
    return g_gates, g_c_prev


lstm_backward_step = lstm_cell_backward


def gru_cell_forward(gi: Any, gh: Any, h_prev: Any) -> tuple:
    """One GRU step from the (3H, N) input and recurrent projections (torch's r, z, n order,
    biases included) and the hidden state: (h, act), act the activated gates r, z, n."""
    gi, gh, h_prev = _contiguous(gi, gh, h_prev)
    xp = array_module(gi)
    h, act = xp.empty_like(h_prev), xp.empty_like(gi)
    compiler.launch_loop("rnn", "gru_cell_fwd", gi.dtype, h_prev.size,
                         (gi, gh, h_prev, h, act, _size(h_prev)))
    return h, act


def gru_cell_backward(g_h: Any, act: Any, gh_n: Any, h_prev: Any) -> tuple:
    """Gradients of one GRU step: (g_gi, g_gh, g_h_prev); gh_n is the (H, N) n block of the
    recurrent projection the forward pass read."""
    g_h, act, gh_n, h_prev = _contiguous(g_h, act, gh_n, h_prev)
    xp = array_module(act)
    g_gi, g_gh, g_h_prev = xp.empty_like(act), xp.empty_like(act), xp.empty_like(h_prev)
    compiler.launch_loop("rnn", "gru_cell_bwd", act.dtype, h_prev.size,
                         (g_h, act, gh_n, h_prev, g_gi, g_gh, g_h_prev, _size(h_prev)))
    return g_gi, g_gh, g_h_prev


def _relu(nonlinearity: str) -> np.int32:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"rnn cell: unknown nonlinearity {nonlinearity!r} "
                         f"(expected one of {NONLINEARITIES})")
    return np.int32(nonlinearity == "relu")


def rnn_cell_forward(gates: Any, nonlinearity: str) -> Any:
    """One Elman RNN step: h = tanh(gates) or relu(gates), gates = x W_ih^T + h W_hh^T + b."""
    relu = _relu(nonlinearity)
    (gates,) = _contiguous(gates)
    h = array_module(gates).empty_like(gates)
    compiler.launch_loop("rnn", "rnn_cell_fwd", gates.dtype, gates.size,
                         (gates, h, np.int64(gates.size), relu))
    return h


def rnn_cell_backward(g_h: Any, h: Any, nonlinearity: str) -> Any:
    """The gradient of one Elman step's gate pre-activations from that of its output h."""
    relu = _relu(nonlinearity)
    g_h, h = _contiguous(g_h, h)
    g_pre = array_module(h).empty_like(h)
    compiler.launch_loop("rnn", "rnn_cell_bwd", h.dtype, h.size,
                         (g_h, h, g_pre, np.int64(h.size), relu))
    return g_pre
