"""The zoo's torchvision architectures (GoogLeNet, ResNet-50/101/152, DenseNet-121,
MobileNetV2) and LeNet-5's two input forms: parameter counts equal to torchvision's, its
initialisation, and a state_dict saved by PyTorch from a twin written with torch.nn in
torchvision's layout (tests/torch_zoo.py) loading with strict=True and giving the same logits."""
from __future__ import annotations

import importlib.util
import io

import numpy as np
import pytest
from helpers import check_cupy_path

import gradflow as gf
from gradflow import models, nn

# torchvision 0.28's published counts: the "num_params" in each weights enum's meta
# (torchvision/models/googlenet.py GoogLeNet_Weights.IMAGENET1K_V1 -- its pretrained model keeps
# no auxiliary classifiers --, resnet.py ResNet{50,101,152}_Weights, densenet.py
# DenseNet121_Weights, mobilenetv2.py MobileNet_V2_Weights).
COUNTS = {"googlenet": 6_624_904, "resnet50": 25_557_032, "resnet101": 44_549_160,
          "resnet152": 60_192_808, "densenet121": 7_978_856, "mobilenet_v2": 3_504_872}
BUILD = {"googlenet": lambda: models.googlenet(aux_logits=False), "resnet50": models.resnet50,
         "resnet101": models.resnet101, "resnet152": models.resnet152,
         "densenet121": models.densenet121, "mobilenet_v2": models.mobilenet_v2}

# One layer per model whose initial weights must follow torchvision's scheme:
# (parameter, expected standard deviation). Kaiming normal uses gain sqrt(2) (ReLU, or
# leaky_relu with a=0) over fan_out = out_channels * kh * kw (resnet, mobilenet; torch counts
# fan_out so for depthwise kernels too) or fan_in = in_channels * kh * kw (densenet).
INIT = {
    "googlenet": ("inception4a.branch2.1.conv.weight", 0.01),  # trunc_normal_(std=0.01)
    "resnet50": ("layer1.0.conv2.weight", np.sqrt(2 / (64 * 9))),
    "resnet101": ("layer3.5.conv1.weight", np.sqrt(2 / 256)),
    "resnet152": ("layer4.0.downsample.0.weight", np.sqrt(2 / 2048)),
    "densenet121": ("features.denseblock1.denselayer1.conv2.weight", np.sqrt(2 / (128 * 9))),
    "mobilenet_v2": ("features.18.0.weight", np.sqrt(2 / 1280)),
}
SIZE = {"googlenet": 32, "resnet50": 32, "resnet101": 32, "resnet152": 32, "densenet121": 32,
        "mobilenet_v2": 32}


@pytest.fixture(scope="module")
def zoo():
    """Each model built once per module, with a copy of its INIT layer as initialised (the
    parity test overwrites the weights)."""
    built: dict = {}

    def get(name):
        if name not in built:
            model = BUILD[name]()
            layer = dict(model.named_parameters())[INIT[name][0]]
            built[name] = model, layer.detach().numpy().copy()
        return built[name]
    return get


@pytest.fixture(scope="module")
def tz():
    pytest.importorskip("torch")
    import torch_zoo
    return torch_zoo


def torch_twin(tz, name):
    import torch
    torch.manual_seed(0)
    if name == "googlenet":
        return tz.GoogLeNet(aux_logits=False)
    if name.startswith("resnet"):
        depth, small = name[6:].split("_") if "_" in name else (name[6:], "")
        return tz.ResNet(int(depth), 10 if small else 1000, small_input=bool(small))
    return tz.DenseNet() if name == "densenet121" else tz.MobileNetV2()


def randomize_batchnorm(model):
    """Running statistics and affine parameters away from their initial 0s and 1s, so that a
    mis-wired buffer shows in the logits."""
    import torch
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.num_batches_tracked.fill_(7)


