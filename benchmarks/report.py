"""Writes docs/benchmarks.md (and the plot docs/benchmarks.png) from one benchmark run.

Inputs are the JSON files benchmarks/run-all writes: Google Benchmark's output of
bulwark_benchmarks (3 interleaved repetitions: every time below is the fastest), compare_python.py's
(torchattacks, Foolbox and `bulwark evaluate` on the demo model) and compare_opacus.py's.
Every figure is given as a ratio to the model's own forward + backward pass measured in the
same run: the least a gradient attack or a training step has to spend.

    python benchmarks/report.py --bulwark B.json --attacks A.json --opacus O.json
        --markdown docs/benchmarks.md [--plot docs/benchmarks.png] [--check]

--check compares the Markdown it would write with the existing file and fails on a
difference (the test suite runs it on the committed results in benchmarks/results/).
Needs only the standard library, and matplotlib for --plot.
"""
import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


class Bench:
    """The fastest repetition of each benchmark of a Google Benchmark JSON file."""

    def __init__(self, path: Path):
        data = json.loads(Path(path).read_text())
        self.context = data["context"]
        runs = defaultdict(list)
        for b in data["benchmarks"]:
            if b.get("run_type", "iteration") == "iteration":
                runs[b["run_name"] if "run_name" in b else b["name"]].append(b)
        self.runs = {}
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
        skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
                "iterations", "real_time", "cpu_time", "time_unit", "label", "family_index",
                "per_family_instance_index", "aggregate_name", "aggregate_unit"}
        for name, reps in runs.items():
            # The fastest repetition: on a shared machine noise only ever adds time, and a
            # floor inflated by one slow repetition would flatter every ratio divided by it.
            best = min(reps, key=lambda r: r["real_time"] * scale[r["time_unit"]])
            counters = {k: v for k, v in best.items()
                        if k not in skip and isinstance(v, (int, float))}
            self.runs[name] = {
                "seconds": best["real_time"] * scale[best["time_unit"]],
                "label": best.get("label", ""),
                "counters": counters,
                "repetitions": len(reps),
            }

    def get(self, prefix: str) -> dict:
        """The run whose name is `prefix` followed by nothing or by "/..."."""
        for name, run in self.runs.items():
            if name == prefix or name.startswith(prefix + "/"):
                return run
        raise KeyError(f"no benchmark named {prefix}* in the results")

    def seconds(self, prefix: str) -> float:
        return self.get(prefix)["seconds"]


def ms(seconds: float) -> str:
    value = seconds * 1e3
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 1:
        return f"{value:.2f} ms"
    return f"{value * 1e3:.0f} µs"


def ratio(value: float) -> str:
    return f"{value:.2f}×"


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_security(security: Bench) -> str:
    """The sealed-file section, from a run of bulwark_benchmarks --benchmark_filter=BM_Seal|..."""
    def mb_per_s(name):
        run = security.get(name)
        return f"{run['counters']['bytes_per_second'] / 1e6:,.0f} MB/s"
    load = security.get("BM_LoadSealedModel")
    kdf = security.get("BM_PassphraseKeyDerivation")
    out = ["## Sealed model files\n",
           f"100 MB of content, {security.context.get('date', '?')[:10]} "
           "(`benchmarks/security_bench.cpp`, fastest of "
           f"{security.get('BM_Seal/0')['repetitions']} repetitions; unsealing checks the "
           "signature on a second thread beside the decryption). Loading divides by "
           "loading the same plain checkpoint, timed between the iterations.\n",
           table(["operation", "throughput or ratio"], [
               ["seal (encrypt)", mb_per_s("BM_Seal/0")],
               ["seal (encrypt + sign)", mb_per_s("BM_Seal/1")],
               ["unseal (decrypt)", mb_per_s("BM_Unseal/0")],
               ["unseal (check the signature + decrypt)", mb_per_s("BM_Unseal/1")],
               [f"load_model of a sealed {load['counters']['megabytes']:.0f} MB checkpoint "
                "(key + signature)", f"{ratio(load['counters']['x_plain_load'])} loading the plain file"],
               ["Argon2id key derivation, 3 passes, 256 MiB (once per passphrase open)",
                ms(kdf["seconds"])],
           ]) + "\n"]
    return "\n".join(out)


