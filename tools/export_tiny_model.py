"""Exports the tiny TorchScript classifier the tests load (tests/data/files/tiny_mlp.pt).

Run with the project's virtual environment:
    ~/.cache/bulwark/venv/bin/python tools/export_tiny_model.py tests/data/files
It also writes tiny_mlp_expected.pt, inputs and logits that the C++ test compares against.
"""
import sys
from pathlib import Path

import torch


class TinyMLP(torch.nn.Module):
    """Flatten [N, 1, 4, 4] -> 8 hidden units -> 3 classes."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(16, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x.flatten(1))))


def main(out_dir: Path) -> None:
    torch.manual_seed(0)
    model = TinyMLP().eval()
    scripted = torch.jit.script(model)
    scripted.save(str(out_dir / "tiny_mlp.pt"))
    inputs = torch.rand(5, 1, 4, 4)
    with torch.no_grad():
        logits = model(inputs)
    # Tensors in a TorchScript container module, readable from C++ with torch::jit::load.
    class Expected(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("inputs", inputs)
            self.register_buffer("logits", logits)

    torch.jit.script(Expected()).save(str(out_dir / "tiny_mlp_expected.pt"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/files"))
