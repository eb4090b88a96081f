"""MultiheadAttention and the Transformer layers against PyTorch with the same weights (torch's
state_dict loaded by name): outputs, attention weights and the gradients of the inputs and of
every parameter, in float32 and float64, batch first or not, with boolean and additive masks
(2-D and 3-D attn_mask, key_padding_mask, causal), kdim/vdim, add_bias_kv, add_zero_attn,
norm_first and gelu; bad shapes, gradcheck and the CuPy path."""
import numpy as np
import pytest
from helpers import check_cupy_path, check_op_raises, data, require_torch

import gradflow as gf

torch = require_torch()
# torch warns when a float mask meets a boolean padding mask (both are tested here) and that
# its nested-tensor fast path is off
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")]

TOL = {np.float32: 1e-5, np.float64: 1e-10}
# NOTE: gradflow's erf is good to about 3e-8 (torch's to rounding), so gelu in float64 is held
# to 1e-7 rather than 1e-10
GELU_F64_TOL = 1e-7


def load_from_torch(ours, theirs):
    """Our module with torch's module's state_dict loaded by name (strictly)."""
    ours.load_state_dict({k: gf.tensor(v.detach().numpy())
                          for k, v in theirs.state_dict().items()})
    return ours


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def compare(make, call, *arrays, dtype=np.float32, tol=None):
    """Build make(lib) in torch and in gradflow with torch's weights; run call(lib, module,
    *tensors) on both; compare every output and, through a weighted sum of the outputs, the
    gradients of the float inputs and of every parameter, within `tol` (TOL[dtype])."""
    tol = tol or TOL[dtype]
    torch.manual_seed(0)
    tm = make(torch)
    tm = tm.double() if dtype == np.float64 else tm
    gm = load_from_torch(make(gf).to(gf.float64 if dtype == np.float64 else gf.float32), tm)
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    results = {}
    for lib, m in ((torch, tm), (gf, gm)):
        ins = [lib.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        outs = as_tuple(call(lib, m, *ins))
        floats = [o for o in outs if o is not None]
        rng = np.random.default_rng(1)
        total = sum((o * lib.tensor(rng.standard_normal(tuple(o.shape)).astype(dtype))).sum()
                    for o in floats)
        total.backward()
        results[lib] = ([None if o is None else o.detach().numpy() for o in outs],
                        [None if t.grad is None else t.grad.numpy() for t in ins
                         if t.requires_grad],
                        {n: p.grad.numpy() for n, p in m.named_parameters()})
    (t_out, t_in, t_par), (g_out, g_in, g_par) = results[torch], results[gf]
    assert [o is None for o in g_out] == [o is None for o in t_out]
    for i, (g, t) in enumerate(zip(g_out, t_out)):
        if t is not None:
            assert g.dtype == t.dtype, (i, g.dtype, t.dtype)
            np.testing.assert_allclose(g, t, rtol=tol, atol=tol, err_msg=f"output {i}")
    assert [g is None for g in g_in] == [t is None for t in t_in]
    for i, (g, t) in enumerate(zip(g_in, t_in)):
        if t is None:
            continue
        np.testing.assert_allclose(g, t, rtol=tol, atol=tol, err_msg=f"input {i} grad")
    assert list(g_par) == list(t_par)
    for name in t_par:
        np.testing.assert_allclose(g_par[name], t_par[name], rtol=tol, atol=tol,
                                   err_msg=f"{name} grad")


def bool_mask(*shape, seed=0):
    """A random boolean mask (True = masked out) that leaves column 0 of every row open."""
    m = np.random.default_rng(seed).random(shape) < 0.4
    m[..., 0] = False
    return m


def float_mask(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


E, H, L, S, N = 6, 3, 4, 5, 2


def mha(**kw):
    return lambda lib: lib.nn.MultiheadAttention(E, H, **kw)


MHA_CASES = {
    "plain": ({}, {}, [(L, N, E), (S, N, E), (S, N, E)]),
    "self": ({}, {}, None),
    "per_head_weights": ({}, {"average_attn_weights": False}, [(L, N, E), (S, N, E), (S, N, E)]),
    "no_weights": ({}, {"need_weights": False}, [(L, N, E), (S, N, E), (S, N, E)]),
    "batch_first": ({"batch_first": True}, {}, [(N, L, E), (N, S, E), (N, S, E)]),
    "batch_first_no_weights": ({"batch_first": True}, {"need_weights": False},
                               [(N, L, E), (N, S, E), (N, S, E)]),
    "unbatched": ({}, {}, [(L, E), (S, E), (S, E)]),
    "unbatched_no_weights": ({"batch_first": True}, {"need_weights": False},
                             [(L, E), (S, E), (S, E)]),
    "kdim_vdim": ({"kdim": 5, "vdim": 7}, {}, [(L, N, E), (S, N, 5), (S, N, 7)]),
    "kdim_vdim_no_weights": ({"kdim": 5, "vdim": 7}, {"need_weights": False},
                             [(L, N, E), (S, N, 5), (S, N, 7)]),
    "no_bias": ({"bias": False}, {}, [(L, N, E), (S, N, E), (S, N, E)]),
    "bias_kv": ({"add_bias_kv": True}, {}, [(L, N, E), (S, N, E), (S, N, E)]),
    "zero_attn": ({"add_zero_attn": True}, {"need_weights": False},
                  [(L, N, E), (S, N, E), (S, N, E)]),
    "bias_kv_zero_attn": ({"add_bias_kv": True, "add_zero_attn": True}, {},
                          [(L, N, E), (S, N, E), (S, N, E)]),
    "one_head_size_1": ({}, {}, [(1, 1, E), (1, 1, E), (1, 1, E)]),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", MHA_CASES.values(), ids=MHA_CASES.keys())
def test_multihead_attention_matches_torch(case, dtype):
    ctor, kw, shapes = case
    if shapes is None:  # self-attention: one tensor as query, key and value
        compare(mha(**ctor), lambda lib, m, x: m(x, x, x, **kw), data(L, N, E), dtype=dtype)
        return
    arrays = [data(*s, seed=i) for i, s in enumerate(shapes)]
    compare(mha(**ctor), lambda lib, m, q, k, v: m(q, k, v, **kw), *arrays, dtype=dtype)


def test_non_contiguous_inputs_match_torch():
    q, k, v = (data(N, n, E, seed=i) for i, n in enumerate((L, S, S)))
    compare(mha(), lambda lib, m, q, k, v: m(q.transpose(0, 1), k.transpose(0, 1),
                                             v.transpose(0, 1)), q, k, v)


def test_functional_multi_head_attention_forward_matches_torch():
    torch.manual_seed(0)
    t = torch.nn.MultiheadAttention(E, H, add_bias_kv=True)
    g = load_from_torch(gf.nn.MultiheadAttention(E, H, add_bias_kv=True), t)

    def call(lib, m, q, k, v, mask):
        return lib.nn.functional.multi_head_attention_forward(
            q, k, v, E, H, m.in_proj_weight, m.in_proj_bias, m.bias_k, m.bias_v, True, 0.0,
            m.out_proj.weight, m.out_proj.bias, attn_mask=mask, average_attn_weights=False)

    compare(lambda lib: t if lib is torch else g, call, *QKV, bool_mask(L, S))


def masked(**kw):
    """A call passing the extra tensors as the masks named in kw['masks']."""
    names = kw.pop("masks")
    return lambda lib, m, q, k, v, *ms: m(q, k, v, **dict(zip(names, ms)), **kw)


QKV = [data(L, N, E, seed=0), data(S, N, E, seed=1), data(S, N, E, seed=2)]
MASK_CASES = {
    "bool_2d": (["attn_mask"], [bool_mask(L, S)]),
    "float_2d": (["attn_mask"], [float_mask(L, S)]),
    "bool_3d": (["attn_mask"], [bool_mask(N * H, L, S)]),
    "float_3d": (["attn_mask"], [float_mask(N * H, L, S)]),
    "key_padding_bool": (["key_padding_mask"], [bool_mask(N, S)]),
    "key_padding_float": (["key_padding_mask"], [float_mask(N, S)]),
    "both": (["attn_mask", "key_padding_mask"], [float_mask(N * H, L, S), bool_mask(N, S)]),
}


@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "sdpa"])
@pytest.mark.parametrize("case", MASK_CASES.values(), ids=MASK_CASES.keys())
def test_multihead_attention_masks_match_torch(case, need_weights):
    names, masks = case
    masks = [m if m.dtype == bool else m.astype(np.float32) for m in masks]
    compare(mha(), masked(masks=names, need_weights=need_weights), *QKV, *masks)
    compare(mha(add_bias_kv=True, add_zero_attn=True),
            masked(masks=names, need_weights=need_weights), *QKV, *masks)


@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "sdpa"])
def test_multihead_attention_causal_matches_torch(need_weights):
    causal = np.triu(np.ones((L, L), bool), 1)
    x = data(L, N, E)
    compare(mha(), lambda lib, m, x, c: m(x, x, x, attn_mask=c, is_causal=True,
                                          need_weights=need_weights), x, causal)
    compare(mha(), lambda lib, m, x, c, p: m(x, x, x, attn_mask=c, key_padding_mask=p,
                                             is_causal=True, need_weights=need_weights),
            x, causal, bool_mask(N, L))


