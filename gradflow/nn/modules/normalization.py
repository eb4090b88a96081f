"""Normalisation layers: BatchNorm1d/2d/3d, LayerNorm, RMSNorm, GroupNorm,
InstanceNorm1d/2d/3d and AlexNet's LocalResponseNorm."""
from __future__ import annotations

import warnings

from ... import argcheck, creation, dtypes
from ...autograd.grad_mode import is_grad_enabled
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LayerNorm", "RMSNorm", "GroupNorm", "LocalResponseNorm"]


def _affine(module: Module, shape, affine: bool, bias: bool, device, dtype) -> None:
    """Register the learnable scale (ones) and shift (zeros), or None where absent."""
    if affine:
        module.weight = Parameter(creation.ones(shape, device=device, dtype=dtype))
    else:
        module.register_parameter("weight", None)
    if affine and bias:
        module.bias = Parameter(creation.zeros(shape, device=device, dtype=dtype))
    else:
        module.register_parameter("bias", None)


class _NormBase(Module):
    """Per-channel affine parameters and (optionally) running statistics."""

    def __init__(self, num_features: int, eps: float, momentum: float | None, affine: bool,
                 track_running_stats: bool, device=None, dtype=None, bias: bool = True) -> None:
        super().__init__()
        owner = type(self).__name__
        self.num_features = argcheck.integer(owner, "num_features", num_features, minimum=1)
        argcheck.real(owner, "eps", eps, 0, open_low=True)
        argcheck.momentum(owner, momentum)
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _affine(self, num_features, affine, bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, device=device,
                                                                dtype=dtype))
            self.register_buffer("running_var", creation.ones(num_features, device=device,
                                                              dtype=dtype))
            self.register_buffer("num_batches_tracked",
                                 creation.zeros((), dtype=dtypes.int64, device=device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def _momentum(self) -> float:
        """The update weight for this step; None means a cumulative average, as in torch."""
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                return 1.0 / float(self.num_batches_tracked.item())
        return 0.0 if self.momentum is None else self.momentum

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.affine and self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """Warns, once per layer, of two training-mode slips: a batch of one sample (statistics
    of a single sample), and a call under no_grad (an evaluation loop that forgot
    `model.eval()`, which moves the running statistics)."""

    expected_dims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)
        self._warned: set = set()

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in self.expected_dims:
            raise ValueError(f"{type(self).__name__}: expected "
                             f"{' or '.join(f'{d}D' for d in self.expected_dims)} input, got "
                             f"{input.ndim}D input of shape {tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels, "
                             f"got input of shape {tuple(input.shape)}")
        if self.training:
            self._warn_training_slips(input)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight,
                            self.bias, use_batch, self._momentum(), self.eps)


    def _warn_training_slips(self, input: Tensor) -> None:
        name = type(self).__name__
        # NOTE: with one value per channel F.batch_norm raises instead (torch does too).
        if input.shape[0] == 1 and input.numel() > input.shape[1]:
            self._warn_once("batch of one", (
                f"{name}: training mode with a batch of 1 sample (input shape "
                f"{tuple(input.shape)}): each channel is normalised by that one sample's "
                f"statistics; train on batches of 2 or more, and for inference call "
                f"model.eval() or use `with gf.utils.evaluate(model):`"))
        if self.track_running_stats and not is_grad_enabled():
            self._warn_once("no_grad", (
                f"{name}: training mode under no_grad: the batch statistics are used and the "
                f"running statistics are updated with this batch; if this is evaluation, call "
                f"model.eval() first or use `with gf.utils.evaluate(model):`"))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, UserWarning, stacklevel=5)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) inputs (Ioffe and Szegedy, 2015)."""

    expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) inputs."""

    expected_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over (N, C, D, H, W) inputs."""

    expected_dims = (5,)


class _InstanceNorm(_NormBase):
    """Each (sample, channel) normalised on its own; an input without the batch dim (one
    dim fewer) is taken as a batch of one, as torch does."""

    spatial_dims = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def forward(self, input: Tensor) -> Tensor:
        name, unbatched = type(self).__name__, self.spatial_dims + 1
        if input.ndim not in (unbatched, unbatched + 1):
            raise ValueError(f"{name}: expected {unbatched}D or {unbatched + 1}D input, got "
                             f"{input.ndim}D input of shape {tuple(input.shape)}")
        feature_dim = input.ndim - unbatched
        if input.shape[feature_dim] != self.num_features and self.affine:
            raise ValueError(f"{name}: expected input's size at dim={feature_dim} to match "
                             f"num_features ({self.num_features}), but got: "
                             f"{input.shape[feature_dim]} (input shape {tuple(input.shape)})")
        batch = input.unsqueeze(0) if input.ndim == unbatched else input
        use_input_stats = self.training or not self.track_running_stats
        # NOTE: as torch, instance norm counts no batches (num_batches_tracked stays 0)
        momentum = 0.0 if self.momentum is None else self.momentum
        out = F.instance_norm(batch, self.running_mean, self.running_var, self.weight,
                              self.bias, use_input_stats, momentum, self.eps)
        return out.squeeze(0) if input.ndim == unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation over (N, C, L) or (C, L) inputs."""

    spatial_dims = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation over (N, C, H, W) or (C, H, W) inputs (Ulyanov et al., 2016)."""

    spatial_dims = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation over (N, C, D, H, W) or (C, D, H, W) inputs."""

    spatial_dims = 3


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        shape = argcheck.sizes("LayerNorm", "normalized_shape", normalized_shape)
        argcheck.real("LayerNorm", "eps", eps, 0, open_low=True)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        _affine(self, shape, elementwise_affine, bias, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing `normalized_shape` dims, with a
    learned scale (torch.nn.RMSNorm); eps None is the input dtype's machine epsilon."""

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        shape = argcheck.sizes("RMSNorm", "normalized_shape", normalized_shape)
        if eps is not None:
            argcheck.real("RMSNorm", "eps", eps, 0)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(creation.ones(shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.num_groups = argcheck.integer("GroupNorm", "num_groups", num_groups, minimum=1)
        self.num_channels = argcheck.integer("GroupNorm", "num_channels", num_channels,
                                            minimum=1)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        argcheck.real("GroupNorm", "eps", eps, 0, open_low=True)
        self.eps, self.affine = eps, affine
        _affine(self, num_channels, affine, bias, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__()
        self.size = argcheck.integer("LocalResponseNorm", "size", size, minimum=1)
        for name, v in (("alpha", alpha), ("beta", beta), ("k", k)):
            argcheck.real("LocalResponseNorm", name, v)
        self.alpha, self.beta, self.k = alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
