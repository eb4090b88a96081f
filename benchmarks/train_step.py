"""Time one training step of gradflow and of PyTorch on the same nets, in one process.

A step is forward, cross-entropy, backward, SGD (momentum 0.9) and zero_grad. torch's model is
mirrored from gradflow's (`to_torch`, weights included) and both see the same batch; a pair is
timed only after its first logits and loss agree. Each side runs its warmup and timed steps as
one block: alternating single steps made NumPy's and torch's thread pools fight over the cores
on the CPU. The table gives gradflow's time as a ratio to torch's.

    python -m benchmarks.train_step [--device cuda|cpu] [--mode fp32|tf32|bf16|fp16]
                                    [--nets a,b] [--graphs]

--mode bf16 runs forward and loss of both sides under autocast in bfloat16, --mode fp16 in
float16 with a GradScaler (gradflow.amp and torch.amp, the same recipe on both sides).

--graphs times gradflow's step through gf.compile_step (the whole step replayed as one CUDA
graph after its warm-up steps); torch's side stays eager.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import gradflow as gf
from gradflow import models

from .report import environment, format_table
from .timing import Step, counts_peaks, peak_memory, step_timer, summarize

NETS = {  # name: (input shape (C, H, W), batch on the GPU)
    "lenet5": ((1, 28, 28), 256),
    "alexnet32": ((3, 32, 32), 128),
    "vgg11_bn32": ((3, 32, 32), 128),
    "vgg16_bn32": ((3, 32, 32), 128),
    "alexnet": ((3, 224, 224), 128),
    "vgg16_bn": ((3, 224, 224), 32),
}
CPU_NETS = ("lenet5", "alexnet32", "vgg11_bn32")  # the 224x224 nets take minutes a step on CPU
NUM_CLASSES, LR, MOMENTUM = 10, 0.01, 0.9
TOLERANCE = {"fp32": 1e-3, "tf32": 1e-2,  # relative, on the first logits and loss
             "bf16": 5e-2, "fp16": 1e-2}  # bfloat16 keeps 8 bits of mantissa, float16 11
AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}  # --mode: autocast's dtype


@dataclass
class Side:
    """One framework's step on one net, how to time it, and where its GPU memory is counted
    (gradflow.cuda or torch.cuda; None on the CPU)."""

    step: Step
    time_ms: Callable[[Step], float]
    cuda: Any

    def block(self, warmup: int, repeats: int) -> list[float]:
        """The times of `repeats` steps run after `warmup` untimed ones, in ms."""
        for _ in range(warmup):
            self.time_ms(self.step)
        return [self.time_ms(self.step) for _ in range(repeats)]

    def peak_mib(self, steps: int = 2) -> float | None:
        """Peak memory over `steps` steps after a reset; None without a peak counter."""
        peak = None if self.cuda is None else peak_memory(self.cuda)
        if peak is None:
            return None
        for _ in range(steps):
            self.time_ms(self.step)
        return peak()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch, torch_reason = load_torch(args.device)
    notes = set_precision(args.mode, args.device, torch)
    if torch_reason:
        notes.append(f"gradflow timed alone, ratios n/a: {torch_reason}")
    if args.device == "cpu":
        notes.append("peak memory is measured on CUDA only")
    elif counts_peaks(gf.cuda):
        notes.append("peak MiB: each side's cuda.max_memory_allocated over 2 steps, in a pass "
                     "after all timing "
                     "(gradflow's: bytes in use in CuPy's pool; torch's: its caching allocator)")
    else:
        notes.append("gradflow peak memory n/a: gradflow.cuda has no max_memory_allocated / "
                     "reset_peak_memory_stats")
    notes.append(f"ratio = median over {args.rounds} round(s) of gradflow's median / torch's "
                 f"median in that round (above 1: gradflow is slower)")
    rows = []
    for name in args.nets:
        rows.append(bench_net(name, args, torch))
        _release(args.device, torch)
    # NOTE: peaks in a pass of their own, after all timing: gradflow's peak counter is a CuPy
    # memory hook (a Python call per allocation) that stays on once started.
    for row in rows:
        if args.device == "cuda" and row["check"]["status"] != "mismatch":
            _, sides = build_sides(row["net"], args, torch)
            for key, side in sides.items():
                row[key]["peak_mib"] = side.peak_mib()
            del sides
            _release(args.device, torch)
    run = {"environment": environment(args.device, args.mode, torch),
           "settings": {"warmup": args.warmup, "repeats": args.repeats,
                        "rounds": args.rounds, "lr": LR,
                        "graphs": args.graphs,
                        "momentum": MOMENTUM, "num_classes": NUM_CLASSES},
           "notes": notes, "results": rows}
    print()
    print(format_table(rows))
    for note in notes:
        print(f"note: {note}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(run, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 1 if any(r["check"]["status"] == "mismatch" for r in rows) else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"),
                        default="cuda" if gf.cuda.is_available() else "cpu")
    parser.add_argument("--mode", choices=("fp32", "tf32", "bf16", "fp16"), default="fp32",
                        help="fp32: strict float32 matmuls and convs; tf32: TF32 allowed; "
                             "bf16/fp16: autocast (fp16 with a GradScaler)")
    parser.add_argument("--nets", type=_net_list, default=None,
                        help=f"comma list of {', '.join(NETS)} (default: all on cuda, "
                             f"{', '.join(CPU_NETS)} on cpu)")
    parser.add_argument("--cpu-batch", type=at_least(1), default=32,
                        help="batch size of every net on the CPU (default 32)")
    parser.add_argument("--graphs", action="store_true",
                        help="time gradflow's step through gf.compile_step (CUDA graph replay)")
    parser.add_argument("--warmup", type=at_least(0), default=5, help="untimed steps")
    parser.add_argument("--repeats", type=at_least(1), default=20,
                        help="timed steps per side and round")
    parser.add_argument("--rounds", type=at_least(1), default=3,
                        help="rounds of one block per side, gradflow then torch; the ratio is "
                             "the median of the rounds' median ratios (default 3)")
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("last_run.json"),
                        help="where to write the results (default benchmarks/last_run.json)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not gf.cuda.is_available():
        parser.error("--device cuda: CUDA is not available to gradflow (no CuPy or no GPU)")
    if args.nets is None:
        args.nets = list(NETS if args.device == "cuda" else CPU_NETS)
    return args


def _net_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in NETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown nets {unknown or [text]}; choose from "
                                         f"{', '.join(NETS)}")
    return names


def at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def load_torch(device: str) -> tuple[Any, str | None]:
    """(torch, None) when torch can run on `device`, else (None, the reason it cannot)."""
    try:
        import torch
    except ImportError as exc:
        return None, f"PyTorch is not importable ({exc})"
    if device == "cuda" and not torch.cuda.is_available():
        return None, f"torch {torch.__version__} sees no CUDA device"
    return torch, None


def set_precision(mode: str, device: str, torch: Any) -> list[str]:
    """Select strict fp32 or TF32 matmuls on both sides; returns notes on what that means."""
    tf32 = mode == "tf32"
    if mode in AMP_DTYPES:
        return [f"--mode {mode}: forward and loss under autocast({device!r}, "
                f"{AMP_DTYPES[mode]}) on both sides" + (", GradScaler on both" if mode == "fp16"
                                                         else "")]
    if device == "cpu":
        return ["--mode tf32 has no effect on the CPU: both sides compute in fp32"] if tf32 else []
    # NOTE: CuPy reads CUPY_TF32 at its first float32 matmul, so this must precede every step.
    os.environ["CUPY_TF32"] = "1" if tf32 else "0"
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    return [f"gradflow has no TF32 switch of its own: this run sets CuPy's CUPY_TF32={int(tf32)}, "
            "which governs the cuBLAS GEMMs behind gradflow's matmul and convolution lowering; "
            "gradflow's own kernels always compute in fp32"]


def build_sides(name: str, args: argparse.Namespace, torch: Any) -> tuple:
    """(row, sides): one net, its batch and its steps on each side (gradflow alone without
    torch); the row records the check of the two sides' first outputs."""
    shape, gpu_batch = NETS[name]
    batch = args.cpu_batch if args.device == "cpu" else gpu_batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, batch)
    gf.manual_seed(0)
    model = getattr(models, name)(num_classes=NUM_CLASSES)
    row: dict[str, Any] = {"net": name, "batch": batch, "input_shape": [batch, *shape],
                           "check": None, "gradflow": None, "torch": None, "ratio": None}
    sides = {"gradflow": gradflow_side(model, x, y, args.device, args.graphs, args.mode)}
    if torch is None:
        row["check"] = {"status": "skipped", "reason": "no torch reference"}
    else:
        from .torch_mirror import to_torch
        twin = to_torch(model)
        sides["torch"] = torch_side(twin, x, y, args.device, torch, args.mode)
        row["check"] = check_pair(model, twin, x, y, args.device, torch,
                                  TOLERANCE[args.mode], args.mode)
    return row, sides


