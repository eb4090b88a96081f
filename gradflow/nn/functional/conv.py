"""Convolutions and padding (torch.nn.functional.conv2d, pad, ...): the op families in
`gradflow.ops.conv` and `gradflow.ops.pad`."""
from __future__ import annotations

from ...ops.conv import conv2d
from ...ops.pad import pad

__all__ = ["conv2d", "pad"]
