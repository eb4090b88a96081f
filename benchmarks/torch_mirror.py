"""to_torch: the torch.nn twin of a gradflow module (same tree, names, parameters and buffers),
so a benchmark or a test runs one function in both frameworks."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn as tnn

import gradflow as gf
from gradflow import models as gm
from gradflow import nn as gnn
from gradflow.models import lenet, resnet


class ScaledTanh(tnn.Module):
    """LeNet-5's 1.7159 tanh(2x/3), in gradflow's order of operations."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x * (2 / 3)) * 1.7159


class Subsampling(tnn.Module):
    """LeNet-5's 2x2 window sum times a per-map weight plus a per-map bias."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, 2) * 4
        return window_sum * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)


class PartialConv2d(tnn.Module):
    """LeNet-5's C3: the dense kernel gathered from the connected kernels and a zero row."""

    def __init__(self, in_channels: int, out_channels: int, k: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.k = in_channels, out_channels, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([self.weight, self.weight.new_zeros(1, self.k, self.k)])
        dense = padded[self.slot].reshape(self.out_channels, self.in_channels, self.k, self.k)
        return F.conv2d(x, dense, self.bias)


class LeNet5(tnn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class AlexNet32(tnn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class PooledNet(tnn.Module):
    """AlexNet's and VGG's forward: features, pooling, flatten, classifier."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class BasicBlock(tnn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.downsample = None  # replaced by the mirrored shortcut where gradflow has one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(tnn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


# Classes built without arguments: their state and children come from the gradflow module.
_PLAIN = {
    gnn.Sequential: tnn.Sequential, gnn.ReLU: tnn.ReLU, gnn.Tanh: tnn.Tanh,
    gnn.Sigmoid: tnn.Sigmoid, gnn.Identity: tnn.Identity, gnn.ScaledTanh: ScaledTanh,
    lenet.Subsampling: Subsampling, gm.LeNet5: LeNet5, gm.AlexNet: PooledNet,
    gm.AlexNet32: AlexNet32, gm.VGG: PooledNet, resnet.BasicBlock: BasicBlock,
    gm.ResNet: ResNet,
}

# Layers whose torch constructor takes the gradflow layer's settings.
_CONFIGURED = {
    gnn.Conv2d: lambda m: tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                     m.padding, m.dilation, m.groups, m.bias is not None,
                                     m.padding_mode),
    gnn.Linear: lambda m: tnn.Linear(m.in_features, m.out_features, m.bias is not None),
    gnn.BatchNorm1d: lambda m: tnn.BatchNorm1d(m.num_features, m.eps, m.momentum, m.affine,
                                               m.track_running_stats),
    gnn.BatchNorm2d: lambda m: tnn.BatchNorm2d(m.num_features, m.eps, m.momentum, m.affine,
                                               m.track_running_stats),
    gnn.Dropout: lambda m: tnn.Dropout(m.p),
    gnn.Flatten: lambda m: tnn.Flatten(m.start_dim, m.end_dim),
    gnn.MaxPool2d: lambda m: tnn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation,
                                           m.return_indices, m.ceil_mode),
    gnn.AvgPool2d: lambda m: tnn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                           m.count_include_pad, m.divisor_override),
    gnn.AdaptiveAvgPool2d: lambda m: tnn.AdaptiveAvgPool2d(m.output_size),
    lenet.PartialConv2d: lambda m: PartialConv2d(m.in_channels, m.out_channels, m.k),
}


def to_torch(module: gnn.Module) -> tnn.Module:
    """A torch.nn module computing the same function as `module`, on the CPU, with copies of
    its parameters and buffers under the same dotted names and the same train/eval modes.

    Classes are matched exactly (a subclass may override forward), and one without a mirror
    is an error that names it.
    """
    return _mirror(module, type(module).__name__)


def _mirror(src: gnn.Module, path: str) -> tnn.Module:
    kind = type(src)
    if kind in _PLAIN:
        dst = _PLAIN[kind]()
    elif kind in _CONFIGURED:
        dst = _CONFIGURED[kind](src)
    else:
        known = sorted(c.__name__ for c in (*_PLAIN, *_CONFIGURED))
        raise TypeError(f"to_torch: no torch mirror for {kind.__module__}.{kind.__qualname__} "
                        f"(at {path}); mirrored classes: {', '.join(known)}")
    _copy_state(src, dst, path)
    for name, child in src.named_children():
        setattr(dst, name, _mirror(child, f"{path}.{name}"))
    dst.training = src.training
    return dst


def _copy_state(src: gnn.Module, dst: tnn.Module, path: str) -> None:
    """Give `dst` exactly `src`'s own parameters and buffers (torch's defaults replaced)."""
    params = dict(src.named_parameters(recurse=False))
    buffers = dict(src.named_buffers(recurse=False))
    own = [n for n, _ in dst.named_parameters(recurse=False)]
    own += [n for n, _ in dst.named_buffers(recurse=False)]
    stale = [n for n in own if n not in params and n not in buffers]
    if stale:
        raise ValueError(f"to_torch: torch's {type(dst).__name__} at {path} has {stale}, which "
                         f"gradflow's {type(src).__name__} lacks")
    for name, p in params.items():
        value = _copy(p, getattr(dst, name, None), f"{path}.{name}")
        dst.register_parameter(name, tnn.Parameter(value, requires_grad=p.requires_grad))
    for name, b in buffers.items():
        dst.register_buffer(name, _copy(b, getattr(dst, name, None), f"{path}.{name}"),
                            persistent=name not in src._non_persistent)


def _copy(t: gf.Tensor, existing: torch.Tensor | None, where: str) -> torch.Tensor:
    array = t.detach().cpu().numpy()
    if existing is not None and tuple(existing.shape) != array.shape:
        raise ValueError(f"to_torch: {where} has shape {array.shape} in gradflow but "
                         f"{tuple(existing.shape)} in torch")
    return torch.tensor(array)
