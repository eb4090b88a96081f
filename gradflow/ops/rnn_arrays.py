"""The recurrent cells on arrays: the NumPy/CuPy twin of gradflow.cuda.rnn's fused kernels.

Each function is one time step of one layer, on (N, .) arrays of one dtype, in PyTorch's gate
order: LSTM (i, f, g, o), GRU (r, z, n) with n = tanh(gi_n + r * gh_n). ops/rnn.py runs them
over a whole sequence (forward) and backwards through time (backward).
"""
from __future__ import annotations

from typing import Any

from ..backend import array_module


def _sigmoid_(a: Any) -> Any:
    """sigmoid(a) in place, as 0.5 * (1 + tanh(a / 2)): no overflow for large |a|."""
    xp = array_module(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


# NOTE: these run once per time step on (N, H)-sized slices, where each NumPy call costs about
# as much as its arithmetic: results are built in place (out=) rather than from temporaries.
def lstm_cell_forward(gates: Any, c_prev: Any) -> tuple[Any, Any, Any]:
    """One LSTM step from the (N, 4H) gate pre-activations: (h, c, act), act the activated
    gates (sigmoid i, f, o; tanh g) that backward reads."""
    xp = array_module(gates)
    hidden = gates.shape[1] // 4
    act = gates.copy()
    _sigmoid_(act[:, :2 * hidden])
    xp.tanh(act[:, 2 * hidden:3 * hidden], out=act[:, 2 * hidden:3 * hidden])
    _sigmoid_(act[:, 3 * hidden:])
    i, f = act[:, :hidden], act[:, hidden:2 * hidden]
    g, o = act[:, 2 * hidden:3 * hidden], act[:, 3 * hidden:]
    c = f * c_prev
    c += i * g
    h = xp.tanh(c)
    h *= o
    return h, c, act


def lstm_cell_backward(g_h: Any, g_c: Any, act: Any, c_prev: Any,
                       c: Any) -> tuple[Any, Any]:
    """The gradients of one LSTM step's gate pre-activations (N, 4H) and of c_prev, from those
    of its h and c outputs."""
    xp = array_module(act)
    hidden = act.shape[1] // 4
    i, f = act[:, :hidden], act[:, hidden:2 * hidden]
    g, o = act[:, 2 * hidden:3 * hidden], act[:, 3 * hidden:]
    g_gates = xp.empty_like(act)
    g_i, g_f = g_gates[:, :hidden], g_gates[:, hidden:2 * hidden]
    g_g, g_o = g_gates[:, 2 * hidden:3 * hidden], g_gates[:, 3 * hidden:]
    tc = xp.tanh(c)
    xp.multiply(g_h, tc, out=g_o)  # the gradient of o, before o's derivative
    g_cell = g_h * o
    tc *= tc
    g_cell -= g_cell * tc  # times 1 - tanh(c)^2
    g_cell += g_c
    xp.multiply(g_cell, g, out=g_i)
    xp.multiply(g_cell, c_prev, out=g_f)
    xp.multiply(g_cell, i, out=g_g)
    sig = g_gates[:, :2 * hidden]  # i and f: times sigmoid' = s (1 - s)
    sig *= act[:, :2 * hidden]
    sig -= sig * act[:, :2 * hidden]
    g_g -= g_g * g * g  # times tanh' = 1 - g^2
    g_o *= o
    g_o -= g_o * o
    return g_gates, g_cell * f


def gru_cell_forward(gi: Any, gh: Any, h_prev: Any) -> tuple[Any, Any]:
    """One GRU step from gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh, both (N, 3H):
    (h, act), act the activated gates (r, z, n) that backward reads."""
    xp = array_module(gi)
    hidden = gi.shape[1] // 3
    act = gi + gh
    _sigmoid_(act[:, :2 * hidden])
    r, z = act[:, :hidden], act[:, hidden:2 * hidden]
    act[:, 2 * hidden:] = xp.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
    n = act[:, 2 * hidden:]
    h = n + z * (h_prev - n)
    return h, act


def gru_cell_backward(g_h: Any, act: Any, gh_n: Any, h_prev: Any) -> tuple[Any, Any, Any]:
    """The gradients of one GRU step's gi and gh (N, 3H) and the direct part of h_prev's
    (the caller adds g_gh W_hh), from that of its output h."""
    xp = array_module(act)
    hidden = act.shape[1] // 3
    r, z, n = act[:, :hidden], act[:, hidden:2 * hidden], act[:, 2 * hidden:]
    g_n = g_h * (1 - z) * (1 - n * n)
    g_gi = xp.empty_like(act)
    g_gi[:, :hidden] = g_n * gh_n * r * (1 - r)
    g_gi[:, hidden:2 * hidden] = g_h * (h_prev - n) * z * (1 - z)
    g_gi[:, 2 * hidden:] = g_n
    g_gh = g_gi.copy()
    g_gh[:, 2 * hidden:] = g_n * r
    return g_gi, g_gh, g_h * z


def rnn_cell_forward(gates: Any, nonlinearity: str) -> Any:
    """One Elman RNN step: h = tanh(gates) or relu(gates), gates = x W_ih^T + h W_hh^T + b."""
    xp = array_module(gates)
    return xp.tanh(gates) if nonlinearity == "tanh" else xp.maximum(gates, 0)


def rnn_cell_backward(g_h: Any, h: Any, nonlinearity: str) -> Any:
    """The gradient of one Elman step's gate pre-activations from that of its output h."""
    if nonlinearity == "tanh":
        return g_h * (1 - h * h)
    return g_h * (h > 0)
