"""gradflow's GPU path checked against real CuPy (cupy-cuda13x) on a machine with no GPU.

`python -m cupy_check` (run by .ci/cupy-check) compiles every kernel family through CuPy's
NVRTC path, checks every launch gradflow makes against the compiled signatures, checks the
cuBLAS symbols gradflow binds, and checks that a captured step reaches no CuPy API that
refuses stream capture. `nodriver` stands in for the CUDA driver underneath CuPy.
"""
from __future__ import annotations


class Report:
    """One check's lines: `ok` and `fail` print as they go; `failures` counts the second."""

    def __init__(self, check: str) -> None:
        self.check, self.passed, self.failures = check, 0, []

    def ok(self, line: str) -> None:
        self.passed += 1
        print(f"  ok   {line}", flush=True)

    def fail(self, line: str) -> None:
        self.failures.append(line)
        print(f"  FAIL {line}", flush=True)

    def summary(self) -> str:
        return f"{self.check}: {self.passed} ok, {len(self.failures)} failed"
