"""Side-by-side: Bulwark's training-set inspections against IBM ART's on the same activations.

Loads a Bulwark SmallCNN checkpoint trained on a poisoned copy of Fashion-MNIST (written by
`bulwark poison`, with its poison.json ground truth) into the equivalent PyTorch module, takes
its activations at one layer over the whole training split, and hands exactly those to ART's
`ActivationDefence` and `SpectralSignatureDefense` (through a stand-in classifier that returns
them, so that neither tool's forward pass is timed and both see the same numbers). Bulwark's
`inspect-data` runs on the same model and data; its report gives its flagged samples and the
seconds of its linear algebra (the activations excluded, as for ART).

For each: samples flagged, precision and recall against the ground truth, clean samples removed,
classes in which anything was flagged, seconds. ART is installed into the project's virtual
environment for benchmarking only (benchmarks/run-all).

    python benchmarks/compare_art_poisoning.py --model M --data-dir D --bulwark BIN
        [--layer net.classifier.3] [--expected-poison-rate 0.34] [--json OUT]
"""
import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_python import load_bulwark_checkpoint  # noqa: E402


def read_idx(path: Path) -> np.ndarray:
    """An IDX file, or the same name with .gz (Debian's Fashion-MNIST is compressed)."""
    data = path.read_bytes() if path.exists() else gzip.decompress(Path(f"{path}.gz").read_bytes())
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def activations_at(model: torch.nn.Module, layer: str, images: np.ndarray) -> np.ndarray:
    """The flattened output of `layer` (Bulwark's name, e.g. net.classifier.3)."""
    names = {"net.features": "0", "net.classifier": "1"}
    module_name = layer
    for ours, theirs in names.items():
        if layer == ours or layer.startswith(ours + "."):
            module_name = theirs + layer[len(ours):]
    module = dict(model.named_modules())[module_name]
    captured = []
    hook = module.register_forward_hook(lambda _m, _i, out: captured.append(out.flatten(1)))
    with torch.no_grad():
        for begin in range(0, len(images), 500):
            x = torch.tensor(images[begin:begin + 500, None] / 255.0, dtype=torch.float32)
            model(x)
    hook.remove()
    return torch.cat(captured).numpy()


class GivenActivations:
    """Stands in for an ART classifier: whatever it is asked, it returns the given activations.
    ART's defences only ask for the activations of their last layer and for nb_classes."""

    def __init__(self, activations: np.ndarray, nb_classes: int):
        self.activations = activations
        self.nb_classes = nb_classes
        self.layer_names = ["given"]

    def get_activations(self, x, layer=None, batch_size=None, framework=False):
        return self.activations


def score(flagged: np.ndarray, poisoned: np.ndarray, labels: np.ndarray, seconds: float) -> dict:
    hits = int(np.isin(flagged, poisoned).sum())
    return {"flagged": int(len(flagged)),
            "precision": hits / len(flagged) if len(flagged) else 0.0,
            "recall": hits / len(poisoned),
            "clean_removed": int(len(flagged) - hits),
            "classes_flagged": sorted({int(c) for c in labels[flagged]}),
            "seconds": seconds}


def run_art(activations, labels, x_train, poisoned, rate, art_runs) -> dict:
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense

    classifier = GivenActivations(activations, int(labels.max()) + 1)
    rows = {}
    # ART's defaults: PCA to 10 dimensions, MiniBatchKMeans into 2, the smaller cluster flagged.
    # Neither its PCA (randomized SVD) nor its k-means takes a seed: run as shipped, several
    # times, the median run reported with the range of recall.
    runs = []
    for _ in range(art_runs):
        defence = ActivationDefence(classifier, x_train, labels)
        start = time.perf_counter()
        _, is_clean = defence.detect_poison()
        seconds = time.perf_counter() - start
        runs.append(score(np.flatnonzero(np.array(is_clean) == 0), poisoned, labels, seconds))
    runs.sort(key=lambda r: r["recall"])
    median = dict(runs[len(runs) // 2])
    median["runs"] = art_runs
    median["recall_range"] = [runs[0]["recall"], runs[-1]["recall"]]
    median["seconds"] = float(np.median([r["seconds"] for r in runs]))
    rows[f"ART ActivationDefence (median of {art_runs} runs)"] = median
    for name, expected in (("ART's default", 0.33), ("as given to Bulwark", rate)):
        defence = SpectralSignatureDefense(classifier, x_train, labels,
                                           expected_pp_poison=expected)
        start = time.perf_counter()
        _, is_clean = defence.detect_poison()
        seconds = time.perf_counter() - start
        rows[f"ART SpectralSignatureDefense ({name}: expected rate {expected:g})"] = score(
            np.flatnonzero(np.array(is_clean) == 0), poisoned, labels, seconds)
    return rows


def run_bulwark(args, poisoned, labels) -> dict:
    rows = {}
    rate = ["--expected-poison-rate", f"{args.expected_poison_rate:g}"]
    runs = (("Bulwark activation clustering", ["--method", "clustering"]),
            (f"Bulwark spectral signatures, per-class test (expected rate "
             f"{args.expected_poison_rate:g})", ["--method", "spectral", *rate]),
            (f"Bulwark spectral signatures, every class (expected rate "
             f"{args.expected_poison_rate:g})", ["--method", "spectral", "--every-class", *rate]))
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, extra) in enumerate(runs):
            report = Path(tmp) / f"{i}.json"
            subprocess.run([str(args.bulwark), "--quiet", "--threads", str(args.threads),
                            "inspect-data", "--data-dir", str(args.data_dir), "--model",
                            str(args.model), "--layer", args.layer, "--report", str(report),
                            *extra], check=True, stdout=subprocess.DEVNULL)
            r = json.loads(report.read_text())
            rows[name] = score(np.array(r["flagged"], dtype=np.int64), poisoned, labels,
                               r["seconds"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--data-dir", required=True, type=Path,
                        help="a poisoned copy written by bulwark poison (with poison.json)")
    parser.add_argument("--bulwark", required=True, type=Path)
    parser.add_argument("--layer", default="net.classifier.3")
    parser.add_argument("--expected-poison-rate", type=float, default=0.34,
                        help="the poisoned fraction of the target class, given to both tools")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--art-runs", type=int, default=10,
                        help="runs of ART's unseeded activation clustering")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    truth = json.loads((args.data_dir / "poison.json").read_text())
    poisoned = np.array(truth["changed"], dtype=np.int64)
    images = read_idx(args.data_dir / "train-images-idx3-ubyte")
    labels = read_idx(args.data_dir / "train-labels-idx1-ubyte").astype(np.int64)
    model = load_bulwark_checkpoint(str(args.model))
    activations = activations_at(model, args.layer, images)

    rows = run_bulwark(args, poisoned, labels)
    rows.update(run_art(activations, labels, images, poisoned, args.expected_poison_rate,
                        args.art_runs))
    import art
    result = {"model": args.model.name, "data": truth["description"],
              "samples": int(len(labels)), "poisoned": int(len(poisoned)),
              "target": truth.get("target"), "layer": args.layer,
              "expected_poison_rate": args.expected_poison_rate, "threads": args.threads,
              "art_version": art.__version__,
              "rows": [{"tool": name, **row} for name, row in rows.items()]}
    for row in result["rows"]:
        print(f"{row['tool']:<62} flagged {row['flagged']:>5}  precision "
              f"{100 * row['precision']:5.1f}%  recall {100 * row['recall']:5.1f}%  classes "
              f"{row['classes_flagged']}  {row['seconds']:.2f} s"
              + (f"  (recall {row['recall_range']} over {row['runs']} runs)" if "runs" in row else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
