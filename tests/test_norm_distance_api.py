"""normalize, cosine_similarity, pairwise_distance, cdist and their modules; LayerNorm without
bias or affine, RMSNorm / rms_norm, BatchNorm3d, InstanceNorm1d and InstanceNorm3d: against
PyTorch (values, dtypes, first and second derivatives on awkward shapes, zero vectors and
running statistics), PyTorch's errors, finite differences and the CuPy path."""
import math

import numpy as np
import pytest
from helpers import (
    I_CUPY,
    X_CUPY,
    check_cupy_path,
    check_gradcheck,
    check_op,
    check_op_raises,
    data,
    require_torch,
    to_numpy,
)

import gradflow as gf

torch = require_torch()


def F(L):
    return L.nn.functional


def with_zero_row(*shape, row=1):
    a = data(shape)
    a[row] = 0.0
    return a


CASES = [
    ("normalize", lambda L, a: F(L).normalize(a), [(3, 4)], {}),
    ("normalize_p1_negative_dim", lambda L, a: F(L).normalize(a, 1.0, -1), [(3, 1, 5)], {}),
    ("normalize_inf_dim0_strided", lambda L, a: F(L).normalize(a, math.inf, 0), [(7, 3)],
     {"noncontiguous": True}),
    ("normalize_p3_eps", lambda L, a: F(L).normalize(a, p=3, dim=1, eps=0.5), [(2, 3, 2)], {}),
    # NOTE: at a zero vector torch's second derivatives are NaN, gradflow's are 0
    ("normalize_zero_row", lambda L, a: F(L).normalize(a, dim=1), [with_zero_row(3, 4)],
     {"second_order": False}),
    ("normalize_1d", lambda L, a: F(L).normalize(a, dim=0), [(5,)], {}),
    ("cosine_similarity", lambda L, a, b: F(L).cosine_similarity(a, b), [(3, 4), data(3, 4,
                                                                                      seed=1)],
     {}),
    ("cosine_similarity_broadcast", lambda L, a, b: F(L).cosine_similarity(a, b, dim=-1),
     [(3, 1, 5), data(1, 4, 5, seed=1)], {}),
    ("cosine_similarity_strided_eps", lambda L, a, b: F(L).cosine_similarity(a, b, 0, eps=0.5),
     [(7, 3), data(7, 3, seed=1)], {"noncontiguous": True}),
    ("cosine_similarity_zero_vector", lambda L, a, b: F(L).cosine_similarity(a, b),
     [with_zero_row(4, 3, row=2).T.copy(), data(3, 4, seed=1)], {}),
    ("cosine_similarity_1d", lambda L, a, b: F(L).cosine_similarity(a, b, 0),
     [(5,), data(5, seed=1)], {}),
    ("cosine_similarity_ints", lambda L, a: F(L).cosine_similarity(
        L.tensor([[1, 2, 0], [3, -1, 2]]), a), [(2, 3)], {}),
    ("cosine_similarity_top", lambda L, a, b: L.cosine_similarity(a, b, 1),
     [(2, 3), data(2, 3, seed=1)], {}),
    ("pairwise_distance", lambda L, a, b: F(L).pairwise_distance(a, b),
     [(3, 4), data(3, 4, seed=1)], {}),
    ("pairwise_distance_p1_keepdim", lambda L, a, b: F(L).pairwise_distance(
        a, b, 1.0, keepdim=True), [(3, 1, 5), data(3, 1, 5, seed=1)], {}),
    ("pairwise_distance_inf_strided", lambda L, a, b: F(L).pairwise_distance(a, b, math.inf),
     [(7, 3), data(7, 3, seed=1)], {"noncontiguous": True}),
    ("pairwise_distance_p3_eps_broadcast", lambda L, a, b: F(L).pairwise_distance(
        a, b, p=3, eps=0.1), [(4, 3), data(1, 3, seed=1)], {}),
    ("pairwise_distance_negative_p", lambda L, a, b: F(L).pairwise_distance(a, b, -1.5),
     [(2, 3), data(2, 3, seed=1)], {}),
    ("pairwise_distance_1d", lambda L, a, b: F(L).pairwise_distance(a, b),
     [(5,), data(5, seed=1)], {}),
    ("pairwise_distance_equal_rows", lambda L, a: F(L).pairwise_distance(a, a * 1.0, eps=0.0),
     [(3, 2)], {"second_order": False}),
    ("pairwise_distance_top", lambda L, a, b: L.pairwise_distance(a, b, 2.0, 1e-3),
     [(3, 2), data(3, 2, seed=1)], {}),
    ("cdist", lambda L, a, b: L.cdist(a, b), [(5, 3), data(4, 3, seed=1)],
     {"second_order": False}),
    ("cdist_p1", lambda L, a, b: L.cdist(a, b, p=1.0), [(5, 3), data(4, 3, seed=1)],
     {"second_order": False}),
    ("cdist_inf_strided", lambda L, a, b: L.cdist(a, b, math.inf),
     [(3, 7), data(2, 7, seed=1)], {"noncontiguous": True, "second_order": False}),
    ("cdist_p3_batch_broadcast", lambda L, a, b: L.cdist(a, b, 3.0),
     [(2, 5, 3), data(1, 4, 3, seed=1)], {"second_order": False}),
    ("cdist_mm_mode", lambda L, a, b: L.cdist(a, b, compute_mode="use_mm_for_euclid_dist"),
     [(31, 3), data(29, 3, seed=1)], {"second_order": False}),
    ("cdist_large_default_mode", lambda L, a, b: L.cdist(a, b), [(31, 2), data(3, 2, seed=1)],
     {"second_order": False}),
    ("cdist_mm_batch_broadcast", lambda L, a, b: L.cdist(a, b),
     [(2, 27, 3), data(1, 4, 3, seed=1)],
     {"second_order": False}),
    ("cdist_mm_mode_p1_differences", lambda L, a, b: L.cdist(
        a, b, 1.0, "use_mm_for_euclid_dist"), [(3, 2), data(4, 2, seed=1)],
     {"second_order": False}),
    ("cdist_no_mm", lambda L, a, b: L.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist"),
     [(1, 3), data(1, 3, seed=1)], {"second_order": False}),
    ("rms_norm", lambda L, a: F(L).rms_norm(a, (4,)), [(3, 4)], {}),
    ("rms_norm_weight_eps", lambda L, a, w: F(L).rms_norm(a, [1, 5], w, eps=1e-2),
     [(3, 1, 5), data(1, 5, seed=1)], {}),
    ("rms_norm_strided", lambda L, a, w: F(L).rms_norm(a, (3,), w), [(7, 3), data(3, seed=1)],
     {"noncontiguous": True}),
    ("rms_norm_float32_eps", lambda L, a: F(L).rms_norm(a * 1e-4, (2, 3)),
     [data(2, 2, 3, dtype=np.float32)], {"atol": 1e-4, "rtol": 1e-4}),
    ("rms_norm_all_dims", lambda L, a: F(L).rms_norm(a, (2, 3)), [(2, 3)], {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, fn, arrays, options):
    check_op(fn, *arrays, **options)


def with_params(name, *args, params=(), train=True, **kwargs):
    """fn(L, x): L.nn.<name>(*args, **kwargs), its parameters set to `params` (in order), in
    train or eval mode, applied to x."""
    def fn(L, x):
        m = getattr(L.nn, name)(*args, dtype=L.float64, **kwargs)
        with L.no_grad():
            for p, value in zip(m.parameters(), params):
                p.copy_(L.tensor(value))
        m.train(train)
        return m(x)
    return fn


MODULES = [
    ("LayerNorm_no_bias", with_params("LayerNorm", 4, bias=False, params=[data(4, seed=3)]),
     [(3, 4)]),
    ("LayerNorm_no_affine", with_params("LayerNorm", (2, 3), elementwise_affine=False),
     [(4, 2, 3)]),
    ("LayerNorm_affine", with_params("LayerNorm", [3], eps=1e-3,
                                     params=[data(3, seed=3), data(3, seed=4)]), [(2, 1, 3)]),
    ("RMSNorm", with_params("RMSNorm", 4, params=[data(4, seed=3)]), [(3, 4)]),
    ("RMSNorm_eps_2d", with_params("RMSNorm", (2, 3), eps=1e-3, params=[data(2, 3, seed=3)]),
     [(4, 2, 3)]),
    ("RMSNorm_no_affine", with_params("RMSNorm", [5], elementwise_affine=False), [(2, 5)]),
    ("BatchNorm3d_train", with_params("BatchNorm3d", 3, params=[data(3, seed=3),
                                                                data(3, seed=4)]),
     [(2, 3, 2, 1, 3)]),
    ("BatchNorm3d_eval", with_params("BatchNorm3d", 3, train=False), [(2, 3, 1, 2, 2)]),
    ("BatchNorm3d_no_affine", with_params("BatchNorm3d", 2, affine=False, momentum=None),
     [(3, 2, 1, 1, 2)]),
    ("InstanceNorm1d", with_params("InstanceNorm1d", 3), [(2, 3, 5)]),
    ("InstanceNorm1d_unbatched_affine", with_params(
        "InstanceNorm1d", 3, affine=True, params=[data(3, seed=3), data(3, seed=4)]),
     [(3, 7)]),
    ("InstanceNorm1d_running_eval", with_params("InstanceNorm1d", 3, track_running_stats=True,
                                                train=False), [(2, 3, 4)]),
    ("InstanceNorm2d_unbatched", with_params("InstanceNorm2d", 2), [(2, 3, 3)]),
    ("InstanceNorm3d", with_params("InstanceNorm3d", 2, affine=True,
                                   params=[data(2, seed=3), data(2, seed=4)]),
     [(2, 2, 2, 3, 2)]),
    ("InstanceNorm3d_unbatched_running", with_params("InstanceNorm3d", 2,
                                                     track_running_stats=True),
     [(2, 3, 1, 2)]),
    ("CosineSimilarity", lambda L, a, b: L.nn.CosineSimilarity(0, 1e-3)(a, b),
     [(3, 4), data(3, 4, seed=1)]),
    ("PairwiseDistance", lambda L, a, b: L.nn.PairwiseDistance(1.5, 1e-3, True)(a, b),
     [(3, 4), data(3, 4, seed=1)]),
]


@pytest.mark.parametrize("name,fn,arrays", MODULES, ids=[c[0] for c in MODULES])
def test_modules_match_torch(name, fn, arrays):
    check_op(fn, *arrays)


@pytest.mark.parametrize("name,args,shape", [
    ("BatchNorm3d", (3,), (4, 3, 2, 2, 1)),
    ("BatchNorm3d_cumulative", (3,), (4, 3, 1, 2, 3)),
    ("InstanceNorm1d", (3,), (2, 3, 5)),
    ("InstanceNorm1d_unbatched", (3,), (3, 6)),
    ("InstanceNorm3d", (2,), (3, 2, 2, 1, 3)),
])
def test_running_statistics_match_torch(name, args, shape):
    cls = name.split("_")[0]
    kwargs = {"momentum": None} if name.endswith("cumulative") else {}
    if cls.startswith("Instance"):
        kwargs["track_running_stats"] = True
    layers = [getattr(lib.nn, cls)(*args, dtype=lib.float64, **kwargs) for lib in (gf, torch)]
    for step in range(3):
        x = data(shape, seed=step)
        for layer, lib in zip(layers, (gf, torch)):
            layer(lib.tensor(x))
    ours, theirs = layers
    for buf in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(to_numpy(getattr(ours, buf)), to_numpy(getattr(theirs, buf)),
                                   rtol=1e-12, err_msg=buf)


def test_module_parameters_and_defaults_match_torch():
    for lib in (gf, torch):
        ln = lib.nn.LayerNorm(4, bias=False)
        assert ln.bias is None and tuple(ln.weight.shape) == (4,)
        rms = lib.nn.RMSNorm((2, 3))
        assert rms.eps is None and tuple(rms.weight.shape) == (2, 3)
        assert [n for n, _ in rms.named_parameters()] == ["weight"]
        assert lib.nn.RMSNorm(3, elementwise_affine=False).weight is None
        inorm = lib.nn.InstanceNorm3d(2)
        assert inorm.weight is None and inorm.running_mean is None
    assert gf.nn.RMSNorm(3).weight.dtype == gf.float32


def test_rms_norm_default_eps_is_the_dtypes_epsilon():
    for dtype, tdtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
        x = np.full((2, 3), 1e-4, dtype)
        got = gf.nn.functional.rms_norm(gf.tensor(x), (3,))
        want = torch.nn.functional.rms_norm(torch.tensor(x, dtype=tdtype), (3,))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
        assert got.dtype == dtype


def test_normalize_writes_out():
    out = gf.zeros(2, 3, dtype=gf.float64)
    x = gf.tensor(data(2, 3))
    result = gf.nn.functional.normalize(x, out=out)
    assert result is out
    np.testing.assert_allclose(out.numpy(), torch.nn.functional.normalize(
        torch.tensor(data(2, 3))).numpy(), rtol=1e-12)


ERRORS = [
    ("normalize", lambda L, a: F(L).normalize(a, dim=2), (3, 4)),
    ("cosine_similarity", lambda L, a: F(L).cosine_similarity(a, L.tensor(data(2, 4))),
     (3, 4)),
    ("cosine_similarity", lambda L, a: F(L).cosine_similarity(a, a, dim=-3), (3, 4)),
    ("pairwise_distance", lambda L, a: F(L).pairwise_distance(a, L.tensor(data(2, 4))),
     (3, 4)),
    ("cdist", lambda L, a: L.cdist(a[0], a), (3, 4)),
    ("cdist", lambda L, a: L.cdist(a, L.tensor(data(3, 5))), (3, 4)),
    ("cdist", lambda L, a: L.cdist(a, a, p=-1.0), (3, 4)),
    ("cdist", lambda L, a: L.cdist(a, a, compute_mode="fast"), (3, 4)),
    ("rms_norm", lambda L, a: F(L).rms_norm(a, (3,)), (3, 4)),
    ("rms_norm", lambda L, a: F(L).rms_norm(a, (4,), L.ones(3, dtype=L.float64)), (3, 4)),
    ("rms_norm", lambda L, a: F(L).rms_norm(a.long(), (4,)), (3, 4)),
    ("BatchNorm3d", lambda L, a: L.nn.BatchNorm3d(3)(a), (2, 3, 4)),
    ("InstanceNorm1d", lambda L, a: L.nn.InstanceNorm1d(3)(a), (2, 3, 4, 5)),
    ("InstanceNorm3d", lambda L, a: L.nn.InstanceNorm3d(3)(a), (2, 3, 4)),
    ("InstanceNorm1d", lambda L, a: L.nn.InstanceNorm1d(4, affine=True)(a), (2, 3, 5)),
]


@pytest.mark.parametrize("name,fn,array", ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERRORS)])
def test_errors_match_torch(name, fn, array):
    check_op_raises(fn, array, op=name)


