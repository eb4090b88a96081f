"""DenseNet-BC (Huang et al., 2017) in torchvision's layout, key names and initialisation
(densenet121: 7,978,856 parameters). Each layer of a dense block sees the concatenation of the
block's input and every earlier layer's output; transitions halve the channels and the size."""
from __future__ import annotations

import warnings
from collections import OrderedDict

from .. import nn
from ..nn import functional as F
from ..ops.index import cat
from ..tensor import Tensor
from ..utils.checkpoint import checkpoint


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv to bn_size * growth_rate maps, BN-ReLU-3x3 conv to growth_rate maps.
    With `memory_efficient`, the concatenation and the 1x1 bottleneck are recomputed in
    backward instead of kept (gf.utils.checkpoint), as torchvision's."""

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int,
                 drop_rate: float, memory_efficient: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate, self.memory_efficient = float(drop_rate), memory_efficient

    def bottleneck(self, *inputs: Tensor) -> Tensor:
        return self.conv1(self.relu1(self.norm1(cat(list(inputs), 1))))

    def forward(self, features: Tensor | list[Tensor]) -> Tensor:
        inputs = [features] if isinstance(features, Tensor) else list(features)
        if self.memory_efficient and any(t.requires_grad for t in inputs):
            # NOTE: checkpoint runs the bottleneck under no_grad first, which norm1 would warn
            # about as if this were evaluation in training mode; it is not.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", ".*training mode under no_grad")
                out = checkpoint(self.bottleneck, *inputs, use_reentrant=False)
        else:
            out = self.bottleneck(*inputs)
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """`num_layers` dense layers, keyed denselayer1, denselayer2, ... as torchvision's."""

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int,
                 growth_rate: int, drop_rate: float, memory_efficient: bool = False) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(
                num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate,
                memory_efficient))

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv, then 2x2 average pooling."""

    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(num_input_features, num_output_features, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet(nn.Module):
    """torchvision.models.DenseNet (the BC form: bottleneck layers and halving transitions);
    takes inputs of 29x29 and up."""

    def __init__(self, growth_rate: int = 32, block_config: tuple = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0,
                 num_classes: int = 1000, memory_efficient: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU()),
            ("pool0", nn.MaxPool2d(3, 2, 1)),
        ]))
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(
                num_layers, channels, bn_size, growth_rate, drop_rate, memory_efficient))
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}",
                                         Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = F.adaptive_avg_pool2d(F.relu(self.features(x)), (1, 1))
        return self.classifier(out.flatten(1))


def densenet121(num_classes: int = 1000, memory_efficient: bool = False,
                **kwargs) -> DenseNet:
    """torchvision.models.densenet121 (without its `weights`): growth rate 32, blocks of
    6, 12, 24 and 16 layers, for 224x224 images (any size from 29x29 works)."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes,
                    memory_efficient=memory_efficient, **kwargs)
