"""Compression of a trained zoo model into another buildable qnnflow checkpoint.

Every function takes a trained Brevitas module (a zoo checkpoint: its latent float weights,
BatchNorm statistics and activation scales) and returns a new module of a zoo architecture
and preset, plus the `arch_kwargs` (hidden widths, per-layer weight scales) that
`models.load_checkpoint` needs to rebuild it. The weights stay integers times a scale, so
the flow builds the result like any zoo model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from brevitas import nn as qnn
from torch import nn

from ..errors import ModelError
from ..mlp import MLP_WIDTHS, QuantMLP
from ..quant import get_preset, layer_presets
from ..zoo import build_model, parse_name, save_checkpoint
from .cluster import METHODS, share_weights


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The quantized weight layers in forward order (convolutions, linear layers, classifier)."""
    return [m for m in model.modules() if isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d))]


def layer_weight_bits(model: nn.Module) -> list[int]:
    """Each weight layer's quantizer bit width."""
    with torch.no_grad():
        return [int(m.quant_weight().bit_width) for m in weight_layers(model)]


def int_weights(layer: nn.Module) -> np.ndarray:
    """The integers a layer's weight quantizer produces (what FINN receives)."""
    with torch.no_grad():
        return layer.quant_weight().int().numpy().astype(np.int64)


@dataclass
class Compressed:
    model: nn.Module
    name: str                           # zoo name <arch>-<preset> of the result
    arch_kwargs: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)   # method, parameters, per-layer statistics

    def save(self, path: Path, meta: dict) -> None:
        mn = parse_name(self.name)
        full = {"name": self.name, "arch": mn.arch, "preset": mn.preset, "arch_kwargs": self.arch_kwargs,
                "compression": self.info, **meta}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_checkpoint(tmp, self.model, full)
        tmp.replace(path)


def base_acts(name: str) -> int:
    """The activation bits of a base model (kept by weight compression)."""
    mn = parse_name(name)
    if mn.preset.startswith("mix:"):
        raise ModelError(f"{name}: compress a uniform model (e.g. tfc-w8a8), not a per-layer mix")
    p = get_preset(mn.preset)
    if p.weight_kind != "int" or p.act_bits < 2:
        raise ModelError(f"{name}: weight compression needs a linear integer base with >= 2-bit activations "
                         "(e.g. tfc-w8a8); binary, power-of-two and float models are not a base for it")
    return p.act_bits


def _arch_kwargs(base: nn.Module) -> dict:
    if isinstance(base, QuantMLP):
        widths = [m.out_features for m in base.features if isinstance(m, qnn.QuantLinear)]
        return {"widths": widths}
    return {}


