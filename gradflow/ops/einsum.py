"""Einstein summation (torch.einsum): any equation torch accepts, with implicit outputs,
`...` broadcasting, size-1 broadcasting of named dims, repeated subscripts (diagonals,
traces) and subscripts summed within one operand.

The public `einsum` parses the equation into one letter per dimension (the ellipsis's
dimensions get letters the equation leaves unused), squeezes out size-1 dims that broadcast,
and hands the canonical form to the `Einsum` op. Its forward contracts a pair of operands as
one batched GEMM through `matmul_arrays` (cuBLAS on the GPU); other equations go to the array
module's einsum with path optimisation. Its backward is one einsum per operand, of the
gradient with the other operands, so double backward is again einsum.
"""
from __future__ import annotations

import string
from typing import Any, Sequence

from .. import dtypes
from ..amp.autocast_mode import autocast_policy
from ..autograd.function import Op
from ..tensor import Tensor
from .matmul import matmul_arrays
from .shape import expand, reshape

_LETTERS = string.ascii_letters
_ELLIPSIS = "."  # an ellipsis token in a parsed term


class Einsum(Op):
    """The contraction `specs -> out` of operands in canonical form: one letter per dim, sizes
    agree, every output letter occurs in some operand and once in `out`."""

    op_name = "einsum"

    @staticmethod
    def forward(ctx, *operands, specs, out):
        ctx.save_for_backward(*operands)
        ctx.specs, ctx.out = specs, out
        arrays = [t.array for t in operands]
        if len(arrays) == 2 and all(len(set(s)) == len(s) for s in specs):
            return _pair(arrays[0], specs[0], arrays[1], specs[1], out)
        xp = operands[0]._xp
        low = arrays[0].dtype
        if low == dtypes.float16 or low == dtypes.bfloat16:  # NOTE: summed in float32 and
            arrays = [a.astype(dtypes.float32) for a in arrays]  # rounded once, as torch's
            return xp.einsum(",".join(specs) + "->" + out, *arrays, optimize=True).astype(low)
        result = xp.einsum(",".join(specs) + "->" + out, *arrays, optimize=True)
        # NOTE: NumPy returns views for pure relabellings ('ij->ji', 'ii->i'); torch's result
        # of an op like this is its own memory (no view tracking here), so copy those.
        return result.copy() if len(arrays) == 1 else result

    @staticmethod
    def backward(ctx, g):
        operands = ctx.saved_tensors
        specs, out = ctx.specs, ctx.out
        grads = []
        for k, (x, spec) in enumerate(zip(operands, specs)):
            if not ctx.needs_input_grad[k]:
                grads.append(None)
                continue
            others = [j for j in range(len(specs)) if j != k]
            seen = set(out).union(*[specs[j] for j in others])
            unique = "".join(dict.fromkeys(spec))
            kept = "".join(c for c in unique if c in seen)
            grad = contract([out] + [specs[j] for j in others], kept,
                            [g] + [operands[j] for j in others])
            grads.append(_spread(grad, kept, spec, x))
        return tuple(grads)


def _pair(a: Any, sa: str, b: Any, sb: str, out: str) -> Any:
    """Two operands without repeated subscripts contracted as one batched GEMM
    (`matmul_arrays`: cuBLAS on the GPU): (batch, free in a, summed) @ (batch, summed, free
    in b), then laid out as `out`."""
    a, sa, b, sb = (*_sum_own(a, sa, sb + out), *_sum_own(b, sb, sa + out))
    batch = [c for c in out if c in sa and c in sb]
    free_a = [c for c in out if c in sa and c not in sb]
    free_b = [c for c in out if c in sb and c not in sa]
    summed = [c for c in sa if c in sb and c not in out]
    size = dict(zip(sa, a.shape)) | dict(zip(sb, b.shape))

    def count(labels: list) -> int:
        n = 1
        for c in labels:
            n *= size[c]
        return n

    left = a.transpose([sa.index(c) for c in batch + free_a + summed]).reshape(
        count(batch), count(free_a), count(summed))
    right = b.transpose([sb.index(c) for c in batch + summed + free_b]).reshape(
        count(batch), count(summed), count(free_b))
    result = matmul_arrays(left, right).reshape([size[c] for c in batch + free_a + free_b])
    order = batch + free_a + free_b
    return result.transpose([order.index(c) for c in out])


