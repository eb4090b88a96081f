"""PyTorch's beginner tutorials on networks, data and training run on gradflow.

Each step follows one section of an official tutorial (the 60-minute blitz's "Neural Networks"
and "Training a Classifier"; Learn the Basics' "Datasets & DataLoaders", "Transforms", "Build
the Neural Network", "Optimizing Model Parameters" and "Save and Load the Model"; "What is
torch.nn really?"), written once as a function of the module `torch` and run with
torch=PyTorch and torch=gradflow; `compare` holds what gradflow shows to what PyTorch shows.
Downloads are replaced: MNIST by gradflow's bundled digits (the real test set, the same
arrays fed to both libraries), CIFAR-10 by random images. Where the tutorials draw initial
weights from the library's generator, both runs load the same NumPy-made weights instead, so
losses and accuracies can be compared; the training loops are cut to a few hundred steps.
"""
import io
import math
import pickle

import numpy as np
import pytest
from tutorials import Steps, compare, th

import gradflow as gf
from gradflow.datasets.bundled import bundled_mnist

STEPS = Steps()
LOSS_RTOL = 2e-3  # float32 sums in another order, over a few hundred steps
ACCURACY_RTOL = 1e-2  # ... which can move a digit near the boundary to the other class
IMAGES, LABELS = (t.numpy() for t in bundled_mnist("all"))
X_TRAIN, Y_TRAIN = IMAGES[:2000].reshape(-1, 784), LABELS[:2000]
X_VALID, Y_VALID = IMAGES[2000:2500].reshape(-1, 784), LABELS[2000:2500]


