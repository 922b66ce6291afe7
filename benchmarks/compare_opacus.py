"""Side-by-side: Bulwark's DP-SGD step against Opacus' on the same model and batch.

Times one plain training step and one DP-SGD step (per-sample clipping to C = 1, noise
multiplier 1, SGD) of SmallCNN and TanhCNN at batch 256 in Opacus (hooks, and ghost clipping
where it supports it), and prints the accountants' epsilon for Abadi et al.'s setting. Run
with the project's virtual environment, where Opacus is installed for benchmarking only
(scripts/bench-python); Bulwark's figures come from `bulwark_benchmarks
--benchmark_filter=BM_TrainingStep|BM_Accountant` in the same session.

    python benchmarks/compare_opacus.py [--threads 2] [--steps 10] [--json OUT]
"""
import argparse
import json
import time
import warnings

import torch
import torch.nn as nn

warnings.filterwarnings("ignore")


def small_cnn() -> nn.Module:
    """Bulwark's SmallCNN (include/bulwark/models/small_cnn.h)."""
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(1024, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                         nn.Linear(200, 10))


def tanh_cnn() -> nn.Module:
    """Bulwark's TanhCNN (include/bulwark/models/tanh_cnn.h)."""
    return nn.Sequential(nn.Conv2d(1, 16, 8, 2, padding=3), nn.Tanh(), nn.MaxPool2d(2, 1),
                         nn.Conv2d(16, 32, 4, 2), nn.Tanh(), nn.MaxPool2d(2, 1), nn.Flatten(),
                         nn.Linear(32 * 4 * 4, 32), nn.Tanh(), nn.Linear(32, 10))


def time_steps(step, steps):
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def plain_step_time(make, x, y, steps):
    torch.manual_seed(0)
    model = make()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    return time_steps(step, steps)


def opacus_step_time(make, x, y, steps, mode):
    from opacus import PrivacyEngine
    torch.manual_seed(0)
    model = make()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(data, batch_size=len(x))
    engine = PrivacyEngine()
    criterion = nn.CrossEntropyLoss()
    kwargs = dict(module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=1.0,
                  max_grad_norm=1.0, poisson_sampling=False)
    if mode == "ghost":
        model, optimizer, criterion, loader = engine.make_private(
            **kwargs, criterion=criterion, grad_sample_mode="ghost")
    else:
        model, optimizer, loader = engine.make_private(**kwargs, grad_sample_mode=mode)

    def step():
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    return time_steps(step, steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--json", help="also write the figures here (for benchmarks/report.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import opacus
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    print(f"Opacus {opacus.__version__}, PyTorch {torch.__version__}, {args.threads} threads, "
          f"batch {args.batch}\n")
    result = {"opacus": opacus.__version__, "torch": torch.__version__, "threads": args.threads,
              "batch": args.batch, "models": {}}
    print("| model | plain step | Opacus hooks | ratio | Opacus ghost | ratio |")
    print("|---|---|---|---|---|---|")
    for name, make in (("SmallCNN", small_cnn), ("TanhCNN", tanh_cnn)):
        plain = plain_step_time(make, x, y, args.steps)
        hooks = opacus_step_time(make, x, y, args.steps, "hooks")
        try:
            ghost = opacus_step_time(make, x, y, args.steps, "ghost")
            ghost_cells = f"{ghost * 1e3:.1f} ms | {ghost / plain:.2f}"
        except Exception as error:  # noqa: BLE001 - report what Opacus does not support
            ghost = None
            ghost_cells = f"n/a ({type(error).__name__}) | —"
        result["models"][name] = {"plain_seconds": plain, "hooks_seconds": hooks,
                                  "ghost_seconds": ghost}
        print(f"| {name} | {plain * 1e3:.1f} ms | {hooks * 1e3:.1f} ms | {hooks / plain:.2f} | "
              f"{ghost_cells} |")

    from opacus.accountants import PRVAccountant, RDPAccountant
    rdp, prv = RDPAccountant(), PRVAccountant()
    rdp.history = [(4.0, 0.01, 10000)]
    prv.history = [(4.0, 0.01, 10000)]
    result["rdp_epsilon"] = rdp.get_epsilon(1e-5)
    result["prv_epsilon"] = prv.get_epsilon(1e-5, eps_error=0.01)
    print(f"\nAbadi et al. (q 0.01, sigma 4, 10000 steps, delta 1e-5): Opacus RDP epsilon "
          f"{result['rdp_epsilon']:.4f}, PRV epsilon {result['prv_epsilon']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
