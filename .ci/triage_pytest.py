"""The pytest plugin of .ci/gpu-triage, for a bare GPU machine whose pytest has no plugins.

    PYTHONPATH=.ci:. python3 -m pytest -p triage_pytest --triage-timeout 60 \
        --triage-slow tests/test_gpu.py::test_training_loop_memory_stays_flat -m "gpu and not slow"

--triage-timeout S   fails a test whose setup, call or teardown runs past S seconds (SIGALRM,
                     like pytest-timeout's signal method; a hang inside a C call is only
                     interrupted when it returns, so gpu-triage also keeps a timeout per run).
--triage-slow ID     marks a test, or every test of a file, `slow` (repeatable), so the triage
                     can leave the long tests for last with -m.
--triage-optional M  a test file that cannot import one of these modules is reported as skipped,
                     naming the module, instead of as a collection error.
SIGTERM (what gpu-triage's per-run `timeout` sends) interrupts the run like Ctrl-C, so pytest
still prints what passed and failed before it.
"""
from __future__ import annotations

import re
import signal
import sys
import traceback

import pytest

OPTIONAL = "hypothesis,tqdm,PIL,matplotlib"
_MISSING = re.compile(r"No module named '([\w.]+)'")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("triage", "gpu-triage (.ci/triage_pytest.py)")
    group.addoption("--triage-timeout", type=float, default=0.0, metavar="S",
                    help="fail a test phase that runs past S seconds (0: no limit)")
    group.addoption("--triage-slow", action="append", default=[], metavar="NODEID",
                    help="mark this test, or every test of this file, slow (repeatable)")
    group.addoption("--triage-optional", default=OPTIONAL, metavar="M1,M2",
                    help=f"modules whose absence skips a test file (default {OPTIONAL})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running tests (--triage-slow marks more)")
    # NOTE: gpu-triage ends an overrunning run with SIGTERM; as a KeyboardInterrupt it still
    # gets pytest's summary of what ran and failed so far.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    print(f"\nsignal {signum} while running:", file=sys.stderr)
    traceback.print_stack(frame, file=sys.stderr)
    raise KeyboardInterrupt(f"signal {signum}: gpu-triage's time for this run is up")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Runs before -m deselects, so the slow marks count."""
    slow = config.getoption("triage_slow")
    for item in items:
        if any(item.nodeid == s or item.nodeid.startswith(s + "::") for s in slow):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    report = outcome.get_result()
    if not report.failed or not isinstance(collector, pytest.Module):
        return
    missing = _MISSING.search(str(report.longrepr))
    optional = collector.config.getoption("triage_optional").split(",")
    if missing and missing.group(1).split(".")[0] in optional:
        report.outcome = "skipped"
        report.longrepr = (str(collector.path), None,
                           f"not collected: {missing.group(1)} is not installed here "
                           "(--triage-optional)")


def _limited(item: pytest.Item, phase: str):
    seconds = item.config.getoption("triage_timeout")
    if not seconds:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        __tracebackhide__ = True
        pytest.fail(f"per-test timeout: {phase} of {item.nodeid} ran past {seconds:g} s "
                    "(--triage-timeout)")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    yield from _limited(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    yield from _limited(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    yield from _limited(item, "teardown")
