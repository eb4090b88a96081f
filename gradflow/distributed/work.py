"""The handle an `async_op=True` collective returns (torch.distributed.Work)."""
from __future__ import annotations

import datetime
import time
from typing import Any, Callable


class Work:
    """An operation in flight. `wait()` blocks until it is done (for NCCL: makes the current
    CUDA stream wait for it) and then finishes it: copies staged results into the tensors and
    scales an average. It holds the buffers the engine reads, so they live until then."""

    def __init__(self, requests: list, finish: list[Callable[[], None]],
                 buffers: tuple = (), event: Any = None, result: Any = None,
                 what: str = "a collective",
                 on_status: Callable[[list, Exception | None], Any] | None = None) -> None:
        self._requests = requests  # MPI requests
        self._finish = finish      # run once, in order, when the requests completed
        self._buffers = buffers    # NOTE: keeps the arrays MPI reads or writes alive
        self._event = event        # CUDA event recorded after an NCCL call
        self._result = result
        self._what = what          # the call's name, for the messages
        # reads the requests' MPI statuses (and the MPI error, if one) once they completed,
        # and gives the result (a receive: its sender) or raises
        self._on_status = on_status
        self._statuses: list = []
        self._done = False

    def _mpi(self) -> Any:
        from mpi4py import MPI
        if not self._statuses:
            self._statuses = [MPI.Status() for _ in self._requests]
        return MPI

    def is_completed(self) -> bool:
        if self._done:
            return True
        if self._event is not None:
            return bool(self._event.done)
        MPI = self._mpi()
        return bool(MPI.Request.Testall(self._requests, self._statuses))

    def wait(self, timeout: datetime.timedelta | None = None) -> bool:
        """Finish the operation; with `timeout`, raise RuntimeError when the other ranks have
        not completed it by then (MPI; NCCL's wait does not block the host)."""
        if self._done:
            return True
        if self._event is not None:
            import cupy
            cupy.cuda.get_current_stream().wait_event(self._event)
        elif self._requests:
            from .faults import waiting
            MPI = self._mpi()
            error = None
            with waiting(self._what):
                try:
                    if timeout is not None:
                        self._poll(MPI, timeout)
                    MPI.Request.Waitall(self._requests, self._statuses)
                except MPI.Exception as err:
                    if self._on_status is None:
                        raise
                    error = err
            if self._on_status is not None:
                self._result = self._on_status(self._statuses, error)
        for step in self._finish:
            step()
        self._done = True
        self._buffers = ()
        return True

    def _poll(self, MPI: Any, timeout: datetime.timedelta) -> None:
        deadline = time.monotonic() + timeout.total_seconds()
        while not MPI.Request.Testall(self._requests, self._statuses):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._what}: not completed by the other ranks within "
                                   f"{timeout.total_seconds():g} s")
            time.sleep(1e-4)

    def result(self) -> Any:
        """What a blocking call returns (recv: the sender's rank), once done."""
        self.wait()
        return self._result

    def __repr__(self) -> str:
        return f"Work({self._what}, completed={self.is_completed()})"
