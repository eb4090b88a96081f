"""PyTorch's own tutorials, as far as they touch tensors and autograd, run on gradflow.

Each step below follows one section of an official tutorial (the 60-minute blitz's "Tensors"
and "A Gentle Introduction to torch.autograd", Learn the Basics' "Tensors" and "Automatic
Differentiation with torch.autograd", and the polynomial fits of "Learning PyTorch with
Examples"), written once as a function of the module `torch`. The test runs it twice, with
torch=PyTorch and torch=gradflow, and compares what it shows: values where they are
deterministic (random inputs come from NumPy and are fed to both), shape and dtype where
they come from each library's own generator. The tutorials' loops run their full length,
except the dynamic net's 30000 iterations, cut to 2000.
"""
import math
import random

import numpy as np
import pytest
from helpers import require_torch
from tutorials import Steps, compare

import gradflow as gf

th = require_torch()

STEPS = Steps()


# -- 60-minute blitz and Learn the Basics: Tensors ------------------------------------------------
@STEPS.step
def tensors_initializing(torch, show):
    data = [[1, 2], [3, 4]]
    x_data = torch.tensor(data)  # straight from data; the dtype is inferred
    show("x_data", x_data)
    np_array = np.array(data)
    x_np = torch.from_numpy(np_array)  # from a NumPy array
    show("x_np", x_np)
    x_ones = torch.ones_like(x_data)  # keeps the shape and dtype of x_data
    show("Ones Tensor", x_ones)
    x_rand = torch.rand_like(x_data, dtype=torch.float)  # overrides the dtype
    show("Random Tensor", x_rand, random=True)
    shape = (2, 3,)
    rand_tensor = torch.rand(shape)
    ones_tensor = torch.ones(shape)
    zeros_tensor = torch.zeros(shape)
    show("Random Tensor", rand_tensor, random=True)
    show("Ones Tensor", ones_tensor)
    show("Zeros Tensor", zeros_tensor)


@STEPS.step
def tensors_attributes(torch, show):
    tensor = torch.rand(3, 4)
    show("Shape of tensor", tensor.shape)
    show("Datatype of tensor", str(tensor.dtype).split(".")[-1])
    show("Device tensor is stored on", tensor.device)


@STEPS.step
def tensors_move_to_accelerator(torch, show):
    """Learn the Basics moves the tensor to the current accelerator when there is one."""
    tensor = torch.rand(3, 4)
    if torch.accelerator.is_available():
        tensor = tensor.to(torch.accelerator.current_accelerator())
    show("on an accelerator", tensor.device.type != "cpu")


@STEPS.step
def tensors_move_to_cuda(torch, show):
    """The blitz's version of the same step."""
    tensor = torch.rand(3, 4)
    if torch.cuda.is_available():
        tensor = tensor.to("cuda")
    show("Device tensor is stored on", tensor.device.type)


@STEPS.step
def tensors_indexing_and_slicing(torch, show):
    tensor = torch.ones(4, 4)
    show("First row", tensor[0])
    show("First column", tensor[:, 0])
    show("Last column", tensor[..., -1])
    tensor[:, 1] = 0
    show("tensor", tensor)


@STEPS.step
def tensors_joining(torch, show):
    tensor = torch.tensor(np.arange(16.0).reshape(4, 4), dtype=torch.float)
    t1 = torch.cat([tensor, tensor, tensor], dim=1)
    show("t1", t1)
    show("stacked", torch.stack([tensor, tensor]).shape)


@STEPS.step
def tensors_arithmetic(torch, show):
    tensor = torch.tensor(np.random.default_rng(0).random((4, 4)), dtype=torch.float)
    # three ways to a matrix product; y1, y2 and y3 end up equal
    y1 = tensor @ tensor.T
    y2 = tensor.matmul(tensor.T)
    y3 = torch.rand_like(y1)
    torch.matmul(tensor, tensor.T, out=y3)
    show("y1", y1)
    show("y2", y2)
    show("y3", y3)
    # and three ways to an element-wise product
    z1 = tensor * tensor
    z2 = tensor.mul(tensor)
    z3 = torch.rand_like(tensor)
    torch.mul(tensor, tensor, out=z3)
    show("z1", z1)
    show("z2", z2)
    show("z3", z3)


