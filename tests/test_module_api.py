"""nn.Module's user-facing methods against PyTorch: printing (reprs of layers and nested
models), traversal (named_modules/parameters/buffers/children with prefixes and duplicates),
get_submodule/get_parameter/get_buffer, registration checks, load_state_dict (strict,
non-strict, assign, the _IncompatibleKeys result and error messages), hooks (forward pre and
post, with kwargs, always_call, prepend, full backward and backward pre-hooks: call order,
arguments and replaced values), dtype and device moves, to_empty, zero_grad, apply, and the
ParameterList / ParameterDict containers."""
from collections import OrderedDict

import numpy as np
import pytest
from helpers import require_torch

import gradflow as gf
from gradflow import nn

torch = require_torch()
tnn = torch.nn


# -- printing -------------------------------------------------------------------------------
LAYERS = [
    lambda n: n.Linear(2, 3), lambda n: n.Linear(4, 1, bias=False),
    lambda n: n.Conv2d(1, 2, 3), lambda n: n.Conv2d(2, 4, (3, 5), stride=2, padding=1),
    lambda n: n.Conv2d(2, 4, 3, dilation=2, groups=2, bias=False),
    lambda n: n.ReLU(), lambda n: n.ReLU(inplace=True), lambda n: n.LeakyReLU(0.2),
    lambda n: n.ELU(), lambda n: n.GELU(), lambda n: n.GELU(approximate="tanh"),
    lambda n: n.Sigmoid(), lambda n: n.Tanh(), lambda n: n.Softmax(dim=1),
    lambda n: n.LogSoftmax(dim=-1), lambda n: n.Dropout(), lambda n: n.Dropout(0.2),
    lambda n: n.Dropout2d(0.3), lambda n: n.Identity(), lambda n: n.Flatten(),
    lambda n: n.Flatten(0, 2), lambda n: n.BatchNorm1d(3), lambda n: n.BatchNorm2d(4),
    lambda n: n.BatchNorm2d(4, affine=False, momentum=None),
    lambda n: n.LayerNorm(5), lambda n: n.LayerNorm((2, 3), elementwise_affine=False),
    lambda n: n.GroupNorm(2, 4), lambda n: n.InstanceNorm2d(3),
    lambda n: n.LocalResponseNorm(2), lambda n: n.MaxPool2d(2),
    lambda n: n.MaxPool2d(3, stride=2, padding=1), lambda n: n.AvgPool2d(2),
    lambda n: n.AdaptiveAvgPool2d((1, 1)), lambda n: n.AdaptiveMaxPool2d(3),
    lambda n: n.CrossEntropyLoss(), lambda n: n.NLLLoss(), lambda n: n.MSELoss(),
    lambda n: n.L1Loss(), lambda n: n.BCELoss(), lambda n: n.BCEWithLogitsLoss(),
]


def both(make):
    return make(nn), make(tnn)


@pytest.mark.parametrize("make", LAYERS, ids=lambda f: repr(f(tnn)))
def test_layer_reprs_match_torch(make):
    g, t = both(make)
    assert repr(g) == repr(t)


