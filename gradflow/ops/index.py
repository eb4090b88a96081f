"""Indexing, PyTorch's way, and the ops built on it: getitem/setitem/index_put, gather,
scatter, scatter_add, scatter_reduce, take, take_along_dim, index_select/add/copy/fill,
masked_fill/select/scatter, nonzero/argwhere, and cat/stack/split/chunk.

Every gathering op is `GetItem` with an index tuple of arrays (its adjoint scatter-adds the
gradient back, `IndexAddInto`), and every scattering op but scatter_reduce is `IndexPut` (the
input with values written or added at an index), so their gradients are those two ops again.

PyTorch's index differs from NumPy's in one rule: an int among tensor indices is a basic
index (a select, applied first), so it does not join them. Where NumPy would then put the
tensors' broadcast dims first (the int splits them) and PyTorch keeps them in place, the
result is permuted (`Index.moved`).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import determinism, dtypes
from ..amp.autocast_mode import autocast_policy
from ..autograd.function import Op
from ..backend import array_module, move_array, on_device
from ..cuda import checks
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .elementwise import cast, clone, mul, where
from .shape import Reshape, expand, permute, reshape, sum_to, unsqueeze
from .util import normalize_dim, operand_arrays, result_dtype

_BASIC_TYPES = (int, slice, type(None), type(Ellipsis))  # exact types: a bool is no int here


class Index(NamedTuple):
    """A parsed index. `items` index the array NumPy's way, once it is reshaped to `shape`
    (not None where a bool index adds a unit dim); `moved` is (n, p) when PyTorch puts the n
    dims of the tensor indices' broadcast at position p of the result, where NumPy puts them
    first; `ndim` is the result's number of dims then."""

    items: tuple
    shape: tuple | None = None
    moved: tuple | None = None
    ndim: int = 0


# -- parsing an index -------------------------------------------------------------------------
def parse_index(x: Tensor, index: Any, op: str) -> Index:
    """Check `index` against `x` (x[index]: ints, slices, None, Ellipsis, bools, integer or
    bool tensors, lists, ranges and tuples of them) and turn it into an `Index`."""
    items = index if type(index) is tuple else _as_tuple(index)
    for it in items:
        if type(it) not in _BASIC_TYPES:
            break
        if type(it) is slice and it.step is not None and it.step <= 0:
            raise ValueError(f"{op}: step must be greater than zero, got {it.step}")
    else:  # the fast path: a view
        _check_basic(x, items, op)
        return Index(items)
    with on_device(x.device):  # the bounds checks run on x's device, before the op's guard
        return _parse_advanced(x, items, op)


def _as_tuple(index: Any) -> tuple:
    """A non-tuple index as a tuple. A short list holding a sequence, slice, tensor, None or
    Ellipsis is taken as a tuple of indices (NumPy's old heuristic, which torch keeps)."""
    if isinstance(index, list) and len(index) < 32 and any(
            it is None or it is Ellipsis or isinstance(it, (Tensor, list, tuple, range, slice,
                                                             np.ndarray)) for it in index):
        return tuple(index)
    return (index,)


def _count_dims(x: Tensor, specified: int, ellipses: int, op: str) -> None:
    if ellipses > 1:
        raise IndexError(f"{op}: an index can only have a single ellipsis ('...')")
    if specified > x.ndim:
        raise IndexError(f"{op}: too many indices for tensor of dimension {x.ndim} (shape "
                         f"{tuple(x.shape)})")


def _where(dim: int, size: int, x: Tensor) -> str:
    return f"dimension {dim} with size {size} (tensor shape {tuple(x.shape)})"


def _check_basic(x: Tensor, items: tuple, op: str) -> None:
    specified = sum(it is not None and it is not Ellipsis for it in items)
    _count_dims(x, specified, sum(it is Ellipsis for it in items), op)
    shape, dim = x.shape, 0
    for it in items:
        if it is Ellipsis:
            dim += x.ndim - specified
        elif it is not None:
            if type(it) is int and not -shape[dim] <= it < shape[dim]:
                check_range(op, "index", it, -shape[dim], shape[dim], _where(dim, shape[dim], x))
            dim += 1


def _convert(x: Tensor, it: Any, op: str) -> tuple:
    """One index item as (kind, value): kind none, ellipsis, slice, int (a Python int, or a 0-d
    device array: `int0`), bool, array (integer) or mask (bool)."""
    if it is None:
        return "none", None
    if it is Ellipsis:
        return "ellipsis", None
    if isinstance(it, slice):
        if it.step is not None and it.step <= 0:
            raise ValueError(f"{op}: step must be greater than zero, got {it.step}")
        return "slice", it
    if isinstance(it, (bool, np.bool_)):
        return "bool", bool(it)
    if isinstance(it, (int, np.integer)):
        return "int", int(it)
    if isinstance(it, Tensor):
        if it.device != x.device:
            raise RuntimeError(f"{op}: indices are on {it.device} but the indexed tensor is on "
                               f"{x.device}")
        arr = it.array
        if arr.dtype == np.uint8:  # NOTE: a byte tensor is a mask, as in torch (deprecated)
            arr = arr.astype(bool)
        elif arr.dtype not in (np.int64, np.int32, np.bool_):
            raise IndexError(f"{op}: tensors used as indices must be long, int or bool tensors "
                             f"(or byte masks), got {arr.dtype}")
    elif isinstance(it, (list, tuple, range, np.ndarray)):
        arr = _sequence_array(it, op)
    else:
        raise IndexError(f"{op}: only integers, slices (`:`), ellipsis (`...`), None, bools "
                         f"and long or bool tensors are valid indices (got "
                         f"{type(it).__name__})")
    if arr.ndim == 0:
        if arr.dtype == np.bool_:
            return "bool", bool(arr)  # a host read, as torch's item()
        # NOTE: a 0-d index is an int (a select, a view) as in torch; on a GPU it stays a
        # device array, so reading it makes no sync (the result is then a copy)
        return ("int", int(arr)) if isinstance(arr, np.ndarray) else ("int0", arr)
    return ("mask" if arr.dtype == np.bool_ else "array"), arr


