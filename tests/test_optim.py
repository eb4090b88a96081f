"""Optimizers, schedulers and gradient clipping, held to PyTorch: every optimizer option runs
the same 20-step trajectory in both libraries, every scheduler the same lr sequence."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from helpers import require_torch, to_numpy

import gradflow as gf
import gradflow.optim as gf_optim
from gradflow.nn.utils import clip_grad_norm_, clip_grad_value_

SHAPES = [(3,), (2, 5), (1, 1), ()]


def optim_of(lib):
    return gf_optim if lib is gf else lib.optim


def make_params(lib, arrays, device="cpu"):
    if lib is gf:
        return [gf.tensor(a, device=device, requires_grad=True) for a in arrays]
    return [lib.tensor(a, requires_grad=True) for a in arrays]


def start_arrays(seed=0):
    """Float64 starting values and loss coefficients of awkward shapes, one of them 0-d."""
    rng = np.random.default_rng(seed)
    values = [np.asarray(rng.standard_normal(s)) for s in SHAPES]
    coeffs = [np.asarray(rng.uniform(0.5, 2.0, s)) for s in SHAPES]
    return values, coeffs


def backward(lib, params, coeffs, device="cpu"):
    """Fill .grad from sum(sin(p) * c), by the library's own autograd."""
    loss = 0
    for p, c in zip(params, coeffs):
        c = gf.tensor(c, device=device) if lib is gf else lib.tensor(c)
        loss = loss + (lib.sin(p) * c).sum()
    loss.backward()
    return loss


def trajectory(lib, name, kwargs, groups, device="cpu", steps=20):
    values, coeffs = start_arrays()
    params = make_params(lib, values, device)
    spec = params if groups is None else [dict(params=params[:2], **groups[0]),
                                          dict(params=params[2:], **groups[1])]
    opt = getattr(optim_of(lib), name)(spec, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        backward(lib, params, coeffs, device)
        opt.step()
    return [to_numpy(p) for p in params]


TRAJECTORY_CASES = [
    ("SGD", dict(lr=0.1), None),
    ("SGD", dict(lr=0.1, momentum=0.9), None),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3), None),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), None),
    ("SGD", dict(lr=0.1, weight_decay=0.1), None),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True), None),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.05, maximize=True), None),
    ("SGD", dict(lr=0.1, momentum=0.9), [dict(lr=0.02), dict(momentum=0.5, weight_decay=0.1)]),
    ("Adam", dict(lr=0.05), None),
    ("Adam", dict(lr=0.05, amsgrad=True), None),
    ("Adam", dict(lr=0.05, weight_decay=0.1), None),
    ("Adam", dict(lr=0.05, maximize=True), None),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3), None),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True), None),
    ("Adam", dict(lr=0.05), [dict(lr=0.2, amsgrad=True), dict(betas=(0.5, 0.9))]),
    ("AdamW", dict(lr=0.05), None),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True), None),
    ("AdamW", dict(lr=0.05, maximize=True), None),
    ("AdamW", dict(lr=0.05), [dict(lr=0.1), dict(weight_decay=0.0)]),
    ("RMSprop", dict(), None),
    ("RMSprop", dict(lr=0.01, centered=True), None),
    ("RMSprop", dict(lr=0.01, momentum=0.9), None),
    ("RMSprop", dict(lr=0.01, weight_decay=0.1), None),
    ("RMSprop", dict(lr=0.01, maximize=True), None),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-4, centered=True, momentum=0.5,
                     weight_decay=0.05), None),
    ("RMSprop", dict(lr=0.01), [dict(lr=0.03, centered=True), dict(momentum=0.7)]),
    ("Adagrad", dict(lr=0.1), None),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1), None),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5), None),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1), None),
    ("Adagrad", dict(lr=0.1, maximize=True), None),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, eps=1e-3, weight_decay=0.05), None),
    ("Adagrad", dict(lr=0.1), [dict(lr=0.3), dict(lr_decay=0.2)]),
]


