"""Integer thresholds that round half-to-even, as Brevitas does.

FINN's MultiThreshold counts `x >= T`, so a value landing exactly on a threshold
rounds *up* (half-up); FINN's RoundAndClipThresholds then takes `ceil(T)` for
integer inputs. Brevitas quantizes with `torch.round`, which rounds half to
*even*. The two disagree exactly when an integer input lands on a tie, which is
common at the input quantizer (8-bit pixels times a power-of-two scale land on
half-integers; README, "What a build contains", gives the counts).

Contract: for every MultiThreshold (or Thresholding) node whose input datatype is
an integer, replace each threshold T_j (j = 1..n, crossing from output level
L = out_scale * (j-1) + out_bias to the next level) by an integer threshold:
  - if T_j is an integer up to float64 resolution (an exact tie in exact
    arithmetic; thresholds must come from float64 streamlining for this to hold): T_j' = round(T_j) + 1 when L is even (the tie stays at the even
    level L, i.e. `x > T_j`), and round(T_j) when L is odd (the tie goes up to the
    even level L + 1);
  - otherwise T_j' = ceil(T_j) (no integer can land on it).
The thresholds are then integers, so FINN's later rounding leaves them alone.
Nodes with a BINARY or BIPOLAR output are sign functions (Brevitas: x >= 0 -> +1), not
rounding: they keep `x >= T` (ceil).
Nodes whose levels are not integers (fractional out_scale/out_bias) keep FINN's
half-up rule and are listed in the returned model's metadata.
"""
from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

# Thresholds come from float64 streamlining (flow step `float64`): a genuine tie is an
# integer to within a few float64 ulps; anything further away is not a tie.
TIE_RTOL = 2.0**-40


def half_even_thresholds(thresholds: np.ndarray, out_scale: float, out_bias: float) -> np.ndarray:
    """Integer thresholds for integer inputs, ties resolved half-to-even (see module doc)."""
    t = np.asarray(thresholds, dtype=np.float64)
    nearest = np.rint(t)
    tie = np.abs(t - nearest) <= TIE_RTOL * np.maximum(1.0, np.abs(t))
    lower_level = out_scale * np.arange(t.shape[-1], dtype=np.float64) + out_bias
    lower_even = (np.rint(lower_level).astype(np.int64) % 2 == 0)[None, :]
    out = np.where(tie, nearest + lower_even.astype(np.float64), np.ceil(t))
    return out.astype(np.float32)


class RoundThresholdsHalfEven(Transformation):
    """Make thresholds on integer inputs integral, ties half-to-even (module doc)."""

    def apply(self, model: ModelWrapper):
        skipped = []
        for node in model.graph.node:
            if not (node.op_type == "MultiThreshold" or node.op_type.startswith("Thresholding")):
                continue
            thr = model.get_initializer(node.input[1])
            idt = model.get_tensor_datatype(node.input[0])
            if thr is None or not idt.is_integer():
                continue
            inst = getCustomOp(node)
            if model.get_tensor_datatype(node.output[0]).name in ("BINARY", "BIPOLAR"):
                model.set_initializer(node.input[1], np.ceil(np.asarray(thr, np.float64)).astype(np.float32))
                continue
            if node.op_type == "MultiThreshold":
                scale, bias = inst.get_nodeattr("out_scale"), inst.get_nodeattr("out_bias")
            else:  # FINN's Thresholding: output = count + ActVal
                scale, bias = 1.0, float(inst.get_nodeattr("ActVal"))
            levels = scale * np.arange(thr.shape[-1] + 1) + bias
            if not np.allclose(levels, np.rint(levels)):
                skipped.append(node.name)
                continue
            model.set_initializer(node.input[1], half_even_thresholds(thr, scale, bias))
        if skipped:
            model.set_metadata_prop("qnnflow_half_up_nodes", ",".join(skipped))
        return model, False
