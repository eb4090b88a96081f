"""The op -> ONNX mapping: one function per gradflow Op class (`MAPPINGS`), and the rows of
the elementwise tables (`UNARY`, `COMPARE`, by op name). Each function emits the nodes of one
recorded op (`Node`) into the graph `g`, writing its outputs under their recorded names.

Numbers beside tensors become constants of the op's computing dtype, and tensor operands are
cast to it, since ONNX has no type promotion.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..nn.functional.sparse import EmbeddingLookup
from ..ops import batchnorm, conv, elementwise, index, matmul, pad, pool, reduce, shape
from ..ops.pool_arrays import window_counts
from ..ops.util import result_dtype
from .graph import Graph, tensor_type
from .trace import Node, Value, host

_BIG = np.iinfo(np.int64).max  # a slice's open end


def out(n: Node, i: int = 0) -> list:
    return [n.outputs[i].name]


def operand(g: Graph, n: Node, i: int, dtype: Any = None) -> str:
    """Input i as an ONNX name, of `dtype` when given (a number becomes a constant)."""
    v = n.inputs[i]
    if isinstance(v, Value):
        name = g.name(v)
        return name if dtype is None else g.cast(name, v.dtype, dtype)
    return g.const(v, dtype=dtype if dtype is not None else n.outputs[0].dtype)


def _compute_dtype(n: Node) -> np.dtype:
    return result_dtype(*[a for a in n.args if a is not None])


# -- elementwise --------------------------------------------------------------------------------
def _arithmetic(op_type: str) -> Callable:
    def emit(g: Graph, n: Node) -> None:
        dt = n.outputs[0].dtype
        g.node(op_type, [operand(g, n, 0, dt), operand(g, n, 1, dt)], out(n))
    emit.__doc__ = f"{op_type} of two operands in the result's dtype."
    return emit


def neg(g: Graph, n: Node) -> None:
    g.node("Neg", [operand(g, n, 0)], out(n))


def where(g: Graph, n: Node) -> None:
    dt = n.outputs[0].dtype
    g.node("Where", [operand(g, n, 0), operand(g, n, 1, dt), operand(g, n, 2, dt)], out(n))


def clamp(g: Graph, n: Node) -> None:
    """Max with the lower bound, then Min with the upper one (either may be absent)."""
    dt = n.outputs[0].dtype
    x = operand(g, n, 0, dt)
    lo, hi = n.inputs[1], n.inputs[2]
    if lo is not None:
        x = g.node("Max", [x, operand(g, n, 1, dt)], out(n) if hi is None else None)
    if hi is not None:
        g.node("Min", [x, operand(g, n, 2, dt)], out(n))
    elif lo is None:
        g.node("Identity", [x], out(n))


def extreme(g: Graph, n: Node) -> None:
    dt = n.outputs[0].dtype
    op_type = "Max" if n.op.largest else "Min"
    g.node(op_type, [operand(g, n, 0, dt), operand(g, n, 1, dt)], out(n))


def cast(g: Graph, n: Node) -> None:
    g.node("Cast", [operand(g, n, 0)], out(n), to=tensor_type(g.onnx, n.outputs[0].dtype))


def identity(g: Graph, n: Node) -> None:
    g.node("Identity", [operand(g, n, 0)], out(n))


def _chain(*steps: Any) -> Callable:
    """A unary row made of several ONNX ops: each step an op type applied to the running
    value, or (op type, number, number_first) combining it with a constant."""
    def emit(g: Graph, x: str, dtype: np.dtype, result: list) -> None:
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            if isinstance(step, str):
                x = g.node(step, [x], result if last else None)
            else:
                op_type, number, first = step
                c = g.const(number, dtype)
                x = g.node(op_type, [c, x] if first else [x, c], result if last else None)
    return emit


def _isfinite(g: Graph, x: str, dtype: np.dtype, result: list) -> None:
    bad = g.node("Or", [g.node("IsInf", [x]), g.node("IsNaN", [x])])
    g.node("Not", [bad], result)


def _square(g: Graph, x: str, dtype: np.dtype, result: list) -> None:
    g.node("Mul", [x, x], result)


# op name -> an ONNX op type, or an emitter (g, x, dtype, outputs) of several
UNARY: dict[str, Any] = {
    "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "sin": "Sin", "cos": "Cos",
    "tan": "Tan", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "erf": "Erf",
    "asin": "Asin", "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh",
    "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "floor": "Floor", "ceil": "Ceil",
    "sign": "Sign", "sgn": "Sign", "reciprocal": "Reciprocal", "round": "Round",
    "rsqrt": _chain("Sqrt", "Reciprocal"),
    "square": _square,
    "log1p": _chain(("Add", 1, False), "Log"),
    "expm1": _chain("Exp", ("Sub", 1, False)),
    "log2": _chain("Log", ("Div", math.log(2), False)),
    "log10": _chain("Log", ("Div", math.log(10), False)),
    "exp2": _chain(("Pow", 2, True)),
    "erfc": _chain("Erf", ("Sub", 1, True)),
}


def unary(g: Graph, n: Node) -> None:
    """A row of elementwise.Unary's table; integer inputs are cast to the result's dtype
    first, as the op does."""
    if n.kwargs.get("decimals", 0) and n.op.op_name == "round":
        raise NotImplementedError("round with decimals")
    dt = n.outputs[0].dtype
    x = operand(g, n, 0, dt)
    row = UNARY[n.op.op_name]
    if isinstance(row, str):
        g.node(row, [x], out(n))
    else:
        row(g, x, dt, out(n))


# op name -> (ONNX op type, negate the result)
COMPARE = {"eq": ("Equal", False), "ne": ("Equal", True), "lt": ("Less", False),
           "le": ("LessOrEqual", False), "gt": ("Greater", False),
           "ge": ("GreaterOrEqual", False), "logical_and": ("And", False),
           "logical_or": ("Or", False), "logical_xor": ("Xor", False)}
PREDICATES = {"isnan": "IsNaN", "isinf": "IsInf", "logical_not": "Not"}


def nondifferentiable(g: Graph, n: Node) -> None:
    """Comparisons and logical ops (operands in their common dtype; logical ones as bool)."""
    name = n.op.op_name
    if name in PREDICATES:
        dt = np.dtype(bool) if name == "logical_not" else None
        g.node(PREDICATES[name], [operand(g, n, 0, dt)], out(n))
        return
    if name == "isfinite":
        _isfinite(g, operand(g, n, 0), n.inputs[0].dtype, out(n))
        return
    op_type, negate = COMPARE[name]
    dt = np.dtype(bool) if name.startswith("logical") else _compute_dtype(n)
    args = [operand(g, n, 0, dt), operand(g, n, 1, dt)]
    if negate:
        g.node("Not", [g.node(op_type, args)], out(n))
    else:
        g.node(op_type, args, out(n))


# -- shapes and indexing ------------------------------------------------------------------------
def reshape(g: Graph, n: Node) -> None:
    """Reshape to the recorded shape; a leading run of sizes kept from the input is written 0
    (copy the input's size), and the first size after it other than 1 is written -1, so a
    dynamic batch axis follows (into the channels and back, as instance norm folds it)."""
    src, dst = n.inputs[0].shape, n.outputs[0].shape
    target = list(dst)
    keep = 0
    while keep < min(len(src), len(dst)) and src[keep] == dst[keep]:
        keep += 1
    target[:keep] = [0] * keep
    free = [i for i in range(keep, len(dst)) if dst[i] != 1]
    if free and 0 not in dst:
        target[free[0]] = -1
    if 0 in dst:  # an empty tensor: the zeros are sizes, not copies
        target = list(dst)
        g.node("Reshape", [operand(g, n, 0), g.ints(target)], out(n), allowzero=1)
        return
    g.node("Reshape", [operand(g, n, 0), g.ints(target)], out(n))


def permute(g: Graph, n: Node) -> None:
    g.node("Transpose", [operand(g, n, 0)], out(n), perm=list(n.kwargs["dims"]))


def expand(g: Graph, n: Node) -> None:
    """Expand, with 1 wherever the input already has the size (so it follows a dynamic
    axis)."""
    src, dst = n.inputs[0].shape, n.outputs[0].shape
    lead = len(dst) - len(src)
    target = [1 if i >= lead and src[i - lead] == s else s for i, s in enumerate(dst)]
    g.node("Expand", [operand(g, n, 0), g.ints(target)], out(n))


def narrow(g: Graph, n: Node) -> None:
    k = n.kwargs
    g.node("Slice", [operand(g, n, 0), g.ints([k["start"]]), g.ints([k["start"] + k["length"]]),
                     g.ints([k["dim"]])], out(n))


def unbind(g: Graph, n: Node) -> None:
    d = n.kwargs["dim"]
    parts = g.node("Split", [operand(g, n, 0), g.ints([1] * len(n.outputs))], len(n.outputs),
                   axis=d)
    for i, p in enumerate(parts):
        g.node("Squeeze", [p, g.ints([d])], out(n, i))


def split(g: Graph, n: Node) -> None:
    g.node("Split", [operand(g, n, 0), g.ints(n.kwargs["sizes"])],
           [v.name for v in n.outputs], axis=n.kwargs["dim"])


def cat(g: Graph, n: Node) -> None:
    dt = n.outputs[0].dtype
    g.node("Concat", [operand(g, n, i, dt) for i in range(len(n.inputs))], out(n),
           axis=n.kwargs["dim"])


def constant_pad(g: Graph, n: Node) -> None:
    """Pad's pads are all the starts, then all the ends; negative widths crop."""
    widths = n.kwargs["widths"]
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    dt = n.outputs[0].dtype
    g.node("Pad", [operand(g, n, 0), g.ints(pads), g.const(n.kwargs["value"], dt)], out(n),
           mode="constant")


def _index_array(g: Graph, n: Node, array: Any) -> str:
    """An index array of getitem: the recorded value that made it, else a constant."""
    made = n.arrays.get(id(array))
    if made is not None:
        return g.cast(g.name(made), made.dtype, np.int64)
    return g.const(host(array).astype(np.int64))


def getitem(g: Graph, n: Node) -> None:
    """x[items] for NumPy-style items: the basic ones (ints, slices, None, Ellipsis) as one
    Slice, a Squeeze of the int axes and an Unsqueeze of the new ones; one integer (or
    constant bool) array among slices as a Gather on its axis."""
    items = n.kwargs["items"]
    src = n.inputs[0]
    specified = sum(it is not None and it is not Ellipsis for it in items)
    expanded: list = []
    for it in items:
        expanded += [slice(None)] * (len(src.shape) - specified) if it is Ellipsis else [it]
    arrays = [i for i, it in enumerate(expanded) if hasattr(it, "shape")]
    if len(arrays) > 1 or (arrays and any(it is None for it in expanded)):
        raise NotImplementedError("getitem with more than one index tensor (or an index "
                                  "tensor beside None)")
    x = operand(g, n, 0)
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = position = 0
    gather = None
    for it in expanded:
        if it is None:
            unsqueeze.append(position)
            position += 1
            continue
        if isinstance(it, slice):
            if it != slice(None) and it != slice(None, None, 1):
                starts.append(0 if it.start is None else it.start)
                ends.append(_BIG if it.stop is None else it.stop)
                axes.append(dim)
                steps.append(1 if it.step is None else it.step)
            position += 1
        elif hasattr(it, "shape"):
            gather = (dim, it)
            position += 1
        else:  # an int: a one-element slice, then squeezed
            i = int(it)
            starts.append(i)
            ends.append(_BIG if i == -1 else i + 1)
            axes.append(dim)
            steps.append(1)
            squeeze.append(dim)
        dim += 1
    last = not squeeze and not unsqueeze and gather is None
    if axes:
        x = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)],
                   out(n) if last else None)
    if gather is not None:
        d, array = gather
        if array.dtype == np.bool_:
            if n.arrays.get(id(array)) is not None or array.ndim != 1:
                raise NotImplementedError("getitem with a computed or multi-dim bool mask "
                                          "(its result's shape depends on the data)")
            array = np.nonzero(host(array))[0]
        ind = _index_array(g, n, array)
        # NOTE: the int axes before the gathered one are still there (squeezed afterwards).
        # NumPy counts those ints as advanced indices too: when one lies apart from the
        # array (a slice between), the array's dims go first, else where the array was.
        front = bool(squeeze) and any(
            s < d and any(isinstance(it, slice) for it in expanded[s + 1:d]) or
            s > d and any(isinstance(it, slice) for it in expanded[d + 1:s]) for s in squeeze)
        last = not squeeze and not unsqueeze
        x = g.node("Gather", [x, ind], out(n) if last else None, axis=d)
        if squeeze:
            shift = array.ndim - 1
            squeeze = [s if s < d else s + shift for s in squeeze]
            if front:
                x = g.node("Squeeze", [x, g.ints(squeeze)])
                q = d - sum(s < d for s in squeeze)
                rank = len(n.outputs[0].shape)
                moved = list(range(q, q + array.ndim))
                perm = moved + [i for i in range(rank) if i not in moved]
                g.node("Transpose", [x], out(n), perm=perm)
                return
    if squeeze:
        x = g.node("Squeeze", [x, g.ints(squeeze)], out(n) if not unsqueeze else None)
    if unsqueeze:
        g.node("Unsqueeze", [x, g.ints(unsqueeze)], out(n))
    elif not axes and gather is None and not squeeze:
        g.node("Identity", [x], out(n))


