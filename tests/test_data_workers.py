"""DataLoader worker processes: batches and their order against torch and against
num_workers=0, per-worker seeding, IterableDataset sharding, persistent workers, errors and
dead or stuck workers reported (never a hang), pinned memory. Workers start by fork, so each
test stays well under a couple of seconds."""
from __future__ import annotations

import gc
import os
import pickle
import random
import time
import warnings

import numpy as np
import pytest
from helpers import require_torch, to_numpy

import gradflow as gf
from gradflow.random import cpu_rng
from gradflow.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    TensorDataset,
    WorkerInfo,
    get_worker_info,
)
from gradflow.utils.data import worker as worker_module


class Numbers(Dataset):
    """Sample i is (i as a float array, the id of the worker that read it); `worker_info` is
    gradflow's get_worker_info or torch's."""

    def __init__(self, n, worker_info=get_worker_info):
        self.n, self.worker_info = n, worker_info

    def __getitem__(self, i):
        info = self.worker_info()
        return np.full(2, i, np.float32), -1 if info is None else info.id

    def __len__(self):
        return self.n


class RandomDraws(Dataset):
    """What the worker's seeded generators give: gradflow's, Python's and NumPy's."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return {"worker": info.id, "seed": info.seed, "gf": gf.rand(1).item(),
                "py": random.random(), "np": float(np.random.rand())}


class Broken(Dataset):
    """Raises `error` (or, for "exit", kills its process) when sample `bad` is read."""

    def __init__(self, n, bad, error):
        self.n, self.bad, self.error = n, bad, error

    def __getitem__(self, i):
        if i == self.bad:
            if self.error == "exit":
                os._exit(3)
            if self.error == "sleep":
                time.sleep(30)
            raise self.error
        return np.full(2, i, np.float32)

    def __len__(self):
        return self.n


class TwoArgError(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


class Stream(IterableDataset):
    """range(n), each worker taking every num_workers-th sample (torch's sharding recipe)."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))

    def __len__(self):
        return self.n


def assert_finished(it):
    for process in it._workers:
        process.join(timeout=2)
    alive = [p.pid for p in it._workers if p.is_alive()]
    assert not alive, f"workers {alive} still alive"


# -- batches and order ------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_workers_match_torch_and_single_process(drop_last):
    torch = require_torch()
    ours = DataLoader(Numbers(23), batch_size=4, num_workers=2, drop_last=drop_last)
    got = list(ours)
    theirs = list(torch.utils.data.DataLoader(Numbers(23, torch.utils.data.get_worker_info),
                                              batch_size=4, num_workers=2, drop_last=drop_last))
    assert [to_numpy(b[0]).tolist() for b in got] == [b[0].tolist() for b in theirs]
    assert [to_numpy(b[1]).tolist() for b in got] == [b[1].tolist() for b in theirs], \
        "tasks go round-robin to the workers, as in torch"
    single = list(DataLoader(Numbers(23), batch_size=4, drop_last=drop_last))
    assert [to_numpy(b[0]).tolist() for b in got] == [to_numpy(b[0]).tolist() for b in single]
    assert len(ours) == len(got) == (5 if drop_last else 6)


def test_shuffled_pass_covers_every_sample_once_in_the_single_process_order():
    def run(workers):
        loader = DataLoader(Numbers(37), batch_size=5, shuffle=True, num_workers=workers,
                            generator=gf.Generator().manual_seed(3))
        return np.concatenate([to_numpy(b[0])[:, 0] for b in loader]).astype(int).tolist()

    order = run(3)
    assert sorted(order) == list(range(37)) and order != list(range(37))
    assert order == run(0), "the pass's order is drawn before the workers' seed"


def test_tensor_dataset_and_device_through_workers():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10) % 3
    batches = list(DataLoader(TensorDataset(gf.tensor(x), gf.tensor(y)), batch_size=4,
                              num_workers=2, device="cpu"))
    assert [type(t) for t in batches[0]] == [gf.Tensor, gf.Tensor]
    assert batches[0][1].dtype == gf.int64
    np.testing.assert_array_equal(np.concatenate([to_numpy(b[0]) for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([to_numpy(b[1]) for b in batches]), y)


# -- seeding ----------------------------------------------------------------------------------
def test_worker_seeds_follow_the_base_seed_and_repeat_with_a_seeded_generator():
    def run():
        loader = DataLoader(RandomDraws(), batch_size=2, num_workers=2,
                            generator=gf.Generator().manual_seed(7))
        return [{k: to_numpy(v).tolist() for k, v in b.items()} for b in loader]

    first, second = run(), run()
    assert first == second
    g = gf.Generator().manual_seed(7)  # a sequential order draws nothing before the base seed
    base = int(cpu_rng(g).integers(0, 2 ** 63 - 1, endpoint=True))
    for batch in first:
        assert batch["seed"] == [base + w for w in batch["worker"]], batch
    by_worker = {b["worker"][0]: b for b in first[:2]}
    assert by_worker[0]["gf"] != by_worker[1]["gf"] and by_worker[0]["py"] != by_worker[1]["py"]
    assert by_worker[0]["np"] != by_worker[1]["np"]
    random.seed(base + 1)  # worker 1's Python generator, replayed here (collated to float32)
    assert by_worker[1]["py"][0] == np.float32(random.random())
    np.random.seed(worker_module.numpy_seed_state(base, 1))
    assert by_worker[1]["np"][0] == np.float32(np.random.rand())
    gf.manual_seed(base)
    assert by_worker[0]["gf"][0] == np.float32(gf.rand(1).item())


def test_numpy_seed_state_is_torchs():
    torch = require_torch()
    from torch.utils.data._utils.worker import _generate_state
    for base, worker_id in ((0, 0), (12345, 3), (2 ** 63 - 2, 7), (2 ** 40 + 17, 1)):
        assert worker_module.numpy_seed_state(base, worker_id) == _generate_state(base, worker_id)
    del torch


def test_worker_info_and_worker_init_fn():
    assert get_worker_info() is None

    class Offsets(Numbers):
        offset = 0

        def __getitem__(self, i):
            info = get_worker_info()
            return np.full(1, i + info.dataset.offset), repr(info)

    def init(worker_id):
        get_worker_info().dataset.offset = 100 * (worker_id + 1)

    batches = list(DataLoader(Offsets(4), batch_size=2, num_workers=2, worker_init_fn=init))
    assert [to_numpy(b[0])[:, 0].tolist() for b in batches] == [[100, 101], [202, 203]]
    assert batches[1][1][0].startswith("WorkerInfo(id=1, num_workers=2, seed=")
    info = WorkerInfo(id=0, num_workers=1, seed=5, dataset=None)
    with pytest.raises(RuntimeError, match="Cannot assign attributes to WorkerInfo"):
        info.id = 3


# -- IterableDataset --------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker processes")
@pytest.mark.parametrize("drop_last", [False, True])
def test_iterable_dataset_sharded_matches_torch(drop_last):
    torch = require_torch()

    class TorchStream(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            return iter(range(info.id, 11, info.num_workers))

    ours = DataLoader(Stream(11), batch_size=2, num_workers=3, drop_last=drop_last)
    got = [to_numpy(b).tolist() for b in ours]
    theirs = [b.tolist() for b in torch.utils.data.DataLoader(
        TorchStream(), batch_size=2, num_workers=3, drop_last=drop_last)]
    assert got == theirs
    flat = sorted(v for b in got for v in b)
    if not drop_last:
        assert flat == list(range(11)), "every sample exactly once across the workers"
    single = [to_numpy(b).tolist() for b in DataLoader(Stream(11), batch_size=2)]
    assert sorted(v for b in single for v in b) == list(range(11))


def test_iterable_dataset_refuses_sampler_options():
    for bad in (dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])):
        with pytest.raises(ValueError, match="expected unspecified"):
            DataLoader(Stream(3), **bad)
    assert len(DataLoader(Stream(10), batch_size=3)) == 4
    assert len(DataLoader(Stream(10), batch_size=3, drop_last=True)) == 3


# -- persistent workers -----------------------------------------------------------------------
def test_persistent_workers_keep_their_processes_and_drop_stale_results():
    class Pids(Numbers):
        def __getitem__(self, i):
            return np.full(1, i), os.getpid()

    loader = DataLoader(Pids(12), batch_size=2, num_workers=2, persistent_workers=True)
    first = list(loader)
    it = loader._iterator
    pids = {p for b in first for p in to_numpy(b[1]).tolist()}
    assert len(pids) == 2 and os.getpid() not in pids
    for i, _ in enumerate(loader):  # abandon a pass midway: its results still in flight
        if i == 1:
            break
    again = list(loader)
    assert loader._iterator is it
    assert [to_numpy(b[0])[:, 0].tolist() for b in again] == \
        [to_numpy(b[0])[:, 0].tolist() for b in first]
    assert {p for b in again for p in to_numpy(b[1]).tolist()} == pids
    workers = list(it._workers)
    del loader, it
    gc.collect()
    for process in workers:
        process.join(timeout=2)
        assert not process.is_alive(), f"worker {process.pid} outlived its DataLoader"


def test_persistent_iterable_workers_restart_their_streams():
    loader = DataLoader(Stream(7), batch_size=2, num_workers=2, persistent_workers=True)
    passes = [sorted(v for b in loader for v in to_numpy(b).tolist()) for _ in range(3)]
    assert passes == [list(range(7))] * 3


# -- errors and hangs -------------------------------------------------------------------------
def test_worker_exception_carries_its_traceback_like_torch():
    torch = require_torch()
    loader = DataLoader(Broken(20, bad=5, error=ValueError("sample 5 is broken")),
                        batch_size=4, num_workers=2)
    seen = []
    with pytest.raises(ValueError) as ours:
        for batch in loader:
            seen.append(batch)
    assert len(seen) == 1
    text = str(ours.value)
    assert text.startswith("Caught ValueError in DataLoader worker process 1.\n"
                           "Original Traceback (most recent call last):"), text
    assert "sample 5 is broken" in text and "in __getitem__" in text
    it = iter(torch.utils.data.DataLoader(Broken(20, bad=5, error=ValueError("x")),
                                          batch_size=4, num_workers=2))
    try:
        with pytest.raises(ValueError) as theirs:
            list(it)
        assert str(theirs.value).splitlines()[0] == text.splitlines()[0]
    finally:
        it._shutdown_workers()  # NOTE: left to the garbage collector, it takes seconds


@pytest.mark.parametrize("error, kind, match", [
    (KeyError("missing"), KeyError, r"Caught KeyError in DataLoader worker process 0\.\n"),
    (TwoArgError(1, 2), RuntimeError, r"Caught TwoArgError in DataLoader worker process 0"),
])
def test_worker_exception_types(error, kind, match):
    with pytest.raises(kind, match=match):
        list(DataLoader(Broken(4, bad=1, error=error), batch_size=2, num_workers=1))


def test_worker_init_fn_error_and_unpicklable_batch():
    def init(worker_id):
        raise OSError(f"cannot open shard {worker_id}")

    with pytest.raises(OSError, match=r"(?s)worker process 0\..*cannot open shard 0"):
        list(DataLoader(Numbers(4), batch_size=2, num_workers=1, worker_init_fn=init))
    with pytest.raises(Exception, match=r"(?s)worker process 0 \(pickling its batch\).*"
                                        r"local object"):
        list(DataLoader(Numbers(4), batch_size=2, num_workers=1,
                        collate_fn=lambda batch: (lambda: batch)))


def test_non_leaf_tensor_that_requires_grad_does_not_cross():
    def collate(batch):
        return gf.tensor(np.stack([b[0] for b in batch]), requires_grad=True) * 2

    with pytest.raises(RuntimeError, match="Cowardly refusing to serialize non-leaf tensor"):
        list(DataLoader(Numbers(4), batch_size=2, num_workers=1, collate_fn=collate))


def test_dead_worker_is_reported_without_hanging():
    start = time.monotonic()
    it = iter(DataLoader(Broken(20, bad=6, error="exit"), batch_size=4, num_workers=2))
    with pytest.raises(RuntimeError, match=r"DataLoader worker 1 \(pid \d+, exit code 3\) "
                                           r"exited unexpectedly"):
        list(it)
    assert time.monotonic() - start < 5
    assert_finished(it)


def test_timeout_is_reported_and_the_stuck_worker_is_stopped():
    start = time.monotonic()
    it = iter(DataLoader(Broken(8, bad=0, error="sleep"), batch_size=2, num_workers=1,
                         timeout=0.3))
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.3 seconds"):
        next(it)
    assert time.monotonic() - start < 5
    assert_finished(it)


def test_abandoned_iterator_shuts_its_workers_down():
    it = iter(DataLoader(Numbers(1000), batch_size=1, num_workers=2))
    next(it)
    workers = list(it._workers)
    del it
    gc.collect()
    for process in workers:
        process.join(timeout=2)
        assert not process.is_alive(), "an abandoned iterator must stop its workers"
    it = iter(DataLoader(Numbers(6), batch_size=2, num_workers=2))
    assert len(list(it)) == 3
    assert_finished(it)


# -- options ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(num_workers=-1), "num_workers option should be non-negative"),
    (dict(timeout=-1), "timeout option should be non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor option could only be specified"),
    (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    (dict(multiprocessing_context="fork"), "multiprocessing_context can only be used"),
    (dict(num_workers=1, multiprocessing_context="telepathy"), "valid start method"),
])
def test_option_errors_match_torch(kwargs, match):
    torch = require_torch()
    with pytest.raises(ValueError):
        torch.utils.data.DataLoader(list(range(4)), **kwargs)
    with pytest.raises(ValueError, match=match):
        DataLoader(Numbers(4), **kwargs)


