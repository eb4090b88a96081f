"""Embedding layers (torch.nn.Embedding, EmbeddingBag)."""
from __future__ import annotations

from typing import Any

from ... import argcheck, creation
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter

__all__ = ["Embedding", "EmbeddingBag"]


def _padding_idx(name: str, padding_idx: int | None, n: int) -> int | None:
    """padding_idx made non-negative, checked as torch does."""
    if padding_idx is None:
        return None
    if not -n <= padding_idx < n:
        raise AssertionError(f"{name}: padding_idx must be within num_embeddings (got "
                             f"padding_idx={padding_idx}, num_embeddings={n})")
    return padding_idx % n


def _make_weight(name: str, num_embeddings: int, embedding_dim: int, weight: Tensor | None,
            requires_grad: bool, device: Any, dtype: Any) -> Parameter:
    if weight is None:
        return Parameter(creation.empty(num_embeddings, embedding_dim, device=device,
                                        dtype=dtype), requires_grad=requires_grad)
    if tuple(weight.shape) != (num_embeddings, embedding_dim):
        raise AssertionError(f"{name}: Shape of weight does not match num_embeddings and "
                             f"embedding_dim (weight shape {tuple(weight.shape)}, expected "
                             f"{(num_embeddings, embedding_dim)})")
    return Parameter(weight, requires_grad=requires_grad)


def _pretrained_shape(name: str, embeddings: Tensor) -> tuple:
    if embeddings.ndim != 2:
        raise AssertionError(f"{name}.from_pretrained: Embeddings parameter is expected to be "
                             f"2-dimensional, got shape {tuple(embeddings.shape)}")
    return tuple(embeddings.shape)


class _EmbeddingBase(Module):
    padding_idx: int | None
    weight: Parameter

    def reset_parameters(self) -> None:
        """torch's init: N(0, 1) entries, the padding row zeroed."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0)


class Embedding(_EmbeddingBase):
    """A table of `num_embeddings` vectors of size `embedding_dim`, looked up by index
    (torch.nn.Embedding). The weight is N(0, 1) with the padding_idx row zeroed."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Tensor | None = None, _freeze: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.num_embeddings = argcheck.integer("Embedding", "num_embeddings", num_embeddings,
                                               minimum=0)
        self.embedding_dim = argcheck.integer("Embedding", "embedding_dim", embedding_dim,
                                              minimum=0)
        self.padding_idx = _padding_idx("Embedding", padding_idx, num_embeddings)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.weight = _make_weight("Embedding", num_embeddings, embedding_dim, _weight,
                                   not _freeze, device, dtype)
        if _weight is None:
            self.reset_parameters()
        self.sparse = sparse

    def forward(self, input: Tensor) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> "Embedding":
        """An Embedding whose weight is `embeddings` (shared, not copied), frozen by default."""
        rows, cols = _pretrained_shape("Embedding", embeddings)
        return cls(rows, cols, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=embeddings,
                   _freeze=freeze)


class EmbeddingBag(_EmbeddingBase):
    """Sums, means or maxima of bags of embeddings (torch.nn.EmbeddingBag)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight: Tensor | None = None,
                 include_last_offset: bool = False, padding_idx: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.num_embeddings = argcheck.integer("EmbeddingBag", "num_embeddings",
                                               num_embeddings, minimum=0)
        self.embedding_dim = argcheck.integer("EmbeddingBag", "embedding_dim", embedding_dim,
                                              minimum=0)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = _padding_idx("EmbeddingBag", padding_idx, num_embeddings)
        self.weight = _make_weight("EmbeddingBag", num_embeddings, embedding_dim, _weight, True,
                                   device, dtype)
        if _weight is None:
            self.reset_parameters()
        self.mode, self.sparse = mode, sparse
        self.include_last_offset = include_last_offset

    def forward(self, input: Tensor, offsets: Tensor | None = None,
                per_sample_weights: Tensor | None = None) -> Tensor:
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                               self.scale_grad_by_freq, self.mode, self.sparse,
                               per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        max_norm: float | None = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, mode: str = "mean",
                        sparse: bool = False, include_last_offset: bool = False,
                        padding_idx: int | None = None) -> "EmbeddingBag":
        """An EmbeddingBag whose weight is `embeddings` (shared), frozen by default."""
        rows, cols = _pretrained_shape("EmbeddingBag", embeddings)
        bag = cls(rows, cols, max_norm=max_norm, norm_type=norm_type,
                  scale_grad_by_freq=scale_grad_by_freq, mode=mode, sparse=sparse,
                  _weight=embeddings, include_last_offset=include_last_offset,
                  padding_idx=padding_idx)
        bag.weight.requires_grad = not freeze
        return bag