def _rebuild(base: nn.Module, base_name: str, preset: str, **kwargs) -> tuple[nn.Module, str, dict]:
    """A fresh module of `preset` with the base's shapes and its state (weights, BN, act scales)."""
    arch = parse_name(base_name).arch
    name = f"{arch}-{preset}"
    arch_kwargs = {**_arch_kwargs(base), **kwargs}
    model = build_model(name, **arch_kwargs)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if missing or unexpected:
        raise ModelError(f"{base_name} -> {name}: state does not carry over (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    return model.eval(), name, arch_kwargs


def masks_of(model: nn.Module) -> list[np.ndarray]:
    """True where a weight is not pruned (non-zero latent weight)."""
    return [(lay.weight.detach().numpy() != 0) for lay in weight_layers(model)]


def linear(base: nn.Module, base_name: str, bits: int) -> Compressed:
    """Plain linear quantization: symmetric, one scale per layer (max|w| -> 2^(bits-1) - 1),
    round to nearest; post-training, from the base's latent float weights."""
    acts = base_acts(base_name)
    model, name, kw = _rebuild(base, base_name, f"w{bits}a{acts}", per_channel=False)
    stats = [{"distinct": int(len(np.unique(int_weights(m))))} for m in weight_layers(model)]
    return Compressed(model, name, kw, {"method": "linear", "bits": bits, "weight_bits": bits, "layers": stats})


def share(base: nn.Module, base_name: str, bits: int, method: str, grid_bits: int = 8,
          seed: int = 0) -> Compressed:
    """Weight sharing (two stages, models.compress.cluster): each layer clustered into 2^bits
    shared values, the centroids mapped onto a `grid_bits` integer grid. Pruned (zero)
    weights of the base stay zero. The result is a `w<grid_bits>a<acts>` model with one
    scale per layer, whose quantizer reproduces the grid integers exactly (checked)."""
    if method not in METHODS or method == "linear":
        raise ModelError(f"unknown weight-sharing method {method!r}; valid: {', '.join(METHODS[1:])}")
    acts = base_acts(base_name)
    model, name, kw = _rebuild(base, base_name, f"w{grid_bits}a{acts}", per_channel=False)
    stats = []
    with torch.no_grad():
        for lay, mask in zip(weight_layers(model), masks_of(base)):
            w = lay.weight.detach().numpy()
            sl = share_weights(w, bits, method, grid_bits, seed, mask if not mask.all() else None)
            lay.weight.copy_(torch.from_numpy(sl.ints * sl.scale).to(lay.weight.dtype))
            got = int_weights(lay)
            if not np.array_equal(got, sl.ints):
                raise ModelError(f"{method}: the {grid_bits}-bit quantizer does not reproduce the grid integers "
                                 f"({int((got != sl.ints).sum())} differ); report this as a bug")
            stats.append({"distinct": sl.distinct, "iterations": sl.iterations, "scale": sl.scale})
    return Compressed(model.eval(), name, kw, {"method": method, "bits": bits, "grid_bits": grid_bits,
                                               "weight_bits": grid_bits, "seed": seed, "layers": stats})


# ---------------------------------------------------------------------------------
# pruning

def sparsity_schedule(t: int, s_i: float, s_f: float, t0: int, n: int, dt: int) -> float:
    """Gradual pruning (Zhu & Gupta): s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3,
    held at s_i before t0 and at s_f after t0 + n dt."""
    if t <= t0:
        return s_i
    if t >= t0 + n * dt:
        return s_f
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (n * dt)) ** 3


class MagnitudePruner:
    """Fine-grained magnitude pruning on the gradual schedule: every `dt` optimizer steps
    from t0 for n updates, each layer's smallest-magnitude weights are zeroed up to s_t;
    between updates the mask is re-applied after every step (pruned weights stay 0)."""

    def __init__(self, model: nn.Module, final: float, initial: float = 0.0, t0: int = 0, n: int = 10,
                 dt: int = 100):
        if not 0.0 <= initial <= final < 1.0:
            raise ModelError(f"sparsity must satisfy 0 <= initial ({initial}) <= final ({final}) < 1")
        self.layers = weight_layers(model)
        self.final, self.initial, self.t0, self.n, self.dt = final, initial, t0, n, dt
        self.t = 0
        self.masks = [torch.ones_like(m.weight, dtype=torch.bool) for m in self.layers]
        self.target = 0.0
        self._update(sparsity_schedule(0, initial, final, t0, n, dt))

    @torch.no_grad()
    def _update(self, s: float) -> None:
        self.target = s
        for m, mask in zip(self.layers, self.masks):
            k = int(math.floor(s * m.weight.numel()))
            if k == 0:
                continue
            mag = m.weight.abs().masked_fill(~mask, -1.0).reshape(-1)  # pruned first
            idx = torch.topk(mag, k, largest=False).indices
            mask.view(-1)[idx] = False
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        for m, mask in zip(self.layers, self.masks):
            m.weight.mul_(mask)

    def step(self) -> None:
        """After each optimizer step."""
        self.t += 1
        if self.t0 <= self.t <= self.t0 + self.n * self.dt and (self.t - self.t0) % self.dt == 0:
            self._update(sparsity_schedule(self.t, self.initial, self.final, self.t0, self.n, self.dt))
        else:
            self.apply()

    def sparsity(self) -> list[float]:
        return [1.0 - float(mask.float().mean()) for mask in self.masks]


def _hidden_pairs(model: QuantMLP) -> list[tuple[nn.Module, nn.Module, nn.Module]]:
    """(linear l, its BatchNorm, the next linear) for each hidden layer of an MLP."""
    lin = [m for m in model.features if isinstance(m, qnn.QuantLinear)]
    bns = [m for m in model.features if isinstance(m, nn.BatchNorm1d)]
    nxt = lin[1:] + [model.classifier]
    return list(zip(lin, bns, nxt))