@pytest.mark.parametrize("name,kwargs,groups", TRAJECTORY_CASES,
                         ids=[f"{n}-{k}-{g}" for n, k, g in TRAJECTORY_CASES])
def test_trajectory_matches_torch(name, kwargs, groups, device):
    th = require_torch()
    got = trajectory(gf, name, kwargs, groups, device)
    want = trajectory(th, name, kwargs, groups)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-12,
                                   err_msg=f"{name}{kwargs} groups={groups}: parameter {i}")


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_defaults_match_torch(name):
    th = require_torch()
    ours = getattr(gf_optim, name)([gf.zeros(1, requires_grad=True)]).defaults
    theirs = getattr(th.optim, name)([th.zeros(1, requires_grad=True)]).defaults
    assert {k: theirs[k] for k in ours} == ours


def test_step_updates_in_place_and_skips_missing_grads():
    a, b = gf.ones(3, requires_grad=True), gf.ones(2, requires_grad=True)
    arr, version = a.array, a._version
    opt = gf_optim.Adam([a, b], lr=0.1)
    loss = opt.step(lambda: backward(gf, [a], [np.ones(3)]))
    assert isinstance(loss, gf.Tensor)
    assert a.array is arr and a._version == version + 1
    np.testing.assert_array_equal(to_numpy(b), np.ones(2))
    assert b not in opt.state and opt.state[a]["step"] == 1


def test_zero_grad():
    a, b = gf.ones(3, requires_grad=True), gf.ones(3, requires_grad=True)
    opt = gf_optim.SGD([a], lr=0.1)
    (a + b).sum().backward()  # autograd hands a and b the same (read-only) gradient array
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(to_numpy(a.grad), np.zeros(3))
    np.testing.assert_array_equal(to_numpy(b.grad), np.ones(3))
    (a * 2).sum().backward()
    np.testing.assert_array_equal(to_numpy(a.grad), np.full(3, 2.0))
    opt.zero_grad()
    assert a.grad is None


# -- state_dict ------------------------------------------------------------------------------
STATEFUL = [
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
]


def build(name, kwargs, values, device="cpu", lib=gf):
    params = make_params(lib, values, device)
    groups = [{"params": params[:2], "lr": 0.5 * kwargs["lr"]}, {"params": params[2:]}]
    return params, getattr(optim_of(lib), name)(groups, **kwargs)


def run(lib, params, opt, coeffs, steps, device="cpu"):
    for _ in range(steps):
        opt.zero_grad()
        backward(lib, params, coeffs, device)
        opt.step()


