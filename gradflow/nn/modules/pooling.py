"""Pooling layers (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d)."""
from __future__ import annotations

from typing import Any

from ... import argcheck
from ...ops.pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from ...tensor import Tensor
from ..module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


def _check_window(owner: str, kernel_size: Any, stride: Any, padding: Any,
                  dilation: Any = 1) -> None:
    """Check a pooling window when the layer is built, with the helper (`pair`) that the
    pooling ops use when called, so a bad size fails at construction, naming the layer."""
    argcheck.pair(owner, "kernel_size", kernel_size, minimum=1)
    if stride is not None:
        argcheck.pair(owner, "stride", stride, minimum=1)
    argcheck.pair(owner, "padding", padding, minimum=0)
    argcheck.pair(owner, "dilation", dilation, minimum=1)


class MaxPool2d(Module):
    """Largest value of each window; `return_indices` also gives where it was."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        _check_window("MaxPool2d", kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor):
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean of each window, divided as `count_include_pad` and `divisor_override` say."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        _check_window("AvgPool2d", kernel_size, stride, padding)
        if divisor_override is not None:
            argcheck.integer("AvgPool2d", "divisor_override", divisor_override, minimum=1)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average over the windows that split the input into `output_size` cells."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        argcheck.sizes("AdaptiveAvgPool2d", "output_size", output_size, 2, allow_none=True)
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Largest value of each of the windows that split the input into `output_size` cells."""

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        argcheck.sizes("AdaptiveMaxPool2d", "output_size", output_size, 2, allow_none=True)
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor):
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
