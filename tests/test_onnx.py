"""gf.onnx.export: the zoo and a small module per nn layer family export, pass onnx.checker and
run in onnxruntime with gradflow's outputs to 1e-4, at the traced batch size and another one
(the dynamic batch axis); unmapped ops and bad arguments give errors naming them."""
import io
import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.nn import functional as F

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnxruntime) is not installed")


def run_onnx(proto, *arrays):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, arrays)))


def as_numpy(t):
    return t.detach().cpu().numpy()


def check_export(model, *shapes, other_batch=3, dtype=np.float32, atol=1e-4, **kwargs):
    """Export `model` (of one output) on random inputs of `shapes` (batch axis 0 dynamic),
    then compare
    onnxruntime with gradflow at that batch and at `other_batch` (None: no second run)."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    names = [f"x{i}" for i in range(len(shapes))]
    training = model.training
    proto = gf.onnx.export(model, tuple(gf.tensor(a) for a in arrays), io.BytesIO(),
                           input_names=names, output_names=["y"],
                           dynamic_axes={n: {0: "batch"} for n in names + ["y"]}, **kwargs)
    assert model.training == training  # the export ran in eval mode and restored the mode
    batches = [arrays] if other_batch is None else [
        arrays, [rng.standard_normal((other_batch,) + s[1:]).astype(dtype) for s in shapes]]
    model.eval()
    for ins in batches:
        want = model(*[gf.tensor(a) for a in ins])
        want = want if isinstance(want, (tuple, list)) else (want,)
        got = run_onnx(proto, *ins)
        assert len(got) == len(want)
        for w, o in zip(want, got):
            np.testing.assert_allclose(o, as_numpy(w), rtol=1e-4, atol=atol)
    return proto


class Fn(nn.Module):
    """A module around a function, for the functional forms."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


# -- the zoo --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape", [("lenet5", (2, 1, 28, 28)), ("alexnet32", (2, 3, 32, 32)),
                                        ("vgg11_bn32", (2, 3, 32, 32)),
                                        ("resnet18_32", (2, 3, 32, 32))])
def test_the_zoo_exports_and_runs_in_onnxruntime(name, shape):
    gf.manual_seed(0)
    model = getattr(gf.models, name)()
    proto = check_export(model, shape, other_batch=1)
    # NOTE: parameters are initializers under their state_dict names (LeNet-5's C3 kernel is
    # folded from its connected slots)
    inits = {t.name for t in proto.graph.initializer}
    assert "classifier.1.weight" in inits or "fc.weight" in inits or \
        "classifier.3.weight" in inits, sorted(inits)[:10]
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "Gemm"} <= ops, ops
    if name == "resnet18_32":  # batch norm in eval folds into a per-channel Mul and Add
        assert {"GlobalAveragePool", "Relu", "Add", "Mul"} <= ops, ops
    if name == "lenet5":  # Subsampling's window sums
        assert {"AveragePool", "Tanh"} <= ops, ops


@pytest.mark.parametrize("name,shape,ops", [
    ("lenet5_32", (2, 1, 32, 32), {"AveragePool", "Tanh"}),
    ("resnet50_32", (2, 3, 32, 32), {"GlobalAveragePool", "Add"}),
    ("mobilenet_v2", (2, 3, 32, 32), {"Conv", "Where"}),  # ReLU6 as gradflow computes it
    ("densenet121", (1, 3, 32, 32), {"Concat", "AveragePool"}),
    ("googlenet", (1, 3, 64, 64), {"Concat", "MaxPool"}),
])
def test_the_new_zoo_models_export_and_run_in_onnxruntime(name, shape, ops):
    """googlenet (eval: no auxiliary heads), the bottleneck ResNets, DenseNet's concatenations,
    MobileNetV2's depthwise convolutions and LeCun's 32x32 LeNet-5."""
    gf.manual_seed(0)
    kwargs = {"num_classes": 10} if name != "lenet5_32" else {}
    model = getattr(gf.models, name)(**kwargs)
    proto = check_export(model, shape, other_batch=None if shape[0] == 1 else 1)
    found = {n.op_type for n in proto.graph.node}
    assert {"Conv"} <= found and ops <= found, found
    if name == "mobilenet_v2":
        groups = [a.i for n in proto.graph.node if n.op_type == "Conv" for a in n.attribute
                  if a.name == "group"]
        assert max(groups) > 1, groups  # the depthwise convolutions stay grouped


def test_a_lenet5_trained_one_step_exports():
    gf.manual_seed(0)
    model = gf.models.lenet5()
    opt = gf.optim.SGD(model.parameters(), lr=0.1)
    x, y = gf.randn(4, 1, 28, 28), gf.tensor([1, 2, 3, 4])
    F.cross_entropy(model(x), y).backward()
    opt.step()
    check_export(model, (2, 1, 28, 28))


