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
    data_address,
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


_NO_HOOKS: dict = {}  # shared and never written: a tensor's hooks until it registers one


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
                 "_version_box", "_accumulator_ref", "_device", "_retains_grad", "_base",
                 "_view_chain", "_view_version", "_post_accumulate_hooks", "__weakref__")
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
        # NOTE: a view's base (the tensor that is not a view whose memory it shares; None for
        # others), the view ops that take it from the base (None when it cannot be retaken
        # alone) and the version at which its history was last taken (autograd.inplace)
        self._base: Tensor | None = None
        self._view_chain: tuple | None = ()
        self._view_version = 0
        self._post_accumulate_hooks: dict = _NO_HOOKS

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
        return dtypes.is_floating(self.dtype)

    def is_contiguous(self) -> bool:
        return bool(self.array.flags.c_contiguous)

    def stride(self, dim: int | None = None):
        """Steps between elements along each dimension, in elements (torch.Tensor.stride)."""
        steps = tuple(s // self.array.itemsize for s in self.array.strides)
        if dim is None:
            return steps
        from .ops.util import normalize_dim
        return steps[normalize_dim("stride", dim, self.ndim)]

    def data_ptr(self) -> builtins.int:
        """The address of the first element (host or device memory)."""
        return data_address(self.array)

    def storage_offset(self) -> builtins.int:
        """Elements between the start of the base's memory and this tensor's first element."""
        if self._base is None:
            return 0
        return (self.data_ptr() - self._base.data_ptr()) // self.array.itemsize

    def is_set_to(self, other: "Tensor") -> builtins.bool:
        return (self.data_ptr(), self.shape, self.stride()) == (
            other.data_ptr(), other.shape, other.stride())

    def _is_view(self) -> builtins.bool:
        return self._base is not None

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
        if value and not dtypes.is_floating(self.dtype):
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

    def register_post_accumulate_grad_hook(self, hook) -> RemovableHandle:
        """Call `hook(tensor)` on a leaf after its `.grad` has been accumulated (torch's)."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._post_accumulate_hooks is _NO_HOOKS:
            self._post_accumulate_hooks = {}
        handle = RemovableHandle(self._post_accumulate_hooks)
        self._post_accumulate_hooks[handle.id] = hook
        return handle

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

    def bfloat16(self) -> "Tensor":
        return self.to(dtypes.bfloat16)

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
        """PyTorch's text for the tensor, `str` too (gradflow.printing)."""
        from .printing import tensor_repr
        return tensor_repr(self)

    # -- in-place ops: outside the graph (optimizers, initialisers) or inside it, where the
    # -- history is rebased onto the op (autograd.inplace)
    def _apply_inplace(self, name: str, fn, *args, **kwargs) -> "Tensor":
        return inplace.apply_inplace(self, name, fn, args, kwargs)

    def add_(self, other, *, alpha=1) -> "Tensor":
        return self._apply_inplace("add_", Tensor.add, other, alpha=alpha)

    def sub_(self, other, *, alpha=1) -> "Tensor":
        return self._apply_inplace("sub_", Tensor.sub, other, alpha=alpha)

    def copy_(self, src: "Tensor", non_blocking: builtins.bool = False) -> "Tensor":
        if not isinstance(src, Tensor):
            raise TypeError(f"copy_: expected a Tensor source, got {type(src).__name__}")
        inplace.check_writable(self, "copy_")
        if not inplace.records(self, (src,), {}):
            arr = move_array(src.array, self.device)
            try:
                with on_device(self.device):
                    self._xp.copyto(self.array, arr, casting="unsafe")
            except ValueError:
                raise RuntimeError(f"copy_: source of shape {tuple(src.shape)} cannot be "
                                   f"broadcast to the destination's shape "
                                   f"{tuple(self.shape)}") from None
            self._version_box[0] += 1
            return self
        return inplace.apply_inplace(self, "copy_", _copied, (src,), any_dtype=True)

    def fill_(self, value) -> "Tensor":
        if isinstance(value, Tensor) and value.ndim:
            raise RuntimeError(f"fill_: only supports 0-dimension value tensor but got tensor "
                               f"with {value.ndim} dimensions")
        inplace.check_writable(self, "fill_")
        if not inplace.records(self, (value,), {}):
            value = value.item() if isinstance(value, Tensor) else value
            with on_device(self.device):
                self.array.fill(value)
            self._version_box[0] += 1
            return self
        return inplace.apply_inplace(self, "fill_", _copied, (value,), any_dtype=True)

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    # -- in-place layout changes: the tensor becomes a view of itself
    def t_(self) -> "Tensor":
        return inplace.restride(self, "t_", Tensor.t, ())

    def transpose_(self, dim0: builtins.int, dim1: builtins.int) -> "Tensor":
        return inplace.restride(self, "transpose_", Tensor.transpose, (dim0, dim1))

    def swapaxes_(self, axis0: builtins.int, axis1: builtins.int) -> "Tensor":
        return inplace.restride(self, "swapaxes_", Tensor.transpose, (axis0, axis1))

    swapdims_ = swapaxes_

    def squeeze_(self, dim: Any = None) -> "Tensor":
        return inplace.restride(self, "squeeze_", Tensor.squeeze, (dim,))

    def unsqueeze_(self, dim: builtins.int) -> "Tensor":
        return inplace.restride(self, "unsqueeze_", Tensor.unsqueeze, (dim,))

    # -- random fills (torch's Tensor.uniform_ and kin): draws of this tensor's shape, dtype
    # -- and device, written as any in-place op is (a history that needed them gets zeros)
    def _fill_random(self, name: str, draw: Callable[[], "Tensor"],
                     floats_only: builtins.bool = True) -> "Tensor":
        if floats_only and not dtypes.is_floating(self.dtype):
            raise NotImplementedError(f"{name}: not implemented for "
                                      f"{dtypes.torch_name(self.dtype)} tensors (floating point "
                                      "only, as in PyTorch)")
        with no_grad():
            values = draw()
        return inplace.apply_inplace(self, name, lambda t: values, any_dtype=True)

    def _draw_uniform(self, generator, dtype=None) -> "Tensor":
        return creation.rand(*self.shape, generator=generator, device=self.device,
                             dtype=self.dtype if dtype is None else dtype)

    def uniform_(self, a: builtins.float = 0.0, b: builtins.float = 1.0, *,
                 generator=None) -> "Tensor":
        """Fill with samples uniform in [a, b)."""
        if a > b:
            raise RuntimeError(f"uniform_: expects to return a [from, to) range, but found "
                               f"from={a} > to={b}")
        return self._fill_random("uniform_",
                                 lambda: self._draw_uniform(generator) * (b - a) + a)

    def normal_(self, mean: builtins.float = 0.0, std: builtins.float = 1.0, *,
                generator=None) -> "Tensor":
        """Fill with normal samples of the given mean and standard deviation."""
        if std < 0:
            raise RuntimeError(f"normal_: expects std >= 0.0, but found std {std}")
        return self._fill_random("normal_", lambda: creation.normal(
            mean, std, tuple(self.shape), generator=generator, dtype=self.dtype,
            device=self.device))

    def exponential_(self, lambd: builtins.float = 1.0, *, generator=None) -> "Tensor":
        """Fill with exponential samples of rate `lambd` (by inverting the distribution)."""
        if not lambd > 0:
            raise RuntimeError(f"exponential_: expects lambda > 0.0, but found lambda={lambd}")
        return self._fill_random("exponential_", lambda: ops.elementwise.log1p(
            -self._draw_uniform(generator)) * (-1.0 / lambd))

    def bernoulli_(self, p: Any = 0.5, *, generator=None) -> "Tensor":
        """Fill with 1 where a uniform draw falls below p (a number or a tensor), else 0."""
        if not isinstance(p, Tensor) and not 0 <= p <= 1:
            raise RuntimeError(f"bernoulli_: expects p to be in [0, 1], but got p={p}")
        return self._fill_random("bernoulli_", lambda: self._draw_uniform(
            generator, dtypes.float64) < p, floats_only=False)

    def bernoulli(self, *, generator=None) -> "Tensor":
        """1 with probability self (elementwise), else 0 (torch.bernoulli)."""
        return creation.empty_like(self).bernoulli_(self.detach(), generator=generator)

    def random_(self, *bounds: builtins.int, generator=None) -> "Tensor":
        """Fill with integers uniform in [from, to): `random_(to)`, `random_(from, to)`, or
        `random_()` for [0, 2**mantissa] (floats) or [0, the dtype's max] (integers)."""
        if len(bounds) > 2:
            raise TypeError(f"random_: takes at most 2 bounds (from, to), got {len(bounds)}")
        if len(bounds) == 2:
            low, high = bounds
        elif bounds:
            low, high = 0, bounds[0]
        elif dtypes.is_floating(self.dtype):
            low, high = 0, 2 ** np.finfo(self.dtype).nmant + 2
        else:
            low, high = 0, (1 if self.dtype.kind == "b" else np.iinfo(self.dtype).max) + 1
        if high <= low:
            raise RuntimeError(f"random_: expects 'from' to be less than 'to', but got "
                               f"from={low} >= to={high}")
        return self._fill_random("random_", lambda: creation.randint(
            low, high, tuple(self.shape), generator=generator, device=self.device),
            floats_only=False)

    def __setitem__(self, index, value) -> None:
        if not inplace.records(self, (value,), {}):
            inplace.check_writable(self, "__setitem__")
            with on_device(self.device):
                ops.index.setitem(self, index, value)
            self._version_box[0] += 1
        elif _is_basic_index(index):
            inplace.apply_inplace(self[index], "__setitem__", _copied, (value,), any_dtype=True)
        else:
            inplace.apply_inplace(self, "__setitem__", _indices_put, (index, value),
                                  any_dtype=True)

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
    def add(self, other, *, alpha=1): return ops.elementwise.add(self, other, alpha=alpha)
    def sub(self, other, *, alpha=1): return ops.elementwise.sub(self, other, alpha=alpha)
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
    def bitwise_and(self, other): return ops.elementwise.bitwise_and(self, other)
    def bitwise_or(self, other): return ops.elementwise.bitwise_or(self, other)
    def bitwise_xor(self, other): return ops.elementwise.bitwise_xor(self, other)
    def bitwise_not(self): return ops.elementwise.bitwise_not(self)
    def bitwise_left_shift(self, other): return ops.elementwise.bitwise_left_shift(self, other)
    def bitwise_right_shift(self, other): return ops.elementwise.bitwise_right_shift(self, other)
    def logical_and(self, other): return ops.elementwise.logical_and(self, other)
    def logical_or(self, other): return ops.elementwise.logical_or(self, other)
    def logical_xor(self, other): return ops.elementwise.logical_xor(self, other)
    def logical_not(self): return ops.elementwise.logical_not(self)
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
    def view(self, *shape): return ops.shape.view(self, *shape)
    def view_as(self, other): return ops.shape.view_as(self, other)
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
    def expand_as(self, other): return ops.shape.expand_as(self, other)
    def contiguous(self): return ops.shape.contiguous(self)
    def split(self, split_size, dim=0): return ops.index.split(self, split_size, dim)
    def chunk(self, chunks, dim=0): return ops.index.chunk(self, chunks, dim)

    # -- sorting and selection (ops/sort.py) ----------------------------------------------------
    def sort(self, *args, **kwargs): return ops.sort.sort(self, *args, **kwargs)
    def argsort(self, *args, **kwargs): return ops.sort.argsort(self, *args, **kwargs)
    def msort(self): return ops.sort.msort(self)
    def topk(self, *args, **kwargs): return ops.sort.topk(self, *args, **kwargs)
    def kthvalue(self, *args, **kwargs): return ops.sort.kthvalue(self, *args, **kwargs)
    def median(self, *args, **kwargs): return ops.sort.median(self, *args, **kwargs)
    def nanmedian(self, *args, **kwargs): return ops.sort.nanmedian(self, *args, **kwargs)
    def mode(self, *args, **kwargs): return ops.sort.mode(self, *args, **kwargs)
    def unique(self, *args, **kwargs): return ops.sort.unique(self, *args, **kwargs)
    def unique_consecutive(self, *args, **kwargs):
        return ops.sort.unique_consecutive(self, *args, **kwargs)
    def erfinv(self): return ops.elementwise.erfinv(self)
    # -- products and linear algebra (ops/products.py, ops/linalg.py) --------------------------
    def mm(self, mat2): return ops.products.mm(self, mat2)
    def bmm(self, mat2): return ops.products.bmm(self, mat2)
    def mv(self, vec): return ops.products.mv(self, vec)
    def dot(self, other): return ops.products.dot(self, other)
    def vdot(self, other): return ops.products.vdot(self, other)
    def outer(self, vec2): return ops.products.outer(self, vec2)
    def ger(self, vec2): return ops.products.outer(self, vec2)
    def inner(self, other): return ops.products.inner(self, other)
    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        return ops.products.addmm(self, mat1, mat2, beta=beta, alpha=alpha)
    def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return ops.products.addbmm(self, batch1, batch2, beta=beta, alpha=alpha)
    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return ops.products.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)
    def addmv(self, mat, vec, *, beta=1, alpha=1):
        return ops.products.addmv(self, mat, vec, beta=beta, alpha=alpha)
    def kron(self, other): return ops.products.kron(self, other)
    def cross(self, other, dim=None): return ops.products.cross(self, other, dim)
    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return ops.linalg.legacy_norm(self, p, dim, keepdim, dtype)
    def inverse(self): return ops.linalg.inv(self)
    def det(self): return ops.linalg.det(self)
    def logdet(self): return ops.linalg.logdet(self)
    def slogdet(self): return ops.linalg.legacy_slogdet(self)
    def cholesky(self, upper=False): return ops.linalg.legacy_cholesky(self, upper)
    def qr(self, some=True): return ops.linalg.legacy_qr(self, some)
    def svd(self, some=True, compute_uv=True): return ops.linalg.legacy_svd(self, some, compute_uv)
    def pinverse(self, rcond=1e-15): return ops.linalg.pinverse(self, rcond)
    # -- shape and layout (ops/shape.py) --------------------------------------------------------
    def repeat(self, *sizes): return ops.layout.repeat(self, *sizes)
    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        return ops.layout.repeat_interleave(self, repeats, dim, output_size=output_size)
    def tile(self, dims): return ops.layout.tile(self, dims)
    def roll(self, shifts, dims=None): return ops.layout.roll(self, shifts, dims)
    def flip(self, *dims): return ops.layout.flip(self, ops.shape._sizes("flip", dims))
    def fliplr(self): return ops.layout.fliplr(self)
    def flipud(self): return ops.layout.flipud(self)
    def rot90(self, k=1, dims=(0, 1)): return ops.layout.rot90(self, k, dims)
    def tril(self, diagonal=0): return ops.layout.tril(self, diagonal)
    def triu(self, diagonal=0): return ops.layout.triu(self, diagonal)
    def diag(self, diagonal=0): return ops.layout.diag(self, diagonal)
    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        return ops.layout.diag_embed(self, offset, dim1, dim2)
    def diagonal(self, offset=0, dim1=0, dim2=1):
        return ops.shape.diagonal(self, offset, dim1, dim2)
    def unfold(self, dimension, size, step): return ops.shape.unfold(self, dimension, size, step)
    def unflatten(self, dim, sizes): return ops.shape.unflatten(self, dim, sizes)
    def unbind(self, dim=0): return ops.shape.unbind(self, dim)
    def narrow(self, dim, start, length): return ops.shape.narrow(self, dim, start, length)
    def movedim(self, source, destination): return ops.shape.movedim(self, source, destination)
    def moveaxis(self, source, destination): return ops.shape.moveaxis(self, source, destination)
    def swapaxes(self, axis0, axis1): return ops.shape.swapaxes(self, axis0, axis1)
    def swapdims(self, dim0, dim1): return ops.shape.swapdims(self, dim0, dim1)
    def broadcast_to(self, size): return ops.shape.broadcast_to(self, size)
    def reshape_as(self, other): return ops.shape.reshape_as(self, other)
    def tensor_split(self, *args, **kwargs):
        return ops.split_stack.tensor_split(self, *args, **kwargs)
    def hsplit(self, sections): return ops.split_stack.hsplit(self, sections)
    def vsplit(self, sections): return ops.split_stack.vsplit(self, sections)
    def dsplit(self, sections): return ops.split_stack.dsplit(self, sections)
    # -- gathering, scattering and masks (ops/index.py) -----------------------------------------
    def gather(self, dim, index, *, sparse_grad=False): return ops.index.gather(self, dim, index)
    def scatter(self, dim, index, src=None, *, value=None):
        return ops.index.scatter(self, dim, index, src, value=value)
    def scatter_add(self, dim, index, src): return ops.index.scatter_add(self, dim, index, src)
    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        return ops.index.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)
    def index_select(self, dim, index): return ops.index.index_select(self, dim, index)
    def index_add(self, dim, index, source, *, alpha=1):
        return ops.index.index_add(self, dim, index, source, alpha=alpha)
    def index_copy(self, dim, index, source): return ops.index.index_copy(self, dim, index, source)
    def index_fill(self, dim, index, value): return ops.index.index_fill(self, dim, index, value)
    def index_put(self, indices, values, accumulate=False):
        return ops.index.index_put(self, indices, values, accumulate)
    def take(self, index): return ops.index.take(self, index)
    def take_along_dim(self, indices, dim=None): return ops.index.take_along_dim(self, indices, dim)
    def masked_fill(self, mask, value): return ops.index.masked_fill(self, mask, value)
    def masked_select(self, mask): return ops.index.masked_select(self, mask)
    def masked_scatter(self, mask, source): return ops.index.masked_scatter(self, mask, source)
    def nonzero(self, *, as_tuple=False): return ops.index.nonzero(self, as_tuple=as_tuple)
    def argwhere(self): return ops.index.argwhere(self)

    # -- aliases and further elementwise and counting ops (round 2) -----------------------------
    arccos, arccosh, arcsin, arcsinh, arctan, arctanh = acos, acosh, asin, asinh, atan, atanh
    arctan2, negative, fix, absolute, multiply, subtract = atan2, neg, trunc, abs, mul, sub
    divide, greater, less, greater_equal, less_equal, not_equal = div, gt, lt, ge, le, ne
    def true_divide(self, other): return ops.elementwise.true_divide(self, other)
    def positive(self): return ops.elementwise.positive(self)
    def clamp_min(self, min): return ops.elementwise.clamp_min(self, min)
    def clamp_max(self, max): return ops.elementwise.clamp_max(self, max)
    def deg2rad(self): return ops.elementwise.deg2rad(self)
    def rad2deg(self): return ops.elementwise.rad2deg(self)
    def sinc(self): return ops.elementwise.sinc(self)
    def i0(self): return ops.elementwise.i0(self)
    def signbit(self): return ops.elementwise.signbit(self)
    def frexp(self): return ops.elementwise.frexp(self)
    def gcd(self, other): return ops.elementwise.gcd(self, other)
    def lcm(self, other): return ops.elementwise.lcm(self, other)
    def ldexp(self, other): return ops.elementwise.ldexp(self, other)
    def float_power(self, exponent): return ops.elementwise.float_power(self, exponent)
    def heaviside(self, values): return ops.elementwise.heaviside(self, values)
    def fmax(self, other): return ops.elementwise.fmax(self, other)
    def fmin(self, other): return ops.elementwise.fmin(self, other)
    def nextafter(self, other): return ops.elementwise.nextafter(self, other)
    def addcmul(self, tensor1, tensor2, *, value=1):
        return ops.elementwise.addcmul(self, tensor1, tensor2, value=value)
    def addcdiv(self, tensor1, tensor2, *, value=1):
        return ops.elementwise.addcdiv(self, tensor1, tensor2, value=value)
    def is_nonzero(self): return ops.elementwise.is_nonzero(self)
    def histc(self, bins=100, min=0, max=0): return ops.counting.histc(self, bins, min, max)
    def bincount(self, weights=None, minlength=0):
        return ops.counting.bincount(self, weights, minlength)
    def trace(self): return ops.products.trace(self)
    def matrix_power(self, n): return ops.linalg.matrix_power(self, n)
    def dist(self, other, p=2): return ops.linalg.dist(self, other, p)
    def ravel(self): return ops.shape.ravel(self)
    def select(self, dim, index): return ops.shape.select(self, dim, index)
    def narrow_copy(self, dim, start, length):
        return ops.layout.narrow_copy(self, dim, start, length)
    def diff(self, n=1, dim=-1, prepend=None, append=None):
        return ops.layout.diff(self, n, dim, prepend, append)
    def index_reduce(self, dim, index, source, reduce, *, include_self=True):
        return ops.index.index_reduce(self, dim, index, source, reduce, include_self=include_self)
    # -- activations and softmax as methods (nn.functional) -------------------------------------
    def softmax(self, dim, dtype=None):
        from .nn.functional import softmax  # NOTE: nn loads after this module
        return softmax(self, dim, dtype=dtype)
    def log_softmax(self, dim, dtype=None):
        from .nn.functional import log_softmax
        return log_softmax(self, dim, dtype=dtype)
    # --- DLPack (interop helper) ---
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        from .utils.dlpack import export  # NOTE: utils loads after this module
        return export(self, stream, max_version, dl_device, copy)
    def __dlpack_device__(self):
        from .utils.dlpack import dlpack_device
        return dlpack_device(self)


