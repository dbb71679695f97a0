"""Cut the float tail (the final dequantising Mul/Add) off the integer graph.

FINN would turn the last scale into an ElementwiseMul that needs Vivado (HLS only
on 7-series). It belongs in software: the accelerator's output is the integer
accumulator, the tail maps it to logits. Every stage is compared on the integers;
the tail is applied and checked separately, named as such.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

TAIL_OPS = ("Mul", "Add", "Div", "Sub")


@dataclass
class FloatTail:
    """Elementwise float ops applied, in order, to the accelerator's integer output."""
    ops: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = x.astype(np.float32)
        for op, c in self.ops:
            y = {"Mul": np.multiply, "Add": np.add, "Div": np.divide, "Sub": np.subtract}[op](y, c)
        return y.astype(np.float32)

    def invert(self, y: np.ndarray) -> np.ndarray:
        """The tail's inverse in float64: from outputs back to the integer domain."""
        z = y.astype(np.float64)
        inv = {"Mul": np.divide, "Add": np.subtract, "Div": np.multiply, "Sub": np.add}
        for op, c in reversed(self.ops):
            z = inv[op](z, c.astype(np.float64))
        return z

    def scale(self) -> np.ndarray | None:
        """The combined scale if the tail is Mul/Div only (integers = outputs / scale)."""
        s = np.float64(1.0)
        for op, c in self.ops:
            if op == "Mul":
                s = s * c.astype(np.float64)
            elif op == "Div":
                s = s / c.astype(np.float64)
            else:
                return None
        return np.asarray(s)

    def save(self, path: Path) -> None:
        arrays = {f"{i:02d}_{op}": c for i, (op, c) in enumerate(self.ops)}
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> "FloatTail":
        with np.load(path) as z:
            return cls([(k.split("_", 1)[1], z[k]) for k in sorted(z.files)])

    def describe(self) -> str:
        return " -> ".join(f"{op}({c.size} value{'s' if c.size > 1 else ''})" for op, c in self.ops) or "none"


def split_float_tail(model: ModelWrapper) -> tuple[ModelWrapper, FloatTail]:
    """Remove trailing constant Mul/Add/Div/Sub nodes fed by an integer tensor.

    Returns the model whose output is the last integer tensor, and the tail.
    """
    ops: list[tuple[str, np.ndarray]] = []
    out_name = model.graph.output[0].name
    while True:
        node = model.find_producer(out_name)
        if node is None or node.op_type not in TAIL_OPS or len(node.input) != 2:
            break
        const = model.get_initializer(node.input[1])
        if const is None or len(model.find_consumers(node.input[0]) or []) != 1:
            break
        ops.insert(0, (node.op_type, np.asarray(const, dtype=np.float32)))
        new_out = node.input[0]
        vi = model.get_tensor_valueinfo(new_out)
        model.graph.output[0].CopyFrom(vi) if vi is not None else None
        if vi is None:
            model.graph.output[0].name = new_out
        model.graph.node.remove(node)
        out_name = new_out
        if model.get_tensor_datatype(new_out).is_integer():
            break
    # the tensor is now a graph output: drop its value_info duplicate
    for vi in list(model.graph.value_info):
        if vi.name == out_name:
            model.graph.value_info.remove(vi)
    return model, FloatTail(ops)
