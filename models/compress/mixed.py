"""Per-layer mixed precision by a continuous relaxation (differentiable search).

Each weight layer l holds logits alpha_l over the candidate bit-widths; the forward pass
uses W_l = sum_k softmax(alpha_l)_k Q_bk(W_l), Q_b being b-bit symmetric linear
quantization with a straight-through gradient (per output channel in hidden layers, per
layer in the classifier, as the presets do). The loss adds a penalty when the expected
cost sum_l sum_k p_lk cost_l(b_k) exceeds a budget; the cost is the weight memory
(parameters x bits) or any per-layer table, e.g. FINN's resource estimates
(flow.compress passes one). Weights and logits train together by gradient descent; each
layer then takes its most probable width, lowered greedily where the budget is exceeded,
and the result is a `mix:` preset that the flow builds. Activations keep the base's bits.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from brevitas import nn as qnn
from torch import nn

from ..errors import ModelError
from ..mlp import QuantMLP
from ..train import fit, evaluate
from ..zoo import build_model, parse_name
from . import core
from .finetune import train_config, mnist_splits

CANDIDATES = (2, 3, 4, 5, 6, 8)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def fake_quant(w: torch.Tensor, bits: int, per_channel: bool) -> torch.Tensor:
    qmax = 2 ** (bits - 1) - 1
    top = w.abs().amax(dim=1, keepdim=True) if per_channel else w.abs().max()
    s = top.clamp_min(1e-12) / qmax
    return torch.clamp(_RoundSTE.apply(w / s), -qmax, qmax) * s


def _value(x):
    return x.value if hasattr(x, "value") else x


class RelaxedMLP(nn.Module):
    """A copy of a trained QuantMLP whose weight layers use the softmax-weighted mixture of
    their quantizations at the candidate widths."""

    def __init__(self, base: QuantMLP, candidates=CANDIDATES, costs: list[dict] | None = None):
        super().__init__()
        if not isinstance(base, QuantMLP):
            raise ModelError("mixed precision search is implemented for the MLPs (tfc, sfc, lfc)")
        self.net = copy.deepcopy(base)
        self.layers = core.weight_layers(self.net)
        self.candidates = tuple(candidates)
        self.alpha = nn.Parameter(torch.zeros(len(self.layers), len(self.candidates)))
        if costs is None:  # weight memory in bits
            costs = [{b: float(m.weight.numel() * b) for b in self.candidates} for m in self.layers]
        self.register_buffer("cost", torch.tensor([[float(c[b]) for b in self.candidates] for c in costs]))

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.alpha, dim=1)

    def _weight(self, i: int) -> torch.Tensor:
        w = self.layers[i].weight
        pc = self.layers[i] is not self.net.classifier
        p = self.probs()[i]
        return sum(p[k] * fake_quant(w, b, pc) for k, b in enumerate(self.candidates))

    def forward(self, x):
        x = self.net.input_quant(x if x.dim() == 2 else x.flatten(1))
        i = 0
        for m in self.net.features:
            if isinstance(m, qnn.QuantLinear):
                x = F.linear(_value(x), self._weight(i))
                i += 1
            else:
                x = m(_value(x) if isinstance(m, nn.BatchNorm1d) else x)
        return F.linear(_value(x), self._weight(i))

    def expected_cost(self) -> torch.Tensor:
        return (self.probs() * self.cost).sum()

    def cost_of(self, bits: list[int]) -> float:
        return float(sum(self.cost[i, self.candidates.index(b)] for i, b in enumerate(bits)))


def select(relaxed: RelaxedMLP, budget: float) -> list[int]:
    """Each layer's most probable width; while over budget, lower the layer whose next
    lower width is the most probable; then, while the budget allows, raise the layer whose
    next higher width is the most probable."""
    p = relaxed.probs().detach().numpy()
    cand = relaxed.candidates
    choice = [int(np.argmax(row)) for row in p]
    while relaxed.cost_of([cand[c] for c in choice]) > budget * (1 + 1e-9):
        options = [(p[i, c - 1], i) for i, c in enumerate(choice) if c > 0]
        if not options:
            break
        _, i = max(options)
        choice[i] -= 1
    while True:
        options = sorted(((p[i, c + 1], i) for i, c in enumerate(choice) if c + 1 < len(cand)), reverse=True)
        for _, i in options:
            trial = list(choice)
            trial[i] += 1
            if relaxed.cost_of([cand[c] for c in trial]) <= budget * (1 + 1e-9):
                choice = trial
                break
        else:
            return [cand[c] for c in choice]


def search(base, base_name: str, budget_bits: int, epochs: int = 3, finetune_epochs: int = 6,
           candidates=CANDIDATES, costs: list[dict] | None = None, penalty: float = 5.0,
           lr: float = 1e-3, alpha_lr: float = 0.05, seed: int = 0, threads: int = 2,
           progress=None) -> core.Compressed:
    """Search per-layer weight bits under the cost of uniform `budget_bits` weights, then
    fine-tune the chosen mix. Returns the mix model (a `mix:` preset of the base's arch)."""
    t_start = time.time()
    acts = core.base_acts(base_name)
    arch = parse_name(base_name).arch
    if budget_bits not in candidates:
        raise ModelError(f"budget {budget_bits} bits is not among the candidate widths {list(candidates)}")
    train_s, val_s, test_s = mnist_splits()
    cfg = train_config(base_name, seed, lr, threads)
    relaxed = RelaxedMLP(base, candidates, costs)
    budget = relaxed.cost_of([budget_bits] * len(relaxed.layers))

    def over_budget():
        return penalty * torch.relu(relaxed.expected_cost() / budget - 1.0)

    weights = [p for n, p in relaxed.named_parameters() if n != "alpha"]
    h1, _ = fit(cfg, relaxed, epochs, lr, progress, (train_s, val_s), f"mixed-precision search ({budget_bits}-bit budget)",
                 penalty=over_budget, params=[{"params": weights, "lr": lr}, {"params": [relaxed.alpha], "lr": alpha_lr}])
    bits = select(relaxed, budget)
    name = f"{arch}-mix:" + ",".join(f"w{b}a{acts}" for b in bits)
    model = build_model(name, **core._arch_kwargs(base))
    missing, unexpected = model.load_state_dict(relaxed.net.state_dict(), strict=False)
    if missing or unexpected:
        raise ModelError(f"mixed precision: the searched state does not load into {name}")
    model.train()
    history = [{**e, "phase": "search"} for e in h1]
    if finetune_epochs > 0:
        h2, best = fit(cfg, model, finetune_epochs, lr * 0.5, progress, (train_s, val_s), f"fine-tune {name}")
        model.load_state_dict(best["state"])
        history += [{**e, "phase": "finetune"} for e in h2]
    model.eval()
    info = {"method": "mixed-precision", "budget_bits": budget_bits, "bits": bits,
            "cost": "table" if costs is not None else "weight_bits", "budget": budget,
            "chosen_cost": relaxed.cost_of(bits), "probs": relaxed.probs().detach().numpy().round(4).tolist(),
            "candidates": list(candidates), "search_epochs": epochs, "finetune_epochs": finetune_epochs,
            "penalty": penalty, "lr": lr, "alpha_lr": alpha_lr, "seed": seed,
            "val_accuracy": evaluate(model, val_s.x, val_s.y), "test_accuracy": evaluate(model, test_s.x, test_s.y),
            "train_seconds": round(time.time() - t_start, 1), "history": history}
    return core.Compressed(model, name, core._arch_kwargs(base), info)


def uniform(base, base_name: str, bits: int, finetune_epochs: int = 6, lr: float = 1e-3, seed: int = 0,
            threads: int = 2, progress=None) -> core.Compressed:
    """The baseline at equal size: every layer at `bits`, fine-tuned as long as the mix."""
    t_start = time.time()
    model, name, _ = core._rebuild(base, base_name, f"w{bits}a{core.base_acts(base_name)}")
    train_s, val_s, test_s = mnist_splits()
    cfg = train_config(base_name, seed, lr, threads)
    model.train()
    history = []
    if finetune_epochs > 0:
        history, best = fit(cfg, model, finetune_epochs, lr * 0.5, progress, (train_s, val_s), f"fine-tune {name}")
        model.load_state_dict(best["state"])
    model.eval()
    info = {"method": "uniform", "bits": [bits] * len(core.weight_layers(model)), "finetune_epochs": finetune_epochs,
            "lr": lr, "seed": seed, "val_accuracy": evaluate(model, val_s.x, val_s.y),
            "test_accuracy": evaluate(model, test_s.x, test_s.y),
            "train_seconds": round(time.time() - t_start, 1), "history": history}
    return core.Compressed(model, name, core._arch_kwargs(base), info)