def embedding(g: Graph, n: Node) -> None:
    """weight[index] as a Gather of the rows (indices no recorded op made are constants)."""
    g.node("Gather", [operand(g, n, 0), _index_array(g, n, n.kwargs["index"])], out(n), axis=0)


# -- reductions ---------------------------------------------------------------------------------
def _axes(n: Node) -> list:
    axes = n.kwargs.get("axes")
    ndim = len(n.inputs[0].shape)
    return list(range(ndim)) if axes is None else [a % max(ndim, 1) for a in axes]


def _reduce(op_type: str) -> Callable:
    def emit(g: Graph, n: Node) -> None:
        dt = n.outputs[0].dtype
        x = operand(g, n, 0, dt)
        axes = _axes(n)
        keepdims = int(bool(n.kwargs.get("keepdim", False)))
        if not axes:
            g.node("Identity", [x], out(n))
            return
        g.axes_input(op_type, x, axes, out(n), keepdims=keepdims)
    emit.__doc__ = f"{op_type} over the recorded axes."
    return emit


def extreme_along_dim(g: Graph, n: Node) -> None:
    """max/min along a dim: the values and their indices."""
    d, keep = n.kwargs["dim"], int(bool(n.kwargs["keepdim"]))
    x = operand(g, n, 0)
    big = n.op.largest
    g.axes_input("ReduceMax" if big else "ReduceMin", x, [d], out(n, 0), keepdims=keep)
    g.node("ArgMax" if big else "ArgMin", [x], out(n, 1), axis=d, keepdims=keep)


