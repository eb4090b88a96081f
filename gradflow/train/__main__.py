"""`python -m gradflow.train`: see gradflow/train/__init__.py."""
import sys

from . import main

sys.exit(main())
