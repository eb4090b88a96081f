"""End-to-end training checks on real data: the seeds' debugging recipe of overfitting a
small set must reach 100% training accuracy."""
import numpy as np

import gradflow as gf
import gradflow.nn as nn
from gradflow.datasets import bundled_mnist


def test_small_net_overfits_500_mnist_digits():
    gf.manual_seed(0)
    images, labels = bundled_mnist("train")
    x, y = images[:500].reshape(500, -1), labels[:500]
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = gf.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    with gf.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    np.testing.assert_allclose(accuracy, 1.0, err_msg=f"final loss {loss.item():.4f}")


def test_lenet5_reaches_97_percent_on_bundled_mnist():
    """Six epochs of SGD with momentum and a cosine schedule on the 8,000-digit split."""
    from gradflow.utils.data import DataLoader, TensorDataset

    gf.manual_seed(0)
    x_train, y_train = bundled_mnist("train")
    x_val, y_val = bundled_mnist("val")
    model = gf.models.lenet5()
    opt = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
    epochs = 6
    sched = gf.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * len(loader))
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
    model.eval()
    with gf.no_grad():
        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
    assert accuracy >= 0.97, f"validation accuracy {accuracy:.4f} < 0.97"
