"""A pytest plugin (pyproject's addopts load it) that runs the CPU suite on worker processes
with pytest-xdist, when that is installed (the test extra brings it).

Workers: the machine's cores, and at least eight. A single-process suite uses one core, and
on a machine whose cores are busy with other work the scheduler gives it a share beside each
busy process: on two cores beside two busy loops one process took 1.63 times its idle time
(235.5 against 144.6 s). Measured on the same machine: six workers 88-101 s idle and
135-153 s busy (ratios 1.42, 1.55, 1.51), eight workers 108-116 s idle and 143-150 s busy
(1.23, 1.39): eight keep the suite's share, a little slower on an idle machine.
Each worker limits BLAS to one thread (conftest.py), so workers never stack thread pools.

Left alone: runs that name files or tests (a worker's start-up costs more than a file takes),
that choose for themselves (`-n`, `-p no:xdist`), that need one process (`--pdb`, `--trace`,
`-s`), and runs that select GPU tests, which share one device.
"""
import importlib.util
import os

MIN_WORKERS = 8
ONE_PROCESS = ("--pdb", "--trace", "-s", "--capture=no")


def workers() -> int:
    return max(MIN_WORKERS, os.cpu_count() or 1)


def _chooses_itself(args: list) -> bool:
    for i, arg in enumerate(args):
        if arg in ONE_PROCESS or arg.startswith(("-n", "--numprocesses", "--dist")):
            return True
        if arg == "no:xdist" or arg == "-pno:xdist" or (arg == "-p" and
                                                           args[i + 1:i + 2] == ["no:xdist"]):
            return True
    return False


def _selects_cpu_only(args: list) -> bool:
    """True when a -m expression deselects the gpu marker (README's command has -m "not gpu")."""
    for i, arg in enumerate(args):
        expr = args[i + 1] if arg == "-m" and i + 1 < len(args) else (
            arg[2:] if arg.startswith("-m") and len(arg) > 2 else None)
        if expr is not None and "not gpu" in expr:
            return True
    return False


def _names_paths(args: list) -> bool:
    return any(os.path.exists(arg.split("::")[0]) for arg in args if not arg.startswith("-"))


def pytest_load_initial_conftests(early_config, parser, args):
    if (os.environ.get("PYTEST_XDIST_WORKER") or importlib.util.find_spec("xdist") is None
            or _chooses_itself(args) or not _selects_cpu_only(args) or _names_paths(args)):
        return
    args[:] = ["-n", str(workers())] + args
