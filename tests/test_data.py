"""Data loading: datasets, samplers and DataLoader against torch.utils.data; the prefetch
thread; transforms against NumPy; the MNIST, CIFAR-10 and ImageFolder readers; the bundled
MNIST split."""
from __future__ import annotations

import collections
import gzip
import hashlib
import os
import pickle
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import require_torch, to_numpy

import gradflow as gf
from gradflow import transforms as T
from gradflow.datasets import CIFAR10, MNIST, ImageFolder, bundled, bundled_mnist, read_idx
from gradflow.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    random_split,
)

MNIST_DIR = bundled.MNIST_DIR
TEST_HISTOGRAM = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # MNIST t10k labels


def assert_same_batch(ours, theirs, float_dtype_differs=False):
    """Recursively compare a gradflow batch with a torch one: structure, dtypes, values."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), f"{ours} vs {theirs}"
        for key in theirs:
            assert_same_batch(ours[key], theirs[key], float_dtype_differs)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs), f"{type(ours).__name__} vs {type(theirs).__name__}"
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            assert_same_batch(o, t, float_dtype_differs)
    else:
        expect = to_numpy(theirs)
        got = to_numpy(ours)
        # NOTE: torch collates Python floats to float64; gradflow to its default float32.
        if not (float_dtype_differs and expect.dtype == np.float64):
            assert got.dtype == expect.dtype, f"dtype {got.dtype} vs torch {expect.dtype}"
        np.testing.assert_allclose(got, expect, rtol=1e-6, err_msg="batch differs from torch")


class Records(Dataset):
    """A per-sample dataset mixing arrays, ints, floats and dicts (the generic collate path)."""

    def __init__(self, n):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((n, 3)).astype(np.float32)
        self.y = rng.integers(0, 5, n)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i]), {"w": float(self.x[i, 0]), "id": [i, 2 * i]}

    def __len__(self):
        return len(self.y)


def _tensor_pair(n=23):
    x = np.random.default_rng(1).standard_normal((n, 2, 3)).astype(np.float32)
    y = np.arange(n, dtype=np.int64) % 7
    return x, y


# -- datasets ------------------------------------------------------------------------------------
def test_tensor_dataset_checks_first_dims():
    with pytest.raises(ValueError, match=r"first dimensions are \[4, 3\].*\(4, 2\), \(3,\)"):
        TensorDataset(gf.zeros(4, 2), gf.zeros(3))
    ds = TensorDataset(gf.arange(5), gf.arange(5) * 10)
    assert len(ds) == 5
    assert [int(v) for v in ds[3]] == [3, 30]


def test_concat_and_subset_match_torch():
    th = require_torch()
    parts = [list(range(3)), list(range(10, 15)), list(range(20, 22))]
    ours = ConcatDataset(Subset(p, range(len(p))) for p in parts)
    theirs = th.utils.data.ConcatDataset(parts)
    assert len(ours) == len(theirs) == 10
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    for i in range(-10, 10):
        assert ours[i] == theirs[i]
    with pytest.raises(IndexError, match="index 10 is out of range.*length 10"):
        ours[10]
    both = Subset(parts[0], [2, 0]) + Subset(parts[2], [1])
    assert [both[i] for i in range(len(both))] == [2, 0, 21]


@pytest.mark.parametrize("n,lengths", [(10, [3, 7]), (10, [0.3, 0.7]), (11, [0.5, 0.5]),
                                       (7, [0.2, 0.2, 0.6]), (5, [0.1, 0.1, 0.8]),
                                       (100, [1 / 3] * 3), (4, [4, 0])])
def test_random_split_lengths_match_torch(n, lengths):
    th = require_torch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = random_split(list(range(n)), lengths, generator=gf.Generator().manual_seed(0))
    assert [str(w.message) for w in caught] == (
        ["random_split: length of split at index 1 is 0; this might result in an empty dataset"]
        if n == 5 else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own zero-length warning
        theirs = th.utils.data.random_split(list(range(n)), lengths,
                                            generator=th.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    values = sorted(v for s in ours for v in (s[i] for i in range(len(s))))
    assert values == list(range(n)), "splits must partition the dataset"


def test_random_split_errors_and_seeding():
    th = require_torch()
    for lengths in ([3, 3], [0.5, 0.6]):
        with pytest.raises(ValueError):
            th.utils.data.random_split(range(10), lengths)
        with pytest.raises(ValueError, match="sum of input lengths"):
            random_split(range(10), lengths)
    with pytest.raises(ValueError, match="fraction at index 1 is not between 0 and 1"):
        random_split(range(10), [0.5, 1.5, -1.0])
    first = [s.indices for s in random_split(range(50), [20, 30], gf.Generator().manual_seed(4))]
    again = [s.indices for s in random_split(range(50), [20, 30], gf.Generator().manual_seed(4))]
    assert first == again
    gf.manual_seed(9)
    a = random_split(range(50), [25, 25])[0].indices
    gf.manual_seed(9)
    assert random_split(range(50), [25, 25])[0].indices == a


# -- samplers ------------------------------------------------------------------------------------
def test_samplers():
    th = require_torch()
    data = list(range(10))
    assert list(SequentialSampler(data)) == data and len(SequentialSampler(data)) == 10
    g = gf.Generator().manual_seed(0)
    perm = list(RandomSampler(data, generator=g))
    assert sorted(perm) == data and perm != data and len(RandomSampler(data)) == 10
    long = list(RandomSampler(data, num_samples=25, generator=g))
    assert len(long) == 25 and sorted(long[:10]) == data and sorted(long[10:20]) == data
    drawn = list(RandomSampler(data, replacement=True, num_samples=200, generator=g))
    assert len(drawn) == 200 and set(drawn) == set(data)
    sub = list(SubsetRandomSampler([3, 5, 7, 9], generator=g))
    assert sorted(sub) == [3, 5, 7, 9]
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler([])
    for drop_last in (False, True):
        ours, theirs = BatchSampler(data, 4, drop_last), th.utils.data.BatchSampler(data, 4,
                                                                                    drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(data, 0, False)


# -- DataLoader against torch ------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 4, 23, 50])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("prefetch", [False, True])
def test_loader_matches_torch_on_tensor_dataset(batch_size, drop_last, prefetch):
    th = require_torch()
    x, y = _tensor_pair()
    order = list(np.random.default_rng(2).permutation(len(y)))
    ours = DataLoader(TensorDataset(gf.tensor(x), gf.tensor(y)), batch_size=batch_size,
                      sampler=order, drop_last=drop_last, prefetch=prefetch)
    theirs = th.utils.data.DataLoader(th.utils.data.TensorDataset(th.tensor(x), th.tensor(y)),
                                      batch_size=batch_size, sampler=order, drop_last=drop_last)
    assert len(ours) == len(theirs)
    got, want = list(ours), list(theirs)
    assert len(got) == len(want) == len(ours)
    for o, t in zip(got, want):
        assert_same_batch(o, t)


@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_matches_torch_on_mixed_samples(drop_last):
    th = require_torch()
    ds = Records(11)
    order = list(np.random.default_rng(3).permutation(11))
    ours = DataLoader(ds, batch_size=4, sampler=order, drop_last=drop_last)
    theirs = th.utils.data.DataLoader(ds, batch_size=4, sampler=order, drop_last=drop_last)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs, strict=True):
        assert_same_batch(o, t, float_dtype_differs=True)
        assert o[2]["w"].dtype == gf.float32


def test_loader_batch_sampler_and_collate_fn_match_torch():
    th = require_torch()
    ds = Records(9)
    groups = [[0, 8], [3], [1, 2, 4, 5, 6]]
    ours, theirs = DataLoader(ds, batch_sampler=groups), th.utils.data.DataLoader(
        ds, batch_sampler=groups)
    assert len(ours) == len(theirs) == 3
    for o, t in zip(ours, theirs, strict=True):
        assert_same_batch(o, t, float_dtype_differs=True)

    def ids(batch):
        return [sample[1] for sample in batch]

    assert list(DataLoader(ds, batch_size=4, collate_fn=ids)) == list(
        th.utils.data.DataLoader(ds, batch_size=4, collate_fn=ids))
    for bad in (dict(batch_size=2), dict(shuffle=True), dict(drop_last=True),
                dict(sampler=[0])):
        with pytest.raises(ValueError, match="mutually exclusive"):
            DataLoader(ds, batch_sampler=groups, **bad)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0], shuffle=True)


def test_tensor_dataset_fast_path_equals_per_sample_path():
    x, y = _tensor_pair(40)
    ds = TensorDataset(gf.tensor(x), gf.tensor(y))
    train, _ = random_split(ds, [30, 10], generator=gf.Generator().manual_seed(1))
    nested = Subset(train, list(range(29, -1, -2)))
    for data in (ds, train, nested):
        fast = DataLoader(data, batch_size=7)
        slow = DataLoader(data, batch_size=7, collate_fn=lambda b: default_collate(b))
        for f, s in zip(fast, slow, strict=True):
            assert isinstance(f, list) and len(f) == 2
            for a, b in zip(f, s):
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_shuffle_is_reproducible_and_covers_everything():
    ds = TensorDataset(gf.arange(100))

    def epoch(loader):
        return np.concatenate([to_numpy(b[0]) for b in loader]).tolist()

    loader = DataLoader(ds, batch_size=16, shuffle=True, generator=gf.Generator().manual_seed(5))
    first, second = epoch(loader), epoch(loader)
    assert sorted(first) == list(range(100)) and first != list(range(100))
    assert first != second, "each pass must draw a new order"
    again = DataLoader(ds, batch_size=16, shuffle=True, generator=gf.Generator().manual_seed(5))
    assert [epoch(again), epoch(again)] == [first, second]
    gf.manual_seed(11)
    a = epoch(DataLoader(ds, batch_size=16, shuffle=True))
    gf.manual_seed(11)
    assert epoch(DataLoader(ds, batch_size=16, shuffle=True)) == a


def test_default_collate_types():
    batch = default_collate([(1, 2.5, True, "a", np.array([1, 2], np.uint8)),
                             (3, 4.5, False, "b", np.array([3, 4], np.uint8))])
    ints, floats, bools, strings, arrays = batch
    assert (ints.dtype, floats.dtype, bools.dtype, arrays.dtype) == (
        gf.int64, gf.float32, gf.bool, gf.uint8)
    np.testing.assert_array_equal(to_numpy(arrays), [[1, 2], [3, 4]])
    assert strings == ["a", "b"]
    Point = collections.namedtuple("Point", "x y")
    p = default_collate([Point(1, gf.ones(2)), Point(2, gf.zeros(2))])
    assert isinstance(p, Point) and tuple(p.y.shape) == (2, 2)
    with pytest.raises(RuntimeError, match="equal size and on one device.*\\(3,\\).*entry 1"):
        default_collate([gf.ones(2), gf.ones(3)])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object()])


# -- the prefetch thread -------------------------------------------------------------------------
class Exploding(Dataset):
    def __init__(self, n, bad):
        self.n, self.bad = n, bad

    def __getitem__(self, i):
        if i == self.bad:
            raise KeyError(f"sample {i} is broken")
        return np.full(2, i, np.float32)

    def __len__(self):
        return self.n


@pytest.mark.parametrize("prefetch", [False, True])
def test_worker_errors_reach_the_caller(prefetch):
    loader = DataLoader(Exploding(20, bad=9), batch_size=4, prefetch=prefetch)
    seen = []
    with pytest.raises(KeyError, match="sample 9 is broken"):
        for batch in loader:
            seen.append(to_numpy(batch)[:, 0].tolist())
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_prefetch_thread_stops_on_break_and_at_the_end():
    loader = DataLoader(Exploding(10_000, bad=-1), batch_size=1)
    it = iter(loader)
    thread = it._thread
    for i, _ in enumerate(it):
        if i == 3:
            break
    assert thread.is_alive(), "the producer should still be ahead of the consumer"
    del it
    thread.join(timeout=5)
    assert not thread.is_alive(), "an abandoned iterator must stop its thread"

    it = iter(DataLoader(Exploding(10, bad=-1), batch_size=3))
    assert len(list(it)) == 4
    it._thread.join(timeout=5)
    assert not it._thread.is_alive()


@pytest.mark.parametrize("fast", [False, True])
def test_loader_places_batches_on_device(device, fast):
    x, y = _tensor_pair(10)
    ds = TensorDataset(gf.tensor(x), gf.tensor(y)) if fast else Records(10)
    batches = list(DataLoader(ds, batch_size=4, device=device))
    assert len(batches) == 3
    for batch in batches:
        tensors = batch if fast else [batch[0], batch[1], batch[2]["w"], *batch[2]["id"]]
        assert [t.device for t in tensors] == [gf.device(device)] * len(tensors)
        assert batch[1].dtype == gf.int64
    np.testing.assert_allclose(to_numpy(batches[0][0]), x[:4] if fast else ds.x[:4])


# -- transforms ----------------------------------------------------------------------------------
def test_to_tensor():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = T.ToTensor()(img)
    assert tuple(out.shape) == (3, 5, 7) and out.dtype == gf.float32
    np.testing.assert_allclose(to_numpy(out), img.transpose(2, 0, 1) / 255, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(T.ToTensor()(img[:, :, 0])), img[None, :, :, 0] / 255,
                               rtol=1e-6)
    floats = img.astype(np.float64)
    np.testing.assert_array_equal(to_numpy(T.ToTensor()(floats)), floats.transpose(2, 0, 1))
    batch = np.stack([img, img[::-1]])
    np.testing.assert_allclose(to_numpy(T.ToTensor()(batch)), batch.transpose(0, 3, 1, 2) / 255,
                               rtol=1e-6)
    with pytest.raises(TypeError, match="got a Tensor"):
        T.ToTensor()(out)


def test_normalize_image_and_batch(device):
    rng = np.random.default_rng(1)
    batch = rng.random((4, 3, 5, 6)).astype(np.float32)
    mean, std = np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.25, 2.0])
    want = (batch - mean[:, None, None]) / std[:, None, None]
    norm = T.Normalize(mean.tolist(), std.tolist())
    np.testing.assert_allclose(to_numpy(norm(gf.tensor(batch, device=device))), want, rtol=1e-6,
                               atol=1e-6)
    single = norm(gf.tensor(batch[2], device=device))
    assert single.device == gf.device(device)
    np.testing.assert_allclose(to_numpy(single), want[2], rtol=1e-6, atol=1e-6)
    x = gf.tensor(batch, device=device)
    assert T.Normalize(mean, std, inplace=True)(x) is x
    np.testing.assert_allclose(to_numpy(x), want, rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="float tensor"):
        norm(gf.zeros(3, 2, 2, dtype=gf.uint8))
    with pytest.raises(ValueError, match="3 means and 3 stds do not match the 2 channels"):
        norm(gf.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="contains a zero"):
        T.Normalize([0.0], [0.0])
    out = T.Compose([T.ToTensor(), T.Normalize([0.5], [0.5])])(np.full((2, 2), 255, np.uint8))
    np.testing.assert_allclose(to_numpy(out), np.ones((1, 2, 2)))


def _windows(padded, out):
    """The (top, left) of each output crop inside its padded image (asserting it is a window)."""
    n, _, h, w = out.shape
    found = []
    for i in range(n):
        top, left = np.argwhere(padded[i, 0] == out[i, 0, 0, 0])[0]
        np.testing.assert_array_equal(out[i], padded[i, :, top:top + h, left:left + w],
                                      err_msg=f"crop {i} is not a window of its padded image")
        found.append((top, left))
    return np.array(found)


def test_random_crop_batch_windows_and_statistics(device):
    n = 600
    images = np.arange(n * 2 * 6 * 6, dtype=np.float32).reshape(n, 2, 6, 6) + 1
    crop = T.RandomCrop(6, padding=2, generator=gf.Generator().manual_seed(0))
    out = to_numpy(crop(gf.tensor(images, device=device)))
    assert out.shape == (n, 2, 6, 6)
    # NOTE: a constant pad of zeros could make an all-zero window ambiguous; image values are
    # unique and positive, and every 6x6 window of the padded 10x10 keeps some image pixels,
    # so locate crops by their first non-padding pixel instead.
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    tops, lefts = [], []
    for i in range(n):
        r, c = np.argwhere(out[i, 0] > 0)[0]
        pr, pc = np.argwhere(padded[i, 0] == out[i, 0, r, c])[0]
        top, left = pr - r, pc - c
        np.testing.assert_array_equal(out[i], padded[i, :, top:top + 6, left:left + 6])
        tops.append(top)
        lefts.append(left)
    counts = np.bincount(np.array(tops) * 5 + np.array(lefts), minlength=25)
    assert counts.min() > 0, f"some of the 25 offsets never drawn: {counts}"
    assert counts.max() < 3 * n / 25, f"offsets far from uniform: {counts}"
    assert abs(np.corrcoef(tops[:-1], tops[1:])[0, 1]) < 0.15, "samples must be independent"
    again = T.RandomCrop(6, padding=2, generator=gf.Generator().manual_seed(0))
    np.testing.assert_array_equal(to_numpy(again(gf.tensor(images))), out,
                                  err_msg="a seed must give the same crops on every device")


def test_random_crop_single_image_padding_modes(device):
    img = np.random.default_rng(2).random((3, 5, 4)).astype(np.float32)
    x = gf.tensor(img, device=device)
    out = T.RandomCrop((3, 2))(x)
    assert tuple(out.shape) == (3, 3, 2) and out.device == gf.device(device)
    _windows(img[None], to_numpy(out)[None])
    for mode in ("constant", "edge", "reflect", "symmetric"):
        full = T.RandomCrop((5 + 3, 4 + 1 + 2), padding=(1, 2, 2, 1), padding_mode=mode,
                            **({"fill": 7.0} if mode == "constant" else {}))
        kwargs = {"constant_values": 7.0} if mode == "constant" else {}
        want = np.pad(img, ((0, 0), (2, 1), (1, 2)), mode=mode, **kwargs)
        np.testing.assert_allclose(to_numpy(full(x)), want, err_msg=f"padding_mode={mode}")
    grown = T.RandomCrop(7, pad_if_needed=True)(x)
    assert tuple(grown.shape) == (3, 7, 7)
    with pytest.raises(ValueError, match="crop size \\(6, 6\\) is larger than"):
        T.RandomCrop(6)(x)


def test_random_horizontal_flip(device):
    n = 4000
    images = np.random.default_rng(3).random((n, 1, 2, 3)).astype(np.float32)
    out = to_numpy(T.RandomHorizontalFlip(generator=gf.Generator().manual_seed(1))(
        gf.tensor(images, device=device)))
    flipped = np.all(out == images[..., ::-1], axis=(1, 2, 3))
    kept = np.all(out == images, axis=(1, 2, 3))
    assert np.all(flipped ^ kept), "every image is either flipped or kept"
    assert abs(flipped.mean() - 0.5) < 4 * 0.5 / np.sqrt(n), f"flip rate {flipped.mean()}"
    assert abs(np.corrcoef(flipped[:-1], flipped[1:])[0, 1]) < 0.1
    x = gf.tensor(images[0], device=device)
    np.testing.assert_array_equal(to_numpy(T.RandomHorizontalFlip(p=1.0)(x)),
                                  images[0][..., ::-1])
    np.testing.assert_array_equal(to_numpy(T.RandomHorizontalFlip(p=0.0)(x)), images[0])
    gf.manual_seed(4)
    a = to_numpy(T.RandomHorizontalFlip()(gf.tensor(images[:50])))
    gf.manual_seed(4)
    np.testing.assert_array_equal(to_numpy(T.RandomHorizontalFlip()(gf.tensor(images[:50]))), a)


def _torch_resize(images, size):
    """torch's bilinear reference: interpolate without antialiasing, half-pixel centres."""
    th = require_torch()
    return th.nn.functional.interpolate(th.tensor(images), size=size, mode="bilinear",
                                        align_corners=False, antialias=False).numpy()


