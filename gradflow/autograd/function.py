"""Graph nodes: every differentiable op is a `Function` whose instance is both the `ctx` the
user sees and the node the engine walks (as in Chainer's FunctionNode).

Two flavours share one `apply`:
- `Function` (public, torch.autograd.Function): `forward(ctx, *tensors)` returns tensors and
  runs under no_grad; `backward(ctx, *grads)` gets zeros for outputs that got no gradient.
- `Op` (built-in ops): `forward` reads the inputs' arrays and returns arrays directly, which
  saves wrapping; `backward` gets None for outputs that got no gradient.
Backward rules are written with gradflow's own tensor ops, so running them with grad mode on
(`create_graph=True`) records the graph of the gradient and gives double backward.
"""
from __future__ import annotations

import threading
import weakref
from types import MappingProxyType
from typing import Any

import numpy as np

from ..amp import autocast_mode
from ..backend import CPU, device, module_for, on_device_of
from ..cuda import oom
from ..tensor import Tensor
from . import anomaly, grad_mode
from .grad_mode import is_grad_enabled, no_grad

_ANOMALY = anomaly.MODE
_AUTOCAST = autocast_mode.STATE


class _Trace:
    """gradflow.onnx's switch: while an export records a forward pass, `record` is its
    tracer's callback, which `Function.apply` hands every op it runs; None otherwise."""

    __slots__ = ("record",)

    def __init__(self) -> None:
        self.record: Any = None


_TRACE = _Trace()
_GRAD = grad_mode.STATE
_NO_EDGE = (None, 0)  # an input that gets no gradient
_NO_HOOKS: MappingProxyType = MappingProxyType({})  # a node's pre-hooks until one is registered

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


class _NewNodes(threading.local):
    """The nodes recorded while `nodes` is a list (autograd.inplace collects those of the op
    it runs in place); None otherwise, which costs recording one check."""

    nodes: list | None = None


NEW_NODES = _NewNodes()


class _SavedInput:
    """A saved tensor plus the version it had, to catch in-place changes before backward."""

    __slots__ = ("tensor", "version")

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor
        self.version = tensor._version_box[0]

    def unpack(self, node: "Function") -> Tensor:
        if self.tensor._version_box[0] != self.version:
            raise RuntimeError(
                f"{node.name()}: one of the tensors needed for gradient computation has been "
                f"modified by an in-place operation: tensor of shape {tuple(self.tensor.shape)} "
                f"is at version {self.tensor._version_box[0]}; expected version {self.version}")
        return self.tensor


class _SavedOutput:
    """An op's own output, kept as its array (not the Tensor) so node and output form no
    reference cycle; unpacked as a fresh tensor whose grad_fn is the node, as PyTorch does."""

    __slots__ = ("array", "index", "version_box", "version", "requires_grad")

    def __init__(self, out: Tensor, index: int) -> None:
        self.array, self.index = out.array, index
        self.version_box, self.version = out._version_box, out._version_box[0]
        self.requires_grad = out._requires_grad

    def unpack(self, node: "Function") -> Tensor:
        if self.version_box[0] != self.version:
            raise RuntimeError(
                f"{node.name()}: its output (shape {tuple(self.array.shape)}), needed for the "
                "gradient, has been modified by an in-place operation")
        t = Tensor._wrap(self.array, requires_grad=self.requires_grad)
        if self.requires_grad:
            t.grad_fn, t._output_nr, t._version_box = node, self.index, self.version_box
        return t


