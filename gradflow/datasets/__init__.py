"""Datasets (torchvision.datasets): MNIST, CIFAR10 and ImageFolder read local files; nothing is
downloaded. `bundled_mnist` serves the MNIST digits shipped with the package, offline, and
`TinyShakespeare` the text shipped with it."""
from .bundled import bundled_mnist
from .cifar import CIFAR10
from .folder import ImageFolder
from .mnist import MNIST, read_idx
from .text import TinyShakespeare
from .vision import VisionDataset

__all__ = ["CIFAR10", "ImageFolder", "MNIST", "TinyShakespeare", "VisionDataset", "bundled_mnist",
           "read_idx"]
