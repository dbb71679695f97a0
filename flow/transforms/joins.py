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


def _split_sizes(model: ModelWrapper, node) -> list[int] | None:
    """A Split's part sizes along its axis, from its outputs' shapes (None: not known)."""
    from qonnx.util.basic import get_by_name

    axis = get_by_name(node.attribute, "axis")
    axis = axis.i if axis is not None else 0
    shapes = [model.get_tensor_shape(o) for o in node.output]
    if any(s is None for s in shapes):
        return None
    return [int(s[axis]) for s in shapes]


class ExplicitSplitSizes(Transformation):
    """A Split in opset-18 form (attribute num_outputs, no sizes input), as torch.chunk
    exports, gets its part sizes as the constant second input FINN's InferSplitLayer reads.
    The parts are unchanged."""

    def apply(self, model: ModelWrapper):
        import numpy as np

        changed = False
        for n in model.graph.node:
            if n.op_type != "Split" or (len(n.input) > 1 and n.input[1]):
                continue
            sizes = _split_sizes(model, n)
            if sizes is None:
                continue
            name = model.make_new_valueinfo_name()
            model.set_initializer(name, np.array(sizes, dtype=np.int64))
            del n.input[1:]
            n.input.append(name)
            for a in [a for a in n.attribute if a.name == "num_outputs"]:
                n.attribute.remove(a)
            changed = True
        return model, changed


class MoveMulPastSplit(Transformation):
    """Split(x * c) becomes [Split(x)_k * c_k]: a scale in front of a channel split (the
    activation's scale before torch.chunk) moves onto each part, where streamlining
    absorbs it into the next layer like any scale. c is a scalar (every part gets it) or
    per channel along the split axis (each part its slice). Exact: each element is
    multiplied by the same constant as before."""

    def apply(self, model: ModelWrapper):
        import numpy as np
        from onnx import helper
        from qonnx.util.basic import get_by_name

        for n in model.graph.node:
            if n.op_type != "Split":
                continue
            mul = model.find_producer(n.input[0])
            if mul is None or mul.op_type != "Mul" or len(model.find_consumers(n.input[0]) or []) != 1:
                continue
            c = model.get_initializer(mul.input[1])
            sizes = _split_sizes(model, n)
            if c is None or sizes is None:
                continue
            rank = len(model.get_tensor_shape(n.input[0]))
            axis = get_by_name(n.attribute, "axis")
            axis = (axis.i if axis is not None else 0) % rank
            c = np.asarray(c)
            if c.size == 1:
                parts = [c] * len(sizes)
            elif c.ndim == rank and c.shape[axis] == sum(sizes) and c.size == c.shape[axis]:
                parts = np.split(c, np.cumsum(sizes)[:-1], axis=axis)
            else:
                continue
            n.input[0] = mul.input[0]
            model.graph.node.remove(mul)
            for k, out in enumerate(list(n.output)):
                raw = model.make_new_valueinfo_name()
                const = model.make_new_valueinfo_name()
                model.set_initializer(const, np.asarray(parts[k], dtype=np.float32))
                n.output[k] = raw
                model.set_tensor_shape(raw, model.get_tensor_shape(out))
                idx = list(model.graph.node).index(n) + 1
                model.graph.node.insert(idx, helper.make_node("Mul", [raw, const], [out]))
            return model, True
        return model, False