def _sequence_array(seq: Any, op: str) -> np.ndarray:
    """A list, range or NumPy array index as a host array: bools give a mask, numbers int64
    (floats truncated, as torch converts them)."""
    try:
        arr = np.asarray(seq)
    except ValueError as err:
        raise IndexError(f"{op}: cannot make an index of {seq!r}: {err}") from None
    if arr.dtype == np.bool_:
        return arr
    if arr.size == 0 or dtypes.kind(arr.dtype) in "iuf":
        return arr.astype(np.int64)
    raise IndexError(f"{op}: an index sequence must hold ints or bools, got {arr.dtype}")


def _parse_advanced(x: Tensor, items: tuple, op: str) -> Index:
    parts = [_convert(x, it, op) for it in items]
    specified = sum(v.ndim if k == "mask" else 1 for k, v in parts
                    if k not in ("none", "ellipsis", "bool"))
    _count_dims(x, specified, sum(k == "ellipsis" for k, _ in parts), op)
    shape = list(x.shape)  # x's, with the unit dims the bools add
    out: list = []  # the NumPy items
    kinds: list = []  # per item: basic (slice, None), int (a select in torch) or tensor
    dim = added = n = 0  # the next dim of `shape`; unit dims added; the broadcast's ndim
    for kind, v in parts:
        if kind == "ellipsis":
            out += [slice(None)] * (x.ndim - specified)
            kinds += ["basic"] * (x.ndim - specified)
            dim += x.ndim - specified
        elif kind in ("none", "slice"):
            out.append(v)
            kinds.append("basic")
            dim += kind == "slice"
        elif kind == "bool":  # a new unit dim, indexed by [0] (True) or [] (False)
            shape.insert(dim, 1)
            added += 1
            out.append(np.zeros(int(v), np.int64))
            kinds.append("tensor")
            dim, n = dim + 1, max(n, 1)
        elif kind == "mask":
            covered = tuple(shape[dim:dim + v.ndim])
            if tuple(v.shape) != covered:
                raise IndexError(f"{op}: boolean mask of shape {tuple(v.shape)} does not match "
                                 f"the indexed dimensions {covered} of shape {tuple(x.shape)}")
            out.append(v)
            kinds.append("tensor")
            dim, n = dim + v.ndim, max(n, 1)
        else:  # int, int0, array
            size = shape[dim]
            check_range(op, "index", v, -size, size, _where(dim - added, size, x))
            out.append(v)
            kinds.append("int" if kind != "array" else "tensor")
            dim += 1
            n = max(n, v.ndim) if kind == "array" else n
    arrays = [i for i, k in enumerate(kinds) if k == "tensor"]
    moved = None
    if arrays:
        first, last = arrays[0], arrays[-1]
        numpy_ones = [i for i, k in enumerate(kinds) if k != "basic"]  # NumPy's advanced
        torch_adjacent = "basic" not in kinds[first:last + 1]
        numpy_adjacent = numpy_ones[-1] - numpy_ones[0] + 1 == len(numpy_ones)
        position = kinds[:first].count("basic")
        if torch_adjacent and not numpy_adjacent and position:
            moved = (n, position)
    ndim = kinds.count("basic") + len(shape) - dim + n
    device = x.device
    out = [move_array(it, device) if isinstance(it, np.ndarray) else it for it in out]
    return Index(tuple(out), tuple(shape) if added else None, moved, ndim)


def check_range(op: str, what: str, index: Any, low: int, high: int, where: str,
                error: type = IndexError) -> None:
    """Raise `error` unless every entry of `index` (an int, or an integer array on any
    device) lies in [low, high). Host values are checked now; device arrays by a deferred
    check (gradflow.cuda.checks), so the host never waits for the GPU."""
    if isinstance(index, int) or array_module(index) is np:
        values = np.asarray(index)
        if values.size == 0:
            return
        lo, hi = int(values.min()), int(values.max())
        if lo < low or hi >= high:
            raise error(f"{op}: {what} {lo if lo < low else hi} is out of bounds for {where}")
    elif index.size:
        checks.defer(index, lambda a: ((a < low) | (a >= high)).any(),
                     f"{op}: a value of the {what} is out of bounds for {where}", error)


def _is_basic(items: tuple) -> bool:
    return all(it is None or it is Ellipsis or isinstance(it, (int, slice)) for it in items)


def _torch_order(moved: tuple, ndim: int) -> list:
    """The permutation from NumPy's layout (broadcast dims first) to PyTorch's."""
    n, p = moved
    return list(range(n, n + p)) + list(range(n)) + list(range(n + p, ndim))


def _numpy_layout(values: Any, index: Index) -> Any:
    """Values laid out for PyTorch's result of `index`, in NumPy's layout (for assignment)."""
    if index.moved is None or not hasattr(values, "ndim") or values.ndim == 0:
        return values
    while values.ndim > index.ndim and values.shape[0] == 1:  # torch drops leading unit dims
        values = values[0]
    values = values.reshape((1,) * (index.ndim - values.ndim) + values.shape)
    n, p = index.moved
    return values.transpose(list(range(p, p + n)) + list(range(p)) +
                            list(range(p + n, index.ndim)))