def test_resize_matches_torch_interpolate(device):
    rng = np.random.default_rng(5)
    # (input shape, Resize size, expected output H x W): odd and prime sides, 1-pixel input
    # and output, up- and downscaling, non-square, and an int size that sets the shorter side.
    cases = [((2, 3, 7, 5), (13, 3), (13, 3)), ((1, 2, 11, 13), (5, 17), (5, 17)),
             ((2, 1, 1, 1), (4, 3), (4, 3)), ((1, 3, 6, 9), (1, 1), (1, 1)),
             ((1, 1, 1, 7), (3, 2), (3, 2)), ((2, 2, 5, 7), (5, 7), (5, 7)),
             ((2, 3, 6, 9), 4, (4, 6)), ((1, 2, 9, 6), [4], (6, 4)), ((1, 1, 7, 3), 5, (11, 5)),
             ((1, 1, 8, 8), 3, (3, 3)), ((1, 1, 2, 3), 5, (5, 7))]
    for shape, size, out_hw in cases:
        images = rng.random(shape).astype(np.float32)
        out = to_numpy(T.Resize(size)(gf.tensor(images, device=device)))
        assert out.shape == shape[:2] + out_hw, f"Resize({size}) of {shape} gave {out.shape}"
        np.testing.assert_allclose(out, _torch_resize(images, out_hw), rtol=1e-5, atol=1e-6,
                                   err_msg=f"Resize({size}) of shape {shape}")
    image = rng.random((3, 5, 4))
    single = T.Resize((7, 2))(gf.tensor(image, device=device))
    assert single.dtype == gf.float64 and single.device == gf.device(device)
    np.testing.assert_allclose(to_numpy(single), _torch_resize(image[None], (7, 2))[0],
                               rtol=1e-12)
    np.testing.assert_allclose(to_numpy(T.Resize((2, 6))(gf.tensor(image[0], device=device))),
                               _torch_resize(image[None, :1], (2, 6))[0, 0], rtol=1e-12)
    pixels = rng.integers(0, 256, (2, 3, 7, 9), dtype=np.uint8)
    rounded = np.round(_torch_resize(pixels.astype(np.float32), (4, 11)))
    np.testing.assert_array_equal(to_numpy(T.Resize((4, 11))(gf.tensor(pixels, device=device))),
                                  rounded.astype(np.uint8), err_msg="uint8 rounds like torchvision")


