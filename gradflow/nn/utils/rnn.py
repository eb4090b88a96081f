"""Utilities for recurrent nets over padded and packed batches (torch.nn.utils.rnn).

A packed batch keeps the time steps of the sorted sequences one after the other: at step t the
`batch_sizes[t]` sequences still running, longest first. Packing and padding are each one
gather (`GetItem`) from the padded or packed data, with a padding row appended where the
result needs padding, so both are differentiable through the deterministic scatter-add.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from ...backend import move_array
from ...creation import full, tensor
from ...ops.index import GetItem, cat
from ...ops.shape import reshape, transpose
from ...tensor import Tensor

__all__ = ["PackedSequence", "invert_permutation", "pad_sequence", "pack_padded_sequence",
           "pad_packed_sequence", "pack_sequence", "unpack_sequence", "unpad_sequence"]


class PackedSequence_(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(PackedSequence_):
    """The data and batch sizes of a packed batch of sequences (torch's PackedSequence).

    `data` holds the steps of the sequences sorted by decreasing length, step by step;
    `batch_sizes` (a CPU int64 tensor) how many sequences run at each step; `sorted_indices`
    the original batch position of each sorted sequence and `unsorted_indices` its inverse
    (None when the batch came sorted). Build one with pack_padded_sequence or pack_sequence.
    """

    def __new__(cls, data: Any, batch_sizes: Tensor | None = None,
                sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None) -> "PackedSequence":
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:  # PackedSequence((data, batch_sizes), ...)
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        elif batch_sizes.device.type != "cpu":
            raise ValueError("PackedSequence: batch_sizes should always be on CPU, got "
                             f"{batch_sizes.device}")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> "PackedSequence":
        """Convert `data` as Tensor.to does; the indices follow it to its device, and
        batch_sizes stay on the CPU. Returns self when nothing changes."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        sorted_indices, unsorted_indices = (None if t is None else t.to(data.device)
                                            for t in self[2:])
        return type(self)(data, self.batch_sizes, sorted_indices, unsorted_indices)

    def cuda(self, device: Any = None) -> "PackedSequence":
        return self.to("cuda" if device is None else device)

    def cpu(self) -> "PackedSequence":
        return self.to("cpu")

    def double(self) -> "PackedSequence":
        return self.to(np.float64)

    def float(self) -> "PackedSequence":
        return self.to(np.float32)

    def half(self) -> "PackedSequence":
        return self.to(np.float16)

    def long(self) -> "PackedSequence":
        return self.to(np.int64)

    def int(self) -> "PackedSequence":
        return self.to(np.int32)

    @property
    def is_cuda(self) -> bool:
        """Whether `data` is on a GPU."""
        return self.data.is_cuda


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a 1-D permutation tensor (None stays None)."""
    if permutation is None:
        return None
    xp = permutation._xp
    out = xp.empty_like(permutation.array)
    out[permutation.array] = xp.arange(permutation.array.size, dtype=out.dtype)
    return Tensor._wrap(out)


def _gather_rows(source: Tensor, rows: np.ndarray, padding_value: float) -> Tensor:
    """source's rows (dim 0) at `rows` (an integer array of any shape), -1 giving a row of
    `padding_value`: one gather from source with a padding row appended."""
    if (rows < 0).any():
        pad = full((1,) + tuple(source.shape[1:]), padding_value, dtype=source.dtype,
                   device=source.device)
        source = cat([source, pad])
        rows = np.where(rows < 0, source.shape[0] - 1, rows)
    return GetItem.apply(source, items=(move_array(rows.astype(np.int64), source.device),))


def _lengths_list(op: str, lengths: Any) -> list[int]:
    if isinstance(lengths, Tensor):
        if lengths.is_cuda:
            raise RuntimeError(f"{op}: 'lengths' argument should be a 1D CPU int64 tensor, but "
                               f"got 1D {lengths.device} {lengths.dtype} tensor")
        if lengths.dtype.kind not in "iu" or lengths.ndim != 1:
            raise RuntimeError(f"{op}: 'lengths' argument should be a 1D CPU int64 tensor, but "
                               f"got {lengths.ndim}D {lengths.dtype} tensor")
        return [int(v) for v in lengths.tolist()]
    values = list(lengths)
    if any(isinstance(v, bool) or int(v) != v for v in values):
        raise TypeError(f"{op}: lengths must be integers, got {values}")
    return [int(v) for v in values]


def pad_sequence(sequences: Any, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences of shapes (L_i, *) into (T, B, *) ((B, T, *) with batch_first),
    padding each to the longest with `padding_value` on `padding_side` (torch's)."""
    if not isinstance(sequences, Iterable):
        raise RuntimeError(f"pad_sequence: Expected iterable for input sequences, but got arg "
                           f"of type: {type(sequences)}")
    seqs = list(sequences)
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"pad_sequence: Expected padding_side to be one of left or right, but "
                         f"got {padding_side}.")
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    trail = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor) or s.ndim == 0:
            raise RuntimeError(f"pad_sequence: sequence {i} must be a Tensor of at least one "
                               f"dim, got {getattr(s, 'shape', type(s).__name__)}")
        if tuple(s.shape[1:]) != trail or s.dtype != seqs[0].dtype:
            raise RuntimeError(f"pad_sequence: sequence {i} has shape {tuple(s.shape)} and dtype"
                               f" {s.dtype}, but sequence 0 has trailing shape {trail} and dtype"
                               f" {seqs[0].dtype}")
    lengths = np.array([s.shape[0] for s in seqs], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.max())
    t = np.arange(total)[None, :]
    if padding_side == "left":
        t = t - (total - lengths)[:, None]
    rows = np.where((t >= 0) & (t < lengths[:, None]), starts[:, None] + t, -1)  # (B, T)
    out = _gather_rows(cat(seqs) if len(seqs) > 1 else seqs[0], rows if batch_first else rows.T,
                       padding_value)
    return out


