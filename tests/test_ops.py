"""Every differentiable op against PyTorch (values, gradients, second derivatives) and against
finite differences, on awkward shapes: size-1 dims, broadcasting both ways, 0-d, views."""
import numpy as np
import pytest
from helpers import check_gradcheck, check_op, check_op_raises, data, distinct

# (id, fn(lib, *tensors), inputs)
CASES = [
    ("add_broadcast", lambda L, a, b: a + b, [data((3, 1, 4)), data((5, 4), seed=1)]),
    ("add_size1", lambda L, a, b: a + b, [data((1,)), data((3, 4), seed=1)]),
    ("add_0d", lambda L, a, b: a + b, [data(()), data((2, 3), seed=1)]),
    ("add_scalar", lambda L, a: a + 2.5, [data((2, 3))]),
    ("radd_scalar", lambda L, a: 2.5 + a, [data((2, 3))]),
    ("sub_broadcast", lambda L, a, b: a - b, [data((4, 1)), data((1, 5), seed=1)]),
    ("rsub_scalar", lambda L, a: 1.5 - a, [data((3,))]),
    ("mul_broadcast", lambda L, a, b: a * b, [data((2, 3, 1)), data((3, 4), seed=1)]),
    ("mul_scalar", lambda L, a: a * 3, [data((2, 2))]),
    ("div_broadcast", lambda L, a, b: a / b, [data((3, 4)), data((4,), kind="pos", seed=1)]),
    ("rdiv_scalar", lambda L, a: 3.0 / a, [data((5,), kind="pos")]),
    ("neg", lambda L, a: -a, [data((2, 3))]),
    ("pow_int", lambda L, a: a ** 3, [data((2, 3))]),
    ("pow_half", lambda L, a: a ** 0.5, [data((2, 3), kind="pos")]),
    ("pow_zero", lambda L, a: a ** 0, [data((4,))]),
    ("pow_tensor", lambda L, a, b: a ** b, [data((3, 1), kind="pos"), data((1, 4), seed=1)]),
    ("rpow_scalar", lambda L, a: 2 ** a, [data((3, 2))]),
    ("exp", lambda L, a: a.exp(), [data((2, 3))]),
    ("log", lambda L, a: L.log(a), [data((2, 3), kind="pos")]),
    ("sqrt", lambda L, a: a.sqrt(), [data((4, 1), kind="pos")]),
    ("abs", lambda L, a: L.abs(a), [data((3, 3))]),
    ("sin", lambda L, a: L.sin(a), [data((2, 3))]),
    ("cos", lambda L, a: a.cos(), [data((2, 3))]),
    ("tanh", lambda L, a: L.tanh(a), [data((2, 3))]),
    ("sigmoid", lambda L, a: L.sigmoid(a), [data((2, 3))]),
    ("relu", lambda L, a: L.relu(a), [data((3, 4))]),
    ("erf", lambda L, a: L.erf(a * 2), [data((3, 4))]),
    ("clamp", lambda L, a: L.clamp(a, -0.5, 0.9), [data((3, 4))]),
    ("clamp_min", lambda L, a: a.clamp(min=0.2), [data((3, 4))]),
    ("clamp_tensor", lambda L, a, lo: L.clamp(a, min=lo),
     [data((3, 4)), data((4,), seed=2) * 0.5]),
    ("where", lambda L, a, b: L.where(a > 0, a, b), [data((3, 4)), data((1, 4), seed=1)]),
    ("where_scalar", lambda L, a: L.where(a > 0, a, 0.0), [data((3, 4))]),
    ("maximum", lambda L, a, b: L.maximum(a, b), [distinct(3, 4), distinct(4, seed=1) + 0.1]),
    ("minimum", lambda L, a, b: L.minimum(a, b), [distinct(2, 1), distinct(2, 3, seed=1) + 0.1]),
    ("matmul_1d_1d", lambda L, a, b: a @ b, [data((3,)), data((3,), seed=1)]),
    ("matmul_2d_1d", lambda L, a, b: a @ b, [data((2, 3)), data((3,), seed=1)]),
    ("matmul_1d_2d", lambda L, a, b: a @ b, [data((3,)), data((3, 4), seed=1)]),
    ("matmul_2d_2d", lambda L, a, b: L.matmul(a, b), [data((2, 3)), data((3, 4), seed=1)]),
    ("matmul_batched", lambda L, a, b: a @ b, [data((2, 2, 3)), data((2, 3, 4), seed=1)]),
    ("matmul_broadcast", lambda L, a, b: a @ b, [data((2, 1, 2, 3)), data((3, 3, 2), seed=1)]),
    ("matmul_batch_2d", lambda L, a, b: a @ b, [data((3, 2, 3)), data((3, 1), seed=1)]),
    ("matmul_1d_batched", lambda L, a, b: a @ b, [data((3,)), data((2, 3, 2), seed=1)]),
    ("sum_all", lambda L, a: a.sum(), [data((2, 3, 4))]),
    ("sum_dim", lambda L, a: a.sum(1), [data((2, 3, 4))]),
    ("sum_dims_keepdim", lambda L, a: a.sum((0, 2), keepdim=True), [data((2, 3, 4))]),
    ("sum_negdim", lambda L, a: L.sum(a, -1), [data((2, 1, 3))]),
    ("mean_all", lambda L, a: a.mean(), [data((3, 4))]),
    ("mean_dim", lambda L, a: L.mean(a, 0, keepdim=True), [data((3, 4))]),
    ("max_all", lambda L, a: a.max(), [distinct((3, 4))]),
    ("max_dim", lambda L, a: a.max(1), [distinct((3, 4))]),
    ("min_dim_keepdim", lambda L, a: L.min(a, 0, keepdim=True)[0], [distinct((3, 4))]),
    ("min_all", lambda L, a: a.min(), [distinct((5,))]),
    ("amax_dims", lambda L, a: L.amax(a, (0, 2)), [distinct((2, 3, 2))]),
    ("amin_dim", lambda L, a: a.amin(1, keepdim=True), [distinct((2, 3, 2))]),
    ("max_ties", lambda L, a: a.max(), [np.array([1.0, 3.0, 3.0, -2.0])]),
    ("var_dim", lambda L, a: a.var(1), [data((3, 5))]),
    ("var_all_biased", lambda L, a: L.var(a, unbiased=False), [data((2, 3))]),
    ("var_correction", lambda L, a: a.var(0, correction=0, keepdim=True), [data((4, 2))]),
    ("std_all", lambda L, a: a.std(), [data((3, 4))]),
    ("std_dim", lambda L, a: L.std(a, dim=1, keepdim=True), [data((3, 4))]),
    ("logsumexp", lambda L, a: L.logsumexp(a, 1), [data((3, 4))]),
    ("logsumexp_keepdim", lambda L, a: a.logsumexp((0, 1), keepdim=True), [data((2, 3, 2))]),
    ("reshape", lambda L, a: a.reshape(3, -1) * 1.0, [data((2, 3, 2))]),
    ("view", lambda L, a: (a * 1).contiguous().view(-1), [data((2, 3))]),
    ("permute", lambda L, a: a.permute(2, 0, 1), [data((2, 3, 4))]),
    ("transpose", lambda L, a: a.transpose(0, -1), [data((2, 3, 4))]),
    ("T", lambda L, a: a.T, [data((2, 3))]),
    ("mT", lambda L, a: a.mT, [data((2, 3, 4))]),
    ("t", lambda L, a: a.t(), [data((3, 2))]),
    ("squeeze_all", lambda L, a: a.squeeze(), [data((1, 3, 1, 2))]),
    ("squeeze_dim", lambda L, a: L.squeeze(a, 2), [data((1, 3, 1, 2))]),
    ("unsqueeze", lambda L, a: a.unsqueeze(-1), [data((2, 3))]),
    ("flatten", lambda L, a: L.flatten(a, 1), [data((2, 3, 2))]),
    ("expand", lambda L, a: a.expand(2, 3, 4), [data((3, 1))]),
    ("expand_as", lambda L, a, b: a.expand_as(b) * b, [data((1, 4)), data((3, 4), seed=1)]),
    ("contiguous", lambda L, a: a.t().contiguous(), [data((3, 2))]),
    ("index_int", lambda L, a: a[1], [data((3, 4))]),
    ("index_slices", lambda L, a: a[:, 1:3], [data((3, 4))]),
    ("index_step_none", lambda L, a: a[..., None, ::2], [data((2, 5))]),
    ("index_negative", lambda L, a: a[-1, -2:], [data((3, 4))]),
    ("index_list_dups", lambda L, a: a[[0, 2, 0]], [data((3, 4))]),
    ("index_tensor", lambda L, a: a[L.tensor([2, 0, 2, 1])], [data((3, 2))]),
    ("index_2d_arrays", lambda L, a: a[L.tensor([0, 2]), L.tensor([1, 1])], [data((3, 4))]),
    ("index_mask", lambda L, a: a[a > 0], [data((3, 4))]),
    ("index_mixed", lambda L, a: a[1:, L.tensor([0, 0, 3])], [data((3, 4))]),
    ("cat_dim0", lambda L, a, b: L.cat([a, b]), [data((2, 3)), data((1, 3), seed=1)]),
    ("cat_dim1", lambda L, a, b: L.cat([a, b, a], dim=1), [data((2, 3)), data((2, 1), seed=1)]),
    ("stack", lambda L, a, b: L.stack([a, b], 1), [data((2, 3)), data((2, 3), seed=1)]),
    ("split_size", lambda L, a: a.split(2, 1), [data((2, 5))]),
    ("split_sections", lambda L, a: L.split(a, [1, 3], 0)[1], [data((4, 2))]),
    ("chunk", lambda L, a: L.chunk(a, 3, -1), [data((2, 7))]),
    ("composite", lambda L, a, b: L.tanh(a @ b).sum(1).exp() / (1 + a.abs().mean()),
     [data((3, 4)), data((4, 2), seed=1)]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=IDS)
def test_matches_torch(name, fn, inputs, device):
    check_op(fn, *inputs, device=device)


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=IDS)
def test_matches_torch_noncontiguous(name, fn, inputs, device):
    check_op(fn, *inputs, device=device, noncontiguous=True, second_order=False)


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=IDS)
def test_gradcheck(name, fn, inputs):
    # NOTE: at a tie the max is not twice differentiable, so only first order is checked.
    check_gradcheck(fn, *inputs, second_order=name != "max_ties")


