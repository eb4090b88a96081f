"""`evaluate(model)`: the inference switches, eval mode and no_grad, set and undone together."""
from __future__ import annotations

import contextlib
from typing import Iterator

from ..autograd.grad_mode import no_grad
from ..nn.module import Module


@contextlib.contextmanager
def evaluate(model: Module) -> Iterator[Module]:
    """Run `model` in eval mode without recording the graph. On exit, even by an exception,
    grad mode and each submodule's own `training` flag come back as they were, so a model
    with deliberately frozen parts (a BatchNorm kept in eval while training) stays so."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            yield model
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)
