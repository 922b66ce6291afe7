"""Train a small CNN on Fashion-MNIST in PyTorch and export it as TorchScript for Bulwark.

The exported model takes images in [0, 1] and does its own normalization as its first layer:
attacks bound the perturbation in the input box a user sees, so normalization belongs inside
the model, not in the data. The model is saved in eval mode.

    python examples/export_torchscript.py OUT.pt [--train-samples 60000] [--epochs 1]

Then: examples/evaluate_torchscript OUT.pt   (or: bulwark evaluate --model OUT.pt ...)
"""
import argparse
import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn


class Normalize(nn.Module):
    def __init__(self, mean: float, std: float):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def load_fashion_mnist_train(directory: Path, n: int):
    with gzip.open(directory / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open(directory / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return (torch.tensor(images, dtype=torch.float32) / 255.0,
            torch.tensor(labels, dtype=torch.long))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--train-samples", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    x, y = load_fashion_mnist_train(args.data_dir, args.train_samples)
    model = nn.Sequential(
        Normalize(0.2860, 0.3530),  # Fashion-MNIST's pixel mean and standard deviation
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i:i + 64]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}")

    model.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(model).save(str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
