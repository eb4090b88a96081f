"""Train AlexNet on an ImageNet-style image folder, or on synthetic data with --synthetic.

    python examples/imagenet_alexnet.py --data-dir ~/data/imagenette    # train/ and val/
    python examples/imagenet_alexnet.py --synthetic                     # no data needed

--data-dir holds train/ and val/, each with one subfolder of images per class (the layout of
ImageNet, and of smaller sets such as Imagenette); decoding the images needs Pillow
(`pip install pillow`). Training images get torchvision's random-resized crop to 224 and a
flip; validation images are resized to 256 and centre-cropped to 224. --synthetic makes
random 224x224 images whose class sets a faint colour pattern, to try the pipeline and
measure speed without a data set. Reports top-1 and top-5 accuracy and images per second.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import transforms
from gradflow.utils.data import DataLoader, TensorDataset

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def image_folders(root: str) -> tuple:
    train = gf.datasets.ImageFolder(Path(root) / "train", transform=transforms.Compose([
        transforms.ToTensor(), transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(), transforms.Normalize(MEAN, STD)]))
    val = gf.datasets.ImageFolder(Path(root) / "val", transform=transforms.Compose([
        transforms.ToTensor(), transforms.Resize(256), transforms.CenterCrop(224),
        transforms.Normalize(MEAN, STD)]))
    if val.classes != train.classes:
        raise SystemExit(f"train/ and val/ have different classes: {train.classes} and "
                         f"{val.classes}")
    return train, val, len(train.classes)


def synthetic(n: int, classes: int) -> tuple:
    """Train and val TensorDatasets: noise plus a per-class pattern, so the net can learn."""
    coarse = gf.randn(classes, 3, 7, 1, 7, 1)  # a 7x7 pattern, blown up 32x to 224x224
    patterns = coarse.expand(classes, 3, 7, 32, 7, 32).reshape(classes, 3, 224, 224)

    def split(count: int) -> TensorDataset:
        labels = gf.randint(0, classes, (count,))
        return TensorDataset(gf.randn(count, 3, 224, 224) + 0.5 * patterns[labels], labels)

    return split(n), split(max(n // 4, 1)), classes


def evaluate(model: gf.nn.Module, loader: DataLoader, topk: tuple) -> list:
    model.eval()
    correct = [0.0] * len(topk)
    with gf.no_grad():
        for images, labels in loader:
            hits = gf.utils.accuracy(model(images), labels, topk)
            correct = [c + h * len(labels) for c, h in zip(correct, hits)]
    return [c / len(loader.dataset) for c in correct]


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", help="folder with train/ and val/ image folders")
    source.add_argument("--synthetic", action="store_true", help="random images instead")
    parser.add_argument("--synthetic-size", type=int, default=512,
                        help="training images made by --synthetic")
    parser.add_argument("--classes", type=int, default=10, help="classes for --synthetic")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gf.manual_seed(args.seed)
    device = gf.device("cuda" if gf.cuda.is_available() else "cpu")
    train_set, val_set, classes = (synthetic(args.synthetic_size, args.classes)
                                   if args.synthetic else image_folders(args.data_dir))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              drop_last=len(train_set) > args.batch_size, device=device)
    val_loader = DataLoader(val_set, batch_size=args.batch_size, device=device)
    topk = (1, 5) if classes > 5 else (1,)

    model = gf.models.alexnet(num_classes=classes).to(device)
    optimizer = gf.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = gf.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    print(f"AlexNet on {len(train_set)} images of {classes} classes, device {device}")
    for epoch in range(1, args.epochs + 1):
        model.train()
        start, seen, loss_sum = time.perf_counter(), 0, 0.0
        for images, labels in train_loader:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum, seen = loss.detach() * len(labels) + loss_sum, seen + len(labels)
        loss_sum = loss_sum.item()  # waits for the device, so the time below is honest
        rate = seen / (time.perf_counter() - start)
        scheduler.step()
        scores = ", ".join(f"top-{k} {100 * a:.2f}%"
                           for k, a in zip(topk, evaluate(model, val_loader, topk)))
        print(f"epoch {epoch}: train loss {loss_sum / seen:.4f}, {rate:.0f} images/s; "
              f"validation {scores}")


if __name__ == "__main__":
    main()