def test_explicit_context_and_prefetch_factor():
    import multiprocessing
    loader = DataLoader(Numbers(9), batch_size=2, num_workers=2, prefetch_factor=1,
                        multiprocessing_context=multiprocessing.get_context("fork"))
    assert loader.prefetch_factor == 1
    assert [to_numpy(b[0])[:, 0].tolist() for b in loader] == \
        [[0, 1], [2, 3], [4, 5], [6, 7], [8]]
    assert DataLoader(Numbers(2), num_workers=1).prefetch_factor == 2
    spawned = DataLoader(TensorDataset(gf.arange(6.0), gf.arange(6)), batch_size=4,
                         num_workers=1, multiprocessing_context="spawn")
    assert [to_numpy(b[1]).tolist() for b in spawned] == [[0, 1, 2, 3], [4, 5]], \
        "the dataset and its fetcher pickle to a spawned worker"
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError), match="pickle"):
        iter(DataLoader(Numbers(2), num_workers=1, multiprocessing_context="spawn",
                        collate_fn=lambda batch: batch))
    with pytest.raises(TypeError, match="multiprocessing_context option should be a valid"):
        DataLoader(Numbers(4), num_workers=1, multiprocessing_context=3)


# -- pinned memory ----------------------------------------------------------------------------
def test_pin_memory_without_cuda_warns_and_changes_nothing():
    if gf.cuda.is_available():
        pytest.skip("CUDA is available")
    for workers in (0, 1):
        loader = DataLoader(Numbers(4), batch_size=2, num_workers=workers, pin_memory=True)
        with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no "
                                             "accelerator is found"):
            got = list(loader)
        assert [to_numpy(b[0])[:, 0].tolist() for b in got] == [[0, 1], [2, 3]]


@pytest.mark.parametrize("workers", [0, 2])
def test_pinned_batches_copy_to_the_gpu_from_pinned_memory(fake_cuda, workers):
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    ds = TensorDataset(gf.tensor(x), gf.tensor(np.arange(8)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # CUDA is there: no warning
        batches = list(DataLoader(ds, batch_size=4, num_workers=workers, pin_memory=True))
    for batch in batches:
        assert all(t.device == gf.device("cpu") and fake_cuda._is_pinned(t.array)
                   for t in batch)
    fake_cuda.clear_events()
    on_gpu = [t.to("cuda", non_blocking=True) for t in batches[0]]
    assert fake_cuda.count("h2d", pinned=True) == 2 and fake_cuda.count("h2d", pinned=False) == 0
    np.testing.assert_array_equal(to_numpy(on_gpu[0]), x[:4])
    plain = next(iter(DataLoader(ds, batch_size=4)))
    fake_cuda.clear_events()
    plain[0].to("cuda")
    assert fake_cuda.count("h2d", pinned=False) == 1
