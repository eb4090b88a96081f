"""In-place ops inside the graph and views that share memory and the version counter, against
PyTorch: values, first and second derivatives through rebased histories (non-leaf tensors,
views of them, item assignment, buffers filled from tensors that require grad), and
PyTorch's errors where the gradient could not stay correct."""
import numpy as np
import pytest
from helpers import check_gradcheck, check_op, check_op_raises, data, require_torch

import gradflow as gf

A, B = data((3, 4)), data((3, 4), seed=1)
ROW, COL = data((4,), seed=2), data((3, 1), seed=3, kind="pos")

# (id, fn(lib, *tensors), inputs): in-place ops on tensors made inside fn
GRAPHS = [
    ("add_broadcast", lambda L, a, r: (a * 1).add_(r, alpha=2), [A, ROW]),
    ("sub_", lambda L, a, b: (a * 2).sub_(b), [A, B]),
    ("mul_saves_self", lambda L, a, b: (a * 1).mul_(b), [A, B]),
    ("div_", lambda L, a, c: (a + 3).div_(c), [A, COL]),
    ("iadd_residual", lambda L, a, b: _iadd(a * 2, b.tanh()), [A, B]),
    ("relu_then_use", lambda L, a: _then(lambda y: y.relu_(), a * 3) * a, [A]),
    ("exp_saved_output", lambda L, a: _then(lambda y: y.exp_(), a * 0.5).sum(0), [A]),
    ("chain_of_three", lambda L, a, b: (a * 1).mul_(b).add_(1).sigmoid_(), [A, B]),
    ("clamp_", lambda L, a: (a * 1).clamp_(-0.5, 0.7), [A]),
    ("setitem_row", lambda L, a, b: _set(a * 1, (1,), b[2] * 2), [A, B]),
    ("setitem_slice_number", lambda L, a: _set(a * 1, (slice(None), slice(1, 3)), 0.5), [A]),
    ("setitem_ellipsis_col", lambda L, a, r: _set(a * 1, (Ellipsis, 2), r[:3]), [A, ROW]),
    ("setitem_advanced", lambda L, a, b: _set(a * 1, (L.tensor([2, 0]),), b[:2] * 2), [A, B]),
    ("setitem_mask", lambda L, a, b: _set(a * 1, a.detach() > 0, b[a.detach() > 0]), [A, B]),
    ("setitem_mixed", lambda L, a, r: _set(a * 1, (slice(1, None), L.tensor([3, 0])), r[:2]),
     [A, ROW]),
    ("buffer_rows", lambda L, a, b: _rows(L, a, b), [A, B]),
    ("view_mul_", lambda L, a, b: _then(lambda y: y.t()[1].mul_(b[0, :3].sum()), a * 1), [A, B]),
    ("view_of_view", lambda L, a: _then(lambda y: y[1:][:, ::2].add_(y[0, ::2].exp()), a * 1),
     [A]),
    ("reshaped_view", lambda L, a: _then(lambda y: y.view(2, 6)[1].mul_(3), a * 1), [A]),
    ("stale_view", lambda L, a: _stale(a), [A]),
    ("unfold_view", lambda L, a, b: _then(lambda y: y.unfold(1, 2, 2)[1].mul_(b[0, :2]), a * 1),
     [A, B]),
    ("diagonal_view", lambda L, a, b: _then(lambda y: y.diagonal(1).add_(b[0, :3]), a * 1),
     [A, B]),
    ("narrow_movedim_view", lambda L, a: _then(lambda y: y.narrow(1, 1, 2).movedim(0, 1)
                                               .sigmoid_(), a * 1), [A]),
    ("zero_cuts_history", lambda L, a: _then(lambda y: y.zero_(), a * 2) + a, [A]),
    ("copy_from_tensor", lambda L, a, r: L.zeros(3, 4, dtype=L.float64).copy_(r * 2), [A, ROW]),
    ("fill_0d_tensor", lambda L, a, b: (a * 1).fill_(b[0, 0] * 3), [A, B]),
    ("comparison_writes_float", lambda L, a, b: (a * 1).gt_(b) * a, [A, B]),
    ("residual_block", lambda L, a, b: _residual(L, a, b), [A, B]),
    ("inplace_modules", lambda L, a: L.nn.LeakyReLU(0.2, inplace=True)(a * 2) * a
     + L.nn.ELU(inplace=True)(a * 3), [A]),
    ("dropout_all", lambda L, a: L.nn.functional.dropout(a * 1, 1.0, inplace=True) + a, [A]),
]
IDS = [case[0] for case in GRAPHS]


def _iadd(out, identity):
    out += identity
    return out


def _residual(L, a, b):
    """torchvision's BasicBlock: in-place ReLUs and `out += identity` (on the output of the
    layer after the first ReLU, here a product)."""
    relu = L.nn.ReLU(inplace=True)
    out = relu(a * b) * b
    out += a
    return relu(out)