@STEPS.step
def tensors_blitz_multiplying(torch, show):
    tensor = torch.tensor(np.arange(1.0, 10.0).reshape(3, 3), dtype=torch.float)
    show("tensor.mul(tensor)", tensor.mul(tensor))
    show("tensor * tensor", tensor * tensor)
    show("tensor.matmul(tensor.T)", tensor.matmul(tensor.T))
    show("tensor @ tensor.T", tensor @ tensor.T)


@STEPS.step
def tensors_single_element(torch, show):
    tensor = torch.tensor(np.arange(16.0).reshape(4, 4), dtype=torch.float)
    agg = tensor.sum()
    agg_item = agg.item()
    show("agg_item", agg_item)
    show("type", type(agg_item).__name__)


@STEPS.step
def tensors_in_place(torch, show):
    tensor = torch.ones(4, 4)
    tensor[:, 1] = 0
    show("before", tensor)
    tensor.add_(5)
    show("after add_(5)", tensor)
    tensor.copy_(torch.zeros(4, 4))
    tensor.t_()
    show("after copy_ and t_", tensor)


@STEPS.step
def tensors_to_numpy_shares_memory(torch, show):
    t = torch.ones(5)
    n = t.numpy()
    show("t", t)
    show("n", n)
    t.add_(1)  # the change shows in the NumPy array too
    show("t after add_", t)
    show("n after add_", n)


@STEPS.step
def numpy_to_tensor_shares_memory(torch, show):
    n = np.ones(5)
    t = torch.from_numpy(n)
    np.add(n, 1, out=n)  # the change shows in the tensor too
    show("t", t)
    show("n", n)


# -- 60-minute blitz: A Gentle Introduction to torch.autograd ------------------------------------
@STEPS.step
def autograd_differentiation(torch, show):
    a = torch.tensor([2., 3.], requires_grad=True)
    b = torch.tensor([6., 4.], requires_grad=True)
    Q = 3 * a ** 3 - b ** 2
    external_grad = torch.tensor([1., 1.])  # dQ/dQ, since Q is a vector
    Q.backward(gradient=external_grad)
    show("9*a**2 == a.grad", 9 * a ** 2 == a.grad)
    show("-2*b == b.grad", -2 * b == b.grad)
    show("a.grad", a.grad)
    show("b.grad", b.grad)


@STEPS.step
def autograd_exclusion_from_the_dag(torch, show):
    x = torch.rand(5, 5)
    y = torch.rand(5, 5)
    z = torch.rand((5, 5), requires_grad=True)
    a = x + y
    show("Does `a` require gradients?", a.requires_grad)
    b = x + z
    show("Does `b` require gradients?", b.requires_grad)


@STEPS.step
def autograd_finetuning_frozen_parameters(torch, show):
    """The blitz freezes a pretrained torchvision model and trains a new classifier; a small
    stand-in model takes its place here."""
    nn, optim = torch.nn, torch.optim
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
    for param in model.parameters():  # freeze the whole network
        param.requires_grad = False
    model[2] = nn.Linear(6, 3)  # a new, unfrozen classifier
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.weight.copy_(torch.tensor(rng.standard_normal(tuple(layer.weight.shape)),
                                            dtype=torch.float))
            layer.bias.zero_()
    optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    data = torch.tensor(rng.standard_normal((4, 8)), dtype=torch.float)
    labels = torch.tensor(rng.standard_normal((4, 3)), dtype=torch.float)
    loss = (model(data) - labels).pow(2).sum()
    loss.backward()
    optimizer.step()
    show("frozen layer has no grad", model[0].weight.grad is None)
    show("classifier grad", model[2].weight.grad)
    show("classifier after a step", model[2].weight)


# -- Learn the Basics: Automatic Differentiation with torch.autograd -----------------------------
def one_layer(torch):
    rng = np.random.default_rng(2)
    x = torch.ones(5)  # input tensor
    y = torch.zeros(3)  # expected output
    w = torch.tensor(rng.standard_normal((5, 3)), dtype=torch.float, requires_grad=True)
    b = torch.tensor(rng.standard_normal(3), dtype=torch.float, requires_grad=True)
    return x, y, w, b


