"""LeNet-5 as LeCun et al. (1998) describe it: scaled-tanh units, trainable subsampling, C3's
partial connection table; 60,850 trainable parameters. `lenet5_32()` takes the paper's 32x32
input, unpadded; `lenet5()` pads C1 by 2 so that 28x28 MNIST digits fit."""
from __future__ import annotations

import numpy as np

from .. import nn
from ..creation import empty, ones, tensor, zeros
from ..nn import functional as F
from ..ops.index import cat
from ..tensor import Tensor

# NOTE: C3's table (LeCun et al., 1998, Table I): which S2 maps feed each of the 16 C3 maps.
C3_TABLE = ([[(i + k) % 6 for k in range(3)] for i in range(6)]
            + [[(i + k) % 6 for k in range(4)] for i in range(6)]
            + [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5], list(range(6))])


class Subsampling(nn.Module):
    """LeNet's pooling: sum of each 2x2 window times a trainable per-map coefficient, plus a
    trainable per-map bias (2 parameters per map)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(ones(channels) * 0.25)
        self.bias = nn.Parameter(zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        window_sum = F.avg_pool2d(x, 2) * 4
        return window_sum * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}"


class PartialConv2d(nn.Module):
    """A 5x5 convolution in which output map o sees only the input maps table[o]; only the
    connected kernels are parameters."""

    def __init__(self, in_channels: int, table: list, kernel_size: int = 5) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.k = in_channels, len(table), kernel_size
        pairs = [(o, i) for o, ins in enumerate(table) for i in ins]
        self.weight = nn.Parameter(empty(len(pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(empty(self.out_channels))
        # Each (out, in) slot of the dense kernel reads a row of [weight; zero row].
        slot = np.full(self.out_channels * in_channels, len(pairs), dtype=np.int64)
        for row, (o, i) in enumerate(pairs):
            slot[o * in_channels + i] = row
        self.register_buffer("slot", tensor(slot), persistent=False)
        fan_in = len(pairs) / self.out_channels * kernel_size * kernel_size
        bound = 1 / np.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        padded = cat([self.weight, zeros(1, self.k, self.k, dtype=self.weight.dtype,
                                         device=self.weight.device)])
        dense = padded[self.slot].reshape(self.out_channels, self.in_channels, self.k, self.k)
        return F.conv2d(x, dense, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.k}, partial"


class LeNet5(nn.Module):
    """C1-S2-C3-S4-C5-F6-output. C5 needs 5x5 maps, so the input is (32 - 2 * padding) pixels
    square: `padding=0` takes LeCun's 32x32 images, `padding=2` (the default) lets 28x28 MNIST
    digits stand in for them (the same as zero-padding the image)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, padding: int = 2) -> None:
        super().__init__()
        if not 0 <= padding <= 13:
            raise ValueError(f"LeNet5: padding must be in [0, 13], got {padding}")
        self.padding = padding
        self.input_size = 32 - 2 * padding
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding), nn.ScaledTanh(),
            Subsampling(6), nn.ScaledTanh(),
            PartialConv2d(6, C3_TABLE), nn.ScaledTanh(),
            Subsampling(16), nn.ScaledTanh(),
            nn.Conv2d(16, 120, 5), nn.ScaledTanh())
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), nn.ScaledTanh(),
                                        nn.Linear(84, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        size = self.input_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(
                f"LeNet5(padding={self.padding}) expects {size}x{size} images, got "
                f"{'x'.join(map(str, x.shape[-2:]))} (input shape {tuple(x.shape)}): lenet5() "
                "takes 28x28, lenet5_32() takes 32x32")
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 for 28x28 images (MNIST digits): C1 pads by 2."""
    return LeNet5(num_classes, in_channels, padding=2)


def lenet5_32(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 for 32x32 images, unpadded, as LeCun et al. (1998) built it."""
    return LeNet5(num_classes, in_channels, padding=0)
