"""`python -m gradflow.train --task charlm`: train a character language model on the Tiny
Shakespeare text bundled with gradflow (gradflow.datasets.TinyShakespeare).

`--model char_lstm` (the default: Embedding(65, 64), a 2-layer LSTM of 256, Linear) or
`--model char_transformer` (a small decoder-only Transformer); either model name alone implies
the task. Each step trains on a batch of random windows of the training text (the first 90%);
an epoch is --steps-per-epoch steps, after which the run prints a line with the training and
validation loss in nats and bits per character (nats / ln 2), and a sample of generated text
(temperature sampling, a fixed seed). It writes metrics.csv, curves.png (with matplotlib) and
the best and last checkpoints to --out; `--resume` continues a run exactly where it stopped;
Ctrl-C (or --max-steps) finishes the current step, saves, and exits. One process only.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import cuda, dtypes, models, nn, optim
from ..autograd.grad_mode import no_grad
from ..creation import tensor
from ..datasets import TinyShakespeare
from ..random import get_rng_state, manual_seed, set_rng_state
from ..serialization import CheckpointError, load, save
from ..summary import summary
from ..threads import set_num_threads
from . import parallel, report
from .cli import (
    INTERRUPTED,
    OUTPUTS,
    PROG,
    USAGE_ERROR,
    StopRequest,
    UsageError,
    add_run_options,
    check_device_and_out,
)

MODELS = ("char_lstm", "char_transformer")
COLUMNS = ["epoch", "step", "train_loss", "train_bpc", "val_loss", "val_bpc", "lr", "seconds",
           "chars_per_second"]
MAY_CHANGE_ON_RESUME = {"resume", "out", "device", "max_steps", "exist_ok", "threads"}
SAMPLE_SEED = 1234  # the generator of the per-epoch samples, the same in every epoch
PROMPT = "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} --task charlm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["charlm"], default="charlm", help=argparse.SUPPRESS)
    p.add_argument("--model", choices=MODELS, default="char_lstm",
                   help="the character model (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=5, help="epochs (default: %(default)s)")
    p.add_argument("--steps-per-epoch", type=int, default=150,
                   help="training steps per epoch (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="sequences per step (default: %(default)s)")
    p.add_argument("--seq-len", type=int, default=100,
                   help="characters per sequence (default: %(default)s)")
    p.add_argument("--lr", type=float, default=2e-3,
                   help="Adam's learning rate, constant (default: %(default)s)")
    p.add_argument("--clip", type=float, default=1.0,
                   help="clip the gradients' total norm to this; 0: no clipping "
                        "(default: %(default)s)")
    p.add_argument("--embed", type=int, default=64,
                   help="char_lstm: embedding width (default: %(default)s)")
    p.add_argument("--hidden", type=int,
                   help="char_lstm: LSTM width; char_transformer: model width "
                        "(default: 256 for char_lstm, 128 for char_transformer)")
    p.add_argument("--layers", type=int, default=2,
                   help="LSTM or Transformer layers (default: %(default)s)")
    p.add_argument("--heads", type=int, default=4,
                   help="char_transformer: attention heads (default: %(default)s)")
    p.add_argument("--val-chars", type=int, default=0, metavar="N",
                   help="validate on the first N characters of the validation text; 0: all "
                        "111,540 (default: %(default)s)")
    p.add_argument("--sample-length", type=int, default=200,
                   help="characters generated after each epoch; 0: none (default: "
                        "%(default)s)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="sampling temperature (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the weights and the batches (default: %(default)s)")
    add_run_options(p, "runs/charlm")
    return p


def build_model(args: argparse.Namespace, vocab: int) -> nn.Module:
    if args.model == "char_lstm":
        return models.char_lstm(vocab, args.embed, args.hidden or 256, args.layers)
    return models.char_transformer(vocab, d_model=args.hidden or 128, heads=args.heads,
                                   layers=args.layers, context=args.seq_len)


def sample(model: nn.Module, data: TinyShakespeare, length: int, temperature: float = 1.0,
           prompt: str = PROMPT, seed: int = SAMPLE_SEED, device: str = "cpu") -> str:
    """`length` characters drawn one at a time from the model's softmax(logits / temperature)
    after `prompt`, with a NumPy generator seeded by `seed` (the same text for the same
    weights). A recurrent model carries its state; a Transformer re-reads its context."""
    if temperature <= 0:
        raise ValueError(f"sample: temperature must be positive, got {temperature}")
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.eval()
    ids = list(data.encode(prompt))
    out: list[int] = []
    feed, state = ids, None
    recurrent = not hasattr(model, "context")
    with no_grad():
        for _ in range(length):
            x = tensor(np.asarray([feed], np.int64), device=device)
            logits, state = model.step(x, state)
            z = logits[0, -1].cpu().numpy().astype(np.float64) / temperature
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(nxt)
            ids.append(nxt)
            feed = [nxt] if recurrent else ids
    model.train(was_training)
    return data.decode(out)


def _check_args(args: argparse.Namespace) -> None:
    for name in ("epochs", "steps_per_epoch", "batch_size", "seq_len", "embed", "hidden",
                 "layers", "heads", "max_steps", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    for name in ("val_chars", "sample_length", "clip"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be non-negative, not "
                             f"{getattr(args, name)}")
    if args.lr <= 0 or args.temperature <= 0:
        raise UsageError(f"--lr and --temperature must be positive, not {args.lr} and "
                         f"{args.temperature}")
    width = args.hidden or 128
    if args.model == "char_transformer" and width % args.heads:
        raise UsageError(f"--hidden {width} must be a multiple of --heads {args.heads}")
    check_device_and_out(args)


class CharRun:
    """One character-model run: the data, the model, the optimizer and its checkpoints."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = ("cuda" if cuda.is_available() else "cpu") if args.device == "auto" \
            else args.device
        manual_seed(args.seed)
        self.train = TinyShakespeare("train", args.seq_len)
        self.val = TinyShakespeare("val", args.seq_len)
        if args.val_chars:
            self.val.data = self.val.data[:args.val_chars + 1]
        if len(self.val) == 0:
            raise UsageError(f"--val-chars {args.val_chars} is shorter than one sequence of "
                             f"--seq-len {args.seq_len}")
        self.model = build_model(args, self.train.vocab_size).to(self.device)
        self.opt = optim.Adam(self.model.parameters(), lr=args.lr)
        self.out = Path(args.out)
        self.epoch, self.step = 0, 0
        self.history: list[dict] = []
        self.best_val_loss = math.inf
        self.partial = [0.0, 0, 0.0]  # this epoch so far: loss sum, steps, seconds

    def batch(self, starts: np.ndarray) -> tuple:
        """Inputs and targets (B x L) of the training windows starting at `starts`."""
        offsets = starts[:, None] + np.arange(self.args.seq_len + 1)
        window = self.train.data[offsets]
        return (tensor(window[:, :-1], device=self.device),
                tensor(window[:, 1:], device=self.device))

    def epoch_starts(self, epoch: int) -> np.ndarray:
        """steps x batch start offsets of the epoch's windows, from (seed, epoch) alone, so a
        resumed run sees the same batches."""
        a = self.args
        high = len(self.train.data) - a.seq_len - 1
        return np.random.default_rng([a.seed, epoch]).integers(
            0, high + 1, size=(a.steps_per_epoch, a.batch_size))

    def loss(self, x, y):
        logits = self.model(x)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def train_epoch(self, stop: StopRequest) -> dict | None:
        self.model.train()
        starts = self.epoch_starts(self.epoch)
        loss_sum, steps, before = self.partial
        start = time.perf_counter()
        a = self.args
        bar = tqdm(total=a.steps_per_epoch, initial=self.step, unit="step", leave=False,
                   desc=f"epoch {self.epoch + 1}/{a.epochs}", dynamic_ncols=True)
        while self.step < a.steps_per_epoch:
            x, y = self.batch(starts[self.step])
            self.opt.zero_grad()
            loss = self.loss(x, y)
            loss.backward()
            if a.clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), a.clip)
            self.opt.step()
            self.step += 1
            loss_sum += float(loss)
            steps += 1
            bar.update(1)
            if self.step % 10 == 0 or self.step == a.steps_per_epoch:
                bar.set_postfix(loss=f"{loss_sum / steps:.4f}",
                                bpc=f"{loss_sum / steps / math.log(2):.3f}")
            if stop.count_step() and self.step < a.steps_per_epoch:
                bar.close()
                self.partial = [loss_sum, steps, before + time.perf_counter() - start]
                return None
        bar.close()
        seconds = before + time.perf_counter() - start
        self.partial = [0.0, 0, 0.0]
        chars = steps * a.batch_size * a.seq_len
        return {"train_loss": loss_sum / steps, "seconds": seconds,
                "chars_per_second": chars / seconds}

    def evaluate(self) -> float:
        """Mean cross-entropy (nats per character) over the validation chunks."""
        self.model.eval()
        inputs, targets = self.val.chunks()
        total = 0.0
        with no_grad():
            for lo in range(0, len(inputs), 64):
                x = tensor(inputs[lo:lo + 64], device=self.device)
                y = tensor(targets[lo:lo + 64], device=self.device)
                total += float(self.loss(x, y)) * y.numel()
        return total / targets.size

    def checkpoint(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "epoch": self.epoch, "step": self.step, "history": self.history,
                "best_val_loss": self.best_val_loss, "rng": get_rng_state(),
                "partial": self.partial, "task": "charlm",
                "args": {k: v for k, v in vars(self.args).items() if k != "resume"}}

    def save(self, name: str) -> Path:
        path = self.out / f"{name}.ckpt"
        self.out.mkdir(parents=True, exist_ok=True)
        save(self.checkpoint(), path)
        return path

    def resume(self, spec: str) -> None:
        path = self.out / "last.ckpt" if spec == "last" else Path(spec)
        if not path.is_file():
            raise UsageError(f"--resume: no checkpoint at {path}")
        try:
            ckpt = load(path, map_location=self.device)
        except CheckpointError as err:
            raise UsageError(f"--resume: {err}") from None
        if not isinstance(ckpt, dict) or ckpt.get("task") != "charlm":
            raise UsageError(f"--resume: {path} is not a checkpoint of {PROG} --task charlm")
        changed = [f"--{k.replace('_', '-')} {ckpt['args'][k]} (now {v})"
                   for k, v in vars(self.args).items()
                   if k not in MAY_CHANGE_ON_RESUME and k in ckpt["args"]
                   and ckpt["args"][k] != v]
        if changed:
            raise UsageError(f"--resume: {path} was made with other options: "
                             f"{', '.join(changed)}; resume with the same options, or start "
                             f"a new run in another --out")
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.epoch, self.step, self.history = ckpt["epoch"], ckpt["step"], ckpt["history"]
        self.best_val_loss, self.partial = ckpt["best_val_loss"], ckpt["partial"]
        set_rng_state(ckpt["rng"])
        print(f"resumed from {path}: epoch {self.epoch + 1}, step {self.step}")


