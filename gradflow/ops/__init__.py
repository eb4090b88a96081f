"""The differentiable operations, one module per family."""
from . import elementwise, index, matmul, reduce, scan, shape, util  # noqa: F401
