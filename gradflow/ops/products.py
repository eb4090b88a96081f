"""PyTorch's named products: mm, bmm, mv, dot, vdot, outer (ger), inner, addmm, addbmm,
baddbmm, addmv, kron, tensordot and cross (torch.cross and torch.linalg.cross).

Each checks its operands' ranks and sizes as torch does, then composes `ops.matmul.matmul`
(one GEMM: cuBLAS on the GPU) with reshapes and elementwise ops, so gradients of every order
come from those ops' own backward rules.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..amp.autocast_mode import autocast_policy
from ..tensor import Tensor
from .index import cat, split
from .matmul import matmul
from .shape import expand, permute, reshape
from .util import normalize_dim


def _tensors(op: str, **named: Any) -> None:
    for name, v in named.items():
        if not isinstance(v, Tensor):
            raise TypeError(f"{op}: argument '{name}' must be a Tensor, not {type(v).__name__}")


def _same_dtype(op: str, a: Tensor, b: Tensor, what: str = "both operands") -> None:
    if a.dtype != b.dtype:
        raise RuntimeError(f"{op}: expected {what} to have the same dtype, but got {a.dtype} "
                           f"and {b.dtype}")


def _dims(shape: tuple) -> str:
    return "x".join(str(s) for s in shape)


@autocast_policy("mm")
def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """The product of two matrices (torch.mm): (n, m) @ (m, p)."""
    _tensors("mm", input=input, mat2=mat2)
    if input.ndim != 2:
        raise RuntimeError(f"mm: self must be a matrix, got {input.ndim}-D tensor")
    if mat2.ndim != 2:
        raise RuntimeError(f"mm: mat2 must be a matrix, got {mat2.ndim}-D tensor")
    _same_dtype("mm", input, mat2, "mat1 and mat2")
    if input.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mm: mat1 and mat2 shapes cannot be multiplied "
                           f"({_dims(input.shape)} and {_dims(mat2.shape)})")
    return matmul(input, mat2)


@autocast_policy("bmm")
def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product (torch.bmm): (b, n, m) @ (b, m, p), no broadcasting."""
    _tensors("bmm", input=input, mat2=mat2)
    if input.ndim != 3:
        raise RuntimeError(f"bmm: batch1 must be a 3D tensor, got {input.ndim}-D")
    if mat2.ndim != 3:
        raise RuntimeError(f"bmm: batch2 must be a 3D tensor, got {mat2.ndim}-D")
    _same_dtype("bmm", input, mat2, "batch1 and batch2")
    want = [input.shape[0], input.shape[2]]
    if list(mat2.shape[:2]) != want:
        raise RuntimeError(f"bmm: Expected size for first two dimensions of batch2 tensor to "
                           f"be: {want} but got: {list(mat2.shape[:2])}.")
    return matmul(input, mat2)


@autocast_policy("mv")
def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product (torch.mv): (n, m) @ (m,)."""
    _tensors("mv", input=input, vec=vec)
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: vector + matrix @ vector expected, got 1, {input.ndim}, "
                           f"{vec.ndim}")
    _same_dtype("mv", input, vec, "mat and vec")
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"mv: size mismatch, got mat ({_dims(input.shape)}), vec "
                           f"({vec.shape[0]})")
    return matmul(input, vec)


def _vectors(op: str, input: Tensor, other: Tensor) -> None:
    _tensors(op, input=input, other=other)
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"{op}: 1D tensors expected, but got {input.ndim}D and {other.ndim}D "
                           "tensors")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"{op}: inconsistent tensor size, expected tensor [{input.shape[0]}] "
                           f"and src [{other.shape[0]}] to have the same number of elements, "
                           f"but got {input.shape[0]} and {other.shape[0]} elements respectively")
    _same_dtype(op, input, other, "both vectors")


@autocast_policy("dot")
def dot(input: Tensor, other: Tensor) -> Tensor:
    """The inner product of two 1-D tensors of one size and dtype (torch.dot)."""
    _vectors("dot", input, other)
    return matmul(input, other)


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """conj(input) . other (torch.vdot); gradflow's tensors are real, so this is dot."""
    _vectors("vdot", input, other)
    return matmul(input, other)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """The outer product of two 1-D tensors (torch.outer, alias ger)."""
    _tensors("outer", input=input, vec2=vec2)
    for name, v in (("self", input), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {v.ndim}-D")
    return reshape(input, (-1, 1)) * vec2


ger = outer


def inner(input: Tensor, other: Tensor) -> Tensor:
    """The sum over the last dims of both (torch.inner); with a 0-d operand, the product."""
    _tensors("inner", input=input, other=other)
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    _same_dtype("inner", input, other)
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner: inner() the last dimension must match on both input "
                           f"tensors but got shapes {list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, dims=([-1], [-1]))


def _scaled_sum(op: str, input: Tensor, product: Tensor, beta: Any, alpha: Any) -> Tensor:
    """beta * input + alpha * product, with `input` broadcast to the product's shape; beta 0
    ignores input (its NaNs and infs do not reach the result), as torch does."""
    _tensors(op, input=input)
    shape = tuple(product.shape)
    try:
        fits = np.broadcast_shapes(tuple(input.shape), shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} cannot be broadcast to "
                           f"the product's shape {shape}")
    _same_dtype(op, input, product, "input and the product")
    out = product if alpha == 1 else product * alpha
    if beta == 0:
        return out
    return out + (input if beta == 1 else input * beta)