def neuron_norms(model: QuantMLP) -> list[torch.Tensor]:
    """Per hidden neuron: the L2 norm of its BatchNorm's (gamma, beta). A neuron's weights
    feed a BatchNorm, which undoes any scaling of them, so a penalty on the weights only
    shrinks whole layers; with gamma = beta = 0 the neuron outputs act(0) = 0 for every
    input and can be removed without changing the network."""
    return [torch.sqrt(bn.weight ** 2 + bn.bias ** 2) for _, bn, _ in _hidden_pairs(model)]


def group_lasso_prox(model: QuantMLP, tau: float):
    """Group lasso over hidden neurons (a group per neuron: its BatchNorm's (gamma, beta)),
    applied as the proximal step g <- g * max(0, 1 - tau / ||g||) after every optimizer step
    (proximal gradient with step x lambda = tau). Unlike a penalty term under Adam, whose
    normalised steps shrink every group alike, the proximal step zeroes the weak groups
    exactly while the loss's gradient keeps the useful ones."""
    pairs = _hidden_pairs(model)

    @torch.no_grad()
    def prox():
        for _, bn, _ in pairs:
            norm = torch.sqrt(bn.weight ** 2 + bn.bias ** 2)
            f = torch.clamp(1.0 - tau / norm.clamp_min(1e-12), min=0.0)
            bn.weight.mul_(f)
            bn.bias.mul_(f)
    return prox


def shrink_mlp(model: QuantMLP, name: str, keep: list[np.ndarray]) -> Compressed:
    """Remove hidden neurons: rows of layer l, its BatchNorm entries, columns of layer l+1.
    `keep[l]`: indices of the neurons of hidden layer l to keep."""
    if not isinstance(model, QuantMLP):
        raise ModelError(f"{name}: structured (neuron) pruning is implemented for the MLPs (tfc, sfc, lfc)")
    widths = [int(len(k)) for k in keep]
    new = build_model(name, widths=widths)
    src, dst = _hidden_pairs(model), _hidden_pairs(new)
    with torch.no_grad():
        new.input_quant.load_state_dict(model.input_quant.state_dict())
        for i, ((lin, bn, _), (nlin, nbn, _)) in enumerate(zip(src, dst)):
            rows = torch.as_tensor(keep[i])
            cols = torch.as_tensor(keep[i - 1]) if i > 0 else torch.arange(lin.weight.shape[1])
            nlin.weight.copy_(lin.weight[rows][:, cols])
            for attr in ("weight", "bias", "running_mean", "running_var"):
                getattr(nbn, attr).copy_(getattr(bn, attr)[rows])
            nbn.num_batches_tracked.copy_(bn.num_batches_tracked)
        new.classifier.weight.copy_(model.classifier.weight[:, torch.as_tensor(keep[-1])])
        acts_src = [m for m in model.features if not isinstance(m, (qnn.QuantLinear, nn.BatchNorm1d, nn.Dropout))]
        acts_dst = [m for m in new.features if not isinstance(m, (qnn.QuantLinear, nn.BatchNorm1d, nn.Dropout))]
        for a, b in zip(acts_src, acts_dst):
            b.load_state_dict(a.state_dict())
    return Compressed(new.eval(), name, {"widths": widths}, {})


def select_neurons(model: QuantMLP, rel_threshold: float, multiple: int = 1) -> list[np.ndarray]:
    """Per hidden layer, the neurons whose outgoing-weight norm is at least `rel_threshold`
    times the layer's largest, rounded up to a multiple of `multiple` neurons (the
    strongest kept), so that FINN's folding finds divisors; at least `multiple`."""
    keep = []
    for i, norms in enumerate(neuron_norms(model)):
        v = norms.detach().numpy()
        if not np.isfinite(v).all() or v.max() <= 0:
            raise ModelError(f"group lasso zeroed every neuron of hidden layer {i}; use a smaller tau "
                             "(qnnflow compress neurons --tau)")
        n = int((v >= rel_threshold * v.max()).sum())
        n = min(len(v), max(multiple, int(math.ceil(n / multiple)) * multiple))
        keep.append(np.sort(np.argsort(-v, kind="stable")[:n]))
    return keep


def default_widths(name: str) -> list[int]:
    mn = parse_name(name)
    if mn.arch not in MLP_WIDTHS:
        return []
    return [MLP_WIDTHS[mn.arch]] * (len(layer_presets(mn.preset, 4)) - 1)
