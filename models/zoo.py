"""Model names `<arch>-<preset>`, construction, and checkpoints with provenance."""
from __future__ import annotations

import dataclasses
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .cnn import CNN_ARCHS
from .errors import ModelError
from .mlp import MLP_WIDTHS, QuantMLP
from .quant import PRESETS, get_preset, is_preset, layer_presets

ARCHS = tuple(MLP_WIDTHS) + CNN_ARCHS
CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class ModelName:
    arch: str
    preset: str

    def __str__(self) -> str:
        return f"{self.arch}-{self.preset}"


def parse_name(name: str) -> ModelName:
    arch, _, preset = name.partition("-")
    if arch not in ARCHS:
        raise ModelError(f"unknown architecture {arch!r} in model name {name!r}; "
                         f"valid architectures: {', '.join(ARCHS)} (names read <arch>-<preset>)")
    if not is_preset(preset) and not preset.startswith("mix:"):
        raise ModelError(f"unknown preset {preset!r} in model name {name!r}; valid presets: "
                         f"{', '.join(PRESETS)}, wBaC (B, C in 2..8) or mix:P1,P2,... (names read <arch>-<preset>)")
    return ModelName(arch, preset)


ARCH_KWARGS = ("widths", "per_channel")  # checkpoint meta "arch_kwargs": shapes a compression changed


def build_model(name: str, dropout: float = 0.0, float_weights: bool = False,
                widths: list[int] | None = None, per_channel: bool = True) -> nn.Module:
    """A freshly initialised Brevitas module for `name`, e.g. 'tfc-w2a2'.

    float_weights: the same network with unquantized weights (INQ trains po2 weights so).
    widths: the MLP's hidden widths, one per hidden layer (structured pruning shrinks them;
    default: the architecture's). per_channel=False: one weight scale per layer instead of
    one per output channel (weight sharing puts a whole layer on one integer grid).
    """
    mn = parse_name(name)
    if mn.arch in CNN_ARCHS:
        from .cnn import build_cnn

        if mn.preset.startswith("mix:"):
            raise ModelError(f"{name}: per-layer mixes are available for the MLPs (tfc, sfc, lfc) only")
        if widths is not None:
            raise ModelError(f"{name}: custom widths are available for the MLPs (tfc, sfc, lfc) only")
        preset = get_preset(mn.preset)
        if float_weights:
            preset = dataclasses.replace(preset, weight_kind="float_weights")
        return build_cnn(mn.arch, preset, dropout=dropout, per_channel=per_channel)
    presets = layer_presets(mn.preset, 4)
    if float_weights:
        presets = [dataclasses.replace(p, weight_kind="float_weights") for p in presets]
    widths = list(widths) if widths is not None else [MLP_WIDTHS[mn.arch]] * (len(presets) - 1)
    if len(widths) != len(presets) - 1 or any(int(w) < 1 for w in widths):
        raise ModelError(f"{name}: widths {widths} must give {len(presets) - 1} positive hidden widths")
    return QuantMLP(presets, width=widths, dropout=dropout, per_channel=per_channel)


def shipped_checkpoint(name: str) -> Path:
    """The checkpoint shipped in the package for `name` (trained by `qnnflow train`)."""
    parse_name(name)
    path = Path(str(importlib.resources.files("models") / "checkpoints" / f"{name}.pt"))
    if not path.is_file():
        raise ModelError(f"no shipped checkpoint for {name}; train one with "
                         f"`qnnflow train {name}` and pass it with --checkpoint")
    return path


def save_checkpoint(path: Path, model: nn.Module, meta: dict) -> None:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": state, "meta": meta}, path)


def _quant_layers(model: nn.Module):
    """(name, module) of every layer whose weights Brevitas quantizes."""
    from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer

    for name, m in model.named_modules():
        if isinstance(m, QuantWeightBiasInputOutputLayer) and m.weight_quant.is_quant_enabled:
            yield name, m


