"""The op registry: op_type -> kernel, each stating its integer semantics in one line.

A kernel receives the prepared node (`Prepared`: attributes and integer parameters)
and its input arrays (batch first, numpy integers) and returns an integer array; a
kernel may return a narrower integer type than int64 only where its values provably fit.
Specialised HW layers (`*_rtl`, `*_hls`) share the kernel of their generic op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .errors import SimError

KERNELS: dict[str, Callable] = {}


def kernel(*op_types: str):
    def register(fn):
        for op in op_types:
            KERNELS[op] = fn
        return fn
    return register


@dataclass
class Prepared:
    """A node ready to execute: attributes, integer parameters, per-sample shapes."""
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    params: dict[int, np.ndarray]          # input index -> integer constant (weights, thresholds)
    out_shape: tuple[int, ...]             # per-sample output shape (batch dim excluded)
    in_shape: tuple[int, ...]
    gemm: str = "int64"                    # fast mode, proven exact: "u8s8" | "s8s8" | "float32" | "float64"
    cache: dict[str, Any] = field(default_factory=dict)
    # fast mode: the datatype check is proven statically for the accumulator / the output
    acc_proven: bool = False
    out_proven: bool = False
    # fast mode: the window op (SWG) in front of this MVAU/Pool is skipped and this node runs
    # on the image as one convolution/pooling (interpreter.IntSim._fuse_windows)
    window: dict[str, Any] | None = None


# ---- arithmetic helpers -------------------------------------------------------------

def matmul(p: Prepared, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact integer x @ w: int64 (torch's integer GEMM); in fast mode, where a bound proves
    it exact, 8-bit integer GEMM with int32 accumulation or a BLAS float GEMM."""
    if p.gemm == "int64":
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)) \
            .matmul(torch.from_numpy(w)).numpy()
    if p.gemm in ("u8s8", "s8s8"):
        sess = p.cache.get("ort")
        if sess is None:
            sess = p.cache["ort"] = _int8_gemm_session(w, signed_input=p.gemm == "s8s8")
        xt = x.astype(np.int8 if p.gemm == "s8s8" else np.uint8)
        return sess.run(None, {"a": xt})[0]  # int32: the bound proves no overflow
    ft = np.float32 if p.gemm == "float32" else np.float64
    wf = p.cache.get(p.gemm)
    if wf is None:
        wf = p.cache[p.gemm] = w.astype(ft)
    return (x.astype(ft) @ wf).astype(np.int64)


