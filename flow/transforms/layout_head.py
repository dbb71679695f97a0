"""Cut the layout head (data-movement ops on the graph input) off the integer graph.

Conv lowering leaves a Transpose NCHW -> NHWC (sometimes a Reshape) between the graph
input and the first hardware layer. It is no computation, and FINN has no HW layer for
a Transpose on the input: it belongs in software, like the float tail at the other end.
The accelerator's input is the head's output; the head is saved in the build folder and
applied to the verification inputs before the stages that run the hardware graph, so
every stage sees the same data in its own layout.

The head is stored as one gather index per sample: head(x)[n].flat = x[n].flat[index]
(found by running the head's ops on 0..size-1), exact for any chain of data-movement ops.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import get_by_name

HEAD_OPS = ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")


@dataclass
class LayoutHead:
    """A per-sample permutation of the input values, from in_shape to out_shape."""
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    index: np.ndarray
    ops: tuple[str, ...] = ()

    @classmethod
    def identity(cls, shape) -> "LayoutHead":
        shape = tuple(int(s) for s in shape)
        return cls(shape, shape, np.arange(int(np.prod(shape)), dtype=np.int64), ())

    @property
    def is_identity(self) -> bool:
        return bool(np.array_equal(self.index, np.arange(self.index.size)))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Inputs (N, ...) in the network's layout -> (N, *out_shape) in the accelerator's."""
        x = np.asarray(x)
        flat = x.reshape(len(x), -1)
        if flat.shape[1] != self.index.size:
            raise ValueError(f"inputs hold {flat.shape[1]} values per sample; the layout head "
                             f"expects {self.index.size} (shape {self.in_shape})")
        return flat[:, self.index].reshape((len(x),) + self.out_shape)

    def save(self, path: Path) -> None:
        np.savez(path, in_shape=np.asarray(self.in_shape, np.int64), out_shape=np.asarray(self.out_shape, np.int64),
                 index=self.index, ops=np.asarray(self.ops, dtype=str))

    @classmethod
    def load(cls, path: Path) -> "LayoutHead":
        with np.load(path) as z:
            return cls(tuple(int(v) for v in z["in_shape"]), tuple(int(v) for v in z["out_shape"]),
                       z["index"].astype(np.int64), tuple(str(s) for s in z["ops"]))

    def describe(self) -> str:
        if not self.ops:
            return "none"
        return (" -> ".join(self.ops) + f": {list(self.in_shape)} -> {list(self.out_shape)}"
                + (" (same order in memory)" if self.is_identity else ""))


def _move(node, a: np.ndarray, out_shape) -> np.ndarray:
    """One data-movement op on a batch-1 array of indices."""
    if node.op_type == "Transpose":
        perm = get_by_name(node.attribute, "perm")
        a = np.transpose(a, list(perm.ints) if perm is not None else None)
    return a.reshape(out_shape)


def split_layout_head(model: ModelWrapper) -> tuple[ModelWrapper, LayoutHead]:
    """Remove leading data-movement nodes fed by the graph input (each its input's only
    consumer); the graph input becomes the last one's output. Returns the model and the head."""
    iname = model.graph.input[0].name
    in_shape = tuple(model.get_tensor_shape(iname))
    if in_shape[0] != 1:
        return model, LayoutHead.identity(in_shape[1:])
    idt, layout = model.get_tensor_datatype(iname), model.get_tensor_layout(iname)
    a = np.arange(int(np.prod(in_shape)), dtype=np.int64).reshape(in_shape)
    ops = []
    while True:
        consumers = model.find_consumers(iname) or []
        if len(consumers) != 1 or consumers[0].op_type not in HEAD_OPS:
            break
        node = consumers[0]
        if any(model.get_initializer(t) is None for t in node.input[1:] if t):
            break  # a computed shape: not a constant layout change
        out = node.output[0]
        if out == model.graph.output[0].name:
            break  # keep at least one node in the graph
        out_shape = model.get_tensor_shape(out)
        if out_shape is None or out_shape[0] != 1:
            break
        a = _move(node, a, out_shape)
        ops.append(node.op_type)
        layout = model.get_tensor_layout(out)
        model.graph.node.remove(node)
        vi = model.get_tensor_valueinfo(out)
        model.graph.input[0].CopyFrom(vi)
        if vi in model.graph.value_info:
            model.graph.value_info.remove(vi)
        iname = out
        model.set_tensor_datatype(iname, idt)
        if layout is not None:
            model.set_tensor_layout(iname, layout)
    return model, LayoutHead(in_shape[1:], tuple(a.shape[1:]), a.reshape(-1), tuple(ops))
