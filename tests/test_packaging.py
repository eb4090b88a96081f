"""The package builds with a plain (non-editable) ``pip install .`` and ships its kernels and
its bundled data (the MNIST digits, Tiny Shakespeare).

Installs into a fresh venv under tmp_path and imports from a directory outside the repo, so
the checkout cannot be picked up by accident: ``gradflow`` and ``gradflow/kernels`` (the repo's
top-level ``kernels/`` folder, mapped in pyproject.toml) must both come from site-packages.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# What a build needs from the repo (a copy is built, so no build/ or *.egg-info is left in
# the checkout and none left there can leak into the wheel).
SOURCES = ["pyproject.toml", "setup.py", "README.md", "gradflow", "kernels"]

PROBE = r"""
import json, sys, sysconfig
import gradflow
import gradflow.datasets
from gradflow.kernels_path import kernel_dir
d = kernel_dir()
print(json.dumps({
    "gradflow_file": gradflow.__file__,
    "kernel_dir": str(d),
    "kernel_dir_exists": d.is_dir(),
    "readme_exists": (d / "README.md").is_file(),
    "purelib": sysconfig.get_paths()["purelib"],
    "text_chars": len(gradflow.datasets.TinyShakespeare("all").data),
    "text_dir": str(gradflow.datasets.text.SHAKESPEARE_DIR),
    "prefix": sys.prefix,
}))
"""


def _can_build_without_isolation() -> bool:
    """True if the outer env has what setuptools.build_meta needs to build a wheel offline."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    if importlib.util.find_spec("wheel") is not None:
        return True
    import setuptools  # setuptools >= 70.1 ships bdist_wheel itself

    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1)


def _venv_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _share_outer_site_packages(python: Path) -> None:
    """Let the new venv see this interpreter's site-packages (numpy, tqdm, setuptools, wheel).

    ``--system-site-packages`` only exposes the *base* interpreter's packages; when the tests
    run inside a venv (as in CI, .venv-ci) the outer env's packages come from this .pth file.
    Its entries go after the new venv's own site-packages, so the installed gradflow wins.
    """
    outer = [p for p in sys.path
             if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    (Path(purelib) / "_outer_env.pth").write_text("".join(f"{p}\n" for p in outer))


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _run_or_skip(cmd: list, cwd: Path, env: dict) -> None:
    """Run a pip command; skip only when it failed for want of a network."""
    done = subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode == 0:
        return
    out = done.stdout + done.stderr
    offline = ("No matching distribution", "Could not find a version",
               "Failed to establish a new connection", "Network is unreachable")
    if "--no-build-isolation" not in cmd and any(s in out for s in offline):
        pytest.skip(f"pip could not build gradflow offline without setuptools+wheel:\n"
                    f"{out[-2000:]}")
    pytest.fail(f"{' '.join(cmd)} failed (rc {done.returncode}):\n{out[-4000:]}")


def test_pip_install_ships_kernels(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        path = REPO / name
        assert path.exists(), f"{path} is missing from the repo"
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    python = _venv_python(env_dir)
    assert python.exists(), f"venv python not found at {python}"
    _share_outer_site_packages(python)

    # NOTE: `pip install <dir>` builds a wheel and installs it. The build runs here, with this
    # interpreter's setuptools (a fresh venv may carry an older one that cannot build wheels);
    # the install, which is what must put kernels/ in place, runs in the fresh venv.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    wheels = tmp_path / "wheels"
    build_cmd = [sys.executable, "-m", "pip", "wheel", "--no-input", "--quiet", "--no-deps",
                 "-w", str(wheels)]
    if _can_build_without_isolation():
        build_cmd.append("--no-build-isolation")
    build_cmd.append(str(src))
    _run_or_skip(build_cmd, tmp_path, env)
    wheel_files = sorted(wheels.glob("gradflow-*.whl"))
    assert len(wheel_files) == 1, f"expected one gradflow wheel in {wheels}, got {wheel_files}"
    _run_or_skip([str(python), "-m", "pip", "install", "--no-input", "--quiet", "--no-deps",
                  str(wheel_files[0])], tmp_path, env)

    probe = subprocess.run([str(python), "-c", PROBE], check=False, cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, (
        f"importing the installed gradflow failed (cwd {tmp_path}):\n"
        f"{probe.stdout}\n{probe.stderr}")
    info = json.loads(probe.stdout.strip().splitlines()[-1])

    purelib = Path(info["purelib"])
    gradflow_file = Path(info["gradflow_file"])
    kdir = Path(info["kernel_dir"])

    assert _is_within(Path(info["prefix"]), env_dir), (
        f"probe ran in {info['prefix']!r}, not in the venv {env_dir}")
    assert _is_within(gradflow_file, env_dir), (
        f"gradflow was imported from {gradflow_file}, not from the venv {env_dir}")
    assert not _is_within(gradflow_file, REPO), (
        f"gradflow was imported from the repo ({gradflow_file}), not the installed copy")
    assert info["kernel_dir_exists"], f"kernel_dir() = {kdir} does not exist"
    assert _is_within(kdir, purelib), (
        f"kernel_dir() = {kdir} is not inside the venv's site-packages {purelib}")
    assert not _is_within(kdir, REPO), (
        f"kernel_dir() = {kdir} points into the repo {REPO}, not the installed package")
    assert kdir.resolve() == (gradflow_file.parent / "kernels").resolve(), (
        f"kernel_dir() = {kdir}, expected {gradflow_file.parent / 'kernels'}")
    assert info["readme_exists"], f"{kdir / 'README.md'} is missing: kernels/ did not ship"

    # The bundled text shipped, compressed, with its attribution and checksums, and loads.
    text_dir = Path(info["text_dir"])
    assert _is_within(text_dir, purelib), f"the text was read from {text_dir}, not {purelib}"
    assert sorted(p.name for p in text_dir.iterdir()) == \
        ["README.md", "SHA256SUMS", "input.txt.gz"], sorted(text_dir.iterdir())
    assert info["text_chars"] == 1_115_394, info
    wheel_size = wheel_files[0].stat().st_size
    assert wheel_size < 4_000_000, f"the wheel is {wheel_size:,} bytes"

    # Every kernel source in the repo must have shipped.
    wanted = sorted(p.name for p in (REPO / "kernels").iterdir()
                    if p.suffix in (".cu", ".cuh", ".md"))
    shipped = sorted(p.name for p in kdir.iterdir() if p.suffix in (".cu", ".cuh", ".md"))
    assert shipped == wanted, f"kernels shipped {shipped}, repo has {wanted}"


def test_kernel_dir_from_checkout() -> None:
    """From the source tree (no gradflow/kernels folder), kernel_dir() falls back to kernels/."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"}
    env["PYTHONPATH"] = str(REPO)
    code = "from gradflow.kernels_path import kernel_dir; print(kernel_dir())"
    run = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"kernel_dir() failed from the checkout:\n{run.stderr}"
    kdir = Path(run.stdout.strip())
    assert (kdir / "README.md").is_file(), f"kernel_dir() = {kdir} has no README.md"
    assert kdir.resolve() == (REPO / "kernels").resolve(), (
        f"kernel_dir() = {kdir}, expected {REPO / 'kernels'}")