def pack_padded_sequence(input: Tensor, lengths: Any, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) ((B, T, *) with batch_first) of sequences of `lengths`
    (a list or a CPU int64 tensor), sorted by decreasing length unless enforce_sorted=False."""
    op = "pack_padded_sequence"
    lens = np.array(_lengths_list(op, lengths), np.int64)
    if input.ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dims (T, B, *), got shape "
                         f"{tuple(input.shape)}")
    b_dim = 0 if batch_first else 1
    steps, batch = input.shape[1 - b_dim], input.shape[b_dim]
    if lens.size != batch:
        raise RuntimeError(f"{op}: Expected `len(lengths)` to be equal to batch_size, but got "
                         f"{lens.size} (batch_size={batch})")
    if enforce_sorted:
        if (np.diff(lens) > 0).any():
            raise RuntimeError(f"{op}: `lengths` array must be sorted in decreasing order when "
                               f"`enforce_sorted` is True, got {lens.tolist()}. You can pass "
                               "`enforce_sorted=False` to pack_padded_sequence and/or "
                               "pack_sequence to sidestep this requirement if you do not need "
                               "ONNX exportability.")
        order = np.arange(batch)
        sorted_indices = None
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = tensor(order, device=input.device)
    lens_sorted = lens[order]
    if batch and lens_sorted[-1] <= 0:
        raise RuntimeError(f"{op}: Length of all samples has to be greater than 0, but found an "
                           f"element in 'lengths' that is <= 0 (lengths {lens.tolist()})")
    if batch and lens_sorted[0] > steps:
        raise RuntimeError(f"{op}: the longest length {int(lens_sorted[0])} exceeds the input's "
                           f"{steps} time steps (input shape {tuple(input.shape)})")
    running = lens_sorted[None, :] > np.arange(int(lens_sorted[0]) if batch else 0)[:, None]
    t_idx, j_idx = np.nonzero(running)  # step-major, longest sequence first
    b_idx = order[j_idx]
    items = (b_idx, t_idx) if batch_first else (t_idx, b_idx)
    data = GetItem.apply(input, items=tuple(move_array(a.astype(np.int64), input.device)
                                            for a in items))
    batch_sizes = tensor(running.sum(1).astype(np.int64))
    return PackedSequence(data, batch_sizes, sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None
                        ) -> tuple[Tensor, Tensor]:
    """Undo pack_padded_sequence: the padded batch (T, B, *) ((B, T, *) with batch_first) in
    the original batch order, and the lengths (a CPU int64 tensor)."""
    sizes = np.asarray(sequence.batch_sizes.tolist(), np.int64).reshape(-1)
    steps = sizes.size
    if total_length is not None:
        if total_length < steps:
            raise ValueError("Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {steps}")
        steps = total_length
    batch = int(sizes[0]) if sizes.size else 0
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    j = np.arange(batch)
    sizes_t = np.zeros(steps, np.int64)
    sizes_t[:sizes.size] = sizes
    starts_t = np.zeros(steps, np.int64)
    starts_t[:sizes.size] = starts
    rows = np.where(j[None, :] < sizes_t[:, None], starts_t[:, None] + j[None, :], -1)  # (T, B)
    lengths = (j[None, :] < sizes[:, None]).sum(0).astype(np.int64)
    if sequence.unsorted_indices is not None:
        unsorted = np.asarray(sequence.unsorted_indices.tolist(), np.int64)
        rows, lengths = rows[:, unsorted], lengths[unsorted]
    out = _gather_rows(sequence.data, rows.T if batch_first else rows, padding_value)
    return out, tensor(lengths)


def pack_sequence(sequences: Any, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences of shapes (L_i, *) (torch.nn.utils.rnn.pack_sequence)."""
    seqs = list(sequences)
    lengths = [s.shape[0] for s in seqs]
    return pack_padded_sequence(pad_sequence(seqs), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences of a PackedSequence, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


def unpad_sequence(padded_sequences: Tensor, lengths: Any,
                   batch_first: bool = False) -> list[Tensor]:
    """The list of sequences of a padded batch, each cut to its length."""
    x = padded_sequences if batch_first else transpose(padded_sequences, 0, 1)
    lens = _lengths_list("unpad_sequence", lengths)
    return [reshape(x[i, :n], (n,) + tuple(x.shape[2:])) for i, n in enumerate(lens)]
