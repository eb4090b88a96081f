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