CONTAINERS = {"Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
# reprs that differ from torch's in layers owned elsewhere (reported to the lead)


def first_construction(name):
    """torch's layer `name` and gradflow's, built from the first of a few argument lists
    torch accepts (None where none is)."""
    for args in ((), (3,), (2, 3), (2, 4), (2, 3, 3)):
        try:
            t = getattr(tnn, name)(*args)
        except Exception:  # torch refuses these arguments: try the next ones
            continue
        return getattr(nn, name)(*args), t
    return None


@pytest.mark.parametrize("name", [n for n in nn.modules.__all__
                                  if hasattr(tnn, n) and n not in CONTAINERS])
def test_every_layer_prints_as_torch(name):
    """Every layer class of gradflow.nn.modules, at its default settings."""
    pair = first_construction(name)
    if pair is None:
        pytest.skip(f"no simple constructor call for {name}")
    g, t = pair
    assert repr(g) == repr(t)


class Block(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv = n.Conv2d(3, 8, 3, padding=1)
        self.norm = n.BatchNorm2d(8)
        self.act = n.ReLU(inplace=True)
        self.skip = None


class TBlock(tnn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv = n.Conv2d(3, 8, 3, padding=1)
        self.norm = n.BatchNorm2d(8)
        self.act = n.ReLU(inplace=True)
        self.skip = None


MODELS = {
    "sequential": lambda n: n.Sequential(n.Linear(2, 3), n.ReLU()),
    "empty sequential": lambda n: n.Sequential(),
    "nested": lambda n: n.Sequential(
        n.Sequential(n.Conv2d(1, 2, 3), n.BatchNorm2d(2), n.ReLU()),
        n.Flatten(), n.ModuleList([n.Linear(4, 4), n.Linear(4, 4), n.Linear(4, 4), n.Tanh(),
                                   n.Linear(4, 4)]),
        n.ModuleDict({"head": n.Linear(4, 2), "act": n.Softmax(dim=1)})),
    "named": lambda n: n.Sequential(OrderedDict([("fc", n.Linear(3, 3)),
                                                 ("drop", n.Dropout(0.1))])),
    "empty list": lambda n: n.ModuleList(),
    "parameter list": lambda n: n.ParameterList([n.Parameter(torch_or_gf(n).zeros(2, 3)),
                                                 n.Parameter(torch_or_gf(n).zeros(4))]),
    "parameter list of one": lambda n: n.ParameterList([torch_or_gf(n).zeros(2)]),
    "module holding a parameter list": lambda n: n.Sequential(
        n.Linear(1, 1), n.ParameterList([torch_or_gf(n).zeros(3, 1)])),
}


def torch_or_gf(n):
    return torch if n is tnn else gf


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_model_reprs_match_torch(make):
    g, t = both(make)
    assert repr(g).replace("gradflow.", "torch.") == repr(t)


def test_custom_module_repr_with_a_none_child_and_extra_repr():
    g, t = Block(nn), TBlock(tnn)
    assert repr(g) == repr(t).replace("TBlock", "Block")

    class Multi(nn.Module):
        def extra_repr(self):
            return "a=1\nb=2"

    class TMulti(tnn.Module):
        def extra_repr(self):
            return "a=1\nb=2"

    assert repr(Multi()) == repr(TMulti()).replace("TMulti", "Multi")
    m, tm = Multi(), TMulti()
    m.add_module("fc", nn.Linear(1, 1))
    tm.add_module("fc", tnn.Linear(1, 1))
    assert repr(m) == repr(tm).replace("TMulti", "Multi")


def test_parameter_dict_repr():
    g = nn.ParameterDict({"a": nn.Parameter(gf.zeros(2, 3)), "b": gf.zeros(1)})
    assert repr(g) == ("ParameterDict(\n"
                       "    (a): Parameter containing: [gradflow.float32 of size 2x3]\n"
                       "    (b): Parameter containing: [gradflow.float32 of size 1]\n)")


# -- traversal ------------------------------------------------------------------------------
def shared(n):
    lin = n.Linear(2, 2)
    return n.Sequential(lin, n.ReLU(), lin, n.Sequential(n.Linear(2, 1)))


def names(pairs):
    return [name for name, _ in pairs]


def test_named_modules_parameters_and_buffers_match_torch():
    g, t = both(shared)
    assert names(g.named_modules()) == names(t.named_modules())
    assert names(g.named_modules(remove_duplicate=False)) == \
        names(t.named_modules(remove_duplicate=False))
    assert names(g.named_modules(prefix="net")) == names(t.named_modules(prefix="net"))
    assert names(g.named_parameters()) == names(t.named_parameters())
    assert names(g.named_parameters(prefix="p", remove_duplicate=False)) == \
        names(t.named_parameters(prefix="p", remove_duplicate=False))
    assert names(g.named_parameters(recurse=False)) == names(t.named_parameters(recurse=False))
    assert names(g.named_children()) == names(t.named_children())
    assert len(list(g.children())) == len(list(t.children()))
    assert len(list(g.modules())) == len(list(t.modules()))
    assert list(g.state_dict()) == list(t.state_dict())
    memo = set()
    list(g.named_modules(memo))
    assert g in memo and g[0] in memo
    gb, tb = both(lambda n: n.Sequential(n.BatchNorm1d(2), n.Linear(2, 2)))
    assert names(gb.named_buffers()) == names(tb.named_buffers())
    assert names(gb.named_buffers(prefix="x")) == names(tb.named_buffers(prefix="x"))


def test_get_submodule_parameter_buffer():
    g = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    t = tnn.Sequential(tnn.Sequential(tnn.Linear(2, 2), tnn.BatchNorm1d(2)))
    assert g.get_submodule("0.1") is g[0][1]
    assert g.get_submodule("") is g
    assert g.get_parameter("0.0.weight") is g[0][0].weight
    assert g.get_buffer("0.1.running_mean") is g[0][1].running_mean
    for call in (lambda m: m.get_submodule("0.5"), lambda m: m.get_submodule("0.0.weight"),
                 lambda m: m.get_parameter("0.1.running_mean"),
                 lambda m: m.get_parameter("0.0.nothing"),
                 lambda m: m.get_buffer("0.0.weight")):
        with pytest.raises(AttributeError):
            call(t)
        with pytest.raises(AttributeError, match="get_submodule|get_parameter|get_buffer"):
            call(g)


def test_register_module_and_its_checks():
    g, t = nn.Module(), tnn.Module()
    g.register_module("fc", nn.Linear(1, 1))
    t.register_module("fc", tnn.Linear(1, 1))
    assert names(g.named_modules()) == names(t.named_modules())
    for bad, err in (("a.b", KeyError), ("", KeyError), ("training", KeyError)):
        with pytest.raises(err):
            t.add_module(bad, tnn.Linear(1, 1))
        with pytest.raises(err, match="add_module"):
            g.add_module(bad, nn.Linear(1, 1))
    with pytest.raises(TypeError, match="add_module"):
        g.add_module("x", 3)


# -- load_state_dict ------------------------------------------------------------------------
def net(n):
    return n.Sequential(n.Linear(3, 2), n.BatchNorm1d(2))


def gf_state(t):
    return OrderedDict((k, gf.tensor(v.numpy().copy())) for k, v in t.state_dict().items())


def test_load_state_dict_copies_and_reports_all_matched():
    g, t = both(net)
    result = g.load_state_dict(gf_state(t))
    assert repr(result) == repr(t.load_state_dict(t.state_dict())) == \
        "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []
    missing, unexpected = result
    assert (missing, unexpected) == ([], [])
    np.testing.assert_array_equal(g[0].weight.detach().numpy(), t[0].weight.detach().numpy())


def test_load_state_dict_non_strict_names_the_keys():
    g, t = both(net)
    tstate = t.state_dict()
    del tstate["0.bias"]
    tstate["extra"] = torch.zeros(1)
    gstate = gf_state_from(tstate)
    got = g.load_state_dict(gstate, strict=False)
    want = t.load_state_dict(tstate, strict=False)
    assert got.missing_keys == want.missing_keys == ["0.bias"]
    assert got.unexpected_keys == want.unexpected_keys == ["extra"]
    assert repr(got) == repr(want)
    with pytest.raises(RuntimeError) as terr:
        t.load_state_dict(tstate)
    with pytest.raises(RuntimeError) as gerr:
        g.load_state_dict(gstate)
    assert str(gerr.value) == str(terr.value)


def gf_state_from(state):
    return OrderedDict((k, gf.tensor(v.numpy().copy())) for k, v in state.items())


def test_load_state_dict_size_mismatch_raises_even_when_not_strict():
    g, t = both(net)
    tstate = t.state_dict()
    tstate["0.weight"] = torch.zeros(4, 3)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
            t.load_state_dict(tstate, strict=strict)
        with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
            g.load_state_dict(gf_state_from(tstate), strict=strict)
    with pytest.raises(TypeError, match="dict-like"):
        g.load_state_dict([1, 2])


def test_load_state_dict_assign_takes_the_tensors():
    g = net(nn)
    state = {k: v.clone() for k, v in net(nn).state_dict().items()}
    g.load_state_dict(state, assign=True)
    assert isinstance(g[0].weight, nn.Parameter) and g[0].weight.requires_grad
    np.testing.assert_array_equal(g[0].weight.detach().numpy(), state["0.weight"].numpy())
    assert g[1].running_mean is state["1.running_mean"]
    h = net(nn)
    h.load_state_dict(state)
    assert h[1].running_mean is not state["1.running_mean"]


# -- hooks ----------------------------------------------------------------------------------
def record_hooks(n, lib, log):
    m = n.Linear(2, 2)
    m.register_forward_pre_hook(lambda mod, args: log.append(("pre", len(args))))
    m.register_forward_pre_hook(lambda mod, args, kwargs: log.append(("pre_kw", dict(kwargs))),
                                with_kwargs=True)
    m.register_forward_pre_hook(lambda mod, args: log.append(("first",)), prepend=True)
    m.register_forward_hook(lambda mod, args, out: log.append(("post", tuple(out.shape))))
    m.register_forward_hook(
        lambda mod, args, kwargs, out: log.append(("post_kw", dict(kwargs))), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: log.append(("post_first",)), prepend=True)
    m.register_full_backward_pre_hook(lambda mod, go: log.append(("bpre", len(go))))
    m.register_full_backward_hook(
        lambda mod, gi, go: log.append(("bwd", len(gi), len(go), gi[0] is not None)))
    x = lib.ones(3, 2, requires_grad=True)
    m(x).sum().backward()
    return log


def test_hook_call_order_and_arguments_match_torch():
    assert record_hooks(nn, gf, []) == record_hooks(tnn, torch, [])


def test_forward_hooks_replace_inputs_and_outputs():
    for n, lib in ((nn, gf), (tnn, torch)):
        m = n.Identity()
        m.register_forward_pre_hook(lambda mod, args: args[0] * 2)
        h = m.register_forward_hook(lambda mod, args, out: out + 1)
        x = lib.ones(2)
        np.testing.assert_array_equal(m(x).numpy(), [3.0, 3.0])
        h.remove()
        np.testing.assert_array_equal(m(x).numpy(), [2.0, 2.0])

        def kw(mod, args, kwargs):
            return args, {}
        m2 = n.Identity()
        m2.register_forward_pre_hook(kw, with_kwargs=True)
        np.testing.assert_array_equal(m2(x, ignored=1).numpy(), [1.0, 1.0])


def test_always_call_hooks_run_when_forward_raises():
    for n in (nn, tnn):
        class Bad(n.Module):
            def forward(self, x):
                raise ValueError("boom")
        log = []
        m = Bad()
        m.register_forward_hook(lambda mod, a, out: log.append(("always", out)),
                                always_call=True)
        m.register_forward_hook(lambda mod, a, out: log.append("never"))
        with pytest.raises(ValueError, match="boom"):
            m(1)
        assert log == [("always", None)]


def test_backward_hooks_see_and_replace_gradients_as_torch():
    results = []
    torch.manual_seed(0)
    reference = tnn.Linear(3, 2).double()
    for n, lib in ((tnn, torch), (nn, gf)):
        m = reference if n is tnn else nn.Linear(3, 2).double()
        if n is nn:
            m.load_state_dict(gf_state_from(reference.state_dict()))
        seen = {}

        def bpre(mod, go):
            seen["go"] = go[0].detach().numpy().copy()
            return (go[0] * 3,)

        def bwd(mod, gi, go):
            seen["gi"] = gi[0].detach().numpy().copy()
            seen["go_after"] = go[0].detach().numpy().copy()
            return (gi[0] + 1,)
        m.register_full_backward_pre_hook(bpre)
        m.register_full_backward_hook(bwd)
        x = lib.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
        (m(x) * lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)).sum().backward()
        results.append((seen, x.grad.numpy(), m.weight.grad.numpy()))
    (ts, tx, tw), (gs, gx, gw) = results
    for key in ("go", "gi", "go_after"):
        np.testing.assert_allclose(gs[key], ts[key], err_msg=key)
    np.testing.assert_allclose(gx, tx)
    np.testing.assert_allclose(gw, tw)


def test_backward_hook_without_input_gradients():
    for n, lib in ((nn, gf), (tnn, torch)):
        log = []
        m = n.Linear(2, 1)
        m.register_full_backward_hook(lambda mod, gi, go: log.append((gi, len(go))))
        with pytest.warns(UserWarning, match="Full backward hook is firing"):
            m(lib.ones(1, 2)).sum().backward()
        assert log == [((None,), 1)]


# -- dtypes, devices, grads -----------------------------------------------------------------
def test_dtype_moves():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    m.double()
    assert m[0].weight.dtype == gf.float64 and m[1].running_mean.dtype == gf.float64
    assert m[1].num_batches_tracked.dtype == gf.int64
    m.half()
    assert m[0].weight.dtype == gf.float16
    m.float()
    assert m[0].weight.dtype == gf.float32
    m.to(gf.float64)
    assert m[0].bias.dtype == gf.float64 and m[1].num_batches_tracked.dtype == gf.int64
    m.to(gf.zeros(1, dtype=gf.float32))
    assert m[0].weight.dtype == gf.float32
    m.to(dtype=gf.float64, device="cpu")
    assert m[0].weight.dtype == gf.float64 and m[0].weight.device.type == "cpu"
    with pytest.raises(TypeError):
        tnn.Linear(1, 1).to(torch.int64)
    with pytest.raises(TypeError, match="only accepts floating point"):
        m.to(gf.int64)
    assert m.bfloat16()[0].weight.dtype == gf.bfloat16  # as torch's Module.bfloat16()


def test_to_empty_keeps_shapes():
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    w = m[0].weight
    m.to_empty(device="cpu")
    assert m[0].weight is w and tuple(w.shape) == (2, 3)
    assert tuple(m[1].running_var.shape) == (2,)


def test_requires_grad_zero_grad_apply():
    m = nn.Linear(2, 2)
    m(gf.ones(1, 2)).sum().backward()
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(m.weight.grad.numpy(), np.zeros((2, 2)))
    m.zero_grad()
    assert m.weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    order = []
    nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU())).apply(
        lambda mod: order.append(type(mod).__name__))
    torder = []
    tnn.Sequential(tnn.Linear(1, 1), tnn.Sequential(tnn.ReLU())).apply(
        lambda mod: torder.append(type(mod).__name__))
    assert order == torder


