"""torch.backends.cuda: `matmul.allow_tf32` (TF32 for float32 GEMMs, the same setting as
`gradflow.set_float32_matmul_precision`) and `is_built()`."""
from __future__ import annotations

from ..backend import cupy_module
from ..cuda import precision


class _Matmul:
    """torch.backends.cuda.matmul: `allow_tf32` is True when the float32 matmul precision is
    'high' or 'medium'; setting it True selects 'high', False 'highest', as in torch.
    `allow_fp16_reduced_precision_reduction` and `allow_bf16_reduced_precision_reduction`
    are kept for scripts that set them, without effect: gradflow's float16 products are
    CuPy's, which accumulate as cuBLAS's default says, and gradflow has no bfloat16."""

    __slots__ = ("allow_fp16_reduced_precision_reduction",
                 "allow_bf16_reduced_precision_reduction")

    def __init__(self) -> None:
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        return precision.get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        precision.set_float32_matmul_precision("high" if value else "highest")

    def __setattr__(self, name: str, value: object) -> None:
        if name != "allow_tf32" and name not in _Matmul.__slots__:
            raise AttributeError(f"gradflow.backends.cuda.matmul: unknown attribute {name!r}")
        object.__setattr__(self, name, value)


matmul = _Matmul()


def is_built() -> bool:
    """True when CuPy imports, i.e. gradflow can run on CUDA given a GPU
    (torch.backends.cuda.is_built: built with CUDA support)."""
    return cupy_module() is not None
