"""`--weights FILE`: a model's starting weights from a PyTorch checkpoint (`torch.save` of a
state_dict), a safetensors file, or a gradflow checkpoint (its "model" entry). The file is
read with the default, code-free loaders: a pickle that names anything but tensors and plain
containers is refused."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..nn import Module
from ..serialization import CheckpointError, load
from ..tensor import Tensor

_NESTED = ("model", "state_dict")  # where training checkpoints keep the model's state_dict


def read_state_dict(path: str | Path) -> dict:
    """The state_dict a file holds; ValueError naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from ..safetensors import load_file
            state: Any = load_file(path)
        else:
            state = load(path)
    except (CheckpointError, ImportError, OSError) as err:
        raise ValueError(f"--weights {path}: {err}") from None
    for key in _NESTED:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"--weights {path}: holds no state_dict (a dict of tensor names to "
                         f"tensors, or a checkpoint with one under 'model' or 'state_dict'), "
                         f"but a {type(state).__name__}")
    return state


def load_weights(model: Module, path: str | Path) -> None:
    """Copy the file's state_dict into the model, every key and shape matching (strict)."""
    state = read_state_dict(path)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError) as err:  # torch's message spans lines: one here
        raise ValueError(f"--weights {path}: {' '.join(str(err).split())}") from None