def test_resize_arguments():
    assert repr(T.Resize(4)) == "Resize(size=4, antialias=False)"
    assert T.Resize([3, 5]).size == (3, 5)
    x = gf.ones(1, 4, 4, requires_grad=True)
    assert not T.Resize(2)(x).requires_grad
    with pytest.raises(ValueError, match="Resize: antialias=True is not implemented"):
        T.Resize(4, antialias=True)
    with pytest.raises(ValueError, match=r"Resize: size should be positive, got \(3, 0\)"):
        T.Resize((3, 0))
    with pytest.raises(ValueError, match="Resize: size should be positive, got -2"):
        T.Resize(-2)
    with pytest.raises(ValueError, match=r"Resize: size should be an int or a sequence of 2 "
                                         r"ints, got \(1, 2, 3\)"):
        T.Resize((1, 2, 3))


def test_center_crop_slices_and_pads(device):
    img = np.arange(3 * 7 * 6, dtype=np.float32).reshape(3, 7, 6)
    x = gf.tensor(img, device=device)
    # NOTE: like torchvision, an odd margin's half is rounded by Python's round, halves to even:
    # margins 3 -> 2 (1.5), 5 -> 2 (2.5), 1 -> 0 (0.5).
    for size, window in [((3, 2), img[:, 2:5, 2:4]), ((4, 3), img[:, 2:6, 2:5]),
                         ((2, 5), img[:, 2:4, 0:5]), (5, img[:, 1:6, 0:5]), (1, img[:, 3:4, 2:3]),
                         ((7, 6), img)]:
        np.testing.assert_array_equal(to_numpy(T.CenterCrop(size)(x)), window,
                                      err_msg=f"CenterCrop({size})")
    np.testing.assert_array_equal(to_numpy(T.CenterCrop(8)(x)),
                                  np.pad(img, ((0, 0), (0, 1), (1, 1))),
                                  err_msg="a smaller image is zero-padded, the extra row last")
    np.testing.assert_array_equal(to_numpy(T.CenterCrop((9, 3))(x)),
                                  np.pad(img, ((0, 0), (1, 1), (0, 0)))[:, :, 2:5])
    batch = np.stack([img, -img])
    out = T.CenterCrop((3, 2))(gf.tensor(batch, device=device))
    assert out.device == gf.device(device)
    np.testing.assert_array_equal(to_numpy(out), batch[:, :, 2:5, 2:4])
    np.testing.assert_array_equal(to_numpy(T.CenterCrop(2)(gf.tensor(img[0], device=device))),
                                  img[0, 2:4, 2:4])
    T.Normalize([1.0], [1.0], inplace=True)(T.CenterCrop(2)(x))
    np.testing.assert_array_equal(to_numpy(x), img, err_msg="the crop must not alias its input")
    assert repr(T.CenterCrop(3)) == "CenterCrop(size=(3, 3))"
    with pytest.raises(ValueError, match=r"CenterCrop: size should be positive, got \(0, 2\)"):
        T.CenterCrop((0, 2))


