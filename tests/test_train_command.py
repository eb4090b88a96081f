"""The training command (python -m gradflow.train) and the training tools it uses."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow import models
from gradflow.train import INTERRUPTED, data, main
from gradflow.train.cli import USAGE_ERROR, build_parser
from gradflow.utils.early_stopping import EarlyStopping
from gradflow.utils.metrics import accuracy

SMALL = ["--model", "mlp", "--subset", "600", "--epochs", "2", "--batch-size", "50",
         "--optimizer", "adam", "--lr", "0.01", "--augment", "--patience", "3"]
TINY = ["--model", "mlp", "--subset", "100", "--epochs", "1", "--batch-size", "50"]


def _refused(capsys, argv, *needles):
    """Check that main refuses argv as argparse refuses a bad option: exit code 2 and one line
    on stderr, no traceback, naming each of needles."""
    capsys.readouterr()
    assert main(argv) == USAGE_ERROR
    err = capsys.readouterr().err
    assert err.startswith("python -m gradflow.train: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


def _final(out):
    ckpt = gf.load(out / "last.ckpt")
    return ckpt["model"], ckpt["history"], ckpt["optimizer"]


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, capsys):
    assert main(SMALL + ["--out", str(tmp_path / "whole")]) == 0
    assert main(SMALL + ["--out", str(tmp_path / "parts"), "--max-steps", "17"]) == INTERRUPTED
    assert "continue with --resume" in capsys.readouterr().out
    assert main(SMALL + ["--out", str(tmp_path / "parts"), "--resume"]) == 0
    whole, whole_history, whole_opt = _final(tmp_path / "whole")
    parts, parts_history, parts_opt = _final(tmp_path / "parts")
    for key in whole:
        np.testing.assert_array_equal(parts[key].numpy(), whole[key].numpy(), err_msg=key)
    for a, b in zip(whole_history, parts_history):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert a[key] == b[key], (key, a, b)
    assert whole_opt["state"][0]["step"] == parts_opt["state"][0]["step"] == 24


def test_outputs_and_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    out = tmp_path / "run"
    assert main(["--subset", "300", "--epochs", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "total parameters: 60,850" in text and "test accuracy" in text
    assert "(300 train, 1000 val, 1000 test images)" in text  # --subset bounds evaluation
    assert text.count("curves.png skipped: matplotlib is not installed (pip install "
                      "matplotlib)") == 1, text
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc")
    assert len(rows) == 3
    assert (out / "best.ckpt").is_file() and (out / "last.ckpt").is_file()


def test_a_rerun_keeps_the_previous_run_unless_exist_ok(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    before = (out / "metrics.csv").read_text()
    _refused(capsys, TINY + ["--out", str(out)], f"--out {out} holds a previous run",
             "--resume", "--exist-ok")
    assert (out / "metrics.csv").read_text() == before
    assert main(TINY + ["--out", str(out), "--exist-ok", "--seed", "1"]) == 0
    assert (out / "metrics.csv").read_text() != before


def test_resume_refuses_changed_options_naming_each(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(TINY + ["--out", out]) == 0
    _refused(capsys, TINY + ["--out", out, "--resume", "--epochs", "2", "--subset", "200"],
             "--epochs 1 (now 2)", "--subset 100 (now 200)")
    _refused(capsys, ["--subset", "100", "--epochs", "1", "--batch-size", "50", "--out", out,
                      "--resume"], "--model mlp (now lenet5)")
    # what changes neither the schedule nor the data may change
    assert main(TINY + ["--out", out, "--resume", "--device", "cpu", "--max-steps", "5"]) == 0


def test_a_truncated_or_foreign_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    whole = (out / "last.ckpt").read_bytes()
    (out / "last.ckpt").write_bytes(whole[:len(whole) // 2])
    _refused(capsys, TINY + ["--out", str(out), "--resume"], "--resume: ",
             "truncated or corrupt")
    (tmp_path / "weights.ckpt").write_bytes(b"\x80\x04 a pickle")
    _refused(capsys, TINY + ["--out", str(out), "--resume", str(tmp_path / "weights.ckpt")],
             "not a gradflow checkpoint")
    gf.save({"weight": gf.zeros(2)}, tmp_path / "state.ckpt")
    _refused(capsys, TINY + ["--out", str(out), "--resume", str(tmp_path / "state.ckpt")],
             "is not a checkpoint of python -m gradflow.train")


@pytest.mark.skipif(gf.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    _refused(capsys, TINY + ["--out", str(tmp_path / "run"), "--device", "cuda"],
             "--device cuda: ", "CUDA is not available", "use --device cpu")


def test_bad_arguments_are_named(tmp_path, capsys):
    out = ["--out", str(tmp_path / "run")]  # never the checkout's runs/train, which may exist
    _refused(capsys, out + ["--batch-size", "0"], "--batch-size must be at least 1, not 0")
    _refused(capsys, out + ["--subset", "0"], "--subset must be at least 1, not 0")
    _refused(capsys, out + ["--lr", "-1"], "--lr must be positive, not -1.0")
    _refused(capsys, out + ["--threads", "0"], "--threads must be at least 1, not 0")
    _refused(capsys, out + ["--dataset", "cifar10"], "needs --data-dir")
    _refused(capsys, out + ["--data-dir", str(tmp_path)], "--data-dir needs --dataset mnist "
                                                           "or cifar10")


def test_help_explains_every_option_with_its_default(capsys):
    for action in build_parser()._actions:
        if action.dest != "help":
            assert action.help and "(default: " in action.help, action.option_strings
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: runs/train)" in text and "(default: 8)" in text
    assert "at most max(N, 1000) images each" in text


def test_eval_sample_is_fixed_and_bounded():
    split = data.Split(np.arange(50, dtype=np.float32)[:, None, None, None], np.arange(50))
    a, b = data.sample(split, 20), data.sample(split, 20)
    assert len(a) == 20 and len(set(a.labels.tolist())) == 20
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.images[:, 0, 0, 0], a.labels)
    assert data.sample(split, 80) is split


def test_early_stopping_counts_epochs_without_improvement():
    stopper = EarlyStopping(patience=2, min_delta=0.01)
    decisions = [stopper.step(v) for v in (1.0, 0.5, 0.495, 0.6, 0.4)]
    assert decisions == [False, False, False, True, False]
    assert stopper.best == 0.4 and stopper.improved
    restored = EarlyStopping(patience=2)
    restored.load_state_dict(stopper.state_dict())
    assert restored.state_dict() == stopper.state_dict()
    with pytest.raises(ValueError, match="patience must be a positive int"):
        EarlyStopping(patience=0)


def test_topk_accuracy():
    logits = gf.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5],
                        [0.3, 0.25, 0.45]])
    target = gf.tensor([2, 0, 1, 1])
    assert accuracy(logits, target, topk=(1, 2, 3)) == [0.25, 0.75, 1.0]
    with pytest.raises(ValueError, match="k=4 must be in"):
        accuracy(logits, target, topk=(4,))


def test_fit_to_pads_repeats_and_enlarges():
    digits = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    padded = data.fit_to(digits, (3, 32, 32))
    assert padded.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(padded[:, 2, 2:30, 2:30], digits[:, 0])
    large = data.fit_to(np.ones((1, 3, 32, 32), np.float32), (3, 224, 224))
    assert large.shape == (1, 3, 224, 224)
    with pytest.raises(ValueError, match="cannot fit images"):
        data.fit_to(digits, (1, 30, 30))


def test_augment_crops_within_the_padding():
    gf.manual_seed(0)
    batch = np.arange(2 * 3 * 32 * 32, dtype=np.float32).reshape(2, 3, 32, 32)
    out = data.augment(batch, flip=True)
    assert out.shape == batch.shape
    assert np.isin(out[out != 0], batch).all()


def _digits_loader():
    from gradflow.utils.data import DataLoader, TensorDataset
    x, y = gf.datasets.bundled_mnist("train")
    return DataLoader(TensorDataset(x[:128], y[:128]), batch_size=64)


def test_sanity_check_passes_a_healthy_net_and_leaves_it_untouched():
    gf.manual_seed(0)
    net = gf.nn.Sequential(gf.nn.Flatten(), gf.nn.Linear(784, 32), gf.nn.Tanh(),
                           gf.nn.Linear(32, 10))
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    report = gf.utils.sanity_check(net, _digits_loader(), print_fn=lambda s: None)
    assert report.passed, str(report)
    names = [name for name, _, _ in report.checks]
    assert names[:2] == ["initial loss", "activations 2"] and "overfit 20 samples" in names
    assert any(n.startswith("gradcheck") for n in names)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_sanity_check_flags_dead_relus_and_a_bad_initial_loss():
    gf.manual_seed(0)
    net = gf.nn.Sequential(gf.nn.Flatten(), gf.nn.Linear(784, 32), gf.nn.ReLU(),
                           gf.nn.Linear(32, 10))
    with gf.no_grad():
        net[1].bias.fill_(-100.0)
        net[3].bias.copy_(gf.arange(10, dtype=gf.float32) * 5)
    report = gf.utils.sanity_check(net, _digits_loader(), overfit_steps=25,
                                   print_fn=lambda s: None)
    failed = {name for name, ok, _ in report.checks if not ok}
    assert {"initial loss", "activations 2", "overfit 20 samples"} <= failed, str(report)
    assert not report.passed


# -- --weights: a PyTorch or safetensors file's weights to start from ------------------------
def _lenet_state(seed):
    gf.manual_seed(seed)
    return models.lenet5().state_dict()


def test_weights_from_a_pytorch_file_start_the_run(tmp_path, capsys):
    """A state_dict written by torch.save (PyTorch's own LeNet-5 parameters, copied by name)
    starts the run: after zero training steps the saved model holds exactly those weights."""
    torch = pytest.importorskip("torch")
    state = _lenet_state(3)
    path = tmp_path / "lenet.pth"
    torch.save({k: torch.tensor(v.numpy()) for k, v in state.items()}, path)
    out = tmp_path / "run"
    assert main(["--subset", "100", "--epochs", "1", "--batch-size", "50",
                 "--weights", str(path), "--max-steps", "1", "--lr", "1e-9",
                 "--momentum", "0", "--out", str(out)]) == INTERRUPTED
    capsys.readouterr()
    saved = gf.load(out / "last.ckpt")["model"]
    for key, value in state.items():
        np.testing.assert_allclose(saved[key].numpy(), value.numpy(), atol=1e-6, err_msg=key)


def test_weights_from_safetensors_and_the_refusals(tmp_path, capsys):
    pytest.importorskip("safetensors")
    from gradflow.safetensors import save_file
    path = tmp_path / "lenet.safetensors"
    save_file(_lenet_state(4), path)
    out = tmp_path / "run"
    assert main(["--subset", "100", "--epochs", "1", "--batch-size", "50", "--weights",
                 str(path), "--out", str(out)]) == 0
    capsys.readouterr()
    _refused(capsys, ["--model", "mlp", "--weights", str(path), "--out", str(tmp_path / "b")],
             f"--weights {path}: ", "Unexpected key")
    _refused(capsys, ["--weights", str(tmp_path / "none.pth"), "--out", str(tmp_path / "c")],
             "--weights", "no such file")
    gf.save([1, 2], tmp_path / "list.ckpt")
    _refused(capsys, ["--weights", str(tmp_path / "list.ckpt"), "--out", str(tmp_path / "d")],
             "holds no state_dict", "list")
    _refused(capsys, ["--weights", str(path), "--resume", "--out", str(out)],
             "--weights starts a new run", "--resume")
