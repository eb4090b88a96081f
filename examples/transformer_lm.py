"""A small decoder-only Transformer (GPT-style) on Tiny Shakespeare's characters, written as in
PyTorch with `torch` -> `gradflow`.

    python examples/transformer_lm.py                     # 2 layers of 128, 4 heads
    python examples/transformer_lm.py --steps 50 --d-model 32

Token and learned position embeddings feed pre-norm nn.TransformerEncoderLayers under a causal
mask (nn.Transformer.generate_square_subsequent_mask: position i attends to 0..i only), so
the encoder stack acts as a decoder; each step trains on random windows of the text.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.datasets import TinyShakespeare


class TransformerLM(nn.Module):
    def __init__(self, vocab: int, d_model: int, heads: int, layers: int, context: int) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, x: gf.Tensor) -> gf.Tensor:
        t = x.shape[1]
        h = self.embed(x) + self.pos(gf.arange(t))
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        return self.head(self.norm(self.blocks(h, mask=mask, is_causal=True)))


def sample(model: TransformerLM, text: TinyShakespeare, length: int, temperature: float,
           seed: int = 0, prompt: str = "\n") -> str:
    """Draw `length` characters, each from softmax(logits / temperature) given the last
    `context` characters."""
    rng = np.random.default_rng(seed)
    model.eval()
    ids = list(text.encode(prompt))
    with gf.no_grad():
        for _ in range(length):
            logits = model(gf.tensor([ids[-model.context:]]))
            p = F.softmax(logits[0, -1] / temperature, dim=-1).numpy().astype(np.float64)
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train()
    return text.decode(ids[len(prompt):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--sample-length", type=int, default=300)
    p.add_argument("--val-batches", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    gf.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train, val = TinyShakespeare("train"), TinyShakespeare("val")
    model = TransformerLM(train.vocab_size, args.d_model, args.heads, args.layers, args.context)
    optimizer = gf.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    print(f"transformer-lm: {args.layers} layers of {args.d_model}, {args.heads} heads, context "
          f"{args.context}, {sum(p.numel() for p in model.parameters()):,} parameters")

    def windows(data: np.ndarray, starts: np.ndarray) -> tuple:
        chunk = data[starts[:, None] + np.arange(args.context + 1)]
        return gf.tensor(chunk[:, :-1]), gf.tensor(chunk[:, 1:])

    for step in range(1, args.steps + 1):
        x, y = windows(train.data, rng.integers(0, len(train.data) - args.context - 1,
                                                args.batch_size))
        loss = F.cross_entropy(model(x).reshape(-1, train.vocab_size), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: train loss {loss.item():.4f} nats "
                  f"({loss.item() / math.log(2):.3f} bits per character)")
    model.eval()
    inputs, targets = val.chunks(args.context)
    n = min(len(inputs), args.val_batches * args.batch_size)
    with gf.no_grad():
        logits = model(gf.tensor(inputs[:n]))
        val_loss = F.cross_entropy(logits.reshape(-1, val.vocab_size),
                                   gf.tensor(targets[:n]).reshape(-1)).item()
    print(f"validation loss {val_loss:.4f} nats ({val_loss / math.log(2):.3f} bits per "
          f"character)")
    print(f"sample (temperature {args.temperature}):")
    print(sample(model, train, args.sample_length, args.temperature, args.seed))


if __name__ == "__main__":
    main()
