"""The compression methods that train: gradual magnitude pruning and neuron pruning by
group lasso, each fine-tuning a zoo model on MNIST with qnnflow's training loop
(models.train: Adam, cosine decay, best epoch on the validation split)."""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from ..data import load_mnist
from ..train import TrainConfig, fit, evaluate
from . import core


def mnist_splits():
    return load_mnist("train"), load_mnist("val"), load_mnist("test")


def train_config(name: str, seed: int, lr: float, threads: int) -> TrainConfig:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(threads)
    return TrainConfig(name=name, lr=lr, seed=seed, threads=threads, dropout=0.0)


def magnitude_prune(base, base_name: str, sparsity: float, prune_epochs: int = 6, finetune_epochs: int = 4,
                    lr: float = 1e-3, updates: int = 10, seed: int = 0, threads: int = 2,
                    progress=None) -> core.Compressed:
    """Fine-grained pruning of every weight layer to `sparsity` on the gradual schedule
    (s_i = 0, `updates` mask updates spread over the pruning epochs), then fine-tuning with
    the mask fixed; the best validation epoch of the fine-tuning is kept."""
    t_start = time.time()
    model = copy.deepcopy(base).train()
    train_s, val_s, test_s = mnist_splits()
    cfg = train_config(base_name, seed, lr, threads)
    steps = math.ceil(len(train_s.x) / cfg.batch_size)
    dt = max(1, int(prune_epochs * steps * 0.75) // updates)  # schedule ends at 3/4 of the pruning phase
    pruner = core.MagnitudePruner(model, sparsity, 0.0, t0=0, n=updates, dt=dt)
    h1, _ = fit(cfg, model, prune_epochs, lr, progress, (train_s, val_s), f"prune to {sparsity:.0%}",
                 after_step=pruner.step)
    pruner.apply()
    history = h1
    if finetune_epochs > 0:
        h2, best = fit(cfg, model, finetune_epochs, lr * 0.5, progress, (train_s, val_s), "fine-tune (mask fixed)",
                        after_step=pruner.apply)
        model.load_state_dict(best["state"])
        history += [{**e, "phase": "finetune"} for e in h2]
    model.eval()
    info = {"method": "magnitude-prune", "sparsity": sparsity, "layer_sparsity": pruner.sparsity(),
            "schedule": {"s_i": 0.0, "s_f": sparsity, "t0": 0, "n": updates, "dt": dt},
            "prune_epochs": prune_epochs, "finetune_epochs": finetune_epochs, "lr": lr, "seed": seed,
            "val_accuracy": evaluate(model, val_s.x, val_s.y), "test_accuracy": evaluate(model, test_s.x, test_s.y),
            "train_seconds": round(time.time() - t_start, 1), "history": history}
    return core.Compressed(model, base_name, core._arch_kwargs(base), info)


def neuron_prune(base, base_name: str, tau: float = 7.5e-4, rel_threshold: float = 0.05, multiple: int = 4,
                 lasso_epochs: int = 4, finetune_epochs: int = 4, lr: float = 1e-3, seed: int = 0,
                 threads: int = 2, progress=None) -> core.Compressed:
    """Structured pruning of an MLP's hidden neurons: fine-tune with group lasso on each
    neuron's BatchNorm (gamma, beta) (proximal steps of size `tau`), remove the neurons
    whose group norm fell below
    `rel_threshold` x the layer's largest (keeping a multiple of `multiple`), fine-tune the
    narrower network."""
    t_start = time.time()
    model = copy.deepcopy(base).train()
    if not isinstance(model, core.QuantMLP):
        raise core.ModelError(f"{base_name}: structured (neuron) pruning is implemented for the MLPs (tfc, sfc, lfc)")
    train_s, val_s, test_s = mnist_splits()
    cfg = train_config(base_name, seed, lr, threads)
    # activation scales frozen: with them learnable, shrinking every neuron alike costs
    # nothing (the scales follow), and the lasso collapses whole layers instead of choosing
    trainable = [p for n, p in model.named_parameters() if ".act_quant." not in n and not n.startswith("input_quant")]
    h1, _ = fit(cfg, model, lasso_epochs, lr, progress, (train_s, val_s), f"group lasso (prox {tau:g})",
                 after_step=core.group_lasso_prox(model, tau), params=trainable)
    keep = core.select_neurons(model, rel_threshold, multiple)
    norms = [n.detach().numpy().round(5).tolist() for n in core.neuron_norms(model)]
    small = core.shrink_mlp(model, base_name, keep)
    before_ft = evaluate(small.model, val_s.x, val_s.y)
    net = small.model.train()
    history = h1
    if finetune_epochs > 0:
        h2, best = fit(cfg, net, finetune_epochs, lr * 0.5, progress, (train_s, val_s), "fine-tune (pruned)")
        net.load_state_dict(best["state"])
        history += [{**e, "phase": "finetune"} for e in h2]
    net.eval()
    small.info = {"method": "neuron-prune", "tau": tau, "rel_threshold": rel_threshold, "multiple": multiple,
                  "widths_before": core.default_widths(base_name), "widths": small.arch_kwargs["widths"],
                  "neuron_norms": norms, "val_before_finetune": before_ft,
                  "lasso_epochs": lasso_epochs, "finetune_epochs": finetune_epochs, "lr": lr, "seed": seed,
                  "val_accuracy": evaluate(net, val_s.x, val_s.y), "test_accuracy": evaluate(net, test_s.x, test_s.y),
                  "train_seconds": round(time.time() - t_start, 1), "history": history}
    return small
