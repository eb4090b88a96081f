"""Stage 1 of .ci/gpu-triage: every kernel family compiled, then one forward and backward of
each op family on a device against the CPU, with a PASS/FAIL line per family and its worst error.

    python3 .ci/triage_ops.py [--device cuda|cpu] [--size small|full] [--time-limit S]
                              [--family-timeout S] [--family NAME ...]

A case runs one function twice on fresh copies of the same NumPy inputs: on the CPU (the NumPy
path, the reference) and on --device, and compares the outputs and the gradients of a fixed
random weighting of them. With --device cpu the CPU is compared with itself, which smoke-tests
this script in the CPU suite (tests/test_gpu_triage.py). Each case and each family runs in its
own try: a failure prints its traceback and the next one runs. On a GPU every kernel launch is
synchronised (GRADFLOW_CUDA_DEBUG=1) so a fault is blamed on the case that caused it, and a
family whose own kernels never ran fails (a silent fallback to the CuPy path is not a pass).
The exit code is the number of families that did not pass.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

os.environ.setdefault("GRADFLOW_CUDA_DEBUG", "1")  # read when gradflow.cuda.compiler loads

import gradflow as gf  # noqa: E402
import gradflow.nn.functional as F  # noqa: E402
from gradflow import models, nn  # noqa: E402
from gradflow.cuda import compiler  # noqa: E402
from gradflow.kernels_path import kernel_dir  # noqa: E402

F32, F64 = np.float32, np.float64
TOLERANCE = {F32: 1e-4, F64: 1e-9}  # max |got - want| over max |want|, per output or gradient
SIGMAS = 6.0  # how far a random draw's statistic may stray from its expectation


# -- inputs ------------------------------------------------------------------------------------
def rand(*shape: int, dtype: Any = F64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def distinct(*shape: int, dtype: Any = F64, seed: int = 0) -> np.ndarray:
    """Values without ties, so max pooling's argmax is unique."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(math.prod(shape)).reshape(shape) / 7.0).astype(dtype)


def labels(n: Any, classes: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, n)


@dataclass
class Const:
    """A float input that takes no gradient (class weights, running statistics)."""

    array: np.ndarray


def to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()


def _as_input(a: Any, device: str) -> Any:
    if isinstance(a, Const):
        return gf.tensor(a.array.copy(), device=device)
    if isinstance(a, np.ndarray):
        return gf.tensor(a.copy(), device=device, requires_grad=a.dtype.kind == "f")
    return a


def forward_backward(fn: Callable, arrays: tuple, device: str) -> list:
    """fn's outputs and the gradients of sum(output * fixed random weights) with respect to
    every float input, as NumPy arrays (None for an input that got no gradient)."""
    inputs = [_as_input(a, device) for a in arrays]
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    rng = np.random.default_rng(7)
    terms = [(o * gf.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype,
                            device=device)).sum() for o in outs if o.requires_grad]
    if terms:
        sum(terms[1:], terms[0]).backward()
    grads = [None if t.grad is None else to_numpy(t.grad) for t in inputs
             if isinstance(t, gf.Tensor) and t.requires_grad]
    return [to_numpy(o) for o in outs] + grads


def max_error(got: list, want: list) -> tuple[float, str]:
    """The largest error over paired arrays: max |got - want| / max |want| for floats (NaN
    only where the reference has NaN), 0 or inf for exact (integer, bool) arrays."""
    if len(got) != len(want):
        return math.inf, f"{len(got)} results, reference has {len(want)}"
    worst, where = 0.0, ""
    for i, (g, w) in enumerate(zip(got, want)):
        if g is None or w is None:
            if (g is None) != (w is None):
                return math.inf, f"result {i}: gradient missing on one side"
            continue
        if g.shape != w.shape or g.dtype != w.dtype:
            return math.inf, f"result {i}: {g.dtype}{g.shape}, reference {w.dtype}{w.shape}"
        if w.dtype.kind != "f":
            if not np.array_equal(g, w):
                return math.inf, f"result {i}: {int((g != w).sum())} of {w.size} differ"
            continue
        nan = np.isnan(w)
        if not np.array_equal(np.isnan(g), nan):
            return math.inf, f"result {i}: NaN where the reference has none (or not where it has)"
        if nan.all():
            continue
        scale = float(np.abs(w[~nan]).max()) or 1.0
        err = float(np.abs(g[~nan].astype(F64) - w[~nan]).max()) / scale
        if err > worst or math.isnan(err):
            worst, where = err, f"result {i}"
    return worst, where


