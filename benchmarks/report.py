"""What benchmarks.train_step records beside its timings (versions, machine, date) and the
fixed-width table it prints."""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import gradflow as gf
from gradflow.backend import cupy_module

HEADERS = ("net", "batch", "check", "gradflow ms [p10, p90]", "torch ms [p10, p90]",
           "gradflow img/s", "torch img/s", "gradflow/torch", "gradflow MiB", "torch MiB")


def environment(device: str, mode: str, torch: Any) -> dict[str, Any]:
    """Versions, machine and date of a run, so a stored result says where it came from."""
    cp = cupy_module()
    gpu = None
    if device == "cuda":
        gpu = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"].decode()
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": device, "mode": mode, "gpu": gpu,
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "numpy": np.__version__,
        "cupy": None if cp is None else cp.__version__,
        "torch": _installed("torch"),
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "gradflow": gf.__version__, "gradflow_commit": _git_commit(),
    }


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, check=False)
    except OSError:  # no git on this machine
        return None
    return out.stdout.strip() or None


def format_table(rows: list[dict[str, Any]]) -> str:
    """One line per net, columns padded to their widest cell."""
    cells = [HEADERS] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    lines = ["  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths))) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    ours, theirs = row["gradflow"], row["torch"]
    missing = "not timed" if row["check"]["status"] == "mismatch" else "n/a"
    return (row["net"], str(row["batch"]), row["check"]["status"], _ms(ours, missing),
            _ms(theirs, missing), _num(ours, "images_per_s", ".1f", missing),
            _num(theirs, "images_per_s", ".1f", missing),
            missing if row["ratio"] is None else f"{row['ratio']:.2f}",
            _num(ours, "peak_mib", ".0f", missing), _num(theirs, "peak_mib", ".0f", missing))


def _ms(side: dict[str, Any] | None, missing: str) -> str:
    if side is None:
        return missing
    return f"{side['ms_median']:.2f} [{side['ms_p10']:.2f}, {side['ms_p90']:.2f}]"


def _num(side: dict[str, Any] | None, key: str, spec: str, missing: str) -> str:
    if side is None:
        return missing
    return "n/a" if side[key] is None else format(side[key], spec)
