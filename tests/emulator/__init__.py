"""Run gradflow's CUDA kernels on the CPU, so the CPU suite holds them to the NumPy path.

`build(family)` compiles kernels/<family>.cu with g++ against cuda_emulator.h, plus one
trampoline per kernel the file instantiates; the result has `get_function(name)` like a
cupy.RawModule, and its kernels take `(grid, block, args)` like CuPy's, with NumPy arrays
where CuPy takes device arrays. Each launch also checks what a GPU would not:
- every argument's C type against the kernel's signature (an int64 passed for an `int`, or a
  float64 array for a `float*`, is an error here, and silent garbage on a GPU);
- arrays are C-contiguous (a kernel sees only the data pointer);
- nothing is written into guard zones around each array (out-of-bounds writes).
The header also defines CUDA's `__half` and `__nv_bfloat16` (round-to-nearest-even
conversions), so the low-precision instantiations run here too, on float16 and ml_dtypes
bfloat16 NumPy arrays.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from gradflow.cuda.compiler import name_expressions
from gradflow.dtypes import is_floating
from gradflow.kernels_path import kernel_dir

HEADER = Path(__file__).with_name("cuda_emulator.h")
GUARD_BYTES = 256
GUARD_BYTE = 0xA5
_KINDS = ("pointer", "integer", "floating-point")


def compiler() -> str | None:
    """The C++ compiler the emulator uses, or None when there is none."""
    return shutil.which("g++")


def _library_path(family: str, source: str, trampolines: str) -> Path:
    digest = hashlib.sha256()
    for text in (HEADER.read_text(), source, trampolines,
                 *(p.read_text() for p in sorted(kernel_dir().glob("*.cuh")))):
        digest.update(text.encode())
    cache = Path(tempfile.gettempdir()) / "gradflow-kernel-emulator"
    cache.mkdir(exist_ok=True)
    return cache / f"{family}-{digest.hexdigest()[:16]}.so"


def _trampolines(path: Path, names: list) -> str:
    lines = [f'#include "{path}"']
    for i, expr in enumerate(names):
        lines += [
            f'extern "C" const char* gf_launch_{i}(unsigned gx, unsigned gy, unsigned gz, '
            f'unsigned bx, unsigned by, unsigned bz, void** args) {{',
            f'    return emu::launch(dim3(gx, gy, gz), dim3(bx, by, bz), '
            f'[args] {{ emu::call(&{expr}, args); }});',
            '}',
            f'extern "C" int gf_describe_{i}(int* kinds, int* sizes) {{',
            f'    return emu::describe(&{expr}, kinds, sizes);',
            '}',
        ]
    return "\n".join(lines) + "\n"


class EmulatedModule:
    """A compiled kernel family, looked up by name expression like cupy.RawModule."""

    def __init__(self, family: str) -> None:
        path = kernel_dir() / f"{family}.cu"
        source = path.read_text()
        self.names = name_expressions(source)
        trampolines = _trampolines(path, self.names)
        lib_path = _library_path(family, source, trampolines)
        if not lib_path.exists():
            _compile(trampolines, lib_path)
        self.lib = ctypes.CDLL(str(lib_path))

    def get_function(self, name: str) -> "EmulatedKernel":
        if name not in self.names:
            raise KeyError(f"no kernel {name!r}; the source instantiates {self.names}")
        return EmulatedKernel(self.lib, self.names.index(name), name)


def _compile(trampolines: str, lib_path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cpp = Path(tmp) / "trampolines.cpp"
        cpp.write_text(trampolines)
        out = Path(tmp) / lib_path.name
        cmd = [compiler(), "-std=c++17", "-O1", "-fPIC", "-shared", "-w", "-include",
               str(HEADER), "-I", str(kernel_dir()), str(cpp), "-o", str(out)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"emulator build failed:\n{' '.join(cmd)}\n{result.stderr}")
        shutil.move(str(out), lib_path)  # atomic within the cache folder's file system


def _dim3(value) -> tuple:
    dims = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))


class EmulatedKernel:
    """One kernel; call it as kernel(grid, block, args) with NumPy arrays and NumPy scalars."""

    def __init__(self, lib: ctypes.CDLL, index: int, name: str) -> None:
        self.name = name
        self._launch = getattr(lib, f"gf_launch_{index}")
        self._launch.restype = ctypes.c_char_p
        self._launch.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_void_p]
        kinds, sizes = (ctypes.c_int * 64)(), (ctypes.c_int * 64)()
        count = getattr(lib, f"gf_describe_{index}")(kinds, sizes)
        self.signature = [(_KINDS[kinds[i]], sizes[i]) for i in range(count)]

    def check(self, grid, block, args) -> None:
        """Everything a launch checks before it runs (shape, argument count and C types),
        without running the kernel."""
        grid, block = _dim3(grid), _dim3(block)
        if np.prod(block) > 1024 or min(grid + block) < 1:
            raise ValueError(f"{self.name}: bad launch shape grid={grid} block={block}")
        if len(args) != len(self.signature):
            raise TypeError(f"{self.name}: takes {len(self.signature)} arguments, got "
                            f"{len(args)}")
        for pos, (arg, (kind, size)) in enumerate(zip(args, self.signature)):
            self._pack(pos, arg, kind, size, {})

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        grid, block = _dim3(grid), _dim3(block)
        if shared_mem:
            raise ValueError(f"{self.name}: the emulator has no dynamic shared memory")
        if np.prod(block) > 1024 or min(grid + block) < 1:
            raise ValueError(f"{self.name}: bad launch shape grid={grid} block={block}")
        if len(args) != len(self.signature):
            raise TypeError(f"{self.name}: takes {len(self.signature)} arguments, got "
                            f"{len(args)}")
        guarded, slots = {}, []
        for pos, (arg, (kind, size)) in enumerate(zip(args, self.signature)):
            slots.append(self._pack(pos, arg, kind, size, guarded))
        pointers = (ctypes.c_void_p * len(slots))(*[ctypes.addressof(s) for s in slots])
        error = self._launch(*grid, *block, pointers)
        if error:
            raise RuntimeError(f"{self.name}: {error.decode()}")
        for pos, (array, buffer) in guarded.values():
            inner = buffer[GUARD_BYTES:GUARD_BYTES + array.nbytes]
            if (buffer[:GUARD_BYTES] != GUARD_BYTE).any() or \
                    (buffer[GUARD_BYTES + array.nbytes:] != GUARD_BYTE).any():
                raise RuntimeError(f"{self.name}: wrote outside argument {pos} "
                                   f"(shape {array.shape}, dtype {array.dtype})")
            if array.flags.writeable:
                array.reshape(-1).view(np.uint8)[:] = inner

    def _pack(self, pos: int, arg, kind: str, size: int, guarded: dict):
        where = f"{self.name}: argument {pos}"
        if isinstance(arg, np.ndarray):
            if kind != "pointer" or arg.itemsize != size:
                raise TypeError(f"{where} is an array of {arg.dtype}, but the kernel takes a "
                                f"{kind} of {size} bytes")
            if not arg.flags.c_contiguous:
                raise ValueError(f"{where} is not C-contiguous (strides {arg.strides})")
            if id(arg) not in guarded:
                buffer = np.full(arg.nbytes + 2 * GUARD_BYTES, GUARD_BYTE, np.uint8)
                buffer[GUARD_BYTES:GUARD_BYTES + arg.nbytes] = arg.reshape(-1).view(np.uint8)
                guarded[id(arg)] = (pos, (arg, buffer))
            buffer = guarded[id(arg)][1][1]
            return ctypes.c_void_p(buffer.ctypes.data + GUARD_BYTES)
        if not isinstance(arg, np.generic):
            raise TypeError(f"{where} is a {type(arg).__name__}; pass a NumPy scalar so its C "
                            "type is explicit")
        # NOTE: ml_dtypes' bfloat16 scalars are no np.floating; is_floating knows them
        want = "floating-point" if is_floating(arg.dtype) else "integer"
        if kind != want or arg.itemsize != size:
            raise TypeError(f"{where} is {arg.dtype}, but the kernel takes a {kind} of "
                            f"{size} bytes")
        return ctypes.create_string_buffer(arg.tobytes(), size)


@functools.lru_cache(maxsize=None)
def load(family: str) -> EmulatedModule:
    """The emulated module of kernels/<family>.cu, built once per process."""
    return EmulatedModule(family)
