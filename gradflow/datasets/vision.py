"""What the image datasets share: root, the sample and target transforms
(torchvision.datasets.VisionDataset), and the message for files that are not there."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..utils.data import Dataset

NO_DOWNLOAD = ("gradflow does not download data sets (download=True only checks for local "
               "files): copy the files there, or use gradflow.datasets.bundled_mnist() for the "
               "MNIST digits bundled with the package")


class VisionDataset(Dataset):
    """An image dataset under `root` whose samples pass through `transform` and whose labels
    pass through `target_transform`."""

    def __init__(self, root: str | Path, transform: Callable | None = None,
                 target_transform: Callable | None = None) -> None:
        self.root = Path(root)
        self.transform = transform
        self.target_transform = target_transform

    def _sample(self, img: Any, target: Any) -> tuple:
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target
