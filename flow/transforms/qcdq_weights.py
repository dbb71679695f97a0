"""Turn a QCDQ export's constant (weight) quantizers into QONNX Quant nodes.

Brevitas's export_onnx_qcdq writes a quantized weight as a constant integer tensor, an
optional Clip to its narrower range (a 2-bit weight is int8 clipped to [-1, 1]) and a
DequantizeLinear, per channel (`axis`, a 1-D scale and zero point) or per tensor. qonnx's
QCDQToQuant, which fuses the activation quantizers (QuantizeLinear -> Clip ->
DequantizeLinear), takes neither the Clip on a constant nor a per-axis scale on one (it
scales the constant before broadcasting the scale), and needs value_info the export need
not hold.

Contract: every DequantizeLinear whose data is a constant, directly or through a Clip
with constant scalar bounds, becomes one Quant node with the same output: x = (clip(w) -
zero_point) * scale as a float constant, scale shaped to broadcast along `axis`, the
zero point a scalar where it is one value, bit width from the Clip range (else the constant's integer type), signed from the
range, narrow when the range is symmetric. Quant(x) then equals the DequantizeLinear's
output. Activation quantizers are left for QCDQToQuant; shapes are inferred for it.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name


def _constant_input(model: ModelWrapper, node):
    """(integer constant, clip range or None, the Clip node or None) feeding `node`, or None."""
    w = model.get_initializer(node.input[0])
    if w is not None:
        return w, None, None
    clip = model.find_producer(node.input[0])
    if clip is None or clip.op_type != "Clip" or len(clip.input) < 3:
        return None
    w, lo, hi = (model.get_initializer(t) for t in clip.input[:3])
    if w is None or lo is None or hi is None or np.ndim(lo) or np.ndim(hi):
        return None
    return w, (int(lo), int(hi)), clip


class QCDQWeightsToQuant(Transformation):
    def apply(self, model: ModelWrapper):
        for node in list(model.graph.node):
            if node.op_type != "DequantizeLinear" or len(node.input) < 3:
                continue
            found = _constant_input(model, node)
            s, z = model.get_initializer(node.input[1]), model.get_initializer(node.input[2])
            if found is None or s is None or z is None or not np.issubdtype(found[0].dtype, np.integer):
                continue
            w, rng, clip = found
            if rng is None:
                info = np.iinfo(w.dtype)
                rng = (int(info.min), int(info.max))
            lo, hi = rng
            bits = max(1, math.ceil(math.log2(hi - lo + 1)))
            axis = get_by_name(node.attribute, "axis")
            if np.ndim(s) == 1 and w.ndim >= 2:
                shape = [1] * w.ndim
                shape[(axis.i if axis is not None else 1) % w.ndim] = s.shape[0]
                s, z = s.reshape(shape), z.reshape(shape)
            s32, z32 = s.astype(np.float32), z.astype(np.float32)
            if np.all(z32 == z32.flat[0]):
                z32 = np.asarray(z32.flat[0], dtype=np.float32)  # FINN's conversion wants one zero point
            x = ((np.clip(w, lo, hi).astype(np.float32) - z32) * s32).astype(np.float32)
            base = node.output[0]
            names = [f"{base}_weight", f"{base}_scale", f"{base}_zeropt", f"{base}_bitwidth"]
            for name, v in zip(names, (x, s32, z32, np.asarray(bits, dtype=np.float32))):
                model.set_initializer(name, v)
            quant = onnx.helper.make_node("Quant", names, [base], name=f"Quant_{node.name or base}",
                                          domain="qonnx.custom_op.general", signed=int(lo < 0),
                                          narrow=int(lo < 0 and lo == -hi), rounding_mode="ROUND")
            model.graph.node.insert(model.get_node_index(node), quant)
            model.graph.node.remove(node)
            if clip is not None and not model.find_consumers(clip.output[0]):
                model.graph.node.remove(clip)
        return model.transform(InferShapes()), False
