"""scaled_dot_product_attention against PyTorch: values, first and second derivatives on
awkward shapes (L != S, one head, 2-D and 3-D inputs, broadcast batches, grouped-query heads),
boolean and additive masks of several broadcast shapes, causal masks with L != S, fully
masked rows, the chunked (head by head) path under a lowered memory limit, dropout by its
statistics and its reproducibility, bad arguments, gradcheck and the CuPy path."""
import numpy as np
import pytest
from helpers import check_cupy_path, check_gradcheck, check_op, check_op_raises, data, require_torch

import gradflow as gf
from gradflow.nn.functional import attention

torch = require_torch()
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402


def sdpa(L, *args, **kwargs):
    """The op in gradflow, or torch's math backend (its fused CPU kernel has no double
    backward)."""
    if L is gf:
        return gf.nn.functional.scaled_dot_product_attention(*args, **kwargs)
    with sdpa_kernel(SDPBackend.MATH):
        return torch.nn.functional.scaled_dot_product_attention(*args, **kwargs)


@pytest.fixture(params=["whole", "chunked"])
def path(request):
    """Run each test on the one-shot path and on the chunked one (a limit of one score row,
    so every chunk is a single head)."""
    if request.param == "chunked":
        attention.set_attention_memory_limit(1)
    yield request.param
    attention.set_attention_memory_limit(None)


def bool_mask(*shape, seed=0):
    """A random boolean mask whose every row attends somewhere (column 0 stays True)."""
    m = np.random.default_rng(seed).random(shape) < 0.6
    m[..., 0] = True
    return m


SHAPES = {
    "L!=S": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7)),
    "one head": ((2, 1, 3, 4), (2, 1, 5, 4), (2, 1, 5, 4)),
    "2-D": ((4, 3), (5, 3), (5, 2)),
    "3-D": ((2, 4, 3), (2, 1, 3), (2, 1, 3)),
    "broadcast batch": ((2, 3, 4, 5), (3, 6, 5), (1, 6, 2)),
    "size 1": ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)),
}


@pytest.mark.parametrize("shapes", SHAPES.values(), ids=SHAPES.keys())
def test_values_and_gradients_match_torch(path, shapes):
    check_op(lambda L, q, k, v: sdpa(L, q, k, v), *shapes)


def test_non_contiguous_inputs(path):
    check_op(lambda L, q, k, v: sdpa(L, q, k, v), (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7),
             noncontiguous=True)


def test_scale(path):
    check_op(lambda L, q, k, v: sdpa(L, q, k, v, scale=0.3), (2, 4, 3), (2, 5, 3), (2, 5, 3))


MASKS = [(4, 6), (6,), (3, 1, 6), (2, 1, 4, 6), (2, 3, 4, 6), (1, 1, 4, 1)]


@pytest.mark.parametrize("mask_shape", MASKS, ids=str)
def test_boolean_masks_broadcast(path, mask_shape):
    m = bool_mask(*mask_shape)
    if mask_shape == (1, 1, 4, 1):
        m[...] = True  # a lone column must attend
    check_op(lambda L, q, k, v, m: sdpa(L, q, k, v, attn_mask=m), (2, 3, 4, 5), (2, 3, 6, 5),
             (2, 3, 6, 7), m)


@pytest.mark.parametrize("mask_shape", MASKS, ids=str)
def test_additive_masks_broadcast_and_get_gradients(path, mask_shape):
    check_op(lambda L, q, k, v, m: sdpa(L, q, k, v, attn_mask=m), (2, 3, 4, 5), (2, 3, 6, 5),
             (2, 3, 6, 7), data(mask_shape, seed=9))


def test_fully_masked_rows_give_zeros(path):
    m = bool_mask(3, 5)
    m[1] = False
    check_op(lambda L, q, k, v, m: sdpa(L, q, k, v, attn_mask=m), (2, 3, 4), (2, 5, 4),
             (2, 5, 4), m)
    float_mask = np.where(m, 0.0, -np.inf)
    check_op(lambda L, q, k, v, m: sdpa(L, q, k, v, attn_mask=m.detach()), (2, 3, 4),
             (2, 5, 4), (2, 5, 4), float_mask)


@pytest.mark.parametrize("L_, S", [(4, 6), (6, 4), (5, 5), (1, 3)])
def test_causal_is_top_left_aligned(path, L_, S):
    check_op(lambda L, q, k, v: sdpa(L, q, k, v, is_causal=True), (2, 3, L_, 5),
             (2, 3, S, 5), (2, 3, S, 7))