def same_weights(torch, model, seed=0):
    """Overwrite every parameter with NumPy draws of its shape (the same for both runs)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.copy_(torch.tensor(rng.uniform(-0.1, 0.1, tuple(p.shape)).astype(np.float32)))
    return model


# -- 60-minute blitz: Neural Networks ----------------------------------------------------------
def blitz_net(torch):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, input):
            c1 = F.relu(self.conv1(input))
            s2 = F.max_pool2d(c1, (2, 2))
            c3 = F.relu(self.conv2(s2))
            s4 = F.max_pool2d(c3, 2)
            s4 = torch.flatten(s4, 1)
            f5 = F.relu(self.fc1(s4))
            f6 = F.relu(self.fc2(f5))
            return self.fc3(f6)

    return same_weights(torch, Net())


BLITZ_INPUT = np.random.default_rng(1).standard_normal((1, 1, 32, 32)).astype(np.float32)
BLITZ_TARGET = np.random.default_rng(2).standard_normal(10).astype(np.float32)


@STEPS.step
def blitz_define_the_network(torch, show):
    net = blitz_net(torch)
    show("net", repr(net))
    params = list(net.parameters())
    show("number of parameters", len(params))
    show("conv1's weight size", params[0].size())
    input = torch.tensor(BLITZ_INPUT)
    out = net(input)
    show("out", out, rtol=1e-5)
    net.zero_grad()
    out.backward(torch.tensor(BLITZ_TARGET).view(1, -1))
    show("conv1.bias.grad", net.conv1.bias.grad, rtol=1e-4)


@STEPS.step
def blitz_loss_function(torch, show):
    net = blitz_net(torch)
    output = net(torch.tensor(BLITZ_INPUT))
    target = torch.tensor(BLITZ_TARGET).view(1, -1)
    criterion = torch.nn.MSELoss()
    loss = criterion(output, target)
    show("loss", loss, rtol=1e-5)
    show("MSELoss", loss.grad_fn.name())
    show("Linear", loss.grad_fn.next_functions[0][0].name())


@STEPS.step
def blitz_backprop_and_update(torch, show):
    net = blitz_net(torch)
    criterion = torch.nn.MSELoss()
    input, target = torch.tensor(BLITZ_INPUT), torch.tensor(BLITZ_TARGET).view(1, -1)
    loss = criterion(net(input), target)
    net.zero_grad()
    show("conv1.bias.grad before backward", net.conv1.bias.grad)
    loss.backward()
    show("conv1.bias.grad after backward", net.conv1.bias.grad, rtol=1e-4)
    learning_rate = 0.01
    for f in net.parameters():
        f.data.sub_(f.grad.data * learning_rate)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        loss = criterion(net(input), target)
        loss.backward()
        optimizer.step()
    show("loss after the updates", loss, rtol=1e-4)


# -- 60-minute blitz: Training a Classifier (random images in place of CIFAR-10) ---------------
CIFAR_LIKE = np.random.default_rng(4).uniform(-1, 1, (64, 3, 32, 32)).astype(np.float32)
CIFAR_LABELS = np.random.default_rng(5).integers(0, 10, 64)
CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def classifier_net(torch):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    return same_weights(torch, Net())


@STEPS.step
def blitz_train_a_classifier(torch, show):
    data = torch.utils.data
    trainset = data.TensorDataset(torch.tensor(CIFAR_LIKE), torch.tensor(CIFAR_LABELS))
    trainloader = data.DataLoader(trainset, batch_size=4, shuffle=False, num_workers=2)
    net = classifier_net(torch)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    for epoch in range(2):
        running_loss = 0.0
        for i, batch in enumerate(trainloader, 0):
            inputs, labels = batch
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if i % 8 == 7:
                show(f"[{epoch + 1}, {i + 1:5d}] loss", running_loss / 8, rtol=LOSS_RTOL)
                running_loss = 0.0
    state = saved(torch, net.state_dict())
    net = classifier_net(torch)
    net.load_state_dict(torch.load(state, weights_only=True))
    images, labels = next(iter(trainloader))
    outputs = net(images)
    _, predicted = torch.max(outputs, 1)
    show("Predicted", " ".join(f"{CLASSES[predicted[j]]:5s}" for j in range(4)))
    correct = total = 0
    correct_pred = {name: 0 for name in CLASSES}
    with torch.no_grad():
        for images, labels in trainloader:
            outputs = net(images)
            _, predictions = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predictions == labels).sum().item()
            for label, prediction in zip(labels, predictions):
                if label == prediction:
                    correct_pred[CLASSES[label]] += 1
    show("accuracy", 100 * correct // total)
    show("correct by class", list(correct_pred.values()))


def saved(torch, obj):
    """`torch.save(obj, f)` into an in-memory file, rewound for `torch.load`."""
    f = io.BytesIO()
    torch.save(obj, f)
    f.seek(0)
    return f


# -- Learn the Basics: Datasets & DataLoaders, Transforms --------------------------------------
def digits_dataset(torch):
    class DigitsDataset(torch.utils.data.Dataset):
        """The tutorial's CustomImageDataset, over arrays instead of image files."""

        def __init__(self, images, labels, transform=None, target_transform=None):
            self.images, self.labels = images, labels
            self.transform, self.target_transform = transform, target_transform

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, idx):
            image, label = self.images[idx], int(self.labels[idx])
            if self.transform:
                image = self.transform(image)
            if self.target_transform:
                label = self.target_transform(label)
            return image, label

    return DigitsDataset


@STEPS.step
def basics_datasets_and_dataloaders(torch, show):
    def to_tensor(image):  # ToTensor: a (1, 28, 28) float image in [0, 1]
        return torch.tensor(image).unsqueeze(0)

    def one_hot(y):  # the tutorial's Lambda target transform
        return torch.zeros(10, dtype=torch.float).scatter_(0, torch.tensor(y), value=1)

    dataset = digits_dataset(torch)(IMAGES[:256], LABELS[:256], to_tensor, one_hot)
    show("len", len(dataset))
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=False)
    features, labels = next(iter(loader))
    show("Feature batch shape", features.size())
    show("Labels batch shape", labels.size())
    show("first image", features[0].squeeze())
    show("first label", labels[0])
    shuffled = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)
    show("batches", sum(1 for _ in shuffled))


# -- Learn the Basics: Build the Neural Network, Optimization, Save and Load -------------------
def basics_network(torch):
    """The tutorial's NeuralNetwork class for `torch`, made once and kept at module level
    (as the tutorial's is), so that whole models pickle."""
    name = f"NeuralNetwork_{torch.__name__}"
    if name not in globals():
        globals()[name] = _network_class(torch, name)
    return globals()[name]


def _network_class(torch, name):
    nn = torch.nn

    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(
                nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                nn.Linear(512, 10))

        def forward(self, x):
            x = self.flatten(x)
            return self.linear_relu_stack(x)

    NeuralNetwork.__qualname__ = name  # NOTE: where pickle finds it; repr shows __name__
    return NeuralNetwork