@pytest.mark.parametrize("name,kwargs", STATEFUL, ids=[n for n, _ in STATEFUL])
def test_state_dict_round_trip(name, kwargs, device):
    values, coeffs = start_arrays()
    params, opt = build(name, kwargs, values)
    run(gf, params, opt, coeffs, 5)
    saved = opt.state_dict()
    # A fresh optimizer, with other hyper-parameters, on the same values moved to `device`.
    params2, opt2 = build(name, dict(kwargs, lr=1.0), [to_numpy(p) for p in params], device)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert all(t.device == params2[0].device for s in opt2.state.values()
               for t in s.values() if isinstance(t, gf.Tensor))
    run(gf, params, opt, coeffs, 5)
    run(gf, params2, opt2, coeffs, 5, device)
    for p, q in zip(params, params2):
        np.testing.assert_allclose(to_numpy(q), to_numpy(p), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name,kwargs", STATEFUL, ids=[n for n, _ in STATEFUL])
def test_state_dict_format_matches_torch(name, kwargs):
    th = require_torch()
    values, coeffs = start_arrays()
    (gp, gopt), (tp, topt) = build(name, kwargs, values), build(name, kwargs, values, lib=th)
    run(gf, gp, gopt, coeffs, 2)
    run(th, tp, topt, coeffs, 2)
    ours, theirs = gopt.state_dict(), topt.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for k, state in ours["state"].items():
        assert set(state) == set(theirs["state"][k])
        for key, value in state.items():
            np.testing.assert_allclose(to_numpy(value) if key != "step" else value,
                                       to_numpy(theirs["state"][k][key]), rtol=1e-10)
    for g, t in zip(ours["param_groups"], theirs["param_groups"]):
        assert g == {k: t[k] for k in g}


def test_state_dict_load_copies_and_survives_deepcopy():
    values, coeffs = start_arrays()
    params, opt = build("Adam", dict(lr=0.1), values)
    run(gf, params, opt, coeffs, 3)
    snapshot = copy.deepcopy(opt.state_dict())
    params2, opt2 = build("Adam", dict(lr=0.1), values)
    opt2.load_state_dict(snapshot)
    assert opt2.state[params2[0]]["exp_avg"] is not snapshot["state"][0]["exp_avg"]
    run(gf, params, opt, coeffs, 1)  # the live state moves on, the snapshot does not
    assert opt.state_dict()["state"][0]["step"] == 4 and snapshot["state"][0]["step"] == 3


@pytest.mark.parametrize("mutate,error,match", [
    (lambda sd: sd["param_groups"].pop(), ValueError, "has 1 parameter groups but the "
                                                      "optimizer has 2"),
    (lambda sd: sd["param_groups"][1]["params"].pop(), ValueError,
     "parameter group 1 has 1 parameters in the state dict but 2"),
    (lambda sd: sd["state"].__setitem__(7, {}), ValueError, "parameter 7, which no parameter"),
    (lambda sd: sd["state"][1].__setitem__("exp_avg", gf.zeros(3)), ValueError,
     r"'exp_avg' of parameter 1 has shape \(3,\) but the parameter has shape \(2, 5\)"),
    (lambda sd: sd.pop("state"), ValueError, "no 'state' entry"),
])
def test_load_state_dict_rejects_bad_dicts(mutate, error, match):
    values, coeffs = start_arrays()
    params, opt = build("Adam", dict(lr=0.1), values)
    run(gf, params, opt, coeffs, 1)
    bad = copy.deepcopy(opt.state_dict())
    mutate(bad)
    with pytest.raises(error, match="Adam.load_state_dict: .*" + match):
        build("Adam", dict(lr=0.1), values)[1].load_state_dict(bad)


# -- argument validation ---------------------------------------------------------------------
def _p():
    return gf.ones(2, requires_grad=True)


@pytest.mark.parametrize("make,error,match", [
    (lambda: gf_optim.SGD([_p()], lr=-0.1), ValueError, "SGD: invalid lr value -0.1"),
    (lambda: gf_optim.SGD([_p()], momentum=-1), ValueError, "SGD: invalid momentum"),
    (lambda: gf_optim.SGD([_p()], weight_decay=-1), ValueError, "SGD: invalid weight_decay"),
    (lambda: gf_optim.SGD([_p()], nesterov=True), ValueError,
     "SGD: nesterov momentum requires momentum > 0"),
    (lambda: gf_optim.SGD([_p()], momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "dampening = 0"),
    (lambda: gf_optim.SGD([{"params": [_p()], "lr": -2}]), ValueError, "SGD: invalid lr"),
    (lambda: gf_optim.Adam([_p()], betas=(1.0, 0.9)), ValueError,
     r"Adam: invalid betas\[0\] value 1.0"),
    (lambda: gf_optim.Adam([_p()], betas=(0.9, -0.1)), ValueError, r"invalid betas\[1\]"),
    (lambda: gf_optim.Adam([_p()], eps=-1e-8), ValueError, "Adam: invalid eps"),
    (lambda: gf_optim.AdamW([_p()], weight_decay=-1), ValueError, "AdamW: invalid weight_"),
    (lambda: gf_optim.RMSprop([_p()], alpha=-0.5), ValueError, "RMSprop: invalid alpha"),
    (lambda: gf_optim.RMSprop([_p()], momentum=-0.5), ValueError, "RMSprop: invalid moment"),
    (lambda: gf_optim.Adagrad([_p()], lr_decay=-1), ValueError, "Adagrad: invalid lr_decay"),
    (lambda: gf_optim.Adagrad([_p()], initial_accumulator_value=-1), ValueError,
     "Adagrad: invalid initial_accumulator_value"),
    (lambda: gf_optim.SGD([]), ValueError, "SGD: got an empty parameter list"),
    (lambda: gf_optim.SGD(_p()), TypeError, "iterable of Tensors or dicts"),
    (lambda: gf_optim.SGD({_p()}), TypeError, "not a set"),
    (lambda: gf_optim.SGD([_p(), 3.0]), TypeError, "parameter 1 of group 0 is a float"),
    (lambda: gf_optim.SGD([_p() * 2]), ValueError, "SGD: can't optimize a non-leaf Tensor"),
])
def test_optimizer_argument_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_duplicate_parameters_rejected():
    p = _p()
    with pytest.raises(ValueError, match="Adam: parameter 1 of group 0 .* more than once"):
        gf_optim.Adam([p, p])
    opt = gf_optim.Adam([p])
    with pytest.raises(ValueError, match="parameter 0 of group 1 .* more than once"):
        opt.add_param_group({"params": [p], "lr": 0.1})


# -- schedulers ------------------------------------------------------------------------------
def _sgd(optim, params):
    return optim.SGD([{"params": params[:1], "lr": 0.1}, {"params": params[1:], "lr": 0.03}],
                     momentum=0.9)


def _adam(optim, params):
    return optim.Adam([{"params": params[:1], "lr": 0.1}, {"params": params[1:]}])


SCHEDULER_CASES = {
    "StepLR": (_sgd, lambda m, o: m.StepLR(o, step_size=4, gamma=0.5)),
    "MultiStepLR": (_sgd, lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.5)),
    "ExponentialLR": (_sgd, lambda m, o: m.ExponentialLR(o, gamma=0.9)),
    "LambdaLR": (_sgd, lambda m, o: m.LambdaLR(o, [lambda e: 0.95 ** e,
                                                   lambda e: 1 / (e + 1)])),
    "CosineAnnealingLR": (_sgd, lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
    "LinearLR": (_sgd, lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=6)),
    "warmup-cosine": (_sgd, lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=25)],
        milestones=[5])),
    "warmup-step-exp": (_sgd, lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.5, total_iters=3), m.StepLR(o, 4, 0.5),
            m.ExponentialLR(o, 0.9)], milestones=[4, 12])),
    "OneCycleLR-cos": (_sgd, lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.1], total_steps=30)),
    "OneCycleLR-linear-3phase-adam": (_adam, lambda m, o: m.OneCycleLR(
        o, max_lr=0.5, epochs=3, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear",
        three_phase=True, div_factor=10.0, final_div_factor=100.0)),
    "OneCycleLR-no-momentum": (_sgd, lambda m, o: m.OneCycleLR(
        o, max_lr=0.2, total_steps=31, cycle_momentum=False)),
}