def _then(step, y):
    step(y)
    return y


def _set(y, index, value):
    y[index] = value
    return y


def _rows(L, a, b):
    """A buffer that does not require grad, filled from tensors that do (a CopySlices base)."""
    w = L.zeros(3, 4, dtype=L.float64)
    w[0] = a[0]
    w[2] = b[1] * a[2]
    w.t()[3].mul_(b[0, 0])
    return w


def _stale(a):
    """A view taken before its base changed in place reads the new values, and its gradient
    goes through the in-place op (its history is taken again)."""
    y = a * 1
    v = y[1]
    y.mul_(2)
    return v * 3 + y.sum(0)


@pytest.mark.parametrize("fn,arrays", [c[1:] for c in GRAPHS], ids=IDS)
def test_inplace_in_graph_matches_torch(fn, arrays):
    check_op(fn, *arrays)


@pytest.mark.parametrize("fn,arrays", [c[1:] for c in GRAPHS if c[0] != "reshaped_view"],
                         ids=[i for i in IDS if i != "reshaped_view"])
def test_inplace_in_graph_on_noncontiguous_inputs(fn, arrays):
    """(`y.view` of a permuted input is no view in either library: not among these.)"""
    check_op(fn, *arrays, noncontiguous=True, second_order=False)


@pytest.mark.parametrize("name", ["mul_saves_self", "setitem_row", "view_of_view", "stale_view",
                                  "buffer_rows"])
def test_inplace_in_graph_gradcheck(name):
    fn, arrays = dict((c[0], c[1:]) for c in GRAPHS)[name]
    check_gradcheck(fn, *arrays)


def test_write_through_a_view_reaches_the_base():
    """The issue's case: a write through a view of a transposed tensor changes the tensor."""
    x = gf.tensor(np.arange(3.0).reshape(3, 1))
    x.t().view(-1)[0] = 100.0
    np.testing.assert_array_equal(x.numpy(), [[100.0], [1], [2]])
    x = gf.tensor(np.arange(6.0).reshape(2, 3))
    x.t().view(3, 2)[2].fill_(-1.0)
    x.t()[0, 1] = 7.0
    np.testing.assert_array_equal(x.numpy(), [[0.0, 1, -1], [7, 4, -1]])


def test_views_share_the_version_counter_and_report_their_layout():
    th = require_torch()
    for lib in (gf, th):
        x = lib.zeros(4, 6)
        v = x.t()[1:, ::2]
        before = (x._version, v._version)
        v.add_(1)
        x[0].mul_(2)
        assert (before, x._version, v._version) == ((0, 0), 2, 2), lib.__name__
    arr = np.arange(24.0).reshape(4, 6)
    for make in (lambda L, t: t.t(), lambda L, t: t[1:, ::2], lambda L, t: t.t()[2:][:, 1:3],
                 lambda L, t: t[2], lambda L, t: t.reshape(3, 8), lambda L, t: t[:, 3:].t()):
        ours, theirs = make(gf, gf.tensor(arr)), make(th, th.tensor(arr))
        assert (ours.stride(), ours.storage_offset(), ours.is_contiguous()) == (
            theirs.stride(), theirs.storage_offset(), theirs.is_contiguous())
        assert ours._base is not None and ours.data_ptr() >= ours._base.data_ptr()
        assert ours.stride(-1) == theirs.stride(-1)


def test_a_saved_tensor_modified_in_place_is_caught_through_any_view():
    x = gf.tensor(data(3, 4), requires_grad=True)
    y = x * 2
    s = (y[0] * 1).sin() + y.t().cos().sum()  # saves views of y
    y.t()[2].add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        s.sum().backward()


def test_grad_fn_names_next_functions_and_repr_match_torch():
    th = require_torch()
    names = []
    for lib in (gf, th):
        x = lib.tensor(data(3, 4), requires_grad=True)
        y = (x * 2 + 1).mean()
        z = x.exp().sum()
        w = lib.zeros(2)
        w[0] = z
        fn = y.grad_fn
        names.append((fn.name(), fn.next_functions[0][0].name(),
                      fn.next_functions[0][0].next_functions[0][0].name(),
                      type(fn.next_functions[0][0].next_functions[0][0].next_functions[0][0])
                      .__name__, z.grad_fn.name(),
                      w.grad_fn.name().replace("torch::autograd::", ""), repr(fn)[:15]))
        assert fn.next_functions[0][0].next_functions[0][0].next_functions[0][0].variable is x
    assert names[0] == names[1]


def test_post_accumulate_grad_hook_runs_after_grad_is_set():
    seen = []
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (x * 3).sum().backward()
    (x * 1).sum().backward()
    handle.remove()
    (x * 1).sum().backward()
    assert seen == [[3.0, 3.0], [4.0, 4.0]]
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)