def render_poisoning(p: Bench) -> str:
    strip = p.get("BM_DetectorStrip100")
    nc = p.get("BM_NeuralCleanse")
    out = ["## Poisoning defenses\n",
           f"SmallCNN, random 28×28 images (the cost does not depend on their values), "
           f"{p.context.get('date', '?')[:10]} (`benchmarks/poisoning_bench.cpp`). The training-set "
           "inspections read the activations of the penultimate layer (`classifier.3`) for all 60,000 images; the floor "
           "is one forward pass over the same images plus the inspection's own linear algebra.\n"]
    rows = []
    for name, label in (("BM_InspectSpectral60000", "spectral signatures"),
                        ("BM_InspectClustering60000", "activation clustering")):
        c = p.get(name)["counters"]
        rows.append([label, f"{c['forward_s']:.1f} s", f"{c['activations_s']:.1f} s",
                     f"{c['algebra_s']:.1f} s", ratio(c["x_floor"])])
    out.append(table(["inspection of 60,000 images", "forward pass", "activations",
                      "linear algebra", "vs. floor (forward + algebra)"], rows) + "\n")
    out.append(table(["defense", "time", "vs. floor", "what bounds it"], [
        ["STRIP, 100 overlays, batch of 256", ms(strip["seconds"]),
         ratio(strip["counters"]["x_forward"]) + " a forward", "100 forwards"],
        ["Neural Cleanse, 150 Adam steps of 32 images per class",
         f"{nc['counters']['per_class_s']:.1f} s per class",
         ratio(nc["counters"]["x_step"]) + " a forward + backward per step",
         "1 forward + backward per step"],
    ]) + "\n")
    if strip["counters"]["x_forward"] < 100:
        out.append("STRIP under its bound of 100 forwards: the floor, one forward pass of the batch "
                   "timed on its own, costs more per image than STRIP's passes run back to back "
                   "(both spend much of their time in page faults of LibTorch's large temporaries "
                   "under glibc's default allocator settings, which the benchmarks keep).\n")
    return "\n".join(out)


def art_runs(d: dict) -> int:
    return next((r["runs"] for r in d["rows"] if "runs" in r), 0)


def render_art_poisoning(d: dict) -> str:
    def recall(r):
        if "recall_range" not in r:
            return f"{100 * r['recall']:.1f} %"
        low, high = r["recall_range"]
        return f"{100 * r['recall']:.1f} % ({100 * low:.1f} to {100 * high:.1f} %)"

    rows = [[r["tool"], f"{r['flagged']:,}", f"{100 * r['precision']:.1f} %",
             recall(r), f"{r['clean_removed']:,}",
             ", ".join(str(c) for c in r["classes_flagged"]) or "none", f"{r['seconds']:.2f} s"]
            for r in d["rows"]]
    return (f"## Training-set inspection side by side with IBM ART {d['art_version']}\n\n"
            f"The same activations (`{d['layer']}` of the test suite's BadNets reference model "
            f"`{d['model']}`; the poison: {d['data']}, {d['poisoned']:,} of {d['samples']:,} training "
            f"images poisoned, all in class {d['target']}) and the same ground truth; ART gets "
            f"the activations through a stand-in classifier, so neither tool's forward pass is "
            f"timed ({d['threads']} threads). The expected poison rate is the target class's "
            f"poisoned fraction.\n\n"
            + table(["inspection", "flagged", "precision", "recall", "clean samples removed",
                     "classes with samples flagged", "time"], rows) + "\n\n"
            f"ART's activation clustering takes no seed (its randomized PCA and mini-batch "
            f"k-means draw from NumPy's global generator) and its result changes from run to "
            f"run: the median of {art_runs(d)} runs as shipped is shown with the range of "
            f"recall. "
            "ART decides nothing per class: its activation clustering flags the smaller cluster "
            "of every class and its spectral signatures remove 1.5 × the expected rate from "
            "every class, of uncentred activations. Bulwark's per-class tests leave clean "
            "classes alone where they can tell them apart; on this model they cannot yet do so "
            "reliably (see [poisoning](poisoning/README.md#measured-so-far)). "
            "`benchmarks/compare_art_poisoning.py` makes these figures.\n")


