"""intsim: execute a FINN graph (streamlined or HW layers) in exact integer arithmetic.

The golden model of the verification chain. Strict mode computes every product in
int64. Fast mode runs a matrix product as a float32 (float64) BLAS GEMM only where
a per-layer bound proves every partial sum below 2^24 (2^53), so both modes give
identical integers. Every tensor is checked against its FINN datatype; a value
outside it raises SimError naming the node, the tensor, the sample and the value.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from .errors import SimError
from .kernels import KERNELS, Prepared, float32_conv_exact, windowed

MODES = ("strict", "fast")
FLOAT32_EXACT = 2**24
FLOAT64_EXACT = 2**53
INT32_EXACT = 2**31
# matrix products whose accumulator the datatype check covers (cache["acc"])
ACC_OPS = ("MVAU", "VVAU")
# ops whose output holds exactly their input's values (only moved or buffered)
VALUE_PRESERVING = ("StreamingFIFO", "StreamingDataWidthConverter", "Reshape", "Flatten", "Squeeze",
                    "Unsqueeze", "Identity", "Transpose", "DuplicateStreams")


# qnnflow's own RTL ops (hw/ops) that implement a FINN op under another name
OP_ALIASES = {"MVAU_binary": "MVAU", "VVAU_int": "VVAU", "AddStreams": "ElementwiseAdd"}


def generic_op(op_type: str) -> str:
    for suffix in ("_rtl", "_hls"):
        if op_type.endswith(suffix):
            op_type = op_type[: -len(suffix)]
            break
    return OP_ALIASES.get(op_type, op_type)


def _attrs(node) -> dict:
    """The node's attributes as set, completed by a custom op's declared defaults (raw
    attributes a custom op does not declare, e.g. ONNX MaxPool's dilations kept on a
    MaxPoolNHWC, stay: its execution passes them on)."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    if node.domain.startswith(("finn", "qonnx")):
        from qonnx.custom_op.registry import getCustomOp

        try:
            inst = getCustomOp(node)
            declared = {k: inst.get_nodeattr(k) for k in inst.get_nodeattr_types()}
        except Exception:  # an attribute without default and not set: read what is there
            declared = {}
        out.update(declared)
    return out


def _max_abs(dt: DataType) -> int:
    return int(max(abs(dt.min()), abs(dt.max())))