@pytest.mark.parametrize("call", [
    lambda f: f.cosine_similarity([1.0, 2.0], gf.ones(2)),
    lambda f: f.pairwise_distance(gf.ones(2), np.ones(2)),
    lambda f: f.normalize([1.0]),
    lambda f: gf.cdist(gf.ones(2, 2), [[1.0, 2.0]]),
])
def test_a_list_is_a_clear_type_error(call):
    with pytest.raises(TypeError, match=r"must be a Tensor, got (list|ndarray); wrap it"):
        call(gf.nn.functional)


GRADCHECK = {
    "normalize": (lambda L, a: F(L).normalize(a, 3.0, 0), [(3, 2)]),
    "cosine_similarity": (lambda L, a, b: F(L).cosine_similarity(a, b, -1),
                          [(2, 3), data(1, 3, seed=1)]),
    "pairwise_distance": (lambda L, a, b: F(L).pairwise_distance(a, b, 1.5),
                          [(2, 3), data(2, 3, seed=1)]),
    "cdist": (lambda L, a, b: L.cdist(a, b), [(3, 2), data(2, 2, seed=1)]),
    "cdist_p1": (lambda L, a, b: L.cdist(a, b, 1.0), [(3, 2), data(2, 2, seed=1)]),
    "rms_norm": (lambda L, a, w: F(L).rms_norm(a, (3,), w), [(2, 3), data(3, seed=1)]),
    "layer_norm_no_bias": (lambda L, a, w: F(L).layer_norm(a, (3,), w), [(2, 3), data(3)]),
    "instance_norm_1d": (lambda L, a: L.nn.InstanceNorm1d(2)(a), [(2, 2, 3)]),
    "batch_norm_3d": (lambda L, a: L.nn.BatchNorm3d(2, dtype=L.float64)(a), [(2, 2, 1, 1, 2)]),
}


