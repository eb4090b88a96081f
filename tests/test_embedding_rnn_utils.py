"""Embedding, EmbeddingBag and nn.utils.rnn (padding and packing) against PyTorch: values and
gradients (float32 to 1e-5, float64 to 1e-10) on empty, 0-d, 3-D and repeated indices, with
padding_idx, max_norm and scale_grad_by_freq; bags by rows and by offsets in every mode; packed
batches sorted and unsorted, batch-first or not; errors, gradcheck and the CuPy path."""
import numpy as np
import pytest
from helpers import check_cupy_path, check_gradcheck, check_op, check_op_raises, data, distinct

import gradflow as gf
import gradflow.nn.utils.rnn as gf_rnn
from gradflow import nn

torch = pytest.importorskip("torch")
import torch.nn.utils.rnn as th_rnn  # noqa: E402


def F(L):
    return gf.nn.functional if L is gf else torch.nn.functional


def rnn(L):
    return gf_rnn if L is gf else th_rnn


TIGHT = {np.float32: {"atol": 1e-5, "rtol": 1e-5}, np.float64: {"atol": 1e-10, "rtol": 1e-10}}
IDX = np.array([[3, 0, 3], [6, 3, 1]])                     # duplicates for the scatter-add
IDX3 = np.array([[[1, 4], [4, 4]], [[0, 2], [6, 1]], [[4, 2], [3, 3]]])

# (id, fn(lib, weight, index), index, check_op options)
EMBEDDING = [
    ("2d_duplicates", lambda L, w, i: F(L).embedding(i, w), IDX, {}),
    ("0d", lambda L, w, i: F(L).embedding(i, w), np.array(5), {}),
    ("empty", lambda L, w, i: F(L).embedding(i, w), np.zeros((0, 3), np.int64), {}),
    ("3d", lambda L, w, i: F(L).embedding(i, w), IDX3, {}),
    ("int32", lambda L, w, i: F(L).embedding(i, w), IDX.astype(np.int32), {}),
    ("padding_idx", lambda L, w, i: F(L).embedding(i, w, padding_idx=3), IDX, {}),
    ("padding_idx_negative", lambda L, w, i: F(L).embedding(i, w, padding_idx=-1),
     np.array([6, 2, 6, 0]), {}),
    ("scale_grad_by_freq", lambda L, w, i: F(L).embedding(i, w, scale_grad_by_freq=True),
     IDX3, {}),
    ("freq_and_padding", lambda L, w, i: F(L).embedding(i, w, 4, scale_grad_by_freq=True),
     IDX3, {}),
    ("noncontiguous_weight", lambda L, w, i: F(L).embedding(i, w.t()), np.array([[2, 0, 2]]),
     {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("fn,index,opts", [c[1:] for c in EMBEDDING], ids=[c[0] for c in EMBEDDING])
def test_embedding_matches_torch(fn, index, opts, dtype):
    check_op(fn, data(7, 5, dtype=dtype), index, **TIGHT[dtype], **opts)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5])
def test_embedding_max_norm_renormalises_the_looked_up_rows_in_place(norm_type, dtype):
    w = data(7, 5, dtype=dtype) * 3
    ours, theirs = gf.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    out = F(gf).embedding(gf.tensor(IDX), ours, max_norm=1.5, norm_type=norm_type)
    want = F(torch).embedding(torch.tensor(IDX), theirs, max_norm=1.5, norm_type=norm_type)
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), **TIGHT[dtype])
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **TIGHT[dtype],
                               err_msg="the weight was not renormalised in place as torch's")
    (out * 2).sum().backward()
    (want * 2).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), **TIGHT[dtype])