# the in-place forms: each against torch's on tensors that need no gradient
UNARY_FORMS = ["abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp",
               "exp2", "expm1", "floor", "frac", "log1p", "neg", "reciprocal", "relu",
               "round", "rsqrt", "sgn", "sigmoid", "sign", "sin", "sinh", "sqrt", "square",
               "tan", "tanh", "trunc"]
BINARY_FORMS = ["atan2", "copysign", "div", "eq", "fmod", "ge", "gt", "hypot", "le", "lt",
                "mul", "ne", "pow", "remainder", "xlogy"]


UNARY_FORMS += ["arccos", "arcsin", "arctan", "negative", "fix",
                "absolute", "deg2rad", "rad2deg", "sinc", "i0"]
BINARY_FORMS += ["arctan2", "multiply", "divide", "subtract", "true_divide", "float_power",
                 "greater", "less", "greater_equal", "less_equal", "not_equal"]


@pytest.mark.parametrize("name", UNARY_FORMS)
def test_unary_inplace_forms_match_torch(name):
    arg = np.abs(data(3, 5, kind="unit")) + 0.1
    check_op(lambda L, a: getattr(a * 1, name + "_")(), arg)


@pytest.mark.parametrize("name", BINARY_FORMS)
def test_binary_inplace_forms_match_torch(name):
    check_op(lambda L, a, b: getattr(a * 1, name + "_")(b), data(3, 5, kind="pos") * 3,
             data(5, seed=1, kind="pos"))


def test_other_inplace_forms_match_torch():
    a, b, c = data(3, 5), data(3, 5, seed=1), data(5, seed=2, kind="pos")
    check_op(lambda L, x, y: (x * 1).lerp_(y, 0.3), a, b)
    check_op(lambda L, x: (x * 1).nan_to_num_(nan=2.0), a)
    check_op(lambda L, x, y: (x * 1).clamp_(min=y * 0.1), a, c)
    check_op(lambda L, x: (x * 0.4 + 0.5).logit_(eps=1e-3), a)
    check_op(lambda L, x: (x * 10).round_(decimals=-1), a)
    check_op(lambda L, x, y: (x * 1).div_(y, rounding_mode="floor"), a * 7, c)
    ints = np.array([[5, -3, 8], [0, 7, -1]])
    check_op(lambda L, i: i.bitwise_and_(6).bitwise_or_(1).bitwise_xor_(3).bitwise_not_(), ints)
    check_op(lambda L, i: (i * 1).bitwise_left_shift_(2).bitwise_right_shift_(1), ints)
    check_op(lambda L, i: (i * 1).floor_divide_(3), ints)
    check_op(lambda L, i: (i * 1).gcd_(i + 4).lcm_(i * 0 + 6), ints)
    check_op(lambda L, x: (x * 1).clamp_min_(0.1).clamp_max_(0.9), a)
    check_op(lambda L, x, y, z: (x * 1).addcmul_(y, z, value=0.5).addcdiv_(y, z, value=2), a,
             b, c)
    check_op(lambda L, x: (x * 1).cumsum_(1).cumprod_(0), a)
    # NOTE: torch has no derivative of these in place (nor of asinh_, atanh_)
    check_op(lambda L, x, y: (x.detach() * 1).ldexp_(L.tensor([[1, 2, 0, 3, 1]]))
             .heaviside_(y.detach()).nextafter_(y.detach()).arcsinh_().arctanh_(), a * 0.2, b)
    check_op(lambda L, x, y, z: (x[:, :3] * 1).addmm_(y[:, :2], z[:2, :3].t().t(), beta=0.5),
             a, b, b)
    check_op(lambda L, x, y: (x[0, :3] * 1).addmv_(y[:, :3].t(), y[:, 0], alpha=2), a, b)
    check_op(lambda L, x, y: (x[:2, :2].reshape(1, 2, 2) * 1).baddbmm_(
        y[:2, :3].reshape(1, 2, 3), y[:, :2].reshape(1, 3, 2)), a, b)
    check_op(lambda L, x, y: (x[:2, :2] * 1).addbmm_(y[:2, :3].reshape(1, 2, 3),
                                                    y[:, :2].reshape(1, 3, 2)), a, b)
    # NOTE: on floats that require grad, torch's logical_*_ leave the history as it was (no
    # derivative formula); on tensors without one both write 1 and 0 in the tensor's dtype
    check_op(lambda L, i: i.float().logical_and_(i > 0).logical_or_(i < -1).logical_xor_(i)
             .logical_not_(), ints)


