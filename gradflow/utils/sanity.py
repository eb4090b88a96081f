"""Sanity checks before a long training run, as one call: `sanity_check`. The recipe is
Salakhutdinov's ("Deep Learning", MLSS 2017) and Solberg's ("Training convolutional networks
for classification", IN5400, University of Oslo, 2019): check the gradients by finite
differences, look for saturated units, and overfit a small set first."""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import nn, optim
from ..autograd.grad_mode import no_grad
from ..autograd.gradcheck import gradcheck
from ..creation import randn
from ..nn import functional as F

ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid)


@dataclass
class SanityReport:
    """Each check as (name, passed, detail); `passed` when all passed."""

    checks: list = field(default_factory=list)

    def add(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append((name, bool(passed), detail))

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    def __str__(self) -> str:
        return "\n".join(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}"
                         for name, ok, detail in self.checks)


def sanity_check(model: nn.Module, loader, num_classes: int | None = None,
                 overfit_steps: int = 300, print_fn=print) -> SanityReport:
    """Check a classifier before training it: the initial loss is near ln(classes), it can
    overfit 20 samples, a gradcheck of a sample of its layers passes in float64, and its
    activations show no mostly-dead ReLUs or saturated tanh/sigmoid units. The model itself
    is left untouched (the checks use copies)."""
    report = SanityReport()
    x, y = next(iter(loader))
    probe = copy.deepcopy(model)
    stats, inputs = _record(probe)
    # NOTE: training mode on purpose (the initial loss and activations of the net as it will
    # train), on a copy, so BatchNorm's warning about updating running statistics is moot.
    with no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*training mode under no_grad", UserWarning)
        logits = probe(x)
    classes = num_classes or logits.shape[1]
    loss = F.cross_entropy(logits, y).item()
    expected = math.log(classes)
    report.add("initial loss", abs(loss - expected) <= 0.3 * expected,
               f"{loss:.3f}, expected about ln({classes}) = {expected:.3f}")
    for name, (kind, fraction) in stats.items():
        what = "never active" if kind == "relu" else "saturated"
        report.add(f"activations {name}", fraction <= 0.5,
                   f"{100 * fraction:.1f}% of units {what} on the first batch")
    report.add(*_overfit(model, x[:20], y[:20], overfit_steps))
    for name, module, shape in _gradcheck_sample(probe, inputs):
        ok = gradcheck(module, (randn(*shape, dtype=np.float64, requires_grad=True),),
                       raise_exception=False)
        report.add(f"gradcheck {name}", ok, f"{type(module).__name__} on input {shape}")
    print_fn(str(report))
    return report


def _record(model: nn.Module) -> tuple:
    """Forward hooks that record activation statistics and each leaf module's input shape."""
    stats: dict[str, tuple[str, float]] = {}  # activation module -> (kind, dead/saturated)
    inputs: dict[str, tuple] = {}  # leaf module -> its input's shape
    for name, module in model.named_modules():
        if isinstance(module, ACTIVATIONS):
            def hook(mod, args, out, name=name):
                a = out.detach().array
                if isinstance(mod, nn.ReLU):
                    dead = (a.reshape(a.shape[0], -1) > 0).any(axis=0).mean()
                    stats[name] = ("relu", 1.0 - float(dead))
                else:
                    lo, hi = (-0.99, 0.99) if isinstance(mod, nn.Tanh) else (0.01, 0.99)
                    stats[name] = ("saturating", float(((a < lo) | (a > hi)).mean()))
            module.register_forward_hook(hook)
        elif not list(module.children()):
            def shape_hook(mod, args, out, name=name):
                inputs.setdefault(name, tuple(args[0].shape))
            module.register_forward_hook(shape_hook)
    return stats, inputs


def _overfit(model: nn.Module, x, y, steps: int) -> tuple:
    net = copy.deepcopy(model)
    net.train()
    opt = optim.Adam(net.parameters(), lr=1e-3)
    accuracy = 0.0
    for step in range(1, steps + 1):
        opt.zero_grad()
        logits = net(x)
        F.cross_entropy(logits, y).backward()
        opt.step()
        if step % 25 == 0:
            accuracy = (logits.argmax(1) == y).float().mean().item()
            if accuracy == 1.0:
                break
    return ("overfit 20 samples", accuracy == 1.0,
            f"training accuracy {100 * accuracy:.0f}% after {step} Adam steps")


def _gradcheck_sample(model: nn.Module, inputs: dict, budget: int = 3000) -> list:
    """One layer of each parameterised type, in float64 on a batch of 2 (batch norm needs
    more than one sample), small enough for a full-Jacobian gradcheck (input plus parameters
    under `budget` numbers)."""
    chosen, seen = [], set()
    for name, module in model.named_modules():
        kind = type(module)
        params = sum(p.numel() for p in module.parameters())
        if name not in inputs or kind in seen or params == 0:
            continue
        shape = (2,) + inputs[name][1:]
        if math.prod(shape) + params <= budget:
            seen.add(kind)
            chosen.append((name, copy.deepcopy(module).double(), shape))
    return chosen
