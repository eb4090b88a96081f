"""The 2-D convolution layer (torch.nn.Conv2d)."""
from __future__ import annotations

from typing import Any

from ... import argcheck, creation
from ...ops.conv import conv2d
from ...ops.pad import pad
from ...ops.window import conv_padding
from ...tensor import Tensor
from .. import init
from ..module import Module
from ..parameter import Parameter

__all__ = ["Conv2d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv2d(Module):
    """2-D convolution with a learnt (out_channels, in_channels/groups, kH, kW) weight and an
    optional bias; `padding_mode` chooses what the border is padded with (torch.nn.Conv2d)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__()
        groups = argcheck.integer("Conv2d", "groups", groups, minimum=1)
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if argcheck.integer("Conv2d", name, v, minimum=0) % groups:
                raise ValueError(f"Conv2d: {name} must be a non-negative int divisible by "
                                 f"groups={groups}, got {v!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = argcheck.pair("Conv2d", "kernel_size", kernel_size, minimum=1)
        self.stride = argcheck.pair("Conv2d", "stride", stride, minimum=1)
        self.dilation = argcheck.pair("Conv2d", "dilation", dilation, minimum=1)
        self.padding = padding if isinstance(padding, str) else argcheck.pair(
            "Conv2d", "padding", padding, minimum=0)
        # NOTE: validates the padding now, and gives (top, bottom, left, right) for the
        # non-zero padding modes, which pad before a convolution with no padding.
        self._pads = conv_padding(self.padding, self.kernel_size, self.stride, self.dilation)
        self.groups, self.padding_mode = groups, padding_mode
        self.weight = Parameter(creation.empty(out_channels, in_channels // groups,
                                               *self.kernel_size, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default init, the same as Linear's with fan_in = in/groups * kH * kW."""
        init.reset_linear_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if self.padding_mode == "zeros":
            return conv2d(input, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, self.groups)
        top, bottom, left, right = self._pads
        padded = pad(input, (left, right, top, bottom), mode=self.padding_mode)
        return conv2d(padded, self.weight, self.bias, self.stride, 0, self.dilation,
                      self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s
