"""gradflow: a define-by-run autodiff framework with a PyTorch-like API, on NumPy and CuPy."""
from __future__ import annotations

from . import host_allocator
from . import dtypes
from .dtypes import (bool, double, float, float16, float32, float64, get_default_dtype, half,
                     int, int8, int16, int32, int64, long, set_default_dtype, short, uint8)
from .backend import device
from . import autograd  # noqa: I001  (loads the Tensor class and the ops, in that order)
from .tensor import Size, Tensor
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
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
                              div, eq, equal, erf, erfc, exp, exp2, expm1, floor, floor_divide,
                              fmod, frac, ge, gt, hypot, isclose, isfinite, isinf, isnan, isneginf,
                              isposinf, le, lerp, log, log10, log1p, log2, logaddexp, logaddexp2,
                              logical_and, logical_not, logical_or, logical_xor, logit, lt, maximum,
                              minimum, mul, nan_to_num, ne, neg, pow, reciprocal, relu, remainder,
                              round, rsqrt, sgn, sigmoid, sign, sin, sinh, sqrt, square, sub, tan,
                              tanh, trunc, where, xlogy)
from .ops.reduce import (all, amax, amin, aminmax, any, argmax, argmin, count_nonzero, logsumexp,
                         max, mean, min, nanmean, nansum, prod, std, std_mean, sum, var, var_mean)
from .ops.scan import cummax, cummin, cumprod, cumsum, logcumsumexp
from .ops.shape import (contiguous, expand, flatten, permute, reshape, squeeze, t, transpose,
                        unsqueeze)
from .ops.index import cat, chunk, split, stack
from .ops.conv import get_conv_workspace_limit, set_conv_workspace_limit
from .ops.matmul import matmul

from . import datasets, models, nn, optim, transforms, utils
from .serialization import load, save
from .summary import summary

host_allocator.tune()
__version__ = "0.1.0"
clip = clamp
concat = cat


def is_tensor(obj: object):
    """True for gradflow tensors (torch.is_tensor)."""
    return isinstance(obj, Tensor)


def numel(x: Tensor):
    return x.numel()