# -- the two ops: indexing and putting at an index --------------------------------------------
class GetItem(LinearOp):
    """x[items]; its adjoint scatter-adds the gradient back (`IndexAddInto`). A view when the
    items are basic (`ctx.is_view`)."""

    op_name, params = "getitem", ("items",)

    @classmethod
    def forward(cls, ctx, x, items):
        ctx.is_view = _is_basic(items)
        return super().forward(ctx, x, items=items)

    @staticmethod
    def compute(a, items):
        # NOTE: NumPy gives a scalar copy when ints index every dimension; a trailing Ellipsis
        # makes it a 0-d view, as torch's select is
        if _is_basic(items) and not any(it is Ellipsis for it in items):
            return a[items + (Ellipsis,)]
        return a[items]


def scatter_add_in_order(out: Any, items: tuple, values: Any) -> None:
    """out[items] += values, summing the values that land on one element in their original
    order: a deterministic scatter-add without atomics, for NumPy or CuPy arrays.

    The targets are sorted (stably), each value gets its rank among those sharing its target,
    and one round per rank adds values whose targets are distinct, so no two collide.
    """
    xp = array_module(out)
    targets = xp.arange(out.size).reshape(out.shape)[items]
    values = xp.broadcast_to(values, targets.shape).reshape(-1)
    order = xp.argsort(targets.reshape(-1), kind="stable")
    targets, values = targets.reshape(-1)[order], values[order]
    if targets.size == 0:
        return
    starts = xp.concatenate([xp.ones(1, bool), targets[1:] != targets[:-1]])
    first = xp.nonzero(starts)[0]
    rank = xp.arange(targets.size) - first[xp.cumsum(starts) - 1]
    flat = out.reshape(-1)
    for k in range(int(rank.max()) + 1):
        chosen = rank == k
        flat[targets[chosen]] += values[chosen]


def scatter_add_arrays(out: Any, items: tuple, values: Any) -> None:
    """out[items] += values, in place, adding every duplicate (NumPy's add.at); on the GPU in
    a fixed order under use_deterministic_algorithms."""
    xp = array_module(out)
    if _is_basic(items):
        out[items] += values
    elif xp is np:
        np.add.at(out, items, values)
    elif determinism.are_deterministic_algorithms_enabled():
        scatter_add_in_order(out, items, values)
    else:
        import cupyx
        cupyx.scatter_add(out, items, values)


class IndexAddInto(LinearOp):
    """Scatter-add `g` into zeros of `shape` at `items`: the adjoint of indexing."""

    op_name, params = "index_backward", ("shape", "items")

    @staticmethod
    def compute(g, shape, items):
        out = array_module(g).zeros(shape, g.dtype)
        scatter_add_arrays(out, items, g)
        return out


adjoints(GetItem, IndexAddInto)


def select_index(x: Tensor, index: Index) -> Tensor:
    """x[index] in PyTorch's layout, for x already of `index.shape`."""
    out = GetItem.apply(x, items=index.items)
    return out if index.moved is None else permute(out, *_torch_order(index.moved, out.ndim))


class IndexPut(Op):
    """A copy of x with `values` written at `index` (added, with `accumulate`): the
    gradient is g for x (g with zeros written at the index, without accumulate) and g at the
    index, summed to the values' shape, for the values."""

    op_name = "index_put"

    @staticmethod
    def forward(ctx, x, values, index, accumulate):
        ctx.index, ctx.accumulate = index, accumulate
        ctx.values_shape = tuple(values.shape) if isinstance(values, Tensor) else None
        out = x.array.copy()
        v = _numpy_layout(values.array if isinstance(values, Tensor) else values, index)
        if accumulate:
            scatter_add_arrays(out, index.items, x._xp.asarray(v, out.dtype))
        else:
            out[index.items] = v
        return out

    @staticmethod
    def backward(ctx, g):
        gx = gv = None
        if ctx.needs_input_grad[0]:
            gx = g if ctx.accumulate else IndexPut.apply(g, 0, index=ctx.index, accumulate=False)
        if ctx.needs_input_grad[1]:
            gv = select_index(g, ctx.index)
            shape = ctx.values_shape
            while len(shape) > gv.ndim and shape[0] == 1:
                shape = shape[1:]
            gv = reshape(sum_to(gv, shape), ctx.values_shape)
        return gx, gv


def getitem(x: Tensor, index: Any) -> Tensor:
    """x[index] with PyTorch's rules; a view for basic indices."""
    p = parse_index(x, index, "getitem")
    return select_index(x if p.shape is None else Reshape.apply(x, shape=p.shape), p)


def setitem(x: Tensor, index: Any, value: Any) -> None:
    """x[index] = value, in place (no graph; Tensor.__setitem__ checks that first)."""
    p = parse_index(x, index, "setitem")
    if isinstance(value, Tensor):
        if value.device != x.device:
            raise RuntimeError(f"setitem: value is on {value.device} but the tensor is on "
                               f"{x.device}")
        value = value.array
    target = x.array if p.shape is None else x.array.reshape(p.shape)
    try:
        target[p.items] = _numpy_layout(value, p)
    except ValueError as err:
        shape = getattr(value, "shape", ())
        raise RuntimeError(f"setitem: value of shape {tuple(shape)} cannot be assigned to the "
                           f"selected region of a tensor of shape {tuple(x.shape)}: {err}"
                           ) from None