# -- ParameterList / ParameterDict ----------------------------------------------------------
def test_parameter_list_registers_parameters():
    pl = nn.ParameterList([gf.zeros(2), nn.Parameter(gf.ones(3))])
    tl = tnn.ParameterList([torch.zeros(2), tnn.Parameter(torch.ones(3))])
    assert list(pl.state_dict()) == list(tl.state_dict()) == ["0", "1"]
    assert isinstance(pl[0], nn.Parameter) and pl[0].requires_grad
    pl.append(gf.zeros(1))
    pl.extend([gf.zeros(4)])
    pl += [gf.zeros(5)]
    assert len(pl) == 5 and [p.shape[0] for p in pl] == [2, 3, 1, 4, 5]
    assert pl[-1] is pl[4] and len(pl[1:3]) == 2
    model = nn.Module()
    model.params = pl
    assert [n for n, _ in model.named_parameters()] == [f"params.{i}" for i in range(5)]
    with pytest.raises(IndexError):
        pl[5]
    with pytest.raises(TypeError, match="ParameterList.extend"):
        pl.extend(gf.zeros(2))
    with pytest.raises(RuntimeError, match="should not be called"):
        pl()


def test_parameter_dict_registers_parameters():
    pd = nn.ParameterDict({"w": gf.zeros(2), "b": nn.Parameter(gf.ones(1))})
    td = tnn.ParameterDict({"w": torch.zeros(2), "b": tnn.Parameter(torch.ones(1))})
    assert list(pd.state_dict()) == list(td.state_dict()) == ["b", "w"]  # a dict is sorted
    assert list(pd.keys()) == ["b", "w"] and "w" in pd and len(pd) == 2
    pd["c"] = gf.zeros(3)
    assert isinstance(pd["c"], nn.Parameter)
    assert [k for k, _ in pd.named_parameters()] == ["b", "w", "c"]
    popped = pd.pop("w")
    assert tuple(popped.shape) == (2,) and list(pd) == ["b", "c"]
    pd.update([("d", gf.zeros(1))])
    assert list(pd) == ["b", "c", "d"]
    with pytest.raises(KeyError):
        pd["missing"]
    pd["keys"] = gf.zeros(2)  # a key named like a method
    assert isinstance(pd["keys"], nn.Parameter) and "keys" in pd
    del pd["keys"]
    assert "keys" not in pd and callable(pd.keys)


