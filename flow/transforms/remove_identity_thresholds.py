"""Remove MultiThreshold nodes that map every value of their integer input to itself.

An input quantizer whose grid equals the input's (8-bit pixels k/256 quantized with
scale 1/256) becomes, after streamlining, 255 thresholds that return their input:
FINN would build a Thresholding layer of ~25k LUTs for the identity.

Contract: a MultiThreshold whose input datatype is an integer type of at most 2^16
values is removed if, for every value v of that type and every channel,
out_scale * #(v >= T) + out_bias == v (checked by enumeration, so exact), and its
output datatype can hold the input type. Consumers then read the input directly.
"""
from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.remove import remove_node_and_rewire

MAX_ENUMERATED = 1 << 16


def is_identity(thresholds: np.ndarray, idt, out_scale: float, out_bias: float) -> bool:
    lo, hi = int(idt.min()), int(idt.max())
    if hi - lo + 1 > MAX_ENUMERATED:
        return False
    v = np.arange(lo, hi + 1, dtype=np.float64)
    counts = (v[None, :, None] >= np.asarray(thresholds, np.float64)[:, None, :]).sum(-1)
    return bool(np.all(out_scale * counts + out_bias == v[None, :]))


class RemoveIdentityThresholds(Transformation):
    def apply(self, model: ModelWrapper):
        for node in list(model.graph.node):
            if node.op_type != "MultiThreshold":
                continue
            thr = model.get_initializer(node.input[1])
            idt = model.get_tensor_datatype(node.input[0])
            if thr is None or not idt.is_integer():
                continue
            inst = getCustomOp(node)
            odt = model.get_tensor_datatype(node.output[0])
            if not (odt.allowed(idt.min()) and odt.allowed(idt.max())):
                continue
            if is_identity(thr, idt, inst.get_nodeattr("out_scale"), inst.get_nodeattr("out_bias")):
                remove_node_and_rewire(model, node)
                return model, True
        return model, False
