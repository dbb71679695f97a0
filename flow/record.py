"""What the build steps hand on to later steps, verification and the report.

BuildConfig (flow/config.py) holds the build's inputs only; a BuildRecord is made
by the runner for one build and passed to every step as `step(model, cfg, rec)`.
Each field says which step writes it; a step reads only fields of earlier steps."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BuildRecord:
    work_dir: Path                                   # the (temporary) build folder
    # export
    checkpoint: str | None = None                    # the checkpoint loaded for --model
    checkpoint_meta: dict | None = None              # its metadata (training history left out)
    brevitas_module: Any = None                      # the module exported (verification's torch stage)
    exporter: str | None = None                      # "torch.export" or "torchscript" (fallback); None for --onnx
    # qonnx_to_finn
    input_dtype: str | None = None                   # the accelerator's input type (graph annotation or --input-dtype)
    qonnx_model: bool = False                        # the input was a QONNX graph (Quant nodes)
    # bipolar_as_int2, remove_identity_thresholds
    bipolar_as_int2: str | None = None               # which layers were relabelled (graph metadata)
    identity_thresholds_removed: int = 0
    # split_float_tail, split_layout_head: what stays on the host (describe() of each)
    float_tail: dict | None = None
    layout_head: dict | None = None
    # open_rtl
    open_rtl_layers: dict[str, str] = field(default_factory=dict)  # node -> our RTL op type
    hls_layers: list[str] = field(default_factory=list)            # nodes left on HLS
    thresholds_absorbed: list[str] = field(default_factory=list)   # thresholding layers now in a binary core
    # estimates
    estimates: dict | None = None                    # FINN's cycle and resource estimates
    fit: dict | None = None                          # those resources vs the board's part (flow/fit.py)
    # insert_fifos, size_fifos
    fifo_depths: dict[str, int] | None = None
    fifo_sizing: dict | None = None
    # the runner, after the last step
    layers: list[dict] = field(default_factory=list)  # [{name, op_type}] of the final graph

    def __post_init__(self):
        self.work_dir = Path(self.work_dir)

    def path(self, *parts: str) -> Path:
        """A path inside the (temporary) build folder."""
        return self.work_dir.joinpath(*parts)