@autocast_policy("index_put")
def index_put(input: Tensor, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
    """A copy of `input` with `values` written (added, with `accumulate`, duplicates summed) at
    `indices` (torch.index_put, out of place); `indices` is anything x[...] accepts."""
    if isinstance(values, Tensor) and values.dtype != input.dtype:
        raise RuntimeError(f"index_put: requires the values' dtype ({values.dtype}) to match "
                           f"the tensor's ({input.dtype})")
    p = parse_index(input, indices, "index_put")
    if p.shape is None:
        return IndexPut.apply(input, values, index=p, accumulate=bool(accumulate))
    out = IndexPut.apply(Reshape.apply(input, shape=p.shape), values, index=p,
                         accumulate=bool(accumulate))
    return Reshape.apply(out, shape=tuple(input.shape))


# -- gather and scatter along a dim -----------------------------------------------------------
def _index_tensor(op: str, index: Any, int32: bool = True, error: type = RuntimeError,
                  what: str = "index") -> Any:
    """The array of an integer index tensor: int64 (or int32 where `int32`), as torch."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}(): argument '{what}' must be a Tensor, not "
                        f"{type(index).__name__}")
    allowed = (np.int64, np.int32) if int32 else (np.int64,)
    if index.dtype not in allowed:
        raise error(f"{op}(): Expected dtype {'int32/int64' if int32 else 'int64'} for {what}, "
                    f"got {index.dtype}")
    return index.array


def _along_dim(index: Any, dim: int) -> tuple:
    """The index tuple that picks, at each position of `index`, the element whose coordinate
    along `dim` is the index's value and elsewhere is the position's own (as gather does)."""
    xp, ndim = array_module(index), index.ndim
    return tuple(index if a == dim else
                 xp.arange(n).reshape([-1 if b == a else 1 for b in range(ndim)])
                 for a, n in enumerate(index.shape))


def _check_along(op: str, x: Tensor, d: int, index: Any, src: Any = None) -> None:
    """gather/scatter's rules: index has x's ndim, is no larger than x apart from `d` (and no
    larger than src), and its values lie in [0, x.shape[d])."""
    if index.ndim != x.ndim:
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as "
                           f"input tensor (index shape {tuple(index.shape)}, input shape "
                           f"{tuple(x.shape)})")
    if src is not None and src.ndim != x.ndim:
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as "
                           f"src tensor (index shape {tuple(index.shape)}, src shape "
                           f"{tuple(src.shape)})")
    for a, n in enumerate(index.shape):
        if (a != d and n > x.shape[a]) or (src is not None and n > src.shape[a]):
            against = "" if src is None else f" and to be no larger than src {tuple(src.shape)}"
            raise RuntimeError(f"{op}(): Expected index {tuple(index.shape)} to be no larger "
                               f"than self {tuple(x.shape)} apart from dimension {d}{against}")
    with on_device(x.device):
        check_range(op, "index", index, 0, x.shape[d], _where(d, x.shape[d], x), RuntimeError)


def _as_vectors(fn, shape: tuple, input: Tensor, *tensors: Any) -> Tensor:
    """`fn(input, *tensors)` where a 0-d tensor meets a 1-D one, run with every 0-d tensor made
    a vector of one, and its result reshaped to `shape` (torch counts 0-d as 1-D here)."""
    shaped = [reshape(t, (-1,)) if isinstance(t, Tensor) and t.ndim == 0 else t
              for t in tensors]
    return reshape(fn(reshape(input, (-1,)), *shaped), tuple(shape))


def _mixes_0d_and_1d(input: Tensor, idx: Any) -> bool:
    """A 0-d tensor with a 0-d or 1-D one: torch counts the 0-d as 1-D."""
    return max(input.ndim, idx.ndim) <= 1 and min(input.ndim, idx.ndim) == 0


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """out[i][j] = input[i][index[i][j]] for dim 1 (torch.gather); the gradient scatter-adds
    back (`sparse_grad` is accepted and ignored: gradients are dense)."""
    d = normalize_dim("gather", dim, input.ndim)
    idx = _index_tensor("gather", index)
    if _mixes_0d_and_1d(input, idx):
        return _as_vectors(lambda x, i: gather(x, 0, i), index.shape, input, index)
    _check_along("gather", input, d, idx)
    return GetItem.apply(input, items=_along_dim(idx, d))


def _scattered(op: str, input: Tensor, dim: int, index: Tensor, src: Any, accumulate: bool,
               ) -> Tensor:
    """input with src's values written (added) at their index along `dim`."""
    d = normalize_dim(op, dim, input.ndim)
    idx = _index_tensor(op, index)
    if isinstance(src, Tensor):
        if src.dtype != input.dtype:
            raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype (got "
                               f"{input.dtype} and {src.dtype})")
        if _mixes_0d_and_1d(input, idx):
            return _as_vectors(lambda x, i, s: _scattered(op, x, 0, i, s, accumulate),
                               input.shape, input, index, src)
        _check_along(op, input, d, idx, src)
        if tuple(src.shape) != tuple(idx.shape):
            src = getitem(src, tuple(slice(0, n) for n in idx.shape))
    else:
        if _mixes_0d_and_1d(input, idx):
            return _as_vectors(lambda x, i: _scattered(op, x, 0, i, src, accumulate),
                               input.shape, input, index)
        _check_along(op, input, d, idx)
    return IndexPut.apply(input, src, index=Index(_along_dim(idx, d)),
                          accumulate=accumulate)


def scatter(input: Tensor, dim: int, index: Tensor, src: Any = None, *,
            value: Any = None) -> Tensor:
    """A copy of `input` with src's values (or one `value`) written at `index` along `dim`
    (torch.scatter): out[i][index[i][j]] = src[i][j] for dim 1."""
    if (src is None) == (value is None):
        raise TypeError("scatter(): expected exactly one of src (a tensor or a number) and value")
    return _scattered("scatter", input, dim, index, value if src is None else src, False)


@autocast_policy("scatter_add")
def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of `input` with src's values added at `index` along `dim`, duplicates summed
    (torch.scatter_add)."""
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' must be a Tensor, not "
                        f"{type(src).__name__}")
    return _scattered("scatter_add", input, dim, index, src, True)


_REDUCES = ("sum", "prod", "mean", "amax", "amin")


def _reduce_at(out: Any, items: tuple, values: Any, ufunc: str) -> None:
    """out[items] = ufunc(out[items], values), in place, every duplicate combined (NumPy's
    ufunc.at). On CuPy (which lacks multiply.at) the values are sorted by target and each run
    of one target is combined by doubling (log2(n) rounds of vector ops, no atomics, in a
    fixed order), and its total combined into `out` (a contiguous array)."""
    xp = array_module(out)
    if xp is np:
        getattr(np, ufunc).at(out, items, values)
        return
    targets = xp.arange(out.size).reshape(out.shape)[items]
    v = xp.broadcast_to(values, targets.shape).reshape(-1)
    order = xp.argsort(targets.reshape(-1), kind="stable")
    t, v = targets.reshape(-1)[order], v[order]
    if t.size == 0:
        return
    combine = getattr(xp, ufunc)
    step = 1
    while step < t.size:  # an inclusive scan within each run (Hillis and Steele)
        same = t[step:] == t[:-step]
        v = xp.concatenate([v[:step], xp.where(same, combine(v[step:], v[:-step]), v[step:])])
        step *= 2
    last = xp.concatenate([t[1:] != t[:-1], xp.ones(1, bool)])
    flat = out.reshape(-1)
    flat[t[last]] = combine(flat[t[last]], v[last])


def _identity(reduce: str, dtype: np.dtype) -> Any:
    """The value a reduction starts from where include_self=False leaves out the input."""
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    info = np.finfo(dtype) if dtypes.is_floating(dtype) else np.iinfo(dtype)
    low = -np.inf if dtypes.is_floating(dtype) else info.min
    high = np.inf if dtypes.is_floating(dtype) else info.max
    return low if reduce == "amax" else high


def _full(like: Tensor, value: Any) -> Tensor:
    """A constant tensor shaped like `like`, of its dtype."""
    return Tensor._wrap(like._xp.full(like.shape, value, like.dtype))


class ScatterReduce(Op):
    """input with src's values reduced into it at their index along `dim` (sum, prod, mean,
    amax or amin, the input's own values included or not); PyTorch's gradients: amax/amin
    split evenly among ties, prod right with a single zero."""

    op_name, saves_outputs = "scatter_reduce", True

    @staticmethod
    def forward(ctx, x, src, index, dim, reduce, include_self):
        ctx.save_for_backward(x, src)
        ctx.index, ctx.dim, ctx.reduce, ctx.include_self = index, dim, reduce, include_self
        xp, a, s = x._xp, x.array.copy(), src.array
        items = _along_dim(index.array, dim)
        if not include_self:
            a[items] = _identity(reduce, a.dtype)
        if reduce in ("sum", "mean"):
            scatter_add_arrays(a, items, s)
        else:
            _reduce_at(a, items, s, {"prod": "multiply", "amax": "maximum",
                                     "amin": "minimum"}[reduce])
        if reduce != "mean":
            return a
        count = xp.full(a.shape, int(include_self), a.dtype)
        scatter_add_arrays(count, items, xp.ones(s.shape, a.dtype))
        count[count == 0] = 1
        return a / count if dtypes.is_floating(a.dtype) else a // count

    @staticmethod
    def backward(ctx, g):
        x, src = ctx.saved_tensors
        result = ctx.outputs[0]
        index, dim, reduce, include_self = ctx.index, ctx.dim, ctx.reduce, ctx.include_self
        if reduce == "sum":
            gx, gs = g, gather(g, dim, index)
        elif reduce == "prod":
            # NOTE: torch's rule: the input's zeros are replaced by ones to divide by them;
            # a src value that is its target's only zero gets the product of the others
            x_zero = x == 0
            safe_x = where(x_zero, 1.0, x)
            gx = g * scatter_reduce(safe_x, dim, index, src, "prod", include_self=include_self) \
                / safe_x
            src_zero = src == 0
            zeros = scatter_add(_full(x, 0), dim, index, cast(src_zero, dtype=x.dtype))
            single = src_zero & (gather(zeros, dim, index) == 1)
            others = scatter_reduce(x, dim, index, where(single, 1.0, src), "prod",
                                    include_self=include_self)
            gs = where(single, gather(g * others, dim, index),
                       gather(g * result, dim, index) / where(src_zero, 1.0, src))
        elif reduce == "mean":
            count = scatter_add(_full(x, int(include_self)), dim, index, _full(src, 1))
            count = where(count == 0, 1.0, count)
            gx, gs = g / count, gather(g, dim, index) / gather(count, dim, index)
        else:  # amax, amin: ties share the gradient evenly
            value = gather(result, dim, index)
            x_hit, src_hit = x == result, src == value
            ties = scatter_add(cast(x_hit, dtype=x.dtype), dim, index, cast(src_hit, dtype=x.dtype))
            share = g / ties
            gx = where(x_hit, share, 0.0)
            gs = where(src_hit, gather(share, dim, index), 0.0)
        if not include_self:
            gx = scatter(gx, dim, index, value=0.0)
        return gx, gs


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """A copy of `input` with src's values reduced at `index` along `dim` by `reduce` (sum,
    prod, mean, amax, amin), the input's own values included unless include_self=False
    (torch.scatter_reduce); an integer mean rounds down."""
    if reduce not in _REDUCES:
        raise RuntimeError(f"scatter_reduce(): reduce argument must be one of {_REDUCES}, got "
                           f"{reduce!r}")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce(): argument 'src' must be a Tensor, not "
                        f"{type(src).__name__}")
    d = normalize_dim("scatter_reduce", dim, input.ndim)
    idx = _index_tensor("scatter_reduce", index)
    if src.dtype != input.dtype:
        raise RuntimeError(f"scatter_reduce(): Expected self.dtype to be equal to src.dtype "
                           f"(got {input.dtype} and {src.dtype})")
    if _mixes_0d_and_1d(input, idx):
        return _as_vectors(lambda x, i, s: scatter_reduce(x, 0, i, s, reduce,
                                                          include_self=include_self),
                           input.shape, input, index, src)
    _check_along("scatter_reduce", input, d, idx, src)
    if tuple(src.shape) != tuple(idx.shape):
        src = getitem(src, tuple(slice(0, n) for n in idx.shape))
    if idx.dtype != np.int64:
        index = Tensor._wrap(idx.astype(np.int64))
    return ScatterReduce.apply(input, src, index=index, dim=d, reduce=reduce,
                               include_self=bool(include_self))


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """Values of `input` at `indices` along `dim`, the two broadcast against each other apart
    from `dim`; of the flattened input when dim is None (torch.take_along_dim)."""
    idx = _index_tensor("take_along_dim", indices, int32=False, what="indices")
    if dim is None:  # NOTE: torch gathers from the flattened input: no negative indices
        n = input.numel()
        with on_device(input.device):
            check_range("take_along_dim", "index", idx, 0, n, f"dimension 0 with size {n} (the "
                        f"flattened input of shape {tuple(input.shape)})", RuntimeError)
        return GetItem.apply(reshape(input, (-1,)), items=(idx.reshape(-1),))
    d = normalize_dim("take_along_dim", dim, input.ndim)
    if idx.ndim != input.ndim:
        raise RuntimeError(f"take_along_dim(): input and indices should have the same number "
                           f"of dimensions, but got {input.ndim} dimensions for input, and "
                           f"{idx.ndim} dimensions for indices")
    if input.ndim == 0:
        return _as_vectors(lambda x, i: take_along_dim(x, i, 0), indices.shape, input, indices)
    try:
        shape = np.broadcast_shapes(*(tuple(1 if a == d else n for a, n in enumerate(s))
                                      for s in (input.shape, idx.shape)))
    except ValueError:
        raise RuntimeError(f"take_along_dim(): input of shape {tuple(input.shape)} and indices "
                           f"of shape {tuple(idx.shape)} do not broadcast apart from dimension "
                           f"{d}") from None
    size = input.shape[d]
    with on_device(input.device):
        check_range("take_along_dim", "index", idx, -size, size, _where(d, size, input),
                    RuntimeError)
        xp = array_module(idx)
        idx = xp.broadcast_to(xp.where(idx < 0, idx + size, idx),
                              shape[:d] + (idx.shape[d],) + shape[d + 1:])
    x = expand(input, shape[:d] + (size,) + shape[d + 1:])
    return GetItem.apply(x, items=_along_dim(idx, d))


def take(input: Tensor, index: Tensor) -> Tensor:
    """Values of the flattened input at `index`, in the index's shape (torch.take); negative
    indices count from the end."""
    idx = _index_tensor("take", index, int32=False)
    n = input.numel()
    with on_device(input.device):
        check_range("take", "index", idx, -n, n, f"a tensor of {n} elements (input shape "
                                                 f"{tuple(input.shape)})")
    return GetItem.apply(reshape(input, (-1,)), items=(idx,))


# -- index_select, index_add, index_copy, index_fill ------------------------------------------
def _dim_index(op: str, input: Tensor, dim: int, index: Any, int32: bool = True,
               dtype_error: type = RuntimeError, range_error: type = RuntimeError,
               negative: bool = False) -> tuple:
    """(dim, the index as a vector) for the index_* ops: a vector (or a 0-d) integer tensor
    whose values lie in [0, size) ([-size, size) where `negative`) along `dim`."""
    d = normalize_dim(op, dim, input.ndim)
    idx = _index_tensor(op, index, int32=int32, error=dtype_error)
    if idx.ndim > 1:
        raise IndexError(f"{op}(): Index is supposed to be a vector, got shape "
                         f"{tuple(idx.shape)}")
    size = input.shape[d] if input.ndim else 1
    with on_device(input.device):
        check_range(op, "index", idx, -size if negative else 0, size, _where(d, size, input),
                    range_error)
    return d, idx.reshape(-1)


def _dim_items(d: int, idx: Any) -> Index:
    return Index((slice(None),) * d + (idx,))


def _check_source(op: str, input: Tensor, d: int, n: int, source: Any) -> None:
    if not isinstance(source, Tensor):
        raise TypeError(f"{op}(): argument 'source' must be a Tensor, not "
                        f"{type(source).__name__}")
    if source.dtype != input.dtype:
        raise RuntimeError(f"{op}(): self ({input.dtype}) and source ({source.dtype}) must "
                           f"have the same scalar type")
    want = tuple(input.shape[:d]) + (n,) + tuple(input.shape[d + 1:]) if input.ndim else ()
    if tuple(source.shape) != want:
        raise RuntimeError(f"{op}(): source of shape {tuple(source.shape)} must have the "
                           f"tensor's shape {tuple(input.shape)} with {n} (the number of "
                           f"indices) at dimension {d}; expected shape {want}")


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices of `input` at `index` along `dim` (torch.index_select)."""
    d, idx = _dim_index("index_select", input, dim, index)
    if input.ndim == 0:
        if idx.size != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got "
                               f"{idx.size} value(s)")
        return clone(input)
    return GetItem.apply(input, items=(slice(None),) * d + (idx,))


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *,
              alpha: Any = 1) -> Tensor:
    """A copy of `input` with alpha * source added at `index` along `dim`, duplicates summed
    (torch.index_add)."""
    d, idx = _dim_index("index_add", input, dim, index)
    _check_source("index_add", input, d, idx.size, source)
    if alpha != 1:
        source = mul(source, alpha if dtypes.is_floating(input.dtype) else int(alpha))
    if input.ndim == 0:
        return IndexPut.apply(input, reshape(source, ()), index=Index((Ellipsis,)),
                              accumulate=True)
    return IndexPut.apply(input, source, index=_dim_items(d, idx), accumulate=True)