def compact_checkpoint(src: str | Path, dst: str | Path) -> dict:
    """Write `src` again with each quantized weight tensor as integer codes (int8, int16 past
    8 bits) times its quantizer's scale, instead of float32 latent weights: a binary MLP
    shrinks about 4x. The float latent weights are gone: a compact checkpoint is for
    deployment (build, eval, verify, shipping in the zoo); --init from it starts at the
    quantized weights.

    Contract: the loaded module quantizes its weights to the same integer codes as `src`
    (checked; ModelError otherwise). A scale that Brevitas computes from the weights (e.g.
    mean|W| per channel) may come out a few ulps from the original, as the float32 mean of
    equal values need not be that value; the module is then a (negligibly) different float
    model (an image whose activations sit exactly on a quantizer step may change class), so
    its MNIST accuracy is measured again and recorded in its metadata
    (test_accuracy, val_accuracy; the originals under compact_of), and its command gains
    this step.
    Returns {"layers", "bytes_before", "bytes_after", "max_scale_rel_diff", "test_accuracy",
    "test_accuracy_before", "predictions_changed"}."""
    from .data import load_mnist

    src, dst = Path(src), Path(dst)
    model, meta = load_checkpoint(src)
    ref = {name: m.quant_weight() for name, m in _quant_layers(model)}
    codes = {}
    for name, q in ref.items():
        c = torch.round(q.value / q.scale).detach()
        codes[f"{name}.weight"] = {"codes": c.to(torch.int8 if int(q.bit_width) <= 8 else torch.int16),
                                   "magnitude": q.scale.detach().clone().float()}
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k not in codes}
    test, val = load_mnist("test"), load_mnist("val")

    def predict(module, split):
        with torch.no_grad():
            return torch.cat([module(torch.from_numpy(split.x[i:i + 1000])).argmax(1)
                              for i in range(0, len(split.y), 1000)]).numpy()

    before = {k: predict(model, d) for k, d in (("test", test), ("val", val))}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": state, "codes": codes, "meta": meta}, tmp)
    back, _ = load_checkpoint(tmp)
    rel = 0.0
    for name, m in _quant_layers(back):
        q = m.quant_weight()
        if not torch.equal(torch.round(q.value / q.scale), torch.round(ref[name].value / ref[name].scale)):
            tmp.unlink()
            raise ModelError(f"{src}: layer {name}'s integer weight codes change when loaded from codes; "
                             "keep the full checkpoint")
        rel = max(rel, float(((q.scale - ref[name].scale).abs() / ref[name].scale.abs()).max()))
    after = {k: predict(back, d) for k, d in (("test", test), ("val", val))}
    acc = {k: float((after[k] == d.y).mean() * 100) for k, d in (("test", test), ("val", val))}
    made = f"qnnflow compact {src} --out {dst}"
    meta = {**meta, "compact": True, "test_accuracy": acc["test"], "val_accuracy": acc["val"],
            "command": f"{meta['command']} && {made}" if meta.get("command") else made,
            "compact_of": {"checkpoint": src.name, "test_accuracy": meta.get("test_accuracy"),
                           "val_accuracy": meta.get("val_accuracy")}}
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": state, "codes": codes, "meta": meta}, tmp)
    tmp.replace(dst)
    return {"layers": len(codes), "bytes_before": src.stat().st_size, "bytes_after": dst.stat().st_size,
            "max_scale_rel_diff": rel, "test_accuracy": acc["test"],
            "test_accuracy_before": float((before["test"] == test.y).mean() * 100),
            "predictions_changed": int((before["test"] != after["test"]).sum() + (before["val"] != after["val"]).sum())}