def test_the_main_jobs_trained_lenet5_exports(tmp_path, capsys):
    """`python -m gradflow.train` (LeNet-5 on the bundled digits, cut short), its best
    checkpoint loaded into a fresh lenet5() and exported."""
    from gradflow.train import main
    out = tmp_path / "run"
    assert main(["--subset", "100", "--epochs", "1", "--batch-size", "50", "--device", "cpu",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    model = gf.models.lenet5()
    model.load_state_dict(gf.load(out / "best.ckpt")["model"])
    check_export(model, (2, 1, 28, 28))


def test_folding_off_keeps_the_ops_on_parameters():
    gf.manual_seed(0)
    model = gf.models.lenet5()
    folded = check_export(model, (2, 1, 28, 28), other_batch=None)
    unfolded = check_export(model, (2, 1, 28, 28), other_batch=None, do_constant_folding=False)
    ops = {n.op_type for n in unfolded.graph.node}
    assert {"Gather", "Concat"} <= ops, ops
    assert len(unfolded.graph.node) > len(folded.graph.node)


# -- the nn layer families ----------------------------------------------------------------------
LAYERS = {
    "conv": (nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Conv2d(6, 6, 3, padding=2,
                                                                              dilation=2,
                                                                              groups=3),
                           nn.Conv2d(6, 6, 3, groups=6, bias=False), nn.Conv2d(6, 2, 1)),
             (2, 4, 11, 9)),
    "conv_padding_same": (nn.Conv2d(3, 4, (3, 4), padding="same"), (2, 3, 7, 8)),
    "conv1d": (nn.Conv1d(3, 5, 3, stride=2, padding=1), (2, 3, 10)),
    "conv_transpose": (nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
                       (2, 4, 5, 6)),
    "max_pool": (nn.Sequential(nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                               nn.MaxPool2d(2, 1, dilation=2), nn.MaxPool2d(2, ceil_mode=True)),
                 (2, 3, 12, 11)),
    "avg_pool": (Fn(lambda x: gf.cat([
        F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False).flatten(1),
        F.avg_pool2d(x, 3, 2, 1, ceil_mode=True).flatten(1),
        F.avg_pool2d(x, 3, 2, 1, count_include_pad=False).flatten(1),
        F.avg_pool2d(x, 2).flatten(1), F.avg_pool2d(x, 2, divisor_override=3).flatten(1)], 1)),
        (2, 3, 10, 9)),
    "adaptive_avg_pool": (Fn(lambda x: gf.cat([
        F.adaptive_avg_pool2d(x, 1).flatten(1), F.adaptive_avg_pool2d(x, (4, 3)).flatten(1),
        F.adaptive_avg_pool2d(x, (3, 5)).flatten(1)], 1)), (2, 3, 8, 9)),
    "batch_norm": (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                                 nn.Flatten(), nn.Linear(4 * 25, 6), nn.BatchNorm1d(6)),
                   (2, 3, 7, 7)),
    "layer_group_norm": (nn.Sequential(nn.GroupNorm(2, 4), nn.LayerNorm([5, 6]),
                                       nn.GroupNorm(4, 4, affine=False)), (2, 4, 5, 6)),
    "activations": (nn.Sequential(
        nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU6(), nn.Hardtanh(-0.5, 0.7),
        nn.LeakyReLU(0.2), nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Sigmoid(), nn.Tanh(),
        nn.ELU(), nn.Softplus(), nn.Hardswish(), nn.Mish(), nn.Softmax(-1), nn.LogSoftmax(1)),
        (2, 5)),
    "dropout_and_linear": (nn.Sequential(nn.Dropout(0.5), nn.Linear(6, 4), nn.Dropout2d(),
                                         nn.Linear(4, 3, bias=False)), (2, 7, 6)),
    "shapes": (Fn(lambda x: gf.cat([
        x.permute(0, 2, 3, 1).reshape(x.shape[0], -1),
        x.transpose(1, 3).flatten(1), x.unsqueeze(1).squeeze(1).view(x.shape[0], -1),
        x[:, 1:3, ::2, -1].flatten(1), x[:, 0, None, ..., 2].flatten(1),
        x[..., gf.tensor([0, 2, 2])].flatten(1), x[:, -1].mean((1, 2)).unsqueeze(1),
        x.sum(1, keepdim=True).flatten(1), x.amax(-1).flatten(1),
        F.pad(x, (1, 2, 0, 1)).flatten(1), F.pad(x, (-1, 1), value=0.5).flatten(1)], 1)),
        (2, 3, 4, 5)),
    "arithmetic": (Fn(lambda x, y: gf.cat([
        2.0 - x / 3 * y + 1, x ** 2 - y, 1 / (x.abs() + 1), gf.maximum(x, y) - x.clamp(-0.5, 0.5),
        gf.where(x > y, x.exp(), -y), x - x.mean(0) + y,
        (x >= 0).float() + (y < 0.1).to(gf.float32)], 1)), ((2, 4), (1, 4))),
    "views_and_reductions": (Fn(lambda t: gf.cat([
        gf.stack(t.unbind(1), 2).flatten(1), gf.cat(list(t.split([1, 3], 1)), 1).flatten(1),
        (t[:, :1].expand(-1, 4, 5, 6) + t.narrow(2, 1, 1)).flatten(1),
        (t.max(1).values + t.argmax(1).float()).flatten(1), t.min(-1).values.flatten(1),
        t.prod(2).flatten(1), t.amin((1, 3), keepdim=True).flatten(1),
        t.std((1, 2, 3)).unsqueeze(1), t.softmax(1).flatten(1), t.log_softmax(-1).flatten(1),
        t.logsumexp(1).flatten(1)], 1)), (2, 4, 5, 6)),
    "instance_norm": (nn.Sequential(nn.InstanceNorm2d(4, affine=True),
                                    nn.BatchNorm2d(4, track_running_stats=False),
                                    nn.InstanceNorm2d(4)), (2, 4, 5, 6)),
    "conv_transpose_groups": (nn.Sequential(
        nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                           dilation=2),
        nn.Conv2d(6, 2, 1)), (2, 4, 5, 6)),
    "conv_transpose1d": (nn.ConvTranspose1d(4, 3, 3, stride=3, padding=1), (2, 4, 7)),
    "embedding": (nn.Embedding(7, 3), None),
}