def _matrix(op: str, name: str, x: Tensor, ndim: int = 2) -> None:
    _tensors(op, **{name: x})
    if x.ndim != ndim:
        what = "a matrix" if ndim == 2 else "a vector" if ndim == 1 else f"a {ndim}D tensor"
        raise RuntimeError(f"{op}: {name} must be {what}, got {x.ndim}-D tensor")


@autocast_policy("addmm")
def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: Any = 1,
          alpha: Any = 1) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2) (torch.addmm)."""
    _matrix("addmm", "mat1", mat1)
    _matrix("addmm", "mat2", mat2)
    _same_dtype("addmm", mat1, mat2, "mat1 and mat2")
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"addmm: mat1 and mat2 shapes cannot be multiplied "
                           f"({_dims(mat1.shape)} and {_dims(mat2.shape)})")
    return _scaled_sum("addmm", input, matmul(mat1, mat2), beta, alpha)


def _batches(op: str, batch1: Tensor, batch2: Tensor) -> None:
    _matrix(op, "batch1", batch1, 3)
    _matrix(op, "batch2", batch2, 3)
    _same_dtype(op, batch1, batch2, "batch1 and batch2")
    want = [batch1.shape[0], batch1.shape[2]]
    if list(batch2.shape[:2]) != want:
        raise RuntimeError(f"{op}: Expected size for first two dimensions of batch2 tensor to "
                           f"be: {want} but got: {list(batch2.shape[:2])}.")


@autocast_policy("baddbmm")
def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1,
            alpha: Any = 1) -> Tensor:
    """beta * input + alpha * bmm(batch1, batch2) (torch.baddbmm)."""
    _batches("baddbmm", batch1, batch2)
    return _scaled_sum("baddbmm", input, matmul(batch1, batch2), beta, alpha)


@autocast_policy("addbmm")
def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1,
           alpha: Any = 1) -> Tensor:
    """beta * input + alpha * sum_b batch1[b] @ batch2[b] (torch.addbmm), as one GEMM."""
    _batches("addbmm", batch1, batch2)
    b, n, m = batch1.shape
    # NOTE: sum_b A_b B_b is [A_0 ... A_{b-1}] (n, b*m) times [B_0; ...; B_{b-1}] (b*m, p).
    rows = reshape(permute(batch1, 1, 0, 2), (n, b * m))
    product = matmul(rows, reshape(batch2, (b * m, batch2.shape[2])))
    return _scaled_sum("addbmm", input, product, beta, alpha)


@autocast_policy("addmv")
def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta * input + alpha * (mat @ vec) (torch.addmv)."""
    _matrix("addmv", "mat", mat)
    _matrix("addmv", "vec", vec, 1)
    _same_dtype("addmv", mat, vec, "mat and vec")
    if mat.shape[1] != vec.shape[0]:
        raise RuntimeError(f"addmv: size mismatch, got mat ({_dims(mat.shape)}), vec "
                           f"({vec.shape[0]})")
    return _scaled_sum("addmv", input, matmul(mat, vec), beta, alpha)


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product (torch.kron): block (i, j, ...) is input[i, j, ...] * other."""
    _tensors("kron", input=input, other=other)
    n = max(input.ndim, other.ndim)
    a_shape = (1,) * (n - input.ndim) + tuple(input.shape)
    b_shape = (1,) * (n - other.ndim) + tuple(other.shape)
    # NOTE: interleave the dims, (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...), then merge pairs.
    a = reshape(input, tuple(s for d in a_shape for s in (d, 1)))
    b = reshape(other, tuple(s for d in b_shape for s in (1, d)))
    return reshape(a * b, tuple(x * y for x, y in zip(a_shape, b_shape)))


def _tensordot_dims(a: Tensor, b: Tensor, dims: Any) -> tuple:
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)):
        if dims < 0:
            raise RuntimeError(f"tensordot: tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot: dims {dims} exceeds the dimensions of the operands "
                               f"(shapes {tuple(a.shape)} and {tuple(b.shape)})")
        return list(range(a.ndim - dims, a.ndim)), list(range(dims))
    if not isinstance(dims, (list, tuple)) or len(dims) != 2:
        raise RuntimeError(f"tensordot: dims must be an int or a pair of dimension lists, got "
                           f"{dims!r}")
    da, db = ([d] if isinstance(d, (int, np.integer)) else list(d) for d in dims)
    if len(da) != len(db):
        raise RuntimeError("tensordot: both dimension lists should have same length")
    return ([normalize_dim("tensordot", d, a.ndim) for d in da],
            [normalize_dim("tensordot", d, b.ndim) for d in db])


@autocast_policy("tensordot")
def tensordot(a: Tensor, b: Tensor, dims: Any = 2) -> Tensor:
    """Contract dims of `a` with dims of `b` (torch.tensordot): an int n pairs a's last n with
    b's first n; a pair of lists pairs them one by one."""
    _tensors("tensordot", a=a, b=b)
    da, db = _tensordot_dims(a, b, dims)
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"tensordot: contracted dimensions need to match, but first has "
                               f"size {a.shape[x]} in dim {x} and second has size {b.shape[y]} "
                               f"in dim {y}")
    _same_dtype("tensordot", a, b)
    free_a = [d for d in range(a.ndim) if d not in da]
    free_b = [d for d in range(b.ndim) if d not in db]
    k = int(np.prod([a.shape[d] for d in da]))
    left = reshape(permute(a, *(free_a + da)), (-1, k))
    right = reshape(permute(b, *(db + free_b)), (k, -1))
    return reshape(matmul(left, right),
                   tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b))


