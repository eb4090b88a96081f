"""The training command, `python -m gradflow.train` (or `gradflow-train`): the command line
and the training loop in cli.py, the data sets and batches in data.py, the metrics file and
curves in report.py, the process group under a launcher (mpiexec) in parallel.py."""
from . import data, parallel, report
from .cli import INTERRUPTED, main
