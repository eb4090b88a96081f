"""Attention (torch.nn.functional.scaled_dot_product_attention).

softmax(q k^T * scale + mask) v, composed from matmul (cuBLAS on the GPU), a softmax that is
stable for rows masked out entirely (they give zeros, as torch's), and dropout, so gradients
and second derivatives come from those ops. When the (batch, heads, L, S) score tensor would
exceed the attention memory limit (`set_attention_memory_limit`), the heads run in chunks that
fit it, each recomputed in backward from its inputs (`_Chunk`), so no more than one chunk's
score matrix exists at a time, forward or backward.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ... import argcheck
from ... import random as _random
from ...amp.autocast_mode import autocast_policy
from ...autograd.engine import run_backward
from ...autograd.function import Function
from ...autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from ...autograd.reference import reference_backward
from ...creation import ones, tensor
from ...ops.index import cat, masked_fill, split
from ...ops.layout import repeat_interleave, tril
from ...ops.matmul import matmul
from ...ops.shape import broadcast_shapes
from ...ops.softmax import softmax as softmax_op
from ...tensor import Tensor
from .layers import dropout

__all__ = ["scaled_dot_product_attention"]

_OP = "scaled_dot_product_attention"
# NOTE: None means automatic: a quarter of the GPU's free memory on CUDA, 1 GiB on the CPU.
_memory: dict[str, int | None] = {"bytes": None}
_gpu_limits: dict[int, int] = {}  # the automatic limit of each GPU, fixed when first asked


def set_attention_memory_limit(nbytes: int | None) -> None:
    """The most bytes one chunk of attention scores may take (None: automatic). Attention
    whose (batch, heads, L, S) scores exceed it runs head by head, in chunks that fit."""
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int)
                               or nbytes < 1):
        raise ValueError(f"set_attention_memory_limit: nbytes must be a positive int or None, "
                         f"got {nbytes!r}")
    _memory["bytes"] = nbytes


def get_attention_memory_limit(device: Any = None) -> int:
    """The attention score budget in bytes for tensors on `device` (see
    `set_attention_memory_limit`): the limit set, or else a quarter of the GPU's free memory
    when first asked (then kept, so no later call queries the device, as inside a captured
    graph), or 1 GiB on the CPU."""
    limit = _memory["bytes"]
    if limit is not None:
        return limit
    if device is None or getattr(device, "type", device) != "cuda":
        return 2 ** 30
    index = getattr(device, "index", None) or 0
    if index not in _gpu_limits:
        import cupy
        info = getattr(cupy.cuda.runtime, "memGetInfo", None)
        with cupy.cuda.Device(index):
            _gpu_limits[index] = max(1, info()[0] // 4) if info is not None else 2 ** 30
    return _gpu_limits[index]


def _check(query: Any, key: Any, value: Any, attn_mask: Any, dropout_p: Any,
           enable_gqa: bool) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{_OP}: {name} must be a Tensor, got {type(t).__name__}")
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise RuntimeError(f"{_OP}: expected query, key, and value to all be at least 2 "
                           f"dimensional, but got query.dim: {query.ndim} key.dim: {key.ndim} "
                           f"and value.dim: {value.ndim}")
    if not query.dtype == key.dtype == value.dtype:
        raise RuntimeError(f"{_OP}: expected query, key, and value to have the same dtype, but "
                           f"got query.dtype: {query.dtype} key.dtype: {key.dtype} and "
                           f"value.dtype: {value.dtype}")
    if not query.is_floating_point():
        raise RuntimeError(f"{_OP}: expected a floating-point query, key and value, got "
                           f"{query.dtype}")
    if key.shape[-1] != query.shape[-1]:
        raise RuntimeError(f"{_OP}: query has embedding size {query.shape[-1]} but key has "
                           f"{key.shape[-1]} (query shape {tuple(query.shape)}, key shape "
                           f"{tuple(key.shape)})")
    if value.shape[-2] != key.shape[-2]:
        raise RuntimeError(f"{_OP}: key has {key.shape[-2]} positions but value has "
                           f"{value.shape[-2]} (key shape {tuple(key.shape)}, value shape "
                           f"{tuple(value.shape)})")
    if enable_gqa and query.ndim >= 3:
        hq = query.shape[-3]
        for name, t in (("key", key), ("value", value)):
            h = t.shape[-3] if t.ndim >= 3 else 1
            if hq % h:
                raise RuntimeError(f"{_OP}: number of heads in {name} ({h}) must divide the "
                                   f"number of heads in query ({hq}) when enable_gqa=True")
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise TypeError(f"{_OP}: attn_mask must be a Tensor or None, got "
                            f"{type(attn_mask).__name__}")
        ok = (attn_mask.dtype.kind == "b" or attn_mask.dtype == query.dtype
              or str(attn_mask.dtype) == "float32")
        if not ok:
            raise RuntimeError(f"{_OP}: expected attn_mask dtype to be bool or float or to "
                               f"match query dtype, but got attn_mask.dtype: {attn_mask.dtype} "
                               f"and query.dtype: {query.dtype}")
    argcheck.real(_OP, "dropout_p", dropout_p)
    if not 0.0 <= dropout_p <= 1.0:
        raise RuntimeError(f"{_OP}: dropout probability has to be between 0 and 1, but got "
                           f"{dropout_p}")


def _repeat_heads(t: Tensor, heads: int) -> Tensor:
    """Key or value heads repeated to the query's (grouped-query attention)."""
    if t.ndim < 3 or t.shape[-3] == heads:
        return t
    return repeat_interleave(t, heads // t.shape[-3], dim=-3)


def _attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: Tensor | None,
            scale: float, dropout_p: float) -> Tensor:
    """The attention of q (..., L, E) over k (..., S, E), v (..., S, Ev): one chunk's, or all.

    `mask` is boolean (True attends) or additive; `causal` a boolean (L, S) mask or None."""
    scores = matmul(q, k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = masked_fill(scores, ~mask, -math.inf) if mask.dtype.kind == "b" \
            else scores + mask
    if causal is not None:
        scores = masked_fill(scores, ~causal, -math.inf)
    # NOTE: a row masked out entirely gives zeros (torch's safe softmax), not NaN
    weights = softmax_op(scores, scores.ndim - 1, safe=True)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return matmul(weights, v)


@autocast_policy("scaled_dot_product_attention")
def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(query key^T * scale + attn_mask) value over the last two dimensions (torch's).

    `attn_mask` broadcasts to (..., L, S): boolean (True = attend) or added to the scores;
    `is_causal` masks out key positions after the query's (top-left aligned, so with
    L != S row i sees keys 0..i), together with `attn_mask` where both are given;
    `scale` defaults to 1/sqrt(E); `dropout_p` drops attention weights (always, as torch's
    does: pass 0.0 outside training); `enable_gqa` repeats key and value heads to the query's.
    """
    _check(query, key, value, attn_mask, dropout_p, enable_gqa)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if enable_gqa and query.ndim >= 3:
        key = _repeat_heads(key, query.shape[-3])
        value = _repeat_heads(value, query.shape[-3])
    L, S = query.shape[-2], key.shape[-2]
    batch = broadcast_shapes(_OP, tuple(query.shape[:-2]), tuple(key.shape[:-2]),
                             tuple(value.shape[:-2]))
    if attn_mask is not None:
        full = broadcast_shapes(_OP, batch + (L, S), tuple(attn_mask.shape))
        if full != batch + (L, S):
            raise RuntimeError(f"{_OP}: attn_mask of shape {tuple(attn_mask.shape)} does not "
                               f"broadcast to the scores' shape {batch + (L, S)}")
    causal = tril(ones(L, S, dtype=bool, device=query.device)) if is_causal else None
    n = math.prod(batch)
    per_head = L * S * query.element_size()
    heads = max(1, get_attention_memory_limit(query.device) // max(per_head, 1))
    if heads >= n:
        return _attend(query, key, value, attn_mask, causal, scale, float(dropout_p))
    return _chunked(query, key, value, attn_mask, causal, scale, float(dropout_p), batch, heads)


def _flat(t: Tensor, batch: tuple) -> Tensor:
    """t broadcast to `batch` leading dimensions and flattened to (n, rows, cols)."""
    return t.expand(*batch, *t.shape[-2:]).reshape(-1, *t.shape[-2:])


def _chunked(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None,
             causal: Tensor | None, scale: float, dropout_p: float, batch: tuple,
             heads: int) -> Tensor:
    """The attention computed `heads` (batch, head) pairs at a time: each chunk a `_Chunk`
    node that keeps only its inputs and recomputes its scores in backward."""
    n = math.prod(batch)
    sizes = [min(heads, n - a) for a in range(0, n, heads)]
    qs = split(_flat(query, batch), sizes)
    ks = split(_flat(key, batch), sizes)
    vs = split(_flat(value, batch), sizes)
    masks: list = [None] * len(sizes)
    if attn_mask is not None:
        # NOTE: each chunk gathers its heads' rows of the mask as the mask stands (index 0
        # along its broadcast dimensions), so a broadcast mask is never expanded in full.
        mask = attn_mask.reshape(*([1] * (len(batch) + 2 - attn_mask.ndim)), *attn_mask.shape)
        positions = np.unravel_index(np.arange(n), batch)
        index = [np.zeros(n, np.int64) if mask.shape[d] == 1 else positions[d]
                 for d in range(len(batch))]
        start = 0
        for c, size in enumerate(sizes):
            masks[c] = mask[tuple(tensor(ix[start:start + size], device=query.device)
                                  for ix in index)]
            start += size

    def run(q: Tensor, k: Tensor, v: Tensor, m: Tensor | None) -> Tensor:
        return _attend(q, k, v, m, causal, scale, dropout_p)

    outs = [_Chunk.apply(run, q, k, v, m) for q, k, v, m in zip(qs, ks, vs, masks)]
    out = cat(outs, 0)
    return out.reshape(*batch, *out.shape[-2:])


class _Chunk(Function):
    """forward(run, *inputs): `run(*inputs)` without its graph, keeping only the inputs and
    the random state (so dropout draws the same mask again); backward runs it again and
    differentiates that, from the saved inputs themselves when the gradient must be
    differentiable too (create_graph)."""

    @staticmethod
    def forward(ctx, run: Callable, *inputs: Any) -> Tensor:
        ctx.run = run
        tensors = [t for t in inputs if t is not None]
        cuda = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
        ctx.rng = (_random.get_rng_state(), {i: _random.get_cuda_rng_state(i) for i in cuda})
        ctx.save_for_backward(*inputs)
        with no_grad():
            return run(*inputs)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple:
        saved = ctx.saved_tensors
        outer = (_random.get_rng_state(),
                 {i: _random.get_cuda_rng_state(i) for i in ctx.rng[1]})
        _set_rng(ctx.rng)
        try:
            if is_grad_enabled():
                return (None,) + reference_backward(ctx.run, saved, (grad,))
            leaves = [None if t is None else t.detach().requires_grad_(t.requires_grad)
                      for t in saved]
            wanted = [t for t in leaves if t is not None and t.requires_grad]
            with enable_grad():
                out = ctx.run(*leaves)
            found = iter(run_backward([out], [grad], False, False, inputs=wanted,
                                      allow_unused=True, what=_OP))
        finally:
            _set_rng(outer)
        return (None,) + tuple(next(found) if t is not None and t.requires_grad else None
                               for t in leaves)


def _set_rng(states: tuple) -> None:
    cpu, cuda = states
    _random.set_rng_state(cpu)
    for index, state in cuda.items():
        _random.set_cuda_rng_state(state, index)



# --- multi-head attention (torch.nn.functional.multi_head_attention_forward) -----------------

_MHA = "multi_head_attention_forward"


def _canonical_mask(mask: Tensor | None, name: str, dtype: Any) -> Tensor | None:
    """A boolean mask (True = masked out) as an additive float one of `dtype`, -inf where
    masked; a float mask as it is (torch's `_canonical_mask`)."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{_MHA}: {name} must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype.kind == "b":
        from ...creation import zeros_like
        return masked_fill(zeros_like(mask, dtype=dtype), mask, -math.inf)
    if not mask.is_floating_point():
        raise AssertionError(f"{_MHA}: only bool and floating types of {name} are supported, "
                             f"got {mask.dtype}")
    return mask


def _mha_shape_check(query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any,
                     attn_mask: Any, num_heads: int) -> bool:
    """Whether the inputs are batched (3-D query) or not (2-D), checked as torch checks them."""
    if query.ndim not in (2, 3):
        raise AssertionError(f"{_MHA}: query should be unbatched 2D or batched 3D tensor but "
                             f"received {query.ndim}-D query tensor")
    batched = query.ndim == 3
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise AssertionError(f"{_MHA}: for {'batched' if batched else 'unbatched'} "
                             f"({query.ndim}-D) query, expected key and value to be "
                             f"{query.ndim}-D but found {key.ndim}-D and {value.ndim}-D tensors "
                             f"respectively")
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise AssertionError(f"{_MHA}: for {'batched' if batched else 'unbatched'} "
                             f"({query.ndim}-D) query, expected key_padding_mask to be None or "
                             f"{query.ndim - 1}-D but found {key_padding_mask.ndim}-D tensor")
    if attn_mask is not None:
        if attn_mask.ndim not in (2, 3):
            raise AssertionError(f"{_MHA}: expected attn_mask to be None, 2-D or 3-D but found "
                                 f"{attn_mask.ndim}-D tensor")
        if not batched and attn_mask.ndim == 3 and tuple(attn_mask.shape) != (
                num_heads, query.shape[0], key.shape[0]):
            raise AssertionError(f"{_MHA}: expected 3-D attn_mask of shape "
                                 f"{(num_heads, query.shape[0], key.shape[0])} for unbatched "
                                 f"input but got {tuple(attn_mask.shape)}")
    return batched


def multi_head_attention_forward(
        query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
        in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
        bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor,
        out_proj_bias: Tensor | None, training: bool = True,
        key_padding_mask: Tensor | None = None, need_weights: bool = True,
        attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
        q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
        v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
        static_v: Tensor | None = None, average_attn_weights: bool = True,
        is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention on (L, N, E) query and (S, N, E) key/value, or unbatched (L, E)
    (torch.nn.functional.multi_head_attention_forward): returns (output, weights), the weights
    (N, L, S) averaged over heads or (N, heads, L, S), or None when not `need_weights`, in
    which case `scaled_dot_product_attention` computes the attention."""
    from ...creation import zeros
    from ...ops.pad import pad
    from .activation import softmax
    from .layers import linear

    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{_MHA}: {name} must be a Tensor, got {type(t).__name__}")
    batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError(f"{_MHA}: need attn_mask if specifying the is_causal hint; you may "
                           f"use the Transformer's generate_square_subsequent_mask to create it")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # NOTE: as torch: the hint lets the attention build the causal mask
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", query.dtype)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"{_MHA}: was expecting embedding dimension of "
                             f"{embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"{_MHA}: embed_dim {embed_dim} not divisible by num_heads "
                             f"{num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(f"{_MHA}: key's sequence and batch dims {tuple(key.shape[:2])} "
                                 f"do not match value's {tuple(value.shape[:2])}")
        weights = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        if tuple(key.shape) != tuple(value.shape):
            raise AssertionError(f"{_MHA}: key shape {tuple(key.shape)} does not match value "
                                 f"shape {tuple(value.shape)}")
        if in_proj_weight is None:
            raise AssertionError(f"{_MHA}: use_separate_proj_weight is False but "
                                 f"in_proj_weight is None")
        weights = tuple(in_proj_weight.chunk(3))
    biases = (None,) * 3 if in_proj_bias is None else tuple(in_proj_bias.chunk(3))
    projected = []
    for name, t, w, b in zip(("query", "key", "value"), (query, key, value), weights, biases):
        if w is None or w.shape[-1] != t.shape[-1]:
            raise RuntimeError(f"{_MHA}: {name} has {t.shape[-1]} features but its projection "
                               f"weight has shape {None if w is None else tuple(w.shape)}")
        projected.append(linear(t, w, b))
    q, k, v = projected

    if attn_mask is not None:
        want = (tgt_len, src_len) if attn_mask.ndim == 2 else (bsz * num_heads, tgt_len, src_len)
        if tuple(attn_mask.shape) != want:
            raise RuntimeError(f"{_MHA}: the shape of the {attn_mask.ndim}D attn_mask is "
                               f"{tuple(attn_mask.shape)}, but should be {want}.")
        if attn_mask.ndim == 2:
            attn_mask = attn_mask.unsqueeze(0)
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise AssertionError(f"{_MHA}: bias cannot be added to static key or value")
        k = cat([k, bias_k.expand(1, bsz, embed_dim)])
        v = cat([v, bias_v.expand(1, bsz, embed_dim)])
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    elif (bias_k is None) != (bias_v is None):
        raise AssertionError(f"{_MHA}: bias_k and bias_v must both be given or both be None")

    q = q.reshape(tgt_len, bsz * num_heads, head_dim)
    if need_weights:
        # NOTE: scaled before the transpose, as torch scales q (the same values either way),
        # so the product reads a transposed contiguous array
        q = q * math.sqrt(1.0 / head_dim)
    q = q.transpose(0, 1)
    k = (k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_k is None
         else static_k)
    v = (v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_v is None
         else static_v)
    if add_zero_attn:
        k = cat([k, zeros(bsz * num_heads, 1, head_dim, dtype=k.dtype, device=k.device)], 1)
        v = cat([v, zeros(bsz * num_heads, 1, head_dim, dtype=v.dtype, device=v.device)], 1)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise AssertionError(f"{_MHA}: expecting key_padding_mask shape of "
                                 f"{(bsz, src_len)}, but got {tuple(key_padding_mask.shape)}")
        key_padding_mask = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(
            bsz, num_heads, 1, src_len).reshape(bsz * num_heads, 1, src_len)
        attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask
    if not training:
        dropout_p = 0.0

    if need_weights:
        scores = matmul(q, k.transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        attn = softmax(scores, -1)
        if dropout_p > 0.0:
            attn = dropout(attn, dropout_p)
        out = matmul(attn, v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
        attn = attn.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            attn = attn.mean(1)
        if not batched:
            out, attn = out.squeeze(1), attn.squeeze(0)
        return out, attn
    if attn_mask is not None:
        attn_mask = (attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1
                     else attn_mask.reshape(bsz, num_heads, -1, src_len))
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
    return (out if batched else out.squeeze(1)), None


__all__ += ["multi_head_attention_forward"]