def render_autoattack(aa: dict) -> str:
    rows = []
    for r in aa["rows"]:
        rows.append([r["tool"], f"{100 * r['robust_accuracy']:.1f} %",
                     f"{r['gradient_passes']:,}", f"{r['forward_passes']:,}",
                     f"{r['forward_equivalents']:,}", f"{r['seconds']:.1f} s"])
    return (f"## AutoAttack side by side ({aa['model']}, first {aa['images']} Fashion-MNIST test "
            f"images, L∞ eps {aa['eps']}, clean accuracy {100 * aa['clean_accuracy']:.1f} %, "
            f"{aa['threads']} threads)\n\n"
            + table(["evaluation", "robust accuracy", "gradient passes", "forward passes",
                     "forward equivalents", "time"], rows) + "\n\n"
            "torchattacks 3.5.1 builds AutoAttack's APGD, APGD-T and FAB-T with its own "
            "default of 10 steps (the reference uses 100): the first torchattacks row is that "
            "as shipped, the second the same four components rebuilt with 100 steps. Passes are "
            "images through the model, counted by wrapping it (Bulwark counts its own); a "
            "backward pass counts as 2 forward passes. `benchmarks/compare_autoattack.py` makes "
            "these figures." + autoattack_summary(aa["rows"]) + "\n")


def autoattack_summary(rows) -> str:
    by = {r["tool"]: r for r in rows}
    standard, fast = by.get("Bulwark autoattack"), by.get("Bulwark autoattack-fast")
    full = next((r for r in rows if r["tool"].startswith("torchattacks") and "100" in r["tool"]),
                None)
    if not (standard and fast and full):
        return ""
    return (f" Bulwark's `standard` and torchattacks' 100-step components make about the same "
            f"passes ({standard['forward_equivalents']:,} and {full['forward_equivalents']:,} "
            f"forward equivalents) for {100 * standard['robust_accuracy']:.1f} % and "
            f"{100 * full['robust_accuracy']:.1f} %; Bulwark is "
            f"{full['seconds'] / standard['seconds']:.2f}× faster. `autoattack-fast` spends "
            f"1/{standard['forward_equivalents'] / fast['forward_equivalents']:.1f} of "
            f"`standard`'s compute for {100 * fast['robust_accuracy']:.1f} %.")


