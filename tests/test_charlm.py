"""Tiny Shakespeare bundled as a data set, the character models, and the charlm task of the
training command (python -m gradflow.train --task charlm)."""
from __future__ import annotations

import gzip
import math
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradflow as gf
from gradflow import models
from gradflow.datasets import TinyShakespeare, text
from gradflow.train import INTERRUPTED, main
from gradflow.train.charlm import COLUMNS, sample
from gradflow.train.cli import USAGE_ERROR

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--task", "charlm", "--epochs", "2", "--steps-per-epoch", "4", "--batch-size", "3",
        "--seq-len", "12", "--embed", "8", "--hidden", "16", "--layers", "2",
        "--val-chars", "200", "--sample-length", "30", "--device", "cpu"]


# -- the data set -----------------------------------------------------------------------------
def test_vocabulary_split_and_text():
    train, val, whole = TinyShakespeare("train"), TinyShakespeare("val"), TinyShakespeare("all")
    raw = text.load_text()
    assert len(raw) == 1_115_394
    assert train.vocab == sorted(set(raw)) and train.vocab_size == 65 == val.vocab_size
    assert (len(train.data), len(val.data)) == (1_003_854, 111_540)
    np.testing.assert_array_equal(np.concatenate([train.data, val.data]), whole.data)
    assert train.decode(train.data[:14]) == "First Citizen:"
    assert train.data.dtype == np.int64 and not train.data.flags.writeable


def test_encode_decode_round_trip():
    ds = TinyShakespeare("val", seq_len=7)
    sentence = "To be, or not to be: that is the question.\n"
    ids = ds.encode(sentence)
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 65
    assert ds.decode(ids) == sentence == ds.decode(gf.tensor(ids)) == ds.decode(list(ids))
    assert ds.decode(ds.encode("")) == ""
    with pytest.raises(ValueError, match=r"TinyShakespeare.encode: characters \['#', 'é'\]"):
        ds.encode("a#é")


