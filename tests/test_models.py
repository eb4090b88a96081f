"""The model zoo: parameter counts equal to the seeds' and torchvision's, forward and backward
shapes, and the layer summary."""
import numpy as np
import pytest

import gradflow as gf
from gradflow import models

COUNTS = {"lenet5": 60_850, "alexnet": 61_100_840, "vgg11": 132_863_336,
          "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240,
          "resnet18": 11_689_512, "resnet34": 21_797_672}


@pytest.mark.parametrize("name,count", COUNTS.items())
def test_parameter_counts_match_reference(name, count):
    model = getattr(models, name)()
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize("name,shape", [
    ("lenet5", (3, 1, 28, 28)), ("alexnet32", (2, 3, 32, 32)), ("vgg11_bn32", (2, 3, 32, 32)),
    ("resnet18_32", (2, 3, 32, 32)), ("resnet18", (2, 3, 64, 64)), ("vgg11_32", (1, 3, 32, 32)),
])
def test_forward_backward_shapes(name, shape):
    model = getattr(models, name)(num_classes=7)
    out = model(gf.randn(*shape))
    assert out.shape == (shape[0], 7)
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    for n, p in model.named_parameters():
        assert p.grad.shape == p.shape, n


def test_lenet_c3_uses_the_partial_connection_table():
    model = models.lenet5()
    c3 = model.features[4]
    x = gf.zeros(1, 6, 14, 14)
    x[0, 3] = 1.0  # only S2 map 3 is active
    out = c3(x) - c3(gf.zeros(1, 6, 14, 14))
    touched = [o for o in range(16) if np.abs(out[0, o].detach().numpy()).max() > 0]
    expected = [o for o, ins in enumerate(models.lenet.C3_TABLE) if 3 in ins]
    assert touched == expected


def test_summary_lists_layers_and_totals():
    text = gf.summary(models.lenet5(), (1, 28, 28), print_fn=None)
    assert "features.4 (PartialConv2d)" in text and "(1, 16, 10, 10)" in text
    assert "total parameters: 60,850" in text
    model = models.vgg11_bn32()
    assert model.training
    gf.summary(model, (3, 32, 32), print_fn=None)
    assert model.training and not model.features[0]._forward_hooks
