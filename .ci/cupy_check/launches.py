"""Check 2: every kernel launch gradflow's launchers make, against the compiled signature.

The launchers run on real cupy.ndarray objects over stand-in device memory (`nodriver`).
`compiler.kernel` is replaced by a checker that converts each argument as CuPy's launch does
(cupy/cuda/function.pyx `_pointer` in v14.2.0: None is a null pointer; a cupy.ndarray its
data pointer; a numpy.ndarray of size one its bytes by value; any other value a
cupy._core._scalar.CScalar, whose dtype decides the C type: Python int -> int64, float ->
float64, NumPy scalars their own) and compares kind and size with the lowered name's
parameters. Then the real CuPy launch runs on the stand-in driver, which executes nothing.
"""
from __future__ import annotations

from . import Report, nodriver

_KINDS = {"f": "floating-point", "i": "integer", "u": "integer", "b": "integer"}


def _packed(arg) -> tuple:
    """(kind, size, pointee (kind, size) or None, what) of `arg` as CuPy packs it."""
    import cupy
    import numpy as np
    from cupy._core._scalar import CScalar
    if arg is None:
        return "pointer", 8, None, "None (a null pointer)"
    if isinstance(arg, cupy.ndarray):
        kind = "floating-point" if arg.dtype.name == "bfloat16" else \
            _KINDS.get(arg.dtype.kind, arg.dtype.kind)  # ml_dtypes' bfloat16 is kind "V"
        return "pointer", 8, (kind, arg.itemsize), f"a cupy array of {arg.dtype}"
    if isinstance(arg, cupy.cuda.MemoryPointer):
        return "pointer", 8, None, "a MemoryPointer"
    if isinstance(arg, np.ndarray):
        if arg.size != 1:
            return "rejected", 0, None, f"a numpy array of shape {arg.shape}"
        descr, what = arg.dtype, f"a size-1 numpy array of {arg.dtype} (by value)"
    else:
        descr = CScalar(arg).descr
        what = f"{type(arg).__module__.replace('builtins', 'Python')}.{type(arg).__name__} " \
               f"(packed as {descr})"
    return _KINDS.get(descr.kind, descr.kind), descr.itemsize, None, what


def _mismatch(arg, param) -> str | None:
    kind, size, pointee, what = _packed(arg)
    if (kind, size) != (param.kind, param.size):
        return what
    if kind == "pointer":
        if pointee is None:
            return what
        if pointee != param.pointee:
            return what
        if not arg.flags.c_contiguous:
            return f"{what}, not C-contiguous (strides {arg.strides})"
    return None


class Checker:
    """Stands in for `compiler.kernel`: each launch is checked, then launched on the
    stand-in driver through the real CuPy function."""

    def __init__(self, compiled: dict, report: Report) -> None:
        from gradflow.cuda import compiler
        self.compiled, self.report, self.compiler = compiled, report, compiler
        self.scenario, self.checked, self.reached = "", 0, 0
        self.real_kernel = compiler.kernel

    def __call__(self, family: str, name: str, dtype):
        expression = f"{name}<{self.compiler.C_TYPES[__import__('numpy').dtype(dtype)]}>"
        signature = self.compiled.get((family, expression))
        real = self.real_kernel(family, name, dtype)

        def launch(grid, block, args, *rest, **kwargs):
            self.checked += 1
            where = f"{self.scenario}: {family}.{expression}"
            if signature is None:
                self.report.fail(f"{where}: no compiled kernel of that name")
                return
            problems = self._problems(signature, grid, block, args)
            for problem in problems:
                self.report.fail(f"{where}: {problem}")
            if not problems:
                self.report.ok(f"{where} grid={grid} block={block} ({len(args)} args)")
            try:
                real(grid, block, args, *rest, **kwargs)
                self.reached += 1
            except Exception as err:  # noqa: BLE001  (CuPy refused the arguments)
                self.report.fail(f"{where}: CuPy's launch raised {type(err).__name__}: {err}")
        return launch

    @staticmethod
    def _problems(signature, grid, block, args) -> list:
        params = signature.params
        if len(args) != len(params):
            return [f"passes {len(args)} arguments, but {signature.lowered} takes "
                    f"{len(params)}: ({', '.join(p.ctype for p in params)})"]
        problems = []
        for pos, (arg, param) in enumerate(zip(args, params)):
            what = _mismatch(arg, param)
            if what is not None:
                problems.append(f"argument {pos} is {what}, but the kernel takes "
                                f"`{param.ctype}` ({param.size} bytes)")
        threads = 1
        for b in block:
            threads *= int(b)
        if threads > 1024 or min(int(v) for v in (*grid, *block)) < 1:
            problems.append(f"bad launch shape grid={grid} block={block}")
        return problems


def check_all(compiled: dict, report: Report) -> None:
    from gradflow.cuda import compiler

    from .scenarios import SCENARIOS
    checker = Checker(compiled, report)
    compiler.kernel = checker
    launched = len(nodriver.record.launches)
    try:
        for label, run in SCENARIOS:
            checker.scenario = label
            try:
                run()
            except Exception as err:  # noqa: BLE001
                report.fail(f"{label}: raised {type(err).__name__}: {err}")
    finally:
        compiler.kernel = checker.real_kernel
    gradflow_names = {k.lowered for k in compiled.values()}
    ours = sum(1 for name, _, _ in nodriver.record.launches[launched:] if name in
               gradflow_names)
    if ours != checker.reached:
        report.fail(f"{ours} launches of gradflow's kernels reached the driver, but "
                    f"{checker.reached} went through compiler.kernel")
    print(f"  {checker.checked} launches checked in {len(SCENARIOS)} scenarios")
