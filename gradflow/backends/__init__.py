"""torch.backends: the switches PyTorch scripts set for the libraries under the ops.

`cuda.matmul.allow_tf32` is the float32 GEMM precision (gradflow.cuda.precision); `cudnn`'s
flags are accepted and kept, but gradflow calls no cuDNN (its convolutions are im2col GEMMs
on cuBLAS, deterministic already), so they change nothing; `mps` is never available.
"""
from __future__ import annotations

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