# -- running the families ----------------------------------------------------------------------
class FamilyTimeout(BaseException):
    """Raised by the alarm when a family overruns; not an Exception, so no case swallows it."""


@dataclass
class Case:
    label: str
    err: float
    tol: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.err <= self.tol

    def ratio(self) -> float:
        """How much of its tolerance the case used (inf past a zero tolerance)."""
        if self.err == 0:
            return 0.0
        return self.err / self.tol if self.tol else math.inf


@dataclass
class Runner:
    """What the families call: cases compared against the CPU, or checked against a bound."""

    device: str
    small: bool
    cases: list = field(default_factory=list)
    launched: set = field(default_factory=set)

    def pick(self, small: Any, full: Any) -> Any:
        return small if self.small else full

    @contextlib.contextmanager
    def case(self, label: str):
        """Record a case that raised as failed, with its traceback, and carry on."""
        try:
            yield
            if self.device == "cuda":
                gf.cuda.synchronize()
        except Exception as exc:  # noqa: BLE001 - the triage names every failure and goes on
            traceback.print_exc(file=sys.stdout)
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            self.record(label, math.inf, f"raised {type(exc).__name__}: {first}")

    def compare(self, label: str, fn: Callable, *arrays: Any, tol: float | None = None) -> None:
        """fn on the device against fn on the CPU, outputs and input gradients."""
        if tol is None:
            first = next(a for a in arrays if isinstance(a, (np.ndarray, Const)))
            tol = TOLERANCE[np.asarray(getattr(first, "array", first)).dtype.type]
        with self.case(label):
            want = forward_backward(fn, arrays, "cpu")
            got = forward_backward(fn, arrays, self.device)
            self.record(label, *max_error(got, want), tol=tol)

    def close(self, label: str, got: list, want: list, tol: float) -> None:
        """Already computed results against their reference."""
        self.record(label, *max_error(got, want), tol=tol)

    def record(self, label: str, err: float, note: str = "", tol: float = 0.0) -> None:
        case = Case(label, err, tol, note)
        self.cases.append(case)
        print(f"  {'ok  ' if case.ok else 'FAIL'} {label}: err {err:.1e} (tol {tol:.0e})"
              + (f"  {note}" if note and not case.ok else ""), flush=True)


FAMILIES: list = []  # (name, function, kernel families it must launch on a GPU)


def family(name: str, expects: tuple = ()) -> Callable:
    def register(fn: Callable) -> Callable:
        FAMILIES.append((name, fn, expects))
        return fn
    return register


