"""Side-by-side: Bulwark's AutoAttack and autoattack-fast against torchattacks' AutoAttack.

torchattacks (3.5.1) builds AutoAttack's components with their own default of 10 steps
(APGD, APGD-T, FAB-T) instead of the reference's 100; it is run both as shipped and rebuilt with
100 steps (the same MultiAttack of APGD-CE, APGD-T, FAB-T and Square with 5,000 queries). All
run on the same Bulwark SmallCNN checkpoint (loaded into the equivalent PyTorch module), the
same first N Fashion-MNIST test images, L-inf eps. For each: robust accuracy, the model's
passes (counted by wrapping the model: a forward pass with gradients enabled on an input that
requires them is counted as a gradient pass, forward + backward), forward equivalents (a
backward counts as 2, as in Bulwark's reports) and seconds. torchattacks is installed into the
project's virtual environment for benchmarking only.

    python benchmarks/compare_autoattack.py --model fast-at.pt --bulwark build/release/bulwark
        [--n 100] [--eps 0.1] [--threads 2] [--json OUT]
"""
import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from compare_python import load_bulwark_checkpoint, load_fashion_mnist_test


class Counted(nn.Module):
    """The model, counting the images it sees in gradient and in forward-only passes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.gradient_images = 0
        self.forward_images = 0

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            self.gradient_images += x.shape[0]
        else:
            self.forward_images += x.shape[0]
        return self.model(x)


def run_torchattacks(model, x, y, eps, steps):
    import torchattacks

    counted = Counted(model).eval()
    if steps is None:
        attack = torchattacks.AutoAttack(counted, norm="Linf", eps=eps, version="standard",
                                         n_classes=10, seed=0)
        name = "torchattacks AutoAttack (as shipped: 10 steps)"
    else:
        attack = torchattacks.MultiAttack([
            torchattacks.APGD(counted, norm="Linf", eps=eps, steps=steps, loss="ce", seed=0),
            torchattacks.APGDT(counted, norm="Linf", eps=eps, steps=steps, n_classes=10, seed=0),
            torchattacks.FAB(counted, norm="Linf", eps=eps, steps=steps, multi_targeted=True,
                             n_classes=10, seed=0),
            torchattacks.Square(counted, norm="Linf", eps=eps, n_queries=5000, seed=0),
        ])
        name = f"torchattacks AutoAttack components with {steps} steps"
    counted.gradient_images = counted.forward_images = 0
    start = time.perf_counter()
    adversarial = attack(x, y)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        robust = (model(adversarial).argmax(1) == y).float().mean().item()
        linf = (adversarial - x).abs().flatten(1).max(1).values.max().item()
    return {"tool": name, "robust_accuracy": robust, "seconds": seconds,
            "gradient_passes": counted.gradient_images, "forward_passes": counted.forward_images,
            "forward_equivalents": counted.forward_images + 3 * counted.gradient_images,
            "max_linf": linf}


def run_bulwark(binary, model_path, n, eps, threads):
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "r.json"
        start = time.perf_counter()
        subprocess.run([binary, "--threads", str(threads), "--quiet", "evaluate", "--model",
                        model_path, "--attacks", "autoattack,autoattack-fast", "--eps", str(eps),
                        "--limit", str(n), "--report", str(report)], check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        data = json.loads(report.read_text())
    rows = []
    for r in data["results"]:
        rows.append({"tool": f"Bulwark {r['attack']}", "robust_accuracy": r["robust_accuracy"],
                     "seconds": r["seconds"], "gradient_passes": r["gradient_evaluations"],
                     "forward_passes": r["forward_evaluations"],
                     "forward_equivalents": r["forward_evaluations"] + 3 * r["gradient_evaluations"],
                     "max_linf": r["max_linf"]})
    return rows, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--bulwark", required=True)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_bulwark_checkpoint(args.model)
    x, y = load_fashion_mnist_test(args.n, args.data_dir)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    rows, _ = run_bulwark(args.bulwark, args.model, args.n, args.eps, args.threads)
    rows.append(run_torchattacks(model, x, y, args.eps, None))
    rows.append(run_torchattacks(model, x, y, args.eps, 100))
    result = {"model": Path(args.model).name, "images": args.n, "eps": args.eps,
              "clean_accuracy": clean, "threads": args.threads, "torch": torch.__version__,
              "rows": rows}
    print(f"| tool | robust accuracy | forward equivalents | seconds |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['tool']} | {100 * r['robust_accuracy']:.1f}% | "
              f"{r['forward_equivalents']:,} | {r['seconds']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
