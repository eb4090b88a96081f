"""DLPack (gradflow.utils.dlpack): zero-copy round trips with NumPy and PyTorch in both
directions (a write through one side is seen by the other), views with their strides, every
dtype gradflow holds, legacy capsules, the errors, the CuPy path's routing on the fake CuPy,
and real CuPy (marked gpu) for zero copy and the stream handshake."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from helpers import check_op_raises, data, require_torch

import gradflow as gf
from gradflow import backend
from gradflow.utils.dlpack import DLDeviceType, from_dlpack, to_dlpack

torch = require_torch()

# gradflow's dtypes and PyTorch's names for them (NumPy shares all but bfloat16)
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
          "float64": torch.float64, "int8": torch.int8, "uint8": torch.uint8,
          "int16": torch.int16, "int32": torch.int32, "int64": torch.int64, "bool": torch.bool}
NUMPY_DTYPES = [name for name in DTYPES if name != "bfloat16"]
SHAPES = [(), (1,), (7,), (3, 5), (2, 1, 3)]


def values(shape, dtype) -> np.ndarray:
    """Distinct small values of `dtype` (bools alternate), exactly representable in each."""
    n = int(np.prod(shape))
    if np.dtype(dtype) == np.bool_:
        return (np.arange(n) % 2 == 0).reshape(shape)
    return np.arange(1, n + 1).reshape(shape).astype(dtype)


def one(dtype):
    return True if np.dtype(dtype) == np.bool_ else 1


def same_memory(a, b) -> None:
    """Both hold their first element at one address (zero copy)."""
    address_a = a.data_ptr() if hasattr(a, "data_ptr") else a.ctypes.data
    address_b = b.data_ptr() if hasattr(b, "data_ptr") else b.ctypes.data
    assert address_a == address_b, f"copied: {address_a:#x} != {address_b:#x}"


# -- NumPy ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NUMPY_DTYPES)
def test_numpy_to_gradflow_shares_memory_both_ways(name, shape):
    dtype = gf.dtypes.as_dtype(name)
    a = values(shape, dtype)
    t = gf.from_dlpack(a)
    assert t.dtype == dtype and tuple(t.shape) == shape and t.device == "cpu"
    same_memory(t, a)
    t[...] = 0  # a write through gradflow is seen by NumPy
    np.testing.assert_array_equal(a, np.zeros(shape, dtype))
    a[...] = one(dtype)  # and one through NumPy by gradflow
    np.testing.assert_array_equal(t.numpy(), np.full(shape, one(dtype), dtype))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NUMPY_DTYPES)
def test_gradflow_to_numpy_shares_memory_both_ways(name, shape):
    dtype = gf.dtypes.as_dtype(name)
    t = gf.tensor(values(shape, dtype))
    a = np.from_dlpack(t)
    assert a.dtype == dtype and a.shape == shape and a.flags.writeable
    same_memory(t, a)
    np.testing.assert_array_equal(a, values(shape, dtype))
    a[...] = 0
    np.testing.assert_array_equal(t.numpy(), np.zeros(shape, dtype))
    t.fill_(one(dtype))
    np.testing.assert_array_equal(a, np.full(shape, one(dtype), dtype))


# -- PyTorch -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(DTYPES))
def test_torch_to_gradflow_shares_memory_both_ways(name, shape):
    th_dtype = DTYPES[name]
    src = torch.tensor(values(shape, np.float32)).to(th_dtype)
    t = gf.from_dlpack(src)
    assert t.dtype == gf.dtypes.as_dtype(name) and tuple(t.shape) == shape
    same_memory(t, src)
    np.testing.assert_array_equal(t.float().numpy(), src.float().numpy())
    t.fill_(0)
    assert not src.any(), src
    src.fill_(1)
    assert t.all().item(), t


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(DTYPES))
def test_gradflow_to_torch_shares_memory_both_ways(name, shape):
    t = gf.tensor(values(shape, np.float32)).to(gf.dtypes.as_dtype(name))
    out = torch.from_dlpack(t)
    assert out.dtype == DTYPES[name] and tuple(out.shape) == shape
    same_memory(t, out)
    np.testing.assert_array_equal(out.float().numpy(), t.float().numpy())
    out.fill_(0)
    assert not t.any().item(), t
    t.fill_(1)
    assert out.all(), out


VIEWS = {"transpose": lambda x: x.t(), "step": lambda x: x[:, ::2],
         "column": lambda x: x[:, 1], "offset": lambda x: x[1:, 2:],
         "permute": lambda x: x.reshape(2, 3, 5).permute(2, 0, 1)}


@pytest.mark.parametrize("view", list(VIEWS))
def test_a_gradflow_view_exports_with_its_strides(view):
    base = gf.tensor(data(6, 5))
    v = VIEWS[view](base)
    out = torch.from_dlpack(v)
    assert out.stride() == v.stride(), (out.stride(), v.stride())
    np.testing.assert_array_equal(out.numpy(), v.numpy())
    same_memory(out, v)
    out.mul_(-2)  # through torch's view into gradflow's base
    expected = torch.tensor(data(6, 5))
    VIEWS[view](expected).mul_(-2)
    np.testing.assert_array_equal(base.numpy(), expected.numpy())
    a = np.from_dlpack(v)  # NumPy reads the same strides
    assert a.strides == v.array.strides
    np.testing.assert_array_equal(a, v.numpy())


def test_a_torch_view_imports_with_its_strides():
    base = torch.arange(30.).reshape(5, 6)
    src = base.t()[::2]
    t = gf.from_dlpack(src)
    assert t.stride() == src.stride() and not t.is_contiguous()
    t[0, 0] = -1.0
    assert base[0, 0].item() == -1.0
    np.testing.assert_array_equal(t.numpy(), src.numpy())


def test_negative_strides_leave_as_a_copy_or_not_at_all():
    # NOTE: PyTorch aborts on a DLPack tensor with negative strides; gradflow exports a copy
    a = np.arange(6.0)[::-1]
    t = gf.from_dlpack(a)
    assert t.array.strides == (-8,)
    out = torch.from_dlpack(t)
    np.testing.assert_array_equal(out.numpy(), a)
    assert out.stride() == (1,)
    with pytest.raises(BufferError, match=r"__dlpack__: a tensor with negative strides"):
        t.__dlpack__(copy=False)


def test_torch_bfloat16_crosses_numpy_free_as_gradflow_bfloat16():
    src = torch.tensor([1.5, -2.0, 3.25]).to(torch.bfloat16)
    t = gf.from_dlpack(src)
    assert t.dtype == gf.bfloat16
    np.testing.assert_array_equal(t.float().numpy(), [1.5, -2.0, 3.25])
    # NumPy itself cannot read a bfloat16 capsule: that refusal is NumPy's
    with pytest.raises(RuntimeError, match="Unsupported dtype"):
        np.from_dlpack(t)


# -- legacy capsules (torch.utils.dlpack.to_dlpack) -----------------------------------------------
def test_a_legacy_capsule_from_torch_imports_writable_and_shared():
    src = torch.arange(6.).reshape(2, 3)
    capsule = torch.utils.dlpack.to_dlpack(src)
    t = gf.from_dlpack(capsule)
    same_memory(t, src)
    t[1, 2] = 40.0  # writable, as torch.from_dlpack's result is
    assert src[1, 2].item() == 40.0
    src[0, 0] = -3.0
    assert t[0, 0].item() == -3.0


def test_legacy_capsules_of_bfloat16_and_of_nothing():
    src = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).to(torch.bfloat16).t()
    t = gf.from_dlpack(torch.utils.dlpack.to_dlpack(src))
    assert t.dtype == gf.bfloat16 and t.stride() == src.stride()
    t[0, 1] = 8.0
    assert src[0, 1].item() == 8.0
    empty = gf.from_dlpack(torch.utils.dlpack.to_dlpack(torch.zeros(0, 3)))
    assert tuple(empty.shape) == (0, 3) and empty.array.flags.writeable  # though it holds nothing
    for lib in (gf, torch):
        empty = lib.from_dlpack(np.zeros((2, 0), np.int64))
        assert tuple(empty.shape) == (2, 0) and str(empty.dtype).endswith("int64")


def test_to_dlpack_gives_a_legacy_capsule_torch_reads_in_place():
    t = gf.arange(5.0)
    capsule = gf.utils.dlpack.to_dlpack(t)
    assert "dltensor" in repr(capsule) and "versioned" not in repr(capsule)
    out = torch.from_dlpack(capsule)
    out[4] = 9.0
    assert t[4].item() == 9.0
    b = gf.tensor([1.0, 2.0]).to(gf.bfloat16)  # bfloat16 too
    assert torch.from_dlpack(to_dlpack(b)).dtype == torch.bfloat16


def test_to_dlpack_exports_a_tensor_that_requires_grad_as_torch_does():
    for lib in (gf, torch):
        x = lib.ones(3, requires_grad=True)
        out = lib.from_dlpack(lib.utils.dlpack.to_dlpack(x))
        assert not out.requires_grad
        np.testing.assert_array_equal(np.asarray(out.tolist()), np.ones(3))


# -- autograd: an imported tensor is a leaf --------------------------------------------------------
def test_an_imported_tensor_is_a_leaf_autograd_treats_like_any_other():
    a = data(3, 4)
    grads = []
    for lib in (gf, torch):
        x = lib.from_dlpack(a.copy())
        assert x.is_leaf and not x.requires_grad and x.grad_fn is None
        x.requires_grad_()
        (x.sin() * x).sum().backward()
        grads.append(np.asarray(x.grad.tolist()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    np.testing.assert_allclose(grads[0], np.sin(a) + a * np.cos(a), rtol=1e-12)


def test_an_imported_tensor_does_not_carry_the_producers_graph():
    x = gf.tensor(data(3), requires_grad=True)
    y = gf.from_dlpack((x * 2).detach())
    assert y.is_leaf and y.grad_fn is None and not y.requires_grad


# -- copy and device -----------------------------------------------------------------------------
def test_copy_and_device_arguments():
    a = np.arange(4.0)
    shared = gf.from_dlpack(a, device="cpu", copy=False)
    same_memory(shared, a)
    copied = gf.from_dlpack(a, copy=True)
    copied[0] = 5.0
    assert a[0] == 0.0 and copied[0].item() == 5.0
    src = torch.arange(3.)
    copied = gf.from_dlpack(src, copy=True)
    copied[0] = 7.0
    assert src[0].item() == 0.0


def test_the_names_mirror_torch():
    assert gf.from_dlpack is from_dlpack is gf.utils.dlpack.from_dlpack
    assert [m.name for m in DLDeviceType] == [m.name for m in torch.utils.dlpack.DLDeviceType]


def test_numpy_asks_for_a_copy_or_the_cpu_and_gets_it():
    t = gf.arange(3.0)
    copied = np.from_dlpack(t, copy=True)
    copied[0] = 5.0
    assert t[0].item() == 0.0
    same_memory(np.from_dlpack(t, device="cpu"), t)


def test_dlpack_device_names_the_cpu_as_torch_does():
    t = gf.zeros(2)
    assert t.__dlpack_device__() == torch.zeros(2).__dlpack_device__() == (DLDeviceType.kDLCPU, 0)
    assert isinstance(t.__dlpack_device__()[0], DLDeviceType)


# -- errors --------------------------------------------------------------------------------------
def test_exporting_a_tensor_that_requires_grad_raises_torchs_error():
    x = data(2, 3)
    err = check_op_raises(lambda lib, t: t.requires_grad_().__dlpack__(), x, op="__dlpack__")
    assert "detach()" in str(err)
    err = check_op_raises(lambda lib, t: lib.from_dlpack(t.requires_grad_()), x,
                          op="__dlpack__")
    assert isinstance(err, BufferError)
    with pytest.raises(BufferError, match="require gradient"):
        torch.from_dlpack(gf.ones(2, requires_grad=True))


def test_stream_errors_on_the_cpu_match_torch():
    x = data(3)
    err = check_op_raises(lambda lib, t: t.__dlpack__(stream=5), x, op="__dlpack__")
    assert "stream should be None on cpu" in str(err)
    err = check_op_raises(lambda lib, t: t.__dlpack__(stream="s"), x, op="__dlpack__")
    assert "int" in str(err)
    gf.tensor(x).__dlpack__(stream=-1)  # -1 means no ordering: fine on the CPU, as in torch


def test_a_capsule_is_consumed_once():
    def twice(lib, t):
        capsule = lib.utils.dlpack.to_dlpack(t)
        lib.from_dlpack(capsule)
        lib.from_dlpack(capsule)

    err = check_op_raises(twice, data(3), op="from_dlpack")
    assert "used_dltensor" in str(err) and "consumed only once" in str(err)


def test_device_and_copy_are_refused_with_a_capsule():
    err = check_op_raises(lambda lib, t: lib.from_dlpack(lib.utils.dlpack.to_dlpack(t),
                                                         copy=True), data(2), op="from_dlpack")
    assert "capsule" in str(err)


def test_moving_without_a_copy_is_refused():
    err = check_op_raises(lambda lib, t: lib.from_dlpack(t, device="cuda", copy=False),
                          data(2), op="from_dlpack")
    assert "without copying" in str(err)


@pytest.mark.parametrize("th_dtype, name", [(torch.uint16, "uint16"), (torch.uint32, "uint32"),
                                            (torch.complex64, "complex64"),
                                            (torch.float8_e4m3fn, "float8_e4m3fn"),
                                            (torch.complex32, "complex32")])
def test_a_dtype_gradflow_lacks_is_refused_by_name(th_dtype, name):
    with pytest.warns(UserWarning) if th_dtype == torch.complex32 else \
            contextlib.nullcontext():
        src = torch.zeros(3, dtype=th_dtype)
    with pytest.raises(TypeError, match=rf"from_dlpack: dtype {name} is not supported"):
        gf.from_dlpack(src)


def test_a_numpy_dtype_gradflow_lacks_is_refused_by_name():
    with pytest.raises(TypeError, match="from_dlpack: dtype complex128 is not supported"):
        gf.from_dlpack(np.zeros(2, np.complex128))


def test_exporting_to_another_device_is_refused():
    with pytest.raises(BufferError):
        gf.zeros(2).__dlpack__(dl_device=(DLDeviceType.kDLCUDA, 0))
    capsule = gf.zeros(2).__dlpack__(dl_device=(DLDeviceType.kDLCPU, 0))  # its own: fine
    assert "dltensor" in repr(capsule)


class Producer:
    """A DLPack producer on a device of our choosing, recording what it was asked."""

    def __init__(self, device, capsule=None) -> None:
        self.device, self.capsule, self.asked = device, capsule, []

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, **kwargs):
        self.asked.append(kwargs)
        return self.capsule


def test_an_unsupported_device_is_refused_by_name():
    with pytest.raises(BufferError, match=r"from_dlpack: unsupported DLPack device kDLMetal "
                                          r"\(id 0\)"):
        gf.from_dlpack(Producer((DLDeviceType.kDLMetal, 0)))
    with pytest.raises(BufferError, match="unsupported DLPack device 99"):
        gf.from_dlpack(Producer((99, 0)))


def test_a_cuda_producer_without_cuda_says_why(monkeypatch):
    monkeypatch.setattr(backend, "cuda_unavailable_reason", lambda: "no GPU here (test)")
    with pytest.raises(RuntimeError, match=r"from_dlpack: the tensor is on CUDA device 1, but "
                                           r"CUDA is not available: no GPU here \(test\)"):
        gf.from_dlpack(Producer((DLDeviceType.kDLCUDA, 1)))


def test_an_object_without_dlpack_is_refused():
    with pytest.raises(TypeError, match="from_dlpack: expected an object with __dlpack__"):
        gf.from_dlpack([1, 2, 3])


def test_an_older_producer_without_max_version_is_still_read():
    class Old(Producer):
        def __dlpack__(self, stream=None):  # a DLPack 0.x producer
            self.asked.append({"stream": stream})
            return self.capsule

    src = torch.arange(3.)
    old = Old((DLDeviceType.kDLCPU, 0), torch.utils.dlpack.to_dlpack(src))
    t = gf.from_dlpack(old)
    t[0] = 4.0  # a legacy capsule, made writable
    assert src[0].item() == 4.0 and old.asked == [{"stream": None}]

    class Broken(Producer):
        def __dlpack__(self, **kwargs):
            self.asked.append(kwargs)
            raise TypeError("broken producer")

    broken = Broken((DLDeviceType.kDLCPU, 0))
    with pytest.raises(TypeError, match="broken producer"):  # its own error, after the retries
        gf.from_dlpack(broken, copy=False)
    assert broken.asked == [{"max_version": (1, 0), "copy": False}, {"copy": False}, {}]


# -- the CuPy path on the fake (tests/fakecupy.py has no DLPack: recorders stand in) ---------------
def test_cuda_export_makes_the_tensors_device_current_and_passes_the_stream(fake_cuda,
                                                                             monkeypatch):
    seen = []

    def dlpack(self, **kwargs):
        seen.append((fake_cuda.getDevice(), self._device, kwargs))
        return "capsule"

    monkeypatch.setattr(fake_cuda.ndarray, "__dlpack__", dlpack, raising=False)
    monkeypatch.setattr(fake_cuda.ndarray, "__dlpack_device__",
                        lambda self: (2, self._device), raising=False)
    t = gf.tensor(X_GPU, device="cuda:1")
    assert t.__dlpack__(stream=0x5EED, max_version=(1, 0)) == "capsule"
    t.__dlpack__()
    assert seen == [(1, 1, {"stream": 0x5EED, "max_version": (1, 0)}), (1, 1, {"stream": None})]
    assert fake_cuda.getDevice() == 0  # the device is current only for the export
    assert t.__dlpack_device__() == (DLDeviceType.kDLCUDA, 1)
    with pytest.raises(BufferError, match="require gradient"):
        t.requires_grad_().__dlpack__(stream=1)
    assert len(seen) == 2


def test_a_cuda_producer_lands_on_the_same_gpu(fake_cuda, monkeypatch):
    calls = []
    with fake_cuda.cuda.Device(1):
        held = fake_cuda.asarray(X_GPU)

    def cupy_from_dlpack(obj, **kwargs):
        calls.append((obj, kwargs))
        return held

    monkeypatch.setattr(fake_cuda, "from_dlpack", cupy_from_dlpack, raising=False)
    producer = Producer((DLDeviceType.kDLCUDA, 1))
    t = gf.from_dlpack(producer)
    assert t.device == "cuda:1" and t.is_leaf and not t.requires_grad
    assert t.array is held and calls == [(producer, {})]  # CuPy's import, kept as is
    copied = gf.from_dlpack(producer, copy=True)
    assert copied.device == "cuda:1" and copied.array is not held
    np.testing.assert_array_equal(copied.cpu().numpy(), X_GPU)
    moved = gf.from_dlpack(producer, device="cpu")
    assert moved.device == "cpu"
    np.testing.assert_array_equal(moved.numpy(), X_GPU)
    gf.from_dlpack(producer, copy=False)
    assert calls[-1] == (producer, {"copy": False})


X_GPU = np.array([[0.5, -1.5, 2.0], [0.25, 3.0, -0.75]], np.float32)


# -- real CuPy (gpu) ------------------------------------------------------------------------------
@pytest.mark.gpu
def test_cupy_and_gradflow_share_memory_both_ways():
    import cupy as cp
    a = cp.arange(6, dtype=cp.float32).reshape(2, 3)
    t = gf.from_dlpack(a)
    assert t.device == f"cuda:{a.device.id}" and t.array.data.ptr == a.data.ptr
    t[0, 0] = 7.0
    assert float(a[0, 0]) == 7.0
    v = t.t()  # a view, with its strides
    b = cp.from_dlpack(v)
    assert b.data.ptr == v.array.data.ptr and b.strides == v.array.strides
    b[2, 1] = -4.0
    assert t[1, 2].item() == -4.0
    with pytest.raises(BufferError, match="require gradient"):
        cp.from_dlpack(gf.ones(2, device="cuda", requires_grad=True))


@pytest.mark.gpu
def test_bfloat16_crosses_to_and_from_cupy():
    import cupy as cp
    a = cp.asarray(np.array([1.5, -2.0], dtype=gf.bfloat16))
    t = gf.from_dlpack(a)
    assert t.dtype == gf.bfloat16 and t.array.data.ptr == a.data.ptr
    back = cp.from_dlpack(t)
    assert back.dtype == gf.bfloat16 and back.data.ptr == a.data.ptr


@pytest.mark.gpu
def test_the_consumers_stream_waits_for_the_producers_work():
    import cupy as cp
    n = 1 << 24
    producer, consumer = cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)
    for stream in (consumer.ptr, None):  # a consumer's own stream, then the legacy default
        with producer:
            t = gf.zeros(n, device="cuda")
            for _ in range(200):  # queued work the consumer must wait for
                t.add_(1.0)
            # NOTE: a foreign consumer (torch) passes its stream; CuPy records an event on
            # the producer's current stream and makes the consumer's stream wait on it
            capsule = t.__dlpack__(stream=stream, max_version=(1, 0))
        with consumer if stream is not None else contextlib.nullcontext():
            assert float(cp.from_dlpack(capsule).sum()) == 200.0 * n
    with producer:
        t = gf.full((n,), 3.0, device="cuda")
        out = cp.from_dlpack(t)  # CuPy's consumer passes its current stream: the producer's
    assert float(out.min()) == 3.0


@pytest.mark.gpu
def test_a_tensor_on_the_second_gpu_stays_there():
    import cupy as cp
    if cp.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two GPUs")
    with cp.cuda.Device(1):
        a = cp.ones(4)
    t = gf.from_dlpack(a)
    assert t.device == "cuda:1"
    assert cp.from_dlpack(t).device.id == 1
