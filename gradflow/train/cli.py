"""`python -m gradflow.train` (or `gradflow-train`): train a model-zoo net on MNIST or CIFAR-10.

With no arguments it trains LeNet-5 on the MNIST digits bundled with gradflow, on the GPU when
there is one, else on the CPU. It prints the model summary, a progress bar per epoch and a line
per epoch; writes metrics.csv, curves.png (with matplotlib), and the best and last checkpoints
to --out. `--resume` continues a run exactly where it stopped; Ctrl-C (or --max-steps) finishes
the current step, saves, and exits. Under a launcher (`mpiexec -n N python -m gradflow.train`)
it trains data-parallel (gradflow/train/parallel.py). `--task charlm` (or `--model char_lstm`,
`--model char_transformer`) trains a character language model instead (gradflow/train/charlm.py).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from tqdm import tqdm

from .. import amp, cuda, models, nn, optim
from ..autograd.grad_mode import no_grad
from ..creation import tensor
from ..random import get_rng_state, manual_seed, set_rng_state
from ..serialization import CheckpointError, load, save
from ..summary import summary
from ..threads import env_num_threads, set_num_threads
from ..utils.data.distributed import DistributedSampler
from ..utils.early_stopping import EarlyStopping
from ..utils.metrics import correct_topk
from . import data, parallel, report
from .weights import load_weights

INTERRUPTED = 130  # the exit code of a run stopped by Ctrl-C or --max-steps, after saving
USAGE_ERROR = 2  # argparse's exit code for a bad command line
SIZE_224, SIZE_32 = (3, 224, 224), (3, 32, 32)
PROG = "python -m gradflow.train"
OUTPUTS = ("last.ckpt", "best.ckpt", "metrics.csv", "curves.png")  # what a run writes to --out
# Options that change neither the schedule nor the data, so a resumed run may change them.
MAY_CHANGE_ON_RESUME = {"resume", "out", "device", "data_dir", "max_steps", "exist_ok",
                        "threads", "tensorboard", "weights"}
EVAL_FLOOR = 1000  # --subset N evaluates on max(N, EVAL_FLOOR) images of each split
AGREE_EVERY = 20  # under a launcher the ranks agree on a Ctrl-C every this many steps


class UsageError(Exception):
    """A mistake in the command line or in a file it names: main prints the message as one
    line, as argparse does, and exits with USAGE_ERROR."""


def _rgb_model(name: str) -> Callable[[int, int], nn.Module]:
    """The builder of a model-zoo net that takes three channels: it ignores the channel count."""
    return lambda k, c: getattr(models, name)(k)


# name: (builder taking the number of classes and input channels, input shape (C, H, W),
# "28x28" or "32x32" for the data's channels at that size, or None (with no builder: the MLP) to
# keep the data's own shape). GoogLeNet trains without its auxiliary classifiers, whose extra
# outputs the loss here does not take.
MODELS: dict[str, tuple[Callable[[int, int], nn.Module] | None,
                        tuple[int, int, int] | Literal["28x28", "32x32"] | None]] = {
    "lenet5": (lambda k, c: models.lenet5(k, in_channels=c), "28x28"),
    "lenet5_32": (lambda k, c: models.lenet5_32(k, in_channels=c), "32x32"),
    "mlp": (None, None),
    "googlenet": (lambda k, c: models.googlenet(k, aux_logits=False), SIZE_224),
    **{name: (_rgb_model(name), SIZE_224)
       for name in ("alexnet", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet18",
                    "resnet50", "resnet101", "resnet152", "densenet121", "mobilenet_v2")},
    **{name: (_rgb_model(name), SIZE_32)
       for name in ("alexnet32", "vgg11_32", "vgg11_bn32", "vgg16_32", "vgg16_bn32",
                    "resnet18_32", "resnet50_32", "resnet101_32", "resnet152_32")},
}


def add_run_options(p: argparse.ArgumentParser, out: str) -> None:
    """The options every training task takes: where it runs, where it writes (default `out`),
    resuming, stopping early and the CPU's threads."""
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: the GPU when CUDA is available, else the CPU "
                        "(default: %(default)s)")
    p.add_argument("--out", default=out,
                   help="folder for checkpoints, metrics.csv and curves.png; refused when it "
                        "holds a previous run, unless --resume or --exist-ok "
                        "(default: %(default)s)")
    p.add_argument("--exist-ok", action="store_true",
                   help="start afresh in an --out that holds a previous run, deleting its "
                        f"{', '.join(OUTPUTS)} (default: off)")
    p.add_argument("--resume", nargs="?", const="last", metavar="CHECKPOINT",
                   help="continue from a checkpoint (OUT/last.ckpt when none is named), with "
                        "the options it was made with; only where and how it runs may change "
                        "(--out, --device, --max-steps, --threads, and --data-dir for "
                        "images) (default: off)")
    p.add_argument("--max-steps", type=int, metavar="N",
                   help="stop as Ctrl-C does (save, exit 130) after N steps in this run "
                        "(default: no limit)")
    p.add_argument("--threads", type=int, default=env_num_threads() or 1, metavar="N",
                   help="BLAS/OpenMP threads on the CPU (gf.set_num_threads); more than one "
                        "can collapse on a shared machine (default: OPENBLAS_NUM_THREADS or "
                        "OMP_NUM_THREADS when set, else %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["image", "charlm"], default="image",
                   help="image: classify images (this list of options); charlm: train a "
                        "character model on the bundled Tiny Shakespeare text, see "
                        f"`{PROG} --task charlm --help` (default: %(default)s)")
    p.add_argument("--model", choices=sorted(MODELS), default="lenet5",
                   help="the net: the model zoo's, at 224x224 or (with the 32 suffix) 32x32, "
                        "LeNet-5 at 28x28, or a three-layer MLP (default: %(default)s)")
    p.add_argument("--dataset", choices=["bundled", "mnist", "cifar10"], default="bundled",
                   help="bundled: the 10,000 MNIST digits shipped with gradflow (8,000 to "
                        "train, of which 1,000 validate; 2,000 to test); mnist or cifar10: "
                        "the standard files in --data-dir (default: %(default)s)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the MNIST or CIFAR-10 files; needs --dataset mnist or "
                        "cifar10 (default: none)")
    p.add_argument("--epochs", type=int, default=8,
                   help="epochs in the whole run (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="images per step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.05,
                   help="learning rate at the start (default: %(default)s)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"], default="sgd",
                   help="the update rule (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=0.9,
                   help="momentum of sgd and rmsprop (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="L2 penalty; decoupled for adamw (default: %(default)s)")
    p.add_argument("--scheduler", choices=["cosine", "step", "none"], default="cosine",
                   help="cosine: annealed to 0 over the run, per step; step: x0.1 every "
                        "third of the epochs; none: constant (default: %(default)s)")
    p.add_argument("--augment", action="store_true",
                   help="random crops (and horizontal flips for CIFAR-10) (default: off)")
    p.add_argument("--patience", type=int, default=0,
                   help="stop after this many epochs without a lower validation loss; 0: "
                        "never (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the weights, the shuffles and the augmentation "
                        "(default: %(default)s)")
    add_run_options(p, "runs/train")
    p.add_argument("--weights", metavar="FILE",
                   help="start from these weights: a PyTorch state_dict (torch.save, read "
                        "without running code), a .safetensors file or a gradflow checkpoint; "
                        "every name and shape must match the model (default: its init)")
    p.add_argument("--subset", type=int, metavar="N",
                   help="train on N training images only (a fixed sample), and validate and "
                        f"test on at most max(N, {EVAL_FLOOR}) images each (default: all)")
    p.add_argument("--amp", choices=["bf16", "fp16", "none"], default="none",
                   help="mixed precision: forward and loss under gf.autocast in bfloat16, or "
                        "in float16 with a GradScaler (default: %(default)s, float32)")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard event files to DIR: per epoch the train and "
                        "validation loss and accuracy, the learning rate and a histogram of "
                        "each weight; needs gradflow[tensorboard] (default: off)")
    return p


