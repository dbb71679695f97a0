"""intsim's conv-related kernels against FINN's/qonnx's own python execution.

Each test builds a single node (or a small graph produced by FINN's own conversions)
with random shapes, strides, paddings, dilations and integer data, runs FINN/qonnx
(onnxruntime for standard ONNX ops) one sample at a time, and intsim on the whole
batch (strict and fast mode), and requires equal integers. Examples per test:
QNNFLOW_HYPOTHESIS_EXAMPLES (default 20).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model

import sim

EXAMPLES = int(os.environ.get("QNNFLOW_HYPOTHESIS_EXAMPLES", "20"))
SAMPLES = 3
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FINN = "finn.custom_op.fpgadataflow"
QONNX = "qonnx.custom_op.general"
DTYPES = ["UINT2", "UINT4", "UINT8", "INT2", "INT4", "INT8"]


# ---- helpers --------------------------------------------------------------------------

def make_model(nodes, in_shape, out_shape, dtypes, inits=None, infer=False) -> ModelWrapper:
    """A graph from `nodes` with input 'x' and output 'y'; dtypes: tensor -> FINN datatype."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape) if out_shape else None)
    g = helper.make_graph(nodes, "g", [x], [y])
    model = ModelWrapper(qonnx_make_model(g, producer_name="qnnflow-test"))
    for name, arr in (inits or {}).items():
        model.set_initializer(name, np.asarray(arr, dtype=np.float32))
    for name, dt in dtypes.items():
        model.set_tensor_datatype(name, DataType[dt])
    if infer:
        model = model.transform(InferShapes()).transform(InferDataTypes())
    return model


def random_data(rng, dt_name: str, shape) -> np.ndarray:
    dt = DataType[dt_name]
    if dt_name == "BIPOLAR":
        return rng.choice(np.array([-1, 1]), size=shape).astype(np.int64)
    return rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape, dtype=np.int64)


def reference(model: ModelWrapper, x: np.ndarray) -> np.ndarray:
    """FINN's python execution (qonnx/onnxruntime for non-FINN ops), one sample at a time."""
    from finn.core.onnx_exec import execute_onnx

    ishape = model.get_tensor_shape("x")
    outs = [execute_onnx(model, {"x": xi.reshape(ishape).astype(np.float32)})[model.graph.output[0].name]
            for xi in x]
    return np.stack([np.asarray(o).reshape(o.shape[1:]) for o in outs])


def check(model: ModelWrapper, x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """intsim (strict and fast, batched) == reference (per sample), as integers."""
    if ref is None:
        ref = reference(model, x)
    assert np.array_equal(ref, np.rint(ref)), "reference produced non-integers"
    for mode in ("strict", "fast"):
        s = sim.IntSim(model, mode)
        got = s.run(x, return_all=True)[model.graph.output[0].name]  # every tensor: nothing fused
        assert got.dtype.kind in "iu"
        assert got.shape == ref.shape, (got.shape, ref.shape)
        # the output alone: fast mode runs window generators fused into their conv / max pool
        for how, y in (("all tensors", got), ("output only", s.run(x).reshape(ref.shape))):
            diff = np.argwhere(y != ref)
            assert len(diff) == 0, f"{mode} ({how}): first difference at {tuple(diff[0])}: intsim " \
                                   f"{y[tuple(diff[0])]} vs reference {ref[tuple(diff[0])]}"
    return ref


def out_dim(i, k, s, pad, d=1):
    return (i + pad - d * (k - 1) - 1) // s + 1


# ---- qonnx / ONNX ops of the streamlined graph -----------------------------------------

@SETTINGS
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 4), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       pad=st.lists(st.integers(0, 2), min_size=4, max_size=4), dt=st.sampled_from(DTYPES),
       depthwise=st.integers(0, 1), seed=st.integers(0, 2**16))
def test_im2col_matches_qonnx(h, w, c, kh, kw, sh, sw, dh, dw, pad, dt, depthwise, seed):
    if h == 1:
        kh, dh, pad[0], pad[2] = 1, 1, 0, 0
    if w == 1:
        kw, dw, pad[1], pad[3] = 1, 1, 0, 0
    oh, ow = out_dim(h, kh, sh, pad[0] + pad[2], dh), out_dim(w, kw, sw, pad[1] + pad[3], dw)
    assume(oh >= 1 and ow >= 1)
    rng = np.random.default_rng(seed)
    pad_value = int(random_data(rng, dt, ()))
    node = helper.make_node("Im2Col", ["x"], ["y"], domain=QONNX, stride=[sh, sw], kernel_size=[kh, kw],
                            input_shape=f"(1,{h},{w},{c})", pad_amount=pad, pad_value=pad_value,
                            dilations=[dh, dw], depthwise=depthwise)
    model = make_model([node], (1, h, w, c), (1, oh, ow, kh * kw * c), {"x": dt, "y": dt})
    check(model, random_data(rng, dt, (SAMPLES, h, w, c)))


