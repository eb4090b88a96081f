"""VGG (Simonyan and Zisserman, 2014) in torchvision's layout and initialisation (vgg16:
138,357,544 parameters), with _bn forms and 32x32 variants for CIFAR-sized inputs."""
from __future__ import annotations

from .. import nn
from ..tensor import Tensor

CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
         "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512,
         512, 512, 512, "M"],
}


def make_features(config: list, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(channels, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """`small_input=True` gives the 32x32 variant: 1x1 features and a 512-wide classifier."""

    def __init__(self, depth: int, batch_norm: bool = False, num_classes: int = 1000,
                 small_input: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"VGG: depth must be one of {sorted(CONFIGS)}, got {depth}")
        self.features = make_features(CONFIGS[depth], batch_norm)
        self.avgpool: nn.Module
        if small_input:
            self.avgpool = nn.Identity()
            self.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Dropout(dropout),
                                            nn.Linear(512, num_classes))
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(4096, num_classes))
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def init_weights(model: nn.Module) -> None:
    """torchvision's VGG/ResNet scheme: He-normal convs (fan_out), unit BN, N(0, 0.01) dense."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def _builder(depth: int, batch_norm: bool, small_input: bool):
    def build(num_classes: int = 10 if small_input else 1000) -> VGG:
        return VGG(depth, batch_norm, num_classes, small_input)
    suffix = ("_bn" if batch_norm else "") + ("32" if small_input else "")
    build.__name__ = f"vgg{depth}{suffix}"
    build.__doc__ = f"VGG-{depth}{' with batch norm' if batch_norm else ''}" + (
        " for 32x32 inputs" if small_input else "")
    return build


vgg11, vgg11_bn = _builder(11, False, False), _builder(11, True, False)
vgg13, vgg13_bn = _builder(13, False, False), _builder(13, True, False)
vgg16, vgg16_bn = _builder(16, False, False), _builder(16, True, False)
vgg19, vgg19_bn = _builder(19, False, False), _builder(19, True, False)
vgg11_32, vgg11_bn32 = _builder(11, False, True), _builder(11, True, True)
vgg16_32, vgg16_bn32 = _builder(16, False, True), _builder(16, True, True)