def lr_trace(lib, make_opt, make_sched, steps=30, metrics=None):
    """lr (and momentum or beta1) of every group after construction and after each step."""
    params = make_params(lib, [np.zeros(2), np.zeros(3)])
    opt = make_opt(optim_of(lib), params)
    sched = make_sched(optim_of(lib).lr_scheduler, opt)

    def record():
        row = []
        for g in opt.param_groups:
            row += [g["lr"], g["betas"][0] if "betas" in g else g["momentum"]]
        np.testing.assert_allclose(sched.get_last_lr(), row[::2], rtol=1e-15)
        return row

    trace = [record()]
    for i in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        trace.append(record())
    return np.array(trace)


@pytest.mark.parametrize("case", list(SCHEDULER_CASES))
def test_scheduler_matches_torch(case):
    th = require_torch()
    make_opt, make_sched = SCHEDULER_CASES[case]
    np.testing.assert_allclose(lr_trace(gf, make_opt, make_sched),
                               lr_trace(th, make_opt, make_sched), rtol=1e-12, atol=1e-15)


METRICS = [1.0, 0.9, 0.9, 0.95, 0.91, 0.9, 0.8999, 0.8, 0.8, 0.8, 0.85, 0.9, 0.7, 0.7, 0.71,
           0.72, 0.73, 0.69, 0.7, 0.7, 0.7, 0.7, 0.68, 0.68, 0.69, 0.7, 0.7, 0.7, 0.7, 0.7]


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(patience=1),
    dict(patience=0, factor=0.5, cooldown=2, min_lr=[0.02, 1e-3]),
    dict(mode="max", patience=1, factor=0.5, threshold=0.05, threshold_mode="abs"),
    dict(mode="min", patience=2, threshold=0.02, threshold_mode="rel", min_lr=0.01),
    dict(patience=0, factor=0.9, eps=0.005),
], ids=str)
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    th = require_torch()

    def make_sched(m, o):
        return m.ReduceLROnPlateau(o, **kwargs)

    np.testing.assert_allclose(lr_trace(gf, _sgd, make_sched, metrics=METRICS),
                               lr_trace(th, _sgd, make_sched, metrics=METRICS), rtol=1e-12)