def test_causal_with_a_mask_applies_both(path):
    """As torch's CPU float32 kernels do (its float64 math path refuses the pair)."""
    m = data(4, 6, seed=3, dtype=np.float32)
    causal = np.tril(np.ones((4, 6), bool))
    both = np.where(causal, m, -np.inf)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32)
               for s in ((1, 2, 4, 3), (1, 2, 6, 3), (1, 2, 6, 3)))
    got = sdpa(gf, gf.tensor(q), gf.tensor(k), gf.tensor(v), attn_mask=gf.tensor(m),
               is_causal=True)
    fused = torch.nn.functional.scaled_dot_product_attention
    want = fused(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                attn_mask=torch.tensor(both, dtype=torch.float32))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-6)
    also = fused(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                attn_mask=torch.tensor(m, dtype=torch.float32), is_causal=True)
    np.testing.assert_allclose(got.detach().numpy(), also.detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("kv_heads", [(2, 1), (1, 4), (4, 2)], ids=str)
def test_grouped_query_attention(path, kv_heads):
    hk, hv = kv_heads
    check_op(lambda L, q, k, v: sdpa(L, q, k, v, enable_gqa=True, is_causal=True),
             (2, 4, 3, 5), (2, hk, 6, 5), (2, hv, 6, 7))


def test_float32_inputs_and_a_float32_mask_on_float64():
    for dtype in (np.float32, np.float64):
        q, k, v = (data(s, dtype=dtype) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 4)))
        m = data(3, 5, seed=2, dtype=np.float32)
        check_op(lambda L, q, k, v, m: sdpa(L, q, k, v, attn_mask=m), q, k, v, m, atol=1e-5,
                 second_order=False)