def extreme_index(g: Graph, n: Node) -> None:
    """argmax/argmin along a dim, or of the flattened tensor (dim None)."""
    d, keep = n.kwargs.get("dim"), int(bool(n.kwargs.get("keepdim", False)))
    x = operand(g, n, 0)
    op_type = "ArgMax" if n.op.largest else "ArgMin"
    if d is None:
        flat = g.node("Reshape", [x, g.ints([-1])])
        arg = g.node(op_type, [flat], axis=0, keepdims=0)
        g.node("Reshape", [arg, g.ints(n.outputs[0].shape)], out(n))
        return
    g.node(op_type, [x], out(n), axis=d, keepdims=keep)


def batch_norm_batch_stats(g: Graph, n: Node) -> None:
    """Batch norm by the batch's own statistics (training, or no running statistics, as
    instance norm and track_running_stats=False have): (x - mean) / sqrt(var + eps), then the
    affine map. The running averages' update is not part of the graph."""
    x = n.inputs[0]
    dt = x.dtype
    ndim = len(x.shape)
    axes = [0] + list(range(2, ndim))
    name = operand(g, n, 0)
    mean = g.axes_input("ReduceMean", name, axes, keepdims=1)
    centred = g.node("Sub", [name, mean])
    var = g.axes_input("ReduceMean", g.node("Mul", [centred, centred]), axes, keepdims=1)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(n.kwargs["eps"], dt)])])
    weight, bias = n.inputs[1], n.inputs[2]
    y = g.node("Div", [centred, std], out(n) if weight is None and bias is None else None)
    channel = [1, -1] + [1] * (ndim - 2)
    for i, (v, op_type) in enumerate(((weight, "Mul"), (bias, "Add"))):
        if v is not None:
            last = i == 1 or bias is None
            per_channel = g.node("Reshape", [operand(g, n, 1 + i, dt), g.ints(channel)])
            y = g.node(op_type, [y, per_channel], out(n) if last else None)


