"""Smoke tests: every script in examples/ and README's example run as a user would run them
(a fresh interpreter, from the command line) on tiny data, and print what they promise."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradflow.datasets.bundled import MNIST_DIR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run_python(args: list, cwd: Path) -> str:
    """Run python with `args` in `cwd`; the output, or a failure that shows it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited with {done.returncode}\n--- stdout\n"
                    f"{done.stdout}\n--- stderr\n{done.stderr}")
    return done.stdout


def mnist_folder(root: Path) -> Path:
    """The four standard MNIST files (the bundled test digits serving as both splits)."""
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            shutil.copy(MNIST_DIR / f"t10k-{kind}-ubyte.gz", root / f"{split}-{kind}-ubyte.gz")
    return root


def cifar_folder(root: Path) -> Path:
    """CIFAR-10's binary layout with 6 random images per file."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        records = rng.integers(0, 256, (6, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    return root


def image_folder(root: Path) -> Path:
    """train/ and val/ with three classes of small JPEG and PNG images of odd sizes."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog", "fox"):
            (root / split / cls).mkdir(parents=True)
            for i, ext in enumerate(("jpg", "png")):
                pixels = rng.integers(0, 256, (37 + 11 * i, 53, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i}.{ext}")
    return root


def percent(pattern: str, text: str) -> float:
    found = re.findall(pattern + r" ([\d.]+)%", text)
    assert found, f"no {pattern!r} figure in:\n{text}"
    return float(found[-1])


def test_mnist_lenet_bundled_and_from_files(tmp_path):
    out = run_python([str(EXAMPLES / "mnist_lenet.py"), "--epochs", "2", "--limit", "1000",
                      "--save", "w.pt"], tmp_path)
    assert percent("test accuracy", out) > 25, out  # chance is 10%
    assert (tmp_path / "w.pt").is_file()
    data = mnist_folder(tmp_path)
    out = run_python([str(EXAMPLES / "mnist_lenet.py"), "--data-dir", str(data), "--epochs",
                      "1", "--limit", "300"], tmp_path)
    assert "LeNet-5 on 300 MNIST digits" in out and "test accuracy" in out, out


def test_cifar10_vgg_reads_cifar_files(tmp_path):
    out = run_python([str(EXAMPLES / "cifar10_vgg.py"), "--data-dir", str(cifar_folder(tmp_path)),
                      "--epochs", "2", "--batch-size", "4", "--limit", "10"], tmp_path)
    assert "VGG-11-BN on 10 CIFAR-10 images" in out and "epoch 2: train loss" in out, out


def test_imagenet_alexnet_synthetic(tmp_path):
    out = run_python([str(EXAMPLES / "imagenet_alexnet.py"), "--synthetic", "--synthetic-size",
                      "8", "--classes", "7", "--batch-size", "4", "--epochs", "1"], tmp_path)
    assert "AlexNet on 8 images of 7 classes" in out and "top-5" in out, out


@pytest.mark.skipif(not _has("PIL"), reason="Pillow (a test extra) is not installed")
def test_imagenet_alexnet_image_folder(tmp_path):
    out = run_python([str(EXAMPLES / "imagenet_alexnet.py"), "--data-dir",
                      str(image_folder(tmp_path)), "--batch-size", "4", "--epochs", "1"],
                     tmp_path)
    assert "AlexNet on 6 images of 3 classes" in out and "validation top-1" in out, out


def test_custom_function(tmp_path):
    out = run_python([str(EXAMPLES / "custom_function.py"), "--steps", "30"], tmp_path)
    assert "gradcheck and gradgradcheck passed" in out and "step 30" in out, out


def test_hyperparameter_search(tmp_path):
    out = run_python([str(EXAMPLES / "hyperparameter_search.py"), "--trials", "3", "--epochs",
                      "1", "--limit", "400"], tmp_path)
    rates = [float(m) for m in re.findall(r"^\s+\d+\s+([\d.e+-]+)", out, re.M)]
    assert len(rates) == 3 and all(1e-3 <= r <= 1 for r in rates), out
    assert "the test set's only use" in out, out


def test_autoencoder(tmp_path):
    plot = ["--plot", "ae.png"] if _has("matplotlib") else []
    out = run_python([str(EXAMPLES / "autoencoder.py"), "--epochs", "1", "--limit", "300",
                      "--code", "4", *plot], tmp_path)
    assert "PCA with 4 components" in out, out
    assert not plot or (tmp_path / "ae.png").is_file()


def test_char_rnn_truncated_bptt_and_sampling(tmp_path):
    out = run_python([str(EXAMPLES / "char_rnn.py"), "--steps", "6", "--batch-size", "4",
                      "--seq-len", "16", "--embed", "8", "--hidden", "16", "--val-chars", "300",
                      "--sample-length", "40"], tmp_path)
    assert "step 6: train loss" in out and "validation loss" in out, out
    assert len(out.split("sample (temperature 0.8):\n")[1].rstrip("\n")) >= 30, out


def test_transformer_lm(tmp_path):
    out = run_python([str(EXAMPLES / "transformer_lm.py"), "--steps", "4", "--batch-size", "4",
                      "--context", "16", "--d-model", "16", "--heads", "2", "--val-batches",
                      "2", "--sample-length", "40"], tmp_path)
    assert "step 4: train loss" in out and "validation loss" in out, out
    assert len(out.split("sample (temperature 0.8):\n")[1].rstrip("\n")) >= 30, out


def test_readme_example_trains(tmp_path):
    """README's PyTorch-style example, exactly as printed there."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 1, "README should hold one python example"
    assert len(blocks[0].splitlines()) <= 32
    (tmp_path / "example.py").write_text(blocks[0])
    out = run_python(["example.py"], tmp_path)
    assert percent("test accuracy", out) > 90, out


def test_every_example_has_a_smoke_test():
    source = Path(__file__).read_text()
    missing = [p.name for p in EXAMPLES.glob("*.py") if f'"{p.name}"' not in source]
    assert not missing, f"examples without a smoke test here: {missing}"
