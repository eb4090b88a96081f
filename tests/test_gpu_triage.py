""".ci/gpu-triage, the first call of a session lent a GPU, checked on the CPU: its plan fits
its time limit and the device tool's file limit, its ops script passes every family with the
CPU against itself, and its pytest plugin times out, marks and skips as it says."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".ci"
STAGES = {"1": "ops", "2": "tests", "3": "bench", "4": "memcheck", "5": "bf16"}
# What stage 1 must cover (the brief of .ci/gpu-triage); triage_ops.py may add more.
FAMILIES = {"kernels", "elementwise", "reduction", "indexing", "matmul", "conv2d", "max_pool2d",
            "avg_pool2d", "adaptive_avg_pool2d", "batch_norm", "cross_entropy", "optimizers",
            "random", "dropout", "lenet5_compile_step"}


def _run(command: list, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{CI}", **env}
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=environ, check=False)


def test_dry_run_plans_every_stage_within_eight_minutes(tmp_path):
    out = tmp_path / "logs"
    done = _run(["bash", str(CI / "gpu-triage"), "--dry-run"], tmp_path, OUT=str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    plan = done.stdout
    stages = re.findall(r"^stage (\d) (\w+): budget (\d+) s, log (\S+):", plan, re.MULTILINE)
    assert {number: name for number, name, _, _ in stages} == STAGES, plan
    commands = re.findall(r"^    \[at most (\d+) s[^\]]*\] (.*)$", plan, re.MULTILINE)
    text = "\n".join(command for _, command in commands)
    for needle in ("triage_env.py", "triage_ops.py --device cuda", "-p triage_pytest",
                   "--triage-timeout=", "-m 'gpu and slow'", "--maxfail=",
                   "--nets lenet5,vgg11_bn32", "--graphs", "--warmup", "--repeats", "--json",
                   "compute-sanitizer --tool memcheck", ".ci/gpu_step.py"):
        assert needle in text, f"{needle!r} missing from the plan:\n{plan}"
    budgets = [int(budget) for _, _, budget, _ in stages]
    total = re.search(r"^total: stages (\d+) s \+ kill grace (\d+) x (\d+) s \+ margin (\d+) s "
                      r"= (\d+) s <= 480 s$", plan, re.MULTILINE)
    assert total, plan
    stage_sum, count, grace, margin, overall = map(int, total.groups())
    assert stage_sum == sum(budgets) and count == len(budgets)
    assert overall == stage_sum + count * grace + margin <= 480
    assert all(int(cap) <= max(budgets) for cap, _ in commands)
    files = re.search(r"^files in the log folder: (.*) \((\d+);", plan, re.MULTILINE)
    assert files and len(files.group(1).split()) == int(files.group(2)) <= 8, plan
    assert not out.exists(), "a dry run wrote to the log folder"


def test_ops_script_passes_every_family_on_the_cpu(tmp_path):
    done = _run([sys.executable, str(CI / "triage_ops.py"), "--device", "cpu", "--size",
                 "small"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = re.findall(r"^-- (\w+)$", done.stdout, re.MULTILINE)
    passed = re.findall(r"^PASS (\w+):", done.stdout, re.MULTILINE)
    assert passed == ran, done.stdout
    assert FAMILIES <= set(passed), f"families missing: {sorted(FAMILIES - set(passed))}"
    assert re.search(rf"^== {len(ran)} families in \d+ s: {len(ran)} passed$", done.stdout,
                     re.MULTILINE), done.stdout


def test_env_script_reports_without_failing(tmp_path):
    done = _run([sys.executable, str(CI / "triage_env.py")], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^cuda available to gradflow: (yes|no)$", done.stdout, re.MULTILINE)


def test_pytest_plugin_times_out_marks_slow_and_skips_missing_modules(tmp_path):
    (tmp_path / "test_timed.py").write_text(
        "import time\n\n\ndef test_hangs():\n    time.sleep(30)\n\n\n"
        "def test_quick():\n    pass\n\n\ndef test_long():\n    pass\n")
    (tmp_path / "test_needs_module.py").write_text("import triage_missing_module\n")
    done = _run([sys.executable, "-m", "pytest", "-p", "triage_pytest", "-p", "no:cacheprovider",
                 "-q", "-rs", "--triage-timeout=1", "--triage-slow=test_timed.py::test_long",
                 "--triage-optional=triage_missing_module", "-m", "not slow", "."], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "per-test timeout: call of test_timed.py::test_hangs ran past 1 s" in done.stdout
    assert "triage_missing_module is not installed here" in done.stdout
    assert re.search(r"^1 failed, 1 passed, 1 skipped, 1 deselected in", done.stdout,
                     re.MULTILINE), done.stdout
