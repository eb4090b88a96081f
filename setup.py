"""Package list for setuptools; everything else is in pyproject.toml.

``[tool.setuptools.packages.find]`` in pyproject.toml cannot add ``gradflow.kernels``: that
package is mapped (``[tool.setuptools.package-dir]``) to the repo's top-level ``kernels/``
folder, which a find over ``gradflow/`` never sees. So the find of ``gradflow*`` is done here
and the mapped package appended.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["gradflow", "gradflow.*"]) + ["gradflow.kernels"])