def _epoch_line(row: dict) -> str:
    return (f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f} nats "
            f"({row['train_bpc']:.3f} bpc)  val loss {row['val_loss']:.4f} nats "
            f"({row['val_bpc']:.3f} bpc)  {row['seconds']:.1f}s "
            f"({row['chars_per_second']:.0f} chars/s)")


def main(argv: list | None = None) -> int:
    """Train as the command line says; 0, INTERRUPTED, or USAGE_ERROR after one line."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if parallel.launched_world_size() > 1:
            raise UsageError("--task charlm trains in one process; run it without a launcher")
        _check_args(args)
        set_num_threads(args.threads)
        run = CharRun(args)
        if args.resume:
            run.resume(args.resume)
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    if args.exist_ok and not args.resume:
        for name in OUTPUTS:
            (run.out / name).unlink(missing_ok=True)
    return _train(run)


def _train(run: CharRun) -> int:
    args = run.args
    print(f"gradflow.train: {args.model} on Tiny Shakespeare ({len(run.train.data):,} train, "
          f"{len(run.val.data):,} val characters, vocabulary {run.train.vocab_size}), "
          f"device {run.device}")
    summary(run.model, (args.seq_len,), device=run.device, dtype=dtypes.int64)
    said_no_plot = False
    with StopRequest(args.max_steps) as stop:
        while run.epoch < args.epochs:
            result = run.train_epoch(stop)
            if result is None:
                path = run.save("last")
                print(f"stopped at epoch {run.epoch + 1}, step {run.step}: saved {path}; "
                      f"continue with --resume")
                return INTERRUPTED
            val = run.evaluate()
            run.epoch, run.step = run.epoch + 1, 0
            row = {"epoch": run.epoch, "step": run.epoch * args.steps_per_epoch, **result,
                   "train_bpc": result["train_loss"] / math.log(2), "val_loss": val,
                   "val_bpc": val / math.log(2), "lr": args.lr}
            run.history.append(row)
            tqdm.write(_epoch_line(row))
            if args.sample_length:
                text = sample(run.model, run.train, args.sample_length, args.temperature,
                              device=run.device)
                tqdm.write(f"sample (temperature {args.temperature}):\n{text}\n")
            if val < run.best_val_loss:
                run.best_val_loss = val
                run.save("best")
            run.save("last")
            report.write_csv(run.history, run.out / "metrics.csv", COLUMNS)
            if not report.plot_loss_curves(run.history, run.out / "curves.png",
                                           f"{args.model} on Tiny Shakespeare") \
                    and not said_no_plot:
                said_no_plot = True
                print("curves.png skipped: matplotlib is not installed (pip install "
                      "matplotlib)")
            if stop.requested:
                print(f"stopped after epoch {run.epoch}: saved {run.out / 'last.ckpt'}")
                return INTERRUPTED
    best = min(run.history, key=lambda r: r["val_loss"])
    print(f"best validation loss {best['val_loss']:.4f} nats ({best['val_bpc']:.3f} bpc, "
          f"epoch {best['epoch']}); outputs in {run.out}")
    return 0
