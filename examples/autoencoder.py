"""A deep autoencoder for MNIST digits, compared with PCA at the same code size.

    python examples/autoencoder.py [--code 16] [--epochs 10] [--plot reconstructions.png]

After Hinton and Salakhutdinov (Science, 2006): an encoder 784-512-128-code
and a mirror-image decoder, trained to reconstruct its input through the small central layer. A
linear map through the same number of dimensions can do no better than PCA, so PCA's
reconstruction error on the held-out digits is the bar the nonlinear net should clear.
--plot saves test digits above their reconstructions (needs matplotlib).
"""
from __future__ import annotations

import argparse

import numpy as np

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.utils.data import DataLoader, TensorDataset


class Autoencoder(nn.Module):
    def __init__(self, code: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(),
                                     nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, code))
        self.decoder = nn.Sequential(nn.Linear(code, 128), nn.ReLU(), nn.Linear(128, 512),
                                     nn.ReLU(), nn.Linear(512, 784))

    def forward(self, x: gf.Tensor) -> gf.Tensor:
        """Logits of the reconstructed pixels (a sigmoid gives intensities in [0, 1])."""
        return self.decoder(self.encoder(x)).reshape(x.shape)


def pca_error(train: np.ndarray, test: np.ndarray, components: int) -> float:
    """Mean squared error of reconstructing `test` from its first principal components."""
    train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    mean = train.mean(axis=0)
    basis = np.linalg.svd(train - mean, full_matrices=False)[2][:components]
    recon = (test - mean) @ basis.T @ basis + mean
    return float(((recon - test) ** 2).mean())


def reconstruction_error(model: Autoencoder, images: gf.Tensor) -> float:
    model.eval()
    with gf.no_grad():
        return F.mse_loss(gf.sigmoid(model(images)), images).item()


def plot(images: np.ndarray, recon: np.ndarray, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(images), figsize=(len(images), 2.2))
    for column, pair in enumerate(zip(images, recon)):
        for row, image in enumerate(pair):
            axes[row, column].imshow(image.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[row, column].axis("off")
    fig.suptitle("test digits (top) and their reconstructions (bottom)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=int, default=16, help="size of the central layer")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, help="use only the first N images of each split")
    parser.add_argument("--plot", metavar="PNG", help="save reconstructions of test digits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None

    gf.manual_seed(args.seed)
    device = gf.device("cuda" if gf.cuda.is_available() else "cpu")
    train_x = gf.datasets.bundled_mnist("train")[0][:args.limit]
    test_x = gf.datasets.bundled_mnist("val")[0][:args.limit]
    loader = DataLoader(TensorDataset(train_x), batch_size=128, shuffle=True, device=device)
    test_x = test_x.to(device)

    model = Autoencoder(args.code).to(device)
    optimizer = gf.optim.Adam(model.parameters(), lr=1e-3)
    print(f"autoencoder 784-512-128-{args.code} on {len(train_x)} digits, device {device}")
    for epoch in range(1, args.epochs + 1):
        model.train()
        for (images,) in loader:
            loss = F.binary_cross_entropy_with_logits(model(images), images)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: test reconstruction error "
              f"{reconstruction_error(model, test_x):.5f} (mean squared, pixels in [0, 1])")

    pca = pca_error(train_x.numpy(), test_x.cpu().numpy(), args.code)
    print(f"PCA with {args.code} components: {pca:.5f}; autoencoder: "
          f"{reconstruction_error(model, test_x):.5f}")
    if args.plot:
        with gf.no_grad():
            recon = gf.sigmoid(model(test_x[:10])).cpu().numpy()
        plot(test_x[:10].cpu().numpy(), recon, args.plot)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