def test_pickled_modules_keep_their_hooks_and_old_pickles_load():
    import pickle
    m = nn.Sequential(nn.Linear(2, 2))
    m.register_forward_pre_hook(print_nothing)
    copy = pickle.loads(pickle.dumps(m))
    assert len(copy._hooks.forward_pre) == 1
    old = nn.Linear(2, 2)
    del old.__dict__["_hooks"]  # as a module pickled by an earlier gradflow
    again = pickle.loads(pickle.dumps(old))
    assert again(gf.ones(1, 2)).shape == (1, 2)


def print_nothing(module, args):
    return None


def test_state_dict_options():
    g, t = both(lambda n: n.Sequential(n.Linear(2, 1)))
    assert list(g.state_dict(prefix="net.")) == list(t.state_dict(prefix="net."))
    kept = g.state_dict(keep_vars=True)
    assert kept["0.weight"] is g[0].weight
    assert g.state_dict()["0.weight"] is not g[0].weight
    into = OrderedDict()
    assert g.state_dict(destination=into) is into and list(into) == ["0.weight", "0.bias"]


def test_in_place_change_behind_a_backward_hook_is_caught():
    """The hook's pass-through shares the input's version counter: an in-place change of the
    input inside forward is caught when a saved copy is needed, as torch refuses it too."""
    class Scale(nn.Module):
        def forward(self, x):
            return x.mul_(2)

    m = Scale()
    m.register_full_backward_hook(lambda mod, gi, go: None)
    a = gf.ones(3, requires_grad=True)
    x = a.exp()  # saves its output x
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        m(x).sum().backward()


def test_module_api_on_the_cupy_path(fake_cuda):
    """Moves, hooks, backward hooks and containers on the (fake) GPU."""
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).to("cuda")
    assert {p.device.type for p in m.parameters()} == {"cuda"}
    assert m[1].num_batches_tracked.device.type == "cuda"
    m.to(gf.float64)
    assert m[0].weight.dtype == gf.float64 and m[0].weight.device.type == "cuda"
    seen = []
    m[0].register_full_backward_hook(lambda mod, gi, go: seen.append(gi[0].device.type))
    x = gf.ones(4, 2, dtype=gf.float64, device="cuda", requires_grad=True)
    m(x).sum().backward()
    assert seen == ["cuda"] and x.grad.device.type == "cuda"
    pl = nn.ParameterList([gf.zeros(2, device="cuda"), gf.zeros(1)])
    assert repr(pl) == ("ParameterList(\n"
                        "    (0): Parameter containing: [gradflow.float32 of size 2 (cuda:0)]\n"
                        "    (1): Parameter containing: [gradflow.float32 of size 1]\n)")
    m.to_empty(device="cpu")
    assert m[0].weight.device.type == "cpu"