def _int8_gemm_session(w: np.ndarray, signed_input: bool):
    """onnxruntime MatMulInteger: int8 weights, (u)int8 inputs, int32 accumulation (exact)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.INT8 if signed_input else TensorProto.UINT8,
                                      ["n", w.shape[0]])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, ["n", w.shape[1]])
    wt = helper.make_tensor("w", TensorProto.INT8, w.shape, w.astype(np.int8).tobytes(), raw=True)
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "gemm", [a], [y], [wt])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    # no busy-waiting between calls: spinning pool threads would take the core that the
    # numpy kernels between two GEMMs run on
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def xnor_popcount(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """popcount(xnor(a, w)) for binary {0,1} a (N,K) and w (K,M) = K - sum a - sum w + 2 a.w."""
    k = a.shape[-1]
    a = np.ascontiguousarray(a, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.int64)
    aw = torch.from_numpy(a).matmul(torch.from_numpy(w)).numpy()
    return k - a.sum(-1, keepdims=True) - w.sum(0, keepdims=True) + 2 * aw


def threshold_count(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """#(x >= t_j) per element; x (..., C) channels-last, t (C or 1, n) sorted ascending."""
    if t.shape[1] > 4 and x.size and x.dtype.kind in "iu":
        # many steps: the count of every value in the batch's range, per channel, then one
        # gather (one pass instead of a compare per step), where that table is small
        lo, hi = int(x.min()), int(x.max())
        span = hi - lo + 1
        if t.shape[0] * span <= min(1 << 17, x.size // 8) and t.shape[1] < 2**15:
            values = np.arange(lo, hi + 1)
            table = np.empty((t.shape[0], span), dtype=np.int16)
            for c in range(t.shape[0]):
                table[c] = np.searchsorted(t[c], values, side="right")
            idx = (x - np.int64(lo)).astype(np.int32) + np.arange(t.shape[0], dtype=np.int32) * np.int32(span)
            return np.take(table.reshape(-1), idx)
    if t.shape[0] == 1:
        return np.searchsorted(t[0], x, side="right").astype(np.int64)
    if t.shape[1] <= 16:  # one vectorised compare per threshold step, counted in int16
        info = np.iinfo(x.dtype)
        if t.min() >= info.min and t.max() <= info.max:
            t = t.astype(x.dtype)  # same-type compares: no int64 temporaries
        else:
            x = x.astype(np.int64)
        # counts <= 16: summed as int8 views of the comparisons (half the time of adding
        # booleans into int16), returned as int16 like the other paths' small counts
        cnt = (x >= np.ascontiguousarray(t[:, 0])).view(np.int8)
        for j in range(1, t.shape[1]):
            cnt = cnt + (x >= np.ascontiguousarray(t[:, j])).view(np.int8)
        return cnt.astype(np.int16)
    out = np.empty(x.shape, dtype=np.int64)
    for c in range(t.shape[0]):
        out[..., c] = np.searchsorted(t[c], x[..., c], side="right")
    return out


def channels_last(x: np.ndarray, layout: str) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if (layout.startswith("NC") and x.ndim > 2) else x


def channels_first(x: np.ndarray, layout: str) -> np.ndarray:
    return np.moveaxis(x, -1, 1) if (layout.startswith("NC") and x.ndim > 2) else x


# ---- streamlined-graph ops (ONNX / qonnx) -------------------------------------------

@kernel("MatMul")
def k_matmul(p, x, *_):
    """y = x @ W (integer matrix product over the last axis)."""
    return matmul(p, x.reshape(-1, x.shape[-1]), p.params[1]).reshape(x.shape[:-1] + (p.params[1].shape[1],))


@kernel("XnorPopcountMatMul")
def k_xnor_matmul(p, x, *_):
    """y = popcount(xnor(x, W)) for binary {0,1} x and W."""
    return xnor_popcount(x.reshape(-1, x.shape[-1]), p.params[1]).reshape(x.shape[:-1] + (p.params[1].shape[1],))


@kernel("MultiThreshold")
def k_multithreshold(p, x, *_):
    """y = out_scale * #(x >= T[c]) + out_bias, per channel c (NCHW unless data_layout says NHWC)."""
    layout = p.attrs.get("data_layout", "NCHW")
    cnt = threshold_count(channels_last(x, layout), p.params[1])
    return channels_first(p.attrs["out_scale"] * cnt + p.attrs["out_bias"], layout)


@kernel("Add", "Mul", "Sub")
def k_elementwise(p, x, *rest):
    """y = x (+|*|-) C with an integer constant C, or y = x (+|*|-) z of two tensors (a join)."""
    c = p.params[1] if 1 in p.params else rest[0]
    if 0 in p.params:  # the constant first: C (+|*|-) x
        x, c = p.params[0], x
    return {"Add": np.add, "Mul": np.multiply, "Sub": np.subtract}[p.op_type](x, c)


@kernel("ElementwiseAdd")
def k_elementwise_add(p, a, b=None):
    """y = a + b (FINN's ElementwiseAdd, channels last; a constant operand where one is given)."""
    if b is None:  # one operand a constant (addition commutes: its index does not matter)
        b = p.params[1] if 1 in p.params else p.params[0]
    return np.add(a, b)


@kernel("GlobalAccPool")
def k_global_acc_pool(p, x):
    """y[n, 0, 0, c] = sum over pixels (h, w) of x[n, h, w, c] (channels last)."""
    return x.sum(axis=(1, 2), keepdims=True).reshape((x.shape[0],) + p.out_shape)


@kernel("DuplicateStreams")
def k_duplicate(p, x):
    """y_k = x for each of the node's outputs (a fork)."""
    return tuple(x for _ in p.outputs)


@kernel("StreamingConcat")
def k_streaming_concat(p, *xs):
    """y = the inputs concatenated along the last (channel) axis, in input order."""
    return np.concatenate(xs, axis=-1)


@kernel("StreamingSplit")
def k_streaming_split(p, x):
    """y_k = the k-th group of ChannelsPerStream consecutive channels (last axis)."""
    cuts = np.cumsum(p.attrs["ChannelsPerStream"])[:-1]
    return tuple(np.split(x, cuts, axis=-1))


@kernel("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
def k_reshape(p, x, *_):
    """y = x with the per-sample output shape (values and order unchanged)."""
    return x.reshape((x.shape[0],) + p.out_shape)


@kernel("Transpose")
def k_transpose(p, x, *_):
    """y = transpose(x, perm)."""
    return np.transpose(x, p.attrs["perm"])


@kernel("TopK")
def k_topk(p, x, *_):
    """y = indices of the k largest values along the last axis (ties: lowest index first)."""
    k = int(p.params[1].reshape(-1)[0])
    return np.argsort(-x, axis=-1, kind="stable")[..., :k]


@kernel("Im2Col")
def k_im2col(p, x, *_):
    """y[n, oh, ow, (kh, kw, c)] = pad(x, pad_amount, pad_value)[n, oh*sh + kh*dh, ow*sw + kw*dw, c] (NHWC)."""
    return im2col(x, p.attrs["kernel_size"], p.attrs["stride"], p.attrs.get("pad_amount", [0, 0, 0, 0]),
                  p.attrs.get("dilations", [1, 1]), int(p.attrs.get("pad_value", 0)), p.out_shape)


def im2col(x, kernel_size, stride, pad, dilation, pad_value, out_shape) -> np.ndarray:
    """Windows of an NHWC batch as (n, oh, ow, kh*kw*c), patch order (kh, kw, c).
    Padding beyond what the windows reach is ignored; windows must lie in the padded input."""
    n, h, w, c = x.shape
    kh, kw = kernel_size
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    dh, dw = dilation
    top, left, bottom, right = pad
    oh, ow = out_shape[0], out_shape[1]
    need_h, need_w = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    if need_h > h + top + bottom or need_w > w + left + right:
        raise ValueError(f"{oh}x{ow} windows of {kh}x{kw} (stride {sh},{sw}, dilation {dh},{dw}) do not fit "
                         f"a {h}x{w} input padded by {list(pad)}")
    dtype = np.result_type(x.dtype, np.min_scalar_type(pad_value))
    xp = np.full((n, h + top + bottom, w + left + right, c), pad_value, dtype=dtype)
    xp[:, top:top + h, left:left + w, :] = x
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                                        j * dw: j * dw + sw * (ow - 1) + 1: sw, :]
    return cols.reshape(n, oh, ow, kh * kw * c)


def max_pool_nhwc(x, kernel, strides, pads, dilations, out_hw) -> np.ndarray:
    """ONNX MaxPool on NHWC: max over each window; padded positions (pads, and ceil_mode's
    overhang at the bottom/right) never win: they hold a value below every input."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    top, left, bottom, right = pads if len(pads) == 4 else (0, 0, 0, 0)
    n, h, w, c = x.shape
    oh, ow = out_hw
    bottom = max(bottom, (oh - 1) * sh + (kh - 1) * dh + 1 - h - top)
    right = max(right, (ow - 1) * sw + (kw - 1) * dw + 1 - w - left)
    x = x.astype(np.int64)
    fill = int(x.min()) - 1 if x.size else 0
    cols = im2col(x, (kh, kw), (sh, sw), (top, left, bottom, right), (dh, dw), fill, (oh, ow))
    return cols.reshape(n, oh, ow, kh * kw, c).max(axis=3)


def _pool_attrs(p):
    k = p.attrs["kernel_shape"]
    return (k, p.attrs.get("strides") or [1, 1], p.attrs.get("pads") or [0, 0, 0, 0],
            p.attrs.get("dilations") or [1, 1])


@kernel("MaxPoolNHWC")
def k_maxpool_nhwc(p, x, *_):
    """y[n, oh, ow, c] = max of x over the window (NHWC; ONNX MaxPool's pads, strides, ceil_mode)."""
    k, s, pads, d = _pool_attrs(p)
    return max_pool_nhwc(x, k, s, pads, d, p.out_shape[:2])


@kernel("MaxPool")
def k_maxpool(p, x, *_):
    """y[n, c, oh, ow] = max of x over the window (NCHW; ONNX MaxPool's pads, strides, dilations, ceil_mode)."""
    k, s, pads, d = _pool_attrs(p)
    y = max_pool_nhwc(np.moveaxis(x, 1, -1), k, s, pads, d, p.out_shape[1:3])
    return np.moveaxis(y, -1, 1)


# ---- FINN HW layers -------------------------------------------------------------------

def _activation(p, acc, thr_index):
    """Embedded thresholds of MVAU/VVAU: #(acc >= T) + ActVal, or bipolar 2*count - 1."""
    cnt = threshold_count(acc, p.params[thr_index])
    if p.attrs.get("outputDataType") == "BIPOLAR":
        return 2 * cnt - 1
    return cnt + int(p.attrs.get("ActVal", 0))


@kernel("MVAU")
def k_mvau(p, x, *_):
    """acc = x @ W (xnor-popcount in binary mode); y = acc, or thresholds(acc) if noActivation == 0."""
    w = p.params[1]
    xs = x.reshape(-1, w.shape[0])
    if p.attrs.get("binaryXnorMode"):
        acc = xnor_popcount(xs, w)
    elif p.attrs.get("inputDataType") == "BIPOLAR" and p.attrs.get("weightDataType") == "BIPOLAR":
        acc = xnor_popcount((xs + 1) // 2, (w + 1) // 2)
    else:
        acc = matmul(p, xs, w)
    p.cache["acc"] = acc
    y = acc if p.attrs.get("noActivation", 1) == 1 else _activation(p, acc, 2)
    return y.reshape((x.shape[0],) + p.out_shape)


@kernel("VVAU")
def k_vvau(p, x, *_):
    """acc[c] = sum_k x[k*C + c] * W[c, 0, k] (bipolar: (acc + K)/2); y = acc, or #(acc >= T[c]) + ActVal."""
    w = p.params[1]  # (C, 1, kh, kw) in FINN's VVAU
    ch = w.shape[0]
    k = int(np.prod(w.shape[1:]))
    xs = x.reshape(-1, k, ch).astype(np.int64)
    acc = np.einsum("nkc,ck->nc", xs, w.reshape(ch, k))
    if p.attrs.get("inputDataType") == "BIPOLAR" and p.attrs.get("weightDataType") == "BIPOLAR":
        acc = (acc + k) // 2  # x.w = matches - mismatches = 2 * matches - K: exact
    p.cache["acc"] = acc
    y = acc if p.attrs.get("noActivation", 1) == 1 else _activation(p, acc, 2)
    return y.reshape((x.shape[0],) + p.out_shape)


def float32_conv_exact() -> bool:
    """Whether torch's CPU convolutions compute in IEEE float32 (oneDNN's default), not in a
    reduced precision (bf16/tf32) that a user may have set process-wide."""
    conv = getattr(torch.backends.mkldnn, "conv", None)
    return getattr(conv, "fp32_precision", "none") in ("none", "ieee")


def windowed(p: Prepared, x: np.ndarray) -> np.ndarray:
    """Fast mode: an MVAU or a max Pool applied to the windows of the sliding window generator
    in front of it, as one torch conv2d / max_pool2d on the NHWC image, without the windows.
    Exact: the values and, for the convolution, every partial sum in any order are integers
    below 2**24 in magnitude (IntSim._fuse_windows proves the bound), so float32 holds them;
    NNPACK, whose Winograd/FFT transforms would round, is switched off."""
    wd = p.window
    n = x.shape[0]
    (h, w), c = wd["ifm"], wd["channels"]
    xt = torch.from_numpy(np.ascontiguousarray(x.reshape(n, h, w, c), dtype=np.float32)).permute(0, 3, 1, 2)
    with torch.backends.nnpack.flags(enabled=False):
        if wd["kind"] == "conv":
            y = torch.nn.functional.conv2d(xt, wd["weight"], stride=wd["stride"], dilation=wd["dilation"])
        else:
            y = torch.nn.functional.max_pool2d(xt, wd["kernel"], stride=wd["stride"], dilation=wd["dilation"])
    # int32 holds every value (< 2**24), and the thresholds after compare int32 in half the time
    y = y[:, :, :wd["ofm"][0], :wd["ofm"][1]].permute(0, 2, 3, 1).numpy().astype(np.int32)
    if wd["kind"] == "pool":
        return y.reshape((n,) + p.out_shape)
    p.cache["acc"] = y
    out = y if p.attrs.get("noActivation", 1) == 1 else _activation(p, y, 2)
    return out.reshape((n,) + p.out_shape)


@kernel("Thresholding")
def k_thresholding(p, x, *_):
    """y = #(x >= T[c]) + ActVal on the last (channel) axis; bipolar: 2*count - 1."""
    cnt = threshold_count(x, p.params[1])
    if p.attrs.get("outputDataType") == "BIPOLAR":
        return 2 * cnt - 1
    return cnt + int(p.attrs.get("ActVal", 0))


@kernel("StreamingFIFO", "StreamingDataWidthConverter", "StreamingDataflowPartition_identity")
def k_identity(p, x, *_):
    """y = x (buffering and width conversion do not change values)."""
    return x.reshape((x.shape[0],) + p.out_shape)


@kernel("LabelSelect")
def k_labelselect(p, x, *_):
    """y = indices of the K largest inputs along the last axis, largest first (ties: lowest index first)."""
    k = int(p.attrs["K"])
    xs = x.reshape(x.shape[0], -1, x.shape[-1])
    return np.argsort(-xs.astype(np.int64), axis=-1, kind="stable")[..., :k].reshape((x.shape[0],) + p.out_shape)


@kernel("FMPadding")
def k_fmpadding(p, x, *_):
    """y = x zero-padded spatially by Padding = [top, left, bottom, right] (NHWC)."""
    top, left, bottom, right = p.attrs["Padding"]
    n = x.shape[0]
    h, w = p.attrs["ImgDim"]
    xs = x.reshape(n, h, w, -1)
    return np.pad(xs, ((0, 0), (top, bottom), (left, right), (0, 0))).reshape((n,) + p.out_shape)


@kernel("ConvolutionInputGenerator")
def k_swg(p, x, *_):
    """y[n, oh, ow, (kh, kw, c)] = x[n, oh*sh + kh*dh, ow*sw + kw*dw, c] (NHWC, no padding; depthwise or not)."""
    n = x.shape[0]
    ifm = p.attrs["IFMDim"]
    c = p.attrs["IFMChannels"]
    xs = x.reshape(n, ifm[0], ifm[1], c)
    oh, ow = p.attrs["OFMDim"]
    cols = im2col(xs, p.attrs["ConvKernelDim"], p.attrs["Stride"], [0, 0, 0, 0],
                  p.attrs.get("Dilation", [1, 1]), 0, (oh, ow))
    return cols.reshape((n,) + p.out_shape)


@kernel("Pool")
def k_pool(p, x, *_):
    """Over each (kh*kw, C) window: MaxPool y = max, AccPool y = sum, QuantAvgPool y = sum >> Size (floor)."""
    n = x.shape[0]
    k = p.attrs["KernelSize"]
    k2 = int(np.prod(k))
    ch = p.attrs["Channels"]
    cols = x.reshape(n, -1, k2, ch)
    fxn = p.attrs.get("Function")
    if fxn == "MaxPool":
        y = cols.max(axis=2)
    elif fxn == "AccPool":
        y = cols.astype(np.int64).sum(axis=2)
    elif fxn == "QuantAvgPool":
        y = cols.astype(np.int64).sum(axis=2) >> int(p.attrs["Size"])
    else:
        raise SimError(f"node {p.name} (Pool): Function {fxn} has no integer semantics here "
                       "(FINN's python AvgPool is a float mean); use QuantAvgPool")
    return y.reshape((n,) + p.out_shape)