def pool_out(i, k, s, pad_total, ceil_mode, d=1):
    """ONNX/PyTorch pooling output size (a last window must start inside input + left pad)."""
    eff = d * (k - 1) + 1
    num = i + pad_total - eff
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= i + pad_total // 2:
        o -= 1
    return o


@SETTINGS
@given(h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 4), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
       ceil_mode=st.integers(0, 1), dt=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_maxpool_nhwc_matches_qonnx(h, w, c, kh, kw, sh, sw, ph, pw, ceil_mode, dt, seed):
    assume(ph < kh and pw < kw and kh <= h + 2 * ph and kw <= w + 2 * pw)
    oh, ow = pool_out(h, kh, sh, 2 * ph, ceil_mode), pool_out(w, kw, sw, 2 * pw, ceil_mode)
    node = helper.make_node("MaxPoolNHWC", ["x"], ["y"], domain=QONNX, kernel_shape=[kh, kw],
                            strides=[sh, sw], pads=[ph, pw, ph, pw], ceil_mode=ceil_mode)
    model = make_model([node], (1, h, w, c), None, {"x": dt}, infer=True)
    # qonnx's shape rule lacks PyTorch's "last window starts inside" correction: keep the
    # cases where qonnx and onnxruntime agree on the output size
    assume(tuple(model.get_tensor_shape("y")) == (1, oh, ow, c))
    check(model, random_data(np.random.default_rng(seed), dt, (SAMPLES, h, w, c)))


@SETTINGS
@given(h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 4), k=st.integers(1, 3), s=st.integers(1, 3),
       d=st.integers(1, 2), p=st.integers(0, 2), ceil_mode=st.integers(0, 1), dt=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_maxpool_nchw_matches_onnxruntime(h, w, c, k, s, d, p, ceil_mode, dt, seed):
    assume(p < k and d * (k - 1) + 1 <= min(h, w) + 2 * p)
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p],
                            dilations=[d, d], ceil_mode=ceil_mode)
    model = make_model([node], (1, c, h, w), None, {"x": dt}, infer=True)
    model.set_tensor_datatype("y", DataType[dt])
    # ONNX shape inference lacks the "last window starts inside" rule of onnxruntime/PyTorch
    # for ceil_mode: keep the cases where both agree on the output size
    oh, ow = pool_out(h, k, s, 2 * p, ceil_mode, d), pool_out(w, k, s, 2 * p, ceil_mode, d)
    assume(tuple(model.get_tensor_shape("y")) == (1, c, oh, ow))
    x = random_data(np.random.default_rng(seed), dt, (SAMPLES, c, h, w))
    ref = reference(model, x)
    assert ref.shape[1:] == (c, oh, ow)
    check(model, x, ref)


# ---- FINN HW layers ---------------------------------------------------------------------

@SETTINGS
@given(h=st.integers(1, 8), w=st.integers(1, 8), c=st.integers(1, 5),
       pad=st.lists(st.integers(0, 3), min_size=4, max_size=4), dt=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_fmpadding_matches_finn(h, w, c, pad, dt, seed):
    oshape = (1, h + pad[0] + pad[2], w + pad[1] + pad[3], c)
    node = helper.make_node("FMPadding", ["x"], ["y"], domain=FINN, backend="fpgadataflow", ImgDim=[h, w],
                            Padding=pad, NumChannels=c, inputDataType=dt, SIMD=c)
    model = make_model([node], (1, h, w, c), oshape, {"x": dt, "y": dt})
    check(model, random_data(np.random.default_rng(seed), dt, (SAMPLES, h, w, c)))


@SETTINGS
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 4), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       depthwise=st.integers(0, 1), dt=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_convolution_input_generator_matches_finn(h, w, c, kh, kw, sh, sw, dh, dw, depthwise, dt, seed):
    if h == 1:
        kh, dh = 1, 1
    if w == 1:
        kw, dw = 1, 1
    oh, ow = out_dim(h, kh, sh, 0, dh), out_dim(w, kw, sw, 0, dw)
    assume(oh >= 1 and ow >= 1)
    node = helper.make_node("ConvolutionInputGenerator", ["x"], ["y"], domain=FINN, backend="fpgadataflow",
                            ConvKernelDim=[kh, kw], IFMChannels=c, IFMDim=[h, w], OFMDim=[oh, ow], SIMD=c,
                            Stride=[sh, sw], Dilation=[dh, dw], inputDataType=dt, outputDataType=dt,
                            depthwise=depthwise, is1D=int(h == 1 or w == 1))
    model = make_model([node], (1, h, w, c), (1, oh, ow, kh * kw * c), {"x": dt, "y": dt})
    check(model, random_data(np.random.default_rng(seed), dt, (SAMPLES, h, w, c)))


