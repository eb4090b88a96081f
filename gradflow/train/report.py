"""What the training command writes besides checkpoints: metrics.csv, curves.png and, with
--tensorboard, TensorBoard event files."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr",
           "seconds", "images_per_second"]


def write_csv(history: list, path: Path, columns: list = COLUMNS) -> None:
    """One row per finished epoch (rewritten whole, so a resumed run keeps one file)."""
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in columns})
    tmp.replace(path)


def _plot_train_val(history: list, path: Path, title: str, x: str, panels: tuple,
                    best_title: Callable[[dict], str]) -> bool:
    """Two panels of train and validation curves against `x`: `panels` holds two (key,
    y label, scale) triples; the second panel's title names the best epoch by validation loss
    (`best_title` of its row). False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    xs = [row[x] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (key, label, scale) in zip(axes, panels):
        for split, style in (("train", "o-"), ("val", "s-")):
            ax.plot(xs, [row[f"{split}_{key}"] * scale for row in history], style, label=split)
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("loss")
    axes[1].set_title(best_title(min(history, key=lambda row: row["val_loss"])))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_curves(history: list, path: Path, title: str) -> bool:
    """Loss and accuracy against epochs, train and validation; False without matplotlib."""
    return _plot_train_val(
        history, path, title, "epoch",
        (("loss", "cross-entropy loss", 1.0), ("acc", "top-1 accuracy (%)", 100.0)),
        lambda best: f"best val accuracy {best['val_acc'] * 100:.2f}% (epoch {best['epoch']})")


def plot_loss_curves(history: list, path: Path, title: str) -> bool:
    """A language model's curves: loss in nats and bits per character against the steps,
    train and validation; False without matplotlib."""
    return _plot_train_val(
        history, path, title, "step",
        (("loss", "cross-entropy (nats per character)", 1.0), ("bpc", "bits per character", 1.0)),
        lambda best: f"best val {best['val_bpc']:.3f} bpc (epoch {best['epoch']})")


def tensorboard_writer_class() -> Any:
    """gradflow.utils.tensorboard.SummaryWriter; ImportError (naming the extra to install)
    without the tensorboard package."""
    from ..utils.tensorboard import SummaryWriter
    return SummaryWriter


class TensorBoardLog:
    """--tensorboard DIR: per epoch, the losses, accuracies and learning rate as scalars and
    each parameter as a histogram, all at step = epoch; the test metrics at the end. With no
    DIR every call does nothing. `purge_step` (a resumed run's first epoch) hides the events
    a stopped run wrote past its last checkpoint."""

    def __init__(self, log_dir: str | None, purge_step: int | None) -> None:
        self.writer = None if log_dir is None else tensorboard_writer_class()(
            log_dir, purge_step=purge_step)

    def log_epoch(self, row: dict, model: Any) -> None:
        if self.writer is None:
            return
        step = row["epoch"]
        for split in ("train", "val"):
            self.writer.add_scalar(f"{split}/loss", row[f"{split}_loss"], step)
            self.writer.add_scalar(f"{split}/accuracy", row[f"{split}_acc"], step)
        if row.get("val_top5", "") != "":
            self.writer.add_scalar("val/top5", row["val_top5"], step)
        self.writer.add_scalar("lr", row["lr"], step)
        self.writer.add_scalar("images_per_second", row["images_per_second"], step)
        for name, param in model.named_parameters():
            self.writer.add_histogram(name, param, step)
        self.writer.flush()

    def log_test(self, test: dict, step: int) -> None:
        if self.writer is None:
            return
        self.writer.add_scalar("test/loss", test["loss"], step)
        self.writer.add_scalar("test/accuracy", test["acc"], step)

    def __enter__(self) -> "TensorBoardLog":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
