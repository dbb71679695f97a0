"""`qnnflow compress study`: every compression method on one zoo model, one table.

    qnnflow compress study --model tfc-w8a8 --out docs/compress --builds build/compress-study

Rows (MNIST test top-1 of each compressed model in PyTorch, post-training where the method
does not train):
- linear quantization and weight sharing (k-means with random / uniform / PSO starts,
  sorted-neighbour hierarchical clustering; centroids on an 8-bit grid) at 8..2 bits, on the
  base model and on its magnitude-pruned version;
- gradual magnitude pruning, neuron (structured) pruning;
- mixed precision searched under the weight memory of uniform b bits, against uniform b
  bits fine-tuned for as many epochs.
Each distinct hardware configuration, and every method at `--build-bits`, is built by the
full flow (verification chain with the Verilator simulation); a row carries FINN's
estimates of its configuration and whether that exact model was built, with its mismatches.
Writes OUT/results.json, OUT/RESULTS.md and OUT/accuracy_vs_size.png.
"""
from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from pathlib import Path

from .compress import mnist_accuracy, mismatch_total, build_compressed, load_base, storage
from .errors import FlowError

CLUSTER_METHODS = ("kmeans-random", "kmeans-uniform", "kmeans-pso", "hierarchical")


def _row(c, method: str, pruned: bool, bits, size: dict, acc: float, **extra) -> dict:
    return {"method": method, "pruned": pruned, "bits": bits, "name": c.name, "arch_kwargs": c.arch_kwargs,
            "accuracy": round(acc, 2), "model_kib": round(size["model_bits"] / 8192, 2),
            "finn_weight_kib": round(size["finn_weight_bits"] / 8192, 2), "zeros": size["zeros"], **extra}


def _hw_key(row: dict) -> str:
    return json.dumps([row["name"], row["arch_kwargs"]], sort_keys=True)