# -- dense layers and convolution ----------------------------------------------------------------
def matmul_(g: Graph, n: Node) -> None:
    g.node("MatMul", [operand(g, n, 0), operand(g, n, 1)], out(n))


def linear(g: Graph, n: Node) -> None:
    """x W^T + b: Gemm for a 2-D x, else MatMul with W^T and an Add."""
    x, w = operand(g, n, 0), operand(g, n, 1)
    bias = operand(g, n, 2) if len(n.inputs) > 2 and n.inputs[2] is not None else None
    if len(n.inputs[0].shape) == 2:
        g.node("Gemm", [x, w] + ([bias] if bias else []), out(n), transB=1)
        return
    product = g.node("MatMul", [x, g.node("Transpose", [w], perm=[1, 0])],
                     None if bias else out(n))
    if bias:
        g.node("Add", [product, bias], out(n))


def _conv_attrs(window: Any, groups: int) -> dict:
    pt, pb, pl, pr = window.padding
    return dict(kernel_shape=list(window.kernel), strides=list(window.stride),
                dilations=list(window.dilation), pads=[pt, pl, pb, pr], group=groups)


def conv2d(g: Graph, n: Node) -> None:
    """Conv; the bias is the Add after it that gradflow records."""
    g.node("Conv", [operand(g, n, 0), operand(g, n, 1)], out(n),
           **_conv_attrs(n.kwargs["window"], n.kwargs["groups"]))


