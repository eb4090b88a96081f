"""Errors that help: a failure inside a model names the layer (its dotted path and repr), the
first Linear after the feature maps suggests a wrong image size, device mismatches name the
parameter, bad arguments name the argument and the value, and BatchNorm warns of training-mode
slips."""
import re
import warnings

import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow import models
from gradflow.optim import lr_scheduler as sched


def _message(call) -> str:
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


class Boom(nn.Module):
    """Raises the exception it was given, the same object each time."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def forward(self, x):
        raise self.error


# -- the failing layer is named -----------------------------------------------------------------
def test_wrong_input_channels_names_the_first_conv_of_vgg():
    model = models.vgg11_32()
    with pytest.raises(RuntimeError, match=r"^features\.0 \(Conv2d\(3, 64, kernel_size=\(3, 3\)"
                       r".*\)\): conv2d: input has 1 channels but weight expects 3 "
                       r"\(weight shape \(64, 3, 3, 3\)\)$"):
        model(gf.randn(2, 1, 32, 32))


def test_wrong_image_size_names_alexnet32_classifier_and_suggests_the_cause():
    model = models.alexnet32()
    with pytest.raises(RuntimeError, match=(
            r"^classifier\.1 \(Linear\(in_features=1024, out_features=4096, bias=True\)\): "
            r"linear: input has 4096 features but weight expects 1024 .*; this is the model's "
            r"first Linear after its feature maps, so the input image size likely differs from "
            r"what the model was built for; .* would need in_features=4096")):
        model(gf.randn(2, 3, 64, 64))


def test_wrong_image_size_into_lenet_names_the_form_that_fits():
    with pytest.raises(ValueError, match=r"^LeNet5: LeNet5\(padding=2\) expects 28x28 images, got "
                                         r"40x40 .*lenet5_32\(\) takes 32x32"):
        models.lenet5()(gf.randn(1, 1, 40, 40))


def test_flatten_then_linear_mlp_gets_the_image_size_hint():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    with pytest.raises(RuntimeError, match=r"^1 \(Linear.*image size .* in_features=1024"):
        mlp(gf.randn(2, 1, 32, 32))


@pytest.mark.parametrize("model,x", [
    # an adaptive pooling fixes the map's size: a width mismatch cannot come from the image
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8, 2)),
     gf.randn(2, 3, 9, 9)),
    # not the model's first Linear
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 5), nn.Linear(6, 2)),
     gf.randn(2, 3, 3, 3)),
    # no feature maps before it
    (nn.Sequential(nn.ReLU(), nn.Linear(4, 2)), gf.randn(2, 5)),
], ids=["after-adaptive-pool", "second-linear", "plain-mlp"])
def test_no_image_size_hint_where_the_rule_does_not_apply(model, x):
    msg = _message(lambda: model(x))
    assert "linear: input has" in msg and "image size" not in msg, msg


def test_sequential_inside_sequential_and_custom_modules():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 8, 3, padding=1)

        def forward(self, x):
            return self.conv2(self.conv1(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Sequential(nn.Identity(), Block()))

        def forward(self, x):
            return self.stem(x)

    with pytest.raises(RuntimeError, match=r"^stem\.0\.1\.conv2 \(Conv2d\(4, 8, .*\)\): conv2d: "
                                           r"input has 8 channels but weight expects 4"):
        Net()(gf.randn(1, 3, 5, 5))
    nested = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Linear(4, 5)))
    with pytest.raises(RuntimeError, match=r"^1\.0 \(Linear\(in_features=4"):
        nested(gf.randn(2, 2))


@pytest.mark.parametrize("error", [ValueError("bad value"), RuntimeError("bad run"),
                                   TypeError("bad type"), IndexError("bad index")],
                         ids=lambda e: type(e).__name__)
def test_type_and_identity_are_kept(error):
    original = str(error)
    model = nn.Sequential(nn.ReLU(), nn.Sequential(Boom(error)))
    with pytest.raises(type(error)) as info:
        model(gf.ones(1))
    assert info.value is error, f"{info.value!r} is not the raised {error!r}"
    assert str(info.value) == f"1.0 (Boom()): {original}", str(info.value)


def test_exceptions_that_are_not_a_message_get_a_note():
    error = KeyError("missing")
    model = nn.Sequential(nn.Sequential(Boom(error)))
    with pytest.raises(KeyError) as info:
        model(gf.ones(1))
    assert info.value.args == ("missing",), info.value.args
    assert info.value.__notes__ == ["raised in 0.0 (Boom())"], info.value.__notes__


def test_no_double_prefix_through_levels_and_models():
    inner = models.vgg11_32()

    class Ensemble(nn.Module):
        def __init__(self):
            super().__init__()
            self.members = nn.ModuleList([inner])

        def forward(self, x):
            return self.members[0](x)

    msg = _message(lambda: Ensemble()(gf.randn(1, 1, 32, 32)))
    assert msg.startswith("members.0.features.0 (Conv2d(3, 64") and msg.count("Conv2d") == 1, msg

    class Caller(nn.Module):
        """Calls a model that is not one of its submodules."""

        def forward(self, x):
            return inner(x)

    msg = _message(lambda: Caller()(gf.randn(1, 1, 32, 32)))
    assert msg.startswith("features.0 (Conv2d(3, 64") and msg.count("Conv2d") == 1, msg


def test_an_already_named_error_raised_again_is_left_alone():
    model = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(RuntimeError) as first:
        model(gf.ones(1, 4))
    named = str(first.value)
    again = nn.Sequential(Boom(first.value))
    with pytest.raises(RuntimeError) as second:
        again(gf.ones(1))
    assert str(second.value) == named, f"{second.value}\n!=\n{named}"


def test_a_recursive_module_is_named_once():
    class Recursive(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x, depth=3):
            return self.fc(x) if depth == 0 else self(x, depth - 1)

    with pytest.raises(RuntimeError, match=r"^fc \(Linear\(in_features=3, out_features=3, "
                                           r"bias=True\)\): linear: input has 2 features"):
        Recursive()(gf.ones(1, 2))


def test_the_root_layer_itself_is_named_by_its_repr():
    with pytest.raises(RuntimeError, match=r"^Linear\(in_features=2, out_features=3, bias=True\)"
                                           r": linear: input dtype float64 does not match weight "
                                           r"dtype float32"):
        nn.Linear(2, 3)(gf.ones(1, 2, dtype=gf.float64))


# -- device mismatches name the parameter -------------------------------------------------------
def test_device_mismatch_names_the_parameter_on_another_device():
    # NOTE: CPU-only machines have one device, so the weight only claims to be on cuda:0; the
    # op's device check and the message logic are the real ones.
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    model[0].weight._device = gf.device("cuda", 0)
    with pytest.raises(RuntimeError, match=(
            r"^0 \(Conv2d.*\)\): conv2d: expected all tensors to be on the same device.*; "
            r"0\.weight is on cuda:0 but the input is on cpu \(move the model")):
        model(gf.randn(1, 3, 5, 5))


def test_device_mismatch_with_the_input_on_another_device_names_all_offenders():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3, 4))
    x = gf.randn(2, 3)
    x._device = gf.device("cuda", 0)
    with pytest.raises(RuntimeError, match=r"1\.weight and 1\.bias are on cpu but the input is "
                                           r"on cuda:0 \(move the model with "
                                           r"model\.to\('cuda:0'\)"):
        model(x)


@pytest.mark.gpu
def test_real_device_mismatch_names_the_parameter():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(RuntimeError, match=r"0\.weight and 0\.bias are on cpu but the input is "
                                           r"on cuda:0"):
        model(gf.randn(2, 3, 5, 5, device="cuda"))
    model.cuda()
    with pytest.raises(RuntimeError, match=r"0\.weight and 0\.bias are on cuda:0 but the input "
                                           r"is on cpu"):
        model(gf.randn(2, 3, 5, 5))


# -- bad arguments name the argument and the value ----------------------------------------------
def _params():
    return [nn.Parameter(gf.zeros(2))]


def _sgd():
    return gf.optim.SGD(_params(), lr=0.1, momentum=0.9)


def _sequential(milestones):
    opt = _sgd()
    steps = [sched.StepLR(opt, 2) for _ in range(len(milestones) + 1)]
    return sched.SequentialLR(opt, steps, milestones)


X2, X4, T = gf.randn(2, 3), gf.randn(2, 4, 3, 3), gf.tensor([0, 1])
W64 = gf.randn(3, 3, dtype=gf.float64)

# (call, exception type, owner, argument, value as printed)
BAD_ARGUMENTS = [
    (lambda: nn.Linear(-1, 3), ValueError, "Linear", "in_features", "-1"),
    (lambda: nn.Linear(3, 2.5), TypeError, "Linear", "out_features", "2.5"),
    (lambda: nn.Linear("3", 2), TypeError, "Linear", "in_features", "'3'"),
    (lambda: nn.Maxout(4, 3, 0), ValueError, "Maxout", "pool_size", "0"),
    (lambda: nn.Maxout(4, -3, 2), ValueError, "Maxout", "out_features", "-3"),
    (lambda: nn.Flatten(start_dim=1.5), TypeError, "Flatten", "start_dim", "1.5"),
    (lambda: nn.Conv2d(3, 4, 0), RuntimeError, "Conv2d", "kernel_size", "0"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), RuntimeError, "Conv2d", "stride", "0"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), RuntimeError, "Conv2d", "padding", "-1"),
    (lambda: nn.Conv2d(3, 4, 3, dilation=(1, 0)), RuntimeError, "Conv2d", "dilation", "(1, 0)"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), TypeError, "Conv2d", "kernel_size", "(3, 3, 3)"),
    (lambda: nn.Conv2d(3, 4, 3, groups=0), ValueError, "Conv2d", "groups", "0"),
    (lambda: nn.Conv2d(4, 4, 3, groups=True), TypeError, "Conv2d", "groups", "True"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "Conv2d", "out_channels", "6"),
    (lambda: nn.Conv2d(-3, 4, 3), ValueError, "Conv2d", "in_channels", "-3"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), ValueError, "Conv2d", "padding_mode",
     "'mirror'"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, "Conv2d", "padding", "'full'"),
    (lambda: nn.MaxPool2d(0), RuntimeError, "MaxPool2d", "kernel_size", "0"),
    (lambda: nn.MaxPool2d(2, stride=0), RuntimeError, "MaxPool2d", "stride", "0"),
    (lambda: nn.MaxPool2d(2, padding=-1), RuntimeError, "MaxPool2d", "padding", "-1"),
    (lambda: nn.MaxPool2d(2, dilation=0), RuntimeError, "MaxPool2d", "dilation", "0"),
    (lambda: nn.AvgPool2d(2.5), TypeError, "AvgPool2d", "kernel_size", "2.5"),
    (lambda: nn.AvgPool2d(2, stride=(2, -2)), RuntimeError, "AvgPool2d", "stride", "(2, -2)"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError, "AvgPool2d", "divisor_override",
     "0"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "AdaptiveAvgPool2d", "output_size", "0"),
    (lambda: nn.AdaptiveAvgPool2d((None, -1)), ValueError, "AdaptiveAvgPool2d", "output_size",
     "(None, -1)"),
    (lambda: nn.AdaptiveMaxPool2d((2, 2, 2)), TypeError, "AdaptiveMaxPool2d", "output_size",
     "(2, 2, 2)"),
    (lambda: nn.Dropout(1.5), ValueError, "Dropout", "p", "1.5"),
    (lambda: nn.Dropout2d(-0.1), ValueError, "Dropout2d", "p", "-0.1"),
    (lambda: nn.Dropout("0.5"), TypeError, "Dropout", "p", "'0.5'"),
    (lambda: nn.LeakyReLU("0.1"), TypeError, "LeakyReLU", "negative_slope", "'0.1'"),
    (lambda: nn.ELU(None), TypeError, "ELU", "alpha", "None"),
    (lambda: nn.GELU("fast"), ValueError, "GELU", "approximate", "'fast'"),
    (lambda: nn.Softmax(dim=1.0), TypeError, "Softmax", "dim", "1.0"),
    (lambda: nn.LogSoftmax(dim="1"), TypeError, "LogSoftmax", "dim", "'1'"),
    (lambda: nn.BatchNorm2d(0), ValueError, "BatchNorm2d", "num_features", "0"),
    (lambda: nn.BatchNorm2d(4.0), TypeError, "BatchNorm2d", "num_features", "4.0"),
    (lambda: nn.BatchNorm1d(4, eps=0), ValueError, "BatchNorm1d", "eps", "0"),
    (lambda: nn.BatchNorm2d(4, momentum=1.5), ValueError, "BatchNorm2d", "momentum", "1.5"),
    (lambda: nn.InstanceNorm2d(3, eps=-1e-5), ValueError, "InstanceNorm2d", "eps", "-1e-05"),
    (lambda: nn.LayerNorm(0), ValueError, "LayerNorm", "normalized_shape", "0"),
    (lambda: nn.LayerNorm((4, "a")), TypeError, "LayerNorm", "normalized_shape", "(4, 'a')"),
    (lambda: nn.LayerNorm(4, eps=-1.0), ValueError, "LayerNorm", "eps", "-1.0"),
    (lambda: nn.GroupNorm(0, 4), ValueError, "GroupNorm", "num_groups", "0"),
    (lambda: nn.GroupNorm(3, 4), ValueError, "GroupNorm", "num_groups", "3"),
    (lambda: nn.GroupNorm(2, 4, eps=0.0), ValueError, "GroupNorm", "eps", "0.0"),
    (lambda: nn.LocalResponseNorm(0), ValueError, "LocalResponseNorm", "size", "0"),
    (lambda: nn.LocalResponseNorm(5, alpha="x"), TypeError, "LocalResponseNorm", "alpha", "'x'"),
    (lambda: nn.MSELoss(reduction="avg"), ValueError, "MSELoss", "reduction", "'avg'"),
    (lambda: nn.BCELoss(reduction=None), ValueError, "BCELoss", "reduction", "None"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError, "CrossEntropyLoss",
     "label_smoothing", "1.5"),
    (lambda: nn.CrossEntropyLoss(ignore_index=1.5), TypeError, "CrossEntropyLoss",
     "ignore_index", "1.5"),
    (lambda: nn.NLLLoss(ignore_index="x"), TypeError, "NLLLoss", "ignore_index", "'x'"),
    (lambda: F.linear(X2, W64), RuntimeError, "linear", "input dtype", "float32"),
    (lambda: F.linear("x", W64), TypeError, "linear", "input", "str"),
    (lambda: F.dropout(X2, p=-0.5), ValueError, "dropout", "p", "-0.5"),
    (lambda: F.dropout2d(X4, p=2), ValueError, "dropout2d", "p", "2"),
    (lambda: F.softmax(X2, dim=5), IndexError, "softmax", "dim", "5"),
    (lambda: F.log_softmax(X2, dim=-3), IndexError, "log_softmax", "dim", "-3"),
    (lambda: F.gelu(X2, approximate="fast"), ValueError, "gelu", "approximate", "'fast'"),
    (lambda: F.leaky_relu(X2, negative_slope="a"), TypeError, "leaky_relu", "negative_slope",
     "'a'"),
    (lambda: F.elu(X2, alpha=None), TypeError, "elu", "alpha", "None"),
    (lambda: F.batch_norm(X4, None, None, training=True, momentum=2.0), ValueError,
     "batch_norm", "momentum", "2.0"),
    (lambda: F.batch_norm(X4, None, None, eps=-1), ValueError, "batch_norm", "eps", "-1"),
    (lambda: F.layer_norm(X2, (0,)), ValueError, "layer_norm", "normalized_shape", "(0,)"),
    (lambda: F.group_norm(X4, 0), ValueError, "group_norm", "num_groups", "0"),
    (lambda: F.instance_norm(X4, momentum=-0.1), ValueError, "instance_norm", "momentum",
     "-0.1"),
    (lambda: F.local_response_norm(X4, 0), ValueError, "local_response_norm", "size", "0"),
    (lambda: F.one_hot(T, num_classes=-2), ValueError, "one_hot", "num_classes", "-2"),
    (lambda: F.cross_entropy(X2, T, label_smoothing=-0.1), ValueError, "cross_entropy",
     "label_smoothing", "-0.1"),
    (lambda: F.cross_entropy(X2, T, reduction="avg"), ValueError, "cross_entropy", "reduction",
     "'avg'"),
    (lambda: F.nll_loss(X2, T, reduction="total"), ValueError, "nll_loss", "reduction",
     "'total'"),
    (lambda: F.mse_loss(X2, X2, reduction="average"), ValueError, "mse_loss", "reduction",
     "'average'"),
    (lambda: F.l1_loss(X2, X2, reduction=1), ValueError, "l1_loss", "reduction", "1"),
    (lambda: gf.optim.SGD(_params(), lr=-0.1), ValueError, "SGD", "lr", "-0.1"),
    (lambda: gf.optim.SGD(_params(), lr="0.1"), TypeError, "SGD", "lr", "'0.1'"),
    (lambda: gf.optim.SGD(_params(), momentum=-0.9), ValueError, "SGD", "momentum", "-0.9"),
    (lambda: gf.optim.SGD(_params(), weight_decay=-1e-4), ValueError, "SGD", "weight_decay",
     "-0.0001"),
    (lambda: gf.optim.SGD(_params(), nesterov=True), ValueError, "SGD", "momentum", "0"),
    (lambda: gf.optim.Adam(_params(), betas=(1.0, 0.999)), ValueError, "Adam", "betas[0]",
     "1.0"),
    (lambda: gf.optim.Adam(_params(), betas=(0.9,)), ValueError, "Adam", "betas", "(0.9,)"),
    (lambda: gf.optim.Adam(_params(), eps=-1.0), ValueError, "Adam", "eps", "-1.0"),
    (lambda: gf.optim.Adam(_params(), lr=None), TypeError, "Adam", "lr", "None"),
    (lambda: gf.optim.AdamW(_params(), weight_decay=-0.01), ValueError, "AdamW",
     "weight_decay", "-0.01"),
    (lambda: gf.optim.RMSprop(_params(), alpha=1.5), ValueError, "RMSprop", "alpha", "1.5"),
    (lambda: gf.optim.RMSprop(_params(), alpha=-0.1), ValueError, "RMSprop", "alpha", "-0.1"),
    (lambda: gf.optim.Adagrad(_params(), lr_decay=-1), ValueError, "Adagrad", "lr_decay", "-1"),
    (lambda: gf.optim.Adagrad(_params(), initial_accumulator_value=-0.1), ValueError, "Adagrad",
     "initial_accumulator_value", "-0.1"),
    (lambda: sched.StepLR(_sgd(), step_size=0), ValueError, "StepLR", "step_size", "0"),
    (lambda: sched.StepLR(_sgd(), 2, gamma=-0.1), ValueError, "StepLR", "gamma", "-0.1"),
    (lambda: sched.StepLR(_sgd(), 2, last_epoch=-2), ValueError, "StepLR", "last_epoch", "-2"),
    (lambda: sched.MultiStepLR(_sgd(), milestones=[2, -1]), ValueError, "MultiStepLR",
     "milestones[1]", "-1"),
    (lambda: sched.ExponentialLR(_sgd(), gamma=-1.0), ValueError, "ExponentialLR", "gamma",
     "-1.0"),
    (lambda: sched.LinearLR(_sgd(), start_factor=0), ValueError, "LinearLR", "start_factor", "0"),
    (lambda: sched.LinearLR(_sgd(), total_iters=0), ValueError, "LinearLR", "total_iters", "0"),
    (lambda: sched.CosineAnnealingLR(_sgd(), T_max=0), ValueError, "CosineAnnealingLR", "T_max",
     "0"),
    (lambda: sched.CosineAnnealingLR(_sgd(), 10, eta_min=-1.0), ValueError,
     "CosineAnnealingLR", "eta_min", "-1.0"),
    (lambda: sched.ReduceLROnPlateau(_sgd(), factor=1.5), ValueError, "ReduceLROnPlateau",
     "factor", "1.5"),
    (lambda: sched.ReduceLROnPlateau(_sgd(), patience=-1), ValueError, "ReduceLROnPlateau",
     "patience", "-1"),
    (lambda: sched.ReduceLROnPlateau(_sgd(), threshold_mode="relative"), ValueError,
     "ReduceLROnPlateau", "threshold_mode", "'relative'"),
    (lambda: sched.ReduceLROnPlateau(_sgd(), min_lr=-1.0), ValueError, "ReduceLROnPlateau",
     "min_lr", "-1.0"),
    (lambda: sched.OneCycleLR(_sgd(), max_lr=0.0, total_steps=10), ValueError, "OneCycleLR",
     "max_lr", "0.0"),
    (lambda: sched.OneCycleLR(_sgd(), max_lr=1.0, total_steps=0), ValueError, "OneCycleLR",
     "total_steps", "0"),
    (lambda: sched.OneCycleLR(_sgd(), max_lr=1.0, total_steps=10, pct_start=1.5), ValueError,
     "OneCycleLR", "pct_start", "1.5"),
    (lambda: sched.OneCycleLR(_sgd(), max_lr=1.0, total_steps=10, div_factor=0.0), ValueError,
     "OneCycleLR", "div_factor", "0.0"),
    (lambda: sched.LambdaLR(_sgd(), lr_lambda=3), TypeError, "LambdaLR", "lr_lambda", "3"),
    (lambda: _sequential([5, 2]), ValueError, "SequentialLR", "milestones", "[5, 2]"),
    (lambda: _sequential([3.5]), TypeError, "SequentialLR", "milestones[0]", "3.5"),
]


@pytest.mark.parametrize("call,error,owner,arg,value", BAD_ARGUMENTS,
                         ids=[f"{row[2]}-{row[3]}={row[4]}" for row in BAD_ARGUMENTS])
def test_bad_arguments_name_the_argument_and_the_value(call, error, owner, arg, value):
    pattern = rf"^{re.escape(owner)}: .*{re.escape(arg)}.*{re.escape(value)}"
    with pytest.raises(error, match=pattern):
        call()


def test_the_table_tries_many_distinct_bad_inputs():
    distinct = {(row[2], row[3], row[4]) for row in BAD_ARGUMENTS}
    assert len(distinct) == len(BAD_ARGUMENTS) >= 100, (len(distinct), len(BAD_ARGUMENTS))


# -- BatchNorm's training-mode slips --------------------------------------------------------------
def test_batch_of_one_warns_once_per_layer():
    bn, other = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    x = gf.randn(1, 3, 4, 4)
    with pytest.warns(UserWarning, match=r"BatchNorm2d: training mode with a batch of 1 sample "
                                         r"\(input shape \(1, 3, 4, 4\)\).*model\.eval\(\)"):
        bn(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bn(x)
    assert not caught, [str(w.message) for w in caught]
    with pytest.warns(UserWarning, match="batch of 1 sample"):
        other(x)


def test_one_value_per_channel_still_raises_and_names_the_layer():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match=r"^1 \(BatchNorm1d\(3, .*\)\): batch_norm: expected "
                                         r"more than 1 value per channel when training, got "
                                         r"input size \(1, 3\); .*model\.eval\(\)"):
        model(gf.randn(1, 4))


def test_training_mode_under_no_grad_warns_once():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    x = gf.randn(4, 3, 5, 5)
    with gf.no_grad():
        with pytest.warns(UserWarning, match=r"BatchNorm2d: training mode under no_grad: .*"
                                             r"running statistics are updated.*model\.eval\(\).*"
                                             r"gf\.utils\.evaluate\(model\)"):
            model(x)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model(x)
    assert not caught, [str(w.message) for w in caught]


def test_correct_use_of_batch_norm_does_not_warn():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                          nn.Linear(36, 2), nn.BatchNorm1d(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(gf.randn(8, 3, 5, 5)).sum().backward()
        model.eval()
        with gf.no_grad():
            model(gf.randn(1, 3, 5, 5))
        model.train()
        with gf.utils.evaluate(model):
            model(gf.randn(1, 3, 5, 5))
        untracked = nn.BatchNorm2d(4, track_running_stats=False)
        with gf.no_grad():
            untracked(gf.randn(2, 4, 3, 3))