class IntSim:
    """An integer-exact executable form of one FINN graph."""

    def __init__(self, model: ModelWrapper | str | Path, mode: str = "strict"):
        if mode not in MODES:
            raise SimError(f"unknown intsim mode {mode!r}; choose one of {', '.join(MODES)}")
        self.model = model if isinstance(model, ModelWrapper) else ModelWrapper(str(model))
        self.mode = mode
        m = self.model
        unknown = sorted({f"{n.op_type}" for n in m.graph.node if generic_op(n.op_type) not in KERNELS})
        if unknown:
            names = [f"{n.name} ({n.op_type})" for n in m.graph.node if generic_op(n.op_type) not in KERNELS]
            raise SimError(f"intsim has no kernel for op(s) {', '.join(unknown)} (nodes: {', '.join(names)}); "
                           "add one to sim/kernels.py")
        self.input_name = m.graph.input[0].name
        self.output_name = m.graph.output[0].name
        self.input_dtype = m.get_tensor_datatype(self.input_name)
        if not self.input_dtype.is_integer():
            raise SimError(f"graph input {self.input_name} is {self.input_dtype.name}; intsim needs an integer "
                           "input datatype (annotate it, e.g. UINT8)")
        self.input_shape = tuple(m.get_tensor_shape(self.input_name)[1:])
        self.dtypes = {}
        self.nodes: list[Prepared] = [self._prepare(n) for n in m.graph.node]
        # buffering/width conversion that leaves the per-sample shape and datatype unchanged:
        # the interpreter hands the tensor on without a kernel call or a check
        self._passthrough = {p.name for p in self.nodes
                             if p.op_type in ("StreamingFIFO", "StreamingDataWidthConverter")
                             and p.out_shape == p.in_shape
                             and self.dtypes.get(p.outputs[0]) == self.dtypes.get(p.inputs[0])}
        # fast mode: sliding window generators fused into the conv / max pool they feed
        self._fused_windows = self._fuse_windows() if mode == "fast" else set()

    # -- preparation -------------------------------------------------------------
    def _prepare(self, node) -> Prepared:
        m = self.model
        params = {}
        for i, name in enumerate(node.input):
            init = m.get_initializer(name) if name else None
            if init is None:
                continue
            arr = np.asarray(init)
            if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.rint(arr)):
                bad = arr.reshape(-1)[np.flatnonzero(arr.reshape(-1) != np.rint(arr.reshape(-1)))[:1]]
                raise SimError(f"node {node.name} ({node.op_type}): parameter {name} holds non-integer values "
                               f"(e.g. {bad[0] if bad.size else 'nan'}); the dataflow part must have integer "
                               "weights and thresholds (round them: FINN's RoundAndClipThresholds)")
            params[i] = arr.astype(np.int64)
        for i, t in enumerate(list(node.input) + list(node.output)):
            if t and i not in params:
                self.dtypes[t] = m.get_tensor_datatype(t)
        in_shape = tuple(m.get_tensor_shape(node.input[0])[1:]) if node.input else ()
        p = Prepared(node.name, generic_op(node.op_type), list(node.input), list(node.output), _attrs(node),
                     params, tuple(m.get_tensor_shape(node.output[0])[1:]), in_shape)
        if p.op_type == "MultiThreshold":
            for key, default in (("out_scale", 1.0), ("out_bias", 0.0)):
                v = float(p.attrs.get(key, default))
                if v != round(v):
                    raise SimError(f"node {node.name} (MultiThreshold): {key} = {v} is not an integer; "
                                   "a float scale belongs in the float tail outside the dataflow part")
                p.attrs[key] = int(round(v))
        if p.op_type in ("MatMul", "MVAU") and 1 in params and self.mode == "fast":
            p.gemm = self._gemm_for(node, params[1])
        if self.mode == "fast":
            self._prove_ranges(p)
        return p

    def _prove_ranges(self, p: Prepared) -> None:
        """Fast mode: skip a runtime datatype check where the input type already bounds the
        values inside the tensor's type (strict mode checks every tensor at run time)."""
        def within(lo: int, hi: int, dtype: str) -> bool:
            dt = DataType[dtype]
            return dt.is_integer() and dt.name != "BIPOLAR" and dt.min() <= lo and hi <= dt.max()

        idt = self.dtypes.get(p.inputs[0]) if p.inputs else None
        if idt is None or not idt.is_integer() or idt.name == "BIPOLAR":
            return
        if p.op_type in ("MatMul", "MVAU") and 1 in p.params and not p.attrs.get("binaryXnorMode") \
                and p.attrs.get("weightDataType", "") != "BIPOLAR":
            w = p.params[1]
            a, b = int(idt.min()), int(idt.max())
            lo = int(np.minimum(w * a, w * b).sum(axis=0).min())
            hi = int(np.maximum(w * a, w * b).sum(axis=0).max())
            acc_dt = p.attrs.get("accDataType")
            p.acc_proven = bool(acc_dt) and within(lo, hi, acc_dt)
            out_dt = self.dtypes.get(p.outputs[0])
            if p.attrs.get("noActivation", 1) == 1 and out_dt is not None:
                p.out_proven = within(lo, hi, out_dt.name)
        elif p.op_type in ("MultiThreshold", "Thresholding") and 1 in p.params:
            n = int(p.params[1].shape[-1])
            out_dt = self.dtypes.get(p.outputs[0])
            if out_dt is None or out_dt.name == "BIPOLAR":
                return
            scale = int(p.attrs.get("out_scale", 1))
            bias = int(p.attrs.get("out_bias", 0)) if p.op_type == "MultiThreshold" else int(p.attrs.get("ActVal", 0))
            p.out_proven = within(min(bias, bias + scale * n), max(bias, bias + scale * n), out_dt.name)

    def _fuse_windows(self) -> set[str]:
        """Fast mode: a ConvolutionInputGenerator read by nothing but one MVAU (a convolution)
        or one max Pool (FIFOs and width converters between them pass the image on) runs
        fused with it (kernels.windowed: one torch conv2d/max_pool2d on the image, no windows
        in memory), where float32 is proven exact: |every input| times the largest column
        sum of |weights| below 2**24. Returns the fused SWGs' names."""
        readers: dict[str, list[Prepared]] = {}
        for p in self.nodes:
            for t in p.inputs:
                readers.setdefault(t, []).append(p)
        fused = set()
        for p in self.nodes:
            if p.op_type != "ConvolutionInputGenerator" or p.outputs[0] == self.output_name:
                continue
            users = readers.get(p.outputs[0], [])
            while len(users) == 1 and users[0].name in self._passthrough:  # FIFOs, width converters
                users = readers.get(users[0].outputs[0], [])
            idt = self.dtypes.get(p.inputs[0])
            if len(users) != 1 or idt is None or not idt.is_integer() or idt.name == "BIPOLAR" \
                    or self.dtypes.get(p.outputs[0]) != idt:
                continue
            q = users[0]
            kh, kw = (int(k) for k in p.attrs["ConvKernelDim"])
            c = int(p.attrs["IFMChannels"])
            stride = [int(v) for v in np.broadcast_to(p.attrs["Stride"], 2)]
            dilation = [int(v) for v in np.broadcast_to(p.attrs.get("Dilation", [1, 1]), 2)]
            win = {"ifm": tuple(int(v) for v in p.attrs["IFMDim"]), "channels": c, "stride": stride,
                   "dilation": dilation, "ofm": tuple(int(v) for v in p.attrs["OFMDim"]), "kernel": (kh, kw)}
            if q.op_type == "MVAU" and not p.attrs.get("depthwise", 0) and 1 in q.params \
                    and not q.attrs.get("binaryXnorMode") and "BIPOLAR" not in (
                        q.attrs.get("inputDataType"), q.attrs.get("weightDataType")):
                w = q.params[1]  # (kh*kw*c, MH), rows in the windows' order (kh, kw, c)
                if w.shape[0] != kh * kw * c or _max_abs(idt) * int(np.abs(w).sum(axis=0).max()) >= FLOAT32_EXACT:
                    continue
                import torch

                win["kind"] = "conv"
                win["weight"] = torch.from_numpy(
                    np.ascontiguousarray(w.reshape(kh, kw, c, -1).transpose(3, 2, 0, 1), dtype=np.float32))
            elif q.op_type == "Pool" and q.attrs.get("Function") == "MaxPool" \
                    and int(q.attrs.get("Channels", -1)) == c and _max_abs(idt) < FLOAT32_EXACT:
                win["kind"] = "pool"
            else:
                continue
            q.window = win
            fused.add(p.name)
        return fused

    def _gemm_for(self, node, w: np.ndarray) -> str:
        """The cheapest exact GEMM: the worst-case |partial sum| bounds the float format."""
        idt = self.model.get_tensor_datatype(node.input[0])
        bound = _max_abs(idt) * int(np.abs(w).sum(axis=0).max())
        w8 = w.min() >= -128 and w.max() <= 127
        if w8 and bound < INT32_EXACT and idt.is_integer():
            if idt.min() >= 0 and idt.max() <= 255:
                return "u8s8"
            if idt.min() >= -128 and idt.max() <= 127:
                return "s8s8"
        if bound < FLOAT32_EXACT:
            return "float32"
        if bound < FLOAT64_EXACT:
            return "float64"
        return "int64"

    # -- execution ---------------------------------------------------------------
    def check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        n = x.shape[0] if x.ndim else 0
        per = int(np.prod(self.input_shape))
        if x.ndim == 0 or int(np.prod(x.shape[1:])) != per:
            raise SimError(f"input of shape {x.shape} does not fit the graph input {self.input_name} "
                           f"(batch, {', '.join(map(str, self.input_shape))})")
        if x.dtype.kind == "f":
            if not np.array_equal(x, np.rint(x)):
                raise SimError(f"input holds non-integer values; {self.input_name} is {self.input_dtype.name}")
            x = x.astype(np.int64)
        x = x.reshape((n,) + self.input_shape)
        self._check(x, self.input_name, self.input_dtype, "graph input")
        return x

    def _check(self, y: np.ndarray, tensor: str, dt: DataType, node: str) -> None:
        if dt is None or not dt.is_integer():
            if dt is not None and dt.name.startswith("FLOAT"):
                raise SimError(f"node {node}: tensor {tensor} is {dt.name}; intsim refuses float tensors inside "
                               "the dataflow part")
            return
        lo, hi = int(dt.min()), int(dt.max())
        if y.size == 0 or (y.min() >= lo and y.max() <= hi and (dt.name != "BIPOLAR" or (y != 0).all())):
            return
        bad = (y < lo) | (y > hi)
        if dt.name == "BIPOLAR":
            bad |= y == 0
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise SimError(f"node {node}: tensor {tensor} value {int(y[idx])} at sample {idx[0]}, index "
                           f"{idx[1:]} is outside its datatype {dt.name} [{lo}, {hi}]")

    def run(self, x: np.ndarray, return_all: bool = False):
        """Execute on a batch of integer inputs; the output (or every tensor) as int64."""
        env = {self.input_name: self.check_input(x)}
        # every tensor asked for, or oneDNN told to round float32 convolutions: no fusion
        fuse = bool(self._fused_windows) and not return_all and float32_conv_exact()
        for p in self.nodes:
            if p.name in self._passthrough or (fuse and p.name in self._fused_windows):
                # a FIFO or width converter (same values, same shape), or a window generator
                # whose reader takes the image itself (kernels.windowed)
                env[p.outputs[0]] = env[p.inputs[0]]
                continue
            dyn = [env[t] for i, t in enumerate(p.inputs) if t and i not in p.params]
            try:
                y = windowed(p, *dyn) if fuse and p.window is not None else KERNELS[p.op_type](p, *dyn)
            except SimError:
                raise
            except Exception as exc:
                raise SimError(f"node {p.name} ({p.op_type}) failed: {exc}") from exc
            ys = [np.asarray(v) for v in y] if isinstance(y, tuple) else [np.asarray(y)]
            if len(ys) != len(p.outputs):
                raise SimError(f"node {p.name} ({p.op_type}) produced {len(ys)} tensors for "
                               f"{len(p.outputs)} outputs")
            for y in ys:
                if y.dtype.kind not in "iu":
                    raise SimError(f"node {p.name} ({p.op_type}) produced {y.dtype} values; "
                                   "kernels must stay integer")
            if "acc" in p.cache:
                acc_dt = p.attrs.get("accDataType")
                if acc_dt and not p.acc_proven:
                    self._check(p.cache["acc"], f"{p.name}.accumulator", DataType[acc_dt], p.name)
                del p.cache["acc"]
            for out, y in zip(p.outputs, ys):
                out_dt = self.dtypes.get(out)
                if not p.out_proven and not (p.op_type in VALUE_PRESERVING
                                             and out_dt == self.dtypes.get(p.inputs[0])):
                    self._check(y, out, out_dt, p.name)  # (a FIFO's output was checked as its input)
                env[out] = y
        if return_all:
            return env
        out = env[self.output_name].astype(np.int64)
        return out.reshape(out.shape[0], -1)


def run(model: ModelWrapper | str | Path, x: np.ndarray, mode: str = "strict") -> np.ndarray:
    """Execute `model` on integer inputs `x` (batch first) in exact integer arithmetic."""
    return IntSim(model, mode).run(x)