@STEPS.step
def basics_build_the_network(torch, show):
    device = torch.accelerator.current_accelerator().type \
        if torch.accelerator.is_available() else "cpu"
    model = same_weights(torch, basics_network(torch)().to(device))
    show("model", repr(model))
    X = torch.tensor(IMAGES[:1])
    logits = model(X)
    pred_probab = torch.nn.Softmax(dim=1)(logits)
    show("probabilities", pred_probab, rtol=1e-5)
    show("Predicted class", pred_probab.argmax(1))
    input_image = torch.tensor(IMAGES[:3, 0])
    show("flat", torch.nn.Flatten()(input_image).size())
    layer1 = torch.nn.Linear(in_features=28 * 28, out_features=20)
    hidden1 = layer1(torch.nn.Flatten()(input_image))
    show("hidden size", hidden1.size())
    show("relu keeps the non-negative", bool((torch.nn.ReLU()(hidden1) >= 0).all()))
    for name, param in model.named_parameters():
        show(f"Layer: {name} | Size", param.size())
        show(f"Layer: {name} | first values", param[:2], rtol=1e-6)


def train_loop(torch, dataloader, model, loss_fn, optimizer, show, batch_size):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        pred = model(X)
        loss = loss_fn(pred, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 10 == 0:
            show(f"loss [{batch * batch_size + len(X):>5d}/{size:>5d}]", loss.item(),
                 rtol=LOSS_RTOL)


def evaluate_loop(torch, dataloader, model, loss_fn, show):
    model.eval()
    size, num_batches = len(dataloader.dataset), len(dataloader)
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    show("Avg loss", test_loss / num_batches, rtol=LOSS_RTOL)
    show("Accuracy", correct / size, rtol=ACCURACY_RTOL)


@STEPS.step
def basics_optimization_and_saving(torch, show):
    data = torch.utils.data
    train = data.TensorDataset(torch.tensor(IMAGES[:1280]), torch.tensor(LABELS[:1280]))
    test = data.TensorDataset(torch.tensor(IMAGES[1280:1792]), torch.tensor(LABELS[1280:1792]))
    batch_size = 64
    train_dataloader = data.DataLoader(train, batch_size=batch_size)
    test_dataloader = data.DataLoader(test, batch_size=batch_size)
    model = same_weights(torch, basics_network(torch)())
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-1)
    for t in range(2):
        train_loop(torch, train_dataloader, model, loss_fn, optimizer, show, batch_size)
        evaluate_loop(torch, test_dataloader, model, loss_fn, show)
    state = saved(torch, model.state_dict())
    fresh = basics_network(torch)()
    show("load_state_dict", repr(fresh.load_state_dict(torch.load(state, weights_only=True))))
    fresh.eval()
    evaluate_loop(torch, test_dataloader, fresh, loss_fn, show)
    whole = saved(torch, model)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(whole)  # the default loads weights only, so no code runs
    whole.seek(0)
    loaded = torch.load(whole, weights_only=False)
    evaluate_loop(torch, test_dataloader, loaded, loss_fn, show)


# -- What is torch.nn really? -------------------------------------------------------------------
def mnist_weights(torch):
    rng = np.random.default_rng(6)
    weights = torch.tensor((rng.standard_normal((784, 10)) / math.sqrt(784)).astype(np.float32))
    weights.requires_grad_()
    bias = torch.zeros(10, requires_grad=True)
    return weights, bias


