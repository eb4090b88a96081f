"""Per-op dispatch time of gradflow and of PyTorch, in one process, on the CPU.

Each op runs on tiny inputs that require grad (4x4 float32; conv2d: a 1x1x4x4 image and a
1x1x3x3 kernel), so the arithmetic is negligible and the time is what the framework spends
recording one op: argument checks, dtype promotion, making the output tensor and the graph
node. The Linear row is a module call: the layer's two ops (product, bias) and the call itself.
The same calls serve both frameworks, as gradflow mirrors torch's API. Each time is the
minimum over `--repeats` blocks of `--number` calls, the least disturbed by other work on the
machine. The last line is gradflow's LeNet-5 forward pass (recording, as in training) divided
by the number of ops it records, beside torch's time for its mirror.

    python -m benchmarks.dispatch [--number N] [--repeats R] [--batch B] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import timeit
from pathlib import Path
from typing import Any, Callable

import numpy as np

import gradflow as gf
from gradflow import models

from .report import environment
from .train_step import at_least, load_torch


def cases(fw: Any) -> dict[str, Callable[[], Any]]:
    """The tiny ops, built with `fw` (the gradflow or the torch module)."""
    fw.manual_seed(0)
    a, b = fw.randn(4, 4, requires_grad=True), fw.randn(4, 4, requires_grad=True)
    image = fw.randn(1, 1, 4, 4, requires_grad=True)
    kernel = fw.randn(1, 1, 3, 3, requires_grad=True)
    layer, conv2d = fw.nn.Linear(4, 4), fw.nn.functional.conv2d
    return {"add": lambda: a + b, "mul": lambda: a * b, "relu": lambda: fw.relu(a),
            "sum": lambda: a.sum(), "reshape": lambda: a.reshape(16), "matmul": lambda: a @ b,
            "Linear(4, 4) call": lambda: layer(a), "conv2d": lambda: conv2d(image, kernel)}


def per_call_us(fn: Callable[[], Any], number: int, repeats: int) -> float:
    """Microseconds per call of `fn`: the minimum over `repeats` blocks of `number` calls."""
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeats)) / number * 1e6


def recorded_ops(out: gf.Tensor) -> int:
    """How many op nodes (Functions) the graph of `out` holds; leaves' gradient sinks aside."""
    seen, stack = {out.grad_fn}, [out.grad_fn]
    while stack:
        for child, _ in stack.pop().next_edges:
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    return sum(1 for node in seen if isinstance(node, gf.autograd.Function))


def forward_ms(model: Any, x: Any, repeats: int) -> float:
    """The fastest of `repeats` forward passes (after two untimed ones), in ms."""
    for _ in range(2):
        model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def measure(number: int, repeats: int, batch: int, torch: Any) -> dict[str, Any]:
    """Each side as one block, gradflow first: every op, then LeNet-5's forward (torch's is
    gradflow's model mirrored). NOTE: torch's OpenMP threads spin a while after its conv2d;
    run between torch's ops, gradflow's LeNet-5 forward took ten times as long on 2 cores."""
    gf.manual_seed(0)
    model = models.lenet5(num_classes=10)
    x = np.random.default_rng(0).standard_normal((batch, 1, 28, 28), dtype=np.float32)
    ours = {k: per_call_us(f, number, repeats) for k, f in cases(gf).items()}
    lenet = {"batch": batch, "ops": recorded_ops(model(gf.tensor(x))),
             "gradflow_ms": forward_ms(model, gf.tensor(x), repeats), "torch_ms": None,
             "ratio": None}
    lenet["gradflow_us_per_op"] = lenet["gradflow_ms"] * 1e3 / lenet["ops"]
    theirs: dict[str, float | None] = dict.fromkeys(ours)
    if torch is not None:
        from .torch_mirror import to_torch
        theirs.update({k: per_call_us(f, number, repeats) for k, f in cases(torch).items()})
        lenet["torch_ms"] = forward_ms(to_torch(model), torch.from_numpy(x), repeats)
        lenet["ratio"] = lenet["gradflow_ms"] / lenet["torch_ms"]
    rows = [{"op": op, "gradflow_us": ours[op], "torch_us": theirs[op],
             "ratio": None if theirs[op] is None else ours[op] / theirs[op]} for op in ours]
    return {"ops": rows, "lenet5": lenet}


def format_report(result: dict[str, Any]) -> str:
    """The ops table, then the LeNet-5 line."""
    lines = [f"{'op':<18} {'gradflow us':>11} {'torch us':>9} {'gradflow/torch':>14}"]
    for r in result["ops"]:
        theirs = "n/a" if r["torch_us"] is None else f"{r['torch_us']:.2f}"
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"{r['op']:<18} {r['gradflow_us']:>11.2f} {theirs:>9} {ratio:>14}")
    le = result["lenet5"]
    theirs = ("torch n/a" if le["torch_ms"] is None
              else f"torch {le['torch_ms']:.2f} ms, gradflow/torch {le['ratio']:.2f}")
    lines.append(f"lenet5 forward (batch {le['batch']}): gradflow {le['gradflow_ms']:.2f} ms / "
                 f"{le['ops']} ops = {le['gradflow_us_per_op']:.2f} us per op; {theirs}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dispatch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=at_least(1), default=2000,
                        help="calls per timed block (default 2000)")
    parser.add_argument("--repeats", type=at_least(1), default=5,
                        help="timed blocks per op, and timed LeNet-5 forwards (default 5)")
    parser.add_argument("--batch", type=at_least(1), default=32,
                        help="LeNet-5's batch size (default 32, as in train_step on the CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    torch, reason = load_torch("cpu")
    result = measure(args.number, args.repeats, args.batch, torch)
    print(format_report(result))
    notes = ["times are minima over repeated blocks; gradflow/torch above 1: gradflow is slower"]
    if reason:
        notes.append(f"gradflow timed alone, ratios n/a: {reason}")
    for note in notes:
        print(f"note: {note}")
    if args.json is not None:
        run = {"environment": environment("cpu", "fp32", torch),
               "settings": {"number": args.number, "repeats": args.repeats,
                            "batch": args.batch},
               "notes": notes, **result}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(run, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
