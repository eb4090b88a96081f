"""nn.RNN, LSTM, GRU and their cells against PyTorch with the same weights (torch's state_dict
loaded by name): outputs, final states and every gradient; the cells' gradchecks; the
sequence op's BPTT by finite differences; packed batches; errors; the CuPy path; and
truncated BPTT keeping memory flat."""
from __future__ import annotations

import gc

import numpy as np
import pytest
from helpers import check_cupy_path, check_op_raises, require_torch

import gradflow as gf
from gradflow.ops import rnn_arrays
from gradflow.ops.rnn import recurrence

torch = require_torch()
TOL = {np.float32: 1e-5, np.float64: 1e-10}


def _pair(cls: str, *args, dtype=np.float64, **kwargs):
    """The same module in torch and gradflow: torch's initial weights loaded into ours."""
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(*args, **kwargs).to(getattr(torch, np.dtype(dtype).name))
    gm = getattr(gf.nn, cls)(*args, dtype=dtype, **kwargs)
    gm.load_state_dict({k: gf.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    return tm, gm


def _flat(out) -> list:
    """An output structure ((y, h) or (y, (h, c)) or a PackedSequence's data) as a list."""
    if isinstance(out, (tuple, list)) and not hasattr(out, "batch_sizes"):
        return [t for o in out for t in _flat(o)]
    return [out.data if hasattr(out, "batch_sizes") else out]


def _compare(tm, gm, t_out, g_out, t_leaves, g_leaves, tol) -> None:
    """Values of every output, then the gradients of a weighted sum of them for the inputs
    and every parameter."""
    t_flat, g_flat = _flat(t_out), _flat(g_out)
    assert len(t_flat) == len(g_flat)
    rng = np.random.default_rng(3)
    t_loss = g_loss = 0
    for t, g in zip(t_flat, g_flat):
        assert tuple(g.shape) == tuple(t.shape), (tuple(g.shape), tuple(t.shape))
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol,
                                   err_msg="outputs differ from PyTorch")
        w = rng.standard_normal(tuple(t.shape))
        t_loss = t_loss + (t * torch.tensor(w, dtype=t.dtype)).sum()
        g_loss = g_loss + (g * gf.tensor(w, dtype=g.dtype)).sum()
    t_loss.backward()
    g_loss.backward()
    for t, g in zip(t_leaves, g_leaves):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol,
                                   err_msg="input gradients differ from PyTorch")
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(getattr(gm, name).grad.numpy(), p.grad.numpy(), rtol=tol,
                                   atol=tol, err_msg=f"gradient of {name} differs")


def _leaf(a: np.ndarray):
    return torch.tensor(a, requires_grad=True), gf.tensor(a, requires_grad=True)