@autocast_policy("index_copy")
def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of `input` with source's slices written at `index` along `dim`
    (torch.index_copy)."""
    d, idx = _dim_index("index_copy", input, dim, index, int32=False, range_error=IndexError)
    _check_source("index_copy", input, d, idx.size, source)
    if input.ndim == 0:
        return IndexPut.apply(input, reshape(source, ()), index=Index((Ellipsis,)),
                              accumulate=False)
    return IndexPut.apply(input, source, index=_dim_items(d, idx), accumulate=False)


def _fill_value(op: str, input: Tensor, value: Any) -> Any:
    """A fill value in the input's dtype: a number, or a 0-d tensor (cast, differentiably)."""
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"{op}(): only supports a 0-dimensional value tensor, but got "
                               f"tensor with {value.ndim} dimension(s)")
        return value if value.dtype == input.dtype else cast(value, dtype=input.dtype)
    if not isinstance(value, (int, float, bool, np.number, np.bool_)):
        raise TypeError(f"{op}(): value must be a number or a 0-d tensor, got "
                        f"{type(value).__name__}")
    kind = input.dtype.kind
    return bool(value) if kind == "b" else int(value) if kind in "iu" else float(value)


def index_fill(input: Tensor, dim: int, index: Tensor, value: Any) -> Tensor:
    """A copy of `input` with `value` written at `index` along `dim` (torch.index_fill): a
    masked_fill with the mask of the indexed slices, so a 0-d tensor value gets the gradient
    of each filled element once, however often the index repeats it."""
    d, idx = _dim_index("index_fill", input, dim, index, int32=False, dtype_error=IndexError,
                        range_error=IndexError, negative=True)
    value = _fill_value("index_fill", input, value)
    with on_device(input.device):
        mask = input._xp.zeros(input.shape, bool)
        mask[(slice(None),) * d + (idx,) if input.ndim else ()] = True
    return where(Tensor._wrap(mask), value, input)