def _check_args(args: argparse.Namespace) -> None:
    """Refuse, with a UsageError naming the option, what argparse's types cannot catch."""
    for name in ("epochs", "batch_size", "subset", "max_steps", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    if args.lr <= 0:
        raise UsageError(f"--lr must be positive, not {args.lr}")
    for name in ("momentum", "weight_decay", "patience"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be non-negative, not "
                             f"{getattr(args, name)}")
    if args.weights is not None and args.resume:
        raise UsageError("--weights starts a new run from a file's weights; --resume continues "
                         "a run: give one of them")
    if args.data_dir is not None and args.dataset == "bundled":
        raise UsageError("--data-dir needs --dataset mnist or cifar10 (the bundled digits "
                         "read no folder)")
    if args.tensorboard is not None:
        try:
            report.tensorboard_writer_class()
        except ImportError as err:
            raise UsageError(f"--tensorboard: {err}") from None
    check_device_and_out(args)


def check_device_and_out(args: argparse.Namespace) -> None:
    """The checks every task's options share: a usable --device, and an --out that holds no
    previous run unless --resume or --exist-ok says what to do with it."""
    if args.device == "cuda":
        try:
            cuda.init()
        except RuntimeError as err:
            raise UsageError(f"--device cuda: {err}; use --device cpu") from None
    previous = [name for name in OUTPUTS if (Path(args.out) / name).exists()]
    if previous and not args.resume and not args.exist_ok:
        raise UsageError(f"--out {args.out} holds a previous run ({', '.join(previous)}): "
                         f"continue it with --resume, replace it with --exist-ok, or choose "
                         f"another --out")


def _changed_options(saved: dict, args: argparse.Namespace) -> list:
    """'--name OLD (now NEW)' for each option a resumed run must keep but that differs from
    the checkpoint's; options the checkpoint predates are not compared."""
    return [f"--{key.replace('_', '-')} {saved[key]} (now {value})"
            for key, value in vars(args).items()
            if key not in MAY_CHANGE_ON_RESUME and key in saved and saved[key] != value]


def _steps_per_epoch(images: int, world_size: int, batch_size: int) -> int:
    """Steps in an epoch of `images` with `batch_size` per rank (each rank's share is
    ceil(images / world_size), as DistributedSampler pads it)."""
    return math.ceil(math.ceil(images / world_size) / batch_size)


def _processes(n: int) -> str:
    return "1 process" if n == 1 else f"{n} processes"


def build_model(name: str, classes: int, shape: tuple) -> tuple:
    """The model and the input shape (C, H, W) it takes, given the data's image shape."""
    builder, size = MODELS[name]
    if builder is None or size is None:
        features = math.prod(shape)
        model = nn.Sequential(nn.Flatten(), nn.Linear(features, 512), nn.ReLU(),
                              nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, classes))
        return model, tuple(shape)
    want = (shape[0], int(size[:2]), int(size[:2])) if isinstance(size, str) else size
    return builder(classes, want[0]), want


