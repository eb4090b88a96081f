"""A pytest plugin (pyproject's addopts load it) that runs the CPU suite on worker processes
with pytest-xdist, when that is installed (the test extra brings it).

Workers: the machine's cores, and at least six. A single-process suite uses one core, and on
a machine whose cores are busy with other work the scheduler gives it a share beside each
busy process: two cores, two busy loops and one process left it at 1.6 times its idle time
(235 against 145 s, measured); six workers took 95 s idle and 135 s beside the same loops.
Each worker limits BLAS to one thread (conftest.py), so workers never stack thread pools.

Left alone: runs that name files or tests (a worker's start-up costs more than a file takes),
that choose for themselves (`-n`, `-p no:xdist`), that need one process (`--pdb`, `--trace`,
`-s`), and runs that select GPU tests, which share one device.
"""
import importlib.util
import os

MIN_WORKERS = 6
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