def test_unbatched_masks_match_torch():
    q, k, v = data(L, E), data(S, E, seed=1), data(S, E, seed=2)
    compare(mha(), masked(masks=["attn_mask", "key_padding_mask"]), q, k, v,
            bool_mask(H, L, S), bool_mask(S))
    compare(mha(), masked(masks=["attn_mask"], need_weights=False), q, k, v,
            float_mask(L, S).astype(np.float32))


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_fully_masked_rows_give_nan_weights_as_torch():
    pad = np.ones((N, S), bool)
    q, k, v = QKV
    out = {}
    for lib in (torch, gf):
        torch.manual_seed(0)
        m = mha()(lib)
        if lib is gf:
            m = load_from_torch(m, out[torch][2])
        o, w = m(lib.tensor(q.astype(np.float32)), lib.tensor(k.astype(np.float32)),
                 lib.tensor(v.astype(np.float32)), key_padding_mask=lib.tensor(pad))
        out[lib] = (o.detach().numpy(), w.detach().numpy(), m)
    np.testing.assert_array_equal(np.isnan(out[gf][0]), np.isnan(out[torch][0]))
    np.testing.assert_array_equal(np.isnan(out[gf][1]), np.isnan(out[torch][1]))


def test_multihead_attention_parameters_match_torch():
    for kw in ({}, {"kdim": 5, "vdim": 7, "bias": False}, {"add_bias_kv": True}):
        ours = dict(gf.nn.MultiheadAttention(E, H, **kw).named_parameters())
        theirs = dict(torch.nn.MultiheadAttention(E, H, **kw).named_parameters())
        assert list(ours) == list(theirs), kw
        for name in theirs:
            assert tuple(ours[name].shape) == tuple(theirs[name].shape), name
    m = gf.nn.MultiheadAttention(E, H)
    np.testing.assert_array_equal(m.in_proj_bias.detach().numpy(), 0.0)
    np.testing.assert_array_equal(m.out_proj.bias.detach().numpy(), 0.0)
    bound = np.sqrt(6.0 / (E + 3 * E))  # Xavier-uniform of the (3E, E) packed projection
    assert 0.5 * bound < np.abs(m.in_proj_weight.detach().numpy()).max() <= bound