# (id, fn(lib, weight, index, offsets-or-weights...), extra arrays[, check_op options])
OFFS = np.array([0, 2, 2, 5])
FLAT = np.array([3, 1, 6, 3, 0, 4, 1])
BAGS = [
    ("2d_" + mode, lambda L, w, i, m=mode: F(L).embedding_bag(i, w, mode=m), [IDX])
    for mode in ("sum", "mean", "max")
] + [
    ("offsets_" + mode, lambda L, w, i, o, m=mode: F(L).embedding_bag(i, w, o, mode=m),
     [FLAT, OFFS]) for mode in ("sum", "mean", "max")
] + [
    ("last_offset_" + mode,
     lambda L, w, i, o, m=mode: F(L).embedding_bag(i, w, o, mode=m, include_last_offset=True),
     [FLAT, np.array([0, 3, 3, 7])]) for mode in ("sum", "mean", "max")
] + [
    ("padding_" + mode, lambda L, w, i, o, m=mode: F(L).embedding_bag(i, w, o, mode=m,
                                                                      padding_idx=3),
     [FLAT, np.array([0, 1, 4])]) for mode in ("sum", "mean", "max")
] + [
    ("per_sample_weights", lambda L, w, i, o, p: F(L).embedding_bag(
        i, w, o, mode="sum", per_sample_weights=p), [FLAT, OFFS, data(7, seed=3)],
     {"second_order": False}),  # torch has no second derivative for per_sample_weights
    ("per_sample_weights_2d", lambda L, w, i, p: F(L).embedding_bag(
        i, w, mode="sum", per_sample_weights=p, padding_idx=1), [IDX, data(2, 3, seed=4)],
     {"second_order": False}),
    ("empty_input", lambda L, w, i, o: F(L).embedding_bag(i, w, o, mode="sum"),
     [np.zeros(0, np.int64), np.array([0, 0])]),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", BAGS, ids=[c[0] for c in BAGS])
def test_embedding_bag_matches_torch(case, dtype):
    fn, extra, opts = case[1], case[2], (case[3] if len(case) > 3 else {})
    extra = [a.astype(dtype) if a.dtype.kind == "f" else a for a in extra]
    check_op(fn, distinct(7, 5, dtype=dtype), *extra, **TIGHT[dtype], **opts)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_scale_grad_by_freq_is_embeddings(mode):
    """A bag's rows get the gradient of F.embedding(scale_grad_by_freq=True) summed (or
    averaged) per bag. NOTE: torch 2.13's CPU embedding_bag scales by other counts (a row seen
    once in FLAT gets 1/2), so the reference here is torch's F.embedding."""
    w = torch.tensor(data(7, 5), requires_grad=True)
    rows = F(torch).embedding(torch.tensor(FLAT), w, scale_grad_by_freq=True)
    bags = [rows[a:b] for a, b in zip(OFFS, list(OFFS[1:]) + [len(FLAT)])]
    want = torch.stack([getattr(r, mode)(0) if len(r) else r.sum(0) for r in bags])
    ours = gf.tensor(data(7, 5), requires_grad=True)
    out = F(gf).embedding_bag(gf.tensor(FLAT), ours, gf.tensor(OFFS), mode=mode,
                              scale_grad_by_freq=True)
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), atol=1e-10)
    weights = data(4, 5, seed=5)
    (out * gf.tensor(weights)).sum().backward()
    (want * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), w.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_embedding_bag_max_norm(dtype):
    w = data(7, 5, dtype=dtype) * 3
    ours, theirs = gf.tensor(w), torch.tensor(w)
    out = F(gf).embedding_bag(gf.tensor(FLAT), ours, gf.tensor(OFFS), max_norm=1.0)
    want = F(torch).embedding_bag(torch.tensor(FLAT), theirs, torch.tensor(OFFS), max_norm=1.0)
    np.testing.assert_allclose(out.numpy(), want.numpy(), **TIGHT[dtype])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **TIGHT[dtype])


RAISES = [
    ("out_of_range", lambda L, w, i: F(L).embedding(i, w), np.array([0, 7]), IndexError,
     "embedding"),
    ("negative", lambda L, w, i: F(L).embedding(i, w), np.array([-1]), IndexError, "embedding"),
    ("float_index", lambda L, w, i: F(L).embedding(i, w), np.array([0.0, 1.0]), RuntimeError,
     "embedding"),
    ("bag_3d", lambda L, w, i: F(L).embedding_bag(i, w), IDX3, ValueError, "embedding_bag"),
    ("bag_1d_no_offsets", lambda L, w, i: F(L).embedding_bag(i, w), FLAT, ValueError,
     "embedding_bag"),
    ("bag_2d_with_offsets", lambda L, w, i: F(L).embedding_bag(i, w, i[0]), IDX, ValueError,
     "embedding_bag"),
    ("bag_first_offset", lambda L, w, i: F(L).embedding_bag(i, w, i[1:3] * 0 + 1), FLAT,
     RuntimeError, "embedding_bag"),
    ("bag_mode", lambda L, w, i: F(L).embedding_bag(i, w, mode="prod"), IDX, ValueError,
     "embedding_bag"),
    ("bag_weights_mean", lambda L, w, i: F(L).embedding_bag(i, w, per_sample_weights=w[:2, :3]),
     IDX, NotImplementedError, "embedding_bag"),
    ("bag_out_of_range", lambda L, w, i: F(L).embedding_bag(i + 4, w), IDX, RuntimeError,
     "embedding_bag"),
]


