"""Package list for setuptools; everything else is in pyproject.toml.

``[tool.setuptools.packages.find]`` in pyproject.toml cannot add ``gradflow.kernels``: that
package is mapped (``[tool.setuptools.package-dir]``) to the repo's top-level ``kernels/``
folder, which a find over ``gradflow/`` never sees. So the find of ``gradflow*`` is done here
and the mapped package appended, with the data-only folders of the bundled MNIST digits and
Tiny Shakespeare text.
"""
from setuptools import find_packages, setup

# NOTE: gradflow/datasets/data/mnist and .../tinyshakespeare hold only data files; each listed
# as a package ships them without setuptools' "Package would be ignored" warning about an unlisted
# importable folder.
setup(packages=find_packages(include=["gradflow", "gradflow.*"])
      + ["gradflow.kernels", "gradflow.datasets.data.mnist",
         "gradflow.datasets.data.tinyshakespeare"])
