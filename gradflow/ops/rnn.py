"""Recurrent layers over whole sequences: one op per layer and direction (the engine of
torch.nn.RNN, LSTM and GRU).

`Recurrence` runs one layer in one direction over a (T, N, I) sequence. Forward computes the
input projection of every step as one GEMM, then loops over time: the recurrent GEMM, then
the cell update (`_cells`: gradflow.cuda.rnn's fused kernels on CuPy float32/float64
arrays, their twin ops/rnn_arrays.py otherwise). Backward runs backpropagation through time
on arrays: the reverse loop of cell backward and recurrent GEMM, then one GEMM each for the
weights' and the input's gradients over all steps. Packed sequences run as their padded
batch, sorted by decreasing length, with `batch_sizes[t]` rows active at step t: the rest keep
their state, so each row's final state is its last valid step's, in either direction.

NOTE: the gradient is computed on arrays, so it is not itself differentiable: double backward
through a recurrent layer is not supported (as with PyTorch's cuDNN path). The cells
(nn.RNNCell, LSTMCell, GRUCell) are composed ops and support it.
"""
from __future__ import annotations

from typing import Any

from ..amp.autocast_mode import autocast_policy
from ..autograd.function import Op
from ..cuda import compiler
from ..tensor import Tensor
from . import rnn_arrays
from .matmul import matmul_arrays

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _cells(a: Any) -> Any:
    """The cell functions for arrays like `a`: gradflow.cuda.rnn's fused kernels for kernel
    arrays (CuPy float32/float64), their xp twin (ops/rnn_arrays.py) for the rest."""
    if compiler.uses_kernels(a):
        from ..cuda import rnn as cuda_rnn  # NOTE: lazily: it is needed on the GPU only
        return cuda_rnn
    return rnn_arrays


def _steps(length: int, reverse: bool) -> range:
    return range(length - 1, -1, -1) if reverse else range(length)


def _active(batch_sizes: tuple | None, t: int, batch: int) -> int:
    return batch if batch_sizes is None else batch_sizes[t]


def _wrap(a: Any) -> Tensor | None:
    return None if a is None else Tensor._wrap(a)


