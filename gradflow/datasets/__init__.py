"""Datasets (torchvision.datasets): MNIST, CIFAR10 and ImageFolder read local files; nothing is
downloaded. `bundled_mnist` serves the MNIST digits shipped with the package, offline."""
from .bundled import bundled_mnist
from .cifar import CIFAR10
from .folder import ImageFolder
from .mnist import MNIST, read_idx
from .vision import VisionDataset

__all__ = ["CIFAR10", "ImageFolder", "MNIST", "VisionDataset", "bundled_mnist", "read_idx"]