def conv_transpose2d(g: Graph, n: Node) -> None:
    """conv2d's input gradient as ConvTranspose; output_padding makes up the recorded size."""
    window, groups = n.kwargs["window"], n.kwargs["groups"]
    attrs = _conv_attrs(window, groups)
    x, w = n.inputs[0].shape, n.inputs[1].shape
    extra = []
    for i in range(2):
        lo, hi = attrs["pads"][i], attrs["pads"][i + 2]
        natural = (x[2 + i] - 1) * window.stride[i] + window.dilation[i] * (w[2 + i] - 1) + 1
        extra.append(n.outputs[0].shape[2 + i] - (natural - lo - hi))
    g.node("ConvTranspose", [operand(g, n, 0), operand(g, n, 1)], out(n),
           output_padding=extra if any(extra) else None, **attrs)


# -- pooling ------------------------------------------------------------------------------------
def max_pool2d(g: Graph, n: Node) -> None:
    """MaxPool with the recorded window, whose end padding already holds ceil_mode's
    overhang; the indices output has no mapping."""
    g.unsupported[n.outputs[1].name] = "max_pool2d's indices (return_indices=True)"
    window = n.kwargs["window"]
    pt, pb, pl, pr = window.padding
    g.node("MaxPool", [operand(g, n, 0)], out(n), kernel_shape=list(window.kernel),
           strides=list(window.stride), dilations=list(window.dilation),
           pads=[pt, pl, pb, pr])


def _avg_pool(g: Graph, x: str, dtype: np.dtype, in_shape: tuple, out_shape: tuple,
              kernel: tuple, stride: tuple, padding: tuple, count_include_pad: bool,
              divisor: Any, result: list) -> None:
    """torch's avg_pool2d. Without ceil_mode's overhang or a divisor, AveragePool itself;
    else each window's sum (AveragePool over the zero-padded input times the window's
    size) over torch's divisor, a constant."""
    n_in, n_out = in_shape[2:], out_shape[2:]
    extra = [max((o - 1) * s + k - (m + 2 * p), 0)
             for m, o, k, s, p in zip(n_in, n_out, kernel, stride, padding)]
    pads = [padding[0], padding[1], padding[0] + extra[0], padding[1] + extra[1]]
    attrs = dict(kernel_shape=list(kernel), strides=list(stride), pads=pads)
    if not any(extra) and divisor is None:
        g.node("AveragePool", [x], result, count_include_pad=int(count_include_pad), **attrs)
        return
    mean = g.node("AveragePool", [x], count_include_pad=1, **attrs)
    total = g.node("Mul", [mean, g.const(kernel[0] * kernel[1], dtype)])
    if divisor is None:
        counts = [window_counts(m, o, k, s, p, count_include_pad) for m, o, k, s, p in
                  zip(n_in, n_out, kernel, stride, padding)]
        divisor = np.outer(*counts)
    g.node("Div", [total, g.const(divisor, dtype)], result)


def avg_pool2d(g: Graph, n: Node) -> None:
    geometry = n.kwargs["pool"].forward.keywords
    x = n.inputs[0]
    _avg_pool(g, operand(g, n, 0), x.dtype, x.shape, n.outputs[0].shape, geometry["kernel"],
              geometry["stride"], geometry["padding"], geometry["count_include_pad"],
              geometry["divisor"], out(n))