def _all_resized_windows(images, size):
    """Every window (top, left, h, w) of every image, resized: {window: N x C x size}."""
    n, c, height, width = images.shape
    found = {}
    for h in range(1, height + 1):
        for w in range(1, width + 1):
            tops, lefts = np.meshgrid(np.arange(height - h + 1), np.arange(width - w + 1),
                                      indexing="ij")
            corners = list(zip(tops.ravel(), lefts.ravel()))
            crops = np.stack([images[:, :, t:t + h, s:s + w] for t, s in corners], axis=1)
            resized = to_numpy(T.Resize(size)(gf.tensor(crops.reshape(-1, c, h, w))))
            resized = resized.reshape((n, len(corners)) + resized.shape[1:])
            for k, (t, s) in enumerate(corners):
                found[(t, s, h, w)] = resized[:, k]
    return found


def test_random_resized_crop_outputs_resized_windows(device):
    n, height, width = 24, 6, 5
    images = np.random.default_rng(6).random((n, 2, height, width)).astype(np.float32)
    scale, ratio = (0.2, 0.9), (0.5, 2.0)
    crop = T.RandomResizedCrop((4, 3), scale, ratio, generator=gf.Generator().manual_seed(2))
    out = to_numpy(crop(gf.tensor(images, device=device)))
    assert out.shape == (n, 2, 4, 3)
    windows = _all_resized_windows(images, (4, 3))
    chosen = []
    for i in range(n):
        errors = {key: np.abs(resized[i] - out[i]).max() for key, resized in windows.items()}
        best = min(errors, key=errors.get)
        assert errors[best] < 1e-5, f"sample {i} is no resized window (closest {best})"
        chosen.append(best)
    _, _, h, w = np.array(chosen).T
    # NOTE: h and w are the drawn sides rounded, so bound the drawn area and ratio with half a
    # pixel of slack either way.
    area = height * width
    assert np.all(((h + 0.5) * (w + 0.5) >= scale[0] * area)
                  & ((h - 0.5) * (w - 0.5) <= scale[1] * area)), f"window sides {h} x {w}"
    assert np.all(((w + 0.5) / (h - 0.5) >= ratio[0])
                  & ((w - 0.5) / (h + 0.5) <= ratio[1])), f"window ratios {w / h}"
    assert len(set(chosen)) > n // 2, f"windows must vary per sample: {chosen}"
    again = T.RandomResizedCrop((4, 3), scale, ratio, generator=gf.Generator().manual_seed(2))
    np.testing.assert_allclose(to_numpy(again(gf.tensor(images))), out, rtol=1e-6, atol=1e-7,
                               err_msg="a seed must give the same crops on every device")
    same = np.repeat(images[:1], n, axis=0)
    out = to_numpy(crop(gf.tensor(same, device=device)))
    distinct = {out[i].tobytes() for i in range(n)}
    assert len(distinct) > n // 2, "identical images in a batch must get their own windows"