@pytest.mark.parametrize("case", ["CosineAnnealingLR", "warmup-cosine", "OneCycleLR-cos"])
def test_scheduler_state_dict_round_trip(case):
    make_opt, make_sched = SCHEDULER_CASES[case]
    params = make_params(gf, [np.zeros(2), np.zeros(3)])
    opt = make_opt(gf_optim, params)
    sched = make_sched(gf_optim.lr_scheduler, opt)
    for _ in range(12):
        sched.step()
    opt2 = make_opt(gf_optim, make_params(gf, [np.zeros(2), np.zeros(3)]))
    sched2 = make_sched(gf_optim.lr_scheduler, opt2)
    sched2.load_state_dict(copy.deepcopy(sched.state_dict()))
    opt2.load_state_dict(opt.state_dict())
    for _ in range(10):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert [g["lr"] for g in opt2.param_groups] == sched.get_last_lr()


@pytest.mark.parametrize("make,error,match", [
    (lambda m, o: m.StepLR(None, 3), TypeError, "StepLR: expected an Optimizer"),
    (lambda m, o: m.LinearLR(o, start_factor=0), ValueError, r"LinearLR: start_factor .*\(0"),
    (lambda m, o: m.LinearLR(o, end_factor=2), ValueError, "LinearLR: end_factor"),
    (lambda m, o: m.LambdaLR(o, [lambda e: 1.0]), ValueError,
     "LambdaLR: lr_lambda has 1 values but the optimizer has 2"),
    (lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2), m.StepLR(o, 3)], milestones=[]),
     ValueError, "SequentialLR: expects one milestone fewer"),
    (lambda m, o: m.SequentialLR(o, [m.ReduceLROnPlateau(o)], milestones=[]), ValueError,
     "ReduceLROnPlateau"),
    (lambda m, o: m.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor must be < 1.0"),
    (lambda m, o: m.ReduceLROnPlateau(o, mode="up"), ValueError, "mode must be 'min' or"),
    (lambda m, o: m.OneCycleLR(o, max_lr=1.0), ValueError, "give either total_steps"),
    (lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
     ValueError, "anneal_strategy must be"),
    (lambda m, o: m.OneCycleLR(gf_optim.Adagrad([_p()]), max_lr=1.0, total_steps=5),
     ValueError, "cycle_momentum needs an optimizer with momentum or betas"),
])
def test_scheduler_argument_errors(make, error, match):
    opt = _sgd(gf_optim, make_params(gf, [np.zeros(2), np.zeros(3)]))
    with pytest.raises(error, match=match):
        make(gf_optim.lr_scheduler, opt)


def test_one_cycle_refuses_to_step_past_the_end():
    opt = _sgd(gf_optim, make_params(gf, [np.zeros(2), np.zeros(3)]))
    sched = gf_optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 4 times, but total_steps"):
        sched.step()


