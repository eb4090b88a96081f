"""gradflow: a define-by-run autodiff framework with a PyTorch-like API, on NumPy and CuPy."""
from __future__ import annotations

from . import host_allocator
from . import dtypes
from .dtypes import (bool, double, float, float16, float32, float64, get_default_dtype, half,
                     int, int8, int16, int32, int64, long, set_default_dtype, short, uint8)
from .backend import device
from . import autograd  # noqa: I001  (loads the Tensor class and the ops, in that order)
from .tensor import Size, Tensor
from .autograd.grad_mode import (enable_grad, inference_mode, is_grad_enabled,
                                 is_inference_mode_enabled, no_grad, set_grad_enabled)
from . import cuda
from .cuda.graphs import compile_step
from .random import Generator, get_rng_state, initial_seed, manual_seed, set_rng_state
from .determinism import are_deterministic_algorithms_enabled, use_deterministic_algorithms
from .threads import get_num_threads, set_num_threads
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, normal, ones, ones_like, rand, rand_like, randint,
                       randint_like, randn, randn_like, randperm, tensor, zeros, zeros_like)
from .ops.elementwise import (abs, acos, acosh, add, allclose, asin, asinh, atan, atan2, atanh,
                              bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or,
                              bitwise_right_shift, bitwise_xor, ceil, clamp, copysign, cos, cosh,
                              div, eq, equal, erf, erfc, erfinv, exp, exp2, expm1, floor,
                              floor_divide, fmod, frac, ge, gt, hypot, isclose, isfinite, isinf,
                              isnan, isneginf, isposinf, le, lerp, log, log10, log1p, log2,
                              logaddexp, logaddexp2, logical_and, logical_not, logical_or,
                              logical_xor, logit, lt, maximum, minimum, mul, nan_to_num, ne, neg,
                              pow, reciprocal, relu, remainder, round, rsqrt, sgn, sigmoid, sign,
                              sin, sinh, sqrt, square, sub, tan, tanh, trunc, where, xlogy)
from .ops.reduce import (all, amax, amin, aminmax, any, argmax, argmin, count_nonzero, logsumexp,
                         max, mean, min, nanmean, nansum, prod, std, std_mean, sum, var, var_mean)
from .ops.scan import cummax, cummin, cumprod, cumsum, logcumsumexp
from .ops.sort import (argsort, kthvalue, median, mode, msort, nanmedian, sort, topk, unique,
                       unique_consecutive)
from .ops.shape import (broadcast_tensors, broadcast_to, contiguous, diagonal, expand, flatten,
                        meshgrid, moveaxis, movedim, narrow, permute, reshape, squeeze, swapaxes,
                        swapdims, t, transpose, unbind, unflatten, unsqueeze)
from .ops.layout import (diag, diag_embed, flip, fliplr, flipud, repeat_interleave, roll, rot90,
                         tile, tril, triu)
from .ops.split_stack import (atleast_1d, atleast_2d, atleast_3d, column_stack, dsplit, dstack,
                              hsplit, hstack, tensor_split, vsplit, vstack)
from .ops.split_stack import vstack as row_stack
from .ops.index import (argwhere, cat, chunk, gather, index_add, index_copy, index_fill,
                        index_put, index_select, masked_fill, masked_scatter, masked_select,
                        nonzero, scatter, scatter_add, scatter_reduce, split, stack, take,
                        take_along_dim)
from .ops.conv import get_conv_workspace_limit, set_conv_workspace_limit
from .ops.matmul import matmul
from .ops.einsum import einsum
from .ops.products import (addbmm, addmm, addmv, baddbmm, bmm, cross, dot, ger, inner, kron, mm,
                           mv, outer, tensordot, vdot)
from .ops.linalg import (det, inverse, legacy_cholesky as cholesky, legacy_norm as norm,
                         legacy_qr as qr, legacy_slogdet as slogdet, legacy_svd as svd, logdet,
                         pinverse)
from . import linalg

from . import accelerator, datasets, models, nn, optim, transforms, utils
from .serialization import load, save
from .summary import summary

host_allocator.tune()
__version__ = "0.1.0"
# torch's out= on the public functions; Tensor methods and operators call the ops unwrapped
from .ops.out import wrap_public as _wrap_out  # noqa: E402
_wrap_out(globals())
clip = clamp
concat = cat


def is_tensor(obj: object):
    """True for gradflow tensors (torch.is_tensor)."""
    return isinstance(obj, Tensor)


def numel(x: Tensor):
    return x.numel()


def bernoulli(input: Tensor, *, generator: Generator | None = None) -> Tensor:
    """1 with probability `input` (elementwise), else 0 (torch.bernoulli)."""
    return input.bernoulli(generator=generator)
