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
from .errors import ModelError
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
    shift: int = 0  # random-shift augmentation, pixels (0: none)
    init: str = ""  # checkpoint whose matching weights start the run (a float or wider model)
    resume: bool = False  # continue from the training state next to the output
    command: str = ""
    extra: dict = field(default_factory=dict)
    # wall time: when this process started training, and what earlier (resumed) runs took
    started: float = field(default=0.0, repr=False)
    seconds_before: float = field(default=0.0, repr=False)


_NOT_RECORDED = ("command", "resume", "started", "seconds_before")


def state_path(out: Path) -> Path:
    """Where the training state of the run writing checkpoint `out` is kept between epochs."""
    return out.with_name(out.name + ".state")


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
    inq_run = mn.preset == "po2"
    if inq_run and mn.arch not in ("tfc", "sfc", "lfc"):
        raise ModelError(f"{cfg.name}: INQ training (po2) is implemented for the MLPs (tfc, sfc, lfc) so far")
    if inq_run and (cfg.resume or cfg.init):
        raise ModelError(f"{cfg.name}: --resume and --init are not available for INQ (po2) training")
    model = build_model(cfg.name, dropout=cfg.dropout, float_weights=inq_run)
    if cfg.init:
        init_from(model, cfg.init, cfg)
    cfg.started = time.time()
    if inq_run:
        return _train_inq(cfg, model, out, progress, cfg.started, (train_s, val_s, test_s))
    state = state_path(out)
    if not cfg.resume:
        state.unlink(missing_ok=True)
    elif not state.is_file():
        log.info("%s: no training state at %s; starting at epoch 1", cfg.name, state)
    history, best = fit(cfg, model, cfg.epochs, cfg.lr, progress, (train_s, val_s), f"train {cfg.name}",
                        state_file=state)
    model.load_state_dict(best["state"])
    meta = _finish(cfg, model, out, best, history, test_s, cfg.started)
    state.unlink(missing_ok=True)
    return meta


def init_from(model: nn.Module, path: str, cfg: TrainConfig | None = None) -> list[str]:
    """Copy every tensor of checkpoint `path` whose name and shape match into `model` (a
    float, wider-precision or earlier run of the same architecture); the others (quantizer
    scales of another precision) keep their initial values. Returns the names copied."""
    from .zoo import load_checkpoint

    src, meta = load_checkpoint(path)
    own = model.state_dict()
    taken = {k: v for k, v in src.state_dict().items() if k in own and own[k].shape == v.shape}
    if not any(k.endswith("weight") for k in taken):
        raise ModelError(f"--init {path}: the checkpoint ({meta.get('arch')}-{meta.get('preset')}) shares no "
                         "weight of matching shape with this model; use a checkpoint of the same architecture")
    model.load_state_dict(taken, strict=False)
    if cfg is not None:  # provenance: how the starting point was made, down the chain of --init runs
        cfg.extra["init_from"] = {"path": str(path), "command": meta.get("command"),
                                  "test_accuracy": meta.get("test_accuracy"),
                                  "init_from": (meta.get("config") or {}).get("extra", {}).get("init_from")}
    log.info("initialised %d of %d tensors from %s", len(taken), len(own), path)
    return sorted(taken)


def shift_batch(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each 28x28 image moved by its own random offset of up to `shift` pixels in x and y,
    zero-filled. Pixels stay k/256, so the augmented images are on the input quantizer's grid."""
    if shift <= 0:
        return x
    b = x.shape[0]
    side = 28
    padded = nn.functional.pad(x.reshape(b, side, side), (shift, shift, shift, shift))
    oy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
    ar = torch.arange(side)
    rows = (oy[:, None] + ar[None, :])[:, :, None]
    cols = (ox[:, None] + ar[None, :])[:, None, :]
    return padded[torch.arange(b)[:, None, None], rows, cols].reshape(x.shape)


def fit(cfg: TrainConfig, model: nn.Module, epochs: int, lr: float, progress, data, label: str,
        after_step=None, penalty=None, params=None, state_file: Path | None = None) -> tuple[list, dict]:
    """Adam with cosine decay; validation each epoch; the best epoch's state.
    after_step(): called after each optimizer step (masks, frozen weights); penalty():
    a regularisation term added to the loss (group lasso, size); params: what the
    optimizer updates (default: all of the model's parameters; or param groups).
    state_file: after every epoch the whole training state (model, optimizer, schedule,
    random generators, best epoch, history) is written there atomically; if it exists when
    fit starts, training continues from it, so an interrupted run resumed gives the same
    weights as an uninterrupted one."""
    train_s, val_s = data
    opt = torch.optim.Adam(model.parameters() if params is None else params, lr=lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_s.x) / cfg.batch_size)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    aug = torch.Generator().manual_seed(cfg.seed + 1)
    xt, yt = torch.from_numpy(train_s.x), torch.from_numpy(train_s.y)
    best = {"val": -1.0}
    history = []
    start = 1
    if state_file is not None and state_file.is_file():
        start, best, history = _load_state(state_file, cfg, model, opt, sched, gen, aug)
    task = progress.add_task(label, total=epochs, completed=start - 1) if progress else None
    for epoch in range(start, epochs + 1):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        running = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(shift_batch(xt[idx], cfg.shift, aug)), yt[idx])
            if penalty is not None:
                loss = loss + penalty()
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            sched.step()
            running += loss.item()
        val = evaluate(model, val_s.x, val_s.y)
        history.append({"epoch": epoch, "loss": running / steps_per_epoch, "val": val})
        log.info("epoch %d/%d loss %.4f val %.2f%%", epoch, epochs, running / steps_per_epoch, val)
        if val > best["val"]:
            best = {"val": val, "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        if state_file is not None:
            _save_state(state_file, cfg, epoch, model, opt, sched, gen, aug, best, history)
        if progress:
            progress.update(task, advance=1, description=f"{label} epoch {epoch} val {val:.2f}% "
                                                         f"(best {best['val']:.2f}% at {best['epoch']})")
    return history, best


# what a saved training state must agree on with the run that continues it
_RESUME_KEYS = ("name", "epochs", "batch_size", "lr", "weight_decay", "dropout", "seed", "shift", "init")


def _save_state(path: Path, cfg, epoch, model, opt, sched, gen, aug, best, history) -> None:
    state = {"format": "qnnflow-train-state-1", "config": {k: getattr(cfg, k) for k in _RESUME_KEYS},
             "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "generator": gen.get_state(), "augment": aug.get_state(),
             "torch_rng": torch.get_rng_state(), "best": best, "history": history,
             "seconds": cfg.seconds_before + time.time() - cfg.started}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp)
    tmp.replace(path)


