"""Helpers mirroring torch.utils; `gradflow.utils.data` holds datasets, samplers and loaders."""
from . import data