@contextlib.contextmanager
def alarm(seconds: float):
    def expire(signum: int, frame: Any) -> None:
        raise FamilyTimeout(f"timed out after {seconds:.0f} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.1))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_family(name: str, fn: Callable, expects: tuple, runner: Runner, limit: float) -> bool:
    """Run one family under an alarm and print its PASS/FAIL line."""
    print(f"-- {name}", flush=True)
    runner.cases, runner.launched = [], set()
    start, problem = time.perf_counter(), ""
    try:
        with alarm(limit):
            fn(runner)
    except FamilyTimeout as exc:
        traceback.print_exc(file=sys.stdout)
        problem = str(exc)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stdout)
        problem = f"raised {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    failed = [c for c in runner.cases if not c.ok]
    ran = sorted({k.split(".")[0] for k in runner.launched})
    silent = [k for k in expects if k not in ran] if runner.device == "cuda" else []
    problems = [problem] if problem else []
    problems += [f"{c.label} (err {c.err:.1e} > {c.tol:.0e}{'; ' + c.note if c.note else ''})"
                 for c in failed]
    if silent:
        problems.append(f"no {', '.join(silent)} kernel ran (fell back to the CuPy path?)")
    if not runner.cases and not problems:
        problems.append("no case ran")
    ok = not problems
    worst = max(runner.cases, key=Case.ratio, default=None)
    if ok:
        detail = f"worst {worst.label}: err {worst.err:.1e} (tol {worst.tol:.0e})" \
            if worst else ""
    else:
        detail = f"{len(failed)} of {len(runner.cases)} cases failed: " + "; ".join(problems)
    kernels = f" [kernels: {', '.join(ran)}]" if ran else ""
    print(f"{'PASS' if ok else 'FAIL'} {name}: {len(runner.cases)} cases, {seconds:.1f} s, "
          f"{detail}{kernels}", flush=True)
    return ok


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # gpu-triage's timeout: print the recap


def track_launches(runner: Runner) -> None:
    """Note every kernel gradflow launches (its launchers all go through compiler.launch)."""
    real = compiler.launch

    def counting(family: str, name: str, *args: Any, **kwargs: Any) -> None:
        runner.launched.add(f"{family}.{name}")
        return real(family, name, *args, **kwargs)
    compiler.launch = counting


def gpu_is_usable() -> str:
    """'' when a tiny op runs on the GPU, else what went wrong (after a sticky CUDA error)."""
    try:
        float((gf.ones(4, device="cuda") * 2).sum().item())
        return ""
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


# -- the families, most fundamental first ------------------------------------------------------
@family("kernels")
def kernels(r: Runner) -> None:
    """Each kernels/*.cu compiled (NVRTC, through CuPy) and every instantiated kernel found;
    on the CPU only the loader's source assembly and name expressions are checked."""
    for path in sorted(kernel_dir().glob("*.cu")):
        with r.case(path.name):
            names = compiler.name_expressions(compiler.source(path.stem))
            if not names:
                raise RuntimeError(f"{path.name} instantiates no kernel")
            if r.device == "cpu":
                r.record(f"{path.name}: {len(names)} kernels listed (cpu: not compiled)", 0.0)
                continue
            start = time.perf_counter()
            try:
                module = compiler.load_module(path.stem)
            except Exception as exc:
                if hasattr(exc, "dump"):  # cupy's CompileException: the source and NVRTC's log
                    exc.dump(sys.stdout)
                raise
            for name in names:
                if module.get_function(name) is None:
                    raise RuntimeError(f"{path.name}: kernel {name} not found after compiling")
            r.record(f"{path.name}: {len(names)} kernels compiled and found in "
                     f"{time.perf_counter() - start:.1f} s", 0.0)


@family("elementwise")
def elementwise(r: Runner) -> None:
    def unary_binary(a, b):
        pos = a.abs() + 0.1
        return (a + b, a - b, a * b, a / (b.abs() + 0.5), a.exp(), pos.log(), pos.sqrt(),
                pos ** 1.5, a.tanh(), a.sigmoid(), a.relu(), a.sin(), a.cos(), a.erf(),
                a.clamp(-0.5, 0.5), gf.maximum(a, b), gf.where(a > b, a, b), F.gelu(a),
                F.leaky_relu(a, 0.1), a * 3.0 - 1.0, (a > b), (a == a))
    shape = r.pick((4, 5), (512, 300))
    for dtype in (F32, F64):
        r.compare(f"unary/binary {dtype.__name__}", unary_binary, rand(*shape, dtype=dtype),
                  rand(*shape, dtype=dtype, seed=1))
    r.compare("broadcast (3,1,5)x(4,5) f32", lambda a, b: a * b + b.exp(),
              rand(3, 1, 5, dtype=F32), rand(4, 5, dtype=F32, seed=1))