def load_checkpoint(path: str | Path, name: str | None = None) -> tuple[nn.Module, dict]:
    """Load a checkpoint (weights only, never pickled code) and the module it belongs to.

    If `name` is given, a checkpoint of another architecture or preset is refused.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"checkpoint {path} is a folder; give the checkpoint file (.pt)")
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist; check the path or train one with `qnnflow train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise ModelError(f"checkpoint {path} cannot be read ({exc.__class__.__name__}); "
                         "it is not a qnnflow checkpoint or is corrupt") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "meta" not in ckpt:
        raise ModelError(f"checkpoint {path} is not a qnnflow checkpoint (no state_dict/meta); "
                         "save checkpoints with `qnnflow train`")
    meta = ckpt["meta"]
    ck_name = f"{meta.get('arch')}-{meta.get('preset')}"
    if name is not None and ck_name != str(parse_name(name)):
        raise ModelError(f"checkpoint {path} holds {ck_name}, not the requested {name}; "
                         f"use --model {ck_name} or a checkpoint trained for {name}")
    arch_kwargs = {k: v for k, v in (meta.get("arch_kwargs") or {}).items() if k in ARCH_KWARGS}
    try:
        model = build_model(ck_name, **arch_kwargs)
    except ModelError as exc:
        raise ModelError(f"checkpoint {path}: {exc}") from None
    state = dict(ckpt["state_dict"])
    try:  # a compact checkpoint (compact_checkpoint): weights = codes * magnitude
        for key, entry in (ckpt.get("codes") or {}).items():
            state[key] = entry["codes"].float() * entry["magnitude"]
    except (TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise ModelError(f"checkpoint {path}: its integer weight codes are malformed ({exc.__class__.__name__}); "
                         "write it again with `qnnflow compact`") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError, AttributeError) as exc:  # size mismatches, non-tensor entries
        first = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc).strip())
        raise ModelError(f"checkpoint {path} does not match {ck_name}: {first[:200]}") from None
    if missing or unexpected:
        raise ModelError(f"checkpoint {path} does not match {ck_name}: missing {list(missing)[:3]}, "
                         f"unexpected {list(unexpected)[:3]}")
    model.eval()
    return model, meta


# MNIST test top-1 targets: Brevitas's published bnn_pynq figures (README, "Models"); relative ones
# against the float reference of the same architecture trained the same way
PUBLISHED_TARGETS = {"tfc-w1a1": 93.17, "tfc-w2a2": 96.60, "sfc-w1a1": 97.81, "sfc-w2a2": 98.66,
                     "lfc-w1a1": 98.88}
FLOAT_MARGIN = {"po2": 0.5, "w4a4": 0.3, "w8a8": 0.3}
CONV_TARGET = 99.0


def accuracy_target(name: str, float_accuracy: dict[str, float]) -> tuple[float | None, str]:
    """(target top-1 %, where it comes from) for a zoo name, None where there is none."""
    mn = parse_name(name)
    if name in PUBLISHED_TARGETS:
        return PUBLISHED_TARGETS[name], "Brevitas bnn_pynq"
    if mn.preset in FLOAT_MARGIN and f"{mn.arch}-fp32" in float_accuracy:
        m = FLOAT_MARGIN[mn.preset]
        return round(float_accuracy[f"{mn.arch}-fp32"] - m, 2), f"{mn.arch}-fp32 - {m}"
    if mn.arch in CNN_ARCHS and mn.preset != "fp32":
        return CONV_TARGET, "conv net"
    return None, ""


def checkpoint_dir() -> Path:
    return Path(str(importlib.resources.files("models") / "checkpoints"))


def list_shipped() -> list[dict]:
    """The shipped checkpoints with their provenance (read from each checkpoint's metadata)."""
    rows = []
    for path in sorted(checkpoint_dir().glob("*.pt")):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        meta = ckpt.get("meta", {})
        rows.append({
            "name": meta.get("name", path.stem), "arch": meta.get("arch"), "preset": meta.get("preset"),
            "accuracy": round(float(meta.get("test_accuracy", float("nan"))), 2),
            "val_accuracy": meta.get("val_accuracy"), "epochs": meta.get("epochs"),
            "best_epoch": meta.get("best_epoch"), "seed": meta.get("seed"),
            "train_seconds": meta.get("train_seconds"), "command": meta.get("command"),
            "checkpoint": str(path), "buildable": get_preset(meta["preset"]).buildable
            if is_preset(meta.get("preset", "")) else True,
        })
    floats = {r["name"]: r["accuracy"] for r in rows if r["preset"] == "fp32"}
    for r in rows:
        r["target"], r["target_source"] = accuracy_target(r["name"], floats)
        r["meets_target"] = None if r["target"] is None else bool(r["accuracy"] >= r["target"])
    return rows
