"""`python -m gradflow.train`: see gradflow/train/cli.py."""
import sys

from .cli import main

sys.exit(main())
