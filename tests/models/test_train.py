"""Training: resume after an interruption, --init from another checkpoint, shift augmentation."""
from __future__ import annotations

import pytest
import torch

from flow.cli import main
from models.errors import ModelError
from models.train import TrainConfig, init_from, shift_batch, state_path, train
from models.zoo import build_model, load_checkpoint


class _KillAfter:
    """A progress sink that interrupts training after `n` finished epochs (state already saved)."""

    def __init__(self, n):
        self.n = n

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt


def _cfg(**kw):
    return TrainConfig(name="tfc-w1a1", epochs=2, threads=1, shift=1, **kw)


def test_resumed_run_equals_uninterrupted(tmp_path):
    whole = tmp_path / "whole.pt"
    train(_cfg(), whole)
    assert not state_path(whole).exists()  # the state goes once the checkpoint is written
    part = tmp_path / "part.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(), part, progress=_KillAfter(1))
    assert state_path(part).is_file() and not part.exists()
    meta = train(_cfg(resume=True), part)
    a, ma = load_checkpoint(whole)
    b, mb = load_checkpoint(part)
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    assert [h["val"] for h in ma["history"]] == [h["val"] for h in mb["history"]]
    assert meta["best_epoch"] == ma["best_epoch"] and len(mb["history"]) == 2


def test_resume_refuses_other_settings(tmp_path):
    out = tmp_path / "m.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(), out, progress=_KillAfter(1))
    with pytest.raises(ModelError, match=r"other settings: lr 0.01 \(now 0.02\)"):
        train(_cfg(resume=True, lr=0.02), out)
    state_path(out).write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot be read"):
        train(_cfg(resume=True), out)


def test_init_copies_matching_weights(tmp_path):
    # from another precision: every weight and batch-norm tensor of matching shape is copied
    model = build_model("tfc-w1a1")
    src, _ = load_checkpoint("models/checkpoints/tfc-w2a2.pt")
    taken = init_from(model, "models/checkpoints/tfc-w2a2.pt")
    assert "features.0.weight" in taken and "features.1.running_mean" in taken
    assert torch.equal(model.features[0].weight, src.features[0].weight)
    # fine-tuning the shipped tfc-w1a1 for one epoch at a small lr starts where it left off
    meta = train(TrainConfig(name="tfc-w1a1", epochs=1, lr=1e-4, threads=1,
                             init="models/checkpoints/tfc-w1a1.pt"), tmp_path / "i.pt")
    assert meta["config"]["init"] == "models/checkpoints/tfc-w1a1.pt" and meta["val_accuracy"] > 93.0
    parent = meta["config"]["extra"]["init_from"]  # provenance of the starting point
    assert parent["command"].startswith("qnnflow train tfc-w1a1") and parent["test_accuracy"] == 95.09
    with pytest.raises(ModelError, match="shares no weight of matching shape"):
        train(TrainConfig(name="sfc-w1a1", epochs=1, init="models/checkpoints/tfc-w2a2.pt"), tmp_path / "x.pt")


def test_shift_moves_images_on_the_grid():
    x = torch.zeros(3, 784)
    x[:, 14 * 28 + 14] = 5 / 256
    g = torch.Generator().manual_seed(0)
    y = shift_batch(x, 2, g)
    assert y.shape == x.shape
    assert torch.all((y * 256).round() == y * 256) and torch.all(y.sum(1) == 5 / 256)
    assert torch.equal(shift_batch(x, 0, g), x)


def test_cli_resume_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "tfc-w1a1", "--shift", "9"])
    assert exc.value.code == 2 and "invalid choice: 9" in capsys.readouterr().err
    assert main(["train", "tfc-po2", "--resume", "--epochs", "1"]) == 2
    assert "not available for INQ" in capsys.readouterr().err