def bench_net(name: str, args: argparse.Namespace, torch: Any) -> dict[str, Any]:
    """Check, then time, one net on both sides."""
    row, sides = build_sides(name, args, torch)
    print(_check_line(name, row["batch"], row["check"]), flush=True)
    if row["check"]["status"] == "mismatch":
        return row
    times: dict[str, list[float]] = {key: [] for key in sides}
    ratios = []
    for _ in range(args.rounds):
        medians = {}
        for key, side in sides.items():
            block = side.block(args.warmup, args.repeats)
            times[key] += block
            medians[key] = float(np.median(block))
        if torch is not None:
            ratios.append(medians["gradflow"] / medians["torch"])
    for key in sides:
        row[key] = {**summarize(times[key], row["batch"]), "peak_mib": None}
    if ratios:
        # NOTE: each round's ratio pairs blocks run minutes apart at most, so a machine whose
        # speed drifts (a shared VM) moves both sides of a pair alike
        row["ratio"], row["round_ratios"] = float(np.median(ratios)), ratios
    return row


def _autocast(lib: Any, device: str, mode: str) -> Any:
    """lib's autocast region for --mode (a disabled one for fp32 and tf32)."""
    dtype = getattr(lib, AMP_DTYPES.get(mode, "bfloat16"))
    return lib.autocast(device, dtype=dtype, enabled=mode in AMP_DTYPES)


