"""Parameters as one flat vector and back (torch.nn.utils.parameters_to_vector,
vector_to_parameters)."""
from __future__ import annotations

from typing import Iterable

from ...autograd.grad_mode import no_grad
from ...ops.index import cat
from ...tensor import Tensor


def _same_device(op: str, params: list) -> None:
    for p in params[1:]:
        if p.device != params[0].device:
            raise TypeError(f"{op}: found two parameters on different devices, "
                            f"{params[0].device} and {p.device}")


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and concatenated, in order, into one 1-D tensor (in the
    graph, as torch's)."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    if not params:
        raise RuntimeError("parameters_to_vector: expected a non-empty iterable of tensors")
    _same_device("parameters_to_vector", params)
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Overwrite the parameters' values with consecutive slices of the 1-D `vec`."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, but got: "
                        f"{type(vec).__name__}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    _same_device("vector_to_parameters", params + [vec])
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not "
                           f"hold the {total} values of the parameters")
    start = 0
    with no_grad():
        for p in params:
            n = p.numel()
            piece = vec[start:start + n].reshape(p.shape).to(p.dtype)
            p.array = piece.array.copy()
            start += n