def run_study(out: Path, model: str = "tfc-w8a8", checkpoint: str | None = None, bits=(8, 7, 6, 5, 4, 3, 2),
              sparsity: float = 0.8, budgets=(3, 4), build_bits: int = 4, grid_bits: int = 8,
              builds: Path = Path("build/compress-study"), samples: int = 1000, epochs_scale: float = 1.0,
              seed: int = 0, build: bool = True, console=None) -> dict:
    from rich.progress import Progress

    from models import ModelError
    from models.compress import core, finetune, mixed

    t_start = time.time()
    base, base_name, base_path = load_base(model, checkpoint)
    ep = lambda n: max(1, int(round(n * epochs_scale)))  # noqa: E731
    rows, models = [], []
    say = (console.print if console else print)
    try:
        base_acc = mnist_accuracy(base)
        with Progress(console=console, transient=True) as progress:
            say(f"[study] {base_name}: {base_acc:.2f} %; gradual magnitude pruning to {sparsity:.0%}")
            pruned = finetune.magnitude_prune(base, base_name, sparsity, ep(6), ep(4), seed=seed, progress=progress)
            say(f"[study] pruned: {pruned.info['test_accuracy']:.2f} %")
            trained = [(pruned, "magnitude-prune")]
            mlp = isinstance(base, core.QuantMLP)
            if mlp:  # neuron pruning and the mixed-precision presets exist for the MLPs
                neurons = finetune.neuron_prune(base, base_name, lasso_epochs=ep(4), finetune_epochs=ep(4), seed=seed,
                                                progress=progress)
                say(f"[study] neuron pruning (group lasso) {neurons.info['widths']}: "
                    f"{neurons.info['test_accuracy']:.2f} %")
                trained.append((neurons, "neuron-prune"))
            else:
                say(f"[study] {base_name} is not an MLP: no neuron pruning, no mixed precision")
            for c, method in trained:
                wb = core.layer_weight_bits(c.model)
                rows.append(_row(c, method, True, wb[0], storage(c, wb, sparse=method == "magnitude-prune"),
                                 c.info["test_accuracy"],
                                 detail={k: c.info[k] for k in ("sparsity", "widths") if k in c.info}))
                models.append(c)
            for src, is_pruned in ((base, False), (pruned.model, True)):
                for b in bits:
                    c = core.linear(src, base_name, b)
                    rows.append(_row(c, "linear", is_pruned, b, storage(c, b, sparse=is_pruned),
                                     mnist_accuracy(c.model)))
                    models.append(c)
                    for m in CLUSTER_METHODS:
                        c = core.share(src, base_name, b, m, grid_bits, seed)
                        rows.append(_row(c, m, is_pruned, b, storage(c, b, grid_bits, sparse=is_pruned),
                                         mnist_accuracy(c.model)))
                        models.append(c)
                say(f"[study] linear and weight sharing at {list(bits)} bits ({'pruned' if is_pruned else 'dense'})")
            for budget in budgets if mlp else ():
                mix = mixed.search(base, base_name, budget, ep(3), ep(6), seed=seed, progress=progress)
                uni = mixed.uniform(base, base_name, budget, ep(9), seed=seed, progress=progress)
                for c, method in ((mix, "mixed-precision"), (uni, "uniform")):
                    rows.append(_row(c, method, False, c.info["bits"], storage(c, c.info["bits"]),
                                     c.info["test_accuracy"], budget_bits=budget))
                    models.append(c)
                say(f"[study] {budget}-bit budget: mix {mix.info['bits']} {mix.info['test_accuracy']:.2f} %, "
                    f"uniform {uni.info['test_accuracy']:.2f} %")
    except ModelError as exc:
        raise FlowError(str(exc)) from None

    # builds: each distinct hardware configuration, and every method at build_bits
    builds = Path(builds)
    hw_by_key: dict[str, dict] = {}
    for i, (row, c) in enumerate(zip(rows, models)):
        if not build:
            break
        key = _hw_key(row)
        if key in hw_by_key and row["bits"] != build_bits:
            continue
        tag = f"{i:02d}-{row['method']}{'-pruned' if row['pruned'] else ''}-{row['bits'] if isinstance(row['bits'], int) else 'mix'}"
        ckpt = builds / "checkpoints" / f"{tag}.pt"
        c.save(ckpt, {"test_accuracy": row["accuracy"], "base": base_name, "command": "qnnflow compress study"})
        say(f"[study] build {tag} ({c.name})")
        hw = build_compressed(c, ckpt, builds / tag, samples, console=console)
        hw.pop("layer_resources", None)
        row["build"] = {"folder": str(builds / tag), "mismatches": mismatch_total(hw), "samples": hw["samples"],
                        "float_ties": sum(e["float_ties"] for e in hw["explained"].values())}
        hw_by_key.setdefault(key, hw)
    for row in rows:
        hw = hw_by_key.get(_hw_key(row))
        row["hw"] = hw and {k: hw[k] for k in ("LUT", "BRAM_18K", "DSP", "est_cycles_per_image", "rtlsim_cycles_per_image")}
    result = {"model": base_name, "base_checkpoint": str(base_path), "base_accuracy": round(base_acc, 2),
              "bits": list(bits), "grid_bits": grid_bits, "sparsity": sparsity, "budgets": list(budgets),
              "epochs_scale": epochs_scale, "seed": seed, "samples": samples,
              "command": "qnnflow " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
              "seconds": round(time.time() - t_start, 1), "python": platform.python_version(), "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2, default=float))
    (out / "RESULTS.md").write_text(markdown(result))
    plot(result, out / "accuracy_vs_size.png")
    return result


def _acc(rows, method, pruned, b):
    for r in rows:
        if r["method"] == method and r["pruned"] == pruned and r["bits"] == b:
            return r["accuracy"]
    return None


def findings(result: dict) -> list[str]:
    """The literature's claims, checked on these rows (each a sentence, true or not)."""
    rows, lines = result["rows"], []
    low = [b for b in result["bits"] if b <= 4]
    for pruned in (False, True):
        tag = "pruned" if pruned else "dense"
        wins = [b for b in low if max(_acc(rows, m, pruned, b) for m in CLUSTER_METHODS) > _acc(rows, "linear", pruned, b)]
        lines.append(f"Two-stage claim (clustering beats linear quantization at low bits), {tag}: holds at "
                     f"{wins or 'no'} of {low} bits.")
        pso = [b for b in low if _acc(rows, "kmeans-pso", pruned, b) >= max(_acc(rows, "kmeans-random", pruned, b),
                                                                          _acc(rows, "kmeans-uniform", pruned, b))]
        lines.append(f"PSO start at least as good as random and uniform starts, {tag}: at {pso or 'no'} of {low} bits.")
        hier = [b for b in low if _acc(rows, "hierarchical", pruned, b) >= _acc(rows, "kmeans-uniform", pruned, b) - 0.1]
        lines.append(f"Hierarchical clustering within 0.1 points of (or above) k-means (uniform start), {tag}: "
                     f"at {hier or 'no'} of {low} bits.")
    for r in [r for r in rows if r["method"] == "mixed-precision"]:
        u = next(x for x in rows if x["method"] == "uniform" and x.get("budget_bits") == r["budget_bits"])
        verdict = "beats" if r["accuracy"] > u["accuracy"] else ("ties" if r["accuracy"] == u["accuracy"] else "loses to")
        lines.append(f"Mixed precision {r['bits']} under the {r['budget_bits']}-bit budget ({r['model_kib']} KiB) "
                     f"{verdict} uniform {r['budget_bits']} bits ({u['model_kib']} KiB): "
                     f"{r['accuracy']:.2f} vs {u['accuracy']:.2f} %.")
    mp = next(r for r in rows if r["method"] == "magnitude-prune")
    line = (f"Magnitude pruning to {result['sparsity']:.0%} costs {result['base_accuracy'] - mp['accuracy']:.2f} points "
            f"and shrinks the stored model to {mp['model_kib']} KiB (non-zeros with 5-bit relative indices) from "
            f"{mp['finn_weight_kib']} KiB dense")
    if mp["hw"]:
        line += (f"; FINN's dense matrix units store every zero: the estimates stay those of the dense configuration "
                 f"({mp['hw']['LUT']:.0f} LUT / {mp['hw']['BRAM_18K']:.0f} BRAM18 / {mp['hw']['DSP']:.0f} DSP)")
    lines.append(line + ".")
    npr = next((r for r in rows if r["method"] == "neuron-prune"), None)
    if npr is None:
        return lines
    line = f"Neuron pruning to widths {npr['detail'].get('widths')} costs {result['base_accuracy'] - npr['accuracy']:.2f} points"
    if npr["hw"] and mp["hw"]:
        line += (f"; FINN estimates {npr['hw']['LUT']:.0f} LUT / {npr['hw']['BRAM_18K']:.0f} BRAM18 / {npr['hw']['DSP']:.0f} DSP, "
                 f"against the base's {mp['hw']['LUT']:.0f} / {mp['hw']['BRAM_18K']:.0f} / {mp['hw']['DSP']:.0f}")
    lines.append(line + ".")
    return lines


def markdown(result: dict) -> str:
    rows = result["rows"]
    out = [f"# Compression study: {result['model']}",
           "",
           f"Generated by `{result['command']}` ({result['seconds']:.0f} s on this machine); "
           f"data: results.json; plot: accuracy_vs_size.png. Base: {result['model']} "
           f"({result['base_accuracy']:.2f} % MNIST test top-1).",
           "",
           "Accuracy is MNIST test top-1 (10,000 images) of the compressed model in PyTorch; linear "
           "quantization and weight sharing are post-training (no fine-tuning), pruning and mixed "
           "precision fine-tune on the training split (best validation epoch). Weight sharing: 2^b "
           f"clusters per layer, centroids on a {result['grid_bits']}-bit integer grid, so FINN's matrix "
           f"units hold {result['grid_bits']}-bit weights; its `model KiB` counts b-bit codes plus a codebook. "
           "Linear: symmetric, one scale per layer, 2^b - 1 levels. Hardware: FINN's estimates "
           "(LUT / BRAM18 / DSP, cycles per image) of the row's configuration, from a full qnnflow build "
           "of that configuration; `built` marks rows whose own model was built and verified (the number "
           "is its mismatches over all stages, rtlsim included; samples where only the float32 stages "
           "(PyTorch, qonnx) round an exact integer tie differently are counted apart, as float32 ties).",
           "",
           "## Findings", ""]
    out += [f"- {line}" for line in findings(result)]
    out += ["", "## Linear quantization vs weight sharing (accuracy %)", ""]
    methods = ("linear",) + CLUSTER_METHODS
    for pruned in (False, True):
        out += [f"### {'after magnitude pruning to ' + format(result['sparsity'], '.0%') if pruned else 'dense'}", "",
                "| bits | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for b in result["bits"]:
            out.append(f"| {b} | " + " | ".join(f"{_acc(rows, m, pruned, b):.2f}" for m in methods) + " |")
        out.append("")
    out += ["## Every point", "",
            "| method | pruned | bits | model KiB | FINN weight KiB | zero weights | accuracy % | LUT | BRAM18 | DSP | cycles/image | built |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        hw = r["hw"] or {"LUT": float("nan"), "BRAM_18K": float("nan"), "DSP": float("nan"),
                         "est_cycles_per_image": "-", "rtlsim_cycles_per_image": None}
        b = r["bits"] if isinstance(r["bits"], int) else "/".join(map(str, r["bits"]))
        ties = r.get("build", {}).get("float_ties", 0)
        built = (f"yes, {r['build']['mismatches']}" + (f" ({ties} float32 ties)" if ties else "")) if "build" in r else ""
        out.append(f"| {r['method']} | {'yes' if r['pruned'] else ''} | {b} | {r['model_kib']} | {r['finn_weight_kib']} | "
                   f"{r['zeros']:.0%} | {r['accuracy']:.2f} | {hw['LUT']:.0f} | {hw['BRAM_18K']:.0f} | {hw['DSP']:.0f} | "
                   f"{hw['rtlsim_cycles_per_image'] or hw['est_cycles_per_image']} | {built} |")
    return "\n".join(out) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"linear": "o", "kmeans-random": "v", "kmeans-uniform": "^", "kmeans-pso": "s", "hierarchical": "D"}
    for m, marker in styles.items():
        for pruned in (False, True):
            pts = sorted((r["model_kib"], r["accuracy"]) for r in rows if r["method"] == m and r["pruned"] == pruned)
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker=marker, linestyle="--" if pruned else "-",
                        label=f"{m}{' (pruned)' if pruned else ''}", alpha=0.85)
    for m, marker in (("mixed-precision", "*"), ("uniform", "P"), ("magnitude-prune", "x"), ("neuron-prune", "X")):
        pts = [(r["model_kib"], r["accuracy"]) for r in rows if r["method"] == m]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, marker=marker, s=90, label=m, zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel("stored weights (KiB, log scale)")
    ax.set_ylabel("MNIST test top-1 (%)")
    lo = max(80.0, min(r["accuracy"] for r in rows) - 1)
    ax.set_ylim(lo, result["base_accuracy"] + 0.5)
    ax.axhline(result["base_accuracy"], color="grey", linewidth=0.8)
    ax.set_title(f"{result['model']}: accuracy vs size (points below {lo:.0f} % not shown)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
