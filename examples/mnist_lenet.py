"""Train LeNet-5 on MNIST, written as a PyTorch tutorial would be, with `torch` -> `gradflow`.

    python examples/mnist_lenet.py                            # the digits bundled with gradflow
    python examples/mnist_lenet.py --data-dir ~/data/mnist    # the full 60,000/10,000 MNIST

With no --data-dir it trains on the 8,000 bundled digits and tests on the 2,000 held out.
--data-dir is a folder with the four standard MNIST files (train-images-idx3-ubyte.gz, ...),
as torchvision.datasets.MNIST keeps them; nothing is downloaded.
"""
from __future__ import annotations

import argparse

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.utils.data import DataLoader, TensorDataset


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: gf.Tensor) -> gf.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = gf.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def load_data(data_dir: str | None, limit: int | None) -> tuple:
    """(train, test) TensorDatasets of normalised 1 x 28 x 28 images and their labels."""
    if data_dir is None:
        splits = gf.datasets.bundled_mnist("train"), gf.datasets.bundled_mnist("val")
    else:
        splits = [(ds.data[:limit].unsqueeze(1).float() / 255, ds.targets)
                  for ds in (gf.datasets.MNIST(data_dir, train=True),
                             gf.datasets.MNIST(data_dir, train=False))]
    normalize = gf.transforms.Normalize((0.1307,), (0.3081,))
    return tuple(TensorDataset(normalize(images[:limit]), labels[:limit])
                 for images, labels in splits)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: gf.optim.Optimizer) -> float:
    model.train()
    total = 0.0
    for images, labels in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
    return total / len(loader.dataset)


def test(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = 0
    with gf.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
    return correct / len(loader.dataset)


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the standard MNIST files")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--limit", type=int, help="use only the first N images of each split")
    parser.add_argument("--save", metavar="PATH", help="save the trained weights here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gf.manual_seed(args.seed)
    device = gf.device("cuda" if gf.cuda.is_available() else "cpu")
    train_set, test_set = load_data(args.data_dir, args.limit)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, device=device)
    test_loader = DataLoader(test_set, batch_size=1000, device=device)

    model = LeNet().to(device)
    optimizer = gf.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scheduler = gf.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    print(f"LeNet-5 on {len(train_set)} MNIST digits, device {device}")
    for epoch in range(1, args.epochs + 1):
        loss = train_epoch(model, train_loader, optimizer)
        scheduler.step()
        print(f"epoch {epoch}: train loss {loss:.4f}, test accuracy "
              f"{100 * test(model, test_loader):.2f}%")
    if args.save:
        gf.save(model.state_dict(), args.save)
        print(f"saved the weights to {args.save}")


if __name__ == "__main__":
    main()
