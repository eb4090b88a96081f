"""`summary(model, input_size)`: each layer's output shape and parameter count, found by one
forward pass with forward hooks (in eval mode, without grad; the mode is restored)."""
from __future__ import annotations

from typing import Any

from .autograd.grad_mode import no_grad
from .creation import zeros
from .nn.module import Module


def summary(model: Module, input_size: Any, batch_size: int = 1, device: Any = None,
            dtype: Any = None, print_fn=print) -> str:
    """Print (and return) a layer table for `model` on an input of `input_size` (no batch)."""
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else "cpu"
    rows, handles = [], []
    for name, mod in model.named_modules():
        if name and not mod._modules:
            def hook(m, _inputs, out, name=name):
                shape = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
                params = sum(p.numel() for p in m.parameters(recurse=False))
                rows.append((name, type(m).__name__, shape, params))
            handles.append(mod.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            out = model(zeros((batch_size,) + tuple(input_size), dtype=dtype, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    width = max([len(r[0]) + len(r[1]) + 3 for r in rows] + [24])
    lines = [f"{type(model).__name__} on {device}, input {(batch_size,) + tuple(input_size)}",
             f"{'layer (type)':<{width}} {'output shape':<22} {'params':>12}",
             "-" * (width + 36)]
    lines += [f"{f'{n} ({t})':<{width}} {str(s):<22} {p:>12,}" for n, t, s, p in rows]
    lines += ["-" * (width + 36), f"output shape: {tuple(out.shape)}",
              f"total parameters: {total:,}", f"trainable parameters: {trainable:,}"]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
