"""ImageFolder: one subfolder per class (torchvision.datasets.ImageFolder). Decoding image
files needs Pillow, imported only when the default loader is used."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .vision import VisionDataset

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _pil_image() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("ImageFolder: decoding image files needs Pillow, which is not "
                          "installed; run `pip install pillow`, or pass a `loader` that reads "
                          "your files") from None
    return Image


def pil_loader(path: str) -> np.ndarray:
    """Decode an image file to an H x W x 3 uint8 RGB array (ToTensor's input)."""
    with _pil_image().open(path) as img:
        return np.asarray(img.convert("RGB"))


class ImageFolder(VisionDataset):
    """Samples from root/<class>/**/<file>: (loader(path), class index), classes sorted by name.

    `loader` defaults to `pil_loader` (needs Pillow); files count when `is_valid_file(path)`
    holds, by default when they have an image extension. An empty class folder is an error.
    """

    def __init__(self, root: str | Path, transform: Callable | None = None,
                 target_transform: Callable | None = None, loader: Callable | None = None,
                 is_valid_file: Callable[[str], bool] | None = None) -> None:
        if loader is None:
            _pil_image()  # fail now, not at the first sample
            loader = pil_loader
        super().__init__(root, transform, target_transform)
        self.loader = loader
        self.classes = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        if not self.classes:
            raise FileNotFoundError(f"ImageFolder: no class folders found in {self.root}")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        valid = is_valid_file or (lambda path: path.lower().endswith(IMG_EXTENSIONS))
        self.samples = []
        for name in self.classes:
            found = [(os.path.join(folder, f), self.class_to_idx[name])
                     for folder, _, files in sorted(os.walk(self.root / name, followlinks=True))
                     for f in sorted(files) if valid(os.path.join(folder, f))]
            if not found:
                raise FileNotFoundError(f"ImageFolder: found no valid file for class {name!r} "
                                        f"in {self.root / name} (image extensions: "
                                        f"{', '.join(IMG_EXTENSIONS)})")
            self.samples.extend(found)
        self.targets = [target for _, target in self.samples]
        self.imgs = self.samples

    def __getitem__(self, index: int) -> tuple:
        path, target = self.samples[index]
        return self._sample(self.loader(path), target)

    def __len__(self) -> int:
        return len(self.samples)
