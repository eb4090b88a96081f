"""A character-level LSTM on Tiny Shakespeare (char-rnn), written as in PyTorch with `torch` ->
`gradflow`: truncated backpropagation through time and sampling with a temperature.

    python examples/char_rnn.py                       # 2 x 256 LSTM, a few minutes on a CPU
    python examples/char_rnn.py --steps 50 --hidden 64

The training text (the first 90% of the bundled Tiny Shakespeare) is cut into --batch-size
parallel streams read left to right in chunks of --seq-len characters. The LSTM's hidden state
is carried from one chunk to the next but detached, so each backward pass stops at the chunk's
start (truncated BPTT) and no graph outlives its step; gradients are clipped to norm 1.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.datasets import TinyShakespeare


class CharRNN(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: gf.Tensor, state: tuple | None = None) -> tuple:
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def streams(data: np.ndarray, batch_size: int) -> np.ndarray:
    """The text as batch_size rows, each a contiguous stretch of it (char-rnn's batching)."""
    length = (len(data) - 1) // batch_size
    return np.stack([data[i * length:(i + 1) * length + 1] for i in range(batch_size)])


def sample(model: CharRNN, text: TinyShakespeare, length: int, temperature: float,
           seed: int = 0, prompt: str = "\n") -> str:
    """Draw `length` characters one at a time from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    model.eval()
    out, state = [], None
    x = gf.tensor(text.encode(prompt)[None])
    with gf.no_grad():
        for _ in range(length):
            logits, state = model(x, state)
            p = F.softmax(logits[0, -1] / temperature, dim=-1).numpy().astype(np.float64)
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(nxt)
            x = gf.tensor([[nxt]])
    model.train()
    return text.decode(out)


def evaluate(model: CharRNN, val: TinyShakespeare, seq_len: int, limit: int) -> float:
    """Nats per character on the first `limit` characters of the validation text."""
    model.eval()
    rows = streams(val.data[:limit + 1], 8)
    total, count, state = 0.0, 0, None
    with gf.no_grad():
        for t in range(0, rows.shape[1] - 1, seq_len):
            x, y = gf.tensor(rows[:, t:t + seq_len]), gf.tensor(rows[:, t + 1:t + seq_len + 1])
            x = x[:, :y.shape[1]]
            logits, state = model(x, state)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    model.train()
    return total / count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--sample-length", type=int, default=300)
    p.add_argument("--val-chars", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    gf.manual_seed(args.seed)
    train, val = TinyShakespeare("train"), TinyShakespeare("val")
    model = CharRNN(train.vocab_size, args.embed, args.hidden, args.layers)
    optimizer = gf.optim.Adam(model.parameters(), lr=args.lr)
    rows = streams(train.data, args.batch_size)
    print(f"char-rnn: LSTM {args.layers} x {args.hidden} on {len(train.data):,} characters "
          f"({args.batch_size} streams, chunks of {args.seq_len})")
    state, t = None, 0
    for step in range(1, args.steps + 1):
        if t + args.seq_len + 1 > rows.shape[1]:  # the end of the text: start again
            state, t = None, 0
        x = gf.tensor(rows[:, t:t + args.seq_len])
        y = gf.tensor(rows[:, t + 1:t + args.seq_len + 1])
        t += args.seq_len
        if state is not None:  # truncated BPTT: keep the values, drop the graph behind them
            state = tuple(s.detach() for s in state)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, train.vocab_size), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: train loss {loss.item():.4f} nats "
                  f"({loss.item() / math.log(2):.3f} bits per character)")
    val_loss = evaluate(model, val, args.seq_len, args.val_chars)
    print(f"validation loss {val_loss:.4f} nats ({val_loss / math.log(2):.3f} bits per "
          f"character)")
    print(f"sample (temperature {args.temperature}):")
    print(sample(model, train, args.sample_length, args.temperature, args.seed))


if __name__ == "__main__":
    main()
