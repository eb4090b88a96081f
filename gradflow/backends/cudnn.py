"""torch.backends.cudnn's flags, accepted so PyTorch scripts run unchanged.

gradflow calls no cuDNN: convolutions are im2col GEMMs through cuBLAS, and their
backwards gather instead of scattering, so they are deterministic whatever the flags say.
Hence `is_available()` is False, `version()` None, and the flags are plain attributes kept
for whoever reads them back:
- `benchmark`: torch's autotuner of cuDNN algorithms; gradflow has one algorithm per shape.
- `deterministic`: in torch it only restricts cuDNN to deterministic algorithms (it does not
  turn on `use_deterministic_algorithms`); here every convolution already is, so it is not
  tied to `gradflow.use_deterministic_algorithms` either.
- `enabled`: whether torch may use cuDNN; gradflow never does.
- `allow_tf32`: TF32 in cuDNN's convolutions (True in torch); gradflow's convolutions are
  GEMMs on the matmul handles, so they follow `gradflow.backends.cuda.matmul.allow_tf32`
  (`gradflow.set_float32_matmul_precision`) instead.
"""
from __future__ import annotations

benchmark = False
deterministic = False
enabled = True
allow_tf32 = True


def is_available() -> bool:
    """False: gradflow does not use cuDNN (torch.backends.cudnn.is_available)."""
    return False


def version() -> None:
    """None, as torch returns where cuDNN is not available."""
    return None
