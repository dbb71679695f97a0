"""--binary-impl: binary (bipolar) layers on qnnflow's LUT-based cores (xnor, the default:
XNOR popcount, and +-1 weights x integer inputs on adder trees, the first layer included;
lut: ternary -1/0/+1 weights too) or, relabelled as INT2, on FINN's DSP-based RTL matrix
unit (dsp)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import qonnx_make_model

from flow.config import BuildConfig
from flow.errors import FlowError
from flow.build_folder import find_step
from flow.transforms import BipolarAsInt2, RoundThresholdsHalfEven

STAGES = ("brevitas", "qonnx", "streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls")


def _bipolar_net(thresholds: np.ndarray, weights: np.ndarray) -> ModelWrapper:
    """x (INT8, 1x4) -> MultiThreshold (BIPOLAR: 2 * #(x >= T) - 1) -> MatMul with -1/+1 weights."""
    c = thresholds.shape[0]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, weights.shape[1]])
    mt = helper.make_node("MultiThreshold", ["x", "t"], ["a"], domain="qonnx.custom_op.general",
                          out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
    mm = helper.make_node("MatMul", ["a", "w"], ["y"])
    m = ModelWrapper(qonnx_make_model(helper.make_graph([mt, mm], "g", [x], [y]), producer_name="test"))
    m.set_initializer("t", thresholds.astype(np.float32))
    m.set_initializer("w", weights.astype(np.float32))
    m.set_tensor_datatype("x", DataType["INT8"])
    m.set_tensor_datatype("a", DataType["BIPOLAR"])
    m.set_tensor_datatype("w", DataType["BIPOLAR"])
    m = m.transform(InferShapes())
    m.set_tensor_datatype("a", DataType["BIPOLAR"])
    return m


def test_bipolar_as_int2_keeps_every_value():
    """Same outputs on every INT8 input (ties x == T included), only the labels change."""
    from qonnx.core.onnx_exec import execute_onnx

    rng = np.random.default_rng(0)
    thr = rng.integers(-5, 6, (4, 1))
    m = _bipolar_net(thr, rng.choice([-1, 1], (4, 3)))
    r = m.transform(BipolarAsInt2())
    mt = r.graph.node[0]
    assert r.get_tensor_datatype("a") == DataType["INT2"] and r.get_tensor_datatype("w") == DataType["INT2"]
    assert np.array_equal(r.get_initializer("t"), np.repeat(thr, 2, axis=1))
    attrs = {a.name: a for a in mt.attribute}
    assert attrs["out_scale"].f == 1.0 and attrs["out_bias"].f == -1.0 and attrs["out_dtype"].s == b"INT2"
    for v in range(-128, 128):
        x = {"x": np.full((1, 4), v, dtype=np.float32)}
        assert np.array_equal(execute_onnx(m, x)["y"], execute_onnx(r, x)["y"]), v


def test_bipolar_as_int2_runs_after_rounding():
    """A bipolar activation is a sign (x >= T); relabelled before the half-to-even rounding, its
    two equal INT2 thresholds on a tie would round apart and give 0 at x == T."""
    from qonnx.core.onnx_exec import execute_onnx

    thr = np.array([[3.0]])
    w = np.ones((1, 1))
    ref = execute_onnx(_bipolar_net(thr, w), {"x": np.array([[3.0]], np.float32)})["y"]
    right = _bipolar_net(thr, w).transform(RoundThresholdsHalfEven()).transform(BipolarAsInt2())
    wrong = _bipolar_net(thr, w).transform(BipolarAsInt2()).transform(RoundThresholdsHalfEven())
    x = {"x": np.array([[3.0]], np.float32)}
    assert ref.item() == 1.0 and execute_onnx(right, x)["y"].item() == 1.0
    assert execute_onnx(wrong, x)["y"].item() == 0.0


def test_binary_impl_option_values(tmp_path):
    with pytest.raises(FlowError, match="--binary-impl must be one of xnor, lut, dsp"):
        BuildConfig(out=tmp_path / "b", model="tfc-w1a1", binary_impl="luts")
    from flow.cli import make_parser

    a = make_parser().parse_args(["build", "--model", "tfc-w1a1", "--out", str(tmp_path / "b")])
    assert a.binary_impl == "xnor"
    r = subprocess.run([sys.executable, "-m", "flow.cli", "build", "--model", "tfc-w1a1", "--binary-impl", "luts",
                        "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice: 'luts'" in r.stderr


@pytest.fixture(scope="module")
def dsp_build(tmp_path_factory):
    """`qnnflow build --model tfc-w1a1 --binary-impl dsp` (shipped checkpoint), 100 images."""
    out = tmp_path_factory.mktemp("w1a1dsp") / "b"
    r = subprocess.run([sys.executable, "-m", "flow.cli", "build", "--model", "tfc-w1a1", "--binary-impl", "dsp",
                        "--samples", "100", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, json.loads((out / "report.json").read_text())


def test_tfc_w1a1_dsp_all_rtl_on_finn_mvu(dsp_build):
    """Every binary layer on FINN's MVAU_rtl (INT2 x INT2, DSPs), nothing on qnnflow's cores."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from flow.build_folder import final_graph

    out, rep = dsp_build
    assert rep["binary_impl"] == "dsp" and json.loads((out / "build.json").read_text())["binary_impl"] == "dsp"
    assert rep["hls_layers"] == [] and rep["open_rtl_layers"] == {}
    ops = [layer["op_type"] for layer in rep["layers"] if not layer["op_type"].startswith("Streaming")]
    assert ops == ["MVAU_rtl", "Thresholding_rtl"] * 3 + ["MVAU_rtl"]
    g = ModelWrapper(str(final_graph(out)))
    mvaus = [getCustomOp(n) for n in g.get_nodes_by_op_type("MVAU_rtl")]
    assert [m.get_nodeattr("inputDataType") for m in mvaus] == ["UINT8", "INT2", "INT2", "INT2"]
    assert all(m.get_nodeattr("weightDataType") == "INT2" and not m.get_nodeattr("binaryXnorMode") for m in mvaus)
    assert rep["estimates"]["layer_resources"]["total"]["DSP"] > 16  # the first layer's 16 and the binary ones
    # the relabelling: after streamlining without XNOR conversion, before the float tail split
    s = ModelWrapper(str(find_step(out, "bipolar_as_int2")))
    assert not s.get_nodes_by_op_type("XnorPopcountMatMul")
    assert not [t for t in s.graph.value_info if s.get_tensor_datatype(t.name).name == "BIPOLAR"]
    for n in s.get_nodes_by_op_type("MultiThreshold")[1:]:
        t = s.get_initializer(n.input[1])
        assert t.shape[1] == 2 and np.array_equal(t[:, 0], t[:, 1])


def test_tfc_w1a1_dsp_bit_exact_in_every_stage(dsp_build):
    out, rep = dsp_build
    v = rep["verify"]
    assert v["samples"] == 100 and v["skipped"] == {}
    assert v["mismatches"] == {s: 0 for s in STAGES}, v["first_mismatch"]
    assert rep["accuracy"]["rtlsim"] > 90
    assert rep["rtlsim"]["cycles_per_image"] <= rep["estimates"]["max_cycles"] * 1.02
    # the accelerator outputs the +-1 dot products: logits = integers * one scale (no popcount offset)
    y = np.load(out / "outputs" / "rtlsim.npy")
    assert y.min() < 0 and np.all(np.abs(y) <= 64) and np.all(y % 2 == 0)  # 64 terms of +-1: even


@pytest.fixture(scope="module")
def lut_build(tmp_path_factory):
    """`qnnflow build --model tfc-w1a1 --fps 1000000 --topk 1` (the default --binary-impl)."""
    out = tmp_path_factory.mktemp("w1a1lut") / "b"
    r = subprocess.run([sys.executable, "-m", "flow.cli", "build", "--model", "tfc-w1a1", "--fps", "1000000",
                        "--topk", "1", "--samples", "100", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, json.loads((out / "report.json").read_text())


def test_tfc_w1a1_at_1m_fps_runs_on_luts_only(lut_build):
    """Every layer, the 8-bit-pixel first one included, on our binary core with its thresholds
    inside (no accumulator stream, no thresholding layer): no DSP, >= 1e6 images/s, exact."""
    out, rep = lut_build
    ops = [layer["op_type"] for layer in rep["layers"] if not layer["op_type"].startswith("Streaming")]
    assert ops == ["MVAU_binary_rtl"] * 4 + ["LabelSelect_rtl"]
    assert rep["thresholds_absorbed"] == ["Thresholding_rtl_0", "Thresholding_rtl_1", "Thresholding_rtl_2"]
    assert rep["estimates"]["layer_resources"]["total"]["DSP"] == 0
    v = rep["verify"]
    assert v["mismatches"] == {s: 0 for s in STAGES}, v["first_mismatch"]
    assert rep["rtlsim"]["fps"] >= 1e6 and rep["rtlsim"]["cycles_per_image"] <= 100


def test_tfc_w1a1_first_layer_synthesizes_without_dsp(lut_build):
    """Yosys on the first layer (784 x 64, 512 lanes of 8-bit pixels x +-1): adder trees on
    carry chains, weights in block RAM; FINN's MVAU_rtl took 176 DSP48E1 and ~16k LUT here."""
    from hw.synth import synth_counts

    out, _ = lut_build
    r = synth_counts(out, top=False, layers=["MVAU_binary_rtl_0"])
    c = r["layers"]["MVAU_binary_rtl_0"]["counts"]
    assert r["layers"]["MVAU_binary_rtl_0"]["status"] == "ok"
    assert c["DSP48E1"] == 0 and c["BRAM_18K"] > 0
    assert c["LUT"] < 7000, c


def test_tfc_w2a2_ternary_layers_on_luts(tmp_path):
    """`qnnflow build --model tfc-w2a2 --binary-impl lut --topk 1`: every layer's -1/0/+1
    weights (the 8-bit-pixel first layer's too) on our core's ternary mode, thresholds
    inside, no DSP in FINN's estimate, exact in every stage (100 images, stalls included)."""
    from qonnx.custom_op.registry import getCustomOp

    from flow.build_folder import final_graph

    out = tmp_path / "b"
    r = subprocess.run([sys.executable, "-m", "flow.cli", "build", "--model", "tfc-w2a2", "--binary-impl", "lut",
                        "--topk", "1", "--samples", "100", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    assert rep["binary_impl"] == "lut"
    ops = [layer["op_type"] for layer in rep["layers"] if not layer["op_type"].startswith("Streaming")]
    assert ops == ["MVAU_binary_rtl"] * 4 + ["LabelSelect_rtl"]
    g = ModelWrapper(str(final_graph(out)))
    assert [getCustomOp(n).get_nodeattr("ternaryWeights") for n in g.get_nodes_by_op_type("MVAU_binary_rtl")] \
        == [1, 1, 1, 1]
    assert rep["estimates"]["layer_resources"]["total"]["DSP"] == 0
    v = rep["verify"]
    assert v["mismatches"] == {s: 0 for s in STAGES}, v["first_mismatch"]