def encoder_layer(**kw):
    return lambda lib: lib.nn.TransformerEncoderLayer(E, H, 10, dropout=0.0, **kw)


def decoder_layer(**kw):
    return lambda lib: lib.nn.TransformerDecoderLayer(E, H, 10, dropout=0.0, **kw)


LAYER_KW = {"post_norm": {}, "norm_first": {"norm_first": True}, "gelu": {"activation": "gelu"},
            "batch_first": {"batch_first": True}, "no_bias": {"bias": False},
            "callable_act": {"activation": "tanh"}}


def gelu_tol(kw, dtype):
    return GELU_F64_TOL if kw.get("activation") == "gelu" and dtype == np.float64 else None


def layer_kw(lib, kw):
    kw = dict(kw)
    if kw.get("activation") == "tanh":
        kw["activation"] = lib.tanh
    return kw


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kw", LAYER_KW.values(), ids=LAYER_KW.keys())
def test_encoder_layer_matches_torch(kw, dtype):
    x = data(N, L, E) if kw.get("batch_first") else data(L, N, E)
    compare(lambda lib: lib.nn.TransformerEncoderLayer(E, H, 10, dropout=0.0,
                                                        **layer_kw(lib, kw)),
            lambda lib, m, x, c, p: m(x, src_mask=c, src_key_padding_mask=p),
            x, bool_mask(L, L), bool_mask(N, L), dtype=dtype, tol=gelu_tol(kw, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kw", LAYER_KW.values(), ids=LAYER_KW.keys())
def test_decoder_layer_matches_torch(kw, dtype):
    bf = kw.get("batch_first")
    tgt = data(N, L, E) if bf else data(L, N, E)
    mem = data(N, S, E, seed=1) if bf else data(S, N, E, seed=1)
    compare(lambda lib: lib.nn.TransformerDecoderLayer(E, H, 10, dropout=0.0,
                                                        **layer_kw(lib, kw)),
            lambda lib, m, t, s, c, mm, p: m(t, s, tgt_mask=c, memory_mask=mm,
                                             memory_key_padding_mask=p),
            tgt, mem, float_mask(L, L).astype(dtype), bool_mask(L, S), bool_mask(N, S),
            dtype=dtype, tol=gelu_tol(kw, dtype))


def test_encoder_and_decoder_stacks_match_torch():
    causal = np.triu(np.full((L, L), -np.inf), 1).astype(np.float32)

    def encoder(lib):
        return lib.nn.TransformerEncoder(encoder_layer(norm_first=True)(lib), 2,
                                         norm=lib.nn.LayerNorm(E))

    def decoder(lib):
        return lib.nn.TransformerDecoder(decoder_layer()(lib), 3)

    compare(encoder, lambda lib, m, x, c, p: m(x, mask=c, src_key_padding_mask=p),
            data(L, N, E), causal, bool_mask(N, L))
    compare(encoder, lambda lib, m, x, c: m(x, mask=c, is_causal=True), data(L, N, E), causal)
    compare(encoder, lambda lib, m, x, c: m(x, mask=c), data(L, N, E), np.isinf(causal))
    compare(decoder, lambda lib, m, t, s, c: m(t, s, tgt_mask=c, tgt_is_causal=True),
            data(L, N, E), data(S, N, E, seed=1), causal)
    compare(decoder, lambda lib, m, t, s: m(t, s), data(L, E), data(S, E, seed=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
def test_transformer_matches_torch(batch_first, dtype):
    def make(lib):
        return lib.nn.Transformer(E, H, 2, 2, 10, dropout=0.0, batch_first=batch_first,
                                  activation="gelu")

    src = data(N, S, E) if batch_first else data(S, N, E)
    tgt = data(N, L, E, seed=1) if batch_first else data(L, N, E, seed=1)
    mask = np.triu(np.full((L, L), -np.inf), 1)
    compare(make, lambda lib, m, s, t, c, p: m(s, t, tgt_mask=c, src_key_padding_mask=p,
                                               memory_key_padding_mask=p),
            src, tgt, mask.astype(dtype), bool_mask(N, S), dtype=dtype,
            tol=gelu_tol({"activation": "gelu"}, dtype))


def test_transformer_state_dict_names_match_torch():
    ours = gf.nn.Transformer(E, H, 2, 1, 10, norm_first=True)
    theirs = torch.nn.Transformer(E, H, 2, 1, 10, norm_first=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "encoder.layers.1.self_attn.in_proj_weight" in ours.state_dict()
    layers = ours.encoder.layers
    assert layers[0].linear1.weight is not layers[1].linear1.weight  # deep copies


def test_generate_square_subsequent_mask_matches_torch():
    for sz in (1, 4):
        ours = gf.nn.Transformer.generate_square_subsequent_mask(sz)
        theirs = torch.nn.Transformer.generate_square_subsequent_mask(sz)
        assert ours.dtype == gf.float32
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    ours = gf.nn.Transformer.generate_square_subsequent_mask(3, dtype=gf.float64)
    assert ours.dtype == gf.float64


def test_dropout_is_active_in_training_and_off_in_eval():
    m = gf.nn.MultiheadAttention(E, H, dropout=0.5)
    x = gf.tensor(data(L, N, E).astype(np.float32))
    a, _ = m(x, x, x)
    b, _ = m(x, x, x)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    m.eval()
    a, wa = m(x, x, x)
    b, wb = m(x, x, x, need_weights=False)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wa.detach().numpy().sum(-1), 1.0, rtol=1e-5)


def call_mha(**kw):
    def fn(lib, q, k, v, *masks):
        torch.manual_seed(0)
        m = lib.nn.MultiheadAttention(E, H)
        return m(q, k, v, **dict(zip(kw.get("masks", ()), masks)))
    return fn


@pytest.mark.parametrize("shapes,masks", [
    ([(2, L, N, E), (S, N, E), (S, N, E)], ()),
    ([(L, N, E), (S, N), (S, N, E)], ()),
    ([(L, N, E), (S, N, E), (S + 1, N, E)], ()),
    ([(L, N, 4), (S, N, 4), (S, N, 4)], ()),
    ([(L, N, E), (S, N, E), (S, N, E), np.zeros((L, S + 1), bool)], ("attn_mask",)),
    ([(L, N, E), (S, N, E), (S, N, E), np.zeros((H, L, S), bool)], ("attn_mask",)),
    ([(L, N, E), (S, N, E), (S, N, E), np.zeros((N, L, S, 1), bool)], ("attn_mask",)),
    ([(L, N, E), (S, N, E), (S, N, E), np.zeros((N, S + 1), bool)], ("key_padding_mask",)),
    ([(L, N, E), (S, N, E), (S, N, E), np.zeros((S,), bool)], ("key_padding_mask",)),
], ids=["4d_query", "2d_key", "key_value_differ", "wrong_embed", "attn_mask_2d",
        "attn_mask_3d", "attn_mask_4d", "key_padding_len", "key_padding_1d"])
def test_multihead_attention_rejects_bad_shapes(shapes, masks):
    arrays = [s if isinstance(s, np.ndarray) else data(*s).astype(np.float32) for s in shapes]
    check_op_raises(call_mha(masks=masks), *arrays, op="multi_head_attention_forward")


def test_bad_constructor_arguments_raise_as_torch():
    for lib in (gf, torch):
        with pytest.raises(AssertionError, match="divisible"):
            lib.nn.MultiheadAttention(5, 2)
        with pytest.raises(ValueError, match="greater than 0"):
            lib.nn.MultiheadAttention(0, 2)
        with pytest.raises(RuntimeError, match="relu/gelu"):
            lib.nn.TransformerEncoderLayer(4, 2, activation="swish")
    m = gf.nn.Transformer(E, H, 1, 1, 8)
    with pytest.raises(RuntimeError, match="Transformer: the batch number"):
        m(gf.zeros(S, N, E), gf.zeros(L, N + 1, E))
    with pytest.raises(RuntimeError, match="Transformer: the feature number"):
        m(gf.zeros(S, N, E + 1), gf.zeros(L, N, E + 1))
    x = gf.zeros(L, N, E)
    with pytest.raises(RuntimeError, match="multi_head_attention_forward: need attn_mask"):
        gf.nn.MultiheadAttention(E, H)(x, x, x, is_causal=True)


@pytest.mark.parametrize("kw", [{"need_weights": True}, {"need_weights": False}],
                         ids=["weights", "sdpa"])
def test_multihead_attention_gradcheck(kw):
    m = gf.nn.MultiheadAttention(4, 2, add_bias_kv=True).to(gf.float64)
    mask = gf.tensor(bool_mask(3, 3))

    def f(q, k, v):
        out, w = m(q, k, v, attn_mask=mask, **kw)
        return out if w is None else (out, w)

    ins = [gf.tensor(data(3, 1, 4, seed=i), requires_grad=True) for i in range(3)]
    assert gf.autograd.gradcheck(f, ins)
    assert gf.autograd.gradgradcheck(f, ins)


def test_multihead_attention_runs_on_the_cupy_path(fake_cuda):
    torch.manual_seed(0)
    m = gf.nn.MultiheadAttention(E, H, kdim=5)
    q, k, v = (data(*s, seed=i).astype(np.float32)
               for i, s in enumerate(((L, N, E), (S, N, 5), (S, N, E))))
    pad = bool_mask(N, S)

    def run(q, k, v, weights):
        m.to(q.device)
        out, w = m(q, k, v, key_padding_mask=gf.tensor(pad, device=q.device),
                   need_weights=weights)
        return out if w is None else out.sum() + (w * w).sum()

    check_cupy_path(lambda q, k, v: run(q, k, v, True), q, k, v, rtol=1e-5)
    check_cupy_path(lambda q, k, v: run(q, k, v, False), q, k, v, rtol=1e-5)


def test_transformer_layer_runs_on_the_cupy_path(fake_cuda):
    layer = gf.nn.TransformerDecoderLayer(E, H, 10, dropout=0.0, norm_first=True,
                                          batch_first=True)
    mask = gf.nn.Transformer.generate_square_subsequent_mask(L)

    def run(t, s):
        layer.to(t.device)
        return layer(t, s, tgt_mask=mask.to(t.device), tgt_is_causal=True)

    check_cupy_path(run, data(N, L, E).astype(np.float32),
                    data(N, S, E, seed=1).astype(np.float32), rtol=1e-5, atol=1e-6)
