"""qnn_pool (hw/rtl) against intsim.

Two kinds of graphs:
- the pair FINN builds for a max pool (depthwise ConvolutionInputGenerator_rtl -> Pool_rtl),
  made by FINN's own InferPool / InferConvInpGen / SpecializeLayers from a MaxPoolNHWC node,
  for random shapes, folding, kernels, strides and input types (1..8 bits, signed,
  unsigned, bipolar), with and without random stalls;
- a lone Pool_rtl fed the depthwise generator's stream order directly, for what the pair
  cannot reach: QuantAvgPool/AccPool, a 1x1 window, and its cycle count.
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
from hw.ops.pool import Pool_rtl

PART = "xc7z020clg400-1"


def _random_values(rng, dt: DataType, size) -> np.ndarray:
    if dt.name == "BIPOLAR":
        return rng.choice(np.array([-1, 1]), size=size)
    # a few distinct values, extremes included: ties and extremes in every window
    pool = np.unique([int(dt.min()), int(dt.max()), *rng.integers(dt.min(), dt.max() + 1, 4)])
    return rng.choice(pool, size=size).astype(np.int64)


def maxpool_pair(ifm: tuple[int, int], ch: int, k: tuple[int, int], stride: tuple[int, int],
                 pe: int, idt: str) -> ModelWrapper:
    """MaxPoolNHWC -> FINN's SWG (depthwise) + Pool, RTL, folded to PE (SWG SIMD = PE, as
    FINN's SetFolding ties them)."""
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.general.maxpoolnhwc import compute_pool_output_dim
    from qonnx.transformation.general import GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    oh, ow = (compute_pool_output_dim(ifm[i], k[i], stride[i]) for i in range(2))
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *ifm, ch])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, oh, ow, ch])
    node = helper.make_node("MaxPoolNHWC", ["x"], ["y"], domain="qonnx.custom_op.general",
                            kernel_shape=list(k), strides=list(stride), pads=[0, 0, 0, 0])
    m = ModelWrapper(qonnx_make_model(helper.make_graph([node], "mp", [inp], [out])))
    m.set_tensor_datatype("x", DataType[idt])
    m = m.transform(InferShapes()).transform(InferDataTypes())
    m = m.transform(InferPool()).transform(InferConvInpGen())
    assert [n.op_type for n in m.graph.node] == ["ConvolutionInputGenerator", "Pool"], m.graph.node
    for n in m.graph.node:
        getCustomOp(n).set_nodeattr("preferred_impl_style", "rtl")
    m = m.transform(SpecializeLayers(PART)).transform(GiveUniqueNodeNames())
    m, moved, kept = open_rtl_layers(m)
    assert list(moved.values()) == ["Pool_rtl"] and not kept, (moved, kept)
    swg, pool = m.graph.node
    assert swg.op_type == "ConvolutionInputGenerator_rtl" and getCustomOp(swg).get_nodeattr("depthwise") == 1
    getCustomOp(swg).set_nodeattr("SIMD", pe)
    getCustomOp(pool).set_nodeattr("PE", pe)
    return m.transform(InferShapes()).transform(InferDataTypes())


def _pair_cases(n: int, seed: int = 2024):
    """Random (fixed-seed) shapes, folding and types; pytest ids name them."""
    rng = np.random.default_rng(seed)
    types = ["BIPOLAR", "BINARY", "INT1", "INT2", "UINT3", "INT4", "UINT5", "INT6", "UINT7", "INT8"]  # 1..8 bits
    cases = []
    for i in range(n):
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        if k == (1, 1):
            k = (2, 2)
        stride = tuple(int(rng.integers(1, kk + 1)) for kk in k)  # FINN's InferPool: stride <= kernel
        ifm = tuple(int(k[j] + stride[j] * rng.integers(1, 4) + rng.integers(0, 2)) for j in range(2))
        ch = int(rng.choice([1, 2, 3, 4, 6, 8]))
        pe = int(rng.choice([d for d in range(1, ch + 1) if ch % d == 0]))
        t = types[i % len(types)]
        name = f"{t}-{ifm[0]}x{ifm[1]}x{ch}-k{k[0]}{k[1]}-s{stride[0]}{stride[1]}-pe{pe}"
        cases.append(pytest.param(ifm, ch, k, stride, pe, t, id=name))
    return cases