def gradflow_side(model: gf.nn.Module, x: np.ndarray, y: np.ndarray, device: str,
                  graphs: bool = False, mode: str = "fp32") -> Side:
    model.to(device)
    opt = gf.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    inputs, targets = gf.tensor(x, device=device), gf.tensor(y, device=device)
    scaler = gf.amp.GradScaler(device, enabled=mode == "fp16")

    def train(xb: gf.Tensor, yb: gf.Tensor) -> None:
        with _autocast(gf, device, mode):
            loss = gf.nn.functional.cross_entropy(model(xb), yb)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
    compiled = gf.compile_step(train) if graphs else train

    def step() -> None:
        compiled(inputs, targets)
    return Side(step, step_timer(device), gf.cuda if device == "cuda" else None)


def torch_side(model: Any, x: np.ndarray, y: np.ndarray, device: str, torch: Any,
               mode: str = "fp32") -> Side:
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    inputs = torch.from_numpy(x).to(device)
    targets = torch.from_numpy(y).to(device)
    scaler = torch.amp.GradScaler(device, enabled=mode == "fp16")

    def step() -> None:
        with _autocast(torch, device, mode):
            loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
    return Side(step, step_timer(device, torch), torch.cuda if device == "cuda" else None)


def check_pair(model: gf.nn.Module, twin: Any, x: np.ndarray, y: np.ndarray, device: str,
               torch: Any, tol: float, mode: str = "fp32") -> dict[str, Any]:
    """Compare both sides' first logits and loss on the batch, with dropout off (its masks
    differ) and batch norm in training mode, as in the timed steps."""
    # NOTE: with grad mode on, like a training step (batch norm in training mode warns under
    # no_grad, as that usually means a forgotten model.eval()).
    with _dropout_off(model, gf.nn.Dropout), _autocast(gf, device, mode):
        logits = model(gf.tensor(x, device=device))
        loss = gf.nn.functional.cross_entropy(logits, gf.tensor(y, device=device))
        ours, our_loss = logits.detach().float().cpu().numpy(), float(loss.item())
    with torch.no_grad(), _dropout_off(twin, torch.nn.Dropout), _autocast(torch, device, mode):
        logits = twin(torch.from_numpy(x).to(device))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y).to(device))
        theirs, their_loss = logits.float().cpu().numpy(), float(loss.item())
    loss_diff = abs(our_loss - their_loss) / abs(their_loss)
    logits_diff = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
    ok = loss_diff <= tol and logits_diff <= tol
    return {"status": "ok" if ok else "mismatch", "gradflow_loss": our_loss,
            "torch_loss": their_loss, "loss_rel_diff": loss_diff,
            "logits_rel_diff": logits_diff, "tolerance": tol}


@contextlib.contextmanager
def _dropout_off(model: Any, dropout: type):
    layers = [m for m in model.modules() if isinstance(m, dropout)]
    for m in layers:
        m.eval()
    try:
        yield
    finally:
        for m in layers:
            m.train()


def _check_line(name: str, batch: int, check: dict[str, Any]) -> str:
    if check["status"] == "skipped":
        return f"{name} (batch {batch}): check skipped, {check['reason']}"
    verdict = "ok" if check["status"] == "ok" else "MISMATCH, not timed"
    return (f"{name} (batch {batch}): check {verdict}: loss gradflow "
            f"{check['gradflow_loss']:.6f} torch {check['torch_loss']:.6f} (rel diff "
            f"{check['loss_rel_diff']:.1e}), logits rel diff {check['logits_rel_diff']:.1e}, "
            f"tolerance {check['tolerance']:.0e}")


def _release(device: str, torch: Any) -> None:
    """Free the last net's memory so the next one starts from an empty GPU."""
    gc.collect()
    if device == "cuda":
        gf.cuda.empty_cache()
        if torch is not None:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