from . import creation, ops  # noqa: E402  (they import Tensor, so they load after it)
from .autograd import inplace  # noqa: E402


def _is_basic_index(index: Any) -> builtins.bool:
    """An index of ints, slices, None and Ellipsis only, which takes a view."""
    items = index if isinstance(index, tuple) else (index,)
    return all(it is None or it is Ellipsis or isinstance(it, slice)
               or (isinstance(it, (builtins.int, np.integer)) and not isinstance(it, builtins.bool))
               for it in items)


def _copied(target: Tensor, value: Any) -> Tensor:
    """`value` broadcast to target's shape on its device: what copy_, fill_ and item
    assignment write (differentiable in a tensor value)."""
    if not isinstance(value, Tensor):
        with on_device(target.device):
            return Tensor._wrap(target._xp.full(target.shape, value, target.dtype))
    try:
        shape = np.broadcast_shapes(value.shape, target.shape)
    except ValueError:
        shape = None
    if shape != target.shape:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be "
                           f"broadcast to the destination of shape {list(target.shape)}")
    if value.device != target.device:
        value = value.to(target.device)
    return value.expand(target.shape)


def _indices_put(target: Tensor, index: Any, value: Any) -> Tensor:
    """target with `target[index] = value` applied, out of place (advanced indices)."""
    if not isinstance(value, Tensor):
        value = creation.tensor(value, dtype=target.dtype, device=target.device)
    elif value.dtype != target.dtype:
        value = value.to(target.dtype)
    return ops.index.index_put(target, index, value)