@family("reduction")
def reduction(r: Runner) -> None:
    def reduce(a):
        return (a.sum(), a.sum(1, keepdim=True), a.sum((0, 2)), a.mean(0), a.amax(1),
                a.amin(0), a.max(), a.var(1), a.std(), a.logsumexp(2), F.softmax(a, 1),
                F.log_softmax(a, -1), a.argmax(1), a.argmin(0), a.max(dim=2)[1])
    shape = r.pick((3, 4, 5), (16, 128, 257))
    for dtype in (F32, F64):
        r.compare(f"sum/mean/max/var/softmax {dtype.__name__}", reduce,
                  distinct(*shape, dtype=dtype) / math.prod(shape))


@family("indexing")
def indexing(r: Runner) -> None:
    rows = r.pick(6, 300)
    idx = np.array([0, 3, 3, 1, 3, rows - 1])  # repeats: the backward must add them up
    cols = np.array([2, 0, 2])
    mask = np.random.default_rng(3).random(rows) > 0.5

    def index(a, idx, cols, mask):
        return (a[1:3, ::2], a[idx], a[:, cols], a[mask], a[idx, 1], gf.cat([a, a * 2], 0),
                gf.stack([a, a], 1), a.reshape(-1, 2), a.permute(1, 0).contiguous(), a.t() * 1,
                a.unsqueeze(0).expand(3, *a.shape), a.flatten(), a.chunk(2, 1)[0],
                a.split(2, 0)[1], a.transpose(0, 1)[2])
    for dtype in (F32, F64):
        r.compare(f"slice/gather/mask/cat/stack/views {dtype.__name__}", index,
                  rand(rows, 4, dtype=dtype), idx, cols, mask)

    def assign(a, idx):
        with gf.no_grad():  # gradflow refuses in-place writes into a recorded graph
            out = a * 1
            out[idx] = 0.5
            out[1:3, 0] = out[1:3, 0] * 2
        return out
    r.compare("setitem (no grad) f32", assign, rand(rows, 4, dtype=F32), np.unique(idx))


@family("matmul")
def matmul(r: Runner) -> None:
    m, k, n, b = r.pick((5, 7, 3, 2), (128, 256, 96, 8))
    for dtype in (F32, F64):
        name = dtype.__name__
        r.compare(f"mm {name}", lambda x, y: x @ y, rand(m, k, dtype=dtype),
                  rand(k, n, dtype=dtype, seed=1))
        r.compare(f"mm transposed operand a.t() @ b {name}", lambda x, y: x.t() @ y,
                  rand(k, m, dtype=dtype), rand(k, n, dtype=dtype, seed=1))
        r.compare(f"batched a @ b.mT {name}", lambda x, y: x @ y.transpose(-1, -2),
                  rand(b, m, k, dtype=dtype), rand(b, n, k, dtype=dtype, seed=1))
        r.compare(f"broadcast (b,m,k) @ (k,n) {name}", lambda x, y: x @ y,
                  rand(b, m, k, dtype=dtype), rand(k, n, dtype=dtype, seed=1))
        r.compare(f"matvec {name}", lambda x, y: x @ y, rand(m, k, dtype=dtype),
                  rand(k, dtype=dtype, seed=1))
        r.compare(f"linear {name}", F.linear, rand(b * 3, k, dtype=dtype),
                  rand(n, k, dtype=dtype, seed=1), rand(n, dtype=dtype, seed=2))
        r.compare(f"linear 3-D input, no bias {name}", lambda x, w: F.linear(x, w),
                  rand(b, 3, k, dtype=dtype), rand(n, k, dtype=dtype, seed=1))


CONV_CASES = {  # name: (groups, conv2d keywords)
    "padding=1": (1, dict(padding=1)),
    "stride=2": (1, dict(stride=2)),
    "groups=2": (2, dict(groups=2, padding=1)),
    "dilation=2": (1, dict(dilation=2, padding=2)),
    "stride=(2,1) padding=(1,2) dilation=(2,1) groups=4": (
        4, dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=4)),
    "padding=same": (1, dict(padding="same")),
}


