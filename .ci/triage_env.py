"""The environment part of stage 1 of .ci/gpu-triage: what this machine has, for the log.

    python3 .ci/triage_env.py

The GPU and driver (nvidia-smi), the CUDA tools (nvcc, compute-sanitizer, ncu), the Python
packages the GPU path and the tests import (numpy, cupy, torch, pytest and the optional ones),
the CUDA libraries CuPy found (cupy.show_config), CuPy's kernel cache, and whether gradflow
sees a GPU. It only reports: the exit code is 0 unless the report itself crashes. Its last line
is `cuda available to gradflow: yes|no`, which gpu-triage reads to skip the GPU stages.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

TOOL_SECONDS = 20  # nvidia-smi can stall on a sick driver; the report goes on without it
PACKAGES = ("numpy", "cupy", "torch", "pytest", "tqdm", "hypothesis", "PIL", "matplotlib")


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def tool(*command: str, lines: int = 40) -> None:
    """Run a command-line tool and print (the head of) its output, or why it did not run."""
    path = shutil.which(command[0])
    if path is None:
        print(f"$ {' '.join(command)}: not found on PATH", flush=True)
        return
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TOOL_SECONDS,
                              check=False)
    except subprocess.TimeoutExpired:
        print(f"$ {' '.join(command)}: no answer in {TOOL_SECONDS} s", flush=True)
        return
    out = (done.stdout + done.stderr).rstrip().splitlines()
    print(f"$ {' '.join(command)}  ({path}, exit {done.returncode})")
    print("\n".join(out[:lines] + ([f"... ({len(out) - lines} more lines)"]
                                   if len(out) > lines else [])), flush=True)


def package(name: str) -> object | None:
    start = time.perf_counter()
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - a broken install is reported, not fatal
        print(f"{name}: not importable ({type(exc).__name__}: {exc})", flush=True)
        return None
    version = getattr(module, "__version__", "?")
    print(f"{name} {version}  ({Path(module.__file__).parent}, import "
          f"{time.perf_counter() - start:.1f} s)", flush=True)
    return module


def cupy_report(cp: object) -> None:
    runtime = cp.cuda.runtime
    print(f"CUDA runtime {runtime.runtimeGetVersion()}, driver API {runtime.driverGetVersion()}, "
          f"devices {runtime.getDeviceCount()}")
    for i in range(runtime.getDeviceCount()):
        props = runtime.getDeviceProperties(i)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else name
        free, total = cp.cuda.Device(i).mem_info
        print(f"device {i}: {name}, compute capability "
              f"{props['major']}.{props['minor']}, {props['multiProcessorCount']} SMs, "
              f"{total / 2 ** 30:.1f} GiB ({free / 2 ** 30:.1f} free)")
    print(f"NVRTC {cp.cuda.nvrtc.getVersion()}")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        cp.show_config()
    print(buffer.getvalue().rstrip())
    cache = Path(os.environ.get("CUPY_CACHE_DIR", Path.home() / ".cupy" / "kernel_cache"))
    cached = sum(1 for _ in cache.rglob("*")) if cache.is_dir() else 0
    print(f"CuPy kernel cache {cache}: {cached} files" + (" (cold)" if not cached else ""),
          flush=True)


def torch_report(torch: object) -> None:
    cuda = torch.cuda.is_available()
    print(f"torch CUDA build {torch.version.cuda}, cuda available {cuda}"
          + (f", {torch.cuda.get_device_name(0)}" if cuda else ""), flush=True)


def main() -> int:
    section("machine")
    print(f"{platform.node()} {platform.platform()}, {os.cpu_count()} CPUs, "
          f"python {sys.version.split()[0]} ({sys.executable})")
    print(f"PATH={os.environ.get('PATH', '')}")
    print(f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}", flush=True)
    section("GPU and driver")
    tool("nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used,"
         "compute_cap,clocks.max.sm,power.limit,persistence_mode,mig.mode.current",
         "--format=csv")
    tool("nvidia-smi")
    section("CUDA tools")
    tool("nvcc", "--version")
    tool("compute-sanitizer", "--version")
    tool("ncu", "--version")
    section("CUDA libraries on the loader path")
    tool("sh", "-c", "ldconfig -p | grep -E 'libcuda\\.so|libnvrtc|libcublas\\.so|"
         "libcurand|libnvidia-ml' || true")
    section("Python packages")
    modules = {name: package(name) for name in PACKAGES}
    if modules["cupy"] is not None:
        section("CuPy's view of CUDA")
        try:
            cupy_report(modules["cupy"])
        except Exception as exc:  # noqa: BLE001
            print(f"CuPy could not describe CUDA: {type(exc).__name__}: {exc}")
    if modules["torch"] is not None:
        torch_report(modules["torch"])
    section("gradflow")
    import gradflow as gf
    from gradflow.kernels_path import kernel_dir
    print(f"gradflow {gf.__version__} ({Path(gf.__file__).parent}), kernels in {kernel_dir()}: "
          f"{', '.join(sorted(p.name for p in kernel_dir().glob('*.cu')))}")
    available = gf.cuda.is_available()
    if available:
        print(f"gradflow sees {gf.cuda.device_count()} GPU(s)")
    print(f"cuda available to gradflow: {'yes' if available else 'no'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