def _sum_own(a: Any, spec: str, elsewhere: str) -> tuple:
    """`a` summed over the subscripts found nowhere else, and its remaining subscripts."""
    own = tuple(i for i, c in enumerate(spec) if c not in elsewhere)
    if not own:
        return a, spec
    return a.sum(axis=own, dtype=a.dtype), "".join(c for c in spec if c in elsewhere)


def _spread(grad: Tensor, kept: str, spec: str, x: Tensor) -> Tensor:
    """The gradient over `kept` (the operand's distinct letters that occur elsewhere, in
    order) laid out as the operand `x` with subscripts `spec`: broadcast over the letters only
    `x` has, and put on the diagonal where `spec` repeats a letter."""
    size = dict(zip(spec, x.shape))
    unique = "".join(dict.fromkeys(spec))
    if kept != unique:
        grad = reshape(grad, tuple(size[c] if c in kept else 1 for c in unique))
        grad = expand(grad, tuple(size[c] for c in unique))
    if unique == spec:
        return grad
    first = {c: spec.index(c) for c in unique}
    grad = reshape(grad, tuple(size[c] if first[c] == p else 1 for p, c in enumerate(spec)))
    xp = x._xp
    mask = xp.ones((1,) * len(spec), dtype=x.dtype)
    for p, c in enumerate(spec):
        if first[c] != p:
            eye = xp.eye(size[c], dtype=x.dtype)
            mask = mask * eye.reshape([size[c] if q in (first[c], p) else 1
                                       for q in range(len(spec))])
    return grad * Tensor._wrap(mask)


def contract(specs: Sequence[str], out: str, operands: Sequence[Tensor]) -> Tensor:
    """Einsum of canonical operands; a lone operand already laid out as `out` is itself."""
    if len(operands) == 1 and specs[0] == out:
        return operands[0]
    return Einsum.apply(*operands, specs=tuple(specs), out=out)


def _tokens(term: str, where: str, offset: int) -> list:
    """A term's subscripts as letters and _ELLIPSIS tokens, checked as torch checks them."""
    tokens: list = []
    i = 0
    while i < len(term):
        c = term[i]
        if c == ".":
            if term[i:i + 3] != "...":
                raise RuntimeError(f"einsum(): found '.' for {where} that is not part of any "
                                   "ellipsis")
            if _ELLIPSIS in tokens:
                raise RuntimeError(f"einsum(): found '.' for {where} for which an ellipsis was "
                                   "already found")
            tokens.append(_ELLIPSIS)
            i += 3
            continue
        if c not in _LETTERS:
            raise RuntimeError(f"einsum(): invalid subscript given at index {offset + i} in the "
                               "equation string, subscripts must be in [a-zA-Z]")
        tokens.append(c)
        i += 1
    return tokens