def _quant_avg_shift(ibits: int, k2: int, obits: int) -> int:
    return max(0, int((2**ibits - 1) * k2).bit_length() - obits)


@SETTINGS
@given(oh=st.integers(1, 5), ow=st.integers(1, 5), c=st.integers(1, 4), kh=st.integers(1, 3), kw=st.integers(1, 3),
       fxn=st.sampled_from(["MaxPool", "AccPool", "QuantAvgPool"]), dt=st.sampled_from(DTYPES),
       obits=st.integers(2, 8), seed=st.integers(0, 2**16))
def test_pool_matches_finn(oh, ow, c, kh, kw, fxn, dt, obits, seed):
    idt = DataType[dt]
    k2 = kh * kw
    if fxn == "MaxPool":
        odt = dt
    elif fxn == "AccPool":
        lo, hi = k2 * idt.min(), k2 * idt.max()  # FINN's accumulator rule
        odt = DataType.get_smallest_possible(lo if abs(lo) > abs(hi) else hi).name
    else:
        odt = f"{'INT' if idt.signed() else 'UINT'}{obits}"
    size = _quant_avg_shift(idt.bitwidth(), k2, DataType[odt].bitwidth()) if fxn == "QuantAvgPool" else 1
    node = helper.make_node("Pool", ["x"], ["y"], domain=FINN, backend="fpgadataflow", InputDataType=dt,
                            OutputDataType=odt, Channels=c, PE=c, KernelSize=[kh, kw], Function=fxn,
                            OutImgDims=[oh, ow], AccumBits=0, Size=size, BatchSize=1)
    model = make_model([node], (1, oh, ow, k2 * c), (1, oh, ow, c), {"x": dt})
    x = random_data(np.random.default_rng(seed), dt, (SAMPLES, oh, ow, k2 * c))
    ref = reference(model, x)
    # the output datatype annotation as FINN's InferDataTypes would set it, wide enough here
    model.set_tensor_datatype("y", DataType["INT32"])
    check(model, x, ref)


@SETTINGS
@given(hw=st.integers(1, 4), c=st.integers(1, 5), k=st.integers(1, 3), idt=st.sampled_from(DTYPES + ["BIPOLAR"]),
       wdt=st.sampled_from(["INT2", "INT3", "INT4", "BIPOLAR"]), act=st.booleans(), nthr=st.integers(1, 3),
       per_channel=st.booleans(), seed=st.integers(0, 2**16))
