"""Layer-level simulation: one HW graph (typically a single layer of ours), code generated,
stitched and run under Verilator in a work folder, for core tests against intsim."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .rtlsim import RtlsimResult, simulate
from .stitch import stitch


def generate_rtl(model, code_dir: Path, fpgapart: str = "xc7z020clg400-1", clk_ns: float = 10.0):
    """Run each RTL node's code generation into code_dir/<node> (FINN's PrepareIP, per node)."""
    from qonnx.custom_op.registry import getCustomOp

    from .ops import register

    register()
    for node in model.graph.node:
        inst = getCustomOp(node)
        d = Path(code_dir) / node.name
        d.mkdir(parents=True, exist_ok=True)
        inst.set_nodeattr("code_gen_dir_ipgen", str(d.resolve()))
        inst.code_generation_ipgen(model, fpgapart, clk_ns)
    return model


def simulate_layer(model, inputs: np.ndarray, work: Path, *, stall: float = 0.0, seed: int = 0,
                   fpgapart: str = "xc7z020clg400-1") -> RtlsimResult:
    """Simulate a linear HW graph of RTL layers on inputs (N, ...); returns the result."""
    work = Path(work).resolve()
    generate_rtl(model, work / "codegen", fpgapart)
    design = stitch(model, work / "rtl")
    return simulate(design, inputs, stall=stall, seed=seed, cache_dir=work / "cache")
