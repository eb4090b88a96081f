"""Convolutions and padding (torch.nn.functional.conv1d/2d/3d, conv_transpose1d/2d/3d,
pad): the op families in `gradflow.ops.conv`, `gradflow.ops.conv3d` and `gradflow.ops.pad`."""
from __future__ import annotations

from ...ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from ...ops.conv3d import conv3d, conv_transpose3d
from ...ops.pad import pad

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "pad"]
