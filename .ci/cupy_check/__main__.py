"""Run the four checks; exit 1 when any fails. Needs real CuPy and no GPU."""
from __future__ import annotations

import os
import sys
import tempfile
import time

from . import Report, nodriver


def main() -> int:
    os.environ["CUPY_CACHE_DIR"] = tempfile.mkdtemp(prefix="cupy-check-cache-")  # NVRTC runs
    nodriver.install()  # before anything imports cupy
    import cupy

    from gradflow.cuda import compiler
    from gradflow.kernels_path import kernel_dir

    from . import capture, kernels, launches, symbols
    cupy.cuda.set_allocator(nodriver.allocator)
    print(f"cupy {cupy.__version__}, NVRTC {cupy.cuda.nvrtc.getVersion()}, no GPU "
          "(stand-in driver)")
    start = time.perf_counter()
    families = sorted(p.stem for p in kernel_dir().glob("*.cu"))
    options = getattr(compiler, "OPTIONS", ("-std=c++17",))
    reports = []

    print("== 1. kernels compiled through CuPy's NVRTC path (sm_90)")
    reports.append(Report("kernels"))
    compiled = kernels.compile_all(families, options, reports[-1])
    print("== 2. kernel launches against the compiled signatures")
    reports.append(Report("launches"))
    launches.check_all(compiled, reports[-1])
    print("== 3. cuBLAS symbols gradflow binds")
    reports.append(Report("cublas symbols"))
    symbols.check(reports[-1])
    print("== 4. CuPy APIs that refuse stream capture, in a captured step")
    reports.append(Report("capture"))
    capture.check(reports[-1])

    print(f"== summary ({time.perf_counter() - start:.1f} s)")
    for report in reports:
        print(f"  {report.summary()}")
    failed = sum(len(r.failures) for r in reports)
    print("cupy-check: FAILED" if failed else "cupy-check: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
