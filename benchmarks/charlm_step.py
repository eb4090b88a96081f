"""Time one training step of issue 19's character model in gradflow and in PyTorch, in one
process: Embedding(65, 64) + 2-layer LSTM(64, 256, batch_first) + Linear(256, 65), batches of
32 sequences of 100 characters, cross-entropy, Adam at 2e-3, gradient clipping at 1.0.

    python -m benchmarks.charlm_step [--device cpu|cuda] [--steps 20] [--warmup 3]

torch's weights are copied into gradflow's by name, both see the same batch, and the first
losses must agree before anything is timed. Each side runs its warmup and timed steps as one
block (alternating steps make the two thread pools fight over the cores). Prints each side's
median step in ms and gradflow's ratio to torch's (the target: at most 1.5).
"""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import gradflow as gf

from .timing import step_timer, summarize

VOCAB, EMBED, HIDDEN, LAYERS, BATCH, LENGTH = 65, 64, 256, 2, 32, 100
LR, CLIP = 2e-3, 1.0


def _model(lib: Any) -> Any:
    nn = lib.nn

    class CharLM(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(VOCAB, EMBED)
            self.lstm = nn.LSTM(EMBED, HIDDEN, LAYERS, batch_first=True)
            self.head = nn.Linear(HIDDEN, VOCAB)

        def forward(self, x: Any) -> Any:
            return self.head(self.lstm(self.embed(x))[0])

    return CharLM()


def _step(lib: Any, model: Any, opt: Any, x: Any, y: Any) -> Any:
    def step() -> float:
        logits = model(x)
        loss = lib.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        return float(loss.item())
    return step


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    t_model = _model(torch).to(args.device)
    g_model = _model(gf)
    g_model.load_state_dict({k: gf.tensor(v.detach().cpu().numpy())
                             for k, v in t_model.state_dict().items()})
    g_model.to(args.device)
    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCAB, (BATCH, LENGTH))
    y = rng.integers(0, VOCAB, (BATCH, LENGTH))
    sides = {
        "torch": _step(torch, t_model, torch.optim.Adam(t_model.parameters(), lr=LR),
                       torch.tensor(x, device=args.device), torch.tensor(y, device=args.device)),
        "gradflow": _step(gf, g_model, gf.optim.Adam(g_model.parameters(), lr=LR),
                          gf.tensor(x, device=args.device), gf.tensor(y, device=args.device)),
    }
    first = {name: step() for name, step in sides.items()}
    if abs(first["torch"] - first["gradflow"]) > 1e-4 * abs(first["torch"]):
        raise SystemExit(f"first losses differ: {first}")
    medians = {}
    for name, step in sides.items():
        timer = step_timer(args.device, torch if name == "torch" else None)
        for _ in range(args.warmup):
            step()
        times = [timer(step) for _ in range(args.steps)]
        medians[name] = summarize(times, BATCH)["ms_median"]
        print(f"{name:9s} {medians[name]:8.1f} ms/step (median of {args.steps})")
    print(f"ratio gradflow/torch: {medians['gradflow'] / medians['torch']:.2f} "
          "(target: at most 1.5)")


if __name__ == "__main__":
    main()