class Function:
    """Base of every graph node; subclass it for a custom differentiable op.

    Subclasses define static `forward(ctx, *args)` and `backward(ctx, *grad_outputs)` and are
    called through `MyFn.apply(*args)`, as with torch.autograd.Function.
    """

    _array_forward = False  # Op flips this: forward returns arrays, not tensors
    saves_outputs = False  # Op subclasses whose backward needs the outputs set this
    differentiable = True  # False for ops whose outputs never require grad
    is_view = False  # True for ops whose output is a view of their first input (or may be)
    creation_trace = None  # where user code made this node; recorded in anomaly mode only

    # NOTE: a node's state starts as these class-level defaults, which are immutable and which
    # an instance replaces when it needs its own: no __init__ runs for each op recorded.
    next_edges: tuple = ()
    num_outputs = 1
    needs_input_grad: tuple = ()
    _saved: tuple | list = ()
    _saved_outputs: tuple | list = ()
    _freed = False
    _materialize = True
    _non_differentiable: frozenset = frozenset()
    _pre_hooks: MappingProxyType | dict = _NO_HOOKS
    _output_meta: list[tuple[tuple[int, ...], np.dtype, device]]  # set when a user Function records
    _input_dtypes: tuple = ()  # ... and the dtype of each input that needs a gradient

    # -- the op ---------------------------------------------------------------------------------
    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        """The op's outputs from its inputs; every subclass defines it (a static method)."""
        raise NotImplementedError(f"{type(ctx).__name__} must define forward(ctx, *args) as a "
                                  "static method, as torch.autograd.Function subclasses do")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        """The gradients of the inputs (one per forward input, None where there is none) from
        those of the outputs; every differentiable subclass defines it (a static method)."""
        raise NotImplementedError(f"{type(ctx).__name__} must define backward(ctx, *grad_outputs) "
                                  "as a static method to be differentiated")

    # -- ctx API -----------------------------------------------------------------------------
    def save_for_backward(self, *tensors: Tensor | None) -> None:
        """Keep tensors for backward; read them back with `ctx.saved_tensors`."""
        self._saved = [None if t is None else _SavedInput(t) for t in tensors]

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        return tuple([None if s is None else s.unpack(self) for s in self._saved])

    @property
    def outputs(self) -> tuple:
        """The op's outputs, for backward rules that use them (ops with `saves_outputs`)."""
        if self._freed:
            raise RuntimeError(FREED_MESSAGE)
        return tuple([s.unpack(self) for s in self._saved_outputs])

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        self._non_differentiable = self._non_differentiable | {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = bool(value)

    @classmethod
    def label(cls) -> str:
        """The op's name in error messages: `add`, `conv2d`, or a custom Function's class."""
        return getattr(cls, "op_name", cls.__name__)

    @classmethod
    def name(cls) -> str:
        """PyTorch's name for the node (`AddBackward0`; `MyFnBackward` for a custom Function)."""
        return backward_name(cls)

    @property
    def next_functions(self) -> tuple:
        """(node, output slot) per input, (None, 0) where no gradient flows (torch's)."""
        return self.next_edges

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    def pre_hooks(self, slot: int) -> dict:
        """The hooks run on the gradient of output `slot` before this node's backward
        (Tensor.register_hook on a non-leaf), keyed by handle id; made on first use."""
        hooks = self._pre_hooks
        if not isinstance(hooks, dict):  # the shared, read-only default
            hooks = self._pre_hooks = {}
        return hooks.setdefault(slot, {})

    # -- recording ----------------------------------------------------------------------------
    @classmethod
    def apply(cls, *args: Any, **kwargs: Any):
        if _AUTOCAST.on:  # autocast casts the inputs of the ops its tables name
            args = autocast_mode.cast_inputs(cls, args, kwargs)
        ctx = cls()
        # NOTE: one pass over the arguments finds which need a gradient and whether every
        # tensor among them is known to be on the CPU (see Tensor._init). If so, they share a
        # device and the forward needs no device guard: `tensors` stays None and neither the
        # device check nor the guard is paid for.
        flags = []
        on_cpu = True
        for a in args:
            if isinstance(a, Tensor):
                flags.append(a._requires_grad)
                if a._device is not CPU:
                    on_cpu = False
            else:
                flags.append(False)
        tensors = None if on_cpu else _tensors(args)
        if tensors is not None:
            _check_same_device(cls.label(), tensors)
        ctx.needs_input_grad = needs = tuple(flags)
        record = cls.differentiable and _GRAD.enabled and any(needs)
        if cls._array_forward:
            try:
                if tensors is None:
                    raw = cls.forward(ctx, *args, **kwargs)
                else:
                    with on_device_of(tensors):  # the one device guard of every op's forward
                        raw = cls.forward(ctx, *args, **kwargs)
            except oom.error_types() as err:
                raise oom.out_of_memory(cls.label(), err) from None
            except (ValueError, TypeError) as err:
                raise _named_error(cls.label(), err, _tensors(args)) from None
            single = not isinstance(raw, tuple)
            outs = [_wrap_array(raw)] if single else [_wrap_array(r) for r in raw]
        else:
            try:
                with no_grad(), on_device_of(_tensors(args)):
                    raw = cls.forward(ctx, *args, **kwargs)
            except oom.error_types() as err:
                raise oom.out_of_memory(cls.label(), err) from None
            single = not isinstance(raw, tuple)
            outs = [_fresh_output(r, cls.label()) for r in ((raw,) if single else raw)]
        if not single:
            ctx.num_outputs = len(outs)
        if ctx.is_view:
            _mark_views(ctx, args, kwargs, outs)
        if _ANOMALY.enabled:
            anomaly.record_forward(ctx, outs)
        if _TRACE.record is not None:
            _TRACE.record(cls, ctx, args, kwargs, outs)
        if record:
            if NEW_NODES.nodes is not None:
                NEW_NODES.nodes.append(ctx)
            edges = []
            for a, need in zip(args, needs):
                edges.append(gradient_edge(a) if need else _NO_EDGE)
            ctx.next_edges = tuple(edges)
            for i, out in enumerate(outs):
                if out.is_floating_point() and id(out) not in ctx._non_differentiable:
                    out._requires_grad, out.grad_fn, out._output_nr = True, ctx, i
            if not cls._array_forward:
                ctx._saved = [_resave(s, outs, raw) for s in ctx._saved]
                ctx._output_meta = [(o.shape, o.dtype, o.device) for o in outs]
                ctx._input_dtypes = tuple(a.dtype if need else None for a, need in zip(args, needs))
            if cls.saves_outputs:
                ctx._saved_outputs = [_SavedOutput(o, i) for i, o in enumerate(outs)]
        return outs[0] if single else tuple(outs)

    def run_backward(self, grads: list) -> tuple:
        """Called by the engine: the gradients of the inputs, their number checked (and a
        custom Function's cast to its inputs' dtypes)."""
        if not self._array_forward and self._materialize:
            grads = [g if g is not None else self._zeros_for_output(i)
                     for i, g in enumerate(grads)]
        result = self.backward(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        if len(result) != len(self.next_edges):
            raise RuntimeError(f"{self.name()}: backward returned {len(result)} gradient(s), "
                               f"expected {len(self.next_edges)} (one per forward input)")
        if self._input_dtypes:  # a user Function's gradients take their inputs' dtypes, as torch's
            result = tuple(g.to(dt) if isinstance(g, Tensor) and dt is not None and g.dtype != dt
                           else g for g, dt in zip(result, self._input_dtypes))
        return result

    def release(self) -> None:
        """Free what was saved for backward (done after backward unless retain_graph)."""
        self._saved = self._saved_outputs = ()
        self._freed = True

    def _zeros_for_output(self, index: int) -> Tensor:
        """Zeros shaped like output `index`: a custom Function's missing gradient."""
        shape, dtype, dev = self._output_meta[index]
        return Tensor._wrap(module_for(dev).zeros(shape, dtype))


class Op(Function):
    """A built-in op: `forward(ctx, *args)` reads `tensor.array` and returns array(s)."""

    _array_forward = True


class AccumulateGrad:
    """The node that receives a leaf's gradient and accumulates it into `.grad`
    (PyTorch's AccumulateGrad). A leaf keeps only a weak reference to its accumulator."""

    __slots__ = ("tensor", "__weakref__")
    next_edges = ()
    num_outputs = 1
    _pre_hooks = _NO_HOOKS  # a leaf's hooks are its tensor's (run_hooks)

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor

    @staticmethod
    def name() -> str:
        return "AccumulateGrad"

    label = name
    next_functions = ()

    @property
    def variable(self) -> Tensor:
        """The leaf this node accumulates into (torch's AccumulateGrad.variable)."""
        return self.tensor

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"

    def run_hooks(self, grad: Tensor) -> Tensor:
        hooks = self.tensor._hooks
        if not hooks:
            return grad
        for hook in list(hooks.values()):
            new = hook(grad)
            if new is not None:
                grad = new
        return grad

    def accumulate(self, grad: Tensor) -> None:
        leaf = self.tensor
        if grad.array.shape != leaf.array.shape:
            raise RuntimeError(f"AccumulateGrad: gradient of shape {tuple(grad.shape)} does not "
                               f"match the leaf's shape {tuple(leaf.shape)}")
        if not is_grad_enabled():
            grad = grad.detach()
        if not grad.is_contiguous():
            # NOTE: .grad keeps the leaf's (contiguous) layout, as torch's does: optimizer
            # passes over a transposed view run strided, far slower on big layers.
            grad = grad.contiguous()
        leaf.grad = grad if leaf.grad is None else leaf.grad + grad
        for hook in list(leaf._post_accumulate_hooks.values()):
            hook(leaf)

    def release(self) -> None:
        pass


def _named_error(name: str, err: Exception, tensors: list) -> Exception:
    """Re-raise an array library's error with the op's name and its inputs' shapes."""
    text = str(err)
    if text.startswith(name + ":"):
        return err
    shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
    dts = ", ".join(str(t.dtype) for t in tensors)
    kind = RuntimeError if isinstance(err, ValueError) else TypeError
    return kind(f"{name}: {text} (input shapes {shapes}; dtypes {dts})")


def gradient_edge(t: Tensor) -> tuple:
    """(node, output slot) that receives the gradient of `t`, a tensor that requires grad: its
    grad_fn's output, or a leaf's one AccumulateGrad node, shared by every op that uses the
    leaf while any graph holds it (the leaf keeps only a weak reference). A view whose base
    changed in place since its history was taken takes it again first (`retake_view`)."""
    if t._base is not None and t._view_version != t._version_box[0]:
        retake_view(t)
    fn = t.grad_fn
    if fn is not None:
        return (fn, t._output_nr)
    ref = t._accumulator_ref
    node = None if ref is None else ref()
    if node is None:
        node = AccumulateGrad(t)
        t._accumulator_ref = weakref.ref(node)
    return (node, 0)


def replay_view(chain: tuple, t: Tensor) -> Tensor:
    """The view that `chain` (the view ops from a base, in order) takes of `t`."""
    for op, args, kwargs in chain:
        t = op.apply(t, *args, **kwargs)
    return t


def retake_view(view: Tensor) -> None:
    """Take a view's history again from its base, after the base (or another view of it)
    changed in place: the view's values now come from the base's new history, as PyTorch
    regenerates a view's grad_fn. A view that became a leaf of its own keeps being one."""
    view._view_version = view._version_box[0]
    base = view._base
    if base is None or view._view_chain is None or not base._requires_grad or (
            view.grad_fn is None and view._requires_grad):
        return
    with grad_mode.enable_grad():
        fresh = replay_view(view._view_chain, base)
    view.grad_fn, view._output_nr = fresh.grad_fn, fresh._output_nr
    view._requires_grad = fresh._requires_grad


def _owner(array: Any) -> Any:
    """The object that owns an array's memory: a NumPy view's `.base`, a CuPy array's memory
    allocation (shared by its views, as_strided ones included)."""
    if isinstance(array, np.ndarray):
        base = array.base
        return array if base is None else base
    return array.data.mem


def _mark_views(ctx: Function, args: tuple, kwargs: dict, outs: list) -> None:
    """Make the outputs of a view op that share their input's memory views of its base: they
    share its version counter and remember how they were taken from the base, so an in-place
    op through one can rebase the base's history (autograd.inplace). Outputs of an op with
    several (unbind, split) are views that cannot be replayed alone (chain None), as PyTorch
    forbids in-place ops on them."""
    src = args[0]
    base = src if src._base is None else src._base
    chain = src._view_chain
    if chain is not None:
        chain = None if len(outs) > 1 else chain + ((type(ctx), args[1:], kwargs),)
    owner = _owner(src.array)
    for out in outs:
        if _owner(out.array) is owner:
            out._base, out._version_box, out._view_chain = base, src._version_box, chain
            out._view_version = src._version_box[0]


# PyTorch's names for nodes whose op name does not camel-case into them
_TORCH_NAMES = {
    "getitem": "IndexBackward0", "matmul": "MmBackward0", "linear": "AddmmBackward0",
    "conv2d": "ConvolutionBackward0", "batch_norm": "NativeBatchNormBackward0",
    "max_pool2d": "MaxPool2DWithIndicesBackward0", "avg_pool2d": "AvgPool2DBackward0",
    "adaptive_avg_pool2d": "AdaptiveAvgPool2DBackward0", "cross_entropy": "NllLossBackward0",
    "reshape": "ViewBackward0", "to": "ToCopyBackward0", "pad": "ConstantPadNdBackward0",
    "copy_slices": "CopySlices",
}


def backward_name(cls: type) -> str:
    """PyTorch's name of a node type: `AddBackward0` for op `add`; a custom Function's class
    name plus `Backward`."""
    op = getattr(cls, "op_name", None)
    if op is None:
        return cls.__name__ + "Backward"
    return _TORCH_NAMES.get(op) or "".join(w[:1].upper() + w[1:] for w in op.split("_")) \
        + "Backward0"


def _tensors(args: tuple) -> list:
    return [a for a in args if isinstance(a, Tensor)]


def _wrap_array(value: Any) -> Tensor:
    """An op's output as a tensor; a NumPy scalar (what NumPy reductions return) becomes a 0-d
    array."""
    return Tensor._wrap(np.asarray(value) if isinstance(value, np.generic) else value)


def _check_same_device(name: str, tensors: list) -> None:
    if len(tensors) < 2:
        return
    first = tensors[0].device
    for t in tensors[1:]:
        if t.device != first:
            raise RuntimeError(f"{name}: expected all tensors to be on the same device, but "
                               f"found at least two devices, {first} and {t.device}")


def _fresh_output(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}.forward must return Tensors, got {type(value).__name__}")
    return Tensor._wrap(value.array)


def _resave(saved, outs: list, raw):
    """Turn a user Function's saved output (a forward-time tensor) into a _SavedOutput."""
    if not isinstance(saved, _SavedInput):
        return saved
    raws = raw if isinstance(raw, tuple) else (raw,)
    for i, r in enumerate(raws):
        if saved.tensor is r:
            return _SavedOutput(outs[i], i)
    return saved
