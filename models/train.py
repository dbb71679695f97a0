"""Training on MNIST with validation each epoch and a best-on-validation checkpoint."""
from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import data_checksum, load_mnist
from .zoo import build_model, parse_name, save_checkpoint

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    name: str
    epochs: int = 40
    batch_size: int = 100
    lr: float = 0.01
    weight_decay: float = 0.0
    dropout: float = 0.1
    seed: int = 0
    threads: int = 2
    command: str = ""
    extra: dict = field(default_factory=dict)


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(torch.from_numpy(x[i:i + batch]))
            correct += int((out.argmax(1).numpy() == y[i:i + batch]).sum())
    return 100.0 * correct / len(x)


def train(cfg: TrainConfig, out: Path, progress=None) -> dict:
    """Train `cfg.name`, keep the epoch with the best validation accuracy, save it to `out`."""
    mn = parse_name(cfg.name)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    train_s, val_s, test_s = load_mnist("train"), load_mnist("val"), load_mnist("test")
    model = build_model(cfg.name, dropout=cfg.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_s.x) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, yt = torch.from_numpy(train_s.x), torch.from_numpy(train_s.y)
    best = {"val": -1.0}
    history = []
    t0 = time.time()
    task = progress.add_task(f"train {cfg.name}", total=cfg.epochs) if progress else None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        running = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
        val = evaluate(model, val_s.x, val_s.y)
        history.append({"epoch": epoch, "loss": running / steps_per_epoch, "val": val})
        log.info("epoch %d/%d loss %.4f val %.2f%%", epoch, cfg.epochs, running / steps_per_epoch, val)
        if val > best["val"]:
            best = {"val": val, "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        if progress:
            progress.update(task, advance=1, description=f"train {cfg.name} val {val:.2f}% (best {best['val']:.2f}%)")
    model.load_state_dict(best["state"])
    test = evaluate(model, test_s.x, test_s.y)
    meta = {
        "name": cfg.name, "arch": mn.arch, "preset": mn.preset,
        "test_accuracy": test, "val_accuracy": best["val"], "best_epoch": best["epoch"],
        "seed": cfg.seed, "epochs": cfg.epochs, "train_seconds": round(time.time() - t0, 1),
        "data_sha256": data_checksum(), "command": cfg.command,
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("command",)},
        "torch": str(torch.__version__), "python": platform.python_version(),
        "history": history,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_checkpoint(tmp, model, meta)
    tmp.replace(out)
    return meta