def _load_state(path: Path, cfg, model, opt, sched, gen, aug):
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise ModelError(f"training state {path} cannot be read ({exc.__class__.__name__}); "
                         f"delete it to start {cfg.name} again") from None
    if not isinstance(st, dict) or st.get("format") != "qnnflow-train-state-1":
        raise ModelError(f"{path} is not a qnnflow training state; delete it to start {cfg.name} again")
    saved = st["config"]
    diff = [f"{k} {saved.get(k)!r} (now {getattr(cfg, k)!r})" for k in _RESUME_KEYS if saved.get(k) != getattr(cfg, k)]
    if diff:
        raise ModelError(f"training state {path} was saved with other settings: {', '.join(diff)}; "
                         "resume with the same options or delete it to start again")
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    gen.set_state(st["generator"])
    aug.set_state(st["augment"])
    torch.set_rng_state(st["torch_rng"])
    cfg.seconds_before = float(st["seconds"])
    log.info("%s: resuming after epoch %d of %d from %s", cfg.name, st["epoch"], cfg.epochs, path)
    return st["epoch"] + 1, st["best"], st["history"]


def _train_inq(cfg, model, out, progress, t0, data):
    """Float pre-training, then INQ: freeze 50/75/87.5/100 % of the weights as powers of two,
    retraining the rest in between; finally normalise each layer so its largest power is 2^0
    (batch norm and the float tail absorb the factor) and load into the po2-quantized model."""
    from .inq import DEFAULT_SCHEDULE, INQ
    from .zoo import build_model as _build

    train_s, val_s, test_s = data
    pre = int(cfg.extra.get("inq_pretrain_epochs", max(1, cfg.epochs // 2)))
    retrain = int(cfg.extra.get("inq_retrain_epochs", max(1, (cfg.epochs - pre) // 3)))
    history, best = fit(cfg, model, pre, cfg.lr, progress, (train_s, val_s), f"train {cfg.name} (float)")
    model.load_state_dict(best["state"])
    inq = INQ(model)
    for share in DEFAULT_SCHEDULE:
        inq.quantize_share(share)
        if share < 1.0:
            h, _ = fit(cfg, model, retrain, cfg.lr * 0.1, progress, (train_s, val_s),
                        f"INQ {share:.1%} frozen", after_step=inq.restore)
            history += [{**e, "inq_share": share} for e in h]
    inq.restore()
    inq.remove()
    _normalise_po2(model)
    final = _build(cfg.name)
    final.load_state_dict(model.state_dict())
    final.eval()
    val = evaluate(final, val_s.x, val_s.y)
    best = {"val": val, "epoch": len(history)}
    return _finish(cfg, final, out, best, history, test_s, t0,
                   extra={"inq": {"schedule": list(DEFAULT_SCHEDULE), "pretrain_epochs": pre,
                                  "retrain_epochs": retrain, "bits": 5}})


@torch.no_grad()
def _normalise_po2(model: nn.Module) -> None:
    """Scale each layer's power-of-two weights by 2^-n1 (largest |w| -> 1): exact in float;
    the following BatchNorm's statistics take the factor, the classifier's logits only scale."""
    layers = list(model.features) + [model.classifier]
    for i, m in enumerate(layers):
        if not hasattr(m, "weight") or isinstance(m, nn.BatchNorm1d):
            continue
        top = float(m.weight.abs().max())
        if top == 0:
            continue
        c = 2.0 ** -round(math.log2(top))
        m.weight.mul_(c)
        if i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm1d):
            layers[i + 1].running_mean.mul_(c)
            layers[i + 1].running_var.mul_(c * c)


def _finish(cfg, model, out, best, history, test_s, t0, extra=None) -> dict:
    mn = parse_name(cfg.name)
    test = evaluate(model, test_s.x, test_s.y)
    meta = {
        "name": cfg.name, "arch": mn.arch, "preset": mn.preset,
        "test_accuracy": test, "val_accuracy": best["val"], "best_epoch": best["epoch"],
        "seed": cfg.seed, "epochs": cfg.epochs,
        "train_seconds": round(cfg.seconds_before + time.time() - t0, 1),
        "data_sha256": data_checksum(), "command": cfg.command,
        "config": {k: v for k, v in asdict(cfg).items() if k not in _NOT_RECORDED},
        "torch": str(torch.__version__), "python": platform.python_version(),
        "history": history,
        **(extra or {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_checkpoint(tmp, model, meta)
    tmp.replace(out)
    return meta