@family("conv2d", expects=("conv",))
def conv2d(r: Runner) -> None:
    batch, channels, size, out = r.pick((2, 4, 9, 8), (8, 16, 32, 32))
    for i, (name, (groups, kw)) in enumerate(CONV_CASES.items()):
        for dtype in (F32, F64) if i == len(CONV_CASES) - 2 else (F32,):
            r.compare(f"{name} {dtype.__name__}", lambda x, w, b, kw=kw: F.conv2d(x, w, b, **kw),
                      rand(batch, channels, size, size + 1, dtype=dtype),
                      rand(out, channels // groups, 3, 3, dtype=dtype, seed=1),
                      rand(out, dtype=dtype, seed=2))
    r.compare("no bias 1x1 f32", lambda x, w: F.conv2d(x, w),
              rand(batch, channels, 5, 5, dtype=F32), rand(out, channels, 1, 1, dtype=F32, seed=1))


def _pool_input(r: Runner, dtype: Any) -> np.ndarray:
    return distinct(*r.pick((2, 3, 7, 9), (8, 16, 32, 33)), dtype=dtype)


@family("max_pool2d", expects=("pool",))
def max_pool2d(r: Runner) -> None:
    for dtype in (F32, F64):
        x = _pool_input(r, dtype)
        r.compare(f"2x2 {dtype.__name__}", lambda t: F.max_pool2d(t, 2), x)
        r.compare(f"3 stride 2 padding 1 ceil_mode indices {dtype.__name__}",
                  lambda t: F.max_pool2d(t, 3, stride=2, padding=1, ceil_mode=True,
                                         return_indices=True), x)
    r.compare("(3,2) stride 1 dilation 2 f32",
              lambda t: F.max_pool2d(t, (3, 2), stride=1, dilation=2), _pool_input(r, F32))


@family("avg_pool2d", expects=("pool",))
def avg_pool2d(r: Runner) -> None:
    for dtype in (F32, F64):
        x = _pool_input(r, dtype)
        name = dtype.__name__
        r.compare(f"3 stride 2 padding 1 count_include_pad=True {name}",
                  lambda t: F.avg_pool2d(t, 3, stride=2, padding=1), x)
        r.compare(f"3 stride 2 padding 1 count_include_pad=False {name}",
                  lambda t: F.avg_pool2d(t, 3, stride=2, padding=1, count_include_pad=False), x)
        r.compare(f"(2,3) stride 2 ceil_mode {name}",
                  lambda t: F.avg_pool2d(t, (2, 3), stride=2, ceil_mode=True), x)
        r.compare(f"3 stride 2 padding 1 ceil_mode count_include_pad=False {name}",
                  lambda t: F.avg_pool2d(t, 3, stride=2, padding=1, ceil_mode=True,
                                         count_include_pad=False), x)
    r.compare("2 stride 1 divisor_override=3 f32",
              lambda t: F.avg_pool2d(t, 2, stride=1, divisor_override=3), _pool_input(r, F32))


@family("adaptive_avg_pool2d", expects=("pool",))
def adaptive_avg_pool2d(r: Runner) -> None:
    for dtype in (F32, F64):
        x = _pool_input(r, dtype)
        for size in ((3, 4), 1, (9, 2)):
            r.compare(f"output {size} {dtype.__name__}",
                      lambda t, size=size: F.adaptive_avg_pool2d(t, size), x)


@family("batch_norm", expects=("batchnorm",))
def batch_norm(r: Runner) -> None:
    shapes = r.pick([(4, 3, 5, 6), (6, 3)], [(32, 64, 16, 16), (256, 128)])
    for shape in shapes:
        c = shape[1]
        for dtype in (F32, F64):
            name = f"{shape} {dtype.__name__}"

            def train(x, w, b):
                rm = gf.zeros(c, dtype=x.dtype, device=x.device)
                rv = gf.ones(c, dtype=x.dtype, device=x.device)
                return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3), rm, rv
            x = rand(*shape, dtype=dtype) * 3 + 1
            w, b = rand(c, dtype=dtype, seed=3), rand(c, dtype=dtype, seed=4)
            r.compare(f"train, running stats updated {name}", train, x, w, b)
            r.compare(f"eval {name}",
                      lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False), x, w,
                      b, Const(rand(c, dtype=dtype, seed=5)),
                      Const(np.abs(rand(c, dtype=dtype, seed=6)) + 0.5))
    r.compare("train without affine or running stats f32",
              lambda x: F.batch_norm(x, None, None, training=True), rand(*shapes[0], dtype=F32))


