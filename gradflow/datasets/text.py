"""The offline text data set: Tiny Shakespeare (char-rnn's compilation, 1,115,394 characters)
shipped gzip-compressed inside the package, checked against its SHA-256 sums, with a character
vocabulary and char-rnn's split (the first 90% to train, the last 10% to validate)."""
from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path

import numpy as np

from ..tensor import Tensor
from ..utils.data import Dataset

SHAKESPEARE_DIR = Path(__file__).resolve().parent / "data" / "tinyshakespeare"
TRAIN_FRACTION = 0.9
_ARCHIVE, _TEXT = "input.txt.gz", "input.txt"  # the shipped file, the text inside it
_REINSTALL = "the package data is corrupt, reinstall gradflow"


def _sums() -> dict:
    """{file name: SHA-256} from SHA256SUMS."""
    path = SHAKESPEARE_DIR / "SHA256SUMS"
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 2:
            raise RuntimeError(f"TinyShakespeare: {path} line {number} is {line!r}, expected "
                               f"'<sha256> <file name>'; {_REINSTALL}")
        sums[fields[1]] = fields[0]
    for name in (_ARCHIVE, _TEXT):
        if name not in sums:
            raise RuntimeError(f"TinyShakespeare: {path} lists no SHA-256 for {name}; "
                               f"{_REINSTALL}")
    return sums


def _check(name: str, content: bytes, want: str) -> None:
    got = hashlib.sha256(content).hexdigest()
    if got != want:
        raise RuntimeError(f"TinyShakespeare: {name} has SHA-256 {got}, expected {want} "
                           f"(SHA256SUMS); {_REINSTALL}")


@functools.lru_cache(maxsize=1)
def load_text() -> str:
    """The whole bundled text, verified (the archive and the text it holds), read once."""
    sums = _sums()
    path = SHAKESPEARE_DIR / _ARCHIVE
    if not path.is_file():
        raise RuntimeError(f"TinyShakespeare: {path} is missing; {_REINSTALL}")
    packed = path.read_bytes()
    _check(str(path), packed, sums[_ARCHIVE])
    raw = gzip.decompress(packed)
    _check(f"{path} (decompressed)", raw, sums[_TEXT])
    return raw.decode("ascii")


class TinyShakespeare(Dataset):
    """Tiny Shakespeare as (input, target) pairs of `seq_len` character indices, the target
    the input shifted by one character (what a character language model learns).

    split: 'train' (the first 90% of the text), 'val' (the last 10%) or 'all'. The vocabulary
    is the sorted set of the whole text's characters (65), the same for every split. Item i is
    the i-th non-overlapping chunk: input text[i*L : i*L+L], target text[i*L+1 : i*L+L+1], as
    int64 tensors of length L = seq_len.
    """

    def __init__(self, split: str = "train", seq_len: int = 100) -> None:
        if split not in ("train", "val", "all"):
            raise ValueError(f"TinyShakespeare: split must be 'train', 'val' or 'all', got "
                             f"{split!r}")
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"TinyShakespeare: seq_len must be a positive int, got {seq_len!r}")
        text = load_text()
        self.vocab: list[str] = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.vocab)}
        self._table = np.full(128, -1, np.int64)
        self._table[[ord(c) for c in self.vocab]] = np.arange(len(self.vocab))
        cut = int(TRAIN_FRACTION * len(text))
        part = {"train": text[:cut], "val": text[cut:], "all": text}[split]
        self.split, self.seq_len = split, seq_len
        self.data = self.encode(part)
        self.data.flags.writeable = False

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """int64 indices of `text`'s characters; ValueError naming a character not in it."""
        codes = np.frombuffer(text.encode("ascii", errors="replace"), np.uint8)
        ids = self._table[codes] if codes.size else np.zeros(0, np.int64)
        if (ids < 0).any() or len(codes) != len(text):
            bad = sorted({c for c in text if c not in self.stoi})
            raise ValueError(f"TinyShakespeare.encode: characters {bad} are not in the "
                             f"vocabulary of {len(self.vocab)}")
        return ids

    def decode(self, ids) -> str:
        """The text of a sequence of indices (a list, an array or a 1-d tensor)."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return "".join(self.vocab[int(i)] for i in np.asarray(ids).reshape(-1))

    def chunks(self, seq_len: int | None = None) -> tuple:
        """(inputs, targets): int64 arrays N x L of every non-overlapping chunk of the split,
        the targets shifted by one character; L defaults to the data set's seq_len."""
        n = self.seq_len if seq_len is None else seq_len
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"TinyShakespeare.chunks: seq_len must be a positive int, got {n!r}")
        count = (len(self.data) - 1) // n
        return (self.data[:count * n].reshape(count, n),
                self.data[1:count * n + 1].reshape(count, n))

    def __len__(self) -> int:
        return (len(self.data) - 1) // self.seq_len

    def __getitem__(self, index: int) -> tuple:
        if not -len(self) <= index < len(self):
            raise IndexError(f"TinyShakespeare: index {index} is out of range for "
                             f"{len(self)} chunks")
        start = (index % len(self)) * self.seq_len
        chunk = self.data[start:start + self.seq_len + 1]
        return Tensor._wrap(chunk[:-1].copy()), Tensor._wrap(chunk[1:].copy())