@STEPS.step
def autograd_one_layer_network(torch, show):
    x, y, w, b = one_layer(torch)
    z = torch.matmul(x, w) + b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    show("z has a gradient function", z.grad_fn is not None)
    show("loss has a gradient function", loss.grad_fn is not None)
    loss.backward()
    show("w.grad", w.grad)
    show("b.grad", b.grad)
    show("loss", loss)


@STEPS.step
def autograd_disabling_gradient_tracking(torch, show):
    x, y, w, b = one_layer(torch)
    z = torch.matmul(x, w) + b
    show("z.requires_grad", z.requires_grad)
    with torch.no_grad():
        z = torch.matmul(x, w) + b
    show("z.requires_grad under no_grad", z.requires_grad)
    z = torch.matmul(x, w) + b
    z_det = z.detach()
    show("z_det.requires_grad", z_det.requires_grad)


@STEPS.step
def autograd_jacobian_products(torch, show):
    inp = torch.eye(4, 5, requires_grad=True)
    out = (inp + 1).pow(2).t()
    out.backward(torch.ones_like(out), retain_graph=True)
    show("First call", inp.grad)
    out.backward(torch.ones_like(out), retain_graph=True)
    show("Second call", inp.grad)  # accumulated
    inp.grad.zero_()
    out.backward(torch.ones_like(out), retain_graph=True)
    show("Call after zeroing gradients", inp.grad)


# -- Learning PyTorch with Examples: fitting sin(x) with a third-order polynomial ----------------
INIT = np.random.default_rng(3).standard_normal(5)  # the tutorials' torch.randn(()) draws
LOSS_RTOL = 1e-3  # float32 sums in another order, over 2000 steps


def sine_data(torch, dtype, device):
    x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
    return x, torch.sin(x)


@STEPS.step
def examples_tensors(torch, show):
    dtype = torch.float
    device = torch.device("cpu")
    x, y = sine_data(torch, dtype, device)
    a, b, c, d = (torch.tensor(v, device=device, dtype=dtype) for v in INIT[:4])
    learning_rate = 1e-6
    for t in range(2000):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum().item()
        if t % 100 == 99:
            show(f"loss at {t}", loss, rtol=LOSS_RTOL)
        # backpropagation by hand
        grad_y_pred = 2.0 * (y_pred - y)
        grad_a = grad_y_pred.sum()
        grad_b = (grad_y_pred * x).sum()
        grad_c = (grad_y_pred * x ** 2).sum()
        grad_d = (grad_y_pred * x ** 3).sum()
        a -= learning_rate * grad_a
        b -= learning_rate * grad_b
        c -= learning_rate * grad_c
        d -= learning_rate * grad_d
    show("Result", [a.item(), b.item(), c.item(), d.item()], rtol=LOSS_RTOL)


@STEPS.step
def examples_tensors_and_autograd(torch, show):
    dtype = torch.float
    device = torch.device("cpu")
    x, y = sine_data(torch, dtype, device)
    a, b, c, d = (torch.tensor(v, device=device, dtype=dtype, requires_grad=True)
                  for v in INIT[:4])
    learning_rate = 1e-6
    for t in range(2000):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        if t % 100 == 99:
            show(f"loss at {t}", loss.item(), rtol=LOSS_RTOL)
        loss.backward()
        with torch.no_grad():  # update by hand, unseen by autograd
            a -= learning_rate * a.grad
            b -= learning_rate * b.grad
            c -= learning_rate * c.grad
            d -= learning_rate * d.grad
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
    show("Result", [a.item(), b.item(), c.item(), d.item()], rtol=LOSS_RTOL)


