"""tests/parallel.py: which pytest runs get xdist workers."""
import parallel
import pytest


@pytest.mark.parametrize("args,parallel_run", [
    (["-q", "-m", "not gpu"], True),  # README's command
    (["-q", "-mnot gpu and not slow"], True),
    (["-q"], False),  # GPU tests selected too: they share one device
    (["-q", "-m", "gpu"], False),
    (["-q", "-m", "not gpu", "tests/test_threads.py"], False),
    (["-q", "-m", "not gpu", "tests/test_threads.py::test_default"], False),
    (["-q", "-m", "not gpu", "-n", "2"], False),
    (["-q", "-m", "not gpu", "-n3"], False),
    (["-q", "-m", "not gpu", "-p", "no:xdist"], False),
    (["-q", "-m", "not gpu", "--pdb"], False),
    (["-q", "-m", "not gpu", "-s"], False),
])
def test_workers_join_whole_cpu_suite_runs_only(monkeypatch, args, parallel_run):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(parallel.importlib.util, "find_spec", lambda name: object())
    given = list(args)
    parallel.pytest_load_initial_conftests(None, None, given)
    want = ["-n", str(parallel.workers())] + args if parallel_run else args
    assert given == want
    assert parallel.workers() >= parallel.MIN_WORKERS


def test_no_workers_without_xdist_or_inside_a_worker(monkeypatch):
    args = ["-q", "-m", "not gpu"]
    monkeypatch.setattr(parallel.importlib.util, "find_spec", lambda name: None)
    parallel.pytest_load_initial_conftests(None, None, args)
    assert args == ["-q", "-m", "not gpu"]
    monkeypatch.setattr(parallel.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    parallel.pytest_load_initial_conftests(None, None, args)
    assert args == ["-q", "-m", "not gpu"]
