"""Check 1: every kernels/*.cu compiled through CuPy's NVRTC path for sm_90, exactly as
gradflow.cuda.compiler builds it, with each name expression's lowered name and parameters.

The compile is gradflow's own `compiler.load_module(family)` (so cupy.RawModule with
gradflow's options and name expressions); under `nodriver` CuPy asks the stand-in device
for its compute capability (9.0) and hands the cubin to a stand-in module load, and NVRTC
runs for real with CuPy's added options. Parameters come from a PTX twin compiled with the
same options but `-arch=compute_90` (PTX `.entry` lists each parameter's size and kind) and
from the demangled lowered name (pointee types, which PTX erases).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from . import Report

_PTX_SIZES = {"8": 1, "16": 2, "32": 4, "64": 8}
_C_SIZES = {"bool": 1, "char": 1, "signed char": 1, "unsigned char": 1, "short": 2,
            "unsigned short": 2, "int": 4, "unsigned int": 4, "long": 8, "unsigned long": 8,
            "long long": 8, "unsigned long long": 8, "float": 4, "double": 8, "__half": 2,
            "__nv_bfloat16": 2}
# `acc_t<T>` parameters (kernels/common.cuh) demangle as `Acc<T>::type`: the float type the
# kernels compute in, float32 for the 16-bit element types
_ACC = {"float": "float", "double": "double", "__half": "float", "__nv_bfloat16": "float"}
_ACC_TYPE = re.compile(r"\bAcc<(\w+)>::type\b")
_ENTRY = re.compile(r"\.entry\s+(\w+)\s*\(([^)]*)\)")
_PARAM = re.compile(r"\.param\s+\.([busf])(\d+)\b(?:.*\[(\d+)\])?")


@dataclass(frozen=True)
class Param:
    """One kernel parameter: its C type, 'pointer'/'integer'/'floating-point', its size in
    bytes, and for a pointer the kind and size of what it points to."""
    ctype: str
    kind: str
    size: int
    pointee: tuple = ()  # (kind, size) for pointers


@dataclass(frozen=True)
class Kernel:
    family: str
    expression: str
    lowered: str
    params: tuple


def _kind(ctype: str) -> str:
    return "floating-point" if ctype in ("float", "double", "__half", "__nv_bfloat16") \
        else "integer"


def _demangle(names: list) -> list:
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return [line[line.index("(") + 1:line.rindex(")")] for line in out]


def _ptx_params(ptx: str) -> dict:
    """lowered name -> [(kind letter, size)] from the PTX `.entry` lines."""
    entries = {}
    for name, body in _ENTRY.findall(ptx):
        params = []
        for kind, bits, count in (_PARAM.search(p).groups() for p in body.split(",") if
                                  p.strip()):
            params.append((kind, int(count) if count else _PTX_SIZES[bits]))
        entries[name] = params
    return entries


def _params(family: str, expression: str, lowered: str, demangled: str,
            ptx: list, report: Report) -> tuple | None:
    demangled = _ACC_TYPE.sub(lambda m: _ACC.get(m.group(1), m.group(0)), demangled)
    ctypes_ = [t.strip() for t in demangled.split(",")] if demangled.strip() else []
    if len(ctypes_) != len(ptx):
        report.fail(f"{family}: {expression} ({lowered}): demangled to {len(ctypes_)} "
                    f"parameters but its PTX entry has {len(ptx)}")
        return None
    params = []
    for ctype, (letter, size) in zip(ctypes_, ptx):
        if ctype.endswith("*"):
            base = ctype[:-1].replace("const", "").strip()
            params.append(Param(ctype, "pointer", size, (_kind(base), _C_SIZES.get(base, 0))))
        else:
            params.append(Param(ctype, _kind(ctype), size))
        if (letter == "f") != (params[-1].kind == "floating-point"):
            report.fail(f"{family}: {expression}: `{ctype}` is .{letter} in PTX")
            return None
    return tuple(params)


def compile_all(families: list, expected_options: tuple, report: Report) -> dict:
    """(family, expression) -> Kernel for every family that compiles; failures go to
    `report`."""
    import cupy.cuda.compiler as cupy_compiler

    from gradflow.cuda import compiler

    from . import nodriver
    programs = []
    real_compile = cupy_compiler._NVRTCProgram.compile

    def recording_compile(self, options=(), log_stream=None):
        result = real_compile(self, options, log_stream)
        if self.name_expressions:  # not CuPy's empty-file version probe
            programs.append((self, tuple(options), result[1]))
        return result

    cupy_compiler._NVRTCProgram.compile = recording_compile
    kernels = {}
    try:
        for family in families:
            kernels.update(_compile_family(family, compiler, cupy_compiler, programs,
                                           expected_options, report, nodriver.record))
    finally:
        cupy_compiler._NVRTCProgram.compile = real_compile
    return kernels


def _compile_family(family, compiler, cupy_compiler, programs, expected_options, report,
                    record) -> dict:
    expressions = compiler.name_expressions(compiler.source(family))
    if not expressions:
        report.fail(f"{family}: kernels/{family}.cu instantiates no kernels")
        return {}
    before, images = len(programs), len(record.images)
    try:
        module = compiler.load_module(family)
        for expression in expressions:
            compiler._function(module, expression)
    except cupy_compiler.CompileException as err:
        log = "\n         ".join(str(err).strip().splitlines()[:12])
        report.fail(f"{family}: NVRTC rejected kernels/{family}.cu:\n         {log}")
        return {}
    if len(programs) != before + 1 or len(record.images) != images + 1:
        report.fail(f"{family}: expected one NVRTC compile and one module load, saw "
                    f"{len(programs) - before} and {len(record.images) - images} (a stale "
                    "CUPY_CACHE_DIR?)")
        return {}
    program, options, mapping = programs[-1]
    missing = [o for o in (*expected_options, "-arch=sm_90") if o not in options]
    if missing:
        report.fail(f"{family}: NVRTC options {options} lack {missing}")
        return {}
    if not record.images[-1].startswith(b"\x7fELF"):
        report.fail(f"{family}: the module CuPy loaded is not a cubin")
        return {}
    twin = cupy_compiler._NVRTCProgram(program.src, f"{family}_twin.cu",
                                       name_expressions=program.name_expressions,
                                       method="ptx")
    ptx, twin_mapping = twin.compile(tuple(o.replace("-arch=sm_", "-arch=compute_")
                                           for o in options))
    entries = _ptx_params(ptx.decode() if isinstance(ptx, bytes) else ptx)
    print(f"  {family}: NVRTC {' '.join(o for o in options if not o.startswith('-I'))}")
    lowered = [mapping[e] for e in expressions]
    kernels = {}
    for expression, name, demangled in zip(expressions, lowered, _demangle(lowered)):
        if twin_mapping.get(expression) != name or name not in entries:
            report.fail(f"{family}: {expression}: lowered to {name}, but the PTX twin has "
                        f"{twin_mapping.get(expression)}")
            continue
        params = _params(family, expression, name, demangled, entries[name], report)
        if params is not None:
            kernels[(family, expression)] = Kernel(family, expression, name, params)
            report.ok(f"{family}: {expression} -> {name} ({len(params)} params: "
                      f"{', '.join(p.ctype for p in params)})")
    return kernels