def test_chunks_and_items_are_shifted_by_one():
    ds = TinyShakespeare("val", seq_len=13)
    inputs, targets = ds.chunks()
    assert inputs.shape == targets.shape == ((111_540 - 1) // 13, 13) and len(ds) == len(inputs)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    np.testing.assert_array_equal(inputs[1:, 0], targets[:-1, -1])
    np.testing.assert_array_equal(inputs.reshape(-1), ds.data[:inputs.size])
    x, y = ds[5]
    assert x.dtype == gf.int64 and tuple(x.shape) == (13,)
    np.testing.assert_array_equal(x.numpy(), inputs[5])
    np.testing.assert_array_equal(y.numpy(), targets[5])
    np.testing.assert_array_equal(ds[-1][1].numpy(), targets[-1])
    assert ds.chunks(100)[0].shape == ((111_540 - 1) // 100, 100)
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]
    with pytest.raises(ValueError, match="seq_len must be a positive int, got 0"):
        TinyShakespeare("train", seq_len=0)
    with pytest.raises(ValueError, match="split must be 'train', 'val' or 'all', got 'test'"):
        TinyShakespeare("test")


def test_loader_batches_the_pairs():
    loader = gf.utils.data.DataLoader(TinyShakespeare("val", seq_len=9), batch_size=4)
    x, y = next(iter(loader))
    assert tuple(x.shape) == tuple(y.shape) == (4, 9)
    np.testing.assert_array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped files the loader reads instead of the package's."""
    folder = tmp_path / "tinyshakespeare"
    shutil.copytree(text.SHAKESPEARE_DIR, folder)
    monkeypatch.setattr(text, "SHAKESPEARE_DIR", folder)
    text.load_text.cache_clear()
    yield folder
    text.load_text.cache_clear()


def test_checksums_are_verified(shipped_copy):
    assert len(text.load_text()) == 1_115_394  # the copy passes
    archive = shipped_copy / "input.txt.gz"
    packed = bytearray(archive.read_bytes())
    packed[len(packed) // 2] ^= 1
    archive.write_bytes(bytes(packed))
    text.load_text.cache_clear()
    with pytest.raises(RuntimeError, match=r"input.txt.gz has SHA-256 [0-9a-f]{64}, expected "
                                           r"b96dbe74.*reinstall gradflow"):
        text.load_text()


def test_the_decompressed_text_is_checked_too(shipped_copy):
    """An archive re-made from another text, with its SHA-256 updated, still fails: the text
    inside must be char-rnn's."""
    archive = shipped_copy / "input.txt.gz"
    archive.write_bytes(gzip.compress(b"Not Shakespeare.\n"))
    import hashlib
    sums = (shipped_copy / "SHA256SUMS").read_text().splitlines()
    sums[0] = f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  input.txt.gz"
    (shipped_copy / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    with pytest.raises(RuntimeError, match=r"\(decompressed\) has SHA-256 .* expected 86c4e6aa"):
        text.load_text()
    (shipped_copy / "SHA256SUMS").write_text("garbage\n")
    with pytest.raises(RuntimeError, match="SHA256SUMS line 1 is 'garbage'"):
        text.load_text()
    archive.unlink()
    (shipped_copy / "SHA256SUMS").write_text("0  input.txt.gz\n1  input.txt\n")
    with pytest.raises(RuntimeError, match="input.txt.gz is missing; the package data is "
                                           "corrupt"):
        text.load_text()


def test_the_attribution_ships_with_the_text():
    readme = (text.SHAKESPEARE_DIR / "README.md").read_text()
    for needle in ("Andrej Karpathy", "char-rnn", "MIT", "public domain"):
        assert needle in readme, needle


# -- the models -------------------------------------------------------------------------------
def test_char_lstm_is_the_anchor_model():
    model = models.char_lstm()
    names = dict(model.named_parameters())
    assert tuple(names["embed.weight"].shape) == (65, 64)
    assert tuple(names["lstm.weight_ih_l1"].shape) == (1024, 256)
    assert tuple(names["head.weight"].shape) == (65, 256)
    logits = model(gf.tensor(np.zeros((2, 5), np.int64)))
    assert tuple(logits.shape) == (2, 5, 65)


def test_char_transformer_is_causal():
    gf.manual_seed(0)
    model = models.char_transformer(d_model=16, heads=2, layers=2, context=10).eval()
    ids = np.random.default_rng(0).integers(0, 65, (2, 10))
    changed = ids.copy()
    changed[:, 6:] = (changed[:, 6:] + 1) % 65
    with gf.no_grad():
        a, b = model(gf.tensor(ids)).numpy(), model(gf.tensor(changed)).numpy()
    assert a.shape == (2, 10, 65)
    np.testing.assert_allclose(a[:, :6], b[:, :6], rtol=1e-5, atol=1e-6)
    assert np.abs(a[:, 6:] - b[:, 6:]).max() > 1e-4
    with pytest.raises(ValueError, match="11 positions but the model reads at most context=10"):
        model(gf.tensor(np.zeros((1, 11), np.int64)))


@pytest.mark.parametrize("build", [lambda: models.char_lstm(embed=8, hidden=16, layers=1),
                                   lambda: models.char_transformer(d_model=16, heads=2,
                                                                   layers=1, context=8)])
def test_sample_is_reproducible_and_follows_the_temperature(build):
    gf.manual_seed(0)
    model, data = build(), TinyShakespeare("val")
    first = sample(model, data, 40, temperature=0.8, seed=3)
    assert len(first) == 40 and set(first) <= set(data.vocab)
    assert sample(model, data, 40, temperature=0.8, seed=3) == first
    assert sample(model, data, 40, temperature=0.8, seed=4) != first
    # a very low temperature is greedy: every draw is the argmax, whatever the seed
    assert sample(model, data, 20, 1e-4, seed=1) == sample(model, data, 20, 1e-4, seed=2)
    assert model.training
    with pytest.raises(ValueError, match="temperature must be positive, got 0"):
        sample(model, data, 5, temperature=0)


# -- the command ------------------------------------------------------------------------------
def _refused(capsys, argv, *needles):
    capsys.readouterr()
    assert main(argv) == USAGE_ERROR
    err = capsys.readouterr().err
    assert err.startswith("python -m gradflow.train: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


def test_charlm_run_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "char_lstm on Tiny Shakespeare (1,003,854 train, 201 val characters, " \
           "vocabulary 65)" in printed
    assert "total parameters:" in printed and printed.count("sample (temperature 0.8):") == 2
    lines = [line for line in printed.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2, printed
    for line in lines:  # bits per character are nats / ln 2
        found = re.search(r"val loss ([\d.]+) nats \(([\d.]+) bpc", line)
        assert found, line
        nats, bpc = (float(v) for v in found.groups())
        assert abs(nats / math.log(2) - bpc) < 2e-3, line
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == ",".join(COLUMNS) and len(rows) == 3
    for name in ("best.ckpt", "last.ckpt"):
        assert (out / name).is_file()
    ckpt = gf.load(out / "last.ckpt")
    assert ckpt["task"] == "charlm" and ckpt["epoch"] == 2
    assert 3.0 < ckpt["history"][-1]["val_loss"] < 4.3  # ln 65 = 4.17 at the start
    _refused(capsys, TINY + ["--out", str(out)], "holds a previous run", "--resume")


def test_charlm_resume_matches_an_uninterrupted_run(tmp_path, capsys):
    assert main(TINY + ["--out", str(tmp_path / "whole")]) == 0
    assert main(TINY + ["--out", str(tmp_path / "parts"), "--max-steps", "3"]) == INTERRUPTED
    assert "continue with --resume" in capsys.readouterr().out
    assert main(TINY + ["--out", str(tmp_path / "parts"), "--resume", "--max-steps",
                        "3"]) == INTERRUPTED
    assert main(TINY + ["--out", str(tmp_path / "parts"), "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    whole, parts = (gf.load(tmp_path / name / "last.ckpt") for name in ("whole", "parts"))
    for key in whole["model"]:
        np.testing.assert_array_equal(parts["model"][key].numpy(), whole["model"][key].numpy(),
                                      err_msg=key)
    for a, b in zip(whole["history"], parts["history"], strict=True):
        assert (a["train_loss"], a["val_loss"]) == (b["train_loss"], b["val_loss"])
    _refused(capsys, TINY + ["--out", str(tmp_path / "parts"), "--resume", "--lr", "0.1"],
             "--lr 0.002 (now 0.1)")


def test_charlm_transformer_and_the_model_name_implies_the_task(tmp_path, capsys):
    argv = [a for a in TINY if a not in ("--task", "charlm")]
    argv[argv.index("--epochs") + 1] = "1"
    assert main(argv + ["--model", "char_transformer", "--heads", "2",
                        "--out", str(tmp_path)]) == 0
    assert "char_transformer on Tiny Shakespeare" in capsys.readouterr().out
    assert "blocks.0.self_attn.in_proj_weight" in gf.load(tmp_path / "best.ckpt")["model"]


def test_charlm_refuses_bad_options(tmp_path, capsys):
    out = ["--out", str(tmp_path)]
    _refused(capsys, TINY + out + ["--seq-len", "0"], "--seq-len must be at least 1, not 0")
    _refused(capsys, TINY + out + ["--model", "char_transformer", "--heads", "3"],
             "--hidden 16 must be a multiple of --heads 3")
    _refused(capsys, TINY + out + ["--val-chars", "5"], "--val-chars 5 is shorter than one "
                                                        "sequence of --seq-len 12")
    _refused(capsys, TINY + out + ["--resume"], "--resume: no checkpoint at")


def test_the_command_line_form_runs(tmp_path):
    """`python -m gradflow.train --task charlm` from a shell, as README shows it."""
    done = subprocess.run([sys.executable, "-m", "gradflow.train", *TINY[:-2], "--epochs", "1",
                           "--out", str(tmp_path / "cli")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "best validation loss" in done.stdout, done.stdout


def test_charlm_trains_on_the_cupy_path(fake_cuda, tmp_path, capsys):
    out = tmp_path / "gpu"
    assert main(TINY + ["--device", "cuda", "--epochs", "1", "--out", str(out)]) == 0
    assert "device cuda" in capsys.readouterr().out
    ckpt = gf.load(out / "last.ckpt", map_location="cpu")
    assert ckpt["epoch"] == 1 and math.isfinite(ckpt["history"][0]["val_loss"])


def test_ctrl_c_finishes_the_step_saves_and_resumes(tmp_path, capsys, monkeypatch):
    from gradflow.train.charlm import CharRun
    batch, calls = CharRun.batch, []

    def interrupted_batch(self, starts):
        calls.append(self.step)
        if len(calls) == 2:  # Ctrl-C during the second step
            signal.raise_signal(signal.SIGINT)
        return batch(self, starts)

    monkeypatch.setattr(CharRun, "batch", interrupted_batch)
    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # a background job's is SIG_IGN, not Python's
    assert main(TINY + ["--out", str(out)]) == INTERRUPTED
    assert "stopped at epoch 1, step 2: saved" in capsys.readouterr().out
    assert gf.load(out / "last.ckpt")["step"] == 2 and signal.getsignal(signal.SIGINT) is before
    monkeypatch.setattr(CharRun, "batch", batch)
    assert main(TINY + ["--out", str(out), "--resume"]) == 0
    assert gf.load(out / "last.ckpt")["epoch"] == 2


# -- the whole training step under compile_step ---------------------------------------------
def _char_lstm_step(model, opt, vocab):
    """The anchor's step: cross-entropy over every position, clipping at 1.0, Adam."""
    def step(x, y):
        opt.zero_grad()
        loss = gf.nn.functional.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        gf.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss
    return step


def test_a_char_lstm_training_step_is_captured_whole(fake_cuda):
    """Embedding, a 2-layer LSTM (fused cell kernels, per-step cuBLAS GEMMs), the head, the
    loss, clipping and Adam: captured in one graph with no host synchronisation, and each
    replay is one graph launch."""
    model = models.CharLSTM(vocab=11, embed=8, hidden=16, layers=2).to("cuda")
    step = gf.compile_step(_char_lstm_step(model, gf.optim.Adam(model.parameters(), lr=2e-3),
                                           11), warmup=1)
    rng = np.random.default_rng(0)
    x, y = (gf.tensor(rng.integers(0, 11, (3, 7)), device="cuda") for _ in range(2))
    logs = []
    for _ in range(3):  # warm-up, capture (then its first launch), replay
        fake_cuda.clear_events()
        step(x, y)
        logs.append(list(fake_cuda.event_log))
    assert [sum(e.kind == "graph_launch" for e in log) for log in logs] == [0, 1, 1]
    assert [e for e in logs[1] + logs[2] if e.kind == "sync"] == []
    captured = {e.where for e in logs[1] if e.kind == "launch"}
    assert {"rnn.lstm_cell_fwd<float>", "rnn.lstm_cell_bwd<float>", "cublas.gemm_strided_batched",
            "optim.adam_update<float>", "softmax_xent.softmax_xent_fwd<float>"} <= captured
    assert not any(e.where.startswith(("rnn.", "cublas.")) for e in logs[2] if e.kind == "launch")


@pytest.mark.gpu
def test_a_captured_char_lstm_trains_as_the_eager_one():
    rng = np.random.default_rng(1)
    batches = [tuple(gf.tensor(rng.integers(0, 65, (8, 20)), device="cuda") for _ in range(2))
               for _ in range(6)]
    runs = []
    for compiled in (False, True):
        gf.manual_seed(0)
        model = models.CharLSTM().to("cuda")
        step = _char_lstm_step(model, gf.optim.Adam(model.parameters(), lr=2e-3), 65)
        step = gf.compile_step(step, warmup=1) if compiled else step
        losses = [float(step(x, y).item()) for x, y in batches]
        runs.append((losses, [p.detach().cpu().numpy() for p in model.parameters()]))
    (eager, eager_params), (graph, graph_params) = runs
    np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-6)
    for p, q in zip(graph_params, eager_params):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6)