class Recurrence(Op):
    """One recurrent layer in one direction over a (T, N, I) sequence. Outputs (y, h_n) or,
    for the LSTM, (y, h_n, c_n); y is (T, N, P) with zeros at packed sequences' padding."""

    op_name = "rnn"

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, *, mode: str, reverse: bool,
                batch_sizes: tuple | None):
        xa, h = x.array, h0.array
        steps, batch = xa.shape[0], xa.shape[1]
        xp = x._xp
        cells = _cells(xa)
        hidden = w_hh.shape[1] if w_hr is None else w_hr.shape[1]
        # NOTE: W_hh^T made contiguous once: the per-step product runs ~20% faster with it
        # (OpenBLAS, a (32, 256) by (256, 1024) product) than on the transposed view
        w_hh_t = xp.ascontiguousarray(w_hh.array.T)
        proj = None if w_hr is None else w_hr.array.T
        lstm, gru = mode == "LSTM", mode == "GRU"
        xw = matmul_arrays(xa.reshape(steps * batch, -1), w_ih.array.T)
        if b_ih is not None:
            xw += b_ih.array
        b_hh_a = None if b_hh is None else b_hh.array
        if b_hh_a is not None and not gru:  # GRU alone needs h W_hh^T + b_hh by itself
            xw += b_hh_a
            b_hh_a = None
        xw = xw.reshape(steps, batch, -1)
        out_size = h.shape[1]
        y = xp.zeros((steps, batch, out_size), xa.dtype)
        h_prev = xp.empty((steps, batch, out_size), xa.dtype)
        act = xp.zeros((steps, batch, xw.shape[2]), xa.dtype)
        c: Any = c0.array if lstm else None
        c_all: Any = xp.empty((steps, batch, hidden), xa.dtype) if lstm else None
        h_raw: Any = xp.empty((steps, batch, hidden), xa.dtype) if proj is not None else None
        gh_n: Any = xp.empty((steps, batch, hidden), xa.dtype) if gru else None
        for t in _steps(steps, reverse):
            b = _active(batch_sizes, t, batch)
            h_prev[t] = h
            hb = h[:b]
            rec = matmul_arrays(hb, w_hh_t)
            if b_hh_a is not None:
                rec += b_hh_a
            if lstm:
                rec += xw[t, :b]
                h_new, c_new, a = cells.lstm_cell_forward(rec, c[:b])
                if b < batch:  # the finished sequences keep their state
                    c_all[t] = c
                c_all[t, :b] = c_new
                if proj is not None:
                    h_raw[t, :b] = h_new
                    h_new = matmul_arrays(h_new, proj)
                c = c_all[t]
            elif gru:
                gh_n[t, :b] = rec[:, 2 * hidden:]
                h_new, a = cells.gru_cell_forward(xw[t, :b], rec, hb)
            else:
                rec += xw[t, :b]
                a = h_new = cells.rnn_cell_forward(rec, ctx.nonlinearity(mode))
            act[t, :b] = a
            y[t, :b] = h_new
            if b == batch:
                h = h_new
            else:
                h = h.copy()
                h[:b] = h_new
        ctx.save_for_backward(x, w_ih, w_hh, w_hr)
        ctx.mode, ctx.reverse, ctx.batch_sizes, ctx.has_bias = mode, reverse, batch_sizes, \
            b_ih is not None
        # NOTE: the LSTM's c before step t is c_all at the step before it (c0 at the first),
        # finished sequences' rows included, so it is read from there rather than stored twice
        ctx.arrays = (h_prev, act, c0.array if lstm else None, c_all, h_raw, gh_n, y)
        return (y, h, c) if lstm else (y, h)

    @staticmethod
    def nonlinearity(mode: str) -> str:
        return "tanh" if mode == "RNN_TANH" else "relu"

    @staticmethod
    def backward(ctx, g_y, g_hn, g_cn=None):
        x, w_ih, w_hh, w_hr = ctx.saved_tensors
        h_prev, act, c0, c_all, h_raw, gh_n, y = ctx.arrays
        mode, batch_sizes = ctx.mode, ctx.batch_sizes
        xa = x.array
        xp = x._xp
        cells = _cells(xa)
        steps, batch = xa.shape[0], xa.shape[1]
        lstm, gru = mode == "LSTM", mode == "GRU"
        w_hh_a = w_hh.array
        g_h = xp.zeros_like(h_prev[0]) if g_hn is None else g_hn.array.copy()
        g_c = None
        if lstm:
            g_c = xp.zeros_like(c_all[0]) if g_cn is None else g_cn.array.copy()
        g_ya = None if g_y is None else g_y.array
        g_pre = xp.zeros_like(act)  # the gradient of each step's gate pre-activations
        g_rec = xp.zeros_like(act) if gru else g_pre  # ... of its recurrent product, for GRU
        g_proj = xp.zeros_like(h_prev) if w_hr is not None else None
        for t in _steps(steps, not ctx.reverse):
            b = _active(batch_sizes, t, batch)
            gb = g_h[:b]
            if g_ya is not None:
                gb = gb + g_ya[t, :b]
            if lstm:
                if w_hr is not None:
                    g_proj[t, :b] = gb
                    gb = matmul_arrays(gb, w_hr.array)
                before = t + 1 if ctx.reverse else t - 1
                c_prev = c_all[before] if 0 <= before < steps else c0
                g_gates, g_cb = cells.lstm_cell_backward(gb, g_c[:b], act[t, :b], c_prev[:b],
                                                         c_all[t, :b])
                g_pre[t, :b] = g_gates
                if b == batch:
                    g_c, g_h = g_cb, matmul_arrays(g_gates, w_hh_a)
                else:
                    g_c[:b] = g_cb
                    g_h[:b] = matmul_arrays(g_gates, w_hh_a)
            elif gru:
                g_gi, g_gh, g_direct = cells.gru_cell_backward(gb, act[t, :b], gh_n[t, :b],
                                                               h_prev[t, :b])
                g_pre[t, :b] = g_gi
                g_rec[t, :b] = g_gh
                g_h[:b] = g_direct + matmul_arrays(g_gh, w_hh_a)
            else:
                g_gates = cells.rnn_cell_backward(gb, act[t, :b], Recurrence.nonlinearity(mode))
                g_pre[t, :b] = g_gates
                g_h[:b] = matmul_arrays(g_gates, w_hh_a)
        rows = steps * batch
        g_pre2 = g_pre.reshape(rows, -1)
        g_rec2 = g_rec.reshape(rows, -1)
        need = ctx.needs_input_grad
        g_x = matmul_arrays(g_pre2, w_ih.array).reshape(xa.shape) if need[0] else None
        g_w_ih = matmul_arrays(g_pre2.T, xa.reshape(rows, -1)) if need[3] else None
        g_w_hh = matmul_arrays(g_rec2.T, h_prev.reshape(rows, -1)) if need[4] else None
        g_b_ih = g_pre2.sum(axis=0) if ctx.has_bias and need[5] else None
        g_b_hh = g_rec2.sum(axis=0) if ctx.has_bias and need[6] else None
        g_w_hr = None
        if w_hr is not None and need[7]:
            g_w_hr = matmul_arrays(g_proj.reshape(rows, -1).T, h_raw.reshape(rows, -1))
        return (_wrap(g_x), _wrap(g_h) if need[1] else None,
                _wrap(g_c) if lstm and need[2] else None, _wrap(g_w_ih), _wrap(g_w_hh),
                _wrap(g_b_ih), _wrap(g_b_hh), _wrap(g_w_hr))

    def release(self) -> None:
        super().release()
        self.arrays = ()