@pytest.mark.parametrize("family", sorted(LAYERS))
def test_each_nn_layer_family_exports_with_a_dynamic_batch(family):
    gf.manual_seed(1)
    model, shape = LAYERS[family]
    if family == "embedding":
        index = gf.tensor([[1, 6, 0], [3, 3, 2]])
        proto = gf.onnx.export(model, index, io.BytesIO(), input_names=["i"],
                               dynamic_axes={"i": [0, 1]})
        for ids in (index, gf.tensor([[5], [0], [1], [2]])):
            got, = run_onnx(proto, ids.numpy())
            np.testing.assert_allclose(got, as_numpy(model(ids)), rtol=1e-6)
        assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "i_dynamic_axes_2"
        return
    shapes = shape if isinstance(shape[0], tuple) else (shape,)
    if family == "arithmetic":  # y broadcasts along the batch, which stays at 1
        rng = np.random.default_rng(0)
        x, y = (gf.tensor(rng.standard_normal(s).astype(np.float32)) for s in shapes)
        proto = gf.onnx.export(model, (x, y), io.BytesIO())
        got, = run_onnx(proto, x.numpy(), y.numpy())
        np.testing.assert_allclose(got, as_numpy(model(x, y)), rtol=1e-5, atol=1e-6)
        return
    check_export(model, *shapes)


INDEX = gf.tensor([2, 0, 1, 1])
GETITEM = [lambda t: t[0, :, INDEX], lambda t: t[:, 1, INDEX], lambda t: t[1, INDEX],
           lambda t: t[:, INDEX, 2], lambda t: t[0, :, :, INDEX], lambda t: t[..., gf.tensor(3)],
           lambda t: t[:, gf.tensor([[0, 1], [2, 3]])],
           lambda t: t[:, :, gf.tensor([True, False, True, True, False])],
           lambda t: t[-1, 1:-1, None, ::3], lambda t: t[:, -2:, 1, -3:-1]]


@pytest.mark.parametrize("case", range(len(GETITEM)))
def test_getitem_follows_numpys_placement_of_index_dims(case):
    x = gf.randn(3, 4, 5, 6)
    proto = gf.onnx.export(Fn(GETITEM[case]), x, io.BytesIO())
    got, = run_onnx(proto, x.numpy())
    np.testing.assert_array_equal(got, GETITEM[case](x).numpy())


def test_names_files_and_outputs():
    model = Fn(lambda x: (x * 2, x, x * 2))
    x = gf.randn(2, 3)
    proto = gf.onnx.export(model, (x,), io.BytesIO(), input_names=["a"],
                           output_names=["double", "same"])
    assert [i.name for i in proto.graph.input] == ["a"]
    assert [o.name for o in proto.graph.output] == ["double", "same", "output_2"]
    outs = run_onnx(proto, x.numpy())
    for got, want in zip(outs, (x * 2, x, x * 2)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)


class Scaled(nn.Module):
    def forward(self, x, n, scale=1.0):
        return {"a": x * scale * n, "b": (x + 1, x.sum())}


