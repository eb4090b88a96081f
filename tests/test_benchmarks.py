"""benchmarks/: torch mirrors compute what the gradflow models compute (outputs, gradients,
running statistics), the pre-timing check catches a pair that differs, and the train-step
command runs on the CPU and writes its JSON. No time is held to a threshold."""
import importlib
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import require_torch, to_numpy

import gradflow as gf
from gradflow import models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """Import from benchmarks/, a top-level folder of the repo rather than an installed
    package."""
    monkeypatch.syspath_prepend(str(ROOT))
    return lambda name: importlib.import_module(f"benchmarks.{name}")


def _model(name: str) -> gf.nn.Module:
    gf.manual_seed(0)
    model = getattr(models, name)(num_classes=10)
    for m in model.modules():
        if isinstance(m, gf.nn.Dropout):
            m.eval()  # its masks differ between the frameworks; batch norm stays in training
    return model


@pytest.mark.parametrize("name,shape", [
    ("lenet5", (2, 1, 28, 28)), ("alexnet32", (2, 3, 32, 32)), ("vgg11_bn32", (2, 3, 32, 32)),
    ("resnet18_32", (2, 3, 32, 32)),
])
def test_mirror_matches_outputs_gradients_and_buffers(bench, name, shape):
    torch = require_torch()
    # NOTE: in float64: in float32 a ReLU input within ~1e-6 of zero may fall on different
    # sides in the two forwards, and batch norm spreads that one difference to every earlier
    # gradient (both frameworks' float32 conv1 gradients of resnet18_32 are 1e-2 from the
    # float64 one), so the comparison would hang on each framework's rounding.
    model = _model(name).double()
    twin = bench("torch_mirror").to_torch(model)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    y = rng.integers(0, 10, shape[0])
    ours, theirs = model(gf.tensor(x)), twin(torch.from_numpy(x))
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-9, atol=1e-12,
                               err_msg=f"{name}: outputs differ")
    gf.nn.functional.cross_entropy(ours, gf.tensor(y)).backward()
    torch.nn.functional.cross_entropy(theirs, torch.from_numpy(y)).backward()
    twin_params = dict(twin.named_parameters())
    assert list(twin_params) == [n for n, _ in model.named_parameters()]
    scale = max(float(p.grad.abs().max()) for p in twin_params.values())
    for n, p in model.named_parameters():
        np.testing.assert_allclose(to_numpy(p.grad), to_numpy(twin_params[n].grad), rtol=1e-8,
                                   atol=1e-10 * scale, err_msg=f"{name}: gradient of {n}")
    twin_buffers = dict(twin.named_buffers())
    for n, b in model.named_buffers():
        np.testing.assert_allclose(to_numpy(b), to_numpy(twin_buffers[n]), rtol=1e-9,
                                   atol=1e-12, err_msg=f"{name}: buffer {n}")


def test_mirror_names_a_class_it_cannot_mirror(bench):
    require_torch()

    class Doubler(gf.nn.Module):
        def forward(self, x):
            return x * 2

    model = gf.nn.Sequential(gf.nn.Linear(2, 2), Doubler())
    with pytest.raises(TypeError, match=r"no torch mirror for .*Doubler \(at Sequential\.1\)"):
        bench("torch_mirror").to_torch(model)


def test_check_refuses_a_pair_that_differs(bench):
    torch = require_torch()
    train_step = bench("train_step")
    model = _model("lenet5")
    twin = bench("torch_mirror").to_torch(model)
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28), dtype=np.float32)
    y = np.arange(4)
    same = train_step.check_pair(model, twin, x, y, "cpu", torch, 1e-3)
    assert same["status"] == "ok", same
    with torch.no_grad():
        twin.classifier[3].bias.add_(0.1)
    differ = train_step.check_pair(model, twin, x, y, "cpu", torch, 1e-3)
    assert differ["status"] == "mismatch", differ


def test_train_step_command_writes_json_on_cpu(bench, tmp_path):
    out = tmp_path / "run.json"
    code = bench("train_step").main(["--device", "cpu", "--nets", "lenet5", "--cpu-batch", "4",
                                     "--warmup", "1", "--repeats", "2", "--rounds", "2", "--graphs",
                                     "--json", str(out)])
    assert code == 0
    run = json.loads(out.read_text())
    assert set(run) == {"environment", "settings", "notes", "results"}
    assert run["settings"]["graphs"] is True  # on the CPU compile_step runs the step eagerly
    env = run["environment"]
    for key in ("date", "device", "mode", "python", "numpy", "torch", "gradflow", "gpu"):
        assert key in env, f"environment lacks {key!r}: {sorted(env)}"
    assert (env["device"], env["mode"], env["gpu"]) == ("cpu", "fp32", None)
    (row,) = run["results"]
    assert (row["net"], row["batch"], row["input_shape"]) == ("lenet5", 4, [4, 1, 28, 28])
    timed = ["gradflow"] if row["check"]["status"] == "skipped" else ["gradflow", "torch"]
    assert row["check"]["status"] in ("ok", "skipped"), row["check"]
    for side in timed:
        for key in ("ms_median", "ms_p10", "ms_p90", "images_per_s"):
            value = row[side][key]
            assert math.isfinite(value) and value > 0, f"{side} {key} = {value}"
    if row["check"]["status"] == "ok":
        assert len(row["round_ratios"]) == 2
        assert math.isclose(row["ratio"], float(np.median(row["round_ratios"])))
    else:
        assert row["torch"] is None and row["ratio"] is None


