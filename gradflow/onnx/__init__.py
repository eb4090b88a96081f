"""ONNX export (torch.onnx.export): record one forward pass of a model and write it as an ONNX
graph, checked with `onnx.checker`.

The model runs once in eval mode (torch's default, TrainingMode.EVAL; each module's mode is
restored afterwards) under no_grad, while a tracer (gradflow.onnx.trace) records every op
`Function.apply` runs; gradflow.onnx.ops maps each op to ONNX nodes. As with torch's tracer,
Python control flow and Python numbers (shapes read from tensors included) are baked into the
graph, as are tensors created inside forward. Parameters, buffers and other tensors no recorded
op made become initializers. `onnx` is an optional extra: `pip install gradflow[onnx]`.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .graph import Graph, tensor_type
from .ops import mapping
from .trace import Tracer

__all__ = ["export"]

MIN_OPSET = 13  # Split, Squeeze, Unsqueeze and ReduceSum take their axes as inputs from 13


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as err:
        raise ImportError("gradflow.onnx.export needs the `onnx` package (and `onnxruntime` to "
                          "run the exported model): install the extra with "
                          "`pip install gradflow[onnx]`") from err
    return onnx


def export(model: Any, args: Any, f: Any, input_names: list | None = None,
           output_names: list | None = None, dynamic_axes: dict | None = None,
           opset_version: int = 17, do_constant_folding: bool = True) -> Any:
    """Export `model` (a Module, or any callable of tensors) run on `args` to ONNX
    (torch.onnx.export's arguments): `args` a tensor or a tuple of arguments, the last of
    which may be a dict of keyword arguments; `f` a path or a binary file object. The graph
    inputs are the tensors among `args`, named by `input_names` (else input_0, ...), its
    outputs the tensors the model returns (alone, or in a tuple, list or dict), named by
    `output_names` (else output_0, ...). `dynamic_axes` marks axes of those names as
    symbolic: {name: {axis: "batch"}} or {name: [axes]}. With `do_constant_folding`, ops
    whose inputs are all constants are computed now and stored as initializers. Returns the
    ModelProto."""
    onnx = _require_onnx()
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset_version, int) or not MIN_OPSET <= opset_version <= newest:
        raise ValueError(f"onnx.export: opset_version must be an int from {MIN_OPSET} to "
                         f"{newest} (this onnx's newest), got {opset_version!r}")
    positional, kwargs = _split_args(args)
    tensors = [a for a in positional if isinstance(a, Tensor)]
    in_names = _names("input_names", input_names, len(tensors), "input")
    tracer = Tracer(fold=do_constant_folding, names=_state_names(model))
    tracer.taken.update(output_names or ())
    for t, name in zip(tensors, in_names):
        tracer.add_input(t, name)
    result = _run(model, positional, kwargs, tracer)
    outs = _flatten_outputs(result)
    out_names = _names("output_names", output_names, len(outs), "output")
    tracer.taken.update(out_names)
    outputs = [tracer.value_of(t) for t in outs]
    graph = Graph(onnx, opset_version, tracer.fresh)
    for node in tracer.nodes:
        _convert(graph, node)
    _name_outputs(graph, outputs, out_names, set(in_names))
    _warn_unused(graph, in_names, out_names)
    axes = _dynamic_axes(dynamic_axes, in_names + out_names)
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            [n for n in graph.nodes], _graph_name(model),
            [_value_info(onnx, name, t.dtype, t.shape, axes.get(name, {}))
             for t, name in zip(tensors, in_names)],
            [_value_info(onnx, name, v.dtype, v.shape, axes.get(name, {}))
             for v, name in zip(outputs, out_names)],
            graph.tensors()),
        opset_imports=[onnx.helper.make_opsetid("", opset_version)],
        producer_name="gradflow")
    # NOTE: ONNX files written by a newer onnx than the runtime knows are refused by it; the
    # IR version of the opset's own release is the one every runtime of that opset reads
    proto.ir_version = min(proto.ir_version, _ir_version(onnx, opset_version))
    onnx.checker.check_model(proto, full_check=True)
    _save(onnx, proto, f)
    return proto


def _split_args(args: Any) -> tuple:
    """(positional arguments, keyword arguments) from torch's `args` forms."""
    if isinstance(args, Tensor):
        return (args,), {}
    if not isinstance(args, tuple):
        args = (args,)
    if args and isinstance(args[-1], dict):
        return args[:-1], dict(args[-1])
    return args, {}


def _names(what: str, names: list | None, count: int, stem: str) -> list:
    if names is None:
        return [f"{stem}_{i}" for i in range(count)]
    names = list(names)
    if len(names) > count or len(set(names)) != len(names):
        raise ValueError(f"onnx.export: {what} must name the {count} graph {stem}(s) once "
                         f"each, got {names}")
    return names + [f"{stem}_{i}" for i in range(len(names), count)]


def _state_names(model: Any) -> dict:
    """Parameters and buffers by id -> their state_dict names, the initializers' names."""
    names: dict = {}
    if hasattr(model, "named_parameters"):
        for name, p in model.named_parameters():
            names.setdefault(id(p), name)
        for name, b in model.named_buffers():
            names.setdefault(id(b), name)
    return names


def _run(model: Any, args: tuple, kwargs: dict, tracer: Tracer) -> Any:
    """One forward pass in eval mode under no_grad, recorded, with the module stack kept by
    forward hooks; the modules' modes are restored after."""
    modules = list(model.named_modules()) if hasattr(model, "named_modules") else []
    modes = [(m, m.training) for _, m in modules]
    handles = []
    for name, m in modules:
        def push(module: Any, inputs: Any, qual: str = name) -> None:
            tracer.modules.append((qual, type(module).__name__))

        def pop(module: Any, inputs: Any, output: Any) -> None:
            tracer.modules.pop()
        handles.append(m.register_forward_pre_hook(push))
        handles.append(m.register_forward_hook(pop, always_call=True))
    try:
        for m, _ in modes:
            m.training = False
        with no_grad(), tracer:
            return model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training


def _flatten_outputs(result: Any) -> list:
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in _flatten_outputs(r)]
    raise TypeError(f"onnx.export: the model must return tensors (alone, or in tuples, lists "
                    f"or dicts), got {type(result).__name__}")


