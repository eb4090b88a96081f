"""ResNet-18/34/50/101/152 (He et al., 2016) with torchvision's layout, key names and
initialisation (resnet18: 11,689,512 parameters; resnet50: 25,557,032), and 32x32 variants
(3x3 stem, no max pool) for CIFAR-sized inputs. The bottleneck blocks of resnet50 and up stride
on their 3x3 convolution, as torchvision's "ResNet v1.5" does, not on the first 1x1."""
from __future__ import annotations

from .. import nn
from ..tensor import Tensor
from .vgg import init_weights


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (a 1x1 convolution where the shape changes)."""
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 down to `channels`, 3x3 (with the stride), 1x1 up to 4 * `channels`, and a
    shortcut."""
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision.models.ResNet: `blocks` gives the number of blocks in each of the four
    stages, `block` their kind (BasicBlock or Bottleneck). `zero_init_residual` starts the last
    batch norm of each block at zero, so that each block starts as the identity (Goyal et al.,
    2017). `small_input=True` gives the 32x32 variant."""

    def __init__(self, blocks: list, num_classes: int = 1000, small_input: bool = False,
                 block: type[BasicBlock] | type[Bottleneck] = BasicBlock,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        self.maxpool: nn.Module
        if small_input:
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        stages, channels = [], 64
        for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
            layer: list[nn.Module] = [block(channels, width, 1 if i == 0 else 2)]
            channels = width * block.expansion
            layer += [block(channels, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_weights(self)
        nn.init.reset_linear_(self.fc.weight, self.fc.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


# name: (blocks per stage, block kind)
DEPTHS: dict[int, tuple[list[int], type[BasicBlock] | type[Bottleneck]]] = {
    18: ([2, 2, 2, 2], BasicBlock), 34: ([3, 4, 6, 3], BasicBlock),
    50: ([3, 4, 6, 3], Bottleneck), 101: ([3, 4, 23, 3], Bottleneck),
    152: ([3, 8, 36, 3], Bottleneck),
}


def _resnet(depth: int, num_classes: int, small_input: bool,
            zero_init_residual: bool) -> ResNet:
    blocks, block = DEPTHS[depth]
    return ResNet(blocks, num_classes, small_input, block, zero_init_residual)


def resnet18(num_classes: int = 1000, zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 for 224x224 images (torchvision.models.resnet18)."""
    return _resnet(18, num_classes, False, zero_init_residual)


def resnet34(num_classes: int = 1000, zero_init_residual: bool = False) -> ResNet:
    """ResNet-34 for 224x224 images (torchvision.models.resnet34)."""
    return _resnet(34, num_classes, False, zero_init_residual)


def resnet50(num_classes: int = 1000, zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 (bottleneck blocks) for 224x224 images (torchvision.models.resnet50)."""
    return _resnet(50, num_classes, False, zero_init_residual)


def resnet101(num_classes: int = 1000, zero_init_residual: bool = False) -> ResNet:
    """ResNet-101 (bottleneck blocks) for 224x224 images (torchvision.models.resnet101)."""
    return _resnet(101, num_classes, False, zero_init_residual)


def resnet152(num_classes: int = 1000, zero_init_residual: bool = False) -> ResNet:
    """ResNet-152 (bottleneck blocks) for 224x224 images (torchvision.models.resnet152)."""
    return _resnet(152, num_classes, False, zero_init_residual)


def resnet18_32(num_classes: int = 10, zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 for 32x32 images: 3x3 stem, no max pool."""
    return _resnet(18, num_classes, True, zero_init_residual)


def resnet34_32(num_classes: int = 10, zero_init_residual: bool = False) -> ResNet:
    """ResNet-34 for 32x32 images: 3x3 stem, no max pool."""
    return _resnet(34, num_classes, True, zero_init_residual)


def resnet50_32(num_classes: int = 10, zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 for 32x32 images: 3x3 stem, no max pool."""
    return _resnet(50, num_classes, True, zero_init_residual)


def resnet101_32(num_classes: int = 10, zero_init_residual: bool = False) -> ResNet:
    """ResNet-101 for 32x32 images: 3x3 stem, no max pool."""
    return _resnet(101, num_classes, True, zero_init_residual)


def resnet152_32(num_classes: int = 10, zero_init_residual: bool = False) -> ResNet:
    """ResNet-152 for 32x32 images: 3x3 stem, no max pool."""
    return _resnet(152, num_classes, True, zero_init_residual)