def through_torch_save(state_dict) -> dict:
    """`torch.save(state_dict)` read back for gradflow: with gf.load where gradflow reads torch
    files (gradflow.torch_checkpoint), else through torch.load and NumPy."""
    import torch
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    if importlib.util.find_spec("gradflow.torch_checkpoint") is not None:
        return gf.load(buf)
    return {k: gf.tensor(v.numpy()) for k, v in torch.load(buf, weights_only=True).items()}


def eval_logits(model, twin, x):
    """The logits of gradflow's model and of its torch twin, both in eval mode, on x."""
    import torch
    with gf.no_grad():
        out = model.eval()(gf.tensor(x))
    with torch.no_grad():
        ref = twin.eval()(torch.from_numpy(x))
    return out, ref


def assert_logits_match(out, ref, rtol=1e-5):
    """Within rtol of the logits' scale (random-init logits can be large or tiny)."""
    ref = ref.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=rtol,
                               atol=rtol * float(np.abs(ref).max()))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts_equal_torchvisions(zoo, name):
    model, _ = zoo(name)
    assert sum(p.numel() for p in model.parameters()) == COUNTS[name]


@pytest.mark.parametrize("name", sorted(INIT))
def test_initialisation_follows_torchvision(zoo, name):
    model, initial = zoo(name)
    _, std = INIT[name]
    assert abs(initial.mean()) < 0.05 * std, f"{name}: mean {initial.mean()} is not 0"
    np.testing.assert_allclose(initial.std(), std, rtol=0.05, err_msg=name)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.bias.abs().max().item() == 0 for m in bns[:3])


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_a_torch_state_dict_loads_strictly_and_gives_the_same_logits(zoo, tz, name):
    """float32 on both sides: the logits agree to 1e-5 of their scale."""
    model, _ = zoo(name)
    twin = torch_twin(tz, name).eval()
    randomize_batchnorm(twin)
    assert sum(p.numel() for p in twin.parameters()) == COUNTS[name]
    result = model.load_state_dict(through_torch_save(twin.state_dict()), strict=True)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    x = np.random.default_rng(0).standard_normal((2, 3, SIZE[name], SIZE[name]))
    assert_logits_match(*eval_logits(model, twin, x.astype(np.float32)))


def test_resnet50_32_loads_the_32x32_twin(tz):
    model, twin = models.resnet50_32(), torch_twin(tz, "resnet50_32").eval()
    randomize_batchnorm(twin)
    model.load_state_dict(through_torch_save(twin.state_dict()), strict=True)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out, ref = eval_logits(model, twin, x)
    assert out.shape == (2, 10)
    assert_logits_match(out, ref)


def test_mobilenet_width_mult_loads_the_torch_twin(tz):
    import torch
    torch.manual_seed(0)
    twin = tz.MobileNetV2(num_classes=4, width_mult=0.75).eval()
    randomize_batchnorm(twin)
    model = models.mobilenet_v2(num_classes=4, width_mult=0.75)
    model.load_state_dict(through_torch_save(twin.state_dict()), strict=True)
    x = np.random.default_rng(7).standard_normal((2, 3, 24, 24)).astype(np.float32)
    assert_logits_match(*eval_logits(model, twin, x))


