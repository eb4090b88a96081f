"""The recurrent cells on arrays: the NumPy/CuPy twin of gradflow.cuda.rnn's fused kernels.

Each function is one time step of one layer in PyTorch's gate order: LSTM (i, f, g, o), GRU
(r, z, n) with n = tanh(gi_n + r * gh_n). Arrays are feature-major: a state is (H, N), hidden
units by batch, and a gate array (G*H, N) stacks the G gates' (H, N) blocks, so that every
gate is one contiguous block (NumPy runs an op on a contiguous array several times faster than
on the strided columns of a batch-major (N, G*H) array; the per-step products W @ h are also
faster this way round). ops/rnn.py runs them over a whole sequence (forward) and backwards
through time (backward).
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


# NOTE: these run once per time step on one step's arrays, where each NumPy call costs about
# as much as its arithmetic: results are built in place (out=) rather than from temporaries
def lstm_cell_forward(gates: Any, c_prev: Any, out: tuple | None = None) -> tuple:
    """One LSTM step from the (4H, N) gate pre-activations: (h, c, act), act the activated
    gates (sigmoid i, f, o; tanh g) that backward reads; written into `out` = (h, c, act)
    when given (contiguous arrays of those shapes)."""
    xp = array_module(gates)
    hidden = c_prev.shape[0]
    h, c, act = out if out is not None else (xp.empty_like(c_prev), xp.empty_like(c_prev),
                                             xp.empty_like(gates))
    xp.multiply(gates, 0.5, out=act)  # sigmoid(x) = 0.5 * (1 + tanh(x / 2)), g as it is
    act[2 * hidden:3 * hidden] = gates[2 * hidden:3 * hidden]
    xp.tanh(act, out=act)
    for sig in (act[:2 * hidden], act[3 * hidden:]):
        sig *= 0.5
        sig += 0.5
    i, f = act[:hidden], act[hidden:2 * hidden]
    g, o = act[2 * hidden:3 * hidden], act[3 * hidden:]
    xp.multiply(f, c_prev, out=c)
    c += i * g
    xp.tanh(c, out=h)
    h *= o
    return h, c, act


def lstm_backward_prepare(act: Any, c_prev: Any, c: Any) -> tuple[Any, Any, Any]:
    """What `lstm_backward_step` reads, for one or more steps at once ((..., 4H, N) activated
    gates, (..., H, N) cell states before and after): (k, a, f), a = o (1 - tanh(c)^2)
    carrying h's gradient to c's, k the factors from c's gradient to the pre-activations of
    i, f and g and from h's to o's, f the forget gate. ops/rnn.py runs it on a few steps at
    a time: fewer calls than step by step, and arrays that stay in cache."""
    xp = array_module(act)
    hidden = c.shape[-2]
    i, f = act[..., :hidden, :], act[..., hidden:2 * hidden, :]
    g, o = act[..., 2 * hidden:3 * hidden, :], act[..., 3 * hidden:, :]
    k = act * act
    xp.subtract(act, k, out=k)  # s (1 - s): the sigmoids' derivative (g's block is redone)
    k[..., :hidden, :] *= g
    k[..., hidden:2 * hidden, :] *= c_prev
    k_g = k[..., 2 * hidden:3 * hidden, :]
    xp.multiply(g, g, out=k_g)
    xp.subtract(1, k_g, out=k_g)
    k_g *= i
    a = xp.tanh(c)
    k[..., 3 * hidden:, :] *= a
    a *= a
    a *= o
    xp.subtract(o, a, out=a)
    return k, a, f


def lstm_backward_step(g_h: Any, g_c: Any, k: Any, a: Any, f: Any,
                       out: Any = None) -> tuple[Any, Any]:
    """The gradients of one LSTM step's (4H, N) gate pre-activations and of c_prev, from
    those of its h and c outputs and the step's slice of `lstm_backward_prepare`; the first
    written into `out` when given (a contiguous (4H, N) array)."""
    xp = array_module(k)
    hidden, batch = g_h.shape
    if out is not None and not out.flags.c_contiguous:
        raise ValueError("lstm_backward_step: out must be contiguous (it is written through "
                         "a reshaped view)")
    g_gates = xp.empty_like(k) if out is None else out
    g_cell = g_h * a
    g_cell += g_c
    xp.multiply(g_cell, k[:3 * hidden].reshape(3, hidden, batch),
                out=g_gates[:3 * hidden].reshape(3, hidden, batch))
    xp.multiply(g_h, k[3 * hidden:], out=g_gates[3 * hidden:])
    g_cell *= f
    return g_gates, g_cell


def lstm_cell_backward(g_h: Any, g_c: Any, act: Any, c_prev: Any,
                       c: Any) -> tuple[Any, Any]:
    """The gradients of one LSTM step's gate pre-activations (4H, N) and of c_prev, from those
    of its h and c outputs."""
    return lstm_backward_step(g_h, g_c, *lstm_backward_prepare(act, c_prev, c))


def gru_cell_forward(gi: Any, gh: Any, h_prev: Any) -> tuple[Any, Any]:
    """One GRU step from gi = W_ih x + b_ih and gh = W_hh h + b_hh, both (3H, N):
    (h, act), act the activated gates (r, z, n) that backward reads."""
    xp = array_module(gi)
    hidden = h_prev.shape[0]
    act = gi + gh
    _sigmoid_(act[:2 * hidden])
    r, z = act[:hidden], act[hidden:2 * hidden]
    n = act[2 * hidden:]
    xp.multiply(r, gh[2 * hidden:], out=n)
    n += gi[2 * hidden:]
    xp.tanh(n, out=n)
    h = h_prev - n
    h *= z
    h += n
    return h, act


def gru_cell_backward(g_h: Any, act: Any, gh_n: Any, h_prev: Any) -> tuple[Any, Any, Any]:
    """The gradients of one GRU step's gi and gh (3H, N) and the direct part of h_prev's
    (the caller adds W_hh^T g_gh), from that of its output h."""
    xp = array_module(act)
    hidden = h_prev.shape[0]
    r, z, n = act[:hidden], act[hidden:2 * hidden], act[2 * hidden:]
    g_n = g_h * (1 - z) * (1 - n * n)
    g_gi = xp.empty_like(act)
    g_gi[:hidden] = g_n * gh_n * r * (1 - r)
    g_gi[hidden:2 * hidden] = g_h * (h_prev - n) * z * (1 - z)
    g_gi[2 * hidden:] = g_n
    g_gh = g_gi.copy()
    g_gh[2 * hidden:] = g_n * r
    return g_gi, g_gh, g_h * z


def rnn_cell_forward(gates: Any, nonlinearity: str) -> Any:
    """One Elman RNN step: h = tanh(gates) or relu(gates), gates = W_ih x + W_hh h + b."""
    xp = array_module(gates)
    return xp.tanh(gates) if nonlinearity == "tanh" else xp.maximum(gates, 0)


def rnn_cell_backward(g_h: Any, h: Any, nonlinearity: str) -> Any:
    """The gradient of one Elman step's gate pre-activations from that of its output h."""
    if nonlinearity == "tanh":
        return g_h * (1 - h * h)
    return g_h * (h > 0)