def _inplace_form(name: str, any_dtype: builtins.bool) -> Callable:
    """`Tensor.<name>_`: the method `name` computed, then written into the tensor."""
    method = getattr(Tensor, name)

    def form(self, *args, **kwargs):
        return inplace.apply_inplace(self, name + "_", method, args, kwargs, any_dtype)

    form.__name__ = form.__qualname__ = name + "_"
    form.__doc__ = f"In-place `{name}` (torch.Tensor.{name}_)."
    return form


# NOTE: the in-place forms of the elementwise, triangle and scatter ops; comparisons and
# logical ops write their bools as the tensor's dtype, as PyTorch's do
_INPLACE = """abs acos acosh asin asinh atan atan2 atanh bitwise_and bitwise_left_shift
    bitwise_not bitwise_or bitwise_right_shift bitwise_xor ceil clamp clip copysign cos cosh div
    erf erfc exp exp2 expm1 floor floor_divide fmod frac hypot lerp log log10 log1p log2 logit
    mul nan_to_num neg pow reciprocal relu remainder round rsqrt sgn sigmoid sign sin sinh sqrt
    square tan tanh trunc xlogy erfinv tril triu index_add index_copy index_fill index_put
    masked_fill masked_scatter scatter scatter_add scatter_reduce arccos arccosh arcsin arcsinh
    arctan arctan2 arctanh negative fix absolute multiply divide subtract true_divide clamp_min
    clamp_max deg2rad rad2deg sinc gcd lcm ldexp i0 float_power heaviside nextafter addcmul
    addcdiv index_reduce addmm addbmm addmv baddbmm cumsum cumprod""".split()
_INPLACE_ANY_DTYPE = """eq ne lt le gt ge logical_and logical_or logical_xor logical_not greater
    less greater_equal less_equal not_equal""".split()
for _name in _INPLACE:
    setattr(Tensor, _name + "_", _inplace_form(_name, False))
for _name in _INPLACE_ANY_DTYPE:
    setattr(Tensor, _name + "_", _inplace_form(_name, True))
