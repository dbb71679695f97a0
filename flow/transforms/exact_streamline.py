"""FINN's streamlining sequence without its lossy identity removal.

FINN's `Streamline` runs qonnx's `RemoveIdentityOps()` after every transformation,
and that treats any Mul within atol=1e-5 of 1 (or Add within 1e-5 of 0) as an
identity and deletes it. A batch norm with unit statistics becomes Mul(1/sqrt(1 +
1e-5)) = Mul(0.999995), which is then dropped: every threshold of that layer moves by
5e-6 relative, and on a tfc-po2 build one of 100 images crossed a rounding boundary.

Contract: the same transformations, in the same order, as FINN's Streamline
(finn.transformation.streamline), with identity removal that is exact: Add/Sub of
exact zeros and Mul/Div by exact ones only (RemoveIdentityOps' atol=0 still applies
np.isclose's rtol=1e-5, so it is not used).
"""
from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.batchnorm_to_affine import BatchNormToAffine
from qonnx.transformation.general import (
    ConvertDivToMul,
    ConvertSubToAdd,
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
)
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.remove import remove_node_and_rewire

import numpy as np


def _sequence():
    from finn.transformation.streamline import absorb, collapse_repeated, reorder
    from finn.transformation.streamline.sign_to_thres import ConvertSignToThres

    return [
        ConvertSubToAdd(), ConvertDivToMul(), BatchNormToAffine(), ConvertSignToThres(),
        reorder.MoveMulPastMaxPool(), absorb.AbsorbScalarBiasIntoMultiThreshold(),
        reorder.MoveScalesPastIm2Col(), reorder.MoveScalarLinearPastInvariants(), reorder.MoveAddPastMul(),
        reorder.MoveScalarAddPastMatMul(), reorder.MoveAddPastConv(), reorder.MoveScalarMulPastMatMul(),
        reorder.MoveScalarMulPastConv(), reorder.MoveAddPastMul(), collapse_repeated.CollapseRepeatedAdd(),
        collapse_repeated.CollapseRepeatedMul(), reorder.MoveMulPastMaxPool(),
        absorb.AbsorbAddIntoMultiThreshold(), absorb.FactorOutMulSignMagnitude(),
        absorb.AbsorbMulIntoMultiThreshold(), absorb.Absorb1BitMulIntoMatMul(), absorb.Absorb1BitMulIntoConv(),
    ]


class RemoveExactIdentityOps(Transformation):
    """Remove Add/Sub of a constant that is exactly 0 and Mul/Div by a constant exactly 1."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type not in ("Add", "Sub", "Mul", "Div") or len(node.input) != 2:
                continue
            c = model.get_initializer(node.input[1])
            if c is None:
                continue
            neutral = 0.0 if node.op_type in ("Add", "Sub") else 1.0
            if np.all(np.asarray(c) == neutral) and \
                    model.get_tensor_shape(node.input[0]) == model.get_tensor_shape(node.output[0]):
                remove_node_and_rewire(model, node)
                return model, True
        return model, False


class ExactStreamline(Transformation):
    def apply(self, model: ModelWrapper):
        for t in _sequence():
            model = model.transform(t)
            model = model.transform(RemoveExactIdentityOps())
            model = model.transform(GiveUniqueNodeNames())
            model = model.transform(GiveReadableTensorNames())
            model = model.transform(InferDataTypes())
            model = model.transform(InferDataLayouts())
        return model, False