def _parse(equation: str, count: int) -> tuple:
    """(input terms, output term or None) as token lists."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms, offset = [], 0
    for i, term in enumerate(lhs.split(",")):
        terms.append(_tokens(term, f"operand {i}", offset))
        offset += len(term) + 1
    if len(terms) < count:
        raise RuntimeError("einsum(): more operands were provided than specified in the "
                           "equation")
    if len(terms) > count:
        raise RuntimeError("einsum(): fewer operands were provided than specified in the "
                           "equation")
    return terms, (_tokens(rhs, "the output", len(lhs) + 2) if arrow else None)


def _operand_list(operands: tuple) -> list:
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum(): operand {i} must be a Tensor, got {type(t).__name__}")
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    for t in operands[1:]:
        if t.dtype != operands[0].dtype:
            raise RuntimeError(f"einsum(): expected all operands to have the same dtype, but "
                               f"got {operands[0].dtype} and {t.dtype}")
    return list(operands)


def _sublists(args: tuple) -> tuple:
    """torch's sublist form, einsum(op0, [0, 1], op1, [1, 2], [0, 2]), as an equation and its
    operands; subscripts are ints in [0, 52) or Ellipsis."""
    def term(sub: Any) -> str:
        out = ""
        for s in sub:
            if s is Ellipsis:
                out += "..."
            elif isinstance(s, int) and 0 <= s < len(_LETTERS):
                out += _LETTERS[s]
            else:
                raise ValueError(f"einsum(): expected subscript to be within the range [0, 52), "
                                 f"but got {s!r}")
        return out
    out = ""
    if len(args) % 2:  # a trailing output sublist
        out, args = "->" + term(args[-1]), args[:-1]
    return ",".join(term(sub) for sub in args[1::2]) + out, args[0::2]


@autocast_policy("einsum")
def einsum(equation: Any, *operands: Any) -> Tensor:
    """Sums the product of the operands over the subscripts the equation leaves out of the
    output (torch.einsum); operands come as arguments or as one list, or interleaved with
    their subscript lists (the sublist form)."""
    if isinstance(equation, Tensor):
        equation, operands = _sublists((equation,) + operands)
    tensors = _operand_list(operands)
    terms, out_tokens = _parse(equation, len(tensors))
    used = set(c for term in terms for c in term if c != _ELLIPSIS)
    spare = [c for c in _LETTERS if c not in used]
    ell_ndims = []
    for i, (term, t) in enumerate(zip(terms, tensors)):
        letters = sum(c != _ELLIPSIS for c in term)
        if _ELLIPSIS in term:
            if letters > t.ndim:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                                   f"({letters}) is more than the number of dimensions "
                                   f"({t.ndim}) for operand {i}")
            ell_ndims.append(t.ndim - letters)
        elif letters != t.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({letters}) "
                               f"does not match the number of dimensions ({t.ndim}) for operand "
                               f"{i} and no ellipsis was given")
        else:
            ell_ndims.append(0)
    n_ell = max(ell_ndims)
    if n_ell > len(spare):
        raise RuntimeError(f"einsum(): too many dimensions ({len(used) + n_ell}) for the "
                           f"{len(_LETTERS)} subscripts [a-zA-Z]")
    ell = "".join(spare[:n_ell])
    specs = []
    for term, e in zip(terms, ell_ndims):
        specs.append("".join(ell[n_ell - e:] if c == _ELLIPSIS else c for c in term))
    size: dict = {}
    for i, (spec, t) in enumerate(zip(specs, tensors)):
        mine: dict = {}
        for c, s in zip(spec, t.shape):
            if c in mine and mine[c] != s:
                raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {i} but the "
                                   f"sizes don't match, {s} != {mine[c]}")
            mine[c] = s
            seen = size.get(c, 1)
            if s != 1 and seen != 1 and s != seen:
                what = ("a dimension covered by the ellipsis" if c in ell
                        else f"subscript {c}")
                raise RuntimeError(f"einsum(): {what} has size {s} for operand {i} which does "
                                   f"not broadcast with previously seen size {seen} (operand "
                                   f"shapes {[tuple(x.shape) for x in tensors]})")
            size[c] = max(seen, s)
    if out_tokens is None:
        counts: dict = {}
        for spec in specs:
            for c in spec:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = ""
        for c in out_tokens:
            if c == _ELLIPSIS:
                out += ell
                continue
            if c not in used:
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the "
                                   "equation for any input operand")
            if c in out:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in "
                                   "the output")
            out += c
    # NOTE: a size-1 dim facing a larger one broadcasts: the operand is constant along that
    # subscript, so it leaves the operand (reshape's backward restores the dim in the
    # gradient).
    for i, (spec, t) in enumerate(zip(specs, tensors)):
        if any(s == 1 and size[c] > 1 for c, s in zip(spec, t.shape)):
            keep = [(c, s) for c, s in zip(spec, t.shape) if not (s == 1 and size[c] > 1)]
            specs[i] = "".join(c for c, _ in keep)
            tensors[i] = reshape(t, tuple(s for _, s in keep))
    return contract(specs, out, tensors)
