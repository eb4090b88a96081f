"""The convolution layers (torch.nn.Conv1d/2d/3d, ConvTranspose1d/2d/3d), on one `_ConvNd`
base that checks the arguments as torch does and holds the parameters."""
from __future__ import annotations

from typing import Any, Callable

from ... import argcheck, creation
from ...argcheck import ntuple
from ...ops.conv import conv1d, conv2d, conv_geometry, conv_transpose1d, conv_transpose2d
from ...ops.conv3d import conv3d, conv_transpose3d
from ...ops.pad import pad
from ...tensor import Tensor
from .. import init
from ..module import Module
from ..parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """A convolution layer with a learnt weight, (out, in/groups, *kernel) or, transposed,
    (in, out/groups, *kernel), and an optional bias (torch.nn.modules.conv._ConvNd)."""

    dims: int  # the number of spatial dimensions
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any,
                 padding: Any, dilation: Any, output_padding: Any, groups: int, bias: bool,
                 padding_mode: str, device=None, dtype=None) -> None:
        super().__init__()
        name, n = type(self).__name__, self.dims
        groups = argcheck.integer(name, "groups", groups, minimum=1)
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if argcheck.integer(name, arg, v, minimum=0) % groups:
                raise ValueError(f"{name}: {arg} must be a non-negative int divisible by "
                                 f"groups={groups}, got {v!r}")
        self.kernel_size = ntuple(name, "kernel_size", kernel_size, n, 1, TypeError)
        self.stride = ntuple(name, "stride", stride, n, 1, TypeError)
        self.dilation = ntuple(name, "dilation", dilation, n, 1, TypeError)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of "
                                 "'same' or 'valid'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride {self.stride})")
            self.padding: Any = padding
        else:
            self.padding = ntuple(name, "padding", padding, n, None, TypeError)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got "
                             f"{padding_mode!r}")
        # NOTE: validates the padding now, and gives F.pad's widths (last dimension first) for
        # the non-zero padding modes, which pad before a convolution with no padding.
        _, _, pads = conv_geometry(name, self.kernel_size, self.stride, self.padding,
                                   self.dilation)
        self._reversed_padding_repeated_twice = tuple(w for pair in reversed(pads)
                                                      for w in pair)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.output_padding = ntuple(name, "output_padding", output_padding, n, 0, TypeError)
        self.groups, self.padding_mode = groups, padding_mode
        shape = ((in_channels, out_channels // groups) if self.transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = Parameter(creation.empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default init, the same as Linear's with fan_in = weight.shape[1] * the
        kernel's size."""
        init.reset_linear_(self.weight, self.bias)

    def extra_repr(self) -> str:
        n = self.dims
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """Conv1d/2d/3d: `conv` is the functional form."""

    conv: Callable

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        conv = self.conv
        if self.padding_mode == "zeros":
            return conv(input, self.weight, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)
        padded = pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
        return conv(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-D convolution over (N, C, L) or (C, L) inputs (torch.nn.Conv1d)."""

    dims, conv = 1, staticmethod(conv1d)


class Conv2d(_Conv):
    """2-D convolution over (N, C, H, W) or (C, H, W) inputs (torch.nn.Conv2d)."""

    dims, conv = 2, staticmethod(conv2d)


class Conv3d(_Conv):
    """3-D convolution over (N, C, D, H, W) or (C, D, H, W) inputs (torch.nn.Conv3d)."""

    dims, conv = 3, staticmethod(conv3d)


class _ConvTranspose(_ConvNd):
    """ConvTranspose1d/2d/3d: `conv` is the functional form; only zero padding, given as
    ints, and forward's `output_size` may choose the output_padding (as torch)."""

    transposed = True
    conv: Callable

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        name = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported for {name}, got '
                             f"padding_mode={padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an int or a tuple of {self.dims} ints "
                             f"(no 'same' or 'valid' for transposed convolutions), got "
                             f"{padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        return self.conv(input, self.weight, self.bias, self.stride, self.padding,
                               self._output_padding(input, output_size), self.groups,
                               self.dilation)

    def _output_padding(self, input: Tensor, output_size: Any) -> tuple:
        """The output_padding that gives `output_size` (all dimensions, or the spatial ones),
        which must lie within the stride's range of sizes."""
        if output_size is None:
            return self.output_padding
        name, n = type(self).__name__, self.dims
        size = tuple(output_size)
        lead = 2 if input.ndim == n + 2 else 1
        if len(size) == lead + n:
            size = size[lead:]
        if len(size) != n:
            raise ValueError(f"{name}: for {input.ndim}D input, output_size must have {n} or "
                             f"{lead + n} elements (got {len(size)})")
        low = tuple((i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in zip(
            input.shape[lead:], self.stride, self.padding, self.dilation, self.kernel_size))
        high = tuple(m + s - 1 for m, s in zip(low, self.stride))
        if any(not lo <= v <= hi for v, lo, hi in zip(size, low, high)):
            raise ValueError(f"{name}: requested an output size of {list(size)}, but valid "
                             f"sizes range from {list(low)} to {list(high)} (for an input of "
                             f"{tuple(input.shape[lead:])})")
        return tuple(v - lo for v, lo in zip(size, low))


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution, the input gradient of Conv1d (torch.nn.ConvTranspose1d)."""

    dims, conv = 1, staticmethod(conv_transpose1d)


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution, the input gradient of Conv2d (torch.nn.ConvTranspose2d)."""

    dims, conv = 2, staticmethod(conv_transpose2d)


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution, the input gradient of Conv3d (torch.nn.ConvTranspose3d)."""

    dims, conv = 3, staticmethod(conv_transpose3d)