@family("cross_entropy", expects=("softmax_xent",))
def cross_entropy(r: Runner) -> None:
    n, c = r.pick((7, 10), (256, 1000))
    target = labels(n, c)
    ignored = target.copy()
    ignored[::3] = 2
    weight = np.random.default_rng(6).uniform(0.5, 2.0, c)
    for dtype in (F32, F64):
        x = rand(n, c, dtype=dtype) * 4
        w = Const(weight.astype(dtype))
        name = dtype.__name__
        r.compare(f"mean {name}", F.cross_entropy, x, target)
        r.compare(f"weight + ignore_index=2 {name}",
                  lambda x, t, w: F.cross_entropy(x, t, w, ignore_index=2), x, ignored, w)
        r.compare(f"label_smoothing=0.1 {name}",
                  lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), x, target)
        r.compare(f"weight + ignore_index + label_smoothing, sum {name}",
                  lambda x, t, w: F.cross_entropy(x, t, w, ignore_index=2, label_smoothing=0.2,
                                                  reduction="sum"), x, ignored, w)
        r.compare(f"reduction none + weight + smoothing {name}",
                  lambda x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.3,
                                                  reduction="none"), x, target, w)
    r.compare("(N,C,H,W) f32", F.cross_entropy, rand(2, 5, 3, 4, dtype=F32), labels((2, 3, 4), 5))


OPTIMIZERS = [  # label, optimizer, keywords
    ("SGD momentum", "SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD nesterov weight_decay", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True,
                                              weight_decay=1e-2)),
    ("Adam amsgrad", "Adam", dict(lr=1e-2, amsgrad=True)),
    ("AdamW amsgrad", "AdamW", dict(lr=1e-2, amsgrad=True, weight_decay=0.1)),
    ("RMSprop centered momentum", "RMSprop", dict(lr=1e-2, centered=True, momentum=0.5)),
    ("Adagrad lr_decay", "Adagrad", dict(lr=0.1, lr_decay=1e-2)),
]


@family("optimizers", expects=("optim",))
def optimizers(r: Runner) -> None:
    shapes = r.pick([(7, 5), (5,)], [(512, 256), (256,)])

    def trajectory(device: str, name: str, kwargs: dict, dtype: Any, steps: int = 3) -> list:
        params = [gf.tensor(rand(*s, dtype=dtype, seed=i), device=device, requires_grad=True)
                  for i, s in enumerate(shapes)]
        opt = getattr(gf.optim, name)(params, **kwargs)
        for step in range(steps):
            for i, p in enumerate(params):
                p.grad = gf.tensor(rand(*shapes[i], dtype=dtype, seed=100 + 10 * step + i),
                                   device=device)
            opt.step()
        return [to_numpy(p) for p in params]

    for label, name, kwargs in OPTIMIZERS:
        for dtype in (F32, F64):
            case = f"{label}, 3 steps {dtype.__name__}"
            with r.case(case):
                want = trajectory("cpu", name, kwargs, dtype)
                r.close(case, trajectory(r.device, name, kwargs, dtype), want,
                        tol={F32: 1e-5, F64: 1e-11}[dtype])


def _sigmas(value: float, expected: float, sd: float) -> float:
    return abs(value - expected) / sd