def render(bench: Bench, attacks: dict, opacus: dict, security=None, autoattack=None,
           poisoning=None, art_poisoning=None) -> str:
    ctx = bench.context
    threads = ctx.get("torch_threads", "?")
    fi32 = bench.seconds("BM_SmallCnnForwardBackwardInput/32")
    fi256 = bench.seconds("BM_SmallCnnForwardBackwardInput/256")
    fp256 = bench.seconds("BM_SmallCnnForwardBackwardParameters/256")
    out = []
    add = out.append

    add("# Benchmarks\n")
    add("<!-- Generated by benchmarks/report.py from the results in benchmarks/results/ "
        "(benchmarks/run-all writes both); edit the script, not this page. -->\n")
    add(f"One run of `benchmarks/run-all` on {ctx.get('date', '?')[:10]}: "
        f"{ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, no GPU, "
        f"{threads} LibTorch threads, Bulwark {ctx.get('bulwark_version', '?')}, "
        f"PyTorch/LibTorch {attacks['torch']}. Each C++ figure is the fastest of "
        f"{bench.get('BM_SmallCnnForwardBackwardInput/256')['repetitions']} interleaved "
        "repetitions (noise only adds time). This shared machine's speed drifts by 10–40 % "
        "over minutes, so every ratio below divides by a floor timed next to the work: the "
        "ratios travel better than the times.\n")
    add("![Main comparison](benchmarks.png)\n")

    add("## The floor\n")
    add("Every attack and defense is bounded below by the model's own passes: SmallCNN's "
        "forward + backward pass, here on its own. Each ratio below divides by this pass (or "
        "the forward pass, or the plain training step) timed in the same process right next "
        "to the work it is the floor of, so that the machine's drift over minutes cancels.\n")
    add(table(["SmallCNN", "batch", "time", "per image"], [
        ["forward + backward to the input (attacks)", 32, ms(fi32), ms(fi32 / 32)],
        ["forward + backward to the input (attacks)", 256, ms(fi256), ms(fi256 / 256)],
        ["forward + backward to the parameters (training)", 256, ms(fp256), ms(fp256 / 256)],
    ]) + "\n")

    add("## Attacks (demo SmallCNN, 256 Fashion-MNIST test images, L∞ eps 0.1)\n")
    full = bench.get("BM_PGD20/0")
    early = bench.get("BM_PGD20/1")
    cw = bench.get("BM_CarliniWagnerDefault")
    rows = []
    for name, run in (("PGD-20, every step on every image", full),
                      ("PGD-20, early stop (evaluation mode)", early)):
        c = run["counters"]
        rows.append([name, ms(run["seconds"]), f"{c['samples_per_second']:,.0f}",
                     f"{c['gradient_evaluations']:,.0f}", ratio(c["x_20_floors"]),
                     ratio(c["x_own_passes"]), f"{100 * c['not_fooled']:.2f} %"])
    add(table(["attack", "time", "images/s", "gradient passes", "vs. 20 floors",
               "vs. its own passes", "not fooled"], rows) + "\n")
    add("The floor of these two rows is the forward + backward pass to the input on the same "
        "256 images, timed between the attack's iterations (the machine's speed drifts over "
        "minutes; a floor timed next to the work drifts with it). "
        f"Full PGD-20 costs {ratio(full['counters']['x_20_floors'])} its twenty floors: the "
        "rest is the random start, the fused step-and-project op and the forward pass that "
        f"judges success. Early stopping makes {early['counters']['gradient_evaluations']:,.0f} "
        f"instead of 5,120 gradient passes for the same robust accuracy, "
        f"{ratio(full['seconds'] / early['seconds'])} faster. Carlini–Wagner L2 with its "
        f"defaults (9 binary-search steps × up to 100 iterations) on 64 images: "
        f"{cw['seconds']:.1f} s, {100 * cw['counters']['success_rate']:.1f} % fooled.\n")

    if any(name.startswith("BM_APGDCE100") for name in bench.runs):
        apgd = bench.get("BM_APGDCE100")
        square = bench.get("BM_SquareQuery")
        a, q = apgd["counters"], square["counters"]
        add("### AutoAttack's components\n")
        add(table(["component", "time", "passes", "vs. its own passes", "vs. 100 floors"], [
            ["APGD-CE, 100 steps, every step on every clean-correct image", ms(apgd["seconds"]),
             f"{a['gradient_evaluations']:,.0f} forward + backward", ratio(a["x_own_passes"]),
             ratio(a["x_100_floors"])],
            ["Square, 200 queries (L∞ eps 0.002: few images fooled)", ms(square["seconds"]),
             f"{q['forward_evaluations']:,.0f} forward", ratio(q["x_forward_per_query"]), "—"],
        ]) + "\n")
        add("APGD-CE's floor is the forward + backward pass to the input of the same batch, "
            "Square's the forward pass of the same batch (a query of every image still "
            "attacked, against one forward pass of the whole batch per query). Only "
            "clean-correct images are attacked, so APGD-CE makes fewer than 100 × 256 passes. "
            "Measured on their own and merged into the results:\n\n```sh\nscripts/bench OUT.json "
            "--benchmark_filter='BM_APGDCE100|BM_SquareQuery'\n```\n")

    add("### The fused step-and-project op (`bulwark::ops::project_step`)\n")
    rows = []
    for size, shape in ((28, "1×28×28"), (32, "3×32×32")):
        for norm, label in ((0, "L∞"), (1, "L2")):
            kernel = bench.seconds(f"BM_ProjectStep/cpu_kernel/{norm}/{size}")
            reference = bench.seconds(f"BM_ProjectStep/reference/{norm}/{size}")
            rows.append([shape, label, ms(kernel), ms(reference), ratio(reference / kernel),
                         f"{100 * kernel / fi256:.2f} %" if size == 28 else "—"])
    add("Batch 256; the CPU kernel against the composite reference (the same math in ATen "
        "calls).\n")
    add(table(["input", "norm", "CPU kernel", "reference", "speed-up",
               "of one SmallCNN floor"], rows) + "\n")

    add("## Side by side with torchattacks and Foolbox\n")
    a = attacks
    add(f"`compare_python.py` loads the demo model's weights into the same network in PyTorch "
        f"and attacks the first {a['n']:,} Fashion-MNIST test images in each tool with the same "
        f"parameters: L∞ eps {a['eps']}, PGD {a['steps']} steps of {a['alpha']:.4g} from a "
        f"random start, batch {a['batch']}, {a['threads']} threads (clean accuracy "
        f"{100 * a['clean_accuracy']:.1f} %); each row is the median of {a.get('repeats', 1)} "
        "rounds in which the tools take turns. Times include the forward pass that judges the "
        "attack. Bulwark attacks only the images the model classifies correctly (the others "
        "are not robust already), the Python tools attack all of them; the floor ratio is per "
        "attacked image: seconds ÷ (attacked images × gradient passes per image × the "
        "forward + backward time per image), with the floor PyTorch's own pass on the same "
        f"model and batch ({ms(a['pytorch_floor_seconds_per_image'])} per image; the same ATen "
        "kernels LibTorch runs), timed by the script at the start of every round.\n")
    rows = []
    bulwark_attacked = round(a["clean_accuracy"] * a["n"])
    for r in a["rows"]:
        is_bulwark = r["tool"].startswith("bulwark")
        attacked = bulwark_attacked if is_bulwark else a["n"]
        floor = a["pytorch_floor_seconds_per_image"]
        passes = a["steps"] if r["attack"] == "pgd" else 1
        rows.append([r["tool"], "PGD-%d" % a["steps"] if r["attack"] == "pgd" else "FGSM",
                     f"{r['robust_accuracy']:.3f}", f"{r['seconds']:.2f}",
                     f"{r['images_per_second']:,.0f}",
                     ratio(r["seconds"] / (attacked * passes * floor))])
    add(table(["tool", "attack", "robust accuracy", "seconds", "attacked images/s",
               "vs. floor per attacked image"], rows) + "\n")
    add("A PGD attack that spends nothing beyond its gradient passes sits at 1× its floor "
        "(plus the judging pass). Early stopping goes below 1× because it skips the passes "
        "on images already fooled, for the same robust accuracy.\n")

    add("## Patches (`bulwark::train_patch`) and the compositing op\n")
    rows = []
    for batch in (32, 256):
        c = bench.get(f"BM_PatchTrainingStep/{batch}")["counters"]
        rate = c["steps_per_second"]
        rows.append([batch, ms(1 / rate), f"{rate:.1f}", ms(1 / rate / c["x_floor"]),
                     ratio(c["x_floor"])])
    add("One patch-training step is one forward + backward pass over the batch's views "
        "(SmallCNN, 10 % circle patch, random placement): its floor is the pass to the input "
        "at the same batch size, timed between the benchmark's iterations.\n")
    add(table(["batch", "patch step", "steps/s", "floor (same process)", "vs. floor"], rows)
        + "\n")
    rows = []
    for pass_, label in (("forward", "forward"), ("forward_backward", "forward + backward")):
        for size, shape in ((28, "1×28×28"), (32, "3×32×32")):
            kernel = bench.seconds(f"BM_PatchComposite/{pass_}/cpu_kernel/{size}")
            reference = bench.seconds(f"BM_PatchComposite/{pass_}/reference/{size}")
            rows.append([shape, label, ms(kernel), ms(reference), ratio(reference / kernel)])
    add("The compositing op, batch 256, CPU kernel against the composite reference "
        "(`affine_grid` + `grid_sample`):\n")
    add(table(["input", "pass", "CPU kernel", "reference", "speed-up"], rows) + "\n")

    add("## Adversarial training (`bulwark::Trainer`)\n")
    order = ("standard", "fast-at", "pgd-at k=3", "pgd-at k=7", "trades", "mart")
    epochs = sorted(((run["label"], run) for name, run in bench.runs.items()
                     if name.startswith("BM_TrainingEpoch/")),
                    key=lambda e: next((i for i, o in enumerate(order) if e[0].startswith(o)),
                                       len(order)))
    standard = next(run for label, run in epochs if label.startswith("standard"))
    rows = []
    for label, run in epochs:
        k = int(label.split("k=")[1]) if "k=" in label else 0
        bound = f"{1.05 * (k + 1):.2f}" if k else "—"
        rows.append([label, ms(run["seconds"]), ratio(run["counters"]["x_floor"]),
                     ratio(run["seconds"] / standard["seconds"]), bound])
    add("One epoch over 2,048 images, batch 128, SmallCNN, Adam. The floor is the epoch's 16 "
        "batches of forward + backward to the parameters, timed before each epoch in the same "
        "process. A batch of PGD-AT makes k passes "
        "to the input and one to the parameters, so its ideal ratio to a standard epoch is "
        "k + 1; the target is at most 1.05 (k + 1).\n")
    add(table(["strategy", "epoch", "vs. floor", "vs. standard", "bound 1.05 (k + 1)"],
              rows) + "\n")
    add("The attack's passes are cheaper than a training pass (no weight gradients, no "
        "optimizer step), so PGD-AT stays well under k + 1 standard epochs.\n")

    add("## Runtime defenses\n")
    add("Detector cost per input as a multiple of one forward pass of the same SmallCNN on "
        "the same batch of 256, timed in the same process just before; CERTIFY for one image "
        "with n0 = 100 and n = 1,000 draws against the forward floor per draw at batch "
        "1,000.\n")
    rows = []
    for name, label, bound in (
            ("BM_DetectorFeatureSqueezing", "feature squeezing (1 bit, 2×2 median)",
             "3 forwards (input + two squeezed)"),
            ("BM_DetectorConsistency32", "consistency check, 32 draws", "33 forwards"),
            ("BM_DetectorLearnedOnInput", "learned detector on the input",
             "its own SmallCNN ≈ 1 forward"),
            ("BM_Certify1000", "CERTIFY, n0 100 + n 1,000", "1,100 forwards")):
        run = bench.get(name)
        rows.append([label, ms(run["seconds"]), ratio(run["counters"]["x_forward"]) +
                     (" per draw" if "Certify" in name else " a forward"), bound])
    add(table(["defense", "time", "vs. floor", "what bounds it"], rows) + "\n")
    rows = []
    for size, k, shape in ((28, 2, "1×28×28, 2×2"), (28, 3, "1×28×28, 3×3"),
                           (32, 3, "3×32×32, 3×3")):
        kernel = bench.seconds(f"BM_MedianFilterKernel/{size}/{k}")
        reference = bench.seconds(f"BM_MedianFilterReference/{size}/{k}")
        rows.append([shape, ms(kernel), ms(reference), ratio(reference / kernel)])
    add("The median filter of feature squeezing, 256 images, CPU kernel against the composite "
        "reference (unfold + `kthvalue`):\n")
    add(table(["median filter", "CPU kernel", "reference", "speed-up"], rows) + "\n")

    add("## DP-SGD, side by side with Opacus\n")
    add("One training step at batch 256 (forward, backward, SGD step) against one DP-SGD step "
        "on the same batch (per-sample norms and clipped sum, Gaussian noise, SGD step). The "
        "plain step is the floor: a private step needs the same passes plus per-sample work. "
        f"`compare_opacus.py` times the same networks in Opacus {opacus['opacus']} right after, "
        "against PyTorch's own plain step.\n")
    rows = []
    for model in ("SmallCNN", "TanhCNN"):
        steps = {run["label"].split(" ", 1)[1]: run for name, run in bench.runs.items()
                 if name.startswith("BM_TrainingStep/") and run["label"].startswith(model + " ")}
        plain = steps["plain"]["seconds"]
        o = opacus["models"][model]
        ghost = (f"{ratio(o['ghost_seconds'] / o['plain_seconds'])}"
                 if o.get("ghost_seconds") else "n/a")
        rows.append([model, ms(plain), ratio(steps["dp-sgd flat"]["counters"]["x_plain_step"]),
                     ratio(steps["dp-sgd per-layer"]["counters"]["x_plain_step"]),
                     ms(o["plain_seconds"]), ratio(o["hooks_seconds"] / o["plain_seconds"]),
                     ghost])
    add(table(["model", "plain step (LibTorch)", "Bulwark flat", "Bulwark per-layer",
               "plain step (PyTorch)", "Opacus hooks", "Opacus ghost clipping"], rows) + "\n")
    add("Ratios are to each tool's own plain step; Bulwark's plain step is timed between the "
        "private step's iterations, on the same model and batch. Bulwark's backward pass "
        "computes no parameter gradients (it captures each layer's output gradient), which "
        "pays for much of the per-sample work; convolutions get their per-sample gradients as "
        "one convolution over the batch folded into groups, and large linear layers ghost "
        "norms.\n")
    rdp = bench.get("BM_Accountant/0")
    prv = bench.get("BM_Accountant/1")
    add("Accountants on Abadi et al.'s setting (q 0.01, σ 4, 10,000 steps, δ 1e-5; their "
        "moments accountant gave 1.26):\n")
    add(table(["accountant", "Bulwark ε", f"Opacus {opacus['opacus']} ε", "Bulwark time"], [
        ["RDP", f"{rdp['counters']['epsilon']:.5f}", f"{opacus['rdp_epsilon']:.5f}",
         ms(rdp["seconds"])],
        ["PRV (ε error 0.01)", f"{prv['counters']['epsilon']:.4f}",
         f"{opacus['prv_epsilon']:.4f}", ms(prv["seconds"])],
    ]) + "\n")

    if autoattack is not None:
        add(render_autoattack(autoattack))

    if security is not None:
        add(render_security(security))

    if poisoning is not None:
        add(render_poisoning(poisoning))

    if art_poisoning is not None:
        add(render_art_poisoning(art_poisoning))

    add("## Reproduce\n")
    add("```sh\nbenchmarks/run-all          # every benchmark, then this page and the plot\n"
        "scripts/bench build/release/pgd.json --benchmark_filter=BM_PGD20   # one C++ benchmark, JSON\n```\n")
    add("The Python tools are installed into the project's virtual environment for "
        "benchmarking only. Not compared here: IBM ART's attacks (none that both Bulwark and it "
        "implement with the same parameters yet), the reference AutoAttack (fra31/auto-attack "
        "is not on the Python package index), CUDA (no GPU on this machine).")
    return "\n".join(out) + "\n"


