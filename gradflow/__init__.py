"""gradflow: a define-by-run autodiff framework with a PyTorch-like API, on NumPy and CuPy."""
from __future__ import annotations

import warnings as _warnings

from . import host_allocator
from . import dtypes
from .dtypes import (bfloat16, bool, double, float, float16, float32, float64, get_default_dtype,
                     half, int, int8, int16, int32, int64, long, set_default_dtype, short, uint8)
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
from .creation import get_default_device, set_default_device
from .cuda.precision import get_float32_matmul_precision, set_float32_matmul_precision
from .printing import get_printoptions, printoptions, set_printoptions
from . import backends
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
from .ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from .ops.conv3d import conv3d, conv_transpose3d
from .ops.matmul import matmul
from .ops.einsum import einsum
from .ops.products import (addbmm, addmm, addmv, baddbmm, bmm, cross, dot, ger, inner, kron, mm,
                           mv, outer, tensordot, vdot)
from .ops.linalg import (det, inverse, legacy_cholesky as cholesky, legacy_norm as norm,
                         legacy_qr as qr, legacy_slogdet as slogdet, legacy_svd as svd, logdet,
                         pinverse)
from .ops.elementwise import (addcdiv, addcmul, clamp_max, clamp_min, clone, deg2rad,
                              float_power, fmax, fmin, frexp, gcd, heaviside, i0, is_nonzero,
                              lcm, ldexp, nextafter, positive, rad2deg, rsub, signbit, sinc,
                              true_divide)
from .ops.counting import bincount, bucketize, histc, searchsorted
from .ops.combinations import (block_diag, cartesian_prod, combinations, tril_indices,
                               triu_indices)
from .ops.products import trace
from .ops.linalg import dist, matrix_power
from .ops.shape import ravel, select
from .ops.layout import cumulative_trapezoid, diff, narrow_copy, trapezoid, trapz
from .ops.index import index_reduce
from .ops.pool import adaptive_avg_pool1d, avg_pool1d, max_pool1d, max_pool2d
from .ops.pool3d import max_pool3d
from .ops.sampling import pixel_shuffle, pixel_unshuffle
from .ops.typeinfo import can_cast, finfo, iinfo, promote_types, result_type
from . import linalg

from . import accelerator, datasets, models, nn, optim, transforms, utils
from .utils.dlpack import from_dlpack
from . import distributed
from . import onnx  # gf.onnx.export; needs the onnx extra only when called
from .nn.functional import cosine_similarity, log_softmax, pairwise_distance, softmax
from .nn.functional.distance import cdist
from .serialization import load, save
from .summary import summary
from . import amp
from . import cpu
from .amp import (autocast, get_autocast_dtype, is_autocast_enabled, set_autocast_dtype,
                  set_autocast_enabled)

# NOTE: NaN and inf arrive silently, as in PyTorch: NumPy's RuntimeWarnings (invalid value,
# divide by zero, overflow) are ignored where NumPy attributes them to a gradflow frame, the
# caller of the ufunc, so an op pays nothing and the user's own NumPy code still warns.
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"gradflow(\.|$)")
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


# torch's aliases, bound after the out= wrapping so that each is its name's own function
arccos, arccosh, arcsin, arcsinh, arctan, arctanh = acos, acosh, asin, asinh, atan, atanh
arctan2, negative, fix, absolute, multiply, subtract = atan2, neg, trunc, abs, mul, sub
divide, greater, less, greater_equal, less_equal, not_equal = div, gt, lt, ge, le, ne

# torch's in-place functions (torch.relu_, torch.zero_, ...): the Tensor methods gradflow has
for _name in """abs_ acos_ acosh_ addmv_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_
        asin_ asinh_ atan_ atanh_ ceil_ clamp_ clamp_max_ clamp_min_ clip_ cos_ cosh_ deg2rad_
        detach_ erf_ erfc_ exp2_ exp_ expm1_ fill_ fix_ floor_ frac_ gcd_ i0_ index_put_ lcm_
        ldexp_ log10_ log1p_ log2_ log_ logit_ nan_to_num_ neg_ negative_ rad2deg_ reciprocal_
        relu_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ sqrt_ square_ tan_ tanh_ trunc_ xlogy_
        zero_""".split():
    if hasattr(Tensor, _name):
        globals()[_name] = getattr(Tensor, _name)
del _name


def is_floating_point(input: Tensor):
    """Whether the tensor's dtype is a floating-point one (torch.is_floating_point)."""
    return input.is_floating_point()


def is_complex(input: Tensor):
    """Whether the tensor's dtype is complex: never, in gradflow (torch.is_complex)."""
    return input.is_complex()