def test_peak_pass_resets_the_counter_then_reads_it_after_the_steps(bench):
    """Peaks are read in their own pass (gradflow's counter is a hook that would otherwise
    run inside timed steps): reset, run the steps, read."""
    from types import SimpleNamespace
    calls = []
    cuda = SimpleNamespace(reset_peak_memory_stats=lambda: calls.append("reset"),
                           max_memory_allocated=lambda: 3 * 2**20)
    side = bench("train_step").Side(step=lambda: calls.append("step"),
                                    time_ms=lambda step: step(), cuda=cuda)
    assert side.peak_mib() == 3.0
    assert calls == ["reset", "step", "step"]
    assert bench("train_step").Side(step=None, time_ms=None, cuda=None).peak_mib() is None


def test_dispatch_command_prints_every_op_and_writes_json(bench, tmp_path, capsys):
    dispatch = bench("dispatch")
    a = gf.ones(2, requires_grad=True)
    assert dispatch.recorded_ops((a * a).sum()) == 2  # the leaf's gradient sink is no op
    out = tmp_path / "dispatch.json"
    code = dispatch.main(["--number", "2", "--repeats", "1", "--batch", "1", "--json", str(out)])
    assert code == 0
    run = json.loads(out.read_text())
    assert set(run) == {"environment", "settings", "notes", "ops", "lenet5"}
    assert [r["op"] for r in run["ops"]] == ["add", "mul", "relu", "sum", "reshape", "matmul",
                                             "Linear(4, 4) call", "conv2d"]
    for r in run["ops"]:
        assert math.isfinite(r["gradflow_us"]) and r["gradflow_us"] > 0, r
        if r["torch_us"] is None:  # timed without torch
            assert r["ratio"] is None, r
        else:
            assert r["torch_us"] > 0 and math.isclose(r["ratio"], r["gradflow_us"] / r["torch_us"])
    lenet = run["lenet5"]
    assert lenet["batch"] == 1 and lenet["ops"] > 0 and lenet["gradflow_ms"] > 0, lenet
    assert math.isclose(lenet["gradflow_us_per_op"], lenet["gradflow_ms"] * 1e3 / lenet["ops"])
    assert (lenet["torch_ms"] is None) == (run["ops"][0]["torch_us"] is None), lenet
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["op", "gradflow", "us", "torch", "us", "gradflow/torch"]
    for r, line in zip(run["ops"], printed[1:]):
        assert line.startswith(r["op"] + " "), (r["op"], line)
    assert printed[len(run["ops"]) + 1].startswith("lenet5 forward (batch 1): gradflow ")


def test_dataloader_benchmark_times_each_worker_count(bench, tmp_path, capsys):
    out = tmp_path / "loader.json"
    code = bench("dataloader").main(["--samples", "24", "--batch", "4", "--workers", "0", "2",
                                     "--sample-ms", "0.05", "--repeats", "1",
                                     "--json", str(out)])
    assert code == 0
    run = json.loads(out.read_text())
    assert set(run) == {"environment", "settings", "notes", "rounds", "sample_ms", "rows"}
    assert [r["num_workers"] for r in run["rows"]] == [0, 2]
    for r in run["rows"]:
        assert math.isfinite(r["samples_per_s"]) and r["samples_per_s"] > 0, r
        assert math.isclose(r["ratio_vs_0"], r["samples_per_s"] / run["rows"][0]["samples_per_s"])
    assert run["rounds"] >= 1 and run["sample_ms"] > 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("per-sample transform: ") and printed[1].split() == \
        ["num_workers", "samples/s", "vs", "0", "workers"]


def test_distributed_benchmark_times_one_and_two_ranks(bench, tmp_path, capsys):
    distributed = bench("distributed")
    if importlib.util.find_spec("mpi4py") is None or distributed.find_mpiexec() is None:
        pytest.skip("needs mpi4py and mpiexec: pip install 'gradflow[distributed]'")
    out = tmp_path / "distributed.json"
    code = distributed.main(["--ranks", "1", "2", "--nets", "mlp", "--batch", "4", "--warmup",
                             "1", "--steps", "2", "--rounds", "1", "--json", str(out)])
    assert code == 0
    run = json.loads(out.read_text())
    assert set(run) == {"environment", "settings", "notes", "rows"}
    one, two = run["rows"]
    assert (one["ranks"], two["ranks"]) == (1, 2) and one["net"] == two["net"] == "mlp"
    assert one["wait_share"] is None and one["step_vs_1_rank"] == 1.0
    assert math.isclose(two["step_vs_1_rank"], two["step_ms"] / one["step_ms"])
    assert math.isclose(two["efficiency"], one["step_ms"] / two["step_ms"])
    assert 0 < two["wait_ms"] < two["step_ms"] and two["buckets"] >= 1
    assert math.isclose(two["sync_share"], 1 - two["no_sync_step_ms"] / two["step_ms"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:4] == ["net", "ranks", "step", "ms"]
    assert printed[2].split()[:2] == ["mlp", "2"], printed


def test_the_charlm_quality_run_trains_both_sides_alike(bench, monkeypatch, capsys):
    """benchmarks.charlm_step --quality on a small model: both sides start from the same
    weights and see the same batches, so their validation losses agree closely."""
    require_torch()
    charlm = bench("charlm_step")
    for name, value in {"EMBED": 8, "HIDDEN": 16, "BATCH": 4, "LENGTH": 12}.items():
        monkeypatch.setattr(charlm, name, value)
    charlm.main(["--quality", "--steps", "3"])
    lines = capsys.readouterr().out.splitlines()
    losses = [float(line.split(":")[1].split()[0]) for line in lines[:2]]
    assert lines[0].startswith("torch") and lines[1].startswith("gradflow")
    assert 0 < losses[0] < 5 and math.isclose(losses[0], losses[1], rel_tol=1e-4)
    assert "target: within 2%" in lines[2]