# -- masks ------------------------------------------------------------------------------------
def _mask(op: str, mask: Any, name: str = "mask") -> Any:
    if not isinstance(mask, Tensor) or mask.dtype != dtypes.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(f"{op}(): only supports boolean masks, but got {name} with dtype "
                           f"{got}")
    return mask.array


def _broadcast(op: str, *shapes: tuple) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise RuntimeError(f"{op}(): shapes {', '.join(str(tuple(s)) for s in shapes)} do not "
                           f"broadcast") from None


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """`input` with `value` (a number or a 0-d tensor) where `mask` is True
    (torch.masked_fill); the mask broadcasts."""
    _mask("masked_fill", mask)
    _broadcast("masked_fill", tuple(input.shape), tuple(mask.shape))
    return where(mask, _fill_value("masked_fill", input, value), input)


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The elements of `input` where `mask` (broadcast together) is True, as a 1-D tensor
    (torch.masked_select)."""
    m = _mask("masked_select", mask)
    shape = _broadcast("masked_select", tuple(input.shape), tuple(mask.shape))
    m = mask._xp.broadcast_to(m, shape)
    return GetItem.apply(expand(input, shape), items=(m,))


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """`input` with source's first elements, in order, where `mask` (broadcast to the input)
    is True (torch.masked_scatter). Each True element's place in `source` is a running count
    of the mask, so no value is read back to the host."""
    m = _mask("masked_scatter", mask)
    if not isinstance(source, Tensor):
        raise TypeError(f"masked_scatter(): argument 'source' must be a Tensor, not "
                        f"{type(source).__name__}")
    if source.dtype != input.dtype:
        raise RuntimeError(f"masked_scatter(): expected self and source to have same dtypes "
                           f"but got {input.dtype} and {source.dtype}")
    shape = _broadcast("masked_scatter", tuple(input.shape), tuple(mask.shape))
    xp, n = mask._xp, source.numel()
    with on_device(input.device):
        m = xp.broadcast_to(m, shape)
        count = m.sum()
        message = (f"masked_scatter(): source has {n} elements, fewer than the True elements "
                   f"of the mask (shape {tuple(mask.shape)})")
        if xp is np:
            if int(count) > n:
                raise RuntimeError(message)
        else:
            checks.defer(count, lambda c: c > n, message)
        if n == 0:
            return clone(expand(input, shape))
        place = xp.clip(xp.cumsum(m.reshape(-1)) - 1, 0, n - 1).reshape(shape)
    picked = GetItem.apply(reshape(source, (-1,)), items=(place,))
    return where(Tensor._wrap(m), picked, expand(input, shape))


# -- nonzero ----------------------------------------------------------------------------------
class Nonzero(Op):
    """The indices of the nonzero elements: an (n, ndim) int64 tensor, or one vector per dim
    (`as_tuple`). Its size depends on the values, so a GPU input makes the host wait."""

    op_name, differentiable = "nonzero", False

    @staticmethod
    def forward(ctx, x, as_tuple):
        xp, a = x._xp, x.array
        if a.ndim == 0:  # NOTE: torch takes a 0-d input as shape (1,), with no dims to index
            a = a.reshape(1)
            if not as_tuple:
                return xp.zeros((int(xp.count_nonzero(a)), 0), np.int64)
        if as_tuple:
            return tuple(i.astype(np.int64, copy=False) for i in xp.nonzero(a))
        return xp.argwhere(a).astype(np.int64, copy=False)


def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:
    """torch.nonzero: the indices of the nonzero elements of `input`, as an (n, ndim) tensor,
    or with `as_tuple` a tuple of one index vector per dim (what `x[...]` takes)."""
    return Nonzero.apply(input, as_tuple=bool(as_tuple))


def argwhere(input: Tensor) -> Tensor:
    """torch.argwhere: nonzero(input) as an (n, ndim) tensor."""
    return Nonzero.apply(input, as_tuple=False)


class Cat(Op):
    op_name = "cat"

    @staticmethod
    def forward(ctx, *tensors, dim):
        ctx.dim, ctx.sizes = dim, [t.shape[dim] for t in tensors]
        ctx.dtypes = [t.dtype for t in tensors]
        arrays = operand_arrays("cat", *tensors, dtype=result_dtype(*tensors))
        return tensors[0]._xp.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        pieces = split_sizes(g, ctx.sizes, ctx.dim)
        return tuple(p if p.dtype == dt else p.to(dt) for p, dt in zip(pieces, ctx.dtypes))


class Split(Op):
    op_name = "split"
    is_view = True  # its outputs are views that cannot be retaken alone, as torch's

    @staticmethod
    def forward(ctx, x, sizes, dim):
        ctx.dim, ctx.shape = dim, x.shape
        ctx.sizes = sizes
        lead = (slice(None),) * dim
        starts = np.cumsum((0,) + tuple(sizes[:-1]))
        return tuple(x.array[lead + (slice(int(s), int(s) + n),)] for s, n in zip(starts, sizes))

    @staticmethod
    def backward(ctx, *grads):
        parts = []
        for g, n in zip(grads, ctx.sizes):
            if g is None:
                shape = list(ctx.shape)
                shape[ctx.dim] = n
                ref = next(x for x in grads if x is not None)
                g = Tensor._wrap(array_module(ref.array).zeros(tuple(shape), ref.dtype))
            parts.append(g)
        return cat(parts, ctx.dim)


def _tensor_list(op: str, tensors: Any) -> list:
    """The tensors cat and stack join: a non-empty sequence of Tensors, as a list."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__} at position {i}")
    return tensors