INTS = np.array([1, 2])
# (id, fn, inputs, op): calls PyTorch refuses, refused alike
IDX = np.array([2, 0])
COLS = np.array([[0, 2], [1, 1], [3, 0]])
# the in-place scatters, masks and triangles, in the graph (both operands require grad)
SCATTERS = [
    ("index_add_", lambda L, a, b, i: (a * 1).index_add_(0, i, b[:2], alpha=2), [A, B, IDX]),
    ("index_copy_", lambda L, a, b, i: (a * 1).index_copy_(0, i, b[:2] * 3), [A, B, IDX]),
    ("index_fill_", lambda L, a, i: (a * 1).index_fill_(1, i, -1.5), [A, IDX]),
    ("index_put_", lambda L, a, b, i: (a * 1).index_put_((i,), b[:2], accumulate=True),
     [A, B, IDX]),
    ("masked_fill_", lambda L, a: (a * 1).masked_fill_(a.detach() > 0.5, 0.25), [A]),
    ("masked_scatter_", lambda L, a, b: (a * 1).masked_scatter_(a.detach() > 0, b * 2), [A, B]),
    ("scatter_", lambda L, a, b, c: (a * 1).scatter_(1, c, b[:, :2]), [A, B, COLS]),
    ("scatter_add_", lambda L, a, b, c: (a * 1).scatter_add_(1, c, b[:, :2]), [A, B, COLS]),
    ("scatter_reduce_", lambda L, a, b, c: (a * 1).scatter_reduce_(1, c, b[:, :2], "amax"),
     [A, B, COLS]),
    ("tril_", lambda L, a: (a * 1).tril_(1), [A]),
    ("triu_", lambda L, a: (a * 1).triu_(-1), [A]),
    ("erfinv_", lambda L, a: (a * 0.5).erfinv_(), [A]),
    ("t_", lambda L, a, b: (a * 1).t_() * b.t(), [A, B]),
    ("transpose_squeeze_", lambda L, a: (a[:1] * 1).transpose_(0, 1).squeeze_(1).unsqueeze_(0)
     .swapdims_(0, 1), [A]),
]


@pytest.mark.parametrize("fn,arrays", [c[1:] for c in SCATTERS], ids=[c[0] for c in SCATTERS])
def test_scatter_and_mask_inplace_forms_match_torch(fn, arrays):
    check_op(fn, *arrays)


BAD = [
    ("leaf", lambda L, a: a.requires_grad_().add_(1), [A], "add_"),
    ("view_of_leaf", lambda L, a: a.requires_grad_()[0].mul_(2), [A], "mul_"),
    ("float_into_int", lambda L, i: i.add_(1.5), [INTS], "add_"),
    ("int_into_bool", lambda L, i: (i > 0).add_(i), [INTS], "add_"),
    ("broadcast_grows", lambda L, r, a: r.add_(a), [ROW, A], "add_"),
    ("expanded", lambda L, r: r.expand(3, 4).mul_(2), [ROW], "mul_"),
    ("fill_with_1d", lambda L, a, r: a.fill_(r), [A, ROW], "fill_"),
    ("setitem_shape", lambda L, a, r: a.__setitem__(0, r[:3]), [A, ROW], "setitem"),
    ("unbind_output", lambda L, a: (a.requires_grad_() * 1).unbind(0)[1].mul_(2), [A], "mul_"),
    ("saved_output_changed", lambda L, a: _then(lambda y: y.pow_(2), (a.requires_grad_() * 1)
                                                .sigmoid_()).sum().backward(), [A],
     "SigmoidBackward0"),
]


@pytest.mark.parametrize("fn,arrays,op", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_inplace_ops_raise_as_torch(fn, arrays, op):
    check_op_raises(fn, *arrays, op=op)


def test_inplace_on_the_cupy_path(fake_cuda):
    """The rebased histories run on CuPy arrays (the fake's stand-in) and give the CPU's
    values and gradients."""
    results = []
    for device in ("cpu", "cuda"):
        a = gf.tensor(A, device=device, requires_grad=True)
        b = gf.tensor(B, device=device, requires_grad=True)
        w = gf.zeros(3, 4, dtype=gf.float64, device=device)
        w[0] = a[0]
        w.t()[3].mul_(b[0, 0])
        w[gf.tensor([1, 2], device=device)] = b[:2] * 1
        out = w + _stale(a) + (a * 1).mul_(b).relu_() + _residual(gf, a, b)
        out = out + _then(lambda y: y.unfold(1, 2, 2)[1].mul_(b[0, :2]), a * 1)
        out.sum().backward()
        results.append((out.tolist(), a.grad.tolist(), b.grad.tolist()))
    for cpu, cuda in zip(*results):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-12)


def test_inplace_writes_into_empty_tensors_as_torch():
    """An empty tensor's dims have stride 0 in NumPy, yet no elements share memory."""
    check_op(lambda L, a: (a * 1).fill_(1.5), (0, 3))
    check_op(lambda L, a: (a * 1).add_(2.0)[:, :0].mul_(3.0), (4, 2))
