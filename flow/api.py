"""The Python API: build any Brevitas module a user brings."""
from __future__ import annotations

from pathlib import Path

from .config import BuildConfig


def build(module, out_dir: str | Path, input_shape: tuple[int, ...] | None = None, **config) -> dict:
    """Build a Brevitas `nn.Module` into a verified dataflow accelerator; return report.json's dict.

    `input_shape` is one sample's shape (e.g. (784,) or (1, 28, 28)); the accelerator's
    input is an integer of `input_dtype` (default UINT8) and the module sees
    `input * input_scale` (default 1/256: MNIST pixels). Other keyword arguments are
    BuildConfig fields (board, target_fps, folding, samples, force, ...).
    """
    from .pipeline import run_build

    cfg = BuildConfig(out=Path(out_dir), module=module, **config)
    if input_shape is not None:
        cfg.extra["input_shape"] = tuple(input_shape)
    return run_build(cfg)