@family("random", expects=("random",))
def random_family(r: Runner) -> None:
    n = r.pick(20_000, 2_000_000)
    for dtype in (gf.float32, gf.float64):
        name = str(dtype)
        with r.case(f"rand moments {name}"):
            gf.manual_seed(123)
            u = to_numpy(gf.rand(n, device=r.device, dtype=dtype)).astype(F64)
            inside = 0.0 if 0.0 <= u.min() and u.max() < 1.0 else math.inf
            z = max(_sigmas(u.mean(), 0.5, math.sqrt(1 / 12 / n)),
                    _sigmas(u.var(), 1 / 12, math.sqrt((1 / 80 - 1 / 144) / n)))
            r.record(f"rand mean, variance (sigmas), range [0, 1) {name}", max(z, inside),
                     tol=SIGMAS)
        with r.case(f"randn moments {name}"):
            x = to_numpy(gf.randn(n, device=r.device, dtype=dtype)).astype(F64)
            z = max(_sigmas(x.mean(), 0.0, 1 / math.sqrt(n)),
                    _sigmas(x.var(), 1.0, math.sqrt(2 / n)))
            r.record(f"randn mean, variance (sigmas) {name}", z, tol=SIGMAS)
    with r.case("randint"):
        k = to_numpy(gf.randint(0, 10, (n,), device=r.device))
        counts = np.bincount(k, minlength=10) if k.min() >= 0 else np.zeros(11)
        z = max(_sigmas(c, n / 10, math.sqrt(n * 0.1 * 0.9)) for c in counts)
        r.record("randint(0, 10) counts (sigmas), range", z if len(counts) == 10 else math.inf,
                 tol=SIGMAS)

    def draws(seed: int) -> list:
        gf.manual_seed(seed)
        return [to_numpy(gf.rand(1000, device=r.device)), to_numpy(gf.randn(37, 3,
                device=r.device, dtype=gf.float64)), to_numpy(gf.randint(0, 5, (99,),
                                                                       device=r.device))]
    with r.case("same seed, same draws"):
        first, again, other = draws(7), draws(7), draws(8)
        r.close("manual_seed(7) twice gives the same draws", again, first, tol=0.0)
        same = any(np.array_equal(a, b) for a, b in zip(first, other))
        r.record("manual_seed(8) gives other draws", math.inf if same else 0.0)


@family("dropout", expects=("random",))
def dropout(r: Runner) -> None:
    n, p = r.pick(20_000, 1_000_000), 0.3
    with r.case("dropout p=0.3"):
        gf.manual_seed(5)
        x = gf.ones(n, device=r.device, requires_grad=True)
        y = F.dropout(x, p, training=True)
        y.sum().backward()
        out, grad = to_numpy(y), to_numpy(x.grad)
        kept = out != 0
        r.record("kept fraction (sigmas)", _sigmas(kept.mean(), 1 - p, math.sqrt(p * (1 - p) / n)),
                 tol=SIGMAS)
        r.record("kept values are 1/(1-p)", float(np.abs(out[kept] - 1 / (1 - p)).max()),
                 tol=1e-6)
        r.record("gradient is the same mask", float(np.abs(grad - out).max()), tol=1e-6)
        gf.manual_seed(5)
        again = to_numpy(F.dropout(gf.ones(n, device=r.device), p, training=True))
        r.close("same seed, same mask", [again], [out], tol=0.0)
    with r.case("eval"):
        x = gf.tensor(rand(50, dtype=F32), device=r.device)
        layer = nn.Dropout(p).eval()
        r.close("eval mode is the identity", [to_numpy(layer(x)),
                to_numpy(F.dropout(x, p, training=False))], [to_numpy(x)] * 2, tol=0.0)


