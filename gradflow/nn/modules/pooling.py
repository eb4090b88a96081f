"""Pooling layers (torch.nn.MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool1d/2d/3d,
AdaptiveMaxPool1d/2d/3d, MaxUnpool1d/2d/3d, LPPool1d/2d/3d). Each family is one class over
the number of spatial axes, `dims`, whose forward calls the functional form `function`."""
from __future__ import annotations

from typing import Any, Callable

from ... import argcheck
from ...argcheck import ntuple
from ...ops import pool, pool3d
from ...tensor import Tensor
from ..module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
           "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "MaxUnpool1d", "MaxUnpool2d",
           "MaxUnpool3d", "LPPool1d", "LPPool2d", "LPPool3d"]


def _check_window(owner: str, dims: int, kernel_size: Any, stride: Any, padding: Any,
                  dilation: Any = 1) -> None:
    """Check a pooling window when the layer is built, with the helpers (`pair`, `sizes_nd`)
    that the pooling ops use when called, so a bad size fails at construction, naming the
    layer."""
    def check(name: str, value: Any, minimum: int) -> None:
        if dims == 2:
            argcheck.pair(owner, name, value, minimum=minimum)
        else:
            ntuple(owner, name, value, dims, minimum=minimum)

    check("kernel_size", kernel_size, 1)
    if stride is not None:
        check("stride", stride, 1)
    check("padding", padding, 0)
    check("dilation", dilation, 1)


class _MaxPoolNd(Module):
    """Largest value of each window; `return_indices` also gives where it was."""

    dims: int
    function: Callable

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        _check_window(type(self).__name__, self.dims, kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor):
        return type(self).function(input, self.kernel_size, self.stride, self.padding,
                               self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Largest value of each window of (N, C, L) signals (torch.nn.MaxPool1d)."""

    dims, function = 1, staticmethod(pool.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """Largest value of each window of (N, C, H, W) planes (torch.nn.MaxPool2d)."""

    dims, function = 2, staticmethod(pool.max_pool2d)


class MaxPool3d(_MaxPoolNd):
    """Largest value of each window of (N, C, D, H, W) volumes (torch.nn.MaxPool3d)."""

    dims, function = 3, staticmethod(pool3d.max_pool3d)


class _AvgPoolNd(Module):
    """Mean of each window, divided as `count_include_pad` (and `divisor_override`, in 2-D
    and 3-D) say."""

    dims: int
    function: Callable

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        _check_window(name, self.dims, kernel_size, stride, padding)
        if divisor_override is not None:
            argcheck.integer(name, "divisor_override", divisor_override, minimum=1)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return type(self).function(input, self.kernel_size, self.stride, self.padding,
                               self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Mean of each window of (N, C, L) signals (torch.nn.AvgPool1d)."""

    dims = 1

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        # NOTE: torch's AvgPool1d keeps its geometry as 1-tuples (and prints them so)
        self.kernel_size, self.stride, self.padding = (
            v if isinstance(v, tuple) else (v,) for v in (self.kernel_size, self.stride,
                                                         self.padding))

    def forward(self, input: Tensor) -> Tensor:
        return pool.avg_pool1d(input, self.kernel_size, self.stride, self.padding,
                               self.ceil_mode, self.count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Mean of each window of (N, C, H, W) planes (torch.nn.AvgPool2d)."""

    dims, function = 2, staticmethod(pool.avg_pool2d)


class AvgPool3d(_AvgPoolNd):
    """Mean of each window of (N, C, D, H, W) volumes (torch.nn.AvgPool3d)."""

    dims, function = 3, staticmethod(pool3d.avg_pool3d)


class _AdaptiveAvgPoolNd(Module):
    """Average over the windows that split the input into `output_size` cells."""

    dims: int
    function: Callable

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        argcheck.sizes(type(self).__name__, "output_size", output_size, self.dims,
                       allow_none=True)
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return type(self).function(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """torch.nn.AdaptiveAvgPool1d."""

    dims, function = 1, staticmethod(pool.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """torch.nn.AdaptiveAvgPool2d."""

    dims, function = 2, staticmethod(pool.adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """torch.nn.AdaptiveAvgPool3d."""

    dims, function = 3, staticmethod(pool3d.adaptive_avg_pool3d)


class _AdaptiveMaxPoolNd(Module):
    """Largest value of each of the windows that split the input into `output_size` cells."""

    dims: int
    function: Callable

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        argcheck.sizes(type(self).__name__, "output_size", output_size, self.dims,
                       allow_none=True)
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor):
        return type(self).function(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """torch.nn.AdaptiveMaxPool1d."""

    dims, function = 1, staticmethod(pool.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """torch.nn.AdaptiveMaxPool2d."""

    dims, function = 2, staticmethod(pool.adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """torch.nn.AdaptiveMaxPool3d."""

    dims, function = 3, staticmethod(pool3d.adaptive_max_pool3d)


class _MaxUnpoolNd(Module):
    """The partial inverse of max pooling: `forward(input, indices, output_size=None)` puts
    each value back at its index, zeros elsewhere. Sizes are kept as tuples, as torch's."""

    dims: int
    function: Callable

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = ntuple(name, "kernel_size", kernel_size, self.dims, minimum=1)
        self.stride = self.kernel_size if stride is None else ntuple(
            name, "stride", stride, self.dims, minimum=1)
        self.padding = ntuple(name, "padding", padding, self.dims, minimum=0)

    def forward(self, input: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        return type(self).function(input, indices, self.kernel_size, self.stride, self.padding,
                               output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """torch.nn.MaxUnpool1d."""

    dims, function = 1, staticmethod(pool.max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd):
    """torch.nn.MaxUnpool2d."""

    dims, function = 2, staticmethod(pool.max_unpool2d)


class MaxUnpool3d(_MaxUnpoolNd):
    """torch.nn.MaxUnpool3d."""

    dims, function = 3, staticmethod(pool3d.max_unpool3d)


class _LPPoolNd(Module):
    """Power-average pooling: (sum over each window of x**p)**(1/p)."""

    dims: int
    function: Callable

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        argcheck.real(name, "norm_type", norm_type)
        _check_window(name, self.dims, kernel_size, stride, 0)
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        return type(self).function(input, float(self.norm_type), self.kernel_size, self.stride,
                               self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """torch.nn.LPPool1d."""

    dims, function = 1, staticmethod(pool.lp_pool1d)


class LPPool2d(_LPPoolNd):
    """torch.nn.LPPool2d."""

    dims, function = 2, staticmethod(pool.lp_pool2d)


class LPPool3d(_LPPoolNd):
    """torch.nn.LPPool3d."""

    dims, function = 3, staticmethod(pool3d.lp_pool3d)