@pytest.mark.parametrize("ifm,ch,k,stride,pe,idt", _pair_cases(10) + [
    pytest.param((28, 28), 6, (2, 2), (2, 2), 2, "UINT2", id="lenet-pool1"),  # LeNet-5's first pool, as FINN folds it
])
def test_maxpool_pair_matches_intsim(ifm, ch, k, stride, pe, idt, tmp_path):
    rng = np.random.default_rng(sum(ifm) * 100 + ch * 10 + pe)
    m = maxpool_pair(ifm, ch, k, stride, pe, idt)
    n = 12
    x = _random_values(rng, DataType[idt], (n, ifm[0] * ifm[1] * ch))
    ref = sim.run(m, x)
    xs = x.reshape(n, *ifm, ch)
    # independent of FINN and intsim: numpy's max over each window
    oh = (ifm[0] - k[0]) // stride[0] + 1
    ow = (ifm[1] - k[1]) // stride[1] + 1
    win = np.stack([xs[:, i:i + stride[0] * oh:stride[0], j:j + stride[1] * ow:stride[1], :]
                    for i in range(k[0]) for j in range(k[1])])
    np.testing.assert_array_equal(ref, win.max(axis=0).reshape(n, -1))
    work = tmp_path / "w"  # one simulator build for both runs (stalls are a run-time option)
    with finn_build_dir(tmp_path / "finn"):  # FINN's SWG code generation reads FINN's settings
        r = simulate_layer(m, x, work)
        np.testing.assert_array_equal(r.outputs, ref)
        pool = getCustomOp(m.graph.node[1])
        assert r.cycles_per_image >= pool.get_exp_cycles()  # the pool never beats its input stream
        r = simulate_layer(m, x, work, stall=0.3, seed=1)
        assert r.cached
        np.testing.assert_array_equal(r.outputs, ref)


def pool_node(ch: int, pe: int, k: tuple[int, int], odims: tuple[int, int], fxn: str, idt: str,
              odt: str | None = None, size: int = 0) -> ModelWrapper:
    """A lone Pool_hls node (as InferPool makes it), moved onto Pool_rtl."""
    k2 = k[0] * k[1]
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *odims, k2 * ch])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, *odims, ch])
    node = helper.make_node("Pool_hls", ["x"], ["y"], name="Pool_0", domain="finn.custom_op.fpgadataflow.hls",
                            backend="fpgadataflow", Channels=ch, PE=pe, KernelSize=list(k), Function=fxn,
                            OutImgDims=list(odims), InputDataType=idt, OutputDataType=odt or idt, Size=size,
                            BatchSize=1)
    m = ModelWrapper(qonnx_make_model(helper.make_graph([node], "pool", [inp], [out])))
    m.set_tensor_datatype("x", DataType[idt])
    m.set_tensor_datatype("y", DataType[odt or idt])
    m, moved, kept = open_rtl_layers(m)
    assert moved == {"Pool_0": "Pool_rtl"} and not kept, (moved, kept)
    return m