def test_googlenet_training_outputs_with_aux_heads_match_torch(tz):
    """Training mode (dropout off on both sides, so the RNGs need not agree): the namedtuple of
    logits and both auxiliary logits, their gradients, and the batch norms' updated running
    statistics; in eval mode the logits alone. float64: batch norm over a batch of 2 at 4x4
    amplifies float32 rounding in the gradients past 1e-3."""
    import torch
    torch.manual_seed(0)
    twin = tz.GoogLeNet(num_classes=10, aux_logits=True, dropout=0.0, dropout_aux=0.0).double()
    model = models.googlenet(num_classes=10, dropout=0.0, dropout_aux=0.0).double()
    model.load_state_dict(through_torch_save(twin.state_dict()), strict=True)
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64))
    out, ref = model.train()(gf.tensor(x)), twin.train()(torch.from_numpy(x))
    assert isinstance(out, models.GoogLeNetOutputs)
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    for got, want in zip(out, ref):
        assert_logits_match(got, want)
    weights = np.arange(1.0, 31.0).reshape(3, 1, 10)
    (gf.stack(list(out)) * gf.tensor(weights)).sum().backward()
    (torch.stack(list(ref)) * torch.from_numpy(weights)).sum().backward()
    ours, theirs = dict(model.named_parameters()), dict(twin.named_parameters())
    for key in ("fc.weight", "aux1.fc2.weight", "aux2.conv.conv.weight", "conv1.conv.weight",
                "inception4a.branch3.1.bn.weight"):
        want = theirs[key].grad.numpy()
        np.testing.assert_allclose(ours[key].grad.numpy(), want, rtol=1e-7,
                                   atol=1e-7 * np.abs(want).max(), err_msg=key)
    np.testing.assert_allclose(model.inception4e.branch1.bn.running_var.numpy(),
                               twin.inception4e.branch1.bn.running_var.numpy(), rtol=1e-10)
    with gf.no_grad():
        logits = model.eval()(gf.tensor(x))
    assert isinstance(logits, gf.Tensor) and logits.shape == (2, 10)


def test_googlenet_without_aux_returns_logits_in_training_and_transforms_input():
    model = models.googlenet(num_classes=3, aux_logits=False, transform_input=True)
    assert model.aux1 is None and model.aux2 is None
    assert not any(k.startswith("aux") for k in model.state_dict())
    x = gf.ones(2, 3, 15, 15)
    out = model.train()(x)
    assert isinstance(out, gf.Tensor) and out.shape == (2, 3)
    shifted = model._transform_input(x)
    np.testing.assert_allclose(shifted[0, :, 0, 0].numpy(),
                               [(0.229 + 0.485 - 0.5) / 0.5, (0.224 + 0.456 - 0.5) / 0.5,
                                (0.225 + 0.406 - 0.5) / 0.5], rtol=1e-6)


def test_zero_init_residual_zeroes_each_blocks_last_batch_norm():
    model = models.resnet50_32(zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, models.Bottleneck)]
    assert len(blocks) == 16
    assert all(b.bn3.weight.abs().max().item() == 0 for b in blocks)
    assert model.bn1.weight.min().item() == 1
    basic = models.resnet18_32(zero_init_residual=True)
    assert all(b.bn2.weight.abs().max().item() == 0 for b in basic.modules()
               if isinstance(b, models.BasicBlock))


def test_densenet_memory_efficient_gives_the_same_outputs_and_gradients():
    def small(memory_efficient):
        gf.manual_seed(0)
        return models.DenseNet(8, (2, 3), 16, bn_size=2, num_classes=5,
                               memory_efficient=memory_efficient)
    plain, lean = small(False), small(True)
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32))
    outs = []
    for model in (plain, lean):
        model.double()
        out = model(gf.tensor(x))
        (out * gf.arange(1.0, 11.0, dtype=gf.float64).reshape(2, 5)).sum().backward()
        outs.append(out.detach().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12)
    grads = dict(lean.named_parameters())
    for k, p in plain.named_parameters():
        np.testing.assert_allclose(grads[k].grad.numpy(), p.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=k)


