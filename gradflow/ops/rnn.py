"""Recurrent layers over whole sequences: one op per layer and direction (the engine of
torch.nn.RNN, LSTM and GRU).

`Recurrence` runs one layer in one direction over a (T, N, I) sequence. Inside, every array
is feature-major, a state (H, N) and a step's gates (G*H, N) (ops/rnn_arrays.py says why):
forward computes the input projection W_ih x_t of every step as one batched GEMM, then loops
over time: the recurrent GEMM W_hh h, then the cell update (`_cells`: gradflow.cuda.rnn's fused
kernels on CuPy arrays, their twin ops/rnn_arrays.py otherwise). Backward runs
backpropagation through time on arrays: the reverse loop of cell backward and recurrent GEMM,
then one GEMM each for the weights' and the input's gradients over all steps. Packed sequences
run as their padded batch, sorted by decreasing length, with `batch_sizes[t]` columns active
at step t: every step computes all N, then the rest get their state back, so each column's
final state is its last valid step's, in either direction, and no gradient through the steps
past its end.

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


def _states(xp: Any, initial: Any, steps: int, back: int) -> Any:
    """A (T + 1, S, N) array for the states between steps, `initial` (S, N) at index
    T * back."""
    states = xp.empty((steps + 1, *initial.shape), initial.dtype)
    states[steps * back] = initial
    return states


def _columns(xp: Any, bias: Any, batch: int) -> Any:
    """A bias (G*H,) as a contiguous (G*H, N) array: added to (G*H, N) gates, every operand
    is contiguous and NumPy runs the sum as one pass instead of one per row."""
    return xp.ascontiguousarray(xp.broadcast_to(bias[:, None], (bias.shape[0], batch)))


def _columns_of(xp: Any, grad: Tensor | None, shape: tuple, dtype: Any) -> Any:
    """A final state's gradient (N, S) as the loop's (S, N) array, zeros when there is none."""
    return xp.zeros(shape, dtype) if grad is None else xp.ascontiguousarray(grad.array.T)


def _chunks(steps: int, descending: bool, size: int = 8) -> list:
    """The spans [lo, hi) of `size` steps each that backward prepares at once, in the order
    it walks through time: a few steps' arrays stay in cache between prepare and use."""
    spans = [(lo, min(lo + size, steps)) for lo in range(0, steps, size)]
    return spans[::-1] if descending else spans


def _side_by_side(xp: Any, per_step: Any) -> Any:
    """(T, R, N) per-step arrays as one (R, T*N) matrix, step t's columns at t*N.."""
    return xp.ascontiguousarray(per_step.transpose(1, 0, 2)).reshape(per_step.shape[1], -1)


def _wrap(a: Any) -> Tensor | None:
    return None if a is None else Tensor._wrap(a)