@pytest.mark.parametrize("name,fn,inputs", [
    ("add_f32", lambda L, a, b: a * b + a, [data((3, 4)).astype(np.float32),
                                            data((4,), seed=1).astype(np.float32)]),
    ("matmul_f32", lambda L, a, b: a @ b, [data((5, 3)).astype(np.float32),
                                           data((3, 2), seed=1).astype(np.float32)]),
    ("mul_add_f16", lambda L, a, b: a * b + a, [data((3, 4)).astype(np.float16),
                                                data((4,), seed=1).astype(np.float16)]),
    ("sum_f16", lambda L, a: a.sum(1), [data((3, 4)).astype(np.float16)]),
    ("sigmoid_large", lambda L, a: L.sigmoid(a), [np.array([-1e4, -50.0, 0.0, 50.0, 1e4])]),
    ("logsumexp_large", lambda L, a: L.logsumexp(a, 0), [np.array([1e4, 1e4 - 1.0, -1e4])]),
    ("logsumexp_neginf", lambda L, a: L.logsumexp(a, 1),
     [np.array([[-np.inf, -np.inf], [0.0, 1.0]])]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_float32_and_extremes_match_torch(name, fn, inputs, device):
    tol = 2e-3 if inputs[0].dtype == np.float16 else 1e-5
    check_op(fn, *inputs, device=device, atol=tol, rtol=tol, second_order=False)


# -- the shapes-only form: an op's test in one line ------------------------------------------------
@pytest.mark.parametrize("name,fn,shapes", [
    ("mul_add_broadcast", lambda L, a, b: a * b + a, [(3, 1), (4,)]),
    ("matmul_batched", lambda L, a, b: a @ b, [(2, 3, 4), (4, 5)]),
    ("tanh_mean", lambda L, a: a.tanh().mean(0), [(3, 4)]),
    ("cat_dim1", lambda L, a, b: L.cat([a, b], 1), [(2, 3), (2, 1)]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_shapes_only_form_matches_torch(name, fn, shapes, device):
    check_op(fn, *shapes, device=device)


# -- a bad call raises PyTorch's exception type, and the message names the op ----------------------
@pytest.mark.parametrize("op,shapes", [
    ("matmul", [(2, 3), (4, 5)]),
    ("add", [(2, 3), (4, 5)]),
    ("mul", [(2, 3), (4, 1, 5)]),
    ("linear", [(2, 3), (4, 5)]),
    ("conv2d", [(1, 3, 5, 5), (4, 2, 3, 3)]),
    ("conv2d", [(5, 5), (4, 2, 3, 3)]),
    ("mse_loss", [(2, 3), (4, 5)]),  # a deliberate ValueError: helpers.DIFFERENT_ERRORS
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_call_raises_like_torch(op, shapes):
    check_op_raises(op, *shapes)


@pytest.mark.parametrize("op,fn,args", [
    ("sum", lambda L, x: x.sum(dim=5), [(2, 3)]),
    ("transpose", lambda L, x: x.transpose(0, 4), [(2, 3)]),
    ("reshape", lambda L, x: x.reshape(4, 2), [(2, 3)]),
    ("cat", lambda L, a, b: L.cat([a, b]), [(2, 3), (2, 4)]),
    ("stack", lambda L, a, b: L.stack([a, b]), [(2, 3), (2, 4)]),
    ("max_pool2d", lambda L, x: L.nn.functional.max_pool2d(x, 3), [(1, 1, 2, 2)]),
    ("pad", lambda L, x: L.nn.functional.pad(x, (1,)), [(2, 3)]),
    ("getitem", lambda L, x: x[5], [(2, 3)]),
    ("nll_loss", lambda L, x, t: L.nn.functional.nll_loss(x, t), [(2, 3), np.array([0, 5])]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_call_with_arguments_raises_like_torch(op, fn, args):
    check_op_raises(fn, *args, op=op)
