"""Recurrent layers (torch.nn.RNN, LSTM, GRU and their cells).

The sequence layers run each layer and direction as one op (gradflow.ops.rnn.Recurrence:
one GEMM for the input projection of all steps, the recurrent GEMM and fused cell per step,
backpropagation through time on arrays; no double backward). The cells are composed from
differentiable ops, so they have double backward. Parameter names, order and initialisation
are PyTorch's, so a torch state_dict loads by name.
"""
from __future__ import annotations

import math
from typing import Any

from ... import argcheck, creation
from ...ops.elementwise import sigmoid, tanh
from ...ops.index import cat, chunk, index_select, stack
from ...ops.rnn import recurrence
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _is_packed(x: Any) -> bool:
    return not isinstance(x, Tensor) and hasattr(x, "batch_sizes") and hasattr(x, "data")


def _packed_rows(batch_sizes: tuple, device: Any) -> tuple[Tensor, Tensor]:
    """For a packed batch of T steps and N = batch_sizes[0] sequences: the index of each
    (t, n) of the padded (T * N) rows into the packed data (len(data) for padding, a zero
    row appended), and the index of each packed row into the padded rows."""
    steps, batch = len(batch_sizes), batch_sizes[0]
    total = sum(batch_sizes)
    to_packed, to_padded = [], [total] * (steps * batch)
    offset = 0
    for t, b in enumerate(batch_sizes):
        for n in range(b):
            to_padded[t * batch + n] = offset + n
            to_packed.append(t * batch + n)
        offset += b
    return (creation.tensor(to_padded, device=device), creation.tensor(to_packed, device=device))


class RNNBase(Module):
    """The common body of RNN, LSTM and GRU (torch.nn.RNNBase)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size = argcheck.integer(name, "input_size", input_size, minimum=1)
        self.hidden_size = argcheck.integer(name, "hidden_size", hidden_size, minimum=1)
        self.num_layers = argcheck.integer(name, "num_layers", num_layers, minimum=1)
        self.proj_size = argcheck.integer(name, "proj_size", proj_size, minimum=0)
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or \
                not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size argument is only supported for LSTM, not RNN "
                             "or GRU")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size ({proj_size}) has to be smaller than "
                             f"hidden_size ({hidden_size})")
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            for direction in range(directions):
                layer_in = input_size if layer == 0 else real_hidden * directions
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes: list[tuple[str, tuple[int, ...]]] = [
                    ("weight_ih", (gate_size, layer_in)), ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for base, shape in shapes:
                    setattr(self, base + suffix,
                            Parameter(creation.empty(*shape, device=device, dtype=dtype)))
                    self._flat_weights_names.append(base + suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) for every weight and bias (torch's)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self) -> None:
        """A no-op, as on PyTorch's CPU path: there is no cuDNN weight buffer to compact."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters of each layer and direction, in torch's order."""
        per = len(self._flat_weights_names) // (self.num_layers * (1 + self.bidirectional))
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i:i + per]] for i in range(0, len(names), per)]

    def _layer_params(self, layer: int, direction: int) -> tuple:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        return tuple(getattr(self, n + suffix, None)
                     for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))

    def _state_shape(self, batch: int, cell: bool) -> tuple:
        size = self.hidden_size if cell or not self.proj_size else self.proj_size
        return (self.num_layers * (2 if self.bidirectional else 1), batch, size)

    def _check_state(self, state: Tensor, want: tuple, what: str) -> None:
        if not isinstance(state, Tensor):
            raise TypeError(f"{type(self).__name__}: {what} must be a Tensor, got "
                            f"{type(state).__name__}")
        if tuple(state.shape) != want:
            raise RuntimeError(f"{type(self).__name__}: Expected {what} size {want}, got "
                               f"{list(state.shape)}")

    def forward(self, input: Any, hx: Any = None) -> tuple:
        name, lstm = type(self).__name__, self.mode == "LSTM"
        packed = _is_packed(input)
        batch_sizes = sorted_idx = unsorted_idx = None
        unbatched = False
        if packed:
            data = input.data
            batch_sizes = tuple(int(b) for b in input.batch_sizes.tolist())
            sorted_idx, unsorted_idx = input.sorted_indices, input.unsorted_indices
            steps, batch = len(batch_sizes), batch_sizes[0]
            to_padded, to_packed = _packed_rows(batch_sizes, data.device)
            padded = cat([data, creation.zeros(1, data.shape[1], dtype=data.dtype,
                                               device=data.device)], 0)
            x = index_select(padded, 0, to_padded).reshape(steps, batch, data.shape[1])
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"{name}: input must be a Tensor or a PackedSequence, got "
                                f"{type(input).__name__}")
            if input.ndim not in (2, 3):
                raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D "
                                 f"tensor (shape {tuple(input.shape)})")
            unbatched = input.ndim == 2
            x = input.unsqueeze(1) if unbatched else (
                input.transpose(0, 1) if self.batch_first else input)
            batch = x.shape[1]
        if x.shape[2] != self.input_size:
            raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {x.shape[2]}")
        h0, c0 = self._initial_states(hx, x, batch, unbatched, sorted_idx)
        directions = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                k = layer * directions + direction
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_params(layer, direction)
                res = recurrence(self.mode, layer_in, h0[k], None if c0 is None else c0[k],
                                 w_ih, w_hh, b_ih, b_hh, w_hr, reverse=direction == 1,
                                 batch_sizes=batch_sizes)
                outs.append(res[0])
                h_n.append(res[1])
                if lstm:
                    c_n.append(res[2])
            layer_in = outs[0] if directions == 1 else cat(outs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        h = stack(h_n, 0)
        c = stack(c_n, 0) if lstm else None
        y = layer_in
        if packed:
            y = index_select(y.reshape(steps * batch, y.shape[2]), 0, to_packed)
            output = type(input)(y, input.batch_sizes, sorted_idx, unsorted_idx)
            if unsorted_idx is not None:
                h = index_select(h, 1, unsorted_idx)
                c = None if c is None else index_select(c, 1, unsorted_idx)
        elif unbatched:
            output = y.squeeze(1)
            h, c = h.squeeze(1), None if c is None else c.squeeze(1)
        else:
            output = y.transpose(0, 1) if self.batch_first else y
        return (output, (h, c)) if lstm else (output, h)

    def _initial_states(self, hx: Any, x: Tensor, batch: int, unbatched: bool,
                        sorted_idx: Tensor | None) -> tuple:
        """The (L * D, N, .) initial states, zeros where hx is None; unbatched ones get their
        batch dimension, packed ones follow the packed batch's sorted order."""
        name, lstm = type(self).__name__, self.mode == "LSTM"
        shapes = [self._state_shape(batch, False)] + ([self._state_shape(batch, True)]
                                                      if lstm else [])
        if hx is None:
            states = [creation.zeros(*s, dtype=x.dtype, device=x.device) for s in shapes]
            return states[0], (states[1] if lstm else None)
        if lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise RuntimeError(f"{name}: hx must be a tuple (h_0, c_0) of two tensors")
            states = list(hx)
        else:
            states = [hx]
        whats = ["hidden", "cell"]
        for i, s in enumerate(states):
            if unbatched:
                if isinstance(s, Tensor) and s.ndim != 2:
                    raise RuntimeError(f"{name}: For unbatched 2-D input, hx should also be "
                                       f"2-D but got {s.ndim}-D tensor")
                s = s.unsqueeze(1) if isinstance(s, Tensor) else s
            elif isinstance(s, Tensor) and s.ndim != 3:
                raise RuntimeError(f"{name}: For batched 3-D input, hx should also be 3-D but "
                                   f"got {s.ndim}-D tensor")
            if sorted_idx is not None and isinstance(s, Tensor):
                s = index_select(s, 1, sorted_idx)
            self._check_state(s, shapes[i], whats[i])
            states[i] = s
        return states[0], (states[1] if lstm else None)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu)
    (torch.nn.RNN)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: Unknown nonlinearity '{nonlinearity}'. Select from "
                             "'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), gates i, f, g, o as in
    torch.nn.LSTM, with an optional projection of h (proj_size, Sak et al. 2014)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit (Cho et al. 2014), gates r, z, n as in torch.nn.GRU."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


