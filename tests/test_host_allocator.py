"""gradflow.host_allocator: glibc's malloc keeps a training step's freed buffers (no page
faults to get them back), and the opt-outs leave glibc's defaults alone."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradflow import host_allocator

ROOT = Path(__file__).resolve().parents[1]
GLIBC = bool(host_allocator.applied)

# Three 20 MB buffers alive at once, then freed, ten times: glibc's default trim threshold
# (twice the largest freed mmap block) hands the 60 MB back each time, so every round faults
# its pages in again; the tuned heap keeps them.
FAULTS = """
import resource, numpy as np
import gradflow
def rounds(n):
    for _ in range(n):
        a, b, c = (np.ones(5_000_000, np.float32) for _ in range(3))
        del a, b, c
rounds(2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(10)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, gradflow.host_allocator.applied)
"""


def _run(env_extra: dict) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GRADFLOW_MALLOC"))}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=1)
    return int(out[0]), out[1].strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt is not available on this platform")
def test_tuned_heap_keeps_freed_buffers_and_opt_outs_keep_glibc_defaults():
    tuned, applied = _run({})
    assert applied == repr(host_allocator.SETTINGS)
    default, none = _run({"GRADFLOW_MALLOC_TUNING": "0"})
    assert none == "{}"
    assert tuned * 10 < default, (tuned, default)  # page faults over ten rounds
    _, none = _run({"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert none == "{}"  # the user's own glibc setting wins
