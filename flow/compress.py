"""`qnnflow compress`: the compression methods of models.compress, each ending in a
verified build, and the study that tabulates them (accuracy, size, FINN's estimates).

    qnnflow compress linear  --model tfc-w8a8 --bits 4 --out build/compress/linear4
    qnnflow compress share   --model tfc-w8a8 --bits 4 --method kmeans-pso --out ...
    qnnflow compress prune   --model tfc-w8a8 --sparsity 0.9 --out ...
    qnnflow compress neurons --model tfc-w8a8 --out ...
    qnnflow compress mixed   --model tfc-w8a8 --budget-bits 3 --out ...
    qnnflow compress study   --out docs/compress          (the results table and plot)

A method's folder holds model.pt (a qnnflow checkpoint: `qnnflow build --model NAME
--checkpoint model.pt` rebuilds it), compress.json and, unless --no-build, build/ (a full
qnnflow build: 0 mismatches in every stage or the command fails). The folder is written
completely or not at all.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from . import build_folder
from .errors import FlowError
from .build_folder import relocate

# Deep Compression stores a sparse layer as (relative index, code) pairs; 5-bit relative
# indices for fully connected layers (their paper, Sec. 2): our storage figure for pruned layers
SPARSE_INDEX_BITS = 5


def load_base(model: str | None, checkpoint: str | None):
    from models import ModelError, load_checkpoint, shipped_checkpoint

    try:
        path = Path(checkpoint) if checkpoint else shipped_checkpoint(model)
        module, meta = load_checkpoint(path, model)
    except ModelError as exc:
        raise FlowError(str(exc)) from None
    return module, meta["name"], path


def storage(c, bits: list[int] | int, grid_bits: int | None = None, sparse: bool = False) -> dict:
    """Weight storage of a compressed model: `finn_bits`, the dense weight memory of FINN's
    matrix units (every weight at its layer's FINN width); `model_bits`, what the method
    stores: dense codes (linear, mixed), codes + a codebook of 2^b grid values per layer
    (weight sharing), and for a pruned model (`sparse`) only the non-zeros, each with a
    relative index; `zeros`, the share of zero weights (pruned, or rounded to zero)."""
    from models.compress.core import int_weights, weight_layers

    lays = weight_layers(c.model)
    bits = [bits] * len(lays) if isinstance(bits, int) else list(bits)
    finn_bits, model_bits, nnz_total, total = 0, 0, 0, 0
    for lay, b in zip(lays, bits):
        w = int_weights(lay)
        n, nnz = w.size, int((w != 0).sum())
        hw = grid_bits or b
        finn_bits += n * hw
        per = b + (SPARSE_INDEX_BITS if sparse else 0)
        model_bits += (nnz if sparse else n) * per + ((2 ** b) * hw if grid_bits else 0)
        nnz_total += nnz
        total += n
    return {"finn_weight_bits": int(finn_bits), "model_bits": int(model_bits),
            "zeros": round(1.0 - nnz_total / total, 4), "weights": int(total)}


def base_meta_pruned(module) -> bool:
    """Whether a base model is pruned (most of its latent weights exactly zero)."""
    from models.compress.core import masks_of

    masks = masks_of(module)
    kept = sum(int(m.sum()) for m in masks)
    return kept < 0.5 * sum(m.size for m in masks)


def mnist_accuracy(module) -> float:
    from models import load_mnist
    from models.train import evaluate

    te = load_mnist("test")
    return evaluate(module, te.x, te.y)


def build_compressed(c, ckpt: Path, out: Path, samples: int, rtlsim: bool = True, console=None) -> dict:
    """A full qnnflow build of a compressed checkpoint; the report's headline figures."""
    from .config import BuildConfig
    from .pipeline import run_build

    cfg = BuildConfig(out=out, model=c.name, checkpoint=ckpt, samples=samples, rtlsim=rtlsim, force=True)
    rep = run_build(cfg, console=console)
    return hw_summary(rep)


def hw_summary(rep: dict) -> dict:
    est = rep.get("estimates") or {}
    tot = (est.get("layer_resources") or {}).get("total") or {}
    rt = rep.get("rtlsim") or {}
    v = rep.get("verify") or {}
    return {"mismatches": v.get("mismatches", {}), "samples": v.get("samples"),
            "explained": {k: {"float_ties": e.get("float_ties", 0), "unexplained": e.get("unexplained", 0)}
                          for k, e in (v.get("explained") or {}).items()},
            "LUT": tot.get("LUT"), "BRAM_18K": tot.get("BRAM_18K"), "DSP": tot.get("DSP"),
            "est_cycles_per_image": est.get("max_cycles"), "rtlsim_cycles_per_image": rt.get("cycles_per_image"),
            "layer_resources": est.get("layer_resources"),
            "accuracy": (rep.get("accuracy") or {}).get("rtlsim") or (rep.get("accuracy") or {}).get("intsim")}


def mismatch_total(hw: dict) -> int:
    """Mismatching samples that count against the build: every one in the integer stages
    (streamlined and after), and those of the float stages (PyTorch, qonnx) that the
    verification does not explain as float32 rounding at an exact integer tie."""
    explained = hw.get("explained") or {}
    return int(sum(n if stage not in explained else explained[stage].get("unexplained", n)
                   for stage, n in (hw.get("mismatches") or {}).items()))


def run_method(a, console=None) -> int:
    """One method on one base model into a folder (the `qnnflow compress <method>` commands)."""
    from rich.console import Console
    from rich.progress import Progress

    from models import ModelError
    from models.compress import core, finetune, mixed

    out = Path(a.out)
    if out.exists() and not a.force:
        raise FlowError(f"output folder {out} exists; pass --force to replace it or choose another --out")
    base, base_name, base_path = load_base(a.model, a.checkpoint)
    command = "qnnflow " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    t0 = time.time()
    try:
        with Progress(console=console, transient=True) as progress:
            if a.method == "linear":
                c = core.linear(base, base_name, a.bits)
                size = storage(c, a.bits, sparse=base_meta_pruned(base))
            elif a.method == "share":
                c = core.share(base, base_name, a.bits, a.cluster, a.grid_bits, a.seed)
                size = storage(c, a.bits, a.grid_bits, sparse=base_meta_pruned(base))
            elif a.method == "prune":
                c = finetune.magnitude_prune(base, base_name, a.sparsity, a.prune_epochs, a.finetune_epochs,
                                             seed=a.seed, progress=progress)
                size = storage(c, core.layer_weight_bits(c.model), sparse=True)
            elif a.method == "neurons":
                c = finetune.neuron_prune(base, base_name, a.tau, a.threshold, a.multiple, a.lasso_epochs,
                                          a.finetune_epochs, seed=a.seed, progress=progress)
                size = storage(c, core.layer_weight_bits(c.model))
            elif a.method == "mixed":
                c = mixed.search(base, base_name, a.budget_bits, a.search_epochs, a.finetune_epochs,
                                 seed=a.seed, progress=progress)
                size = storage(c, c.info["bits"])
            else:  # argparse restricts the choices
                raise FlowError(f"unknown method {a.method}")
    except ModelError as exc:
        raise FlowError(str(exc)) from None
    acc = c.info.get("test_accuracy")
    if acc is None:
        acc = mnist_accuracy(c.model)
    summary = {"method": a.method, "base": base_name, "base_checkpoint": str(base_path), "name": c.name,
               "arch_kwargs": c.arch_kwargs, "test_accuracy": acc, "storage": size, "command": command,
               "seconds": round(time.time() - t0, 1),
               "compression": {k: v for k, v in c.info.items() if k != "history"}}
    out.parent.mkdir(parents=True, exist_ok=True)
    work = (out.parent / f".{out.name}.tmp-{os.getpid()}").resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        ckpt = work / "model.pt"
        c.save(ckpt, {"test_accuracy": acc, "command": command, "base": base_name})
        if not a.no_build:
            summary["hardware"] = build_compressed(c, ckpt, work / "build", a.samples, console=console)
        (work / "compress.json").write_text(json.dumps(summary, indent=2, default=float))
        relocate(work, out)  # the build recorded the checkpoint's and its own temporary paths
        if (work / "build").is_dir():
            build_folder.write_manifest(work / "build")  # the relocation rewrote hashed files
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    hw = summary.get("hardware")
    line = (f"{a.method}: {c.name} from {base_name}: MNIST test top-1 {acc:.2f} %, "
            f"model {size['model_bits'] / 8192:.1f} KiB, FINN weight memory {size['finn_weight_bits'] / 8192:.1f} KiB, "
            f"zero weights {size['zeros']:.1%}")
    if hw:
        ties = sum(e["float_ties"] for e in hw["explained"].values())
        line += (f"; build: {mismatch_total(hw)} mismatches over {hw['samples']} samples in every stage"
                 + (f" ({ties} float32 rounding ties in the PyTorch/qonnx stages, explained)" if ties else "") + ", "
                 f"{hw['LUT']:.0f} LUT / {hw['BRAM_18K']:.0f} BRAM18 / {hw['DSP']:.0f} DSP (FINN estimates), "
                 f"{hw['rtlsim_cycles_per_image'] or hw['est_cycles_per_image']} cycles/image")
    Console().print(line + f"\nwritten {out}/ (model.pt, compress.json{', build/' if hw else ''})")
    return 1 if hw and mismatch_total(hw) else 0
