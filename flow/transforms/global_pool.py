"""ReduceMean over the spatial axes -> GlobalAveragePool.

torch's exporter writes `AdaptiveAvgPool2d(1)` / `x.mean((2, 3), keepdim=True)` as a
ReduceMean over axes (2, 3) of an NCHW tensor; FINN lowers GlobalAveragePool (to its
GlobalAccPool layer, a per-channel sum, and a Mul by 1/(H*W) that streamlining moves on).
The two are the same function of a 4D input, so the node is renamed in place.
Contract: exact (same op); other ReduceMeans are left for the lowerability check to name.
"""
from __future__ import annotations

from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation


class ReduceMeanToGlobalAveragePool(Transformation):
    def apply(self, model: ModelWrapper):
        changed = False
        for node in model.graph.node:
            if node.op_type != "ReduceMean" or node.domain not in ("", "ai.onnx"):
                continue
            shape = model.get_tensor_shape(node.input[0])
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            axes = attrs.get("axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                init = model.get_initializer(node.input[1])
                axes = None if init is None else [int(a) for a in init.reshape(-1)]
            if shape is None or len(shape) != 4 or axes is None or int(attrs.get("keepdims", 1)) != 1:
                continue
            if sorted(a % 4 for a in axes) != [2, 3]:
                continue
            node.op_type = "GlobalAveragePool"
            del node.input[1:]
            del node.attribute[:]
            changed = True
        return model, changed