@STEPS.step
def nn_really_from_scratch(torch, show):
    x_train, y_train = torch.tensor(X_TRAIN), torch.tensor(Y_TRAIN)
    n, c = x_train.shape
    show("shape", x_train.shape)
    show("label range", (y_train.min().item(), y_train.max().item()))
    weights, bias = mnist_weights(torch)

    def log_softmax(x):
        return x - x.exp().sum(-1).log().unsqueeze(-1)

    def model(xb):
        return log_softmax(xb @ weights + bias)

    def nll(input, target):
        return -input[range(target.shape[0]), target].mean()

    def accuracy(out, yb):
        preds = torch.argmax(out, dim=1)
        return (preds == yb).float().mean()

    bs = 64
    xb, yb = x_train[0:bs], y_train[0:bs]
    preds = model(xb)
    show("preds[0]", preds[0], rtol=1e-5)
    show("loss", nll(preds, yb), rtol=1e-5)
    show("accuracy", accuracy(preds, yb))
    lr, epochs = 0.5, 2
    for epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            xb, yb = x_train[start_i:end_i], y_train[start_i:end_i]
            pred = model(xb)
            loss = nll(pred, yb)
            loss.backward()
            with torch.no_grad():
                weights -= weights.grad * lr
                bias -= bias.grad * lr
                weights.grad.zero_()
                bias.grad.zero_()
    show("loss after training", nll(model(xb), yb), rtol=LOSS_RTOL)
    show("accuracy after training", accuracy(model(xb), yb), rtol=LOSS_RTOL)


def fit_logistic(torch, show, model, opt, train_dl, valid_dl, epochs=2):
    loss_func = torch.nn.functional.cross_entropy
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_dl:
            loss = loss_func(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
        model.eval()
        with torch.no_grad():
            valid_loss = sum(loss_func(model(xb), yb) for xb, yb in valid_dl)
        show(f"epoch {epoch} valid loss", valid_loss / len(valid_dl), rtol=LOSS_RTOL)


@STEPS.step
def nn_really_refactored(torch, show):
    nn, F, optim = torch.nn, torch.nn.functional, torch.optim
    data = torch.utils.data
    x_train, y_train, x_valid, y_valid = map(torch.tensor, (X_TRAIN, Y_TRAIN, X_VALID, Y_VALID))
    weights, bias = mnist_weights(torch)
    show("F.cross_entropy", F.cross_entropy(x_train[:64] @ weights + bias, y_train[:64]),
         rtol=1e-5)

    class MnistLogistic(nn.Module):
        def __init__(self):
            super().__init__()
            w, b = mnist_weights(torch)
            self.weights = nn.Parameter(w.detach())
            self.bias = nn.Parameter(b.detach())

        def forward(self, xb):
            return xb @ self.weights + self.bias

    bs = 64
    train_ds = data.TensorDataset(x_train, y_train)
    valid_ds = data.TensorDataset(x_valid, y_valid)
    train_dl = data.DataLoader(train_ds, batch_size=bs, shuffle=False)
    valid_dl = data.DataLoader(valid_ds, batch_size=bs * 2)
    model = MnistLogistic()
    fit_logistic(torch, show, model, optim.SGD(model.parameters(), lr=0.5), train_dl, valid_dl)

    class MnistCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1)
            self.conv2 = nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1)
            self.conv3 = nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1)

        def forward(self, xb):
            xb = xb.view(-1, 1, 28, 28)
            xb = F.relu(self.conv1(xb))
            xb = F.relu(self.conv2(xb))
            xb = F.relu(self.conv3(xb))
            xb = F.avg_pool2d(xb, 4)
            return xb.view(-1, xb.size(1))

    cnn = same_weights(torch, MnistCNN())
    fit_logistic(torch, show, cnn, optim.SGD(cnn.parameters(), lr=0.1, momentum=0.9),
                 train_dl, valid_dl)

    class Lambda(nn.Module):
        def __init__(self, func):
            super().__init__()
            self.func = func

        def forward(self, x):
            return self.func(x)

    class WrappedDataLoader:
        def __init__(self, dl, func):
            self.dl, self.func = dl, func

        def __len__(self):
            return len(self.dl)

        def __iter__(self):
            for b in self.dl:
                yield self.func(*b)

    dev = torch.device("cpu")

    def preprocess(x, y):
        return x.view(-1, 1, 28, 28).to(dev), y.to(dev)

    sequential = same_weights(torch, nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), Lambda(lambda x: x.view(x.size(0), -1))))
    sequential.to(dev)
    fit_logistic(torch, show, sequential, optim.SGD(sequential.parameters(), lr=0.1,
                                                     momentum=0.9),
                 WrappedDataLoader(train_dl, preprocess), WrappedDataLoader(valid_dl, preprocess))


@pytest.mark.parametrize("name", list(STEPS))
def test_nn_tutorial_step_runs_on_gradflow_as_on_torch(name):
    compare(STEPS.run(name, gf), STEPS.run(name, th))