def test_random_resized_crop_whole_image_and_fallback(device):
    rng = np.random.default_rng(7)
    square = rng.random((3, 2, 7, 7)).astype(np.float32)
    whole = T.RandomResizedCrop(4, scale=(1, 1), ratio=(1, 1))
    np.testing.assert_allclose(to_numpy(whole(gf.tensor(square, device=device))),
                               to_numpy(T.Resize(4)(gf.tensor(square))), rtol=1e-6,
                               err_msg="scale=(1, 1), ratio=(1, 1) on a square is Resize")
    # NOTE: a full-area window of ratio 2 on 4 x 12 is about 5 x 10, too tall, so every draw
    # fails and torchvision's fallback crops the centre 4 x 8 (ratio 2); on 12 x 4 with ratio
    # 1 the full-area 7 x 7 is too wide, and the fallback is the centre 4 x 4.
    wide = rng.random((2, 1, 4, 12)).astype(np.float32)
    out = T.RandomResizedCrop((3, 5), scale=(1, 1), ratio=(2, 2))(gf.tensor(wide, device=device))
    np.testing.assert_allclose(to_numpy(out), _torch_resize(wide[:, :, :, 2:10], (3, 5)),
                               rtol=1e-5, atol=1e-6, err_msg="fallback on a wide image")
    tall = rng.random((2, 2, 12, 4)).astype(np.float32)
    out = T.RandomResizedCrop(2, scale=(1, 1), ratio=(1, 1))(gf.tensor(tall[0], device=device))
    np.testing.assert_allclose(to_numpy(out), _torch_resize(tall[:1, :, 4:8], (2, 2))[0],
                               rtol=1e-5, atol=1e-6, err_msg="fallback on a tall image")


def test_random_resized_crop_arguments():
    assert repr(T.RandomResizedCrop(3, ratio=(1, 2))) == (
        "RandomResizedCrop(size=(3, 3), scale=(0.08, 1.0), ratio=(1.0, 2.0))")
    with pytest.raises(ValueError, match=r"RandomResizedCrop: size should be positive, got 0"):
        T.RandomResizedCrop(0)
    with pytest.raises(ValueError, match=r"RandomResizedCrop: scale should be \(low, high\) "
                                         r"with 0 < low <= high, got \(0.9, 0.1\)"):
        T.RandomResizedCrop(3, scale=(0.9, 0.1))
    with pytest.raises(ValueError, match=r"RandomResizedCrop: ratio .* got \(0, 1\)"):
        T.RandomResizedCrop(3, ratio=(0, 1))
    with pytest.raises(ValueError, match=r"RandomResizedCrop: scale .* got \(0.1, 0.5, 1.0\)"):
        T.RandomResizedCrop(3, scale=(0.1, 0.5, 1.0))


# -- MNIST ---------------------------------------------------------------------------------------
def _gunzip(src: Path, dst: Path) -> Path:
    dst.write_bytes(gzip.decompress(src.read_bytes()))
    return dst


def test_mnist_reads_the_bundled_test_set():
    ds = MNIST(MNIST_DIR, train=False)
    assert len(ds) == 10_000
    assert tuple(ds.data.shape) == (10_000, 28, 28) and ds.data.dtype == gf.uint8
    assert ds.targets.dtype == gf.int64
    np.testing.assert_array_equal(np.bincount(to_numpy(ds.targets)), TEST_HISTOGRAM)
    raw = gzip.decompress((MNIST_DIR / "t10k-images-idx3-ubyte.gz").read_bytes())
    first = hashlib.md5(raw[16:16 + 784]).hexdigest()
    img, label = ds[0]
    assert img.shape == (28, 28) and img.dtype == np.uint8 and label == 7
    assert hashlib.md5(img.tobytes()).hexdigest() == first
    x, y = MNIST(MNIST_DIR, train=False, transform=T.ToTensor(),
                 target_transform=lambda t: t + 100)[0]
    assert tuple(x.shape) == (1, 28, 28) and x.dtype == gf.float32 and y == 107


def test_mnist_plain_files_and_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _gunzip(MNIST_DIR / "t10k-images-idx3-ubyte.gz", raw / "train-images-idx3-ubyte")
    _gunzip(MNIST_DIR / "t10k-labels-idx1-ubyte.gz", raw / "train-labels-idx1-ubyte")
    ds = MNIST(tmp_path)
    np.testing.assert_array_equal(to_numpy(ds.data), to_numpy(MNIST(MNIST_DIR, False).data))
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.*does not download"):
        MNIST(tmp_path, train=False, download=True)


def test_mnist_reports_corrupt_files(tmp_path):
    images = _gunzip(MNIST_DIR / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte")
    labels = _gunzip(MNIST_DIR / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte")
    good = images.read_bytes()

    images.write_bytes(good[:-100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated: .*7840000 data "
                                         r"bytes\) but the file holds 7839900"):
        MNIST(tmp_path, train=False)

    images.write_bytes(good[:2])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte: truncated IDX file"):
        MNIST(tmp_path, train=False)

    images.write_bytes(b"\0\0\x08\x01" + good[4:])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: bad IDX magic number "
                                         r"0x00000801, expected 0x00000803"):
        MNIST(tmp_path, train=False)

    images.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(ValueError, match="bad IDX magic number 0x12340803"):
        read_idx(images)

    images.write_bytes(good)
    raw_labels = labels.read_bytes()
    labels.write_bytes(raw_labels[:4] + (9999).to_bytes(4, "big") + raw_labels[8:-1])
    with pytest.raises(ValueError, match="holds 10000 images but .*t10k-labels-idx1-ubyte holds "
                                         "9999 labels"):
        MNIST(tmp_path, train=False)

    labels.unlink()
    gz = tmp_path / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()[:-40])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: truncated or corrupt gzip"):
        MNIST(tmp_path, train=False)


def test_read_idx_multibyte_types(tmp_path):
    values = (np.arange(6) - 3).reshape(2, 3)
    path = tmp_path / "ints-idx2"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + np.array([2, 3], ">u4").tobytes()
                     + values.astype(">i4").tobytes())
    out = read_idx(path)
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


