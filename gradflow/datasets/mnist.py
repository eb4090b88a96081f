"""MNIST from the standard IDX files (torchvision.datasets.MNIST, without the download)."""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ..creation import from_numpy
from .vision import NO_DOWNLOAD, VisionDataset

IMAGES_MAGIC = 0x00000803  # uint8, 3 dims
LABELS_MAGIC = 0x00000801  # uint8, 1 dim
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{path}: truncated or corrupt gzip file ({err})") from None


def read_idx(path: str | Path, magic: int | None = None) -> np.ndarray:
    """Parse an IDX file (gzipped if its name ends in .gz) into a native-order NumPy array.

    The header is a big-endian magic number (0, 0, dtype code, number of dims) and the dims as
    big-endian int32; `magic`, if given, must match. Truncated files, bad magic numbers and
    trailing bytes raise ValueError naming the file.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(raw)} bytes, shorter than the "
                         "4-byte magic number)")
    found = int.from_bytes(raw[:4], "big")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in _IDX_DTYPES or (magic is not None and found != magic):
        wanted = f"0x{magic:08x}" if magic is not None else "0x0000TTNN with a known type TT"
        raise ValueError(f"{path}: bad IDX magic number 0x{found:08x}, expected {wanted}; "
                         "not an IDX file of the expected kind")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dims need "
                         f"{start})")
    shape = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = np.dtype(_IDX_DTYPES[code])
    # NOTE: math.prod, not np.prod: a product of uint32 dims can overflow int64 and wrap to
    # a size that matches a short file.
    expected, found_bytes = math.prod(shape) * dtype.itemsize, len(raw) - start
    if found_bytes != expected:
        problem = "truncated" if found_bytes < expected else "has trailing bytes"
        raise ValueError(f"{path}: {problem}: the header gives shape {shape} ({expected} data "
                         f"bytes) but the file holds {found_bytes}")
    try:
        array = np.frombuffer(raw, dtype, offset=start).reshape(shape)
    except ValueError as err:  # e.g. more dims than NumPy supports
        raise ValueError(f"{path}: cannot hold an IDX array of shape {shape} ({err})") from None
    return array.astype(dtype.newbyteorder("="))


def find_file(name: str, folders: list) -> Path:
    """The first of `folders` holding `name` or `name`.gz."""
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{name}[.gz] not found in {', '.join(map(str, folders))}; "
                            + NO_DOWNLOAD)


def load_mnist(images_path: Path, labels_path: Path) -> tuple:
    """(uint8 images N x H x W, uint8 labels N) from a pair of MNIST IDX files, checked."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise ValueError(f"MNIST: {images_path} holds {len(images)} images but {labels_path} "
                         f"holds {len(labels)} labels")
    return images, labels


class MNIST(VisionDataset):
    """The MNIST digits: sample i is (28 x 28 uint8 NumPy image, int label); ToTensor makes
    the image a 1 x 28 x 28 float tensor.

    Looks for train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz] (or the t10k- files
    when train=False) in `root` and in `root`/MNIST/raw (torchvision's layout). `data` (uint8
    N x 28 x 28) and `targets` (int64 N) hold everything as tensors, for batch pipelines.
    `download` is accepted for torchvision's signature; nothing is downloaded.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root: str | Path, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, transform, target_transform)
        self.train = train
        folders = [self.root, self.root / "MNIST" / "raw"]
        prefix = "train" if train else "t10k"
        self._images, labels = load_mnist(find_file(f"{prefix}-images-idx3-ubyte", folders),
                                          find_file(f"{prefix}-labels-idx1-ubyte", folders))
        self._labels = labels.astype(np.int64)
        self.data = from_numpy(self._images)
        self.targets = from_numpy(self._labels)

    def __getitem__(self, index: int) -> tuple:
        return self._sample(self._images[index], int(self._labels[index]))

    def __len__(self) -> int:
        return len(self._labels)
