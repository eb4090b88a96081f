"""Injected faults while writing a checkpoint: the process killed with SIGKILL in the middle of
`gf.save`, and exceptions raised at each stage of a save. Afterwards the previous checkpoint
must load unchanged and no partial file may pass for a checkpoint."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradflow as gf
from gradflow import serialization
from gradflow.serialization import CheckpointError, load, save

REPO = Path(gf.__file__).resolve().parents[1]

# Runs `save` of a 4 MiB checkpoint in a child process and kills the child with SIGKILL from
# inside the array writer once two members are complete: before the third member starts
# ("between") or after half of its bytes ("inside"). Everything written is flushed to the OS
# first, so the temp file really holds a partial archive when the process dies.
KILLER = """
import os, signal, sys
import numpy as np
import gradflow as gf
from gradflow import serialization

path, where = sys.argv[1], sys.argv[2]
real_write, done = serialization._write_array, []

def dying_write(zf, name, array):
    if len(done) == 2:
        if where == "inside":
            with zf.open(name, "w") as member:
                member.write(array.tobytes()[:array.nbytes // 2])
                zf.fp.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        zf.fp.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_write(zf, name, array)
    done.append(name)

serialization._write_array = dying_write
gf.save({f"layer{i}": gf.tensor(np.full((512, 512), i, np.float32)) for i in range(4)}, path)
sys.exit("save returned although it should have been killed")
"""


def _checkpoint_a() -> dict:
    return {"weight": gf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), "step": 7}


def _assert_is_a(path: Path) -> None:
    got = load(path)
    assert list(got) == ["weight", "step"] and got["step"] == 7, f"loaded {got!r}"
    np.testing.assert_array_equal(got["weight"].numpy(),
                                  np.arange(6, dtype=np.float32).reshape(2, 3))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("where", ["between", "inside"])
def test_sigkill_mid_save_keeps_previous_checkpoint(tmp_path, where):
    path = tmp_path / "ckpt.gf"
    save(_checkpoint_a(), path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                                   os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", KILLER, str(path), where], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, \
        f"child exited with {proc.returncode}, not SIGKILL:\n{proc.stderr}"
    _assert_is_a(path)
    leftovers = sorted(p for p in tmp_path.iterdir() if p != path)
    assert len(leftovers) == 1, f"expected one orphaned temp file, found {leftovers}"
    temp = leftovers[0]
    assert temp.name.startswith(".ckpt.gf.") and temp.suffix == ".tmp", temp.name
    assert temp.stat().st_size > 2 * 512 * 512 * 4, "the kill came before two members were written"
    assert sorted(tmp_path.glob("*.gf")) == [path], "the temp file looks like a checkpoint"
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(temp)
    save({"after": gf.tensor([1.0])}, path)  # the orphan does not get in the next save's way
    np.testing.assert_array_equal(load(path)["after"].numpy(), [1.0])


def _raise_on_third_member(real):
    calls = []

    def write(zf, name, array):
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # a BaseException, as Ctrl-C midway through a save
        real(zf, name, array)
    return write


def _fail(error: BaseException):
    def fail(*args, **kwargs):
        raise error
    return fail


# (what is patched, its replacement, the exception save must let through)
FAULTS = {
    "interrupt after two members": (
        (serialization, "_write_array"), _raise_on_third_member(serialization._write_array),
        KeyboardInterrupt),
    "disk full at fsync": (
        (os, "fsync"), _fail(OSError(errno.ENOSPC, "No space left on device")), OSError),
    "chmod refused": (
        (os, "chmod"), _fail(PermissionError(errno.EPERM, "Operation not permitted")),
        PermissionError),
    "out of memory copying a tensor": (
        (serialization, "move_array"), _fail(MemoryError()), MemoryError),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_exception_mid_save_cleans_up(tmp_path, monkeypatch, fault):
    (owner, name), replacement, error = FAULTS[fault]
    path = tmp_path / "ckpt.gf"
    save(_checkpoint_a(), path)
    monkeypatch.setattr(owner, name, replacement)
    with pytest.raises(error):
        save({f"layer{i}": gf.tensor(np.full(100, i, np.float32)) for i in range(4)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.gf"], "the temp file was left behind"
    _assert_is_a(path)
