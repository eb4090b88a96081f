"""ResNet-18/34 (He et al., 2016) with torchvision's layout (resnet18: 11,689,512
parameters), and 32x32 variants (3x3 stem, no max pool) for CIFAR-sized inputs."""
from __future__ import annotations

from .. import nn
from ..tensor import Tensor
from .vgg import init_weights


class BasicBlock(nn.Module):
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


class ResNet(nn.Module):
    def __init__(self, blocks: list, num_classes: int = 1000, small_input: bool = False) -> None:
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
            layer = [BasicBlock(channels, width, 1 if i == 0 else 2)]
            layer += [BasicBlock(width, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layer))
            channels = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        init_weights(self)
        nn.init.reset_linear_(self.fc.weight, self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000) -> ResNet:
    return ResNet([2, 2, 2, 2], num_classes)


def resnet34(num_classes: int = 1000) -> ResNet:
    return ResNet([3, 4, 6, 3], num_classes)


def resnet18_32(num_classes: int = 10) -> ResNet:
    return ResNet([2, 2, 2, 2], num_classes, small_input=True)


def resnet34_32(num_classes: int = 10) -> ResNet:
    return ResNet([3, 4, 6, 3], num_classes, small_input=True)