# -- gradient clipping -----------------------------------------------------------------------
def _clip_case(lib, clip, values, coeffs, device="cpu"):
    params = make_params(lib, values, device)
    backward(lib, params, coeffs, device)
    out = clip(lib, params)
    return out, [to_numpy(p.grad) for p in params]


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, 0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, device):
    th = require_torch()
    values, coeffs = start_arrays()
    values[1] = values[1].astype(np.float32)  # mixed dtypes, as in half-converted models
    ours, got = _clip_case(gf, lambda lib, ps: clip_grad_norm_(ps, max_norm, norm_type),
                           values, coeffs, device)
    theirs, want = _clip_case(th, lambda lib, ps: th.nn.utils.clip_grad_norm_(
        ps, max_norm, norm_type), values, coeffs)
    assert isinstance(ours, gf.Tensor) and ours.ndim == 0
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-6)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_clip_grad_norm_scales_shared_gradients_once():
    th = require_torch()
    grads = []
    for lib, clip in ((gf, clip_grad_norm_), (th, th.nn.utils.clip_grad_norm_)):
        a, b = make_params(lib, [np.ones(3), np.ones(3)])
        (a + b).sum().backward()  # gradflow gives a and b one shared, read-only array
        clip([a, b], 1.0)
        grads.append([to_numpy(a.grad), to_numpy(b.grad)])
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0
def test_clip_grad_norm_nonfinite():
    th = require_torch()
    results = []
    for lib, clip in ((gf, clip_grad_norm_), (th, th.nn.utils.clip_grad_norm_)):
        p = make_params(lib, [np.array([1.0, 2.0])])[0]
        (p * lib.tensor([math.inf, 1.0], dtype=p.dtype)).sum().backward()
        with pytest.raises(RuntimeError, match="non-finite"):
            clip([p], 1.0, error_if_nonfinite=True)
        total = clip([p], 1.0)
        results.append((to_numpy(total), to_numpy(p.grad)))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])


def test_clip_grad_norm_without_gradients():
    total = clip_grad_norm_([gf.ones(2, requires_grad=True)], 1.0)
    np.testing.assert_array_equal(to_numpy(total), 0.0)


def test_clip_grad_value_matches_torch(device):
    th = require_torch()
    values, coeffs = start_arrays()
    _, got = _clip_case(gf, lambda lib, ps: clip_grad_value_(ps, 0.7), values, coeffs, device)
    _, want = _clip_case(th, lambda lib, ps: th.nn.utils.clip_grad_value_(ps, 0.7), values,
                         coeffs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda ps: gf.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01),
    lambda ps: gf.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, maximize=True),
    lambda ps: gf.optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.1),
    lambda ps: gf.optim.AdamW(ps, lr=0.01),
    lambda ps: gf.optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    lambda ps: gf.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
], ids=["sgd_dampening", "sgd_nesterov", "adam_amsgrad", "adamw", "adagrad", "rmsprop"])
def test_updates_by_cache_blocks_equal_whole_updates(monkeypatch, make):
    """Block-by-block reference updates give the whole-array results bit for bit, a partial
    last block and a non-contiguous fallback included."""
    from gradflow.optim import optimizer

    def run(block):
        monkeypatch.setattr(optimizer, "CACHE_BLOCK", block)
        params = [gf.tensor(np.linspace(-1, 1, 2507, dtype=np.float32), requires_grad=True),
                  gf.tensor(np.ones((40, 30), np.float32), requires_grad=True)]
        opt = make(params)
        for step in range(3):
            opt.zero_grad()
            loss = (params[0] * params[0]).sum() * (step + 1) + (params[1].t() ** 3).sum()
            loss.backward()
            params[1].grad = params[1].grad.t().contiguous().t()  # a non-contiguous gradient
            opt.step()
        return [p.detach().numpy().copy() for p in params]

    whole, blocked = run(10**9), run(1000)
    for w, b in zip(whole, blocked):
        np.testing.assert_array_equal(b, w)
    assert not np.array_equal(whole[0], np.linspace(-1, 1, 2507, dtype=np.float32))