CONFIGS = [
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("LSTM", dict(num_layers=3, proj_size=3)),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=4, batch_first=True)),
    ("LSTM", dict(bias=False)),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict(bias=False, num_layers=2)),
    ("RNN", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("RNN", dict(nonlinearity="relu", num_layers=2, bidirectional=True)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("initial", [False, True])
@pytest.mark.parametrize("cls,kwargs", CONFIGS)
def test_module_matches_torch(cls, kwargs, initial, dtype):
    tm, gm = _pair(cls, 5, 7, dtype=dtype, **kwargs)
    rng = np.random.default_rng(0)
    shape = (3, 6, 5) if kwargs.get("batch_first") else (6, 3, 5)
    tx, gx = _leaf(rng.standard_normal(shape).astype(dtype))
    leaves_t, leaves_g = [tx], [gx]
    if initial:
        layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
        h_size = kwargs.get("proj_size") or 7
        th, gh = _leaf(rng.standard_normal((layers, 3, h_size)).astype(dtype))
        leaves_t.append(th)
        leaves_g.append(gh)
        if cls == "LSTM":
            tc, gc_ = _leaf(rng.standard_normal((layers, 3, 7)).astype(dtype))
            leaves_t.append(tc)
            leaves_g.append(gc_)
            t_out, g_out = tm(tx, (th, tc)), gm(gx, (gh, gc_))
        else:
            t_out, g_out = tm(tx, th), gm(gx, gh)
    else:
        t_out, g_out = tm(tx), gm(gx)
    assert isinstance(g_out, tuple) and len(g_out) == 2
    if cls == "LSTM":
        assert isinstance(g_out[1], tuple) and len(g_out[1]) == 2
    _compare(tm, gm, t_out, g_out, leaves_t, leaves_g, TOL[dtype])


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_unbatched_input_matches_torch(cls):
    tm, gm = _pair(cls, 4, 5, num_layers=2, bidirectional=True)
    rng = np.random.default_rng(1)
    tx, gx = _leaf(rng.standard_normal((6, 4)))
    th, gh = _leaf(rng.standard_normal((4, 5)))
    if cls == "LSTM":
        tc, gc_ = _leaf(rng.standard_normal((4, 5)))
        _compare(tm, gm, tm(tx, (th, tc)), gm(gx, (gh, gc_)), [tx, th, tc], [gx, gh, gc_],
                 1e-10)
    else:
        _compare(tm, gm, tm(tx, th), gm(gx, gh), [tx, th], [gx, gh], 1e-10)


@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("cls,kwargs", [
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("LSTM", dict(proj_size=2, bidirectional=True)),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("RNN", dict(bidirectional=True, batch_first=True)),
])
def test_packed_sequences_match_torch(cls, kwargs, enforce_sorted):
    tm, gm = _pair(cls, 3, 4, **kwargs)
    lengths = [5, 2, 7, 1] if not enforce_sorted else [7, 5, 2, 1]
    rng = np.random.default_rng(2)
    bf = kwargs.get("batch_first", False)
    shape = (4, 7, 3) if bf else (7, 4, 3)
    tx, gx = _leaf(rng.standard_normal(shape))
    layers = kwargs.get("num_layers", 1) * 2
    th, gh = _leaf(rng.standard_normal((layers, 4, kwargs.get("proj_size") or 4)))
    tp = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=bf,
                                                 enforce_sorted=enforce_sorted)
    gp = gf.nn.utils.rnn.pack_padded_sequence(gx, lengths, batch_first=bf,
                                              enforce_sorted=enforce_sorted)
    if cls == "LSTM":
        tc, gc_ = _leaf(rng.standard_normal((layers, 4, 4)))
        t_out, g_out = tm(tp, (th, tc)), gm(gp, (gh, gc_))
        leaves = ([tx, th, tc], [gx, gh, gc_])
    else:
        t_out, g_out = tm(tp, th), gm(gp, gh)
        leaves = ([tx, th], [gx, gh])
    assert isinstance(g_out[0], gf.nn.utils.rnn.PackedSequence)
    np.testing.assert_array_equal(g_out[0].batch_sizes.numpy(), t_out[0].batch_sizes.numpy())
    _compare(tm, gm, t_out, g_out, *leaves, 1e-10)


@pytest.mark.parametrize("cls,kwargs", [
    ("LSTM", dict(bidirectional=True)),
    ("LSTM", dict(proj_size=2, bidirectional=True)),
    ("GRU", dict(bidirectional=True)),
    ("RNN", dict(nonlinearity="relu", bidirectional=True)),
])
def test_long_packed_sequences_cross_the_backward_chunks(cls, kwargs):
    """19 steps (backward prepares 8 at a time: two whole spans and a ragged one), unsorted
    lengths ending inside different spans, one sequence of a single step."""
    tm, gm = _pair(cls, 3, 5, **kwargs)
    lengths = [11, 19, 1, 8, 16]
    rng = np.random.default_rng(4)
    tx, gx = _leaf(rng.standard_normal((19, 5, 3)))
    tp = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, enforce_sorted=False)
    gp = gf.nn.utils.rnn.pack_padded_sequence(gx, lengths, enforce_sorted=False)
    _compare(tm, gm, tm(tp), gm(gp), [tx], [gx], 1e-10)


