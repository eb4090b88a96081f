"""Where the CUDA C kernel sources (``*.cu``, ``*.cuh``) live.

The sources are kept in the repository's top-level ``kernels/`` folder. Two layouts exist, so
:func:`kernel_dir` looks in both:

* Installed (``pip install .`` or ``pip install -e .``): ``pyproject.toml`` maps the package
  ``gradflow.kernels`` to ``kernels/``, so the sources ship inside the package and are found
  with :mod:`importlib.resources`, wherever site-packages is.
* A plain checkout run with ``PYTHONPATH`` pointing at the repo: there is no
  ``gradflow/kernels`` folder, so ``import gradflow.kernels`` fails and the sources are found
  next to the package, at ``<repo>/kernels``.
"""
from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

__all__ = ["kernel_dir"]


def _installed_dir() -> Path | None:
    """The folder of the installed package ``gradflow.kernels``, or None if not importable."""
    try:
        root = importlib.resources.files("gradflow.kernels")
    except ModuleNotFoundError:
        return None
    except (TypeError, AttributeError, ValueError):  # an older importlib without namespace support
        root = None
    if isinstance(root, Path):
        return root if root.is_dir() else None
    # ``kernels/`` has no ``__init__.py``, so ``gradflow.kernels`` is a namespace package and
    # ``files()`` may return a reader object (``MultiplexedPath``) rather than a Path: take the
    # package's search locations instead.
    spec = importlib.util.find_spec("gradflow.kernels")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location)
        if path.is_dir():
            return path
    return None


def kernel_dir() -> Path:
    """Return the directory that holds the CUDA C kernel sources.

    Tries the installed package ``gradflow.kernels`` first, then the source-tree folder
    ``<repo>/kernels``. Raises :class:`FileNotFoundError` if neither exists.
    """
    installed = _installed_dir()
    if installed is not None:
        return installed
    source_tree = Path(__file__).resolve().parent.parent / "kernels"
    if source_tree.is_dir():
        return source_tree
    raise FileNotFoundError(
        "gradflow's CUDA kernel sources were not found: the package 'gradflow.kernels' is not "
        f"importable and the source-tree folder {source_tree} does not exist. Install gradflow "
        "with pip (the kernels ship inside the package) or run from a full checkout."
    )