def swg_order(x: np.ndarray, ch: int, pe: int, k2: int) -> np.ndarray:
    """Pool's normal input (pixel, window element, channel) in the order a depthwise SWG
    streams it: (pixel, channel fold, window element, PE)."""
    n = len(x)
    return x.reshape(n, -1, k2, ch // pe, pe).transpose(0, 1, 3, 2, 4).reshape(n, -1)


LONE_CASES = [  # channels, PE, kernel, output dims, function, input type, output type, Size
    (4, 2, (1, 1), (3, 5), "MaxPool", "INT5", None, 0),          # a 1x1 window: one beat per result
    (6, 3, (3, 3), (2, 2), "MaxPool", "BIPOLAR", None, 0),
    (4, 2, (2, 2), (3, 3), "QuantAvgPool", "UINT4", "UINT4", 2),  # sum of 4 < 64, >> 2
    (3, 1, (3, 3), (2, 3), "QuantAvgPool", "INT4", "INT4", 4),    # negative sums: arithmetic shift (floor)
    (2, 2, (2, 3), (2, 2), "AccPool", "INT3", "INT6", 0),
]


@pytest.mark.parametrize("ch,pe,k,odims,fxn,idt,odt,size", LONE_CASES)
def test_lone_pool_matches_intsim(ch, pe, k, odims, fxn, idt, odt, size, tmp_path):
    rng = np.random.default_rng(ch * 100 + pe * 10 + size)
    m = pool_node(ch, pe, k, odims, fxn, idt, odt, size)
    k2 = k[0] * k[1]
    n = 10
    x = _random_values(rng, DataType[idt], (n, odims[0] * odims[1] * k2 * ch))
    ref = sim.run(m, x)
    xw = x.reshape(n, -1, k2, ch)
    expect = {"MaxPool": lambda: xw.max(axis=2), "AccPool": lambda: xw.sum(axis=2),
              "QuantAvgPool": lambda: xw.sum(axis=2) >> size}[fxn]()
    np.testing.assert_array_equal(ref, expect.reshape(n, -1))
    work = tmp_path / "w"
    r = simulate_layer(m, swg_order(x, ch, pe, k2), work)
    np.testing.assert_array_equal(r.outputs, ref)
    # fed back to back, one input beat per cycle: FINN's estimate exactly
    assert r.cycles_per_image == getCustomOp(m.graph.node[0]).get_exp_cycles()
    r = simulate_layer(m, swg_order(x, ch, pe, k2), work, stall=0.3, seed=2)
    np.testing.assert_array_equal(r.outputs, ref)


def test_pool_rtl_refuses_what_the_core_does_not_compute():
    def reason(**kw):
        m = pool_node(4, 2, (2, 2), (2, 2), "MaxPool", "INT4")
        node = m.graph.node[0]
        inst = getCustomOp(node)
        for a, v in kw.items():
            inst.set_nodeattr(a, v)
        return Pool_rtl.supports(node, m)

    assert reason() is None
    assert "AvgPool" in reason(Function="AvgPool", OutputDataType="INT4")
    assert "BIPOLAR" in reason(Function="QuantAvgPool", InputDataType="BIPOLAR", OutputDataType="INT2")
    assert "sum" in reason(Function="QuantAvgPool", InputDataType="UINT4", OutputDataType="UINT8", Size=1)


def test_pool_core_lints_clean():
    """verilator --lint-only -Wall over the parameter corners the wrapper can ask for."""
    import subprocess

    from hw.ops.base import RTL_DIR
    from hw.rtlsim import verilator_root

    root = verilator_root()
    corners = [
        {},
        {"PE": 3, "KERNEL": 1, "IBITS": 1},
        {"PE": 2, "KERNEL": 9, "IBITS": 4, "SIGNED": 1, "ACCUMULATE": 1, "SHIFT": 3, "OBITS": 4},
        {"PE": 8, "KERNEL": 4, "IBITS": 8, "SIGNED": 1},
        {"PE": 1, "KERNEL": 6, "IBITS": 3, "SIGNED": 1, "ACCUMULATE": 1, "OBITS": 6},
    ]
    for params in corners:
        cmd = [str(root / "bin" / "verilator"), "--lint-only", "-Wall",
               *[f"-G{k}={v}" for k, v in params.items()], str(RTL_DIR / "qnn_pool.sv")]
        env = {"VERILATOR_ROOT": str(root), "PATH": "/usr/bin:/bin"}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert r.returncode == 0 and "%Warning" not in r.stderr, (params, r.stderr)
