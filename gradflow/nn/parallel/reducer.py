"""The gradient reducer behind DistributedDataParallel (torch's C++ Reducer, in Python).

Parameters are packed into buckets, flat buffers of up to `bucket_cap_mb` filled in
registration order and reduced in the reverse order, the order backward tends to produce the
gradients in. Each parameter's post-accumulate-grad hook copies its gradient into its bucket;
when a bucket's last gradient arrives its all-reduce is launched with `async_op=True`, while
backward goes on computing the gradients of earlier layers. Buckets launch in index order,
the same on every rank, as MPI and NCCL need. The hook that readies the last bucket waits for
every all-reduce and writes the averaged gradients back, so backward returns with them.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

from ...autograd.function import AccumulateGrad
from ...tensor import Tensor


@dataclass
class ReductionTrace:
    """When one iteration's reduction ran, in time.perf_counter() seconds: `launched[b]` is
    when bucket b's all-reduce was started, `last_grad_ready` when the last parameter's
    gradient arrived, `finished` when every all-reduce had been waited for and the averaged
    gradients were in `.grad`. `bucket_numels` gives each bucket's size in elements."""

    bucket_numels: list[int]
    launched: list[float] = field(default_factory=list)
    last_grad_ready: float = 0.0
    finished: float = 0.0


class _Bucket:
    """Parameters whose gradients are all-reduced together, in one flat buffer."""

    def __init__(self, indices: list[int], params: Sequence[Tensor]) -> None:
        self.indices = indices
        self.offsets, total = [], 0
        for i in indices:
            self.offsets.append(total)
            total += params[i].numel()
        first = params[indices[0]]
        self.flat = Tensor._wrap(first._xp.zeros(total, first.dtype))
        self.pending = len(indices)
        self.work: Any = None


def assign_buckets(params: Sequence[Tensor], cap_bytes: int) -> list[list[int]]:
    """Parameter indices per bucket, as torch assigns them: in registration order, one open
    bucket per (dtype, device), closed once it holds `cap_bytes` or more; the list reversed,
    so that bucket 0 holds the last parameters (the first gradients of backward)."""
    buckets: list[list[int]] = []
    open_buckets: dict[tuple, list[int]] = {}
    sizes: dict[tuple, int] = {}
    for i, p in enumerate(params):
        key = (p.dtype, p.device)
        open_buckets.setdefault(key, []).append(i)
        sizes[key] = sizes.get(key, 0) + p.numel() * p.dtype.itemsize
        if sizes[key] >= cap_bytes:
            buckets.append(open_buckets.pop(key))
            sizes.pop(key)
    buckets.extend(b for b in open_buckets.values())
    buckets.sort(key=lambda b: b[0])
    return buckets[::-1]


def used_parameters(outputs: Any) -> set[int]:
    """ids of the leaves the autograd graph of `outputs` reaches (tensors in any nesting of
    tuples, lists and dicts): find_unused_parameters' walk, as torch takes it after forward."""
    stack, seen, leaves = [], set(), set()
    todo = [outputs]
    while todo:
        obj = todo.pop()
        if isinstance(obj, Tensor):
            if obj.grad_fn is not None:
                stack.append(obj.grad_fn)
            elif obj.requires_grad:
                leaves.add(id(obj))
        elif isinstance(obj, (tuple, list)):
            todo.extend(obj)
        elif isinstance(obj, dict):
            todo.extend(obj.values())
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, AccumulateGrad):
            leaves.add(id(node.variable))
            continue
        stack.extend(child for child, _ in node.next_edges if child is not None)
    return leaves


