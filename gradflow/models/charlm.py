"""Character language models for `python -m gradflow.train --task charlm`: a stacked LSTM
(char-rnn, Karpathy 2015) and a small decoder-only Transformer (GPT-style, pre-norm, causal).

Both map int64 indices N x T to logits N x T x vocab. `step(idx, state)` is the form sampling
uses: (logits, new state), the LSTM's (h, c), the Transformer's None (it re-reads its context).
"""
from __future__ import annotations

from typing import Any

from .. import nn
from ..creation import arange
from ..tensor import Tensor


class CharLSTM(nn.Module):
    """Embedding -> num_layers LSTM (batch first) -> Linear to the vocabulary."""

    def __init__(self, vocab: int = 65, embed: int = 64, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, vocab)

    def step(self, idx: Tensor, state: Any = None) -> tuple:
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state

    def forward(self, idx: Tensor) -> Tensor:
        return self.step(idx)[0]


class CharTransformer(nn.Module):
    """Token and learned position embeddings -> `layers` pre-norm TransformerEncoderLayers
    under a causal mask (each position attends to itself and the past) -> LayerNorm -> Linear.
    Reads at most `context` characters."""

    def __init__(self, vocab: int = 65, d_model: int = 128, heads: int = 4, layers: int = 2,
                 context: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model,
                                       dropout=dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, idx: Tensor) -> Tensor:
        t = idx.shape[1]
        if t > self.context:
            raise ValueError(f"CharTransformer: the input has {t} positions but the model "
                             f"reads at most context={self.context}")
        x = self.embed(idx) + self.pos(arange(t, device=idx.device))
        # NOTE: -inf above the diagonal: position i attends to positions 0..i only.
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=idx.device)
        for block in self.blocks:
            x = block(x, src_mask=mask, is_causal=True)
        return self.head(self.norm(x))

    def step(self, idx: Tensor, state: Any = None) -> tuple:
        return self(idx[:, -self.context:]), None


def char_lstm(vocab: int = 65, embed: int = 64, hidden: int = 256, layers: int = 2,
              dropout: float = 0.0) -> CharLSTM:
    """The issue's anchor model: Embedding(65, 64) + LSTM(64, 256, 2) + Linear(256, 65)."""
    return CharLSTM(vocab, embed, hidden, layers, dropout)


def char_transformer(vocab: int = 65, d_model: int = 128, heads: int = 4, layers: int = 2,
                     context: int = 128, dropout: float = 0.0) -> CharTransformer:
    """A small decoder-only Transformer: 2 layers of width 128 with 4 heads, context 128."""
    return CharTransformer(vocab, d_model, heads, layers, context, dropout)
