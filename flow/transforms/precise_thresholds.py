"""Recompute the thresholds FINN derives from QONNX quantizers, in float64.

ConvertQONNXtoFINN turns each activation quantizer into MultiThreshold -> Mul(scale)
with thresholds (L_j + 0.5) * scale, and stores them in float32. That rounding alone
can move a threshold across an input: for a scale of float32(1/255), the boundary
127.5 * scale = 0.500000001 becomes 0.5 in float32, and pixel 128 (x = 0.5, x/scale =
127.49999...) then quantizes to 128 in FINN but to 127 in Brevitas and in exact
arithmetic (seen on a tfc-po2 build: 17 of 100 images).

Contract: for every MultiThreshold whose only consumer is a Mul by a constant scale
s (per tensor or per channel) and whose thresholds are (within float32 rounding)
(out_bias + j + 0.5) * s, store exactly those values in float64. Nodes of any other
shape are left alone.
"""
from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation


class PreciseQuantThresholds(Transformation):
    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type != "MultiThreshold":
                continue
            consumers = model.find_consumers(node.output[0]) or []
            if len(consumers) != 1 or consumers[0].op_type != "Mul":
                continue
            scale = model.get_initializer(consumers[0].input[1])
            thr = model.get_initializer(node.input[1])
            if scale is None or thr is None or thr.shape[1] < 2:
                continue
            inst = getCustomOp(node)
            if inst.get_nodeattr("out_scale") != 1.0:
                continue
            s = np.abs(np.asarray(scale, dtype=np.float64).reshape(-1))
            if s.size not in (1, thr.shape[0]):
                continue
            levels = inst.get_nodeattr("out_bias") + np.arange(thr.shape[1], dtype=np.float64) + 0.5
            precise = levels[None, :] * s[:, None]
            if precise.shape[0] != thr.shape[0]:
                precise = np.broadcast_to(precise, thr.shape)
            if not np.allclose(precise, thr.astype(np.float64), rtol=1e-6, atol=1e-30):
                continue  # not the quantizer pattern we know; keep FINN's values
            model.set_initializer(node.input[1], precise.astype(np.float64))
        return model, False