def test_chunked_path_equals_the_whole_one():
    """The same values and gradients when the limit forces chunks of two heads."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s) for s in ((3, 5, 4, 6), (3, 5, 7, 6), (3, 5, 7, 2))]
    mask = gf.tensor(rng.standard_normal((5, 4, 7)))
    grad = gf.tensor(rng.standard_normal((3, 5, 4, 2)))
    results = []
    for limit in (None, 2 * 4 * 7 * 8):
        attention.set_attention_memory_limit(limit)
        try:
            ts = [gf.tensor(a, requires_grad=True) for a in arrays]
            out = sdpa(gf, *ts, attn_mask=mask, is_causal=True)
            out.backward(grad)
            results.append([out.detach().numpy()] + [t.grad.detach().numpy() for t in ts])
        finally:
            attention.set_attention_memory_limit(None)
    for whole, chunked in zip(*results):
        np.testing.assert_allclose(chunked, whole, atol=1e-12)


def test_chunked_path_keeps_one_chunk_of_scores():
    """A chunked call records one node per chunk, each keeping only its inputs."""
    attention.set_attention_memory_limit(4 * 5 * 8)
    try:
        q = gf.tensor(data(2, 3, 4, 6), requires_grad=True)
        k = gf.tensor(data(2, 3, 5, 6, seed=1), requires_grad=True)
        mask = gf.tensor(data(3, 4, 5, seed=2))  # broadcast over the batch
        out = sdpa(gf, q, k, k, attn_mask=mask)
    finally:
        attention.set_attention_memory_limit(None)
    cat = out.grad_fn.next_functions[0][0]
    chunks = [fn for fn, _ in cat.next_functions]
    assert [type(fn).__name__ for fn in chunks] == ["_Chunk"] * 6
    saved = [s.tensor.shape for s in chunks[0]._saved if s is not None]
    assert saved == [(1, 4, 6), (1, 5, 6), (1, 5, 6), (1, 4, 5)], saved


def test_memory_limit_argument_checked():
    with pytest.raises(ValueError, match="set_attention_memory_limit"):
        attention.set_attention_memory_limit(0)
    attention.set_attention_memory_limit(123)
    assert attention.get_attention_memory_limit() == 123
    attention.set_attention_memory_limit(None)
    assert attention.get_attention_memory_limit() == 2 ** 30


def _uniform_attention(p, S=8, L=400, seed=0, device="cpu"):
    """sdpa with equal weights 1/S and identity values: the output is the dropped weights."""
    gf.manual_seed(seed)
    q = gf.zeros(2, L, 4, device=device)
    v = gf.eye(S, device=device).expand(2, S, S).contiguous().requires_grad_()
    return sdpa(gf, q, gf.zeros(2, S, 4, device=device), v, dropout_p=p), v


def test_dropout_statistics(path):
    p, S = 0.3, 8
    out, _ = _uniform_attention(p, S)
    w = out.detach().numpy()
    kept = w != 0
    assert abs(kept.mean() - (1 - p)) < 0.03, kept.mean()
    np.testing.assert_allclose(w[kept], 1 / (S * (1 - p)), rtol=1e-6)
    np.testing.assert_allclose(_uniform_attention(1.0, S)[0].detach().numpy(), 0.0)


def check_dropout_replays(device):
    a, v = _uniform_attention(0.5, seed=3, device=device)
    b, _ = _uniform_attention(0.5, seed=3, device=device)
    c, _ = _uniform_attention(0.5, seed=4, device=device)
    w = a.detach().cpu().numpy()
    np.testing.assert_array_equal(w, b.detach().cpu().numpy())
    assert not np.array_equal(w, c.detach().cpu().numpy())
    assert not np.array_equal(w[0], w[1])  # each head draws its own mask
    a.sum().backward()
    # NOTE: out = W v with v = I, so d(sum out)/dv[h, s, j] = sum over rows of W[h, :, s]
    expect = np.repeat(w.sum(1)[:, :, None], v.shape[-1], axis=2)
    np.testing.assert_allclose(v.grad.cpu().numpy(), expect, rtol=1e-6)


def test_dropout_is_reproducible_and_its_backward_uses_the_same_mask(path):
    check_dropout_replays("cpu")


def test_dropout_replays_on_the_cupy_path(fake_cuda, path):
    check_dropout_replays("cuda")


def test_gradcheck():
    m = data(3, 5, seed=2)
    check_gradcheck(lambda L, q, k, v, m: sdpa(L, q, k, v, attn_mask=m, is_causal=True),
                    (2, 3, 4), (2, 5, 4), (2, 5, 3), m)


def test_gradcheck_chunked():
    attention.set_attention_memory_limit(1)
    try:
        check_gradcheck(lambda L, q, k, v: sdpa(L, q, k, v, is_causal=True), (1, 2, 3, 2),
                        (1, 1, 4, 2), (1, 2, 4, 2))
    finally:
        attention.set_attention_memory_limit(None)


BAD = {
    "1-D query": ((4,), (5, 4), (5, 4), {}),
    "mismatched E": ((2, 3, 4), (2, 5, 3), (2, 5, 4), {}),
    "dtypes differ": ((2, 3, 4), (2, 5, 4), np.zeros((2, 5, 4), np.float32), {}),
    "integer inputs": (np.ones((2, 3), np.int64), np.ones((2, 3), np.int64),
                       np.ones((2, 3), np.int64), {}),
    "heads do not broadcast": ((2, 4, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4), {}),
    "heads do not divide": ((2, 3, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4), {"enable_gqa": True}),
    "mask does not broadcast": ((2, 3, 4), (2, 5, 4), (2, 5, 4), {"attn_mask": (4, 5)}),
    "integer mask": ((2, 3, 4), (2, 5, 4), (2, 5, 4),
                     {"attn_mask": np.zeros((3, 5), np.int64)}),
    "float64 mask on float32": (np.zeros((2, 3, 4), np.float32), np.zeros((2, 5, 4), np.float32),
                                np.zeros((2, 5, 4), np.float32), {"attn_mask": (3, 5)}),
    "dropout_p above 1": ((2, 3, 4), (2, 5, 4), (2, 5, 4), {"dropout_p": 1.5}),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_arguments_raise_as_torch(case):
    q, k, v, kwargs = case
    mask = kwargs.get("attn_mask")
    extra = {key: val for key, val in kwargs.items() if key != "attn_mask"}
    arrays = (q, k, v) if mask is None else (q, k, v, mask)

    def call(L, q, k, v, m=None):
        return sdpa(L, q, k, v, attn_mask=m, **extra)

    err = check_op_raises(call, *arrays, op="scaled_dot_product_attention")
    assert str(err)


def test_value_positions_must_match_key_positions():
    """torch's fused CPU kernel reads past the end here; gradflow refuses."""
    with pytest.raises(RuntimeError, match="key has 5 positions but value has 4"):
        sdpa(gf, gf.zeros(2, 3, 4), gf.zeros(2, 5, 4), gf.zeros(2, 4, 4))
    with pytest.raises(TypeError, match="query must be a Tensor"):
        sdpa(gf, np.zeros((3, 4)), gf.zeros(5, 4), gf.zeros(5, 4))


@pytest.mark.parametrize("limit", [None, 1], ids=["whole", "chunked"])
def test_runs_on_the_cupy_path(fake_cuda, limit):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32)
               for s in ((2, 2, 3, 4), (2, 1, 5, 4), (2, 1, 5, 3)))
    mask = rng.standard_normal((3, 5)).astype(np.float32)
    attention.set_attention_memory_limit(limit)
    try:
        check_cupy_path(lambda q, k, v, m: sdpa(gf, q, k, v, attn_mask=m, is_causal=True,
                                                enable_gqa=True), q, k, v, mask, rtol=1e-5)
    finally:
        attention.set_attention_memory_limit(None)
