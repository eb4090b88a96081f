"""CIFAR-10 from the python-version batches (read without running pickled code) or from the
binary release (torchvision.datasets.CIFAR10, without the download)."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .vision import NO_DOWNLOAD, VisionDataset

_PY_DIR, _BIN_DIR = "cifar-10-batches-py", "cifar-10-batches-bin"
_TRAIN, _TEST = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]
_IMAGE_BYTES = 3 * 32 * 32

# NOTE: pickles name a global (module.name) for every object they build, and loading one calls
# it; a hostile file can name os.system. CIFAR batches need only NumPy's array rebuilders:
# `_reconstruct` + ndarray + dtype (protocols 0-4; numpy 1 and 2 spell the module differently)
# and `_frombuffer` (protocol 5, for batches re-saved by current Python). Each name maps to the
# object taken from the loaded NumPy itself, so no module is ever imported by name.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list, so it was not loaded."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and NumPy arrays; refuses every other global."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # the batches were pickled by Python 2
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._path}: refusing to load global '{module}.{name}': CIFAR batches hold "
                "only dicts, lists, bytes, ints and NumPy arrays, so this file is not one (and "
                "loading it could run code)") from None


def _check_batch(path: Path, data: Any, labels: Any) -> tuple:
    data, labels = np.asarray(data), np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _IMAGE_BYTES:
        raise ValueError(f"{path}: expected uint8 data of shape (N, {_IMAGE_BYTES}), got "
                         f"{data.dtype} {data.shape}")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: expected {len(data)} integer labels, got {labels.dtype} "
                         f"{labels.shape}")
    if len(labels) and not 0 <= labels.min() <= labels.max() <= 9:
        raise ValueError(f"{path}: labels outside 0..9 (min {labels.min()}, max "
                         f"{labels.max()}); the file is corrupt")
    return data, labels


def read_python_batch(path: Path) -> tuple:
    """(uint8 data N x 3072, labels N) from a cifar-10-batches-py file, with the allow-list."""
    try:
        with open(path, "rb") as f:
            entry = _ArrayOnlyUnpickler(f, path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, OverflowError, RecursionError, SystemError) as err:
        # NOTE: a damaged opcode stream fails in many ways (APPEND on a dict raises
        # AttributeError, a bad memo index KeyError, a mangled dtype state SystemError inside
        # NumPy 2.4's dtype.__setstate__); each means the file is not a batch.
        raise ValueError(f"{path}: truncated or not a CIFAR-10 batch ({type(err).__name__}: "
                         f"{err})") from None
    except MemoryError:
        raise ValueError(f"{path}: truncated or not a CIFAR-10 batch (it declares an object "
                         "larger than memory)") from None
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(entry).__name__}")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or "labels" not in entry:
        raise ValueError(f"{path}: a CIFAR-10 batch needs 'data' and 'labels' keys, found "
                         f"{sorted(map(str, entry))}")
    return _check_batch(path, entry["data"], entry["labels"])


def read_binary_batch(path: Path) -> tuple:
    """(uint8 data N x 3072, labels N) from a cifar-10-batches-bin file: records of one label
    byte and 3072 pixel bytes."""
    raw = np.frombuffer(path.read_bytes(), np.uint8)
    if raw.size == 0 or raw.size % (_IMAGE_BYTES + 1):
        raise ValueError(f"{path}: truncated: {raw.size} bytes is not a whole, non-zero number "
                         f"of {_IMAGE_BYTES + 1}-byte records")
    records = raw.reshape(-1, _IMAGE_BYTES + 1)
    return _check_batch(path, records[:, 1:], records[:, 0])


class CIFAR10(VisionDataset):
    """CIFAR-10: sample i is (32 x 32 x 3 uint8 NumPy image, int label).

    Reads `root`/cifar-10-batches-py (data_batch_1..5, test_batch) or, failing that,
    `root`/cifar-10-batches-bin (the same names + .bin). `data` is the uint8 N x 32 x 32 x 3
    array and `targets` the list of labels, as in torchvision. `download` is accepted for
    torchvision's signature; nothing is downloaded.
    """

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]

    def __init__(self, root: str | Path, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, transform, target_transform)
        self.train = train
        names = _TRAIN if train else _TEST
        if (self.root / _PY_DIR).is_dir():
            paths, read = [self.root / _PY_DIR / n for n in names], read_python_batch
        elif (self.root / _BIN_DIR).is_dir():
            paths, read = [self.root / _BIN_DIR / f"{n}.bin" for n in names], read_binary_batch
        else:
            raise FileNotFoundError(f"CIFAR10: neither {_PY_DIR} nor {_BIN_DIR} found in "
                                    f"{self.root}; " + NO_DOWNLOAD)
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"CIFAR10: {path} is missing")
        batches = [read(path) for path in paths]
        planes = np.concatenate([data for data, _ in batches]).reshape(-1, 3, 32, 32)
        self.data = np.ascontiguousarray(planes.transpose(0, 2, 3, 1))
        self.targets = [int(t) for _, labels in batches for t in labels]

    def __getitem__(self, index: int) -> tuple:
        return self._sample(self.data[index], self.targets[index])

    def __len__(self) -> int:
        return len(self.data)
