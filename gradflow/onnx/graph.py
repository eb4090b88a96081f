"""The ONNX graph being built from a recorded forward pass: node emission with fresh names,
initializers (the constants the nodes use, each added once), and the model proto."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .trace import Value


class Graph:
    """Nodes and initializers of one export; `opset` is the target opset version, `fresh`
    makes new names (the tracer's, so they never meet a recorded one)."""

    def __init__(self, onnx: Any, opset: int, fresh: Callable[[str], str]) -> None:
        self.onnx, self.opset, self.fresh = onnx, opset, fresh
        self.nodes: list = []
        self.initializers: dict[str, np.ndarray] = {}
        self.module = ""  # the module path of the op being converted, for node names
        self.unsupported: dict[str, str] = {}  # outputs that have no mapping -> why

    def node(self, op_type: str, inputs: list, outputs: list | int | None = None,
             **attrs: Any) -> Any:
        """Emit one node; returns its output name (or names, when `outputs` is a count or a
        list of several). An input of '' is an omitted optional input."""
        if outputs is None or isinstance(outputs, int):
            count = 1 if outputs is None else outputs
            names = [self.fresh(op_type) for _ in range(count)]
        else:
            names = list(outputs)
        prefix = f"/{self.module}/" if self.module else "/"
        self.nodes.append(self.onnx.helper.make_node(
            op_type, list(inputs), names, name=self.fresh(prefix + op_type),
            **{k: v for k, v in attrs.items() if v is not None}))
        return names[0] if outputs is None or (not isinstance(outputs, int) and
                                               len(names) == 1) else names

    def const(self, values: Any, dtype: Any = None, hint: str = "const") -> str:
        """An initializer holding `values` (of `dtype`, when given)."""
        array = np.asarray(values, dtype=dtype)
        name = self.fresh(hint)
        self.initializers[name] = array
        return name

    def ints(self, values: Any) -> str:
        """An int64 initializer, 1-D (shapes, axes, pads, slice bounds)."""
        return self.const(np.asarray(list(values), np.int64), hint="ints")

    def name(self, v: Value) -> str:
        """The ONNX name of a recorded Value; a constant's initializer is added on first use."""
        if v.name in self.unsupported:
            raise NotImplementedError(self.unsupported[v.name])
        if v.const is not None and v.name not in self.initializers:
            self.initializers[v.name] = v.const
        return v.name

    def cast(self, name: str, have: Any, want: Any) -> str:
        """`name` as dtype `want` (a Cast node only where the dtypes differ)."""
        if np.dtype(have) == np.dtype(want):
            return name
        return self.node("Cast", [name], to=tensor_type(self.onnx, want))

    def axes_input(self, op_type: str, x: str, axes: Any, out: list | None = None,
                   **attrs: Any) -> Any:
        """A reduction whose axes are an attribute before opset 18 and an input from it
        (ReduceSum's from opset 13)."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes)], out, **attrs)
        return self.node(op_type, [x], out, axes=list(axes), **attrs)

    def tensors(self) -> list:
        return [self.onnx.numpy_helper.from_array(np.asarray(a, order="C"), name)
                for name, a in self.initializers.items()]


def tensor_type(onnx: Any, dtype: Any) -> int:
    """ONNX's element type of a NumPy dtype (bfloat16 included)."""
    dt = np.dtype(dtype)
    if dt.name == "bfloat16":
        return onnx.TensorProto.BFLOAT16
    return onnx.helper.np_dtype_to_tensor_dtype(dt)
