"""Scales out of joins: Add(x * c, y * c) becomes Add(x, y) * c, and
Concat(x * c, y * c) becomes Concat(x, y) * c.

A residual block whose two branches end in activations of one shared quantizer reaches
the join as two integer tensors times the same scale. FINN's MoveLinearPastEltwiseAdd
moves such a pair of Muls past the Add, but only where each Mul has one consumer; the
shortcut's Mul also feeds the long branch (a fork), so it is first copied onto each
consumer (MoveLinearPastFork). After that the Add adds integers (an AddStreams layer in
hardware) and the Mul goes on into the next thresholds like any other scale. A Concat of
branches on one scale is handled alike by FINN's MoveMulPastJoinConcat (and its Add twin).

Contract: exact. A Mul is copied (same constant) or moved past an Add of two tensors
with bit-identical constants, (x*c) + (y*c) = (x + y)*c in real arithmetic; the graph's
values change only by float rounding, which the thresholds that absorb c later see as
they see any scale. Joins whose scales differ are left as they are (and refused later,
by name, at convert_to_hw).
"""
from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation


def dynamic_joins(model: ModelWrapper) -> list:
    """Add nodes of two streamed (non-constant) inputs, and Concat nodes of streamed inputs."""
    return [n for n in model.graph.node
            if (n.op_type == "Add" and len(n.input) == 2 or n.op_type == "Concat" and len(n.input) > 1)
            and all(model.get_initializer(t) is None for t in n.input)]


class MoveScalesPastJoins(Transformation):
    def apply(self, model: ModelWrapper):
        from finn.transformation.streamline.reorder import MoveLinearPastEltwiseAdd, MoveLinearPastFork

        if not dynamic_joins(model):
            return model, False
        from finn.transformation.streamline.reorder import MoveAddPastJoinConcat, MoveMulPastJoinConcat

        model = model.transform(MoveLinearPastFork())
        model = model.transform(MoveLinearPastEltwiseAdd())
        if model.get_nodes_by_op_type("Concat"):
            model = model.transform(MoveMulPastJoinConcat()).transform(MoveAddPastJoinConcat())
        return model, False