class RNNCellBase(Module):
    """One step of a recurrent layer (torch.nn.RNNCellBase), composed from differentiable
    ops, so double backward works."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = argcheck.integer(name, "input_size", input_size, minimum=1)
        self.hidden_size = argcheck.integer(name, "hidden_size", hidden_size, minimum=1)
        self.bias = bool(bias)
        gates = num_chunks * hidden_size
        self.weight_ih = Parameter(creation.empty(gates, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(creation.empty(gates, hidden_size, device=device,
                                                  dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(gates, device=device, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(gates, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _inputs(self, input: Tensor, hx: Any, cell: bool) -> tuple:
        """(x (N, I), states (N, H) each, unbatched): checked, zeros where hx is None."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D "
                             f"instead (shape {tuple(input.shape)})")
        unbatched = input.ndim == 1
        x = input.unsqueeze(0) if unbatched else input
        if x.shape[1] != self.input_size:
            raise RuntimeError(f"{name}: input has inconsistent input_size: got {x.shape[1]} "
                               f"expected {self.input_size}")
        count = 2 if cell else 1
        if hx is None:
            states = [creation.zeros(x.shape[0], self.hidden_size, dtype=x.dtype,
                                     device=x.device) for _ in range(count)]
        else:
            states = list(hx) if cell else [hx]
            for i, s in enumerate(states):
                if unbatched:
                    s = s.unsqueeze(0)
                if tuple(s.shape) != (x.shape[0], self.hidden_size):
                    raise RuntimeError(f"{name}: hidden state has shape {tuple(s.shape)}, "
                                       f"expected {(x.shape[0], self.hidden_size)} (input "
                                       f"shape {tuple(input.shape)})")
                states[i] = s
        return x, states, unbatched

    def _gates(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        return F.linear(x, self.weight_ih, self.bias_ih), F.linear(h, self.weight_hh,
                                                                   self.bias_hh)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s


class RNNCell(RNNCellBase):
    """One Elman step, h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (torch.nn.RNNCell)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._inputs(input, hx, False)
        gi, gh = self._gates(x, h)
        out = tanh(gi + gh) if self.nonlinearity == "tanh" else F.relu(gi + gh)
        return out.squeeze(0) if unbatched else out


class LSTMCell(RNNCellBase):
    """One LSTM step: (h', c') from x and (h, c) (torch.nn.LSTMCell)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Tensor]:
        x, (h, c), unbatched = self._inputs(input, hx, True)
        gi, gh = self._gates(x, h)
        i, f, g, o = chunk(gi + gh, 4, 1)
        c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h_new = sigmoid(o) * tanh(c_new)
        if unbatched:
            return h_new.squeeze(0), c_new.squeeze(0)
        return h_new, c_new


class GRUCell(RNNCellBase):
    """One GRU step, n = tanh(gi_n + r * gh_n), h' = (1 - z) n + z h (torch.nn.GRUCell)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._inputs(input, hx, False)
        gi, gh = self._gates(x, h)
        i_r, i_z, i_n = chunk(gi, 3, 1)
        h_r, h_z, h_n = chunk(gh, 3, 1)
        r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
        n = tanh(i_n + r * h_n)
        out = n + z * (h - n)
        return out.squeeze(0) if unbatched else out
