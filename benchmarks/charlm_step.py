"""Time one training step of issue 19's character model in gradflow and in PyTorch, in one
process: Embedding(65, 64) + 2-layer LSTM(64, 256, batch_first) + Linear(256, 65), batches of
32 sequences of 100 characters, cross-entropy, Adam at 2e-3, gradient clipping at 1.0.

    python -m benchmarks.charlm_step [--device cpu|cuda] [--steps 20] [--warmup 3]
    python -m benchmarks.charlm_step --quality [--steps 753]

torch's weights are copied into gradflow's by name, both see the same batch, and the first
losses must agree before anything is timed. Each side runs its warmup and timed steps as one
block (alternating steps make the two thread pools fight over the cores). Prints each side's
median step in ms and gradflow's ratio to torch's (the target: at most 1.5).

`--quality` trains both sides from the same weights on the same sequence of batches (random
windows of Tiny Shakespeare's training split) for `--steps` steps, then prints each side's
loss on the whole validation split and their relative difference (the target: within 2%).
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


def _validation_loss(lib: Any, model: Any, device: str) -> float:
    """Mean cross-entropy in nats per character over the validation split's chunks."""
    inputs, targets = gf.datasets.TinyShakespeare("val", LENGTH).chunks()
    total = 0.0
    with lib.no_grad():
        for lo in range(0, len(inputs), 64):
            x = lib.tensor(inputs[lo:lo + 64], device=device)
            y = lib.tensor(targets[lo:lo + 64], device=device)
            loss = lib.nn.functional.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
            total += float(loss.item()) * y.numel()
    return total / targets.size


def quality(torch: Any, models: dict, steps: int, device: str) -> dict:
    """Train each side for `steps` steps on the same batches; their validation losses."""
    text = gf.datasets.TinyShakespeare("train").data
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(text) - LENGTH - 1, (steps, BATCH))
    windows = starts[..., None] + np.arange(LENGTH + 1)
    result = {}
    for name, model in models.items():
        lib = torch if name == "torch" else gf
        opt = lib.optim.Adam(model.parameters(), lr=LR)
        model.train()
        for i in range(steps):
            batch = text[windows[i]]
            _step(lib, model, opt, lib.tensor(batch[:, :-1], device=device),
                  lib.tensor(batch[:, 1:], device=device))()
        model.eval()
        result[name] = _validation_loss(lib, model, device)
        print(f"{name:9s} validation loss after {steps} steps: {result[name]:.4f} nats/char")
    gap = (result["gradflow"] - result["torch"]) / result["torch"]
    print(f"gradflow relative to torch: {gap:+.2%} (target: within 2%)")
    return result


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps (default 20), or training steps with --quality "
                             "(default 753, the anchor's)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quality", action="store_true",
                        help="compare validation losses after equal training instead of timing")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    t_model = _model(torch).to(args.device)
    g_model = _model(gf)
    g_model.load_state_dict({k: gf.tensor(v.detach().cpu().numpy())
                             for k, v in t_model.state_dict().items()})
    g_model.to(args.device)
    if args.quality:
        quality(torch, {"torch": t_model, "gradflow": g_model}, args.steps or 753, args.device)
        return
    args.steps = args.steps or 20
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