def make_optimizer(args: argparse.Namespace, params) -> optim.Optimizer:
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum,
                         weight_decay=args.weight_decay)
    if args.optimizer == "rmsprop":
        return optim.RMSprop(params, lr=args.lr, momentum=args.momentum,
                             weight_decay=args.weight_decay)
    kind = optim.AdamW if args.optimizer == "adamw" else optim.Adam
    return kind(params, lr=args.lr, weight_decay=args.weight_decay)


def make_scheduler(args: argparse.Namespace, opt: optim.Optimizer, steps_per_epoch: int):
    """(scheduler, whether it steps per batch); (None, False) for a constant rate."""
    if args.scheduler == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * steps_per_epoch), True
    if args.scheduler == "step":
        return optim.lr_scheduler.StepLR(opt, max(1, args.epochs // 3), gamma=0.1), False
    return None, False


class StopRequest:
    """Turns the first Ctrl-C into a request the loop honours after the current step; a
    second Ctrl-C interrupts at once."""

    def __init__(self, max_steps: int | None) -> None:
        self.requested, self.steps, self.max_steps = False, 0, max_steps

    def __enter__(self) -> "StopRequest":
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        signal.signal(signal.SIGINT, self._previous)
        self.requested = True

    def count_step(self) -> bool:
        """Record a finished step; True when the run should stop now."""
        self.steps += 1
        if self.max_steps is not None and self.steps >= self.max_steps:
            self.requested = True
        return self.requested


def _rank_seed(seed: int, rank: int, epoch: int, step: int) -> int:
    """The seed of rank `rank`'s generator (augmentation, dropout) from that point of a run;
    rank 0 keeps the stream of the seed itself, as one process does."""
    return int(np.random.SeedSequence([seed % 2**32, rank, epoch, step]).generate_state(1)[0])


class Run:
    """Everything one training run holds, and its checkpoints. Under a launcher, `group` is
    this process's place among the ranks (parallel.py)."""

    def __init__(self, args: argparse.Namespace, group: parallel.Group = parallel.SINGLE) -> None:
        self.args, self.group = args, group
        self.device = ("cuda" if cuda.is_available() else "cpu") if args.device == "auto" \
            else args.device
        if group.size > 1 and self.device == "cuda":  # one process per GPU, by local rank
            self.device = f"cuda:{group.local_rank % cuda.device_count()}"
            cuda.set_device(self.device)
        manual_seed(args.seed)
        self.train, self.val, self.test = data.load(args.dataset, args.data_dir)
        if args.subset:
            self.train = data.Split(self.train.images[:args.subset],
                                    self.train.labels[:args.subset])
            limit = max(args.subset, EVAL_FLOOR)
            self.val, self.test = data.sample(self.val, limit), data.sample(self.test, limit)
        self.classes = int(max(self.train.labels.max(), self.val.labels.max())) + 1
        self.model, self.shape = build_model(args.model, self.classes,
                                             self.train.images.shape[1:])
        if args.weights is not None:
            load_weights(self.model, args.weights)
        self.model.to(self.device)
        if group.rank > 0:  # the other ranks augment and drop out differently from rank 0
            manual_seed(_rank_seed(args.seed, group.rank, 0, 0))
        self.net = self.model  # what trains: the model, or its DistributedDataParallel wrapper
        # NOTE: --batch-size is per rank; the ranks' shares of an epoch come from torch's
        # DistributedSampler rule (padded to a multiple of the world size)
        self.sampler = None if group.size == 1 else DistributedSampler(
            self.train, num_replicas=group.size, rank=group.rank, shuffle=True, seed=args.seed)
        self.steps_per_epoch = _steps_per_epoch(len(self.train), group.size, args.batch_size)
        self.opt = make_optimizer(args, self.model.parameters())
        self.sched, self.sched_per_step = make_scheduler(args, self.opt, self.steps_per_epoch)
        self.stopper = EarlyStopping(args.patience) if args.patience else None
        self.scaler = amp.GradScaler(self.device, enabled=args.amp == "fp16")
        self.out = Path(args.out)
        self.epoch, self.step = 0, 0
        self.history: list[dict] = []  # one row of metrics per epoch
        self.best_val_loss = math.inf
        self.partial = [0.0, 0.0, 0, 0.0]  # this epoch so far: loss sum, correct, images, s
        self.epoch_lr = None  # the learning rate the current epoch started with

    # -- batches ------------------------------------------------------------------------------
    def batch(self, split: data.Split, index: np.ndarray, training: bool) -> tuple:
        images = split.images[index]
        if training and self.args.augment:
            images = data.augment(images, flip=self.args.dataset == "cifar10")
        images = data.normalize(data.fit_to(images, self.shape), self.args.dataset)
        return (tensor(np.ascontiguousarray(images, np.float32), device=self.device),
                tensor(split.labels[index], device=self.device))

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The epoch's shuffle, from (seed, epoch) alone, so a resumed run sees it again;
        under a launcher, this rank's share of it (DistributedSampler.set_epoch)."""
        if self.sampler is None:
            return np.random.default_rng([self.args.seed, epoch]).permutation(len(self.train))
        self.sampler.set_epoch(epoch)
        return np.fromiter(self.sampler, np.int64, len(self.sampler))

    def distribute(self) -> None:
        """Wrap the model in DistributedDataParallel (after a resume has loaded its weights;
        the wrapper broadcasts rank 0's parameters and buffers)."""
        if self.group.size == 1:
            return
        from ..nn.parallel import DistributedDataParallel
        ids = [int(self.device.split(":")[1])] if self.device.startswith("cuda") else None
        self.net = DistributedDataParallel(self.model, device_ids=ids)

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": None if self.sched is None else self.sched.state_dict(),
                "early_stopping": None if self.stopper is None else self.stopper.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "step": self.step, "history": self.history,
                "best_val_loss": self.best_val_loss, "rng": get_rng_state(),
                "cuda_rng": cuda.get_rng_state_all(),
                "partial": self.partial, "epoch_lr": self.epoch_lr,
                "world_size": self.group.size,
                "args": {k: v for k, v in vars(self.args).items() if k != "resume"}}

    def save(self, name: str) -> Path:
        """Save a checkpoint (atomically: gf.save writes a temporary file, then renames it);
        under a launcher rank 0 alone writes."""
        path = self.out / f"{name}.ckpt"
        if not self.group.is_main:
            return path
        self.out.mkdir(parents=True, exist_ok=True)
        save(self.checkpoint(), path)
        return path

    def read_checkpoint(self, path: Path) -> object:
        """The checkpoint at `path`. Under a launcher rank 0 reads the file (the other
        machines need not see --out) and every rank loads the same bytes."""
        if self.group.size == 1:
            if not path.is_file():
                raise UsageError(f"--resume: no checkpoint at {path}")
            try:
                return load(path, map_location=self.device)
            except CheckpointError as err:
                raise UsageError(f"--resume: {err}") from None
        found: bytes | str = f"--resume: no checkpoint at {path}"
        if self.group.is_main and path.is_file():
            found = path.read_bytes()
        found = self.group.share(found)
        if isinstance(found, str):
            raise UsageError(found)
        try:
            return load(io.BytesIO(found), map_location=self.device)
        except CheckpointError as err:
            raise UsageError(f"--resume: {err}") from None

    def resume(self, spec: str) -> None:
        path = self.out / "last.ckpt" if spec == "last" else Path(spec)
        ckpt = self.read_checkpoint(path)
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get("args"), dict):
            raise UsageError(f"--resume: {path} is not a checkpoint of {PROG}")
        changed = _changed_options(ckpt["args"], self.args)
        if changed:
            raise UsageError(f"--resume: {path} was made with other options: "
                             f"{', '.join(changed)}; resume with the same options, or start "
                             f"a new run in another --out")
        saved_size = ckpt.get("world_size", 1)  # absent in checkpoints before it
        if saved_size != self.group.size and ckpt["step"] != 0:
            left = _steps_per_epoch(len(self.train), saved_size, self.args.batch_size) \
                - ckpt["step"]
            raise UsageError(f"--resume: {path} stopped in the middle of epoch "
                             f"{ckpt['epoch'] + 1} with {_processes(saved_size)}, and this run "
                             f"has {_processes(self.group.size)}: a run changes its number of "
                             f"processes only at the end of an epoch; finish the epoch with "
                             f"{_processes(saved_size)} and --max-steps {left}, then resume "
                             f"with any number")
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        if self.sched is not None and ckpt["scheduler"] is not None:
            self.sched.load_state_dict(ckpt["scheduler"])
        if self.stopper is not None and ckpt["early_stopping"] is not None:
            self.stopper.load_state_dict(ckpt["early_stopping"])
        if ckpt.get("scaler"):  # absent in checkpoints before --amp, empty without fp16
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step, self.history = ckpt["epoch"], ckpt["step"], ckpt["history"]
        self.best_val_loss, self.partial = ckpt["best_val_loss"], ckpt["partial"]
        self.epoch_lr = ckpt["epoch_lr"]
        if saved_size != self.group.size and self.sched_per_step:
            self._replan_cosine()
        if not self.group.is_main:  # the checkpoint's sums cover every rank's images
            self.partial = [0.0, 0.0, 0, self.partial[3]]
        if self.group.rank == 0:
            set_rng_state(ckpt["rng"])
        else:
            manual_seed(_rank_seed(self.args.seed, self.group.rank, self.epoch, self.step))
        cuda.set_rng_state_all(ckpt.get("cuda_rng", []))  # absent in checkpoints before it
        print(f"resumed from {path}: epoch {self.epoch + 1}, step {self.step}")

    def _replan_cosine(self) -> None:
        """After a change of world size at an epoch boundary, the per-step cosine continues
        from the same fraction of the run over the new number of steps per epoch."""
        total, done = self.args.epochs * self.steps_per_epoch, self.epoch * self.steps_per_epoch
        for group in self.opt.param_groups:
            group["lr"] = group["initial_lr"] * (1 + math.cos(math.pi * done / total)) / 2
        self.sched = optim.lr_scheduler.CosineAnnealingLR(self.opt, total, last_epoch=done - 1)

    # -- training -----------------------------------------------------------------------------
    def autocast(self) -> amp.autocast:
        """The region forward passes run in: --amp's dtype, or a disabled one."""
        dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(self.args.amp)
        return amp.autocast(self.device.split(":")[0], dtype=dtype, enabled=dtype is not None)

    def train_epoch(self, stop: StopRequest) -> dict | None:
        """One epoch from self.step on; None if a stop was requested before its end."""
        self.model.train()
        order = self.epoch_order(self.epoch)
        bs = self.args.batch_size
        loss_sum, correct, count, before = self.partial
        start = time.perf_counter()
        bar = tqdm(total=self.steps_per_epoch, initial=self.step, unit="batch", leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.args.epochs}", dynamic_ncols=True,
                   disable=not self.group.is_main)
        while self.step < self.steps_per_epoch:
            x, y = self.batch(self.train, order[self.step * bs:(self.step + 1) * bs], True)
            self.opt.zero_grad()
            with self.autocast():
                logits = self.net(x)
                loss = nn.functional.cross_entropy(logits, y)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            if self.sched_per_step:
                self.sched.step()
            self.step += 1
            # NOTE: the sums stay on the device; only the bar's refresh reads them back.
            loss_sum = loss_sum + loss.detach() * y.shape[0]
            correct = correct + correct_topk(logits, y)[0]
            count += y.shape[0]
            bar.update(1)
            last = self.step == self.steps_per_epoch
            if self.step % 20 == 0 or last:
                seconds = before + time.perf_counter() - start
                bar.set_postfix(loss=f"{float(loss_sum) / count:.4f}",
                                acc=f"{100 * float(correct) / count:.2f}%",
                                img_s=f"{count * self.group.size / seconds:.0f}")
            if self.stop_now(stop, last) and not last:
                bar.close()
                self.partial = [*self.sums(loss_sum, correct, count),
                                before + time.perf_counter() - start]
                return None
        bar.close()
        cuda.synchronize()
        seconds = before + time.perf_counter() - start
        if not self.sched_per_step and self.sched is not None:
            self.sched.step()
        self.partial = [0.0, 0.0, 0, 0.0]
        loss_sum, correct, count = self.sums(loss_sum, correct, count)
        return {"train_loss": float(loss_sum) / count, "train_acc": float(correct) / count,
                "seconds": seconds, "images_per_second": count / seconds}

    def load_best(self) -> int:
        """Load best.ckpt's weights (rank 0 reads it and broadcasts them); its epoch."""
        best = None
        if self.group.is_main:
            best = load(self.out / "best.ckpt", map_location=self.device)
            self.model.load_state_dict(best["model"])
        self.group.broadcast(self.model.parameters())
        self.group.broadcast(self.model.buffers())
        return self.group.share(None if best is None else best["epoch"])

    def sums(self, loss_sum, correct, count: float) -> tuple:
        """(loss sum, correct, images) of this epoch so far, over every rank."""
        loss, right, images = self.group.sum([float(loss_sum), float(correct), count],
                                             self.device)
        return loss, right, int(images)

    def stop_now(self, stop: StopRequest, last: bool) -> bool:
        """Count a finished step; whether the run stops after it. Under a launcher the ranks
        agree (a Ctrl-C may reach one rank only, or reach them at different steps), at
        steps every rank knows: every AGREE_EVERY-th, the epoch's last and --max-steps."""
        wanted = stop.count_step()
        if self.group.size == 1:
            return wanted
        due = self.step % AGREE_EVERY == 0 or last or stop.steps == stop.max_steps
        if due:
            stop.requested = self.group.any(wanted, self.device)
        return due and stop.requested

    def evaluate(self, split: data.Split) -> dict:
        """Loss and top-1 (and top-5 with more than 10 classes) accuracy on a split. Under a
        launcher each rank evaluates a slice with rank 0's batch-norm statistics and the sums
        are all-reduced, so every rank gets the metrics of the whole split."""
        self.group.broadcast(self.model.buffers())
        self.model.eval()
        topk = (1, 5) if self.classes > 10 else (1,)
        totals = [0.0] * (1 + len(topk))
        mine = np.array_split(np.arange(len(split)), self.group.size)[self.group.rank]
        with no_grad():
            for lo in range(0, len(mine), 1000):
                x, y = self.batch(split, mine[lo:lo + 1000], False)
                with self.autocast():
                    logits = self.model(x)
                    parts = [nn.functional.cross_entropy(logits, y, reduction="sum")]
                parts += correct_topk(logits, y, topk)
                totals = [t + p.item() for t, p in zip(totals, parts)]
        totals = self.group.sum(totals, self.device)
        n = max(len(split), 1)
        result = {"loss": totals[0] / n, "acc": totals[1] / n}
        if len(topk) > 1:
            result["top5"] = totals[2] / n
        return result


