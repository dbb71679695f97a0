"""Bipolar (-1/+1) values relabelled as INT2, so that binary layers become ordinary
2-bit integer layers: FINN then lowers them onto its DSP-based RTL matrix unit
(MVAU_rtl), which refuses BIPOLAR operands and XNOR mode (`qnnflow build
--binary-impl dsp`; the default maps binary layers onto qnnflow's LUT-based
XNOR-popcount core instead).

It must run after streamlining *without* qonnx's ConvertBipolarMatMulToXnorPopcount
(which rewrites BIPOLAR x BIPOLAR MatMuls into popcounts over 0/1 codes, a form no
INT2 label can undo) and after the thresholds were made integers
(RoundThresholdsHalfEven): a bipolar activation is a sign function, rounded `x >= T`
(ceil); relabelled earlier, its two equal INT2 thresholds would be rounded like a
2-bit quantizer's, half to even, and a tie would yield 0, a value a sign never takes.

Contract:
  - a MultiThreshold with a BIPOLAR output, n thresholds per channel T, out_scale 2 and
    out_bias -1 (the streamlined form: output 2 * #(x >= T) - 1, i.e. -1/+1) becomes one
    with the thresholds [T, T] (each repeated, 2n per channel), out_scale 1, out_bias -1
    and out_dtype INT2: #(x >= T) + #(x >= T) - 1 gives the same -1/+1 for every x.
    Bipolar thresholds with another scale or bias are left alone and listed in the
    model's metadata (`qnnflow_bipolar_kept`);
  - a MatMul or Conv weight initializer typed BIPOLAR, with values in {-1, +1}, is
    relabelled INT2 (the values do not change; -2 is never used, so the weights are
    narrow-range as FINN's RTL MVU needs on DSP48E1);
  - nothing else changes: every tensor keeps its values, only datatypes and the
    threshold encoding move. Datatypes downstream are re-inferred by the caller
    (InferDataTypes). The graph input keeps its datatype.
"""
from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

WEIGHT_OPS = ("MatMul", "Conv")


class BipolarAsInt2(Transformation):
    """Relabel bipolar activations and weights as INT2 (module doc)."""

    def apply(self, model: ModelWrapper):
        kept = []
        thresholds = weights = 0
        for node in model.graph.node:
            if node.op_type == "MultiThreshold":
                if model.get_tensor_datatype(node.output[0]) != DataType["BIPOLAR"]:
                    continue
                inst = getCustomOp(node)
                thr = model.get_initializer(node.input[1])
                if thr is None or inst.get_nodeattr("out_scale") != 2.0 or inst.get_nodeattr("out_bias") != -1.0:
                    kept.append(node.name)
                    continue
                model.set_initializer(node.input[1], np.repeat(np.asarray(thr), 2, axis=-1))
                inst.set_nodeattr("out_scale", 1.0)
                inst.set_nodeattr("out_bias", -1.0)
                inst.set_nodeattr("out_dtype", "INT2")
                model.set_tensor_datatype(node.output[0], DataType["INT2"])
                thresholds += 1
            elif node.op_type in WEIGHT_OPS and len(node.input) > 1:
                w = model.get_initializer(node.input[1])
                if w is None or model.get_tensor_datatype(node.input[1]) != DataType["BIPOLAR"]:
                    continue
                if not set(np.unique(w).tolist()) <= {-1.0, 1.0}:
                    continue  # labelled BIPOLAR but holding other values: not ours to relabel
                model.set_tensor_datatype(node.input[1], DataType["INT2"])
                weights += 1
        model.set_metadata_prop("qnnflow_bipolar_as_int2", f"{thresholds} thresholds, {weights} weights")
        if kept:
            model.set_metadata_prop("qnnflow_bipolar_kept", ",".join(kept))
        return model, False