class Reducer:
    """Buckets, hooks and the per-iteration state of the gradient all-reduce."""

    def __init__(self, params: Sequence[Tensor], names: Sequence[str], group: Any,
                 bucket_cap_bytes: int, find_unused_parameters: bool,
                 gradient_as_bucket_view: bool) -> None:
        from ... import distributed as dist

        self._dist = dist
        self.params, self.names, self.group = list(params), list(names), group
        self.world_size = dist.get_world_size(group)
        self.find_unused = find_unused_parameters
        self.as_bucket_view = gradient_as_bucket_view
        self.buckets = [_Bucket(b, self.params) for b in assign_buckets(self.params,
                                                                        bucket_cap_bytes)]
        self.bucket_of = {}
        for b, bucket in enumerate(self.buckets):
            for slot, i in enumerate(bucket.indices):
                self.bucket_of[i] = (b, slot)
        self.expect_hooks = False  # armed by prepare_for_backward, cleared by _finalize
        self.started = False       # a hook ran in this iteration
        self.ready: list[bool] = []
        self.n_ready = 0
        self.unused: list[int] = []
        self.next_bucket = 0
        self.trace = ReductionTrace([b.flat.numel() for b in self.buckets])
        self.last_trace: ReductionTrace | None = None
        ref = weakref.ref(self)
        self.handles = [p.register_post_accumulate_grad_hook(_hook(ref, i))
                        for i, p in enumerate(self.params)]

    def remove_hooks(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    # -- per iteration ---------------------------------------------------------------------
    def prepare_for_backward(self, outputs: Any) -> None:
        """Arm the hooks for the backward of `outputs` (called by forward when it syncs,
        after `check_prior_reduction_finished`)."""
        self.expect_hooks, self.started = True, False
        self.ready, self.n_ready = [False] * len(self.params), 0
        for bucket in self.buckets:
            bucket.pending, bucket.work = len(bucket.indices), None
        self.next_bucket = 0
        self.trace = ReductionTrace([b.flat.numel() for b in self.buckets])
        if self.find_unused:
            used = used_parameters(outputs)
            self.unused = [i for i, p in enumerate(self.params) if id(p) not in used]

    def check_prior_reduction_finished(self) -> None:
        """torch's error for a backward that left some parameters without a gradient."""
        if not (self.expect_hooks and self.started):
            return
        missing = [i for i, r in enumerate(self.ready) if not r]
        self.expect_hooks = False
        rank = self._dist.get_rank(self.group)
        raise RuntimeError(
            "DistributedDataParallel: expected to have finished reduction in the prior "
            "iteration before starting a new one. This error indicates that your module has "
            "parameters that were not used in producing loss. You can enable unused parameter "
            "detection by passing the keyword argument `find_unused_parameters=True` to "
            "`gradflow.nn.parallel.DistributedDataParallel`, and by making sure all `forward` "
            "function outputs participate in calculating loss. Parameters which did not "
            f"receive grad for rank {rank}: {', '.join(self.names[i] for i in missing)}. "
            f"Parameter indices which did not receive grad for rank {rank}: "
            f"{' '.join(str(i) for i in missing)}")

    def on_grad_ready(self, index: int) -> None:
        if not self.expect_hooks:
            return
        if not self.started:
            self.started = True
            for i in self.unused:
                self._mark_ready(i)
        self._mark_ready(index)

    def _mark_ready(self, index: int) -> None:
        if self.ready[index]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {self.names[index]} (index {index}) got "
                "its gradient twice in one iteration: a second backward through the same "
                "forward, or a parameter marked unused that took part after all")
        self.ready[index] = True
        b, slot = self.bucket_of[index]
        bucket = self.buckets[b]
        p = self.params[index]
        start, n = bucket.offsets[slot], p.numel()
        piece = bucket.flat.array[start:start + n]
        if p.grad is None:
            piece[...] = 0
        else:
            piece[...] = p.grad.array.reshape(-1)
        bucket.pending -= 1
        self.n_ready += 1
        if self.n_ready == len(self.params):
            self.trace.last_grad_ready = time.perf_counter()
        while (self.next_bucket < len(self.buckets)
               and self.buckets[self.next_bucket].pending == 0):
            self._launch(self.buckets[self.next_bucket])
            self.next_bucket += 1
        if self.next_bucket == len(self.buckets):
            self._finalize()

    def _launch(self, bucket: _Bucket) -> None:
        # NOTE: the average is taken as torch's default comm hook takes it: divided by the
        # world size, then summed.
        bucket.flat.array /= self.world_size
        self.trace.launched.append(time.perf_counter())
        bucket.work = self._dist.all_reduce(bucket.flat, op=self._dist.ReduceOp.SUM,
                                            group=self.group, async_op=True)

    def _finalize(self) -> None:
        globally_used = None
        if self.find_unused:
            unused = set(self.unused)
            flag = Tensor._wrap(self.buckets[0].flat._xp.asarray(
                [0 if i in unused else 1 for i in range(len(self.params))], dtype="int32"))
            work = self._dist.all_reduce(flag, op=self._dist.ReduceOp.SUM, group=self.group,
                                         async_op=True)
        for bucket in self.buckets:
            bucket.work.wait()
            bucket.work = None
        if self.find_unused:
            assert work is not None  # a member of the group gets a Work
            work.wait()
            globally_used = flag.array.tolist()
        for bucket in self.buckets:
            for slot, i in enumerate(bucket.indices):
                p = self.params[i]
                if globally_used is not None and not globally_used[i] and p.grad is None:
                    continue  # unused on every rank: no gradient, as in one process
                start, n = bucket.offsets[slot], p.numel()
                view = bucket.flat.array[start:start + n].reshape(p.shape)
                p.grad = Tensor._wrap(view if self.as_bucket_view else view.copy())
        self.expect_hooks = False
        self.trace.finished = time.perf_counter()
        self.last_trace = self.trace


def _hook(reducer: "weakref.ref[Reducer]", index: int):
    """Parameter `index`'s post-accumulate-grad hook; a no-op once the reducer is gone."""

    def hook(param: Tensor) -> None:
        r = reducer()
        if r is not None:
            r.on_grad_ready(index)

    return hook
