"""Helpers mirroring torch.utils (`gradflow.utils.data` holds datasets, samplers and loaders),
and training tools: early stopping, accuracy metrics and the sanity checks to run before a
long training run (sanity.py); `gradflow.utils.checkpoint` recomputes activations in backward
to save memory."""
from . import checkpoint, data
from .early_stopping import EarlyStopping
from .evaluate import evaluate
from .metrics import accuracy
from .sanity import SanityReport, sanity_check

__all__ = ["EarlyStopping", "SanityReport", "accuracy", "checkpoint", "data", "evaluate",
           "sanity_check"]