@family("lenet5_compile_step", expects=("conv", "pool", "softmax_xent", "optim"))
def lenet5_compile_step(r: Runner) -> None:
    """A LeNet-5 SGD step through gf.compile_step (captured after 2 eager warm-up steps, then
    replayed) against eager steps on the device, and eager on the device against the CPU."""
    batch, steps = r.pick(8, 64), 6
    data = [(rand(batch, 1, 28, 28, dtype=F32, seed=i), labels(batch, 10, seed=i))
            for i in range(steps)]

    def train(device: str, compiled: bool) -> tuple:
        gf.manual_seed(0)
        model = models.lenet5().to(device)
        opt = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        run = gf.compile_step(step, warmup=2) if compiled else step
        losses = [float(run(gf.tensor(x, device=device), gf.tensor(y, device=device)).item())
                  for x, y in data]
        graphs = len(getattr(run, "_graphs", {}))
        return [np.array(losses)] + [to_numpy(p) for p in model.parameters()], graphs

    with r.case("lenet5"):
        cpu, _ = train("cpu", False)
        eager, _ = train(r.device, False)
        # NOTE: debug mode synchronises after each launch, which a stream capture forbids.
        compiler.set_debug(False)
        try:
            graph, captured = train(r.device, True)
        finally:
            compiler.set_debug(os.environ.get("GRADFLOW_CUDA_DEBUG", "") not in ("", "0"))
        r.close(f"{steps} eager steps on {r.device} against the CPU (losses, weights)", eager,
                cpu, tol=1e-4)
        r.close(f"{steps} compile_step steps against eager (losses, weights)", graph, eager,
                tol=1e-5)
        if r.device == "cuda":
            r.record(f"graphs captured: {captured}", 0.0 if captured == 1 else math.inf,
                     tol=0.0)


# -- main --------------------------------------------------------------------------------------
def main(argv: list | None = None) -> int:
    names = [name for name, _, _ in FAMILIES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--size", choices=("small", "full"), default="full",
                        help="small: tiny shapes (the CPU smoke test); full: GPU-sized shapes")
    parser.add_argument("--time-limit", type=float, default=600.0, metavar="S",
                        help="seconds for all families; the ones not reached are SKIPped")
    parser.add_argument("--family-timeout", type=float, default=60.0, metavar="S")
    parser.add_argument("--family", action="append", choices=names, metavar="NAME",
                        help=f"run only these (repeatable): {', '.join(names)}")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    start = time.perf_counter()
    print(f"triage_ops: --device {args.device} --size {args.size}, gradflow {gf.__version__}, "
          f"GRADFLOW_CUDA_DEBUG={os.environ.get('GRADFLOW_CUDA_DEBUG')}", flush=True)
    selected = [f for f in FAMILIES if not args.family or f[0] in args.family]
    results: dict = {}
    skip_reason = ""
    if args.device == "cuda" and not gf.cuda.is_available():
        skip_reason = "gradflow sees no GPU (gf.cuda.is_available() is False)"
    runner = Runner(args.device, args.size == "small")
    track_launches(runner)
    broken = ""
    try:
        for name, fn, expects in selected:
            left = args.time_limit - (time.perf_counter() - start)
            if skip_reason or left < 3:
                results[name] = "SKIP"
                print(f"SKIP {name}: {skip_reason or 'the time limit is spent'}", flush=True)
                continue
            ok = run_family(name, fn, expects, runner, min(args.family_timeout, left - 1))
            results[name] = "PASS" if ok else "FAIL"
            if not ok and args.device == "cuda" and not broken:
                broken = gpu_is_usable()
                if broken:
                    print(f"NOTE: the GPU context is unusable after {name} ({broken}): the "
                          "families after it fail as a consequence", flush=True)
    except KeyboardInterrupt:  # Ctrl-C or the stage's timeout: say where it stopped
        traceback.print_exc(file=sys.stdout)
        print(f"interrupted after {time.perf_counter() - start:.0f} s", flush=True)
    for name, _, _ in selected:
        results.setdefault(name, "NOT REACHED")
    bad = [name for name, result in results.items() if result != "PASS"]
    print(f"== {len(results)} families in {time.perf_counter() - start:.0f} s: "
          f"{len(results) - len(bad)} passed" + ("; not passed: " + ", ".join(
              f"{name} ({results[name]})" for name in bad) if bad else ""), flush=True)
    return len(bad)


if __name__ == "__main__":
    sys.exit(main())
