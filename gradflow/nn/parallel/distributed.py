"""DistributedDataParallel: one replica of the model per process, gradients averaged across
them during backward (torch.nn.parallel.DistributedDataParallel), over gradflow.distributed.

Construction broadcasts rank 0's parameters and buffers; each forward, with
`broadcast_buffers`, broadcasts rank 0's buffers again (BatchNorm's running statistics stay
rank 0's) and arms the reducer (reducer.py), whose bucketed all-reduces start during backward
and end before it returns. The wrapped module is `.module`, so state_dict keys carry torch's
`module.` prefix.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from ...autograd.grad_mode import is_grad_enabled, no_grad
from ...tensor import Tensor
from ..module import Module
from .reducer import Reducer, ReductionTrace

__all__ = ["DistributedDataParallel"]

_MB = 1024 * 1024


def _broadcast_coalesced(tensors: Sequence[Tensor], src: int, group: Any) -> None:
    """Overwrite `tensors` with rank `src`'s values: one broadcast per (dtype, device)."""
    from ... import distributed as dist

    by_kind: dict = {}
    for t in tensors:
        by_kind.setdefault((t.dtype, t.device), []).append(t)
    for same in by_kind.values():
        xp = same[0]._xp
        flat = Tensor._wrap(xp.concatenate([t.array.reshape(-1) for t in same]))
        dist.broadcast(flat, src=src, group=group)
        start = 0
        with no_grad():
            for t in same:
                n = t.numel()
                t.copy_(Tensor._wrap(flat.array[start:start + n].reshape(t.shape)))
                start += n


def _verify_same_model(params: Sequence[Tensor], group: Any) -> None:
    """Every rank must wrap the same parameters (torch's _verify_param_shape_across_processes):
    the count of parameters and of their elements must agree, or every rank raises."""
    from ... import creation, dtypes
    from ... import distributed as dist

    mine = [len(params), sum(p.numel() for p in params)]
    device = params[0].device if params else None
    low = creation.tensor(mine, dtype=dtypes.int64, device=device)
    high = creation.tensor(mine, dtype=dtypes.int64, device=device)
    dist.all_reduce(low, op=dist.ReduceOp.MIN, group=group)
    dist.all_reduce(high, op=dist.ReduceOp.MAX, group=group)
    if low.tolist() != high.tolist():
        raise RuntimeError(
            f"DistributedDataParallel: the processes wrap different models: this rank "
            f"(rank {dist.get_rank(group)}) has {mine[0]} parameters with {mine[1]} elements; "
            f"across the group the counts range over {low.tolist()[0]}..{high.tolist()[0]} "
            f"parameters and {low.tolist()[1]}..{high.tolist()[1]} elements")


class DistributedDataParallel(Module):
    """Data parallelism across processes (torch.nn.parallel.DistributedDataParallel).

    Run one process per device (`mpiexec -n N python train.py`), call
    `gradflow.distributed.init_process_group` first, and wrap the model; `loss.backward()`
    then leaves every rank with the gradients averaged over the group. `no_sync()` skips the
    all-reduce for gradient accumulation. With `find_unused_parameters`, parameters the
    forward's outputs do not reach count as ready (their gradient is zero on this rank);
    without it, such parameters make the next forward raise, naming them. Buckets hold
    up to `bucket_cap_mb` (25 by default) each; `gradient_as_bucket_view` leaves `.grad` as
    views into them. `output_device` and `dim` are kept for torch's signature only (one
    device per process); inputs are not moved to `device_ids[0]`.
    """

    def __init__(self, module: Module, device_ids: Sequence[Any] | None = None,
                 output_device: Any = None, dim: int = 0, broadcast_buffers: bool = True,
                 init_sync: bool = True, process_group: Any = None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 gradient_as_bucket_view: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a gradflow.nn.Module, "
                            f"got {type(module).__name__}")
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't "
                               "have any parameter that requires a gradient.")
        devices = {p.device for _, p in params}
        if len(devices) > 1:
            raise ValueError(f"DistributedDataParallel: the module's parameters are on "
                             f"{sorted(str(d) for d in devices)}; it needs one device per "
                             "process")
        device = next(iter(devices))
        if device_ids is not None:
            if device.type == "cpu":
                raise ValueError(f"DistributedDataParallel: device_ids should be None for a "
                                 f"module on the CPU, got device_ids={list(device_ids)}")
            if len(device_ids) != 1:
                raise ValueError(f"DistributedDataParallel: device_ids can only be None or "
                                 f"contain a single element (one device per process), got "
                                 f"{list(device_ids)}")
        if bucket_cap_mb is None:
            bucket_cap_mb = 25
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got "
                             f"{bucket_cap_mb}")
        self.module = module
        self.device_ids, self.output_device, self.dim = device_ids, output_device, dim
        self.broadcast_buffers = broadcast_buffers
        self.process_group = process_group
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.bucket_bytes_cap = int(bucket_cap_mb * _MB)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        if init_sync:
            _verify_same_model([p for _, p in params], process_group)
            _broadcast_coalesced([p for _, p in module.named_parameters()]
                                 + self._buffers_to_sync(), 0, process_group)
        self.reducer = Reducer([p for _, p in params], [n for n, _ in params], process_group,
                               self.bucket_bytes_cap, find_unused_parameters,
                               gradient_as_bucket_view)

    def _buffers_to_sync(self) -> list[Tensor]:
        return [b for b in self.module.buffers() if b is not None]

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        sync = is_grad_enabled() and self.require_backward_grad_sync
        if sync:
            self.reducer.check_prior_reduction_finished()
        if self.broadcast_buffers and self.require_forward_param_sync:
            buffers = self._buffers_to_sync()
            if buffers:
                _broadcast_coalesced(buffers, 0, self.process_group)
        out = self.module(*inputs, **kwargs)
        if sync:
            self.reducer.prepare_for_backward(out)
        return out

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Forwards and backwards inside skip the all-reduce: gradients accumulate on each
        rank, and the first synced backward after it averages the sum (torch's no_sync)."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    @property
    def reduction_trace(self) -> ReductionTrace | None:
        """When the last finished iteration's bucket all-reduces started and ended
        (gradflow's; torch records the same in its DDP logger)."""
        return self.reducer.last_trace

    @property
    def bucket_parameter_names(self) -> list[list[str]]:
        """The parameters of each bucket, bucket 0 first (reduced first)."""
        return [[self.reducer.names[i] for i in b.indices] for b in self.reducer.buckets]
