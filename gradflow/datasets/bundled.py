"""The offline default data set: the real MNIST test set (10,000 digits) shipped inside the
package, checked against its MD5s and split reproducibly into train and validation parts."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from .. import dtypes
from ..tensor import Tensor
from .mnist import load_mnist

MNIST_DIR = Path(__file__).resolve().parent / "data" / "mnist"
SPLIT_SIZES = {"train": 8000, "val": 2000}
_SPLIT_SEED = 0
_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # images, labels
_REINSTALL = "the package data is corrupt, reinstall gradflow"


def _verify_md5s() -> None:
    """Check the shipped files against MD5SUMS; every file the loader reads must be listed."""
    sums_path = MNIST_DIR / "MD5SUMS"
    sums = {}
    for number, line in enumerate(sums_path.read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 2:
            raise RuntimeError(f"bundled_mnist: {sums_path} line {number} is {line!r}, expected "
                               f"'<md5> <file name>'; {_REINSTALL}")
        sums[fields[1]] = fields[0]
    for name in _FILES:
        path = MNIST_DIR / name
        if name not in sums:
            raise RuntimeError(f"bundled_mnist: {sums_path} lists no MD5 for {name}; "
                               f"{_REINSTALL}")
        if not path.is_file():
            raise RuntimeError(f"bundled_mnist: {path} is missing; {_REINSTALL}")
        got = hashlib.md5(path.read_bytes()).hexdigest()
        if got != sums[name]:
            raise RuntimeError(f"bundled_mnist: {path} has MD5 {got}, expected {sums[name]} "
                               f"(MD5SUMS); {_REINSTALL}")


@functools.lru_cache(maxsize=1)
def _load_all() -> tuple:
    """(uint8 images 10000 x 28 x 28, int64 labels), verified, read once per process."""
    _verify_md5s()
    images, labels = load_mnist(*(MNIST_DIR / name for name in _FILES))
    labels = labels.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False  # the cache hands out views
    return images, labels


def split_indices(split: str) -> np.ndarray:
    """Sorted indices of `split` ('train', 'val' or 'all') into the 10,000 bundled digits."""
    if split == "all":
        return np.arange(sum(SPLIT_SIZES.values()))
    if split not in SPLIT_SIZES:
        raise ValueError(f"bundled_mnist: split must be 'train', 'val' or 'all', got {split!r}")
    # NOTE: RandomState's streams are frozen by NumPy's compatibility policy (Generator's may
    # change between releases), so this split is the same under every NumPy version.
    order = np.random.RandomState(_SPLIT_SEED).permutation(sum(SPLIT_SIZES.values()))
    start = 0 if split == "train" else SPLIT_SIZES["train"]
    return np.sort(order[start:start + SPLIT_SIZES[split]])


def bundled_mnist(split: str = "train", device: Any = None) -> tuple:
    """(images, labels) of the bundled MNIST digits, no download needed.

    split: 'train' (8,000 digits), 'val' (the other 2,000) or 'all' (10,000, file order); the
    split is fixed. images: float32 tensor N x 1 x 28 x 28 with values in [0, 1]; labels:
    int64 tensor N with values 0..9. Both are fresh tensors on `device` (default CPU), ready
    for `TensorDataset(*bundled_mnist('train'))`.
    """
    images, labels = _load_all()
    idx = split_indices(split)
    x = images[idx, None].astype(dtypes.float32)
    x /= 255
    out = (Tensor._wrap(x), Tensor._wrap(labels[idx]))
    return out if device is None else tuple(t.to(device) for t in out)
