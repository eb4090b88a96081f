"""A failing rank takes the whole world down, never leaving the others in a collective.

Under plain `mpiexec -n N python script.py`, an unhandled exception on one rank would make
that rank wait in MPI_Finalize while the others wait in their next collective, forever.
`init_process_group` installs an exception hook that prints the rank's traceback and calls
MPI_Abort on COMM_WORLD, which mpiexec turns into the end of every rank (as `python -m
mpi4py` does); `destroy_process_group` restores the hook that was there before.

A rank that never reaches a collective (it returned early, or its data ran out first)
would leave the others waiting just as long: a watchdog thread aborts the world when one
wait has lasted longer than init_process_group's `timeout` (30 minutes by default, as
torch's), naming the collective.

Resuming: a checkpoint holds the model and the optimizer, which every rank has whole under
data parallelism, so it loads into a world of any size; what the world size changes is the
global batch (per-rank batch x world size) and so the learning-rate scaling and the sampler's
split of each epoch, which the training command accounts for.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
import traceback
from typing import Any, Iterator

_SAVED: list = []  # the exception hook in place before init_process_group's, while installed
# NOTE: the wait in progress on this process, as (what, since) in time.monotonic() seconds;
# read by the watchdog thread, written only by the thread that runs collectives
_WAITING: list = [None]


@contextlib.contextmanager
def waiting(what: str) -> Iterator[None]:
    """Mark a blocking wait on the other ranks, which the watchdog bounds."""
    outer = _WAITING[0]
    if outer is None:
        _WAITING[0] = (what, time.monotonic())
    try:
        yield
    finally:
        _WAITING[0] = outer


class Watchdog(threading.Thread):
    """Aborts `comm` when one wait has lasted longer than `timeout` seconds."""

    def __init__(self, comm: Any, timeout: float) -> None:
        super().__init__(name="gradflow.distributed watchdog", daemon=True)
        self.comm, self.timeout = comm, timeout
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(min(1.0, self.timeout / 4)):
            current = _WAITING[0]
            if current is not None and time.monotonic() - current[1] > self.timeout:
                sys.stderr.write(
                    f"gradflow.distributed: rank {self.comm.Get_rank()} waited more than "
                    f"{self.timeout:g} s in {current[0]} (the process group's timeout): "
                    "another rank never joined it; aborting every rank\n")
                sys.stderr.flush()
                _abort(self.comm)


_WATCHDOG: list = []
# NOTE: mpiexec forwards a rank's output as it reads it and stops when the abort tears the
# ranks down: without a pause, what a rank wrote just before aborting (the reason) was lost in
# about one run in ten of tests/test_distributed.py's fault cases
FORWARD_PAUSE = 0.5  # seconds


def _abort(comm: Any) -> None:
    """Abort every rank, once the launcher has had time to forward this rank's last words."""
    time.sleep(FORWARD_PAUSE)
    comm.Abort(1)


def install(comm: Any, timeout: float) -> None:
    """Abort `comm` (COMM_WORLD) when an exception reaches the top level of this rank, or
    when a wait on the other ranks lasts more than `timeout` seconds."""
    previous = sys.excepthook
    rank, size = comm.Get_rank(), comm.Get_size()

    def abort_all(kind, value, tb) -> None:
        # NOTE: the line and the traceback in one write, forwarded together (see _abort)
        sys.stderr.write(f"gradflow.distributed: rank {rank} of {size} raised "
                         f"{kind.__name__}; aborting every rank\n"
                         + "".join(traceback.format_exception(kind, value, tb)))
        sys.stderr.flush()
        sys.stdout.flush()
        _abort(comm)

    _SAVED.append(previous)
    sys.excepthook = abort_all
    dog = Watchdog(comm, timeout)
    dog.start()
    _WATCHDOG.append(dog)


def uninstall() -> None:
    if _SAVED:
        sys.excepthook = _SAVED.pop()
    while _WATCHDOG:
        _WATCHDOG.pop().stopped.set()