# -- CIFAR-10 ------------------------------------------------------------------------------------
def _cifar_batch(seed, n):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()


def _write_cifar(root, protocol=4, str_keys=False):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    binary = root / "cifar-10-batches-bin"
    binary.mkdir()
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = _cifar_batch(i, 3 if i < 5 else 2)
        entry = {b"batch_label": b"synthetic", b"labels": labels, b"data": data,
                 b"filenames": [b"img%d.png" % j for j in range(len(labels))]}
        if str_keys:
            entry = {k.decode(): v for k, v in entry.items()}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=protocol))
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
        (binary / f"{name}.bin").write_bytes(records.tobytes())
    return folder


@pytest.mark.parametrize("protocol,str_keys", [(3, False), (4, False), (5, False), (4, True)])
def test_cifar10_reads_python_and_binary_batches(tmp_path, protocol, str_keys):
    _write_cifar(tmp_path, protocol, str_keys)
    train, test = CIFAR10(tmp_path), CIFAR10(tmp_path, train=False, transform=T.ToTensor())
    assert train.data.shape == (15, 32, 32, 3) and train.data.dtype == np.uint8
    assert len(train) == 15 and len(test) == 2
    data, labels = _cifar_batch(1, 3)
    # NOTE: a row is 1024 red, then 1024 green, then 1024 blue bytes, each plane row-major.
    np.testing.assert_array_equal(train.data[3:6], data.reshape(3, 3, 32, 32).transpose(0, 2, 3, 1))
    assert train.targets[3:6] == labels
    img, label = test[1]
    test_data, test_labels = _cifar_batch(5, 2)
    assert label == test_labels[1]
    np.testing.assert_allclose(to_numpy(img), test_data[1].reshape(3, 32, 32) / 255, rtol=1e-6)
    shutil.rmtree(tmp_path / "cifar-10-batches-py")
    binary = CIFAR10(tmp_path)
    np.testing.assert_array_equal(binary.data, train.data)
    assert binary.targets == train.targets


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["top", "nested"])
def test_cifar10_refuses_pickled_code(tmp_path, where):
    folder = _write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    evil = _Hostile(marker)
    payload = evil if where == "top" else {b"data": np.zeros((1, 3072), np.uint8),
                                           b"labels": [evil]}
    (folder / "data_batch_2").write_bytes(pickle.dumps(payload))
    with pytest.raises(pickle.UnpicklingError,
                       match=r"data_batch_2: refusing to load global '(posix|os|nt)\.system'"):
        CIFAR10(tmp_path)
    assert not marker.exists(), "the hostile pickle ran"


def test_cifar10_reports_corrupt_batches(tmp_path):
    folder = _write_cifar(tmp_path)
    good = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match="test_batch: truncated or not a CIFAR-10 batch"):
        CIFAR10(tmp_path, train=False)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 7), np.uint8),
                                                      b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"test_batch: expected uint8 data of shape \(N, 3072\)"):
        CIFAR10(tmp_path, train=False)
    shutil.rmtree(folder)
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(b"\0" * 3072)
    with pytest.raises(ValueError, match="test_batch.bin: truncated"):
        CIFAR10(tmp_path, train=False)
    with pytest.raises(FileNotFoundError, match="neither cifar-10-batches-py nor"):
        CIFAR10(tmp_path / "nowhere")


# -- ImageFolder ---------------------------------------------------------------------------------
def _has_pillow():
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def test_image_folder_with_a_custom_loader(tmp_path):
    for cls, count in (("dog", 2), ("cat", 3)):
        (tmp_path / cls / "sub").mkdir(parents=True)
        for i in range(count):
            np.save(tmp_path / cls / "sub" / f"{i}.npy", np.full((2, 2, 3), i, np.uint8))
        (tmp_path / cls / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path, transform=T.ToTensor(), loader=np.load,
                     is_valid_file=lambda p: p.endswith(".npy"))
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert ds.targets == [0, 0, 0, 1, 1] and len(ds) == 5
    img, target = ds[4]
    assert tuple(img.shape) == (3, 2, 2) and target == 1
    np.testing.assert_allclose(to_numpy(img), np.full((3, 2, 2), 1 / 255), rtol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no valid file for class 'empty'"):
        ImageFolder(tmp_path, loader=np.load, is_valid_file=lambda p: p.endswith(".npy"))


def test_image_folder_without_pillow_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # what `import PIL` meets without Pillow
    with pytest.raises(ImportError, match="needs Pillow.*pip install pillow"):
        ImageFolder(tmp_path)


@pytest.mark.skipif(not _has_pillow(), reason="Pillow is not installed")
def test_image_folder_decodes_images(tmp_path):
    from PIL import Image
    pixels = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.fromarray(pixels).save(tmp_path / cls / "x.png")
    img, target = ImageFolder(tmp_path)[1]
    assert target == 1
    np.testing.assert_array_equal(img, pixels)


# -- bundled MNIST -------------------------------------------------------------------------------
def test_bundled_split_sizes_and_reproducibility():
    x, y = bundled_mnist("train")
    vx, vy = bundled_mnist("val")
    assert tuple(x.shape) == (8000, 1, 28, 28) and tuple(vx.shape) == (2000, 1, 28, 28)
    assert (x.dtype, y.dtype, vx.dtype, vy.dtype) == (gf.float32, gf.int64, gf.float32, gf.int64)
    assert 0.0 == float(x.min()) and float(x.max()) == 1.0
    train_idx, val_idx = bundled.split_indices("train"), bundled.split_indices("val")
    assert np.intersect1d(train_idx, val_idx).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, val_idx])),
                                  np.arange(10_000))
    reference = MNIST(MNIST_DIR, train=False)
    np.testing.assert_allclose(to_numpy(vx)[:, 0], to_numpy(reference.data)[val_idx] / 255,
                               rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(y), to_numpy(reference.targets)[train_idx])
    assert np.bincount(to_numpy(vy), minlength=10).min() > 100
    again_x, again_y = bundled_mnist("train")
    np.testing.assert_array_equal(to_numpy(again_x), to_numpy(x))
    np.testing.assert_array_equal(to_numpy(again_y), to_numpy(y))
    assert again_x.array is not x.array, "each call must hand out fresh tensors"
    ax, ay = bundled_mnist("all")
    np.testing.assert_array_equal(to_numpy(ay), to_numpy(reference.targets))
    with pytest.raises(ValueError, match="split must be 'train', 'val' or 'all'"):
        bundled_mnist("test")


