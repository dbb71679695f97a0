"""The Python API: build any Brevitas module a user brings."""
from __future__ import annotations

from pathlib import Path

from .config import BuildConfig
from .errors import FlowError


def build(module, *args, input_shape: tuple[int, ...] | None = None, **config) -> dict:
    """Build a Brevitas `nn.Module` into a verified dataflow accelerator; return report.json's dict.

        flow.build(module, example_input, out_dir, **config)   # example_input: a batch, e.g. torch.zeros(1, 784)
        flow.build(module, out_dir, input_shape=(784,), **config)

    One sample's shape comes from `example_input` (its first axis is the batch) or
    `input_shape`; the accelerator's input is an integer of `input_dtype` (default UINT8)
    and the module sees `input * input_scale` (default 1/256: MNIST pixels). Other keyword
    arguments are BuildConfig fields (board, target_fps, folding, samples, topk, force, ...).
    """
    from .pipeline import run_build

    if len(args) == 2:
        example, out_dir = args
        shape = tuple(getattr(example, "shape", ()))
        if len(shape) < 2:
            raise FlowError(f"example_input of shape {shape} has no batch axis; pass e.g. torch.zeros(1, 784)")
        if input_shape is not None and tuple(input_shape) != shape[1:]:
            raise FlowError(f"input_shape {tuple(input_shape)} contradicts example_input's sample shape {shape[1:]}")
        input_shape = shape[1:]
    elif len(args) == 1:
        out_dir = args[0]
    else:
        raise FlowError("call flow.build(module, example_input, out_dir, **config) "
                        "or flow.build(module, out_dir, input_shape=..., **config)")
    cfg = BuildConfig(out=Path(out_dir), module=module, input_shape=None if input_shape is None else tuple(input_shape),
                      **config)
    return run_build(cfg)