def _cross(op: str, input: Tensor, other: Tensor, dim: Any) -> Tensor:
    _tensors(op, input=input, other=other)
    if input.ndim != other.ndim:
        raise RuntimeError(f"{op}: inputs must have the same number of dimensions, got "
                           f"{input.ndim} and {other.ndim}")
    _same_dtype(op, input, other)
    try:
        shape = np.broadcast_shapes(tuple(input.shape), tuple(other.shape))
    except ValueError:
        raise RuntimeError(f"{op}: the shapes of input {tuple(input.shape)} and other "
                           f"{tuple(other.shape)} do not broadcast") from None
    if dim is None:
        sizes = [d for d, s in enumerate(shape) if s == 3]
        if not sizes:
            raise RuntimeError(f"{op}: no dimension of size 3 in input")
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated; pass dim "
                      "or use linalg.cross", UserWarning, stacklevel=3)
        dim = sizes[0]
    d = normalize_dim(op, dim, len(shape))
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {d} must have length 3. Got "
                           f"{input.shape[d]} and {other.shape[d]}")
    a0, a1, a2 = split(expand(input, shape), 1, d)
    b0, b1, b2 = split(expand(other, shape), 1, d)
    return cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


@autocast_policy("cross")
def cross(input: Tensor, other: Tensor, dim: Any = None) -> Tensor:
    """The cross product along `dim` (torch.cross); without dim, the first dim of size 3 (a
    deprecated default, as in torch)."""
    return _cross("cross", input, other, dim)


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product along `dim`, the last by default (torch.linalg.cross)."""
    return _cross("linalg.cross", input, other, dim)


@autocast_policy("trace")
def trace(input: Tensor) -> Tensor:
    """The sum of a matrix's main diagonal (torch.trace), in the sum's dtype (int64 for
    integers)."""
    from .reduce import sum
    from .shape import diagonal
    _tensors("trace", input=input)
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    if input.dtype.kind == "b":
        raise NotImplementedError("trace: not implemented for bool tensors")
    return sum(diagonal(input))