@pytest.mark.parametrize("fn,index,error,op", [c[1:] for c in RAISES], ids=[c[0] for c in RAISES])
def test_embedding_errors_match_torch(fn, index, error, op):
    got = check_op_raises(fn, data(7, 5), index, op=op)
    assert isinstance(got, error), f"{type(got).__name__}: {got}"


def test_embedding_gradcheck():
    # NOTE: without padding_idx and scale_grad_by_freq: they change the gradient on purpose,
    # which finite differences (rightly) disagree with
    check_gradcheck(lambda L, w: F(L).embedding(gf.tensor(IDX3), w), (7, 3))
    check_gradcheck(lambda L, w, p: F(L).embedding_bag(gf.tensor(FLAT), w, gf.tensor(OFFS),
                                                       mode="sum", per_sample_weights=p),
                    (7, 3), (7,))
    check_gradcheck(lambda L, w: F(L).embedding_bag(gf.tensor(IDX), w, mode="mean"), (7, 3))
    check_gradcheck(lambda L, w: F(L).embedding_bag(gf.tensor(FLAT), w, gf.tensor(OFFS),
                                                    mode="max"),
                    distinct(7, 3), second_order=False)


def _copy(ours, theirs):
    with gf.no_grad():
        ours.weight.copy_(gf.tensor(theirs.weight.detach().numpy()))


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 2}, {"padding_idx": -1, "max_norm": 1.0,
                                                            "norm_type": 1.0},
                                    {"scale_grad_by_freq": True}, {"sparse": True}])
def test_embedding_module_matches_torch(kwargs):
    theirs = torch.nn.Embedding(7, 4, **kwargs).double()
    ours = nn.Embedding(7, 4, dtype=gf.float64, **kwargs)
    assert repr(ours) == repr(theirs)
    if "padding_idx" in kwargs:
        np.testing.assert_array_equal(ours.weight.detach().numpy()[kwargs["padding_idx"]], 0)
    _copy(ours, theirs)
    out, want = ours(gf.tensor(IDX3)), theirs(torch.tensor(IDX3))
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), atol=1e-10)
    out.pow(2).sum().backward()
    want.pow(2).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.to_dense().numpy(),
                               atol=1e-10)  # sparse=True: ours stays dense
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_embedding_init_is_standard_normal():
    gf.manual_seed(0)
    w = nn.Embedding(400, 50, padding_idx=0).weight.detach().numpy()
    np.testing.assert_array_equal(w[0], 0)
    assert abs(w[1:].mean()) < 0.02 and abs(w[1:].std() - 1) < 0.02, (w.mean(), w.std())


def test_from_pretrained_shares_and_freezes():
    w = gf.tensor(data(5, 3))
    emb = nn.Embedding.from_pretrained(w, padding_idx=1)
    assert not emb.weight.requires_grad and repr(emb) == "Embedding(5, 3, padding_idx=1)"
    np.testing.assert_array_equal(emb(gf.tensor([4, 1])).numpy(), w.numpy()[[4, 1]])
    assert nn.Embedding.from_pretrained(w, freeze=False).weight.requires_grad
    bag = nn.EmbeddingBag.from_pretrained(w, mode="max")
    assert repr(bag) == repr(torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w.numpy()),
                                                                   mode="max"))
    assert not bag.weight.requires_grad
    with pytest.raises(AssertionError, match="2-dimensional"):
        nn.Embedding.from_pretrained(gf.tensor(data(5)))
    with pytest.raises(AssertionError, match="padding_idx"):
        nn.Embedding(5, 3, padding_idx=5)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_module_matches_torch(mode):
    theirs = torch.nn.EmbeddingBag(7, 4, mode=mode, padding_idx=3).double()
    ours = nn.EmbeddingBag(7, 4, mode=mode, padding_idx=3, dtype=gf.float64)
    assert repr(ours) == repr(theirs)
    _copy(ours, theirs)
    out = ours(gf.tensor(FLAT), gf.tensor(OFFS))
    want = theirs(torch.tensor(FLAT), torch.tensor(OFFS))
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), atol=1e-10)
    (out * gf.tensor(data(4, 4))).sum().backward()
    (want * torch.tensor(data(4, 4))).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), atol=1e-10)


