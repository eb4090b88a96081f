"""SyncBatchNorm: batch normalisation by the statistics of the global batch, every process's
samples together (torch.nn.SyncBatchNorm), over gradflow.distributed: MPI for CPU tensors,
NCCL for CUDA ones (torch's runs on GPUs only).

The forward all-reduces each process's per-channel sum, sum of squares and count (float64);
the backward all-reduces the two per-channel gradient sums, as torch's does, so the input's
gradient is that of the global batch. Outside a process group of two or more it is BatchNorm.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd.function import Op
from ...autograd.grad_mode import is_grad_enabled
from ...ops.batchnorm import _by_channel, _channel_dots, _channel_sums, affine_array
from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


def _all_reduce_sum(a: Any, group: Any) -> Any:
    """`a` summed over the group's processes (in place, returned)."""
    from ... import distributed as dist

    dist.all_reduce(Tensor._wrap(a), op=dist.ReduceOp.SUM, group=group)
    return a


def _sync_world_size(group: Any) -> int:
    """The group's size where a process group is initialised, else 1 (no sync)."""
    from ... import distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


class SyncBatchNormTrain(Op):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with the per-channel statistics of
    the batch across the group's processes; updates the running averages in place when they
    are given. Its backward all-reduces sum(gy) and sum(gy * (x - mean)) per channel; the
    weight and bias gradients stay this process's own (DistributedDataParallel averages them).
    """

    op_name = "sync_batch_norm"

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, *,
                running_mean: Tensor | None, running_var: Tensor | None, momentum: float,
                eps: float, group: Any):
        xp = x._xp
        x3 = _by_channel(x.array, np.promote_types(x.dtype, np.float32))
        count = x3.shape[0] * x3.shape[2]
        local_sum = _channel_sums(x3)
        local_mean = local_sum / max(count, 1)
        centred = xp.subtract(x3, local_mean[:, None])
        # NOTE: each process sends its squares about its own mean plus count * mean^2, in
        # float64, rather than a float32 sum of squares whose digits would cancel away.
        local_mean64 = local_mean.astype(np.float64)
        stats = xp.concatenate([
            local_sum.astype(np.float64),
            _channel_dots(centred, centred).astype(np.float64) + count * local_mean64 ** 2,
            xp.full(1, count, np.float64)])
        c = x3.shape[1]
        stats = _all_reduce_sum(stats, group)
        total = float(stats[2 * c])
        if total <= 1:
            raise ValueError(f"expected more than 1 value per channel when training, got "
                             f"{int(total)} across the process group (input size "
                             f"{tuple(x.shape)} on this process)")
        mean64 = stats[:c] / total
        var64 = xp.maximum(stats[c:2 * c] / total - mean64 ** 2, 0)
        for t, value in ((running_mean, mean64), (running_var, var64 * (total / (total - 1)))):
            if t is not None:
                t.array *= 1 - momentum
                t.array += (momentum * value).astype(t.dtype)
                t._version_box[0] += 1
        mean = mean64.astype(x3.dtype)
        invstd = (1 / xp.sqrt(var64 + eps)).astype(x3.dtype)
        scale = invstd if weight is None else invstd * weight.array
        shift = -mean * scale if bias is None else bias.array - mean * scale
        ctx.save_for_backward(x, weight, bias)
        ctx.mean, ctx.invstd, ctx.total, ctx.group = mean, invstd, total, group
        return affine_array(x.array, scale.astype(x.dtype), shift.astype(x.dtype))

    @staticmethod
    def backward(ctx, gy: Tensor):
        if is_grad_enabled():
            raise RuntimeError("sync_batch_norm: double backward (create_graph=True) is not "
                               "supported, as in torch")
        x, weight, bias = ctx.saved_tensors
        xp, mean, invstd = x._xp, ctx.mean, ctx.invstd
        gy3, x3 = _by_channel(gy.array, mean.dtype), _by_channel(x.array, mean.dtype)
        centred = xp.subtract(x3, mean[:, None])
        sum_gy, sum_gy_xmu = _channel_sums(gy3), _channel_dots(gy3, centred)
        c = mean.shape[0]
        sums = _all_reduce_sum(xp.concatenate([sum_gy, sum_gy_xmu]), ctx.group) / ctx.total
        # NOTE: gx = k (gy - mean(gy) - xhat mean(gy xhat)) with xhat = centred * invstd and
        # k = invstd * weight, the means taken over the global batch.
        gx = centred
        gx *= (invstd * invstd * sums[c:])[:, None]
        gx += sums[:c, None]
        xp.subtract(gy3, gx, out=gx)
        gx *= (invstd if weight is None else invstd * weight.array)[:, None]
        gw = None if weight is None else Tensor._wrap((sum_gy_xmu * invstd).astype(x.dtype))
        gb = None if bias is None else Tensor._wrap(sum_gy.astype(x.dtype))
        return Tensor._wrap(gx.astype(x.dtype, copy=False).reshape(x.shape)), gw, gb


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over (N, C, ...) inputs with statistics taken over every process
    of `process_group` (the default group if None) while training (torch.nn.SyncBatchNorm).
    In eval mode, or outside a group of two or more processes, it is BatchNorm."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 process_group: Any = None, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input, got {input.ndim}D "
                             f"input of shape {tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected {self.num_features} channels, got input "
                             f"of shape {tuple(input.shape)}")
        use_batch = self.training or not self.track_running_stats
        momentum = self._momentum()
        if not self.training or _sync_world_size(self.process_group) < 2:
            if self.training:
                self._warn_training_slips(input)
            return F.batch_norm(input, self.running_mean, self.running_var, self.weight,
                                self.bias, use_batch, momentum, self.eps)
        running = self.track_running_stats
        return SyncBatchNormTrain.apply(
            input, self.weight, self.bias, running_mean=self.running_mean if running else None,
            running_var=self.running_var if running else None, momentum=momentum,
            eps=self.eps, group=self.process_group)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """`module` with every BatchNorm*D layer replaced by a SyncBatchNorm that shares its
        parameters and buffers (torch's convert_sync_batchnorm); a BatchNorm itself is
        returned converted, other modules in place."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group)
            if module.affine:
                out.weight, out.bias = module.weight, module.bias
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(out, name, getattr(module, name))
            out.training = module.training
            if hasattr(module, "qconfig"):
                out.qconfig = module.qconfig
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