def adaptive_avg_pool2d(g: Graph, n: Node) -> None:
    """GlobalAveragePool for a 1x1 output, AveragePool where the cells tile the input, else
    a product with the constant matrix of the cells' means."""
    x = n.inputs[0]
    (h, w), (oh, ow) = x.shape[2:], n.outputs[0].shape[2:]
    name = operand(g, n, 0)
    result = out(n)
    if (oh, ow) == (1, 1):
        g.node("GlobalAveragePool", [name], result)
    elif h % oh == 0 and w % ow == 0:
        k = (h // oh, w // ow)
        _avg_pool(g, name, x.dtype, x.shape, n.outputs[0].shape, k, k, (0, 0), True, None, result)
    else:
        weights = np.outer(*[_adaptive_matrix(m, o) for m, o in ((h, oh), (w, ow))])
        # NOTE: outer of (h, oh) and (w, ow) -> (h*oh, w*ow); laid out as (h*w, oh*ow)
        weights = weights.reshape(h, oh, w, ow).transpose(0, 2, 1, 3).reshape(h * w, oh * ow)
        flat = g.node("Reshape", [name, g.ints([0, 0, -1])])
        cells = g.node("MatMul", [flat, g.const(weights, x.dtype)])
        g.node("Reshape", [cells, g.ints([0, 0, oh, ow])], result)


def _adaptive_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out): the weight of input cell i in output cell j of torch's adaptive windows."""
    m = np.zeros((n_in, n_out))
    for j in range(n_out):
        start, end = j * n_in // n_out, -(-(j + 1) * n_in // n_out)
        m[start:end, j] = 1 / (end - start)
    return m


MAPPINGS: dict[type, Callable[[Graph, Node], None]] = {
    elementwise.Add: _arithmetic("Add"), elementwise.Sub: _arithmetic("Sub"),
    elementwise.Mul: _arithmetic("Mul"), elementwise.Div: _arithmetic("Div"),
    elementwise.Pow: _arithmetic("Pow"), elementwise.Neg: neg,
    elementwise.Where: where, elementwise.Clamp: clamp,
    elementwise.Maximum: extreme, elementwise.Minimum: extreme,
    elementwise.Cast: cast, elementwise.ToDevice: identity, elementwise.Clone: identity,
    shape.Contiguous: identity,
    shape.Reshape: reshape, shape.View: reshape, shape.Permute: permute,
    shape.Expand: expand, shape.Narrow: narrow, shape.Unbind: unbind,
    index.Cat: cat, index.Split: split, index.GetItem: getitem, pad.ConstantPad: constant_pad,
    EmbeddingLookup: embedding,
    reduce.Sum: _reduce("ReduceSum"), reduce.Mean: _reduce("ReduceMean"),
    reduce.Prod: _reduce("ReduceProd"),
    reduce.Amax: _reduce("ReduceMax"), reduce.Amin: _reduce("ReduceMin"),
    reduce.MaxDim: extreme_along_dim, reduce.MinDim: extreme_along_dim,
    reduce.Argmax: extreme_index, reduce.Argmin: extreme_index,
    batchnorm.BatchNormTrain: batch_norm_batch_stats,
    matmul.Matmul: matmul_, matmul.LinearProduct: linear,
    conv.Conv2d: conv2d, conv.Conv2dGradInput: conv_transpose2d,
    pool.MaxPool2d: max_pool2d, pool.LinearPool: avg_pool2d,
    pool.AdaptiveLinearPool: adaptive_avg_pool2d,
}


def softmax(g: Graph, n: Node) -> None:
    """Softmax along the recorded dim; `safe` (attention's) gives zeros, not NaN, for a
    slice that is all -inf."""
    result = out(n)
    y = g.node("Softmax", [operand(g, n, 0)], None if n.kwargs.get("safe") else result,
               axis=n.kwargs["dim"])
    if n.kwargs.get("safe"):
        zero = g.const(0, n.outputs[0].dtype)
        g.node("Where", [g.node("IsNaN", [y]), zero, y], result)


# ops by (module, op name), for the op families that are not imported here
BY_NAME: dict[tuple, Callable[[Graph, Node], None]] = {
    ("gradflow.ops.softmax", "softmax"): softmax,
}


def mapping(op: type) -> Callable[[Graph, Node], None] | None:
    """The function that converts op `op`, None where it has none."""
    name = getattr(op, "op_name", None)
    found = MAPPINGS.get(op) or BY_NAME.get((op.__module__, name))
    if found is not None:
        return found
    if issubclass(op, elementwise.Unary) and name in UNARY:
        return unary
    if issubclass(op, elementwise.NonDifferentiable) and (
            name in COMPARE or name in PREDICATES or name == "isfinite"):
        return nondifferentiable
    return None