def test_numbers_and_keywords_are_baked_and_dicts_flatten():
    x = gf.randn(2, 3)
    proto = gf.onnx.export(Scaled(), (x, 2, {"scale": 3.0}), io.BytesIO())
    assert [i.name for i in proto.graph.input] == ["input_0"]
    outs = run_onnx(proto, x.numpy())
    for got, want in zip(outs, (x * 6, x + 1, x.sum())):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)


def test_writes_a_path_and_a_file_object(tmp_path):
    model = nn.Linear(3, 2)
    x = gf.randn(4, 3)
    path = tmp_path / "linear.onnx"
    gf.onnx.export(model, x, path)
    gf.onnx.export(model, x, str(tmp_path / "again.onnx"))
    buf = io.BytesIO()
    gf.onnx.export(model, x, buf)
    assert path.read_bytes() == buf.getvalue() == (tmp_path / "again.onnx").read_bytes()
    got, = run_onnx(onnx.load(str(path)), x.numpy())
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5)
    assert onnx.load(str(path)).opset_import[0].version == 17


@pytest.mark.parametrize("opset", [13, 18])
def test_other_opsets(opset):
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.LayerNorm(3), nn.Softmax(1))
    proto = check_export(model, (2, 2, 6, 6), opset_version=opset)
    assert proto.opset_import[0].version == opset


# -- errors -----------------------------------------------------------------------------------
class Unmapped(nn.Module):
    def forward(self, x):
        return gf.cumsum(x, 1)


def test_an_op_without_a_mapping_names_it_and_its_module():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), Unmapped()))
    with pytest.raises(RuntimeError, match=r"op cumsum .*has no ONNX mapping; it ran in module "
                                           r"1\.1 \(Unmapped\)"):
        gf.onnx.export(model, gf.randn(2, 3), io.BytesIO())
    assert model.training  # restored after the failure too


def test_unsupported_uses_are_errors():
    pool = Fn(lambda x: F.max_pool2d(x, 2, return_indices=True)[1].float())
    with pytest.raises(RuntimeError, match="max_pool2d's indices"):
        gf.onnx.export(pool, gf.randn(1, 1, 4, 4), io.BytesIO())

    def view_inplace(x):
        y = x * 1
        y[0].relu_()
        return y
    with pytest.raises(RuntimeError, match="changed in place by relu_ on one of its views"):
        gf.onnx.export(Fn(view_inplace), gf.randn(2, 3), io.BytesIO())


def test_an_input_read_outside_the_ops_is_warned_of():
    emb = nn.Embedding(5, 2)
    with pytest.warns(UserWarning, match=r"graph input\(s\) \['input_0'\] are not used"):
        gf.onnx.export(emb, gf.tensor([1, 2], dtype=gf.int32), io.BytesIO())


def test_inplace_ops_on_whole_tensors_are_followed():
    def fn(x):
        y = x * 2
        y.relu_()
        y.add_(1)
        return y * x
    check_export(Fn(fn), (3, 4))


def test_bad_arguments():
    model, x = nn.Linear(3, 2), gf.randn(2, 3)
    with pytest.raises(ValueError, match="opset_version must be an int from 13"):
        gf.onnx.export(model, x, io.BytesIO(), opset_version=9)
    with pytest.raises(ValueError, match="input_names must name the 1 graph input"):
        gf.onnx.export(model, x, io.BytesIO(), input_names=["a", "b"])
    with pytest.raises(TypeError, match="f must be a path or a binary file object"):
        gf.onnx.export(model, x, 3)
    with pytest.raises(ValueError, match="dynamic axis 2 of 'input_0' is out of range"):
        gf.onnx.export(model, x, io.BytesIO(), dynamic_axes={"input_0": [2]})
    with pytest.warns(UserWarning, match="dynamic_axes names 'nope'"):
        gf.onnx.export(model, x, io.BytesIO(), dynamic_axes={"nope": [0]})
    with pytest.raises(TypeError, match="must return tensors"):
        gf.onnx.export(Fn(lambda x: 3), x, io.BytesIO())


def test_a_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install gradflow\[onnx\]"):
        gf.onnx.export(nn.Linear(2, 2), gf.randn(1, 2), io.BytesIO())


def test_exports_from_the_cupy_path(fake_cuda):
    gf.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AvgPool2d(3, 2, 1, ceil_mode=True), nn.AdaptiveAvgPool2d((3, 2)),
                          nn.Flatten(), nn.Linear(24, 5))
    x = gf.randn(2, 3, 9, 10)
    want = model.eval()(x)
    model.to("cuda")
    proto = gf.onnx.export(model, x.to("cuda"), io.BytesIO())
    got, = run_onnx(proto, x.numpy())
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-4, atol=1e-5)