@pytest.mark.parametrize("name", GRADCHECK)
def test_gradcheck(name):
    fn, arrays = GRADCHECK[name]
    check_gradcheck(fn, *arrays)


def _f():
    return gf.nn.functional


CUPY = {
    "normalize": lambda x, i: _f().normalize(x, p=3.0, dim=1),
    "cosine_similarity": lambda x, i: gf.cosine_similarity(x, x.detach().flip(1) + 1, 1),
    "pairwise_distance": lambda x, i: _f().pairwise_distance(x, x.detach().flip(0), 1.0,
                                                             keepdim=True),
    "cdist": lambda x, i: gf.cdist(x, x.detach().flip(0) * 2),
    "cdist_inf": lambda x, i: gf.cdist(x.t(), x.detach().t() * 0.5, math.inf),
    "cdist_by_product": lambda x, i: gf.cdist(x, x.detach().flip(0) * 2,
                                              compute_mode="use_mm_for_euclid_dist"),
    "rms_norm": lambda x, i: _f().rms_norm(x, (3,)),
    "RMSNorm": lambda x, i: gf.nn.RMSNorm(3, device=x.device)(x),
    "LayerNorm_no_bias": lambda x, i: gf.nn.LayerNorm(3, bias=False, device=x.device)(x),
    "BatchNorm3d": lambda x, i: gf.nn.BatchNorm3d(1, device=x.device)(x.reshape(2, 1, 1, 3, 1)),
    "InstanceNorm1d": lambda x, i: gf.nn.InstanceNorm1d(2)(x),
    "InstanceNorm3d": lambda x, i: gf.nn.InstanceNorm3d(1)(x.reshape(1, 1, 2, 3, 1)),
    "CosineSimilarity": lambda x, i: gf.nn.CosineSimilarity(0)(x, x.detach() + 1),
    "PairwiseDistance": lambda x, i: gf.nn.PairwiseDistance()(x, x.detach() * 3),
}


@pytest.mark.parametrize("name", CUPY)
def test_the_cupy_path(fake_cuda, name):
    check_cupy_path(CUPY[name], X_CUPY, I_CUPY, rtol=1e-5, atol=1e-6)
