"""An input quantizer's layout Transpose moved in front of it.

A network whose input quantizer is not the identity on the pixels (e.g. Brevitas's
default signed 8-bit QuantIdentity) streamlines to `input -> MultiThreshold (NCHW) ->
Transpose (to NHWC) -> Im2Col`: the Transpose sits inside the dataflow part, where no
hardware layer implements it. Thresholds act per channel, so Transpose(MT(x)) equals
MT_NHWC(Transpose(x)); after the swap the Transpose reads the graph input and becomes
part of the layout head applied in software (flow.transforms.layout_head).
Contract: exact (the same thresholds on the same values, in another memory order).
"""
from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name


class TransposeBeforeInputThresholds(Transformation):
    def apply(self, model: ModelWrapper):
        iname = model.graph.input[0].name
        mt = model.find_consumer(iname)
        if mt is None or mt.op_type != "MultiThreshold" or len(model.find_consumers(iname)) != 1:
            return model, False
        if getCustomOp(mt).get_nodeattr("data_layout") != "NCHW":
            return model, False
        consumers = model.find_consumers(mt.output[0]) or []
        if len(consumers) != 1 or consumers[0].op_type != "Transpose":
            return model, False
        tr = consumers[0]
        perm = get_by_name(tr.attribute, "perm")
        if perm is None or list(perm.ints) != [0, 2, 3, 1]:
            return model, False
        # input -> Transpose -> MT(NHWC) -> (the Transpose's old output)
        mid, out = mt.output[0], tr.output[0]
        odt = model.get_tensor_datatype(mid)
        tr.input[0], tr.output[0] = iname, mid
        mt.input[0], mt.output[0] = mid, out
        getCustomOp(mt).set_nodeattr("data_layout", "NHWC")
        model.set_tensor_shape(mid, model.get_tensor_shape(out))
        model.set_tensor_datatype(mid, model.get_tensor_datatype(iname))
        model.set_tensor_datatype(out, odt)
        nodes = model.graph.node
        i_mt, i_tr = list(nodes).index(mt), list(nodes).index(tr)
        if i_tr > i_mt:  # keep the graph topologically sorted: the Transpose first
            nodes.remove(tr)
            nodes.insert(i_mt, tr)
        return model, False