def cat(tensors: Any, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension (torch.cat)."""
    tensors = _tensor_list("cat", tensors)
    first = tensors[0]
    d = normalize_dim("cat", dim, first.ndim)
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or any(a != b for k, (a, b) in
                                       enumerate(zip(t.shape, first.shape)) if k != d):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}; "
                               f"tensor 0 has shape {tuple(first.shape)} and tensor {i} has "
                               f"shape {tuple(t.shape)}")
    return Cat.apply(*tensors, dim=d)


def stack(tensors: Any, dim: int = 0) -> Tensor:
    """Join equally shaped tensors along a new dimension (torch.stack)."""
    tensors = _tensor_list("stack", tensors)
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got "
                               f"{tuple(tensors[0].shape)} at entry 0 and {tuple(t.shape)} at "
                               f"entry {i}")
    d = normalize_dim("stack", dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


def split_sizes(x: Tensor, sizes: list, dim: int) -> tuple:
    return Split.apply(x, sizes=tuple(sizes), dim=dim) if len(sizes) > 1 else (x,)


def split(x: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple:
    """Split into pieces of a given size, or of the listed sizes (torch.split)."""
    d = normalize_dim("split", dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(f"split: sizes {sizes} must be non-negative and sum to the size "
                               f"{n} of dimension {d} (shape {tuple(x.shape)})")
    else:
        size = int(split_size_or_sections)
        if size <= 0:
            raise RuntimeError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
        sizes = sizes or [0]
    return split_sizes(x, sizes, d)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into `chunks` nearly equal pieces, the last possibly smaller (torch.chunk)."""
    if chunks <= 0:
        raise RuntimeError(f"chunk: expects `chunks` to be greater than 0, got {chunks}")
    d = normalize_dim("chunk", dim, x.ndim)
    n = x.shape[d]
    size = -(-n // chunks) if n else 1
    return split(x, size, d)


# -- index_reduce (round 2) -------------------------------------------------------------------
_INDEX_REDUCES = ("prod", "mean", "amax", "amin")


def index_reduce(input: Tensor, dim: int, index: Tensor, source: Tensor, reduce: str, *,
                 include_self: bool = True) -> Tensor:
    """A copy of `input` with source's slices reduced into it at `index` along `dim` by
    `reduce` (prod, mean, amax, amin), the input's own values included unless
    include_self=False (torch.index_reduce): scatter_reduce with the index spread over
    source's shape, so it has scatter_reduce's gradients."""
    op = "index_reduce"
    if reduce not in _INDEX_REDUCES:
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or "
                           f"amin but got {reduce}.")
    d, idx = _dim_index(op, input, dim, index, range_error=IndexError)
    _check_source(op, input, d, idx.size, source)
    if input.ndim == 0:
        return reshape(index_reduce(reshape(input, (1,)), 0, Tensor._wrap(idx),
                                    reshape(source, (1,)), reduce, include_self=include_self),
                       ())
    xp = input._xp
    spread = [1] * input.ndim
    spread[d] = idx.size
    full = xp.broadcast_to(idx.astype(np.int64).reshape(spread), tuple(source.shape))
    return ScatterReduce.apply(input, source, index=Tensor._wrap(full), dim=d, reduce=reduce,
                               include_self=bool(include_self))
