"""Tensor: an array (NumPy on the CPU, CuPy on CUDA) plus what autograd needs.

Methods are one-line calls into `gradflow.ops`; the engine lives in `gradflow.autograd`.
"""
from __future__ import annotations

import builtins
import weakref
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import dtypes
from .autograd.grad_mode import is_grad_enabled, no_grad
from .backend import (
    CPU,
    array_module,
    as_device,
    device,
    device_of,
    host_read,
    move_array,
    on_device,
)

if TYPE_CHECKING:
    from .autograd.function import AccumulateGrad, Function


class Size(tuple):
    """A tensor's shape: a tuple with `numel()`, like torch.Size."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"gradflow.Size({list(self)})"


class RemovableHandle:
    """Returned by `register_hook`; `remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict) -> None:
        self._hooks = hooks
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


class Tensor:
    """A multi-dimensional array that records the operations applied to it (torch.Tensor)."""

    __slots__ = ("array", "_requires_grad", "grad", "grad_fn", "_output_nr", "_hooks",
                 "_version_box", "_accumulator_ref", "_device", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our reflected operators
    __hash__ = object.__hash__

    def __init__(self, data: Any, dtype: Any = None, device: Any = None,
                 requires_grad: bool = False) -> None:
        """`Tensor(data)` makes a float tensor, as torch.Tensor does; prefer `tensor(data)`."""
        from .creation import to_array
        dtype = dtypes.get_default_dtype() if dtype is None else dtype
        self._init(to_array(data, dtype, device, "Tensor"))
        self.requires_grad = requires_grad

    def _init(self, array: Any, requires_grad: bool = False) -> None:
        self.array = array
        self._requires_grad = requires_grad
        self.grad: Tensor | None = None
        self.grad_fn: Function | None = None
        self._output_nr = 0
        self._hooks: dict[builtins.int, Callable[[Tensor], Tensor | None]] = {}
        # NOTE: a one-item list, so tensors sharing these values (detach, a saved output
        # unpacked for backward) share the in-place version counter.
        self._version_box = [0]
        # weak reference to this leaf's AccumulateGrad node
        self._accumulator_ref: weakref.ref[AccumulateGrad] | None = None
        # NOTE: the device, found when first asked (None until then), except that a NumPy
        # array's is known at once: `Function.apply` and the engine check `_device is CPU`
        # to skip the device checks and guards when every operand is on the CPU.
        self._device: device | None = CPU if isinstance(array, np.ndarray) else None
        self._retains_grad = False

    @classmethod
    def _wrap(cls, array: Any, requires_grad: bool = False) -> "Tensor":
        """Wrap an existing NumPy/CuPy array without copying (internal constructor)."""
        t = cls.__new__(cls)
        t._init(array, requires_grad)
        return t

    # -- metadata ------------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self.array.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return self.shape
        from .ops.util import normalize_dim
        return self.array.shape[normalize_dim("size", dim, self.ndim)]

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def device(self) -> device:
        if self._device is None:
            self._device = device_of(self.array)
        return self._device

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def _xp(self):
        return array_module(self.array)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    def numel(self) -> int:
        return int(self.array.size)

    def element_size(self) -> int:
        return self.array.itemsize

    @property
    def itemsize(self) -> int:
        return self.array.itemsize

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def ndimension(self) -> int:
        return self.array.ndim

    def nelement(self) -> int:
        return int(self.array.size)

    def is_complex(self) -> bool:
        return self.dtype.kind == "c"

    # -- factories that take this tensor's dtype and device (torch's Tensor.new_*) -----------
    def _like_self(self, dtype: Any, device_: Any) -> dict:
        return dict(dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device_ is None else device_)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return creation.zeros(*size, requires_grad=requires_grad, **self._like_self(dtype, device))

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return creation.ones(*size, requires_grad=requires_grad, **self._like_self(dtype, device))

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return creation.empty(*size, requires_grad=requires_grad, **self._like_self(dtype, device))

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        return creation.full(size, fill_value, requires_grad=requires_grad,
                             **self._like_self(dtype, device))

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        return creation.tensor(data, requires_grad=requires_grad,
                               **self._like_self(dtype, device))

    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return bool(self.array.flags.c_contiguous)

    @property
    def _version(self) -> int:
        return self._version_box[0]

    # -- autograd state -----------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if self.grad_fn is not None:
            if not value:
                raise RuntimeError("you can only change requires_grad flags of leaf variables. "
                                   "Use .detach() to get a tensor that does not require grad")
            return
        if value and self.dtype.kind != "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients "
                               f"(this one is {self.dtype})")
        self._requires_grad = value

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def data(self) -> "Tensor":
        """The same values, detached and invisible to autograd's version checks."""
        return Tensor._wrap(self.array)

    @data.setter
    def data(self, other: "Tensor") -> None:
        if not isinstance(other, Tensor):
            raise TypeError(f"data: expected a Tensor, got {type(other).__name__}")
        self.array, self._device = other.array, None

    def detach(self) -> "Tensor":
        """A tensor sharing the values (and version counter) that is cut from the graph."""
        t = Tensor._wrap(self.array)
        t._version_box = self._version_box
        return t

    def detach_(self) -> "Tensor":
        self.grad_fn, self._requires_grad = None, False
        return self

    def backward(self, gradient: "Tensor | None" = None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (torch.Tensor.backward)."""
        from .autograd.engine import run_backward
        if retain_graph is None:
            retain_graph = create_graph
        run_backward([self], [gradient], retain_graph, create_graph)

    def register_hook(self, hook) -> RemovableHandle:
        """Call `hook(grad)` when this tensor's gradient is computed; it may return a new one."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            hooks = self._hooks
        else:
            hooks = self.grad_fn.pre_hooks(self._output_nr)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def retain_grad(self) -> None:
        """Keep `.grad` on a non-leaf tensor after backward."""
        if self.grad_fn is None or self._retains_grad:
            return
        ref = weakref.ref(self)

        def keep(grad: Tensor) -> None:
            t = ref()
            if t is not None:
                g = grad if is_grad_enabled() else grad.detach()
                t.grad = g if t.grad is None else t.grad + g

        self.register_hook(keep)
        self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    # -- conversion ---------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.device.type != "cpu":
            raise TypeError(f"numpy: can't convert a {self.device} tensor to a NumPy array; "
                            "call .cpu() first to copy it to host memory")
        if self.requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a Tensor that requires grad; "
                               "use tensor.detach().numpy() instead")
        return self.array

    def __array__(self, dtype=None, copy=None):
        arr = self.detach().numpy()
        return arr if dtype is None else arr.astype(dtype)

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(f"item: a Tensor with {self.numel()} elements cannot be converted "
                               "to a Python scalar")
        if self.is_cuda:
            return host_read(self.array, self.array.reshape(()).item)
        return self.array.reshape(()).item()

    def tolist(self):
        return move_array(self.array, device("cpu")).tolist()

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """Move to a device and/or cast to a dtype: `.to('cuda')`, `.to(gf.float64)`."""
        dev, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dev, dtype = a.device, a.dtype
            elif isinstance(a, (str, device)) or (isinstance(a, int) and not isinstance(a, bool)):
                dev = a
            else:
                dtype = a
        out = self
        if dtype is not None and dtypes.as_dtype(dtype) != self.dtype:
            out = ops.elementwise.cast(out, dtype=dtypes.as_dtype(dtype))
        if dev is not None and as_device(dev) != self.device:
            out = ops.elementwise.to_device(out, device=as_device(dev))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device: Any = None) -> "Tensor":
        return self.to("cuda" if device is None else device)

    def type(self, dtype: Any = None):
        return str(self.dtype) if dtype is None else self.to(dtype)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    # NOTE: from here on, `int`, `float` and `bool` in this class body name the casting
    # methods, so annotations below spell the builtins `builtins.int` and so on.
    def float(self) -> "Tensor":
        return self.to(dtypes.float32)

    def double(self) -> "Tensor":
        return self.to(dtypes.float64)

    def half(self) -> "Tensor":
        return self.to(dtypes.float16)

    def long(self) -> "Tensor":
        return self.to(dtypes.int64)

    def int(self) -> "Tensor":
        return self.to(dtypes.int32)

    def bool(self) -> "Tensor":
        return self.to(dtypes.bool)

    def clone(self) -> "Tensor":
        return ops.elementwise.clone(self)

    def __bool__(self) -> builtins.bool:
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.numel()} values is ambiguous")
        return bool(self.item())

    def __float__(self) -> builtins.float:
        return float(self.item())

    def __int__(self) -> builtins.int:
        return int(self.item())

    def __format__(self, spec: str) -> str:
        # NOTE: as torch: a 0-d tensor formats as its number (f"{loss:.4f}")
        if self.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __contains__(self, element: Any) -> builtins.bool:
        if not isinstance(element, (Tensor, builtins.int, builtins.float, builtins.bool)):
            raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you "
                               f"passed in a {type(element).__name__}")
        return bool((self == element).any().item())

    def __index__(self) -> builtins.int:
        if self.dtype.kind not in "iub" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def __len__(self) -> builtins.int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.array.shape[0]))

    def __repr__(self) -> str:
        arr = move_array(self.array, device("cpu"))
        body = np.array2string(arr, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        default = {dtypes.get_default_dtype(), dtypes.int64, dtypes.bool}
        if self.dtype not in default or arr.size == 0:
            extras.append(f"dtype=gradflow.{self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{type(self.grad_fn).__name__}Backward0>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # -- in-place updates (for optimizers and initialisers, outside the graph) ------------------
    def _inplace(self, name: str, result: "Tensor") -> "Tensor":
        with on_device(self.device):
            self.array[...] = result.array.astype(self.dtype, copy=False)
        self._version_box[0] += 1
        return self

    def _check_inplace(self, name: str) -> None:
        if is_grad_enabled() and self.requires_grad:
            if self.grad_fn is None:
                raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in "
                                   "an in-place operation; wrap it in gradflow.no_grad()")
            raise RuntimeError(f"{name}: in-place operations on tensors recorded in the autograd "
                               "graph are not supported; use the out-of-place form")

    def _apply_inplace(self, name: str, fn, *args) -> "Tensor":
        self._check_inplace(name)
        with no_grad():
            result = fn(self, *args)
        if result.shape != self.shape:
            raise RuntimeError(f"{name}: the result has shape {tuple(result.shape)} but the "
                               f"tensor being updated has shape {tuple(self.shape)}")
        return self._inplace(name, result)

    def add_(self, other, alpha=1) -> "Tensor":
        return self._apply_inplace("add_", lambda s, o: s + o * alpha if alpha != 1 else s + o,
                                   other)

    def sub_(self, other, alpha=1) -> "Tensor":
        return self._apply_inplace("sub_", lambda s, o: s - o * alpha if alpha != 1 else s - o,
                                   other)

    def mul_(self, other) -> "Tensor":
        return self._apply_inplace("mul_", Tensor.__mul__, other)

    def div_(self, other) -> "Tensor":
        return self._apply_inplace("div_", Tensor.__truediv__, other)

    def clamp_(self, min=None, max=None) -> "Tensor":
        return self._apply_inplace("clamp_", ops.elementwise.clamp, min, max)

    def copy_(self, src: "Tensor") -> "Tensor":
        self._check_inplace("copy_")
        if not isinstance(src, Tensor):
            raise TypeError(f"copy_: expected a Tensor source, got {type(src).__name__}")
        arr = move_array(src.array, self.device)
        try:
            with on_device(self.device):
                self._xp.copyto(self.array, arr, casting="unsafe")
        except ValueError:
            raise RuntimeError(f"copy_: source of shape {tuple(src.shape)} cannot be broadcast "
                               f"to the destination's shape {tuple(self.shape)}") from None
        self._version_box[0] += 1
        return self

    def fill_(self, value) -> "Tensor":
        self._check_inplace("fill_")
        value = value.item() if isinstance(value, Tensor) else value
        with on_device(self.device):
            self.array.fill(value)
        self._version_box[0] += 1
        return self

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def __setitem__(self, index, value) -> None:
        self._check_inplace("__setitem__")
        with on_device(self.device):
            ops.index.setitem(self, index, value)
        self._version_box[0] += 1

    # -- operators ----------------------------------------------------------------------------
    def __add__(self, other): return ops.elementwise.add(self, other)
    def __radd__(self, other): return ops.elementwise.add(other, self)
    def __sub__(self, other): return ops.elementwise.sub(self, other)
    def __rsub__(self, other): return ops.elementwise.sub(other, self)
    def __mul__(self, other): return ops.elementwise.mul(self, other)
    def __rmul__(self, other): return ops.elementwise.mul(other, self)
    def __truediv__(self, other): return ops.elementwise.div(self, other)
    def __rtruediv__(self, other): return ops.elementwise.div(other, self)
    def __floordiv__(self, other): return ops.elementwise.floor_divide(self, other)
    def __rfloordiv__(self, other): return ops.elementwise.floor_divide(other, self)
    def __mod__(self, other): return ops.elementwise.remainder(self, other)
    def __rmod__(self, other): return ops.elementwise.remainder(other, self)
    def __pow__(self, other): return ops.elementwise.pow(self, other)
    def __rpow__(self, other): return ops.elementwise.pow(other, self)
    def __matmul__(self, other): return ops.matmul.matmul(self, other)
    def __rmatmul__(self, other): return ops.matmul.matmul(other, self)
    def __neg__(self): return ops.elementwise.neg(self)
    def __pos__(self): return self
    def __abs__(self): return ops.elementwise.abs(self)
    def __eq__(self, other): return ops.elementwise.eq(self, other)
    def __ne__(self, other): return ops.elementwise.ne(self, other)
    def __lt__(self, other): return ops.elementwise.lt(self, other)
    def __le__(self, other): return ops.elementwise.le(self, other)
    def __gt__(self, other): return ops.elementwise.gt(self, other)
    def __ge__(self, other): return ops.elementwise.ge(self, other)
    def __and__(self, other): return ops.elementwise.bitwise_and(self, other)
    def __rand__(self, other): return ops.elementwise.bitwise_and(other, self)
    def __or__(self, other): return ops.elementwise.bitwise_or(self, other)
    def __ror__(self, other): return ops.elementwise.bitwise_or(other, self)
    def __xor__(self, other): return ops.elementwise.bitwise_xor(self, other)
    def __rxor__(self, other): return ops.elementwise.bitwise_xor(other, self)
    def __invert__(self):
        if self.dtype.kind not in "biu":  # NOTE: torch's `~` refuses floats with a TypeError
            raise TypeError(f"bitwise_not: ~ is only implemented on integer and bool tensors, "
                            f"got {self.dtype}")
        return ops.elementwise.bitwise_not(self)
    def __lshift__(self, other): return ops.elementwise.bitwise_left_shift(self, other)
    def __rlshift__(self, other): return ops.elementwise.bitwise_left_shift(other, self)
    def __rshift__(self, other): return ops.elementwise.bitwise_right_shift(self, other)
    def __rrshift__(self, other): return ops.elementwise.bitwise_right_shift(other, self)
    def __getitem__(self, index): return ops.index.getitem(self, index)
    # NOTE: augmented assignment updates in place, as in PyTorch, so `p -= lr * p.grad` under
    # no_grad changes the parameter itself rather than rebinding a loop variable.
    def __iadd__(self, other): return self.add_(other)
    def __isub__(self, other): return self.sub_(other)
    def __imul__(self, other): return self.mul_(other)
    def __itruediv__(self, other): return self.div_(other)

    # -- named methods ------------------------------------------------------------------------
    def add(self, other, alpha=1): return self + other * alpha if alpha != 1 else self + other
    def sub(self, other, alpha=1): return self - other * alpha if alpha != 1 else self - other
    def mul(self, other): return self * other
    def div(self, other, rounding_mode=None):
        return ops.elementwise.div(self, other, rounding_mode=rounding_mode)
    def pow(self, exponent): return self ** exponent
    def matmul(self, other): return ops.matmul.matmul(self, other)
    def neg(self): return -self
    def exp(self): return ops.elementwise.exp(self)
    def log(self): return ops.elementwise.log(self)
    def sqrt(self): return ops.elementwise.sqrt(self)
    def abs(self): return ops.elementwise.abs(self)
    def sin(self): return ops.elementwise.sin(self)
    def cos(self): return ops.elementwise.cos(self)
    def tanh(self): return ops.elementwise.tanh(self)
    def sigmoid(self): return ops.elementwise.sigmoid(self)
    def erf(self): return ops.elementwise.erf(self)
    def relu(self): return ops.elementwise.relu(self)
    def sign(self): return ops.elementwise.sign(self)
    def tan(self): return ops.elementwise.tan(self)
    def asin(self): return ops.elementwise.asin(self)
    def acos(self): return ops.elementwise.acos(self)
    def atan(self): return ops.elementwise.atan(self)
    def sinh(self): return ops.elementwise.sinh(self)
    def cosh(self): return ops.elementwise.cosh(self)
    def asinh(self): return ops.elementwise.asinh(self)
    def acosh(self): return ops.elementwise.acosh(self)
    def atanh(self): return ops.elementwise.atanh(self)
    def log2(self): return ops.elementwise.log2(self)
    def log10(self): return ops.elementwise.log10(self)
    def log1p(self): return ops.elementwise.log1p(self)
    def exp2(self): return ops.elementwise.exp2(self)
    def expm1(self): return ops.elementwise.expm1(self)
    def rsqrt(self): return ops.elementwise.rsqrt(self)
    def reciprocal(self): return ops.elementwise.reciprocal(self)
    def square(self): return ops.elementwise.square(self)
    def erfc(self): return ops.elementwise.erfc(self)
    def frac(self): return ops.elementwise.frac(self)
    def floor(self): return ops.elementwise.floor(self)
    def ceil(self): return ops.elementwise.ceil(self)
    def trunc(self): return ops.elementwise.trunc(self)
    def sgn(self): return ops.elementwise.sgn(self)
    def isinf(self): return ops.elementwise.isinf(self)
    def isposinf(self): return ops.elementwise.isposinf(self)
    def isneginf(self): return ops.elementwise.isneginf(self)
    def atan2(self, other): return ops.elementwise.atan2(self, other)
    def hypot(self, other): return ops.elementwise.hypot(self, other)
    def logaddexp(self, other): return ops.elementwise.logaddexp(self, other)
    def logaddexp2(self, other): return ops.elementwise.logaddexp2(self, other)
    def xlogy(self, other): return ops.elementwise.xlogy(self, other)
    def copysign(self, other): return ops.elementwise.copysign(self, other)
    def floor_divide(self, other): return ops.elementwise.floor_divide(self, other)
    def fmod(self, other): return ops.elementwise.fmod(self, other)
    def remainder(self, other): return ops.elementwise.remainder(self, other)
    def equal(self, other): return ops.elementwise.equal(self, other)
    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return ops.elementwise.isclose(self, other, rtol, atol, equal_nan)
    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return ops.elementwise.allclose(self, other, rtol, atol, equal_nan)
    def logit(self, eps=None): return ops.elementwise.logit(self, eps)
    def lerp(self, end, weight): return ops.elementwise.lerp(self, end, weight)
    def round(self, decimals=0): return ops.elementwise.round(self, decimals=decimals)
    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return ops.elementwise.nan_to_num(self, nan, posinf, neginf)
    def clamp(self, min=None, max=None): return ops.elementwise.clamp(self, min, max)
    clip = clamp
    def maximum(self, other): return ops.elementwise.maximum(self, other)
    def minimum(self, other): return ops.elementwise.minimum(self, other)
    def where(self, condition, other): return ops.elementwise.where(condition, self, other)
    def eq(self, other): return self == other
    def ne(self, other): return self != other
    def lt(self, other): return self < other
    def le(self, other): return self <= other
    def gt(self, other): return self > other
    def ge(self, other): return self >= other
    def isnan(self): return ops.elementwise.isnan(self)
    def isfinite(self): return ops.elementwise.isfinite(self)
    # NOTE: reductions and scans pass their arguments through, so torch's axis=/keepdims=
    # aliases (accepted by the ops) work on the methods too
    def sum(self, *args, **kwargs): return ops.reduce.sum(self, *args, **kwargs)
    def mean(self, *args, **kwargs): return ops.reduce.mean(self, *args, **kwargs)
    def prod(self, *args, **kwargs): return ops.reduce.prod(self, *args, **kwargs)
    def all(self, *args, **kwargs): return ops.reduce.all(self, *args, **kwargs)
    def any(self, *args, **kwargs): return ops.reduce.any(self, *args, **kwargs)
    def aminmax(self, **kwargs): return ops.reduce.aminmax(self, **kwargs)
    def count_nonzero(self, *args, **kwargs): return ops.reduce.count_nonzero(self, *args, **kwargs)
    def nansum(self, *args, **kwargs): return ops.reduce.nansum(self, *args, **kwargs)
    def nanmean(self, *args, **kwargs): return ops.reduce.nanmean(self, *args, **kwargs)
    def cumsum(self, *args, **kwargs): return ops.scan.cumsum(self, *args, **kwargs)
    def cumprod(self, *args, **kwargs): return ops.scan.cumprod(self, *args, **kwargs)
    def cummax(self, *args, **kwargs): return ops.scan.cummax(self, *args, **kwargs)
    def cummin(self, *args, **kwargs): return ops.scan.cummin(self, *args, **kwargs)
    def logcumsumexp(self, *args, **kwargs): return ops.scan.logcumsumexp(self, *args, **kwargs)
    def max(self, dim=None, keepdim=False): return ops.reduce.max(self, dim, keepdim)
    def min(self, dim=None, keepdim=False): return ops.reduce.min(self, dim, keepdim)
    def amax(self, dim=None, keepdim=False): return ops.reduce.amax(self, dim, keepdim)
    def amin(self, dim=None, keepdim=False): return ops.reduce.amin(self, dim, keepdim)
    def argmax(self, dim=None, keepdim=False): return ops.reduce.argmax(self, dim, keepdim)
    def argmin(self, dim=None, keepdim=False): return ops.reduce.argmin(self, dim, keepdim)
    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return ops.reduce.var(self, dim, unbiased, keepdim, correction=correction)
    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return ops.reduce.std(self, dim, unbiased, keepdim, correction=correction)
    def logsumexp(self, dim, keepdim=False): return ops.reduce.logsumexp(self, dim, keepdim)
    def reshape(self, *shape): return ops.shape.reshape(self, *shape)
    def view(self, *shape): return ops.shape.reshape(self, *shape, op="view")
    def view_as(self, other): return ops.shape.reshape(self, other.shape, op="view_as")
    def permute(self, *dims): return ops.shape.permute(self, *dims)
    def transpose(self, dim0, dim1): return ops.shape.transpose(self, dim0, dim1)
    def t(self): return ops.shape.t(self)
    @property
    def T(self): return ops.shape.permute(self, *range(self.ndim - 1, -1, -1))
    @property
    def mT(self): return ops.shape.transpose(self, -2, -1)
    def squeeze(self, dim=None): return ops.shape.squeeze(self, dim)
    def unsqueeze(self, dim): return ops.shape.unsqueeze(self, dim)
    def flatten(self, start_dim=0, end_dim=-1): return ops.shape.flatten(self, start_dim, end_dim)
    def expand(self, *sizes): return ops.shape.expand(self, *sizes)
    def expand_as(self, other): return ops.shape.expand(self, other.shape)
    def contiguous(self): return ops.shape.contiguous(self)
    def split(self, split_size, dim=0): return ops.index.split(self, split_size, dim)
    def chunk(self, chunks, dim=0): return ops.index.chunk(self, chunks, dim)


from . import creation, ops  # noqa: E402  (they import Tensor, so they load after it)
