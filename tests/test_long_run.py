"""Long-run health: 1,000 training steps on the CPU leave the process's memory flat and no
autograd graph alive between steps; two classic user leaks (keeping loss tensors instead of
loss.item()) fail the same measurement, which shows that it can fail."""
from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd.function import Function

STEPS = 1000
WARMUP = 100  # optimizer state, free lists and caches settle in the first steps
PROBE_EVERY = 100
SLACK = 16 * 1024  # bytes a steady process may drift by: a few stray small objects
BATCH, FEATURES, CLASSES = 16, 32, 10


class Trainer:
    """A small MLP (Linear, [BatchNorm1d,] ReLU, Dropout, Linear) trained with Adam on eight
    fixed random batches of 16, so every step does the same work. BatchNorm's running
    statistics, updated in place every step, are a classic place for a graph to hide."""

    def __init__(self, batch_norm: bool) -> None:
        gf.manual_seed(0)
        nn = gf.nn
        norm = [nn.BatchNorm1d(64)] if batch_norm else []
        self.model = nn.Sequential(nn.Linear(FEATURES, 64), *norm, nn.ReLU(), nn.Dropout(0.1),
                                   nn.Linear(64, CLASSES))
        self.optimizer = gf.optim.Adam(self.model.parameters(), lr=1e-2)
        rng = np.random.default_rng(0)
        self.batches = [(gf.tensor(rng.standard_normal((BATCH, FEATURES)).astype(np.float32)),
                         gf.tensor(rng.integers(0, CLASSES, BATCH))) for _ in range(8)]

    def step(self, i: int) -> gf.Tensor:
        x, y = self.batches[i % len(self.batches)]
        loss = gf.nn.functional.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss


def live_graph_nodes() -> int:
    """Autograd nodes (Function and Op instances) alive anywhere in the process. type(), not
    isinstance: some objects (torch's deprecated aliases) warn when asked for __class__."""
    return sum(issubclass(type(obj), Function) for obj in gc.get_objects())


def run(steps: int, keep, batch_norm: bool = False) -> tuple[dict, np.ndarray]:
    """Train for `steps` steps, handing each loss tensor to `keep(loss, kept)`. Returns
    {step: (traced bytes, live graph nodes)} measured every PROBE_EVERY steps from WARMUP,
    each after a full gc.collect() (which also empties the interpreter's free lists, so
    probes compare like with like), and the loss values. Tracing starts at WARMUP (it triples
    the cost of a step): whatever is allocated later and kept shows up as growth."""
    trainer, kept, losses, probes = Trainer(batch_norm), [], np.zeros(steps), {}
    try:
        for i in range(1, steps + 1):
            if i == WARMUP:
                gc.collect()
                tracemalloc.start()
            loss = trainer.step(i)
            losses[i - 1] = keep(loss, kept)
            del loss
            if i >= WARMUP and i % PROBE_EVERY == 0:
                gc.collect()
                probes[i] = (tracemalloc.get_traced_memory()[0], live_graph_nodes())
    finally:
        tracemalloc.stop()
    return probes, losses


def health_problems(probes: dict) -> list:
    """What the probes say is wrong: memory that grew past SLACK over the base probe at
    WARMUP, and graph nodes alive between steps."""
    base = probes[WARMUP][0]
    growth = {step: size - base for step, (size, _) in probes.items()}
    problems = []
    if max(growth.values()) > SLACK:
        problems.append(f"traced memory grew past {SLACK} bytes: {growth}")
    nodes = {step: count for step, (_, count) in probes.items() if count}
    if nodes:
        problems.append(f"graph nodes alive between steps: {nodes}")
    return problems


def item(loss, kept):
    return loss.item()


def keep_tensor(loss, kept):
    kept.append(loss)  # the leak: `losses.append(loss)` instead of `loss.item()`
    return loss.item()


def running_total(loss, kept):
    kept[:] = [loss if not kept else kept[0] + loss]  # `total += loss` outside no_grad
    return loss.item()


def test_thousand_steps_keep_memory_and_graph_flat():
    probes, losses = run(STEPS, item, batch_norm=True)
    assert sorted(probes) == list(range(WARMUP, STEPS + 1, PROBE_EVERY))
    assert health_problems(probes) == []
    assert losses[-50:].mean() < 0.5 * losses[:50].mean(), "the model did not train"


@pytest.mark.parametrize("keep", [keep_tensor, running_total], ids=lambda f: f.__name__)
def test_the_measurement_catches_a_kept_graph(keep):
    probes, _ = run(2 * PROBE_EVERY, keep)
    problems = health_problems(probes)
    assert len(problems) == 2, f"{keep.__name__} went unnoticed: {problems}"
    nodes = [count for _, count in probes.values()]
    assert nodes == sorted(nodes) and nodes[0] > 0, f"live nodes should only grow: {nodes}"
