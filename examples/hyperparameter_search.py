"""Random search over learning rate and weight decay, sampled on a log scale.

    python examples/hyperparameter_search.py --trials 10 --epochs 2

The recipe of Solberg's lecture notes ("Training convolutional networks for classification",
IN5400, University of Oslo, 2019): search a random set of points rather than a grid (each trial
then tries a new value of every hyperparameter), draw scale-like hyperparameters (learning
rate, weight decay) uniformly in their logarithm, pick the winner on a validation split, and
touch the test set once, with the winner only. Each trial trains LeNet-5 on the bundled MNIST
digits from the same initial weights on the same batches, so trials differ only in their
hyperparameters.
"""
from __future__ import annotations

import argparse
import copy
import math

import numpy as np

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.utils.data import DataLoader, TensorDataset, random_split

SPACE = {"lr": (1e-3, 1.0), "weight_decay": (1e-6, 1e-2)}  # (low, high), sampled log-uniform


def sample(rng: np.random.Generator) -> dict:
    return {name: float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            for name, (lo, hi) in SPACE.items()}


def train(model: gf.nn.Module, loader: DataLoader, epochs: int, lr: float,
          weight_decay: float) -> None:
    optimizer = gf.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def accuracy(model: gf.nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = 0
    with gf.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
    return correct / len(loader.dataset)


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial")
    parser.add_argument("--limit", type=int, help="use only the first N training digits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gf.manual_seed(args.seed)
    device = gf.device("cuda" if gf.cuda.is_available() else "cpu")
    images, labels = gf.datasets.bundled_mnist("train")
    data = TensorDataset(images[:args.limit], labels[:args.limit])
    n_val = len(data) // 8
    train_set, val_set = random_split(data, [len(data) - n_val, n_val],
                                      generator=gf.Generator().manual_seed(args.seed))
    val_loader = DataLoader(val_set, batch_size=1000, device=device)
    initial = gf.models.lenet5(10).to(device)

    rng = np.random.default_rng(args.seed)
    results = []
    print(f"{'trial':>5}  {'lr':>9}  {'weight decay':>12}  {'val acc':>8}")
    for trial in range(1, args.trials + 1):
        params = sample(rng)
        model = copy.deepcopy(initial)
        # the same batches in the same order for every trial
        train_loader = DataLoader(train_set, batch_size=64, shuffle=True, device=device,
                                  generator=gf.Generator().manual_seed(args.seed))
        train(model, train_loader, args.epochs, **params)
        acc = accuracy(model, val_loader)
        results.append((acc, params, model))
        print(f"{trial:5d}  {params['lr']:9.2e}  {params['weight_decay']:12.2e}  "
              f"{100 * acc:7.2f}%")

    acc, params, model = max(results, key=lambda r: r[0])
    test_images, test_labels = gf.datasets.bundled_mnist("val")
    test_loader = DataLoader(TensorDataset(test_images, test_labels), batch_size=1000,
                             device=device)
    print(f"best: lr {params['lr']:.2e}, weight decay {params['weight_decay']:.2e}, "
          f"validation {100 * acc:.2f}%, test {100 * accuracy(model, test_loader):.2f}% "
          f"(the test set's only use)")


if __name__ == "__main__":
    main()