class Recurrence(Op):
    """One recurrent layer in one direction over a (T, N, I) sequence. Outputs (y, h_n) or,
    for the LSTM, (y, h_n, c_n); y is (T, N, P) with zeros at packed sequences' padding."""

    op_name = "rnn"

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, *, mode: str, reverse: bool,
                batch_sizes: tuple | None):
        xa = x.array
        steps, batch = xa.shape[0], xa.shape[1]
        xp = x._xp
        cells = _cells(xa)
        lstm, gru = mode == "LSTM", mode == "GRU"
        w_hh_a = w_hh.array
        hidden = w_hh_a.shape[1] if w_hr is None else w_hr.shape[1]
        # every step's input projection W_ih x_t + b_ih (+ b_hh but for the GRU, which needs
        # W_hh h + b_hh by itself), (T, G*H, N): one batched product
        xw = matmul_arrays(w_ih.array, xa.transpose(0, 2, 1))
        b_hh_cols = None
        for bias in (b_ih, b_hh):
            if bias is None:
                continue
            cols = _columns(xp, bias.array, batch)
            if bias is b_hh and gru:
                b_hh_cols = cols
            else:
                xw += cols
        # the states between steps, (T + 1, P, N), h0 (c0) at one end: step t reads
        # hs[t + back] and writes hs[t + 1 - back]
        back = int(reverse)
        hs = _states(xp, h0.array.T, steps, back)
        cs: Any = _states(xp, c0.array.T, steps, back) if lstm else None
        act = xp.empty((steps, xw.shape[1], batch), xa.dtype)
        h_raw: Any = xp.empty((steps, hidden, batch), xa.dtype) if w_hr is not None else None
        gh_n: Any = xp.empty((steps, hidden, batch), xa.dtype) if gru else None
        for t in _steps(steps, reverse):
            before, after = t + back, t + 1 - back
            rec = matmul_arrays(w_hh_a, hs[before])
            if lstm:
                rec += xw[t]
                h_out = hs[after] if w_hr is None else h_raw[t]
                cells.lstm_cell_forward(rec, cs[before], out=(h_out, cs[after], act[t]))
                if w_hr is not None:
                    hs[after] = matmul_arrays(w_hr.array, h_out)
            elif gru:
                if b_hh_cols is not None:
                    rec += b_hh_cols
                gh_n[t] = rec[2 * hidden:]
                hs[after], act[t] = cells.gru_cell_forward(xw[t], rec, hs[before])
            else:
                rec += xw[t]
                hs[after] = act[t] = cells.rnn_cell_forward(rec, ctx.nonlinearity(mode))
            b = _active(batch_sizes, t, batch)
            if b < batch:  # the sequences that ended (or, backwards, not begun) keep their state
                hs[after][:, b:] = hs[before][:, b:]
                if lstm:
                    cs[after][:, b:] = cs[before][:, b:]
        hs_rows = xp.ascontiguousarray(hs.transpose(0, 2, 1))  # (T + 1, N, P)
        y = hs_rows[1 - back:steps + 1 - back].copy()
        if batch_sizes is not None:  # zeros past each sequence's end
            for t, b in enumerate(batch_sizes):
                y[t, b:] = 0
        ctx.save_for_backward(x, w_ih, w_hh, w_hr)
        ctx.mode, ctx.reverse, ctx.batch_sizes, ctx.has_bias = mode, reverse, batch_sizes, \
            b_ih is not None
        ctx.arrays = (hs_rows, hs if gru else None, cs, act, h_raw, gh_n)
        end = 0 if reverse else steps
        h_n = hs_rows[end].copy()
        return (y, h_n, xp.ascontiguousarray(cs[end].T)) if lstm else (y, h_n)

    @staticmethod
    def nonlinearity(mode: str) -> str:
        return "tanh" if mode == "RNN_TANH" else "relu"

    @staticmethod
    def backward(ctx, g_y, g_hn, g_cn=None):
        x, w_ih, w_hh, w_hr = ctx.saved_tensors
        hs_rows, hs, cs, act, h_raw, gh_n = ctx.arrays
        mode, batch_sizes, back = ctx.mode, ctx.batch_sizes, int(ctx.reverse)
        xa = x.array
        xp = x._xp
        cells = _cells(xa)
        steps, batch = xa.shape[0], xa.shape[1]
        lstm, gru = mode == "LSTM", mode == "GRU"
        w_hh_t = xp.ascontiguousarray(w_hh.array.T)
        w_hr_t = None if w_hr is None else xp.ascontiguousarray(w_hr.array.T)
        out_size = hs_rows.shape[2]
        g_h = _columns_of(xp, g_hn, (out_size, batch), xa.dtype)
        g_c = _columns_of(xp, g_cn, cs.shape[1:], xa.dtype) if lstm else None
        g_yt = None  # g_y as (T, P, N), zero past packed sequences' ends (padding is no output)
        if g_y is not None:
            g_yt = xp.ascontiguousarray(g_y.array.transpose(0, 2, 1))
            for t, b in enumerate(batch_sizes or ()):
                g_yt[t][:, b:] = 0
        g_pre = xp.empty_like(act)  # the gradient of each step's gate pre-activations
        g_rec = xp.empty_like(act) if gru else g_pre  # ... of its recurrent product, for GRU
        g_proj = None if w_hr is None else xp.empty((steps, out_size, batch), xa.dtype)
        descending = not ctx.reverse
        for lo, hi in _chunks(steps, descending):
            prepared = ()
            if lstm:
                prepared = cells.lstm_backward_prepare(act[lo:hi], cs[lo + back:hi + back],
                                                       cs[lo + 1 - back:hi + 1 - back])
            for t in (range(hi - 1, lo - 1, -1) if descending else range(lo, hi)):
                gb = g_h if g_yt is None else g_h + g_yt[t]
                g_c_new = g_direct = None
                if lstm:
                    if w_hr is not None:
                        g_proj[t] = gb
                        gb = matmul_arrays(w_hr_t, gb)
                    _, g_c_new = cells.lstm_backward_step(gb, g_c, *(p[t - lo] for p in prepared),
                                                          out=g_pre[t])
                elif gru:
                    g_pre[t], g_rec[t], g_direct = cells.gru_cell_backward(gb, act[t], gh_n[t],
                                                                           hs[t + back])
                else:
                    g_pre[t] = cells.rnn_cell_backward(gb, act[t], Recurrence.nonlinearity(mode))
                b = _active(batch_sizes, t, batch)
                for g in ((g_pre, g_rec, g_proj) if b < batch else ()):
                    if g is not None:  # no gradient through the step of a finished sequence
                        g[t][:, b:] = 0
                g_h_new = matmul_arrays(w_hh_t, g_rec[t])
                if g_direct is not None:
                    g_h_new += g_direct
                if b < batch:  # ... whose state's gradient passes this step by
                    g_h_new[:, b:] = g_h[:, b:]
                    if lstm:
                        g_c_new[:, b:] = g_c[:, b:]
                g_h, g_c = g_h_new, g_c_new
        rows = steps * batch
        # (G*H, T*N): the gate gradients of every step side by side, for the weights' products
        g_cols = _side_by_side(xp, g_pre)
        g_rec_cols = _side_by_side(xp, g_rec) if gru else g_cols
        need = ctx.needs_input_grad
        g_x = matmul_arrays(g_cols.T, w_ih.array).reshape(xa.shape) if need[0] else None
        g_w_ih = matmul_arrays(g_cols, xa.reshape(rows, -1)) if need[3] else None
        h_prev = hs_rows[back:steps + back].reshape(rows, -1)  # the state each step read
        g_w_hh = matmul_arrays(g_rec_cols, h_prev) if need[4] else None
        g_b_ih = g_cols.sum(axis=1) if ctx.has_bias and need[5] else None
        g_b_hh = g_rec_cols.sum(axis=1) if ctx.has_bias and need[6] else None
        g_w_hr = None
        if w_hr is not None and need[7]:
            h_raw_rows = xp.ascontiguousarray(h_raw.transpose(0, 2, 1)).reshape(rows, -1)
            g_w_hr = matmul_arrays(_side_by_side(xp, g_proj), h_raw_rows)
        return (_wrap(g_x), _wrap(xp.ascontiguousarray(g_h.T)) if need[1] else None,
                _wrap(xp.ascontiguousarray(g_c.T)) if lstm and need[2] else None,
                _wrap(g_w_ih), _wrap(g_w_hh), _wrap(g_b_ih), _wrap(g_b_hh), _wrap(g_w_hr))

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
