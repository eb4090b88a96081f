"""What the training command writes besides checkpoints: metrics.csv and curves.png."""
from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr",
           "seconds", "images_per_second"]


def write_csv(history: list, path: Path) -> None:
    """One row per finished epoch (rewritten whole, so a resumed run keeps one file)."""
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in COLUMNS})
    tmp.replace(path)


def plot_curves(history: list, path: Path, title: str) -> bool:
    """Loss and accuracy against epochs, train and validation; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((loss_ax, "loss", "cross-entropy loss"),
                           (acc_ax, "acc", "top-1 accuracy (%)")):
        scale = 100.0 if key == "acc" else 1.0
        for split, style in (("train", "o-"), ("val", "s-")):
            ax.plot(epochs, [row[f"{split}_{key}"] * scale for row in history], style,
                    label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    best = min(history, key=lambda row: row["val_loss"])
    acc_ax.set_title(f"best val accuracy {best['val_acc'] * 100:.2f}% (epoch {best['epoch']})")
    loss_ax.set_title("loss")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