def plot(bench: Bench, attacks: dict, opacus: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    pgd = [r for r in attacks["rows"] if r["attack"] == "pgd"]
    names = [r["tool"].replace(" ", "\n", 1) for r in pgd]
    seconds = [r["seconds"] for r in pgd]
    colors = ["#4878a8" if r["tool"].startswith("bulwark") else "#a0a0a0" for r in pgd]
    left.bar(names, seconds, color=colors)
    left.set_ylabel("seconds")
    left.set_title(f"PGD-{attacks['steps']} on {attacks['n']:,} Fashion-MNIST test images\n"
                   f"(same SmallCNN, eps {attacks['eps']}, {attacks['threads']} threads)")
    for i, s in enumerate(seconds):
        left.text(i, s, f"{s:.1f}", ha="center", va="bottom")

    flat = next(run["counters"]["x_plain_step"] for name, run in bench.runs.items()
                if name.startswith("BM_TrainingStep/") and run["label"] == "SmallCNN dp-sgd flat")
    o = opacus["models"]["SmallCNN"]
    labels = ["Bulwark\nflat", "Opacus\nhooks"]
    values = [flat, o["hooks_seconds"] / o["plain_seconds"]]
    if o.get("ghost_seconds"):
        labels.append("Opacus\nghost")
        values.append(o["ghost_seconds"] / o["plain_seconds"])
    right.bar(labels, values, color=["#4878a8"] + ["#a0a0a0"] * (len(values) - 1))
    right.axhline(1.0, color="black", linestyle="--", linewidth=1)
    right.text(len(values) - 0.5, 1.02, "plain step", ha="right", va="bottom")
    right.set_ylabel("× the plain training step")
    right.set_title("DP-SGD step, SmallCNN, batch 256\n(each tool against its own plain step)")
    for i, v in enumerate(values):
        right.text(i, v, f"{v:.2f}×", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulwark", required=True, type=Path)
    parser.add_argument("--attacks", required=True, type=Path)
    parser.add_argument("--opacus", required=True, type=Path)
    parser.add_argument("--security", type=Path,
                        help="bulwark_benchmarks JSON of the sealed-file benchmarks")
    parser.add_argument("--autoattack", type=Path,
                        help="benchmarks/compare_autoattack.py JSON (AutoAttack side by side)")
    parser.add_argument("--poisoning", type=Path,
                        help="bulwark_benchmarks JSON of the poisoning-defense benchmarks")
    parser.add_argument("--art-poisoning", type=Path,
                        help="JSON of benchmarks/compare_art_poisoning.py")
    parser.add_argument("--markdown", required=True, type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="fail if --markdown differs from what would be written")
    args = parser.parse_args()
    bench = Bench(args.bulwark)
    attacks = json.loads(args.attacks.read_text())
    opacus = json.loads(args.opacus.read_text())
    security = Bench(args.security) if args.security else None
    autoattack = json.loads(args.autoattack.read_text()) if args.autoattack else None
    poisoning = Bench(args.poisoning) if args.poisoning else None
    art_poisoning = json.loads(args.art_poisoning.read_text()) if args.art_poisoning else None
    text = render(bench, attacks, opacus, security, autoattack, poisoning, art_poisoning)
    if args.check:
        if not args.markdown.exists() or args.markdown.read_text() != text:
            print(f"{args.markdown} is not what benchmarks/report.py makes of the results; "
                  "run benchmarks/run-all (or report.py) again", file=sys.stderr)
            return 1
        print(f"{args.markdown} matches the results")
        return 0
    tmp = args.markdown.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(args.markdown)
    print(f"wrote {args.markdown}")
    if args.plot:
        plot(bench, attacks, opacus, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