# -- nn.utils.rnn ------------------------------------------------------------------------------
LENGTHS = [(3, 7, 1, 5), (6, 6, 2), (1,)]


def _seqs(L, lengths, tail=(3,), dtype=np.float64):
    return [L.tensor(data(n, *tail, seed=k, dtype=dtype), requires_grad=True)
            for k, n in enumerate(lengths)]


def _compare(lengths, fn, tail=(3,), dtype=np.float64):
    """fn(lib, seqs) -> a tensor or a list of tensors, on gradflow and torch: values and the
    gradients of the sequences, within TIGHT[dtype]."""
    ours, theirs = _seqs(gf, lengths, tail, dtype), _seqs(torch, lengths, tail, dtype)
    out, want = fn(gf, ours), fn(torch, theirs)
    out, want = (list(out), list(want)) if isinstance(out, (list, tuple)) else ([out], [want])
    assert len(out) == len(want)
    for o, w in zip(out, want):
        assert tuple(o.shape) == tuple(w.shape), (tuple(o.shape), tuple(w.shape))
        np.testing.assert_allclose(o.detach().numpy(), w.detach().numpy(), **TIGHT[dtype])
    weights = [data(*o.shape, seed=9 + k) for k, o in enumerate(want)]
    sum(((o * gf.tensor(w, dtype=o.dtype)).sum() for o, w in zip(out, weights)),
        gf.tensor(0.0, dtype=out[0].dtype)).backward()
    sum((o * torch.tensor(w, dtype=o.dtype)).sum() for o, w in zip(want, weights)).backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TIGHT[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_torch(lengths, batch_first, side, dtype):
    _compare(lengths, lambda L, s: rnn(L).pad_sequence(s, batch_first, -2.5, side),
             tail=(2, 3), dtype=dtype)


def test_pad_sequence_of_1d_and_empty_sequences():
    _compare((4, 0, 2), lambda L, s: rnn(L).pad_sequence(s), tail=())


def _packed(L, seqs, batch_first, enforce_sorted):
    lengths = [s.shape[0] for s in seqs]
    lengths = lengths if L is gf else torch.tensor(lengths)
    return rnn(L).pack_padded_sequence(rnn(L).pad_sequence(seqs, batch_first), lengths,
                                       batch_first, enforce_sorted)


def _fields(p):
    return [p.data, p.batch_sizes] + [i for i in (p.sorted_indices, p.unsorted_indices)
                                      if i is not None]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("lengths", [(7, 5, 3, 1), (6, 6, 2), (3, 7, 1, 5), (1,)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_pad_packed_match_torch(lengths, batch_first, dtype):
    enforce = list(lengths) == sorted(lengths, reverse=True)
    _compare(lengths, lambda L, s: _fields(_packed(L, s, batch_first, enforce)), dtype=dtype)
    _compare(lengths, lambda L, s: rnn(L).pad_packed_sequence(
        _packed(L, s, batch_first, False), batch_first, 0.5, total_length=9), dtype=dtype)


def test_packed_sequence_fields_and_conversions():
    seqs = _seqs(gf, (2, 4, 3))
    packed = gf_rnn.pack_sequence(seqs, enforce_sorted=False)
    want = th_rnn.pack_sequence(_seqs(torch, (2, 4, 3)), enforce_sorted=False)
    assert packed._fields == want._fields == ("data", "batch_sizes", "sorted_indices",
                                              "unsorted_indices")
    assert isinstance(packed, tuple) and not packed.is_cuda
    for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        np.testing.assert_array_equal(getattr(packed, name).numpy(), getattr(want, name).numpy())
        assert str(getattr(packed, name).dtype) == "int64"
    assert packed.to(gf.float64) is packed
    single = packed.float()
    assert single.data.dtype == gf.float32 and single.batch_sizes is packed.batch_sizes
    data_, sizes = packed[:2]
    rebuilt = gf_rnn.PackedSequence(data_, sizes, packed.sorted_indices)
    np.testing.assert_array_equal(rebuilt.unsorted_indices.numpy(), [2, 0, 1])
    assert gf_rnn.PackedSequence((data_, sizes)).sorted_indices is None


def test_pack_sequence_unpack_and_unpad_round_trip():
    _compare((2, 5, 3), lambda L, s: rnn(L).unpack_sequence(rnn(L).pack_sequence(
        s, enforce_sorted=False)))
    _compare((2, 5, 3), lambda L, s: rnn(L).unpad_sequence(
        rnn(L).pad_sequence(s, True), [2, 5, 3] if L is gf else torch.tensor([2, 5, 3]), True))


PACK_RAISES = [
    ("unsorted", [3, 5], True, RuntimeError),
    ("zero_length", [3, 0], True, RuntimeError),
    ("wrong_count", [3, 2, 1], True, RuntimeError),
]


@pytest.mark.parametrize("lengths,enforce,error", [c[1:] for c in PACK_RAISES],
                         ids=[c[0] for c in PACK_RAISES])
def test_pack_padded_sequence_errors_match_torch(lengths, enforce, error):
    check_op_raises(lambda L, x: rnn(L).pack_padded_sequence(x, lengths,
                                                             enforce_sorted=enforce),
                    (5, 2, 3), op="pack_padded_sequence")


def test_pad_sequence_errors_match_torch():
    got = check_op_raises(lambda L, a, b: rnn(L).pad_sequence([a, b]), (2, 3), (4, 2),
                          op="pad_sequence")
    assert "(4, 2)" in str(got), str(got)
    check_op_raises(lambda L, a: rnn(L).pad_sequence([a], padding_side="top"), (2, 3),
                    op="pad_sequence")


def test_pad_packed_total_length_too_short():
    packed = gf_rnn.pack_sequence(_seqs(gf, (4, 2)))
    with pytest.raises(ValueError, match="total_length"):
        gf_rnn.pad_packed_sequence(packed, total_length=3)


def test_rnn_utils_gradcheck():
    check_gradcheck(lambda L, a, b, c: rnn(L).pad_packed_sequence(
        rnn(L).pack_sequence([a, b, c], enforce_sorted=False), True)[0], (2, 3), (4, 3), (1, 3))
    check_gradcheck(lambda L, a, b: rnn(L).pad_sequence([a, b], padding_side="left"),
                    (2, 3), (4, 3))


# -- the CuPy path -----------------------------------------------------------------------------
W = distinct(7, 3, dtype=np.float32)
CUPY = [
    ("embedding", lambda w, i: F(gf).embedding(i, w), [W, IDX3]),
    ("embedding_padding_freq", lambda w, i: F(gf).embedding(i, w, 3, scale_grad_by_freq=True),
     [W, IDX]),
    ("embedding_max_norm", lambda w, i: F(gf).embedding(i, w.clone(), max_norm=1.0), [W, IDX]),
    ("bag_sum_weights", lambda w, i, o, p: F(gf).embedding_bag(i, w, o, mode="sum",
                                                               per_sample_weights=p),
     [W, FLAT, OFFS, data(7, seed=2, dtype=np.float32)]),
    ("bag_mean_padding", lambda w, i, o: F(gf).embedding_bag(i, w, o, padding_idx=3),
     [W, FLAT, OFFS]),
    ("bag_max", lambda w, i: F(gf).embedding_bag(i, w, mode="max"), [W, IDX]),
    ("pad_packed", lambda a, b: gf_rnn.pad_packed_sequence(
        gf_rnn.pack_sequence([a, b], enforce_sorted=False), True, 0.5)[0],
     [data(2, 3, dtype=np.float32), data(4, 3, seed=1, dtype=np.float32)]),
    ("packed_data", lambda a, b: gf_rnn.pack_sequence([b, a]).data,
     [data(2, 3, dtype=np.float32), data(4, 3, seed=1, dtype=np.float32)]),
]


@pytest.mark.parametrize("fn,arrays", [c[1:] for c in CUPY], ids=[c[0] for c in CUPY])
def test_embedding_and_packing_run_on_the_cupy_path(fake_cuda, fn, arrays):
    check_cupy_path(fn, *arrays)


def test_packed_sequence_moves_to_cuda(fake_cuda):
    packed = gf_rnn.pack_sequence(_seqs(gf, (2, 4)), enforce_sorted=False).to("cuda")
    assert packed.is_cuda and packed.sorted_indices.is_cuda
    assert packed.batch_sizes.device.type == "cpu"
    out, lengths = gf_rnn.pad_packed_sequence(packed)
    assert out.is_cuda and lengths.tolist() == [2, 4]