def _where(node: Any) -> str:
    qual, kind = node.module
    return f"module {qual} ({kind})" if qual else f"the model ({kind})" if kind else "the model"


def _convert(graph: Graph, node: Any) -> None:
    """Emit one recorded op; an op without a mapping is an error naming it and its module."""
    label = node.op.label()
    emit = mapping(node.op)
    if emit is None:
        raise RuntimeError(f"onnx.export: op {label} ({node.op.__qualname__}) has no ONNX "
                           f"mapping; it ran in {_where(node)}")
    graph.module = node.module[0].replace(".", "/")
    try:
        emit(graph, node)
    except NotImplementedError as err:
        raise RuntimeError(f"onnx.export: op {label} in {_where(node)}: {err} has no ONNX "
                           "mapping") from None


def _name_outputs(graph: Graph, outputs: list, names: list, inputs: set) -> None:
    """Give the graph outputs their names: the node that makes one is renamed; a graph
    input, a constant or a value returned twice goes through an Identity."""
    renamed: dict = {}
    for v, name in zip(outputs, names):
        if v.const is None and v.name not in inputs and v.name not in renamed.values() and \
                v.name not in renamed:
            renamed[v.name] = name
        else:
            graph.node("Identity", [renamed.get(v.name) or graph.name(v)], [name])
    for proto in graph.nodes:
        for field in (proto.input, proto.output):
            for i, n in enumerate(field):
                if n in renamed:
                    field[i] = renamed[n]


def _warn_unused(graph: Graph, inputs: list, outputs: list) -> None:
    """Warn of graph inputs that no node reads: their values were baked in as constants
    (e.g. int32 embedding indices, which gradflow copies to int64 outside the ops)."""
    read = {name for proto in graph.nodes for name in proto.input} | set(outputs)
    unused = [name for name in inputs if name not in read]
    if unused:
        warnings.warn(f"onnx.export: graph input(s) {unused} are not used by the exported "
                      "graph: the model read them outside gradflow's ops (their values are "
                      "baked in as constants)", stacklevel=3)


def _dynamic_axes(spec: dict | None, names: list) -> dict:
    """{name: {axis: symbol}} from torch's forms ({name: {axis: symbol}} or {name: [axes]})."""
    if not spec:
        return {}
    axes: dict = {}
    for name, value in spec.items():
        if name not in names:
            warnings.warn(f"onnx.export: dynamic_axes names {name!r}, which is not a graph "
                          f"input or output (those are {names})", stacklevel=3)
            continue
        if isinstance(value, dict):
            axes[name] = {int(a): str(s) for a, s in value.items()}
        elif isinstance(value, (list, tuple)):
            axes[name] = {int(a): f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(value)}
        else:
            raise TypeError(f"onnx.export: dynamic_axes[{name!r}] must be a dict of axis -> "
                            f"name or a list of axes, got {type(value).__name__}")
    return axes


def _value_info(onnx: Any, name: str, dtype: Any, shape: tuple, dynamic: dict) -> Any:
    for a in dynamic:
        if not -len(shape) <= a < len(shape):
            raise ValueError(f"onnx.export: dynamic axis {a} of {name!r} is out of range for "
                             f"its shape {shape}")
    dims = [dynamic.get(i, dynamic.get(i - len(shape), s)) for i, s in enumerate(shape)]
    return onnx.helper.make_tensor_value_info(name, tensor_type(onnx, dtype), dims)


def _graph_name(model: Any) -> str:
    return type(model).__name__ if hasattr(model, "named_modules") else "main_graph"


def _ir_version(onnx: Any, opset: int) -> int:
    for _, ir, op, *_ in onnx.helper.VERSION_TABLE:
        if op >= opset:
            return ir
    return onnx.IR_VERSION


def _save(onnx: Any, proto: Any, f: Any) -> None:
    if isinstance(f, (str, os.PathLike)):
        onnx.save(proto, os.fspath(f))
    elif hasattr(f, "write"):
        f.write(proto.SerializeToString())
    else:
        raise TypeError(f"onnx.export: f must be a path or a binary file object, got "
                        f"{type(f).__name__}")

