"""gradflow.amp.custom_fwd / custom_bwd on a custom autograd.Function, against torch.amp's on
the CPU (the dtypes its forward and backward see, whether autocast is on in each, the
outputs' and gradients' dtypes), on the fake CuPy for device_type 'cuda'; and the deprecated
gradflow.cuda.amp / gradflow.cpu.amp names, warning as torch's."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import check_op_raises, require_torch

import gradflow as gf

torch = require_torch()


def _matmul_function(lib, device_type: str, cast_inputs, seen: dict):
    """A custom Function a @ b whose forward and backward record what they see."""

    class MatMul(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type=device_type, cast_inputs=cast_inputs)
        def forward(ctx, a, b):
            seen["forward"] = (str(a.dtype), str(b.dtype), lib.is_autocast_enabled(device_type))
            ctx.save_for_backward(a, b)
            out = a @ b
            seen["product"] = str(out.dtype)
            return out

        @staticmethod
        @lib.amp.custom_bwd(device_type=device_type)
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            seen["backward"] = (str(grad.dtype), lib.is_autocast_enabled(device_type))
            return grad @ b.t(), a.t() @ grad

    return MatMul


def _run(lib, cast_inputs, region: bool, input_dtype: str) -> dict:
    seen: dict = {}
    cast = None if cast_inputs is None else getattr(lib, cast_inputs)
    fn = _matmul_function(lib, "cpu", cast, seen)
    rng = np.random.default_rng(0)
    a = lib.tensor(rng.standard_normal((3, 4)), dtype=getattr(lib, input_dtype),
                   requires_grad=True)
    b = lib.tensor(rng.standard_normal((4, 2)), dtype=getattr(lib, input_dtype),
                   requires_grad=True)
    with lib.autocast("cpu", enabled=region):
        out = fn.apply(a, b)
        loss = (out.float() * 2).sum()
    loss.backward()
    seen["out"] = str(out.dtype)
    seen["grads"] = (str(a.grad.dtype), str(b.grad.dtype))
    seen["values"] = out.detach().float().numpy(), a.grad.float().numpy()
    return seen


def _names(seen: dict) -> dict:
    """What was seen, dtypes spelled without the library's prefix."""
    return {k: (tuple(str(x).replace("torch.", "") for x in v) if isinstance(v, tuple)
                else str(v).replace("torch.", ""))
            for k, v in seen.items() if k != "values"}


@pytest.mark.parametrize("input_dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("region", [True, False])
@pytest.mark.parametrize("cast_inputs", [None, "float32", "bfloat16"])
def test_custom_fwd_and_bwd_see_what_torchs_see(cast_inputs, region, input_dtype):
    want, got = _run(torch, cast_inputs, region, input_dtype), _run(gf, cast_inputs, region,
                                                                    input_dtype)
    assert _names(got) == _names(want)
    for g, w in zip(got["values"], want["values"]):
        np.testing.assert_allclose(g, w, rtol=2e-2, atol=2e-2)


def test_both_decorator_forms_and_a_bad_device_type():
    def fwd(ctx, x):
        return x * 2

    direct = gf.amp.custom_fwd(fwd, device_type="cpu")
    assert direct(type("Ctx", (), {})(), gf.ones(2)).tolist() == [2.0, 2.0]
    assert direct.__name__ == "fwd"
    for name in ("custom_fwd", "custom_bwd"):
        err = check_op_raises(lambda lib: getattr(lib.amp, name)(fwd, device_type=None),
                              op=name)
        assert "expected `device_type` of type `str`, got: `<class 'NoneType'>`" in str(err)


def test_cast_inputs_on_cuda_under_a_cuda_region(fake_cuda):
    seen: dict = {}
    fn = _matmul_function(gf, "cuda", gf.float32, seen)
    a = gf.ones(3, 4, device="cuda", dtype=gf.float16, requires_grad=True)
    b = gf.ones(4, 2, device="cuda", requires_grad=True)
    host = gf.ones(2, 2)  # a CPU tensor is not the region's: left alone
    with gf.autocast("cuda"):
        out = fn.apply(a, b)
        assert gf.amp.custom_function._cast([host, {"k": a}], "cuda", gf.float32)[0] is host
    assert seen["forward"] == ("float32", "float32", False)
    out.sum().backward()
    assert seen["backward"] == ("float32", False)  # forward ran with autocast off, so does this
    assert a.grad.dtype == gf.float16 and b.grad.dtype == gf.float32


def _future_warnings(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("device_type,name", [("cpu", "autocast"), ("cpu", "GradScaler"),
                                              ("cuda", "autocast"), ("cuda", "GradScaler")])
def test_the_deprecated_device_names_warn_as_torchs(device_type, name):
    def make(lib):
        return lambda: getattr(getattr(lib, device_type).amp, name)(enabled=False)

    want = _future_warnings(make(torch))
    got = _future_warnings(make(gf))
    assert [w.replace("torch", "gradflow") for w in want] == got and len(got) == 1
    made = getattr(getattr(gf, device_type).amp, name)(enabled=False)
    assert isinstance(made, getattr(gf.amp, name))


def test_the_deprecated_cuda_custom_decorators_warn_as_torchs():
    def fwd(ctx, x):
        return x

    for name in ("custom_fwd", "custom_bwd"):
        want = _future_warnings(lambda: getattr(torch.cuda.amp, name)(fwd))
        got = _future_warnings(lambda: getattr(gf.cuda.amp, name)(fwd))
        assert [w.replace("torch", "gradflow") for w in want] == got and len(got) == 1


def test_the_deprecated_cpu_autocast_runs_a_bfloat16_region():
    with pytest.warns(FutureWarning):
        region = gf.cpu.amp.autocast()
    with region:
        out = gf.ones(2, 3) @ gf.ones(3, 2)
    with pytest.warns(FutureWarning):
        torch_region = torch.cpu.amp.autocast()
    with torch_region:
        want = torch.ones(2, 3) @ torch.ones(3, 2)
    assert str(out.dtype) == str(want.dtype).replace("torch.", "") == "bfloat16"
    scaler = pytest.warns(FutureWarning)
    with scaler:
        s = gf.cpu.amp.GradScaler(init_scale=4.0)
    assert s.get_scale() == 4.0 and s.is_enabled()