def _epoch_line(row: dict) -> str:
    top5 = f" top5 {100 * row['val_top5']:.2f}%" if row.get("val_top5", "") != "" else ""
    return (f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f} acc "
            f"{100 * row['train_acc']:.2f}%  val loss {row['val_loss']:.4f} acc "
            f"{100 * row['val_acc']:.2f}%{top5}  lr {row['lr']:.3g}  "
            f"{row['seconds']:.1f}s ({row['images_per_second']:.0f} img/s)")


def _quiet(quiet: bool, streams: tuple = ("stdout",)) -> contextlib.AbstractContextManager:
    """Send `streams` to the void on ranks other than 0 (a launcher's ranks share a
    terminal); nothing happens on rank 0 or in a single process."""
    if not quiet:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    sink = stack.enter_context(open(os.devnull, "w"))
    for name in streams:
        redirect = contextlib.redirect_stdout if name == "stdout" else contextlib.redirect_stderr
        stack.enter_context(redirect(sink))
    return stack


def is_charlm(argv: list) -> bool:
    """Whether a command line asks for the character-model task (train/charlm.py): --task
    charlm, or a character model's name as --model."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--task")
    p.add_argument("--model")
    known, _ = p.parse_known_args(argv)
    return known.task == "charlm" or (known.model or "").startswith("char_")


def main(argv: list | None = None) -> int:
    """Train as the command line says; the exit code: 0, INTERRUPTED, or USAGE_ERROR after
    printing one line that names the mistake. Under a launcher every rank trains and returns
    the same code; rank 0 alone prints and writes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if is_charlm(argv):
        from . import charlm
        return charlm.main(argv)
    with _quiet(parallel.launcher_rank() != 0, ("stdout", "stderr")):
        args = build_parser().parse_args(argv)
    try:
        group = parallel.start(args.device)
    except parallel.LaunchError as err:
        if parallel.launcher_rank() == 0:
            print(f"{PROG}: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    with _quiet(not group.is_main):
        code = _main(args, group)
    group.close()  # not after an error: leaving a group is collective, gradflow.distributed aborts
    return code


def _main(args: argparse.Namespace, group: parallel.Group) -> int:
    error = None
    try:
        _check_args(args)
        set_num_threads(args.threads)
        try:
            run = Run(args, group)
        except (ValueError, FileNotFoundError) as err:
            raise UsageError(str(err)) from None
    except UsageError as err:
        error = str(err)
    # NOTE: the ranks refuse together (a rank that returned alone would leave the others
    # waiting in a collective); the checks of --out count on rank 0, which writes there
    error = group.first_error(error)
    if error is None and args.resume:
        try:
            run.resume(args.resume)
        except UsageError as err:
            error = str(err)
        error = group.first_error(error)
    if error is not None:
        if group.is_main:
            print(f"{PROG}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    if args.exist_ok and not args.resume and group.is_main:
        for name in OUTPUTS:
            (run.out / name).unlink(missing_ok=True)
    run.distribute()
    return _train(run)


def _train(run: Run) -> int:
    """The epochs from where `run` stands, then the test of the best checkpoint."""
    args = run.args
    print(f"gradflow.train: {args.model} on {args.dataset} ({len(run.train)} train, "
          f"{len(run.val)} val, {len(run.test)} test images), device {run.device}")
    if run.group.size > 1:
        print(f"data-parallel on {_processes(run.group.size)} ({run.group.backend}): "
              f"{args.batch_size} images per step on each, {args.batch_size * run.group.size} "
              f"in all")
    if run.group.is_main:
        summary(run.model, run.shape, device=run.device)
    title = f"{args.model} on {args.dataset}"
    said_no_plot = False  # the missing-matplotlib line is printed once per run
    # NOTE: a resumed run hides the events a stopped one wrote after its last checkpoint:
    # those of the epochs from the next one on (each epoch logs at step = its number)
    board = report.TensorBoardLog(args.tensorboard if run.group.is_main else None,
                                  purge_step=run.epoch + 1 if args.resume else None)
    with StopRequest(args.max_steps) as stop, board:
        while run.epoch < args.epochs:
            if run.step == 0:
                run.epoch_lr = run.opt.param_groups[0]["lr"]
            result = run.train_epoch(stop)
            if result is None:
                path = run.save("last")
                print(f"stopped at epoch {run.epoch + 1}, step {run.step}: saved {path}; "
                      f"continue with --resume")
                return INTERRUPTED
            val = run.evaluate(run.val)
            run.epoch, run.step = run.epoch + 1, 0
            row = {"epoch": run.epoch, **result, "val_loss": val["loss"],
                   "val_acc": val["acc"], "val_top5": val.get("top5", ""), "lr": run.epoch_lr}
            run.history.append(row)
            tqdm.write(_epoch_line(row))
            board.log_epoch(row, run.model)
            if val["loss"] < run.best_val_loss:
                run.best_val_loss = val["loss"]
                run.save("best")
            stopping = run.stopper is not None and run.stopper.step(val["loss"])
            run.save("last")
            if not run.group.is_main:
                plotted = True
            else:
                report.write_csv(run.history, run.out / "metrics.csv")
                plotted = report.plot_curves(run.history, run.out / "curves.png", title)
            if not plotted and not said_no_plot:
                said_no_plot = True
                print("curves.png skipped: matplotlib is not installed (pip install "
                      "matplotlib)")
            if stopping:
                print(f"early stopping: no lower validation loss for {args.patience} epochs")
                break
            if run.group.any(stop.requested, run.device):
                print(f"stopped after epoch {run.epoch}: saved {run.out / 'last.ckpt'}")
                return INTERRUPTED
        best_epoch = run.load_best()
        test = run.evaluate(run.test)
        board.log_test(test, run.epoch)
    top5 = f", top-5 {100 * test['top5']:.2f}%" if "top5" in test else ""
    print(f"test accuracy {100 * test['acc']:.2f}%{top5} (best checkpoint, epoch "
          f"{best_epoch}; test loss {test['loss']:.4f}); outputs in {run.out}")
    return 0