def recurrence(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor,
               w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None,
               w_hr: Tensor | None = None, reverse: bool = False,
               batch_sizes: tuple | None = None) -> tuple:
    """Run one layer of `mode` ('LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU') in one direction over
    x (T, N, I) from h0 (N, P) (and c0 (N, H) for the LSTM): (y, h_n) or (y, h_n, c_n).
    `batch_sizes` (T ints, non-increasing) makes it a packed batch's padded form."""
    return _BY_MODE[mode](mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, batch_sizes)


def _recurrence(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor,
                w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None, w_hr: Tensor | None,
                reverse: bool, batch_sizes: tuple | None) -> tuple:
    _check(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes)
    return Recurrence.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mode=mode,
                            reverse=reverse, batch_sizes=batch_sizes)


# NOTE: autocast's policy is per kind of recurrence, as PyTorch's (its CPU autocast lowers the
# LSTM and the Elman RNN but leaves the GRU in its dtype; CUDA's lowers all four)
_BY_MODE = {mode: autocast_policy(mode.lower())(_recurrence)
            for mode in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")}


def _check(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, w_ih: Tensor, w_hh: Tensor,
           b_ih: Tensor | None, b_hh: Tensor | None, w_hr: Tensor | None,
           batch_sizes: tuple | None) -> None:
    name = "rnn" if mode.startswith("RNN_") else mode.lower()
    gates = w_ih.shape[0]
    if x.ndim != 3:
        raise ValueError(f"{name}: input must have 3 dimensions (T, N, I), got shape "
                         f"{tuple(x.shape)}")
    if x.shape[2] != w_ih.shape[1]:
        raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                           f"{w_ih.shape[1]}, got {x.shape[2]}")
    hidden = gates // _GATES[mode]
    out = hidden if w_hr is None else w_hr.shape[0]
    want = (x.shape[1], out)
    if tuple(h0.shape) != want:
        raise RuntimeError(f"{name}: expected hidden size {want}, got {tuple(h0.shape)}")
    if c0 is not None and tuple(c0.shape) != (x.shape[1], hidden):
        raise RuntimeError(f"{name}: expected cell size {(x.shape[1], hidden)}, got "
                           f"{tuple(c0.shape)}")
    for t in (h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        if t is not None and t.dtype != x.dtype:
            raise RuntimeError(f"{name}: input and parameters/hidden states must have the same "
                               f"dtype, got {x.dtype} and {t.dtype}")
    if batch_sizes is not None and len(batch_sizes) != x.shape[0]:
        raise RuntimeError(f"{name}: {len(batch_sizes)} batch sizes for {x.shape[0]} steps")
