"""The training command's data: whole data sets as arrays, fixed splits, and batches shaped
for the model with the augmentation applied in the main thread (so a seed repeats a run)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets import CIFAR10, MNIST
from ..datasets.bundled import bundled_mnist
from ..random import cpu_rng

HOW_TO_GET = {
    "mnist": "train-images-idx3-ubyte.gz and the three others, as torchvision keeps them",
    "cifar10": "cifar-10-batches-py/, unpacked from "
               "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
}
VAL_SIZE = {"bundled": 1000, "mnist": 5000, "cifar10": 5000}
# Per-channel normalisation of each data set's [0, 1] pixels.
STATS = {"bundled": ([0.1307], [0.3081]), "mnist": ([0.1307], [0.3081]),
         "cifar10": ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])}


@dataclass
class Split:
    """Images as float32 (N, C, H, W) in [0, 1] and int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def load(dataset: str, root: str | None) -> tuple:
    """(train, val, test) Splits. The validation set is a fixed slice of the training data
    (the same for every seed); the test set is the data set's own test split, or for the
    bundled digits the 2,000 digits held out from training."""
    if dataset == "bundled":
        images, labels = (t.numpy() for t in bundled_mnist("train"))
        test = Split(*(t.numpy() for t in bundled_mnist("val")))
    else:
        if root is None:
            raise ValueError(f"--dataset {dataset} needs --data-dir, the folder holding the "
                             f"standard files ({HOW_TO_GET[dataset]})")
        images, labels = _read(dataset, Path(root), train=True)
        test = Split(*_read(dataset, Path(root), train=False))
    order = np.random.default_rng(12345).permutation(len(labels))
    val, train = order[:VAL_SIZE[dataset]], order[VAL_SIZE[dataset]:]
    return Split(images[train], labels[train]), Split(images[val], labels[val]), test


def sample(split: Split, n: int) -> Split:
    """A fixed sample of n of the split's images (the same for every seed), in their order;
    the whole split when it has no more."""
    if n >= len(split):
        return split
    keep = np.sort(np.random.default_rng(12345).permutation(len(split))[:n])
    return Split(split.images[keep], split.labels[keep])


def _read(dataset: str, root: Path, train: bool) -> tuple:
    if dataset == "mnist":
        digits = MNIST(root, train=train)
        images = digits.data.numpy()[:, None]
        labels = digits.targets.numpy()
    else:
        photos = CIFAR10(root, train=train)
        images = photos.data.transpose(0, 3, 1, 2)
        labels = np.asarray(photos.targets, np.int64)
    return np.ascontiguousarray(images, np.float32) / 255.0, labels.astype(np.int64)


def fit_to(batch: np.ndarray, shape: tuple) -> np.ndarray:
    """Reshape a (N, C, H, W) batch for a model that takes (C', H', W') inputs: repeat a grey
    channel to three (or average three to one), pad 28 to 32, and enlarge by an integer
    factor (nearest neighbour) when the model wants bigger images."""
    c, h, w = shape
    if batch.shape[1] != c:
        if batch.shape[1] == 1:
            batch = np.repeat(batch, c, axis=1)
        elif c == 1:
            batch = batch.mean(axis=1, keepdims=True)
    if batch.shape[2:] == (28, 28) and h % 32 == 0:
        batch = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    factor = h // batch.shape[2]
    if factor > 1 and batch.shape[2] * factor == h:
        batch = batch.repeat(factor, axis=2).repeat(factor, axis=3)
    if batch.shape[1:] != tuple(shape):
        raise ValueError(f"cannot fit images of shape {batch.shape[1:]} to the model's input "
                         f"{tuple(shape)}")
    return batch


def augment(batch: np.ndarray, flip: bool) -> np.ndarray:
    """Random crop after zero-padding by 4 pixels (2 for 28x28 digits) and, with `flip`, a
    random horizontal flip, per image, from gradflow's default generator."""
    rng = cpu_rng()
    n, _, h, w = batch.shape
    pad = 2 if h <= 28 else 4
    padded = np.pad(batch, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dy, dx = rng.integers(0, 2 * pad + 1, (n,)), rng.integers(0, 2 * pad + 1, (n,))
    out = np.empty_like(batch)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    if flip:
        mirrored = rng.random(n) < 0.5
        out[mirrored] = out[mirrored, :, :, ::-1]
    return out


def normalize(batch: np.ndarray, dataset: str) -> np.ndarray:
    mean, std = (np.asarray(v, np.float32) for v in STATS[dataset])
    if batch.shape[1] != len(mean):
        mean, std = np.full(batch.shape[1], mean.mean()), np.full(batch.shape[1], std.mean())
    return (batch - mean[:, None, None]) / std[:, None, None]