def test_bundled_files_match_the_shared_checksums():
    sums = dict(line.split()[::-1] for line in (MNIST_DIR / "MD5SUMS").read_text().splitlines())
    assert sums == {"t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
    assert "CC BY-SA 3.0" in (MNIST_DIR / "README.md").read_text()


def test_bundled_rejects_corrupt_package_data(tmp_path, monkeypatch):
    copy = tmp_path / "mnist"
    shutil.copytree(MNIST_DIR, copy)
    data = bytearray((copy / "t10k-labels-idx1-ubyte.gz").read_bytes())
    data[100] ^= 0xFF
    (copy / "t10k-labels-idx1-ubyte.gz").chmod(0o644)
    (copy / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    monkeypatch.setattr(bundled, "MNIST_DIR", copy)
    bundled._load_all.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="t10k-labels-idx1-ubyte.gz has MD5 .*expected "
                                               "ec29112dd5afa0611ce80d1b7f02629c"):
            bundled_mnist("val")
    finally:
        bundled._load_all.cache_clear()


def test_bundled_on_device(device):
    x, y = bundled_mnist("val", device=device)
    assert x.device == gf.device(device) and y.device == gf.device(device)


# -- damaged dataset files -----------------------------------------------------------------------
def _mnist_labels_gz(damage):
    """The bundled t10k labels as a .gz, damaged by `damage(gz_bytes, raw_bytes)`."""
    gz = (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()
    return damage(gz, gzip.decompress(gz))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


@pytest.mark.parametrize("damage, match", [
    (lambda gz, raw: gzip.compress(raw[:-1], mtime=0),
     r"t10k-labels-idx1-ubyte.gz: truncated: .*\(10000 data bytes\) but the file holds 9999"),
    (lambda gz, raw: gzip.compress(raw[:6], mtime=0),
     r"t10k-labels-idx1-ubyte.gz: truncated IDX header \(6 bytes, 1 dims need 8\)"),
    (lambda gz, raw: _flip(gz, len(gz) - 8),  # the CRC32 in the gzip trailer
     "t10k-labels-idx1-ubyte.gz: truncated or corrupt gzip file .*CRC check failed"),
    (lambda gz, raw: _flip(gz, len(gz) - 4),  # the length in the gzip trailer
     "t10k-labels-idx1-ubyte.gz: truncated or corrupt gzip file .*length"),
    (lambda gz, raw: _flip(gz, len(gz) // 2), "t10k-labels-idx1-ubyte.gz: truncated or corrupt"),
    (lambda gz, raw: gz[:10], "t10k-labels-idx1-ubyte.gz: truncated or corrupt gzip file"),
    (lambda gz, raw: raw, r"t10k-labels-idx1-ubyte.gz: truncated or corrupt gzip file \(Not a "
                          "gzipped file"),
    (lambda gz, raw: b"", r"t10k-labels-idx1-ubyte.gz: truncated IDX file \(0 bytes"),
])
def test_mnist_damaged_gzip_files(tmp_path, damage, match):
    shutil.copy(MNIST_DIR / "t10k-images-idx3-ubyte.gz", tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(_mnist_labels_gz(damage))
    with pytest.raises(ValueError, match=match):
        MNIST(tmp_path, train=False)


def test_mnist_truncated_raw_header(tmp_path):
    images = _gunzip(MNIST_DIR / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte")
    _gunzip(MNIST_DIR / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte")
    images.write_bytes(images.read_bytes()[:10])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated IDX header \(10 "
                                         r"bytes, 3 dims need 16\)"):
        MNIST(tmp_path, train=False)


def test_read_idx_header_dims_that_overflow(tmp_path):
    """Dims whose product wraps int64 to 0 once passed the size check and reached a raw NumPy
    reshape error; more dims than NumPy supports did too."""
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + np.array([2 ** 31, 2 ** 31, 4], ">u4").tobytes())
    with pytest.raises(ValueError, match=r"huge-idx3-ubyte: truncated: the header gives shape "
                                         r"\(2147483648, 2147483648, 4\) \(18446744073709551616"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 70]) + np.array([0] + [1] * 69, ">u4").tobytes())
    with pytest.raises(ValueError, match="huge-idx3-ubyte: cannot hold an IDX array of shape"):
        read_idx(path)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_cifar10_python_batch_truncated_anywhere(tmp_path, protocol):
    folder = _write_cifar(tmp_path, protocol)
    path = folder / "test_batch"
    good = path.read_bytes()
    cuts = sorted(set(range(0, 200)) | set(range(200, len(good), 97)) | {len(good) - 1})
    for cut in cuts:
        path.write_bytes(good[:cut])
        with pytest.raises(ValueError, match="test_batch: truncated or not a CIFAR-10 batch"):
            CIFAR10(tmp_path, train=False)


@pytest.mark.parametrize("payload, why", [
    (b"\x80\x02}K\x01a.", "AttributeError"),  # APPEND on a dict
    (b"\x80\x04\x8e" + (2 ** 62).to_bytes(8, "little") + b"abc", "larger than memory"),
    # a dtype whose state has False where the field names go: SystemError inside NumPy 2.4
    (b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R(K\x03X\x01\x00\x00\x00|N\x89NN"
     b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.", ""),
])
def test_cifar10_python_batch_with_damaged_opcodes(tmp_path, payload, why):
    """Damage found by mutating batches; each once escaped as a raw exception."""
    folder = _write_cifar(tmp_path)
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(ValueError, match=f"test_batch: .*not a CIFAR-10 batch.*{why}"):
        CIFAR10(tmp_path, train=False)


def test_cifar10_python_batch_with_random_byte_damage(tmp_path):
    """1000 single-byte changes (fixed seed): each batch loads, or fails naming the file."""
    folder = _write_cifar(tmp_path)
    path = folder / "test_batch"
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    outcomes = collections.Counter()
    for at, value in zip(rng.integers(0, len(good), 1000), rng.integers(0, 256, 1000)):
        path.write_bytes(good[:at] + bytes([value]) + good[at + 1:])
        try:
            CIFAR10(tmp_path, train=False)
            outcomes["loaded"] += 1
        except (ValueError, pickle.UnpicklingError) as err:
            assert str(path) in str(err), f"byte {at} set to {value}: {err}"
            outcomes[type(err).__name__] += 1
    assert outcomes["ValueError"] > 0 and outcomes["UnsafePickleError"] > 0, outcomes


def test_cifar10_binary_batch_truncated(tmp_path):
    _write_cifar(tmp_path)
    shutil.rmtree(tmp_path / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    good = path.read_bytes()
    for cut in (0, 1, 3072, 3074, len(good) - 1):
        path.write_bytes(good[:cut])
        with pytest.raises(ValueError, match=f"test_batch.bin: truncated: {cut} bytes is not a "
                                             "whole, non-zero number of 3073-byte records"):
            CIFAR10(tmp_path, train=False)


def _truncate_images(folder: Path) -> None:
    images = folder / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-1000])


def _drop_images_line(folder: Path) -> None:
    sums = folder / "MD5SUMS"
    sums.write_text("".join(line for line in sums.read_text().splitlines(keepends=True)
                            if "images" not in line))


@pytest.mark.parametrize("damage, match", [
    (_truncate_images, "images-idx3-ubyte.gz has MD5 .*expected 9fb629c4189551a2d022fa330f9573f3"),
    (lambda folder: (folder / "t10k-labels-idx1-ubyte.gz").unlink(),
     "t10k-labels-idx1-ubyte.gz is missing; the package data is corrupt"),
    (_drop_images_line, "MD5SUMS lists no MD5 for t10k-images-idx3-ubyte.gz"),
    (lambda folder: (folder / "MD5SUMS").write_text("9fb629c4189551a2d022fa330f9573f3\n"),
     "MD5SUMS line 1 is '9fb629c4189551a2d022fa330f9573f3', expected '<md5> <file name>'"),
])
def test_bundled_reports_damaged_package_data(tmp_path, monkeypatch, damage, match):
    copy = tmp_path / "mnist"
    shutil.copytree(MNIST_DIR, copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    damage(copy)
    monkeypatch.setattr(bundled, "MNIST_DIR", copy)
    bundled._load_all.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=f"bundled_mnist: .*{match}"):
            bundled_mnist("val")
    finally:
        bundled._load_all.cache_clear()


# -- stream datasets, stacked datasets, weighted sampling (issue 17) ---------------------------
class Countdown(gf.utils.data.IterableDataset):
    def __init__(self, start):
        self.start = start

    def __iter__(self):
        return iter(range(self.start, 0, -1))

    def __len__(self):
        return self.start


def test_iterable_and_chain_datasets_match_torch():
    th = require_torch()
    from gradflow.utils.data import ChainDataset, IterableDataset

    class TorchCountdown(th.utils.data.IterableDataset):
        def __init__(self, start):
            self.start = start

        def __iter__(self):
            return iter(range(self.start, 0, -1))

    chained = Countdown(3) + Countdown(2)
    assert isinstance(chained, ChainDataset) and isinstance(chained, IterableDataset)
    assert list(chained) == list(th.utils.data.ChainDataset([TorchCountdown(3),
                                                              TorchCountdown(2)]))
    assert len(chained) == 5
    for drop_last in (False, True):
        for prefetch in (False, True):
            ours = DataLoader(Countdown(7), batch_size=3, drop_last=drop_last, prefetch=prefetch)
            theirs = th.utils.data.DataLoader(TorchCountdown(7), batch_size=3,
                                              drop_last=drop_last)
            assert [to_numpy(b).tolist() for b in ours] == [b.tolist() for b in theirs]
    with pytest.raises(TypeError, match="ConcatDataset does not support IterableDataset"):
        ConcatDataset([Countdown(2)])
    with pytest.raises(TypeError, match="ChainDataset only supports IterableDataset"):
        list(ChainDataset([Countdown(1), [1, 2]]))


def test_stack_dataset_matches_torch():
    th = require_torch()
    from gradflow.utils.data import StackDataset
    a, b = list(range(4)), [f"s{i}" for i in range(4)]
    for ours, theirs in ((StackDataset(a, b), th.utils.data.StackDataset(a, b)),
                         (StackDataset(x=a, y=b), th.utils.data.StackDataset(x=a, y=b))):
        assert len(ours) == len(theirs) == 4
        assert [ours[i] for i in range(4)] == [theirs[i] for i in range(4)]
    batch = next(iter(DataLoader(StackDataset(image=Records(5), idx=list(range(5))),
                                 batch_size=5)))
    assert list(batch) == ["image", "idx"] and to_numpy(batch["idx"]).tolist() == [0, 1, 2, 3, 4]
    for args, kwargs, match in (((a, b[:3]), {}, "size mismatch"), ((), {}, "at least one"),
                                ((a,), {"y": b}, "both types are given")):
        with pytest.raises(ValueError):
            th.utils.data.StackDataset(*args, **kwargs)
        with pytest.raises(ValueError, match=match):
            StackDataset(*args, **kwargs)


def test_weighted_random_sampler():
    th = require_torch()
    from gradflow.utils.data import WeightedRandomSampler
    weights = [0.0, 1.0, 3.0, 0.0, 4.0]
    g = gf.Generator().manual_seed(0)
    draws = list(WeightedRandomSampler(weights, 8000, generator=g))
    assert len(draws) == 8000 and set(draws) == {1, 2, 4}
    freq = np.bincount(draws, minlength=5) / 8000
    np.testing.assert_allclose(freq, np.array(weights) / 8, atol=0.02)
    once = list(WeightedRandomSampler(gf.tensor(weights), 3, replacement=False, generator=g))
    assert sorted(once) == [1, 2, 4]
    first = list(WeightedRandomSampler(weights, 20, generator=gf.Generator().manual_seed(3)))
    assert first == list(WeightedRandomSampler(weights, 20,
                                               generator=gf.Generator().manual_seed(3)))
    assert len(WeightedRandomSampler(weights, 20)) == 20
    for args, kwargs in (((weights, 0), {}), ((weights, 2), {"replacement": 1}),
                         (([[1.0, 2.0]], 2), {})):
        with pytest.raises(ValueError):
            th.utils.data.WeightedRandomSampler(*args, **kwargs)
        with pytest.raises(ValueError, match="WeightedRandomSampler"):
            WeightedRandomSampler(*args, **kwargs)
    for bad, n in (([1.0, -1.0], 1), ([0.0, 0.0], 1), ([1.0, 0.0], 3)):
        with pytest.raises(RuntimeError):
            list(th.utils.data.WeightedRandomSampler(bad, n, replacement=n == 1))
        with pytest.raises(RuntimeError, match="WeightedRandomSampler"):
            list(WeightedRandomSampler(bad, n, replacement=n == 1))
    # without replacement, zero weights come last, once the others are used up (as torch)
    for lib in (gf, th):
        drawn = list(lib.utils.data.WeightedRandomSampler([0.0, 2.0, 0.0, 1.0], 4,
                                                          replacement=False))
        assert sorted(drawn[:2]) == [1, 3] and sorted(drawn[2:]) == [0, 2], lib.__name__
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler([1, 2], replacement="yes")


def test_default_collate_nested_matches_torch():
    th = require_torch()
    Pair = collections.namedtuple("Pair", "image meta")
    samples = [Pair(np.full((2, 2), i, np.float32),
                    {"id": i, "scale": (np.float64(i / 2), 2 * i), "name": f"n{i}"})
               for i in range(3)]
    ours, theirs = default_collate(samples), th.utils.data.default_collate(samples)
    assert isinstance(ours, Pair) and isinstance(ours.meta["scale"], list)
    assert ours.meta["name"] == theirs.meta["name"] == ["n0", "n1", "n2"]
    ours.meta.pop("name"), theirs.meta.pop("name")
    assert_same_batch(ours, theirs)
