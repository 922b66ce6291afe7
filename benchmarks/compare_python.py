"""Side-by-side: Bulwark against torchattacks and Foolbox on the same model, data and parameters.

Loads a Bulwark SmallCNN checkpoint (a LibTorch archive PyTorch can read) into the equivalent
PyTorch module, attacks the first N Fashion-MNIST test images with FGSM and PGD in each tool,
and prints a Markdown table (robust accuracy, seconds, images per second). The Python tools are
installed into the project's virtual environment for benchmarking only (scripts/bench-python).

    python benchmarks/compare_python.py --model M --bulwark build/release/bulwark [--n 1000]
        [--json OUT]

It also times PyTorch's own forward + backward pass to the input on the same model and batch:
the floor every tool's attack time is divided by.
"""
import argparse
import gzip
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn


def small_cnn() -> nn.Module:
    """Bulwark's SmallCNN, layer for layer (include/bulwark/models/small_cnn.h)."""
    features = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    classifier = nn.Sequential(nn.Linear(1024, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                               nn.Linear(200, 10))
    return nn.Sequential(features, classifier)


def load_bulwark_checkpoint(path: str) -> nn.Module:
    archive = torch.jit.load(path, map_location="cpu")
    model = small_cnn()
    names = {"net.features": "0", "net.classifier": "1"}
    state = {}
    for name, value in archive.named_parameters():
        for ours, theirs in names.items():
            if name.startswith(ours + "."):
                state[theirs + name[len(ours):]] = value.detach().clone()
    model.load_state_dict(state)
    return model.eval()


def load_fashion_mnist_test(n: int, directory: str):
    d = Path(directory)
    with gzip.open(d / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open(d / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return torch.tensor(images / 255.0, dtype=torch.float32), torch.tensor(labels, dtype=torch.long)


def robust_accuracy(model, adversarial, y):
    with torch.no_grad():
        return (model(adversarial).argmax(1) == y).float().mean().item()


def run_batches(model, attack, x, y, batch):
    """Robust accuracy and seconds, judging included: Bulwark's times include the forward pass
    that decides which attacks succeeded, so the Python tools' times do too."""
    start = time.perf_counter()
    adversarial = torch.cat([attack(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)])
    accuracy = robust_accuracy(model, adversarial, y)
    return accuracy, time.perf_counter() - start


def forward_backward_seconds(model, x, y, repeats=5):
    """Median time of PyTorch's forward + backward pass to the input on one batch."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(nn.functional.cross_entropy(model(xi), y), xi)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[repeats // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--bulwark", required=True, help="path of the bulwark executable")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--json", help="also write the figures here (for benchmarks/report.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    import foolbox as fb
    import torchattacks

    model = load_bulwark_checkpoint(args.model)
    x, y = load_fashion_mnist_test(args.n, args.data_dir)
    alpha = 2.5 * args.eps / args.steps  # Bulwark's default step, given to every tool
    clean = robust_accuracy(model, x, y)
    def python_round():
        rows = []
        for name, attack in [
            ("fgsm", torchattacks.FGSM(model, eps=args.eps)),
            ("pgd", torchattacks.PGD(model, eps=args.eps, alpha=alpha, steps=args.steps,
                                     random_start=True)),
        ]:
            accuracy, seconds = run_batches(model, attack, x, y, args.batch)
            rows.append((f"torchattacks {torchattacks.__version__}", name, accuracy, seconds,
                         args.n / seconds))
        fmodel = fb.PyTorchModel(model, bounds=(0, 1))
        for name, attack in [
            ("fgsm", fb.attacks.LinfFastGradientAttack(random_start=False)),
            ("pgd", fb.attacks.LinfProjectedGradientDescentAttack(
                abs_stepsize=alpha, steps=args.steps, random_start=True)),
        ]:
            def call(xb, yb, attack=attack):
                return attack(fmodel, xb, yb, epsilons=args.eps)[1]
            accuracy, seconds = run_batches(model, call, x, y, args.batch)
            rows.append((f"foolbox {fb.__version__}", name, accuracy, seconds, args.n / seconds))
        return rows

    def bulwark_round():
        # Bulwark attacks only the clean-correct images; its robust accuracy is over all N.
        rows = []
        for early_stop in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                report = Path(tmp) / "report.json"
                command = [args.bulwark, "evaluate", "--quiet", "--threads", str(args.threads),
                           "--model", args.model, "--data", "fashion-mnist", "--data-dir",
                           args.data_dir, "--limit", str(args.n), "--attacks", "fgsm,pgd",
                           "--eps", str(args.eps), "--steps", str(args.steps), "--batch-size",
                           str(args.batch), "--report", str(report)]
                if not early_stop:
                    command.append("--no-early-stop")
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                result = json.loads(report.read_text())
            attacked = round(result["clean_accuracy"] * args.n)
            for r in result["results"]:
                if early_stop and r["attack"] == "fgsm":
                    continue
                label = "bulwark, early stop" if early_stop else "bulwark"
                rows.append((label, r["attack"], r["robust_accuracy"], r["seconds"],
                             attacked / r["seconds"]))
        return rows

    # The tools take turns, round after round, so that the machine's drift hits all of them;
    # each row is the round with the median time.
    # The floor, PyTorch's forward + backward pass on the same model and batch (the same ATen
    # kernels LibTorch runs), is timed at the start of every round; its median is reported.
    rounds, floors = [], []
    for _ in range(args.repeats):
        floors.append(forward_backward_seconds(model, x[:args.batch], y[:args.batch])
                      / len(x[:args.batch]))
        rounds.append(python_round() + bulwark_round())
    floor = sorted(floors)[len(floors) // 2]
    rows = []
    for i in range(len(rounds[0])):
        runs = sorted((r[i] for r in rounds), key=lambda row: row[3])
        rows.append(runs[len(runs) // 2])

    print(f"SmallCNN (demo model), first {args.n} Fashion-MNIST test images, clean accuracy "
          f"{clean:.3f}; L-inf eps {args.eps}, PGD {args.steps} steps of {alpha:.4g} from a "
          f"random start; batch {args.batch}; {args.threads} threads; median of {args.repeats} "
          "rounds.\n")
    print(f"PyTorch forward + backward to the input: {floor * 1e3:.3f} ms per image at batch "
          f"{args.batch} (median of the rounds).\n")
    print("| tool | attack | robust accuracy | seconds | images/s |")
    print("|---|---|---|---|---|")
    for tool, attack, accuracy, seconds, rate in rows:
        print(f"| {tool} | {attack} | {accuracy:.3f} | {seconds:.2f} | {rate:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "eps": args.eps, "repeats": args.repeats, "steps": args.steps, "alpha": alpha,
                       "batch": args.batch, "threads": args.threads, "clean_accuracy": clean,
                       "torch": torch.__version__, "pytorch_floor_seconds_per_image": floor,
                       "rows": [{"tool": t, "attack": a, "robust_accuracy": r, "seconds": s,
                                 "images_per_second": i} for t, a, r, s, i in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