def test_dropout_between_layers_only_in_training():
    tm, gm = _pair("LSTM", 3, 4, num_layers=2, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    gm.eval()
    tm.eval()
    evaluated = gm(gf.tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(evaluated, tm(torch.tensor(x))[0].detach().numpy(), atol=1e-12)
    gm.train()
    trained = gm(gf.tensor(x))[0].detach().numpy()
    assert np.abs(trained - evaluated).max() > 1e-3, "dropout had no effect in training"


@pytest.mark.parametrize("batch_sizes", [None, (3, 3, 2, 1)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mode,proj", [("LSTM", 0), ("LSTM", 2), ("GRU", 0), ("RNN_TANH", 0),
                                       ("RNN_RELU", 0)])
def test_sequence_op_passes_gradcheck(mode, proj, reverse, batch_sizes):
    """BPTT through the one-op-per-layer path, every input and weight by finite differences
    (first order: the op has no double backward)."""
    rng = np.random.default_rng(0)
    hid, gates = 3, {"LSTM": 4, "GRU": 3}.get(mode, 1) * 3
    out = proj or hid

    def leaf(*shape):
        return gf.tensor(rng.standard_normal(shape) * 0.7, requires_grad=True)

    x, h0, w_ih, w_hh = leaf(4, 3, 2), leaf(3, out), leaf(gates, 2), leaf(gates, out)
    b_ih, b_hh = leaf(gates), leaf(gates)
    c0 = leaf(3, hid) if mode == "LSTM" else None
    w_hr = leaf(proj, hid) if proj else None
    leaves = [t for t in (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr) if t is not None]

    def f(*ts):
        it = iter(ts)
        args = [None if t is None else next(it) for t in (x, h0, c0, w_ih, w_hh, b_ih, b_hh,
                                                          w_hr)]
        return recurrence(mode, *args, reverse=reverse, batch_sizes=batch_sizes)

    assert gf.autograd.gradcheck(f, leaves)


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cells_match_torch(cls, dtype):
    tm, gm = _pair(cls, 3, 5, dtype=dtype)
    rng = np.random.default_rng(4)
    tx, gx = _leaf(rng.standard_normal((2, 3)).astype(dtype))
    th, gh = _leaf(rng.standard_normal((2, 5)).astype(dtype))
    if cls == "LSTMCell":
        tc, gc_ = _leaf(rng.standard_normal((2, 5)).astype(dtype))
        _compare(tm, gm, tm(tx, (th, tc)), gm(gx, (gh, gc_)), [tx, th, tc], [gx, gh, gc_],
                 TOL[dtype])
    else:
        _compare(tm, gm, tm(tx, th), gm(gx, gh), [tx, th], [gx, gh], TOL[dtype])


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
def test_unbatched_cells_without_state_match_torch(cls):
    tm, gm = _pair(cls, 3, 4, bias=False)
    tx, gx = _leaf(np.random.default_rng(5).standard_normal(3))
    _compare(tm, gm, tm(tx), gm(gx), [tx], [gx], 1e-10)


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_pass_gradcheck_and_gradgradcheck(cls):
    gf.manual_seed(0)
    m = getattr(gf.nn, cls)(2, 3, dtype=gf.float64)
    rng = np.random.default_rng(6)
    x = gf.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    h = gf.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    if cls == "LSTMCell":
        c = gf.tensor(rng.standard_normal((2, 3)), requires_grad=True)

        def f(x, h, c):
            return m(x, (h, c))

        leaves = [x, h, c]
    else:
        def f(x, h):
            return m(x, h)

        leaves = [x, h]
    assert gf.autograd.gradcheck(f, leaves)
    assert gf.autograd.gradgradcheck(f, leaves)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def test_array_cells_match_their_formulas():
    """The reference the CUDA kernels are held to, checked on its own (awkward H = 7), in its
    feature-major layout: states (H, N), gates (G*H, N)."""
    rng = np.random.default_rng(7)
    n, hid = 3, 7
    gates, c_prev = rng.standard_normal((4 * hid, n)), rng.standard_normal((hid, n))
    h, c, act = rnn_arrays.lstm_cell_forward(gates, c_prev)
    i, f, g, o = np.split(gates, 4, axis=0)
    want_c = _sigmoid(f) * c_prev + _sigmoid(i) * np.tanh(g)
    np.testing.assert_allclose(c, want_c, atol=1e-14)
    np.testing.assert_allclose(h, _sigmoid(o) * np.tanh(want_c), atol=1e-14)
    tg, tcp = torch.tensor(gates, requires_grad=True), torch.tensor(c_prev, requires_grad=True)
    ti, tf, tgg, to = tg.chunk(4, 0)
    tc = tf.sigmoid() * tcp + ti.sigmoid() * tgg.tanh()
    th = to.sigmoid() * tc.tanh()
    g_h, g_c = rng.standard_normal((hid, n)), rng.standard_normal((hid, n))
    (th * torch.tensor(g_h) + tc * torch.tensor(g_c)).sum().backward()
    g_gates, g_cp = rnn_arrays.lstm_cell_backward(g_h, g_c, act, c_prev, c)
    np.testing.assert_allclose(g_gates, tg.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(g_cp, tcp.grad.numpy(), atol=1e-13)
    gi, gh, hp = (rng.standard_normal((3 * hid, n)), rng.standard_normal((3 * hid, n)),
                  rng.standard_normal((hid, n)))
    h, act = rnn_arrays.gru_cell_forward(gi, gh, hp)
    tgi, tgh, thp = (torch.tensor(a, requires_grad=True) for a in (gi, gh, hp))
    (ir, iz, in_), (hr, hz, hn) = tgi.chunk(3, 0), tgh.chunk(3, 0)
    r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
    nn_ = (in_ + r * hn).tanh()
    th = (1 - z) * nn_ + z * thp
    np.testing.assert_allclose(h, th.detach().numpy(), atol=1e-14)
    (th * torch.tensor(g_h)).sum().backward()
    g_gi, g_gh, g_hp = rnn_arrays.gru_cell_backward(g_h, act, gh[2 * hid:], hp)
    np.testing.assert_allclose(g_gi, tgi.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(g_gh, tgh.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(g_hp, thp.grad.numpy(), atol=1e-13)
    for nl, fn in (("tanh", np.tanh), ("relu", lambda a: np.maximum(a, 0))):
        h = rnn_arrays.rnn_cell_forward(gates, nl)
        np.testing.assert_allclose(h, fn(gates), atol=1e-15)
        want = g_h.repeat(4, 0) * (1 - h * h if nl == "tanh" else gates > 0)
        np.testing.assert_allclose(rnn_arrays.rnn_cell_backward(g_h.repeat(4, 0), h, nl), want)


def test_array_lstm_steps_prepared_together_match_one_by_one():
    """lstm_backward_prepare over several steps at once gives each step what it gives that
    step alone; an `out` that is not contiguous is refused rather than silently not written."""
    rng = np.random.default_rng(8)
    steps, hid, n = 5, 3, 4
    gates, cs = rng.standard_normal((steps, 4 * hid, n)), rng.standard_normal((steps + 1, hid, n))
    act = np.stack([rnn_arrays.lstm_cell_forward(gates[t], cs[t])[2] for t in range(steps)])
    together = rnn_arrays.lstm_backward_prepare(act, cs[:-1], cs[1:])
    g_h, g_c = rng.standard_normal((hid, n)), rng.standard_normal((hid, n))
    for t in range(steps):
        want = rnn_arrays.lstm_cell_backward(g_h, g_c, act[t], cs[t], cs[t + 1])
        got = rnn_arrays.lstm_backward_step(g_h, g_c, *(p[t] for p in together))
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g, w)
    with pytest.raises(ValueError, match="lstm_backward_step: out must be contiguous"):
        rnn_arrays.lstm_backward_step(g_h, g_c, *(p[0] for p in together),
                                      out=np.empty((n, 4 * hid)).T)


def _module_call(cls, **kwargs):
    def fn(lib, x, *states):
        lib.manual_seed(0)
        m = getattr(lib.nn, cls)(3, 4, **kwargs).double()
        return m(x, *states) if not states or cls != "LSTM" else m(x, tuple(states))
    return fn


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_bad_inputs_raise_as_torch(cls):
    fn = _module_call(cls)
    err = check_op_raises(fn, (5, 2, 2), op=cls)  # input_size 2, not 3
    assert "input_size" in str(err)
    check_op_raises(fn, (5, 2, 3, 1), op=cls)  # 4-D input
    states = [(2, 2, 4)] * (2 if cls == "LSTM" else 1)  # 2 layers of state for 1
    check_op_raises(fn, (5, 2, 3), *states, op=cls)
    states = [(1, 2)] * (2 if cls == "LSTM" else 1)  # 2-D state for 3-D input
    check_op_raises(fn, (5, 2, 3), *states, op=cls)


@pytest.mark.parametrize("cls", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cell_bad_inputs_raise_as_torch(cls):
    fn = _module_call(cls)
    check_op_raises(fn, (2, 5), op=cls)
    check_op_raises(fn, (2, 3, 1), op=cls)


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="proj_size"):
        gf.nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size"):
        gf.nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="nonlinearity"):
        gf.nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        gf.nn.LSTM(3, 4, dropout=1.5)


@pytest.mark.parametrize("cls,kwargs", [
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2)),
    ("GRU", dict(bidirectional=True)), ("RNN", dict(nonlinearity="relu")),
    ("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {})])
def test_modules_run_on_the_cupy_path(fake_cuda, cls, kwargs):
    def fn(x):
        gf.manual_seed(0)
        m = getattr(gf.nn, cls)(3, 4, dtype=gf.float64, **kwargs).to(x.device)
        out = m(x)
        return out[0] if isinstance(out, tuple) else out

    shape = (5, 2, 3) if "Cell" not in cls else (2, 3)
    check_cupy_path(fn, np.random.default_rng(8).standard_normal(shape), rtol=1e-10)


def test_state_dict_names_and_init_follow_torch():
    tm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    gm = gf.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    assert list(gm.state_dict()) == list(tm.state_dict())
    for (name, p), (_, q) in zip(gm.named_parameters(), tm.named_parameters()):
        assert tuple(p.shape) == tuple(q.shape), name
        assert np.abs(p.detach().numpy()).max() <= 1 / np.sqrt(5), name
    assert [[tuple(p.shape) for p in ps] for ps in gm.all_weights] == \
        [[tuple(p.shape) for p in ps] for ps in tm.all_weights]
    gm.flatten_parameters()


def test_truncated_bptt_keeps_memory_flat():
    """Hidden state carried across 1,000 chunks and detached between them: the object count
    stays flat and no graph outlives its chunk."""
    gf.manual_seed(0)
    model = gf.nn.LSTM(3, 4)
    opt = gf.optim.SGD(model.parameters(), lr=0.01)
    x = gf.tensor(np.random.default_rng(9).standard_normal((2, 1, 3)).astype(np.float32))
    state = None
    counts = []
    for step in range(1000):
        out, state = model(x, state)
        loss = (out * out).sum()
        opt.zero_grad()
        loss.backward()
        gf.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state = tuple(s.detach() for s in state)
        if step % 250 == 249:
            gc.collect()
            counts.append(len(gc.get_objects()))
    assert all(s.grad_fn is None and not s.requires_grad for s in state)
    assert counts[-1] - counts[0] <= 50, f"objects grew over the chunks: {counts}"
    assert out.grad_fn is not None and out.grad_fn._freed, "the last chunk's graph kept"
