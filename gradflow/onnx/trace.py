"""Recording one forward pass for export: every op `Function.apply` runs while a `Tracer` is
active (the hook `_TRACE` in gradflow.autograd.function), with its inputs, keyword arguments,
outputs and the module it ran in, as torch.onnx's tracer does. Python control flow is baked in.

Tensors are `Value`s: the graph inputs, the outputs of recorded ops, and constants (a host copy
of a tensor no recorded op made: parameters, buffers, tensors created inside forward). With
`fold`, an op whose tensor inputs are all constants is not recorded: its outputs become
constants (torch's do_constant_folding).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..autograd import function, inplace
from ..backend import CPU, move_array
from ..tensor import Tensor


class Value(NamedTuple):
    """A tensor of the recorded graph: its name, shape and dtype, and for a constant its
    values (a host array)."""

    name: str
    shape: tuple
    dtype: np.dtype
    const: np.ndarray | None = None


class Node(NamedTuple):
    """One recorded op: its class and ctx, its arguments (`inputs`: a Value per tensor
    argument, other arguments as given; `args`, the tensors themselves), keyword arguments,
    output Values, the module it ran in ((name, class name)), and the Values of the raw
    arrays among its keywords that recorded ops made (by id: a getitem's index tensors)."""

    op: Any  # the Op class
    ctx: Any
    inputs: tuple
    args: tuple
    kwargs: dict
    outputs: tuple
    module: tuple
    arrays: dict


def host(array: Any) -> np.ndarray:
    """A host (NumPy) copy of a NumPy or CuPy array."""
    return np.array(move_array(array, CPU), copy=True)


class Tracer:
    """Records the ops of one forward pass (use as a context manager); `values` maps each
    tensor seen (by id, the tensors kept alive meanwhile) to its Value and the version it had,
    so a tensor changed in place is followed to its new value or refused."""

    def __init__(self, fold: bool = True, names: dict | None = None) -> None:
        self.fold = fold
        self.nodes: list[Node] = []
        self.values: dict[int, tuple[Value, int]] = {}
        self.by_array: dict[int, Value] = {}  # outputs by their array's id (raw index arrays)
        self.stale: dict[int, str] = {}  # tensors changed in place in ways export cannot follow
        self.keep: list = []  # every tensor and array seen, so no id is reused meanwhile
        self.modules: list[tuple] = []  # the module stack, (name, class name), outermost first
        self.names = names or {}  # id of a parameter or buffer -> its state_dict name
        self.taken = set(self.names.values())  # names in use: no fresh name repeats one
        self._count = 0

    # -- values ---------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A new name, `hint` and a number: the recorded values' and the graph's nodes'."""
        while True:
            self._count += 1
            name = f"{hint}_{self._count}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def bind(self, t: Tensor, value: Value) -> Value:
        self.values[id(t)] = (value, t._version_box[0])
        self.keep.append(t)
        if value.const is None:
            self.by_array[id(t.array)] = value
            self.keep.append(t.array)
        return value

    def add_input(self, t: Tensor, name: str) -> Value:
        self.taken.add(name)
        return self.bind(t, Value(name, tuple(t.shape), t.dtype))

    def value_of(self, t: Tensor) -> Value:
        """t's Value: the one it was bound to, or a new constant (a parameter or buffer under
        its state_dict name)."""
        seen = self.values.get(id(t))
        if seen is not None:
            value, version = seen
            if version == t._version_box[0]:
                return value
            raise RuntimeError(f"onnx.export: the tensor {value.name} (shape {value.shape}) was "
                               f"changed in place {self.stale.get(id(t), 'through a view')}; "
                               "export follows in-place ops only on tensors that are not views")
        known = self.by_array.get(id(t.array))
        if known is not None:  # a tensor wrapping a recorded output (a custom Function's)
            return self.bind(t, known)
        name = self.names.get(id(t)) or self.fresh("const")
        return self.bind(t, Value(name, tuple(t.shape), t.dtype, host(t.array)))

    def operand(self, a: Any) -> Any:
        if isinstance(a, Tensor):
            return self.value_of(a)
        if isinstance(a, (list, tuple)) and any(isinstance(x, Tensor) for x in a):
            return type(a)(self.operand(x) for x in a)
        return a

    # -- recording ----------------------------------------------------------------------------
    def record(self, cls: Any, ctx: Any, args: tuple, kwargs: dict, outs: list) -> None:
        """`Function.apply`'s callback: one op with its arguments and outputs."""
        if not cls._array_forward:
            # NOTE: a custom Function's forward ran recorded ops; its outputs wrap their arrays
            for out in outs:
                self.value_of(out)
            return
        inputs = tuple(self.operand(a) for a in args)
        module = self.modules[-1] if self.modules else ("", "")
        if self.fold and self._constant(inputs, kwargs):
            for out in outs:
                self.bind(out, Value(self.fresh(f"{cls.label()}_folded"), tuple(out.shape),
                                     out.dtype, host(out.array)))
            return
        values = []
        for i, out in enumerate(outs):
            values.append(self.bind(out, Value(self.fresh(cls.label()), tuple(out.shape),
                                               out.dtype)))
        arrays = {id(a): self.by_array[id(a)] for a in _flat(tuple(kwargs.values()))
                  if id(a) in self.by_array}
        self.nodes.append(Node(cls, ctx, inputs, args, dict(kwargs), tuple(values), module,
                               arrays))

    def _constant(self, inputs: tuple, kwargs: dict) -> bool:
        """Whether an op's tensor inputs (raw index arrays among its keywords included) are
        all constants."""
        for v in _flat(inputs):
            if isinstance(v, Value) and v.const is None:
                return False
        for a in _flat(tuple(kwargs.values())):
            if isinstance(a, Tensor):
                seen = self.values.get(id(a))
                if seen is not None and seen[0].const is None:
                    return False
            elif id(a) in self.by_array:
                return False
        return True

    def rebind_inplace(self, target: Tensor, result: Tensor, name: str) -> None:
        """After `target`'s memory took `result`'s values (an in-place op): target is that
        value now, unless it is a view, whose base changed too, which export cannot follow."""
        if target._base is not None:
            self.stale[id(target._base)] = f"by {name} on one of its views"
            return
        if result.dtype != target.dtype:
            self.stale[id(target)] = f"by {name}, into another dtype"
            return
        self.values[id(target)] = (self.value_of(result), target._version_box[0])

    def __enter__(self) -> "Tracer":
        if function._TRACE.record is not None:
            raise RuntimeError("onnx.export: an export is already recording; exports do not "
                               "nest")
        self._write = inplace.write
        tracer = self

        def write(target: Tensor, name: str, result: Any, any_dtype: bool = False) -> None:
            tracer._write(target, name, result, any_dtype)
            tracer.rebind_inplace(target, result, name)

        # NOTE: an in-place op (ReLU(inplace=True)) computes out of place, then writes the
        # result into the target's memory: the write is where the target takes a new value.
        inplace.write = write
        function._TRACE.record = self.record
        return self

    def __exit__(self, *exc: Any) -> None:
        function._TRACE.record = None
        inplace.write = self._write


def _flat(items: Any):
    for v in items:
        if isinstance(v, (list, tuple)) and not isinstance(v, Value):
            yield from _flat(v)
        else:
            yield v