@STEPS.step
def examples_custom_autograd_function(torch, show):
    class LegendrePolynomial3(torch.autograd.Function):
        """P3(x) = (5x^3 - 3x) / 2, with its derivative written by hand."""

        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    dtype = torch.float
    device = torch.device("cpu")
    x, y = sine_data(torch, dtype, device)
    # weights start close enough to the answer for the fit to converge
    a = torch.full((), 0.0, device=device, dtype=dtype, requires_grad=True)
    b = torch.full((), -1.0, device=device, dtype=dtype, requires_grad=True)
    c = torch.full((), 0.0, device=device, dtype=dtype, requires_grad=True)
    d = torch.full((), 0.3, device=device, dtype=dtype, requires_grad=True)
    learning_rate = 5e-6
    for t in range(2000):
        P3 = LegendrePolynomial3.apply
        y_pred = a + b * P3(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        if t % 100 == 99:
            show(f"loss at {t}", loss.item(), rtol=LOSS_RTOL)
        loss.backward()
        with torch.no_grad():
            a -= learning_rate * a.grad
            b -= learning_rate * b.grad
            c -= learning_rate * c.grad
            d -= learning_rate * d.grad
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
    show("Result", [a.item(), b.item(), c.item(), d.item()], rtol=LOSS_RTOL)


def powers_of_x(torch):
    x, y = sine_data(torch, torch.float, torch.device("cpu"))
    p = torch.tensor([1, 2, 3])
    return x.unsqueeze(-1).pow(p), y  # (2000, 3): x, x^2, x^3


def linear_model(torch):
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    with torch.no_grad():  # the same start for both libraries
        model[0].weight.copy_(torch.tensor(INIT[:3].reshape(1, 3), dtype=torch.float))
        model[0].bias.fill_(float(INIT[3]))
    return model


def show_linear_result(show, model):
    layer = model[0]
    show("Result", [layer.bias.item(), layer.weight[:, 0].item(), layer.weight[:, 1].item(),
                    layer.weight[:, 2].item()], rtol=LOSS_RTOL)


@STEPS.step
def examples_nn_module(torch, show):
    xx, y = powers_of_x(torch)
    model = linear_model(torch)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    learning_rate = 1e-6
    for t in range(2000):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        if t % 100 == 99:
            show(f"loss at {t}", loss.item(), rtol=LOSS_RTOL)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    show_linear_result(show, model)


@STEPS.step
def examples_optim(torch, show):
    xx, y = powers_of_x(torch)
    model = linear_model(torch)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    for t in range(2000):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        if t % 100 == 99:
            show(f"loss at {t}", loss.item(), rtol=LOSS_RTOL)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    show_linear_result(show, model)


@STEPS.step
def examples_custom_nn_module(torch, show):
    class Polynomial3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            a, b, c, d = (torch.tensor(v, dtype=torch.float) for v in INIT[:4])
            self.a = torch.nn.Parameter(a)
            self.b = torch.nn.Parameter(b)
            self.c = torch.nn.Parameter(c)
            self.d = torch.nn.Parameter(d)

        def forward(self, x):
            return self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3

        def string(self):
            return [self.a.item(), self.b.item(), self.c.item(), self.d.item()]

    x, y = sine_data(torch, torch.float, torch.device("cpu"))
    model = Polynomial3()
    criterion = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    for t in range(2000):
        y_pred = model(x)
        loss = criterion(y_pred, y)
        if t % 100 == 99:
            show(f"loss at {t}", loss.item(), rtol=LOSS_RTOL)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    show("Result", model.string(), rtol=LOSS_RTOL)


@STEPS.step
def examples_dynamic_control_flow_and_weight_sharing(torch, show):
    class DynamicNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name, v in zip("abcde", INIT):
                setattr(self, name, torch.nn.Parameter(torch.tensor(v, dtype=torch.float)))

        def forward(self, x):
            """A cubic plus x^4 and maybe x^5, chosen at random on each call; e is shared by
            every higher-order term."""
            y = self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3
            for exp in range(4, random.randint(4, 6)):
                y = y + self.e * x ** exp
            return y

        def string(self):
            return [p.item() for p in (self.a, self.b, self.c, self.d, self.e)]

    random.seed(0)  # the same control flow in both runs
    x, y = sine_data(torch, torch.float, torch.device("cpu"))
    model = DynamicNet()
    criterion = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)
    for t in range(2000):
        y_pred = model(x)
        loss = criterion(y_pred, y)
        if t % 200 == 199:
            show(f"loss at {t}", loss.item(), rtol=LOSS_RTOL)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    show("Result", model.string(), rtol=LOSS_RTOL)


@pytest.mark.parametrize("name", list(STEPS))
def test_tutorial_step_runs_on_gradflow_as_on_torch(name):
    compare(STEPS.run(name, gf), STEPS.run(name, th))