def test_vvau_matches_finn(hw, c, k, idt, wdt, act, nthr, per_channel, seed):
    """Single VVAU fed in the depthwise window's (kh, kw, c) order (PE = Channels, as after an SWG)."""
    rng = np.random.default_rng(seed)
    w = random_data(rng, wdt, (c, 1, k, k))
    inits = {"w": w}
    attrs = dict(PE=c, SIMD=1, Dim=[hw, hw], Channels=c, Kernel=[k, k], inputDataType=idt, weightDataType=wdt,
                 outputDataType="INT32", accDataType="INT32", noActivation=1)
    inputs = ["x", "w"]
    if act:
        lo, hi = -k * k * 128, k * k * 128
        t = np.sort(rng.integers(lo // 8, hi // 8, size=(c if per_channel else 1, 2**nthr - 1)), axis=1)
        inits["t"] = t
        inputs.append("t")
        attrs.update(noActivation=0, outputDataType=f"UINT{nthr}", ActVal=0)
    node = helper.make_node("VVAU", inputs, ["y"], domain=FINN, backend="fpgadataflow", **attrs)
    model = make_model([node], (1, hw, hw, k * k * c), (1, hw, hw, c),
                       {"x": idt, "w": wdt, "y": attrs["outputDataType"]}, inits)
    check(model, random_data(rng, idt, (SAMPLES, hw, hw, k * k * c)))


@SETTINGS
@given(labels=st.integers(2, 12), k=st.integers(1, 5), dt=st.sampled_from(["UINT2", "INT4", "INT8", "INT16"]),
       seed=st.integers(0, 2**16))
def test_labelselect_matches_finn(labels, k, dt, seed):
    """Top-K indices, largest first; small value ranges make ties (lowest index first)."""
    k = min(k, labels)
    node = helper.make_node("LabelSelect", ["x"], ["y"], domain=FINN, backend="fpgadataflow", Labels=labels,
                            PE=1, K=k, inputDataType=dt, outputDataType="UINT8")
    model = make_model([node], (1, labels), (1, k), {"x": dt, "y": "UINT8"})
    check(model, random_data(np.random.default_rng(seed), dt, (SAMPLES * 4, labels)))


# ---- small graphs: FINN's own conversions, checked against the op they replace ----------

def _hw_graph(model: ModelWrapper, *transforms) -> ModelWrapper:
    for t in transforms:
        model = model.transform(t)
    return model.transform(InferShapes()).transform(InferDataTypes())


@SETTINGS
@given(h=st.integers(3, 8), c=st.integers(1, 4), m=st.integers(1, 4), k=st.integers(1, 3), s=st.integers(1, 2),
       p=st.integers(0, 2), group=st.booleans(), idt=st.sampled_from(["UINT4", "INT4", "UINT8"]),
       wdt=st.sampled_from(["INT2", "INT4"]), seed=st.integers(0, 2**16))
def test_conv_lowered_to_hw_layers(h, c, m, k, s, p, group, idt, wdt, seed):
    """ONNX Conv (onnxruntime) == intsim on FINN's lowering: Transpose, [FMPadding ->]
    ConvolutionInputGenerator -> MVAU, or -> VVAU for a depthwise conv (group = channels)."""
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.vector_vector_activation import (
        InferVectorVectorActivation,
    )
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    if idt.startswith("INT"):
        p = 0  # FINN pads with zeros only (FMPadding): signed inputs are fine, keep it simple
    assume(k <= h + 2 * p)
    groups = c if group else 1
    m = c if group else m
    rng = np.random.default_rng(seed)
    w = random_data(rng, wdt, (m, c // groups, k, k))
    oh = out_dim(h, k, s, 2 * p)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p],
                            group=groups)
    model = make_model([node], (1, c, h, h), (1, m, oh, oh), {"x": idt, "w": wdt}, {"w": w}, infer=True)
    model.set_tensor_datatype("y", DataType["INT32"])
    x = random_data(rng, idt, (SAMPLES, c, h, h))
    ref = reference(model, x)  # onnxruntime's Conv on small integers: exact in float
    hw = _hw_graph(model, LowerConvsToMatMul(), InferVectorVectorActivation(),
                   InferQuantizedMatrixVectorActivation(), InferConvInpGen())
    ops = [n.op_type for n in hw.graph.node]
    depthwise = groups == c and m == c  # FINN's rule (a 1-channel conv counts as depthwise)
    assert ("VVAU" if depthwise else "MVAU") in ops, ops
    assert ("ConvolutionInputGenerator" in ops) == (k > 1 or s > 1 or p > 0) or k == 1, ops
    assert ("FMPadding" in ops) == (p > 0), ops
    check(hw, x, ref)
    check(hw, x, reference(hw, x))  # FINN's python execution of the HW layers agrees too
    # fast mode ran the window generator fused into the matrix unit (the bound is tiny here)
    fused = sim.IntSim(hw, "fast")._fused_windows
    assert bool(fused) == ("ConvolutionInputGenerator" in ops and not depthwise), (fused, ops)


@SETTINGS
@given(h=st.integers(2, 9), c=st.integers(1, 4), k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 1),
       dt=st.sampled_from(["UINT2", "UINT4", "UINT8"]), seed=st.integers(0, 2**16))
def test_maxpool_lowered_to_swg_and_pool(h, c, k, s, p, dt, seed):
    """qonnx MaxPoolNHWC == intsim on FINN's [FMPadding ->] ConvolutionInputGenerator(depthwise) -> Pool."""
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool

    assume(p < k <= h + 2 * p and k >= s)
    node = helper.make_node("MaxPoolNHWC", ["x"], ["y"], domain=QONNX, kernel_shape=[k, k], strides=[s, s],
                            pads=[p, p, p, p])
    model = make_model([node], (1, h, h, c), None, {"x": dt}, infer=True)
    x = random_data(np.random.default_rng(seed), dt, (SAMPLES, h, h, c))
    ref = reference(model, x)
    hw = _hw_graph(model, InferPool(), InferConvInpGen())
    ops = [n.op_type for n in hw.graph.node]
    assert ops[-2:] == ["ConvolutionInputGenerator", "Pool"], ops
    check(hw, x, ref)
    check(hw, x, reference(hw, x))


@SETTINGS
@given(h=st.integers(2, 8), c=st.integers(1, 4), k=st.integers(1, 3), ibits=st.integers(2, 6),
       obits=st.integers(2, 8), signed=st.booleans(), seed=st.integers(0, 2**16))
def test_quant_avg_pool_lowered_to_swg_and_pool(h, c, k, ibits, obits, signed, seed):
    """qonnx QuantAvgPool2d (sum >> shift) == intsim on ConvolutionInputGenerator -> Pool(QuantAvgPool)."""
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool

    assume(k <= h)
    dt = f"{'INT' if signed else 'UINT'}{ibits}"
    node = helper.make_node("QuantAvgPool2d", ["x"], ["y"], domain=QONNX, stride=k, kernel=k, ibits=ibits,
                            obits=obits, signed=int(signed), data_layout="NHWC")
    model = make_model([node], (1, h, h, c), None, {"x": dt}, infer=True)
    x = random_data(np.random.default_rng(seed), dt, (SAMPLES, h, h, c))
    ref = reference(model, x)
    hw = _hw_graph(model, InferPool(), InferConvInpGen())
    assert [n.op_type for n in hw.graph.node] == ["ConvolutionInputGenerator", "Pool"]
    check(hw, x, ref)
    check(hw, x, reference(hw, x))


def test_pool_refuses_float_average():
    node = helper.make_node("Pool", ["x"], ["y"], domain=FINN, backend="fpgadataflow", InputDataType="UINT4",
                            OutputDataType="UINT4", Channels=2, PE=2, KernelSize=[2, 2], Function="AvgPool",
                            OutImgDims=[2, 2])
    model = make_model([node], (1, 2, 2, 8), (1, 2, 2, 2), {"x": "UINT4", "y": "UINT4"})
    with pytest.raises(sim.SimError, match="AvgPool"):
        sim.run(model, np.zeros((1, 2, 2, 8), dtype=np.int64))


@SETTINGS
@given(c=st.integers(1, 6), steps=st.integers(1, 24), lo=st.integers(-300, 300), span=st.integers(1, 400),
       shared=st.booleans(), seed=st.integers(0, 2**16))
def test_threshold_count_all_paths(c, steps, lo, span, shared, seed):
    """threshold_count (per-value table, compares, searchsorted, by shape and range) == the
    count of thresholds each value reaches, thresholds inside and outside the values' range."""
    from sim.kernels import threshold_count

    rng = np.random.default_rng(seed)
    x = rng.integers(lo, lo + span, size=(50, 3, c), dtype=np.int64)
    t = np.sort(rng.integers(lo - 20, lo + span + 20, size=(1 if shared else c, steps)), axis=1)
    want = (x[..., None] >= t[None, None]).sum(-1)
    for xx in (x, x.astype(np.int32)):
        got = threshold_count(xx, t)
        assert got.dtype.kind in "iu"
        assert np.array_equal(got, want)


def test_fused_conv_falls_back_under_reduced_float_precision(monkeypatch):
    """With oneDNN told to compute float32 convolutions in bf16 (a process-wide torch
    setting, which CPUs with bf16 units honour), fast mode does not fuse: it runs the
    windows and its exact GEMM instead (the fused kernel is not called)."""
    import sim.interpreter as interp

    import torch
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    from sim.kernels import float32_conv_exact

    rng = np.random.default_rng(7)
    w = random_data(rng, "INT4", (3, 4, 3, 3))
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[1, 1], pads=[0, 0, 0, 0],
                            group=1)
    model = make_model([node], (1, 4, 7, 7), (1, 3, 5, 5), {"x": "UINT8", "w": "INT4"}, {"w": w}, infer=True)
    model.set_tensor_datatype("y", DataType["INT32"])
    x = random_data(rng, "UINT8", (SAMPLES, 4, 7, 7))
    ref = reference(model, x)
    hw = _hw_graph(model, LowerConvsToMatMul(), InferQuantizedMatrixVectorActivation(), InferConvInpGen())
    s = sim.IntSim(hw, "fast")
    assert s._fused_windows
    old = torch.backends.mkldnn.conv.fp32_precision
    try:
        torch.backends.mkldnn.conv.fp32_precision = "bf16"
        assert not float32_conv_exact()
        with monkeypatch.context() as mp:
            mp.setattr(interp, "windowed", lambda *a: pytest.fail("fused under bf16"))
            np.testing.assert_array_equal(s.run(x).reshape(ref.shape), ref)
    finally:
        torch.backends.mkldnn.conv.fp32_precision = old
    assert float32_conv_exact()
    np.testing.assert_array_equal(s.run(x).reshape(ref.shape), ref)