def test_mobilenet_width_mult_and_depthwise_layers():
    model = models.mobilenet_v2(num_classes=4, width_mult=0.5)
    depthwise = model.features[2].conv[1][0]
    assert depthwise.groups == depthwise.in_channels == depthwise.out_channels == 48
    assert tuple(depthwise.weight.shape) == (48, 1, 3, 3)
    assert model.features[0][0].out_channels == 16 and model.last_channel == 1280
    assert isinstance(model.features[0][2], nn.ReLU6)
    assert model.eval()(gf.randn(1, 3, 1, 1)).shape == (1, 4)
    assert models.mobilenet.make_divisible(0.35 * 32) == 16
    model.train()(gf.randn(2, 3, 32, 32)).sum().backward()
    missing = [k for k, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    with pytest.raises(ValueError, match="InvertedResidual: stride should be 1 or 2, got 3"):
        models.mobilenet.InvertedResidual(8, 8, 3, 6)


def test_lenet5_has_a_form_for_each_input_size():
    digits, classic = models.lenet5(), models.lenet5_32()
    assert classic.features[0].padding == (0, 0) and digits.features[0].padding == (2, 2)
    for model in (digits, classic):
        assert sum(p.numel() for p in model.parameters()) == 60_850
    assert classic(gf.randn(3, 1, 32, 32)).shape == (3, 10)
    assert digits(gf.randn(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError, match=r"LeNet5\(padding=2\) expects 28x28 images, got 32x32 "
                                         r"\(input shape \(3, 1, 32, 32\)\): lenet5\(\) takes "
                                         r"28x28, lenet5_32\(\) takes 32x32"):
        digits(gf.randn(3, 1, 32, 32))
    with pytest.raises(ValueError, match=r"LeNet5\(padding=0\) expects 32x32 images, got 28x28"):
        classic(gf.randn(1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"LeNet5: padding must be in \[0, 13\], got 14"):
        models.LeNet5(padding=14)


def test_the_main_job_builds_each_new_model():
    from gradflow.train import cli
    for name in ("googlenet", "resnet50", "resnet101", "resnet152", "densenet121",
                 "mobilenet_v2", "resnet50_32", "resnet101_32", "resnet152_32", "lenet5_32"):
        assert name in cli.MODELS, name
        assert cli.build_parser().parse_args(["--model", name]).model == name
    model, shape = cli.build_model("lenet5_32", 10, (1, 28, 28))
    assert shape == (1, 32, 32) and model.padding == 0
    model, shape = cli.build_model("googlenet", 10, (3, 32, 32))
    assert shape == (3, 224, 224) and model.aux1 is None
    out = model.train()(gf.randn(2, 3, 32, 32))
    assert isinstance(out, gf.Tensor) and out.shape == (2, 10)


def test_mobilenet_runs_on_the_cupy_path(fake_cuda):
    """MobileNetV2's depthwise convolutions (with and without expansion, stride 1 and 2),
    ReLU6 and residual adds, forward and backward, on the fake CuPy as on the CPU; two stages
    at 8x8 keep the emulated kernels quick."""
    gf.manual_seed(0)
    model = models.mobilenet_v2(num_classes=3, width_mult=0.25,
                                inverted_residual_setting=[[1, 16, 1, 1], [6, 24, 2, 2]])
    model.double().eval()
    x = np.random.default_rng(4).standard_normal((2, 3, 8, 8))
    check_cupy_path(lambda t: model.to(t.device)(t), x, rtol=1e-9)


def test_googlenet_and_densenet_blocks_run_on_the_cupy_path(fake_cuda):
    """GoogLeNet's ceil-mode pool, an Inception block and an auxiliary head in training, and
    a DenseNet block with its transition, on the fake CuPy as on the CPU (small widths: the
    whole nets would take minutes in the kernel emulator)."""
    from gradflow.models.densenet import DenseBlock, Transition
    from gradflow.models.googlenet import Inception, InceptionAux
    gf.manual_seed(0)
    inception = nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=True),
                              Inception(8, 4, 4, 4, 2, 4, 4),
                              InceptionAux(16, 3, dropout=0.0)).double().train()
    x = np.random.default_rng(5).standard_normal((2, 8, 9, 9))
    check_cupy_path(lambda t: inception.to(t.device)(t), x, rtol=1e-8)
    dense = nn.Sequential(DenseBlock(2, 4, 2, 4, 0.0), Transition(12, 6)).double().train()
    x = np.random.default_rng(6).standard_normal((2, 4, 6, 6))
    check_cupy_path(lambda t: dense.to(t.device)(t), x, rtol=1e-8)
