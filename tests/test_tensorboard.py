"""gradflow.utils.tensorboard.SummaryWriter and `python -m gradflow.train --tensorboard`: what
they write is read back by TensorBoard's own EventAccumulator (and compared with what
torch.utils.tensorboard writes, where torch is installed)."""
import importlib
import importlib.util
import os
import socket
import struct
import sys
import zlib

import numpy as np
import pytest

import gradflow as gf
from gradflow.train import main

HAS_TB = importlib.util.find_spec("tensorboard") is not None
needs_tb = pytest.mark.skipif(not HAS_TB, reason="tensorboard is not installed (pip install "
                                                 "'gradflow[tensorboard]')")
TINY = ["--model", "mlp", "--subset", "100", "--epochs", "2", "--batch-size", "50"]


def _read(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0,
                                                         "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _writer(tmp_path, **kwargs):
    from gradflow.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(tmp_path / "run"), **kwargs)


def _decode_png(data: bytes) -> np.ndarray:
    """The pixels of a PNG with 8-bit RGB(A) rows, each row's filter byte 0 (what we write)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == \
            zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {2: 3, 6: 4}[color]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, -1)
    assert depth == 8 and (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, channels)


@needs_tb
def test_scalars_read_back_by_tensorboard(tmp_path):
    with _writer(tmp_path) as w:
        for step in range(5):
            w.add_scalar("loss", 1.0 / (step + 1), step)
        w.add_scalar("tensor", gf.tensor([2.5]), 7)
        w.add_scalar("numpy", np.float64(3.25), 8, walltime=123.0)
    acc = _read(tmp_path / "run")
    events = acc.Scalars("loss")
    assert [e.step for e in events] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([e.value for e in events], [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5],
                               rtol=1e-6)
    assert [(e.step, e.value) for e in acc.Scalars("tensor")] == [(7, 2.5)]
    assert [(e.step, e.value, e.wall_time) for e in acc.Scalars("numpy")] == \
        [(8, 3.25, 123.0)]


@needs_tb
def test_add_scalars_writes_one_run_per_key_like_torch(tmp_path):
    with _writer(tmp_path) as w:
        w.add_scalars("loss/all", {"train": 0.5, "val": 0.75}, 3)
    for key, value in (("train", 0.5), ("val", 0.75)):
        acc = _read(tmp_path / "run" / f"loss_all_{key}")
        assert [(e.step, e.value) for e in acc.Scalars("loss/all")] == [(3, value)]


@needs_tb
def test_histogram_matches_torchs_and_reads_back(tmp_path):
    values = np.random.default_rng(0).standard_normal(500).astype(np.float32)
    with _writer(tmp_path) as w:
        w.add_histogram("w", gf.tensor(values), 2)
        w.add_histogram("w_auto", values, 2, bins="auto", max_bins=5)
    acc = _read(tmp_path / "run")
    (event,) = acc.Histograms("w")
    h = event.histogram_value
    assert event.step == 2 and h.num == 500
    np.testing.assert_allclose([h.min, h.max, h.sum, h.sum_squares],
                               [values.min(), values.max(), values.astype(float).sum(),
                                (values.astype(float) ** 2).sum()], rtol=1e-6)
    assert sum(h.bucket) == 500 and len(h.bucket) == len(h.bucket_limit)
    assert sum(acc.Histograms("w_auto")[0].histogram_value.bucket) == 500
    torch_summary = pytest.importorskip("torch.utils.tensorboard.summary")
    from gradflow.utils.tensorboard import SummaryWriter, _histogram
    bins = SummaryWriter(str(tmp_path / "other")).default_bins
    theirs = torch_summary.histogram("w", values, bins).value[0].histo
    assert _histogram(values, bins, None) == theirs
    theirs = torch_summary.histogram("w", values, "auto", max_bins=5).value[0].histo
    assert _histogram(values, "auto", 5) == theirs


@needs_tb
def test_images_in_each_layout(tmp_path):
    rng = np.random.default_rng(1)
    chw = rng.random((3, 4, 5)).astype(np.float32)
    hwc = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    grey = rng.random((4, 5)).astype(np.float32)
    rgba = rng.random((4, 4, 5)).astype(np.float32)
    with _writer(tmp_path) as w:
        w.add_image("chw", gf.tensor(chw), 1)
        w.add_image("hwc", hwc, 1, dataformats="HWC")
        w.add_image("grey", grey, 1, dataformats="HW")
        w.add_image("rgba", rgba, 1)
        w.add_image("one channel", grey[None], 1)
    acc = _read(tmp_path / "run")
    expected = {"chw": (chw.transpose(1, 2, 0) * 255).astype(np.uint8), "hwc": hwc,
                "grey": np.repeat((grey * 255).astype(np.uint8)[:, :, None], 3, axis=2),
                "rgba": (rgba.transpose(1, 2, 0) * 255).astype(np.uint8)}
    expected["one channel"] = expected["grey"]
    for tag, pixels in expected.items():
        (event,) = acc.Images(tag)
        assert (event.height, event.width, event.step) == (4, 5, 1)
        np.testing.assert_array_equal(_decode_png(event.encoded_image_string), pixels,
                                      err_msg=tag)


@needs_tb
def test_text_and_hparams(tmp_path):
    with _writer(tmp_path) as w:
        w.add_text("notes", "**lr** 0.1", 4)
        w.add_hparams({"lr": 0.1, "optimizer": "sgd", "nesterov": True, "batch": 64},
                      {"hparam/accuracy": 0.9}, run_name="trial")
    acc = _read(tmp_path / "run")
    (event,) = acc.Tensors("notes/text_summary")
    assert event.step == 4 and event.tensor_proto.string_val == [b"**lr** 0.1"]
    trial = _read(tmp_path / "run" / "trial")
    from tensorboard.plugins.hparams import metadata
    content = trial.PluginTagToContent(metadata.PLUGIN_NAME)
    assert set(content) == {metadata.EXPERIMENT_TAG, metadata.SESSION_START_INFO_TAG,
                            metadata.SESSION_END_INFO_TAG}
    start = metadata.parse_session_start_info_plugin_data(
        content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["lr"].number_value == 0.1
    assert start.hparams["optimizer"].string_value == "sgd"
    assert start.hparams["nesterov"].number_value == 1.0  # torch writes bools as numbers
    assert start.hparams["batch"].number_value == 64
    assert [(e.step, e.value) for e in trial.Scalars("hparam/accuracy")] == \
        [(0, pytest.approx(0.9))]


@needs_tb
def test_hparams_summaries_match_torchs():
    torch_summary = pytest.importorskip("torch.utils.tensorboard.summary")
    from gradflow.utils.tensorboard import _hparams
    args = ({"lr": 0.1, "opt": "adam", "flag": False, "n": 3}, {"acc": 1.0},
            {"opt": ["adam", "sgd"], "n": [3, 5]})
    assert _hparams(*args) == torch_summary.hparams(*args)


@needs_tb
def test_purge_step_flush_close_and_reopen(tmp_path):
    w = _writer(tmp_path, purge_step=3, filename_suffix=".gf")
    w.add_scalar("x", 1.0, 3)
    w.flush()
    assert [(e.step, e.value) for e in _read(tmp_path / "run").Scalars("x")] == [(3, 1.0)]
    w.close()
    w.close()  # a second close does nothing
    w.add_scalar("x", 2.0, 4)  # reopens, in a new event file
    w.close()
    files = sorted(os.listdir(tmp_path / "run"))
    assert len(files) == 2 and all(f.endswith(".gf") and "tfevents" in f for f in files)
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    events = [e for f in files for e in EventFileLoader(str(tmp_path / "run" / f)).Load()]
    starts = [e.step for e in events if e.session_log.status == e.session_log.START]
    assert starts == [3], "purge_step writes one session start, at that step, in the first file"


@needs_tb
def test_default_log_dir_is_runs_date_host_comment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from gradflow.utils.tensorboard import SummaryWriter
    with SummaryWriter(comment="_lr0.1") as w:
        log_dir = w.get_logdir()
    assert log_dir.startswith("runs" + os.sep)
    assert log_dir.endswith("_" + socket.gethostname() + "_lr0.1")
    assert (tmp_path / log_dir).is_dir()


@needs_tb
def test_bad_values_are_named(tmp_path):
    with _writer(tmp_path) as w:
        with pytest.raises(ValueError, match="add_scalar: 'loss' needs one value, got shape "
                                             r"\(3,\)"):
            w.add_scalar("loss", gf.ones(3))
        with pytest.raises(TypeError, match="add_scalar: expected a tensor, array or number, "
                                            "got str"):
            w.add_scalar("loss", "high")
        with pytest.raises(ValueError, match="add_image: dataformats must be 'CHW', 'HWC' or "
                                             "'HW'"):
            w.add_image("img", np.zeros((2, 3, 4, 4)), dataformats="NCHW")
        with pytest.raises(ValueError, match=r"add_image: dataformats 'CHW' needs a 3-D image, "
                                             r"got shape \(4, 4\)"):
            w.add_image("img", np.zeros((4, 4)))
        with pytest.raises(ValueError, match="add_image: an image has 1, 3 or 4 channels, "
                                             "got 2"):
            w.add_image("img", np.zeros((2, 4, 4)))
        with pytest.raises(ValueError, match="add_histogram: the values are empty"):
            w.add_histogram("h", np.zeros(0))
        with pytest.raises(ValueError, match="add_histogram: the values hold NaN"):
            w.add_histogram("h", np.array([1.0, np.nan]))
        with pytest.raises(TypeError, match="add_hparams: hparam_dict and metric_dict must "
                                            "be dicts"):
            w.add_hparams([("lr", 0.1)], {})
        with pytest.raises(ValueError, match=r"add_hparams: hparam_dict\['lr'\] must be a "
                                             "bool, str, number"):
            w.add_hparams({"lr": [0.1, 0.2]}, {})


@needs_tb
def test_gpu_tensors_are_logged(fake_cuda, tmp_path):
    with _writer(tmp_path) as w:
        w.add_scalar("loss", gf.tensor(0.5, device="cuda"), 1)
        w.add_histogram("w", gf.arange(10.0, device="cuda:1"), 1)
        w.add_image("img", gf.ones(1, 2, 2, device="cuda"), 1)
    acc = _read(tmp_path / "run")
    assert acc.Scalars("loss")[0].value == 0.5
    assert acc.Histograms("w")[0].histogram_value.num == 10
    assert (_decode_png(acc.Images("img")[0].encoded_image_string) == 255).all()


@pytest.fixture
def no_tensorboard(monkeypatch):
    """`import tensorboard` (and its submodules, even those loaded already) fails."""
    for name in [n for n in sys.modules if n == "tensorboard" or n.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.delitem(sys.modules, "gradflow.utils.tensorboard", raising=False)


def test_missing_tensorboard_names_the_extra(no_tensorboard):
    with pytest.raises(ImportError, match=r"gradflow.utils.tensorboard needs the tensorboard "
                                          r"package .*pip install 'gradflow\[tensorboard\]'"):
        importlib.import_module("gradflow.utils.tensorboard")


def test_train_without_tensorboard_is_one_line(tmp_path, capsys, no_tensorboard):
    argv = TINY + ["--out", str(tmp_path / "out"), "--tensorboard", str(tmp_path / "tb")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m gradflow.train: error: --tensorboard: ") and \
        err.count("\n") == 1, err
    assert "pip install 'gradflow[tensorboard]'" in err


@needs_tb
def test_train_logs_losses_accuracy_lr_and_weights(tmp_path, capsys):
    board = tmp_path / "tb"
    argv = TINY + ["--out", str(tmp_path / "out"), "--tensorboard", str(board)]
    assert main(argv + ["--max-steps", "3"]) == 130  # stops inside epoch 2
    assert main(argv + ["--resume"]) == 0
    acc = _read(board)  # two event files: the stopped run's and the resumed one's
    history = gf.load(tmp_path / "out" / "last.ckpt")["history"]
    for tag, key in (("train/loss", "train_loss"), ("train/accuracy", "train_acc"),
                     ("val/loss", "val_loss"), ("val/accuracy", "val_acc"), ("lr", "lr")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2], tag
        np.testing.assert_allclose([e.value for e in events], [r[key] for r in history],
                                   rtol=1e-6, err_msg=tag)
    names = [name for name, _ in gf.nn.Sequential(gf.nn.Flatten(), gf.nn.Linear(784, 512),
                                                  gf.nn.ReLU(), gf.nn.Linear(512, 256),
                                                  gf.nn.ReLU(), gf.nn.Linear(256, 10))
             .named_parameters()]
    for name in names:
        assert [e.step for e in acc.Histograms(name)] == [1, 2], name
    assert [e.step for e in acc.Scalars("test/accuracy")] == [2]
