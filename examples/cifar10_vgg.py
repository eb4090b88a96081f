"""Train VGG-11 with batch normalization on CIFAR-10, with random crops and flips.

    python examples/cifar10_vgg.py --data-dir ~/data/cifar10

Get CIFAR-10 (163 MB) once, from the dataset's home page, and unpack it:

    curl -O https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz
    mkdir -p ~/data/cifar10 && tar -xzf cifar-10-python.tar.gz -C ~/data/cifar10

--data-dir is the folder that then holds cifar-10-batches-py/ (the binary version's
cifar-10-batches-bin/ works too). The recipe (SGD with Nesterov momentum, weight decay 5e-4,
cosine learning rate over 30 epochs, batch 128) is the usual one for VGG-11-BN on CIFAR-10,
which ends above 90% test accuracy; it is a GPU job (on a CPU an epoch takes hours).

The whole data set goes to the device once; each batch is augmented there, in one call per
transform, so the GPU never waits for the CPU.
"""
from __future__ import annotations

import argparse
import time

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import transforms

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def load_split(root: str, train: bool, limit: int | None, device: gf.device) -> tuple:
    """(images N x 3 x 32 x 32 float in [0, 1], labels N) of one split, on `device`."""
    ds = gf.datasets.CIFAR10(root, train=train)
    images = gf.from_numpy(ds.data[:limit]).to(device).permute(0, 3, 1, 2).float() / 255
    return images, gf.tensor(ds.targets[:limit], device=device)


def batches(images: gf.Tensor, labels: gf.Tensor, size: int, shuffle: bool):
    """Batches in a fresh random order when shuffling (training), where a last partial batch
    is dropped so batch norm never sees a batch of one; else in order, all of them."""
    order = gf.randperm(len(labels), device=images.device) if shuffle else None
    end = len(labels) - len(labels) % size if shuffle and len(labels) >= size else len(labels)
    for lo in range(0, end, size):
        index = slice(lo, lo + size) if order is None else order[lo:lo + size]
        yield images[index], labels[index]


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder holding cifar-10-batches-py")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--limit", type=int, help="use only the first N images of each split")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gf.manual_seed(args.seed)
    device = gf.device("cuda" if gf.cuda.is_available() else "cpu")
    train_x, train_y = load_split(args.data_dir, True, args.limit, device)
    test_x, test_y = load_split(args.data_dir, False, args.limit, device)
    augment = transforms.Compose([transforms.RandomCrop(32, padding=4),
                                  transforms.RandomHorizontalFlip()])
    normalize = transforms.Normalize(MEAN, STD)

    model = gf.models.vgg11_bn32(num_classes=10).to(device)
    optimizer = gf.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                             weight_decay=args.weight_decay)
    steps = args.epochs * max(1, len(train_y) // args.batch_size)
    scheduler = gf.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    print(f"VGG-11-BN on {len(train_y)} CIFAR-10 images, device {device}")
    for epoch in range(1, args.epochs + 1):
        model.train()
        start, loss_sum, seen = time.perf_counter(), 0.0, 0
        for images, labels in batches(train_x, train_y, args.batch_size, shuffle=True):
            loss = F.cross_entropy(model(normalize(augment(images))), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum, seen = loss.detach() * len(labels) + loss_sum, seen + len(labels)
        model.eval()
        correct = 0
        with gf.no_grad():
            for images, labels in batches(test_x, test_y, 1000, shuffle=False):
                correct = (model(normalize(images)).argmax(1) == labels).sum() + correct
        print(f"epoch {epoch}: train loss {loss_sum.item() / seen:.4f}, test accuracy "
              f"{100 * correct.item() / len(test_y):.2f}%, {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
