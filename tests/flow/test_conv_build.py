"""Convolutional networks through the whole flow, bit-exact in every stage.

LeNet-5 (w2a2, seeded random weights, BatchNorm/activation scales calibrated on MNIST so
that activations are not degenerate) on 100 MNIST test images, all RTL (its max pools on
qnnflow's own core) and simulated with Verilator; binary LeNet-5 (w1a1) all RTL on
qnnflow's XNOR-popcount and pool cores; a small 3-channel all-RTL conv net whose
NCHW -> NHWC layout head is a real permutation (with one channel it is the identity in
memory order, which would hide a head applied wrongly or not at all) and which Verilator
simulates; a depthwise conv (VVAU); and the localisation of a corrupted layer.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from brevitas import nn as qnn

import flow
from flow.build_folder import find_step
from flow.pipeline import STEPS
from flow.transforms.float_tail import FloatTail
from flow.transforms.layout_head import LayoutHead
from models import get_preset, load_mnist
from models.cnn import build_cnn, calibrate

CORE_STAGES = ("brevitas", "qonnx", "streamlined", "hw_python", "intsim")


def assert_bit_exact(report: dict, samples: int) -> None:
    v = report["verify"]
    assert v["samples"] == samples and v["reference"] == "intsim"
    for stage in CORE_STAGES:
        assert stage in v["stages"], stage
        assert v["mismatches"][stage] == 0, (stage, v["first_mismatch"].get(stage))


@pytest.fixture(scope="module")
def lenet_build(tmp_path_factory):
    torch.manual_seed(0)
    module = build_cnn("lenet5", get_preset("w2a2"))
    calib = load_mnist("train").pixels[:256].astype(np.float32) / 256
    calibrate(module, torch.from_numpy(calib).reshape(-1, 1, 28, 28))
    out = tmp_path_factory.mktemp("lenet") / "build"
    report = flow.build(module, out, input_shape=(1, 28, 28), samples=100)
    return out, report


def test_lenet5_bit_exact_in_every_stage(lenet_build):
    out, report = lenet_build
    assert_bit_exact(report, 100)
    y = np.load(out / "outputs" / "intsim.npy")
    assert y.shape == (100, 10) and len(np.unique(y)) > 5  # not a dead network
    assert report["verify"]["argmax_ties"] < 50
    assert json.loads((out / "report.json").read_text())["verify"]["mismatches"] == report["verify"]["mismatches"]
    # intsim also runs the streamlined graph (Transpose, Im2Col, MaxPoolNHWC, Reshape, ...) on the raw inputs
    import sim

    x = np.load(out / "outputs" / "inputs.npy")
    for mode in ("strict", "fast"):
        assert np.array_equal(sim.run(find_step(out, "split_float_tail"), x, mode), y)


def test_lenet5_hardware_layers(lenet_build):
    out, report = lenet_build
    ops = [layer["op_type"] for layer in report["layers"]]
    compute = [op for op in ops if not op.startswith(("StreamingFIFO", "StreamingDataWidthConverter"))]
    assert compute == [
        "FMPadding_rtl", "ConvolutionInputGenerator_rtl", "MVAU_rtl", "Thresholding_rtl",  # conv 5x5, pad 2
        "ConvolutionInputGenerator_rtl", "Pool_rtl",                                      # maxpool 2
        "ConvolutionInputGenerator_rtl", "MVAU_rtl", "Thresholding_rtl",                  # conv 5x5
        "ConvolutionInputGenerator_rtl", "Pool_rtl",                                      # maxpool 2
        "MVAU_rtl", "Thresholding_rtl", "MVAU_rtl", "Thresholding_rtl", "MVAU_rtl",       # FC 120, 84, 10
    ]
    # MaxPool has no RTL implementation in FINN: FINN's Pool_hls moved onto qnnflow's core
    assert report["hls_layers"] == []
    assert report["open_rtl_layers"] == {"Pool_rtl_0": "Pool_rtl", "Pool_rtl_1": "Pool_rtl"}


def test_lenet5_all_rtl_passes_rtlsim(lenet_build):
    """With the pools on hw/rtl/qnn_pool.sv the whole LeNet-5 simulates with Verilator: bit-exact
    with and without random stalls, at FINN's estimated initiation interval."""
    out, report = lenet_build
    v = report["verify"]
    assert "rtlsim" not in v["skipped"]
    for stage in ("rtlsim", "rtlsim_stalls"):
        assert stage in v["stages"] and v["mismatches"][stage] == 0, (stage, v["first_mismatch"].get(stage))
    assert np.array_equal(np.load(out / "outputs" / "rtlsim.npy"), np.load(out / "outputs" / "intsim.npy"))
    r = report["rtlsim"]
    assert r["images"] == 100
    assert r["cycles_per_image"] <= r["estimated_cycles_per_image"] * 1.02
    # FINN's SetFolding folds Pool_rtl as it folds Pool_hls: the window generator's SIMD follows the PE
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import hw.ops

    hw.ops.register()
    g = ModelWrapper(str(find_step(out, STEPS[-1][0])))
    for node in g.get_nodes_by_op_type("Pool_rtl"):
        swg = g.find_producer(node.input[0])
        while not swg.op_type.startswith("ConvolutionInputGenerator"):  # through FIFOs
            swg = g.find_producer(swg.input[0])
        assert getCustomOp(swg).get_nodeattr("SIMD") == getCustomOp(node).get_nodeattr("PE")
    assert [getCustomOp(n).get_nodeattr("PE") for n in g.get_nodes_by_op_type("Pool_rtl")] == [2, 1]


def test_lenet5_layout_head_in_software(lenet_build):
    out, _ = lenet_build
    head = LayoutHead.load(out / "layout_head.npz")
    assert head.ops == ("Transpose",) and head.in_shape == (1, 28, 28) and head.out_shape == (28, 28, 1)
    from qonnx.core.modelwrapper import ModelWrapper

    hw = ModelWrapper(str(find_step(out, "split_layout_head")))
    assert hw.graph.node[0].op_type == "Im2Col"
    assert hw.get_tensor_shape(hw.graph.input[0].name) == [1, 28, 28, 1]
    x, xh = np.load(out / "outputs" / "inputs.npy"), np.load(out / "outputs" / "hw_inputs.npy")
    assert np.array_equal(xh, head.apply(x).reshape(len(x), -1))


class TinyRGBNet(torch.nn.Module):
    """3x8x8 input: conv3x3(4, stride 2, pad 1) -> BN -> act -> FC 5: all RTL, so rtlsim runs too."""

    def __init__(self):
        super().__init__()
        p = get_preset("w4a4")
        self.inp = qnn.QuantIdentity(act_quant=p.input_quant(), return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(3, 4, 3, stride=2, padding=1, bias=False, weight_quant=p.weight_quant(True))
        self.bn = torch.nn.BatchNorm2d(4)
        self.act = p.act_layer()
        self.fc = qnn.QuantLinear(4 * 4 * 4, 5, bias=False, weight_quant=p.weight_quant(False),
                                  return_quant_tensor=True)

    def forward(self, x):
        y = self.fc(self.act(self.bn(self.conv(self.inp(x)))).flatten(1))
        return y.value if hasattr(y, "value") else y


def test_multichannel_input_layout_head(tmp_path):
    """With 3 input channels NCHW -> NHWC moves values: the HW stages (rtlsim included)
    get head(x)."""
    torch.manual_seed(1)
    module = TinyRGBNet()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 3, 8, 8))
    calibrate(module, torch.from_numpy(x.astype(np.float32) / 256))
    np.save(tmp_path / "x.npy", x.reshape(len(x), -1))
    out = tmp_path / "b"
    report = flow.build(module, out, input_shape=(3, 8, 8), samples=30, input_npy=tmp_path / "x.npy")
    assert_bit_exact(report, 30)
    assert report["hls_layers"] == []
    for stage in ("rtlsim", "rtlsim_stalls"):  # Verilator, where the flow runs it
        assert report["verify"]["mismatches"].get(stage, 0) == 0, stage
    head = LayoutHead.load(out / "layout_head.npz")
    assert head.ops == ("Transpose",) and not head.is_identity
    assert np.array_equal(head.apply(x), x.transpose(0, 2, 3, 1))
    assert len(np.unique(np.load(out / "outputs" / "intsim.npy"))) > 3
    # fed without the head, the hardware graph computes something else: the head matters
    import sim

    hw = find_step(out, STEPS[-1][0])  # the final HW graph, as intsim ran it
    assert not np.array_equal(sim.run(hw, x.reshape(len(x), -1)), np.load(out / "outputs" / "intsim.npy"))


class DepthwiseNet(torch.nn.Module):
    """3x8x8: conv3x3(4, pad 1) -> depthwise conv3x3 (groups 4, stride 2) -> FC 5; each conv + BN + act."""

    def __init__(self):
        super().__init__()
        p = get_preset("w4a4")
        self.inp = qnn.QuantIdentity(act_quant=p.input_quant(), return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(3, 4, 3, padding=1, bias=False, weight_quant=p.weight_quant(True))
        self.bn, self.act = torch.nn.BatchNorm2d(4), p.act_layer()
        self.dw = qnn.QuantConv2d(4, 4, 3, groups=4, stride=2, bias=False, weight_quant=p.weight_quant(True))
        self.bn2, self.act2 = torch.nn.BatchNorm2d(4), p.act_layer()
        self.fc = qnn.QuantLinear(4 * 3 * 3, 5, bias=False, weight_quant=p.weight_quant(False),
                                  return_quant_tensor=True)

    def forward(self, x):
        y = self.act(self.bn(self.conv(self.inp(x))))
        y = self.fc(self.act2(self.bn2(self.dw(y))).flatten(1))
        return y.value if hasattr(y, "value") else y


def test_depthwise_conv_bit_exact(tmp_path):
    """A depthwise conv becomes a VVAU on our qnn_vvu core (FINN's RTL VVAU is Versal-only)
    behind a depthwise window generator and a FIFO; FINN's python VVAU needs its generator as
    direct producer (flow.stages)."""
    torch.manual_seed(1)
    module = DepthwiseNet()
    x = np.random.default_rng(0).integers(0, 256, size=(30, 3, 8, 8))
    calibrate(module, torch.from_numpy(x.astype(np.float32) / 256))
    np.save(tmp_path / "x.npy", x.reshape(len(x), -1))
    report = flow.build(module, tmp_path / "b", input_shape=(3, 8, 8), samples=30, input_npy=tmp_path / "x.npy")
    assert_bit_exact(report, 30)
    assert report["hls_layers"] == []
    assert all(report["verify"]["mismatches"][s] == 0 for s in ("rtlsim", "rtlsim_stalls"))
    ops = [layer["op_type"] for layer in report["layers"]]
    i = ops.index("VVAU_int_rtl")
    assert ops[i - 1].startswith("StreamingFIFO") and ops[i - 2] == "ConvolutionInputGenerator_rtl"


def test_conv_mismatch_localised(lenet_build, tmp_path):
    """Corrupt the second conv's thresholds in the final HW graph (which hw_python and intsim
    both run): the streamlined stage now differs from intsim, and the first diverging layer is
    found across FINN's splits (Im2Col vs FMPadding + SWG, MaxPoolNHWC vs SWG + Pool)."""
    import shutil

    from qonnx.core.modelwrapper import ModelWrapper

    from flow.verify import verify_build

    out = tmp_path / "b"
    shutil.copytree(lenet_build[0], out)
    path = find_step(out, STEPS[-1][0])
    m = ModelWrapper(str(path))
    thr = [n for n in m.graph.node if n.op_type.startswith("Thresholding")][1]
    t = m.get_initializer(thr.input[1])
    m.set_initializer(thr.input[1], t - 8)  # every output of this layer moves up
    m.save(str(path))
    r = verify_build(out, 20, stages=("streamlined", "hw_python", "intsim"), check_files=False)["verify"]
    assert r["mismatches"]["hw_python"] == 0 and r["mismatches"]["streamlined"] > 0
    first = r["first_mismatch"]["streamlined"]
    assert first["layer"] == "MultiThreshold_2" and first["intsim_layer"] == thr.name, first


def test_input_shape_of_conv_modules(tmp_path):
    """Zoo conv nets declare their (C, H, W); other conv modules must be given input_shape."""
    from flow.config import BuildConfig
    from flow.errors import FlowError
    from flow.steps.frontend import InputScale, _input_shape

    for arch in ("lenet5", "cnv"):
        module = build_cnn(arch, get_preset("w2a2"))
        cfg = BuildConfig(out=tmp_path / "b", module=module)
        assert _input_shape(cfg, InputScale(module, 1 / 256)) == (1, 28, 28)
        with torch.no_grad():  # and they take flattened pixels as well as images
            flat, img = module.eval()(torch.zeros(2, 784)), module(torch.zeros(2, 1, 28, 28))
        assert flat.shape == img.shape == (2, 10)
    with pytest.raises(FlowError, match="input_shape"):
        _input_shape(BuildConfig(out=tmp_path / "b", module=TinyRGBNet()), TinyRGBNet())


def test_lenet5_w1a1_all_rtl_bit_exact(tmp_path):
    """Binary LeNet-5 (w1a1: sign weights x mean|W|, sign activations; seeded random weights,
    BatchNorms calibrated on MNIST): its first conv (8-bit pixels x +-1) on qnnflow's binary core
    in its adder-tree mode, the binary convs and FCs on its XNOR-popcount mode, each with its
    thresholds inside (no DSP, no thresholding layer), the max pools of the 0/1 codes on
    qnnflow's pool core; all RTL, bit-exact in Verilator with and without stalls. Brevitas
    computes in float32: a pre-activation exactly on a sign boundary may come out a few ulps
    off, so the float stages may differ from the exact integers only on such float ties
    (flow.float_ties; checked against Brevitas run in float64)."""
    torch.manual_seed(0)
    module = build_cnn("lenet5", get_preset("w1a1"))
    calib = load_mnist("train").pixels[:256].astype(np.float32) / 256
    calibrate(module, torch.from_numpy(calib).reshape(-1, 1, 28, 28))
    out = tmp_path / "b"
    report = flow.build(module, out, input_shape=(1, 28, 28), samples=100)
    assert report["hls_layers"] == []
    ops = [layer["op_type"] for layer in report["layers"]
           if not layer["op_type"].startswith(("StreamingFIFO", "StreamingDataWidthConverter"))]
    assert ops == [
        "FMPadding_rtl", "ConvolutionInputGenerator_rtl", "MVAU_binary_rtl",
        "ConvolutionInputGenerator_rtl", "Pool_rtl",
        "ConvolutionInputGenerator_rtl", "MVAU_binary_rtl",
        "ConvolutionInputGenerator_rtl", "Pool_rtl",
        "MVAU_binary_rtl", "MVAU_binary_rtl", "MVAU_binary_rtl",
    ]
    assert len(report["thresholds_absorbed"]) == 4
    assert report["estimates"]["layer_resources"]["total"]["DSP"] == 0
    v = report["verify"]
    assert v["samples"] == 100 and v["skipped"] == {}
    for stage in ("streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls"):
        assert v["mismatches"][stage] == 0, (stage, v["first_mismatch"].get(stage))
    for stage in ("brevitas", "qonnx"):
        if v["mismatches"][stage]:
            assert v["explained"][stage]["unexplained"] == 0, (stage, v["explained"][stage])
    tie_samples = (v.get("explained", {}).get("brevitas") or {}).get("tie_samples", [])
    if tie_samples:  # the exact integers are Brevitas's own, computed in float64
        x = np.load(out / "outputs" / "inputs.npy")[tie_samples]
        tail = FloatTail.load(out / "float_tail.npz")
        with torch.no_grad():
            y = module.double()(torch.from_numpy(x.astype(np.float64) / 256).reshape(-1, 1, 28, 28))
        y = (y.value if hasattr(y, "value") else y).numpy()
        assert np.array_equal(np.rint(tail.invert(y)), np.load(out / "outputs" / "intsim.npy")[tie_samples])
    y = np.load(out / "outputs" / "rtlsim.npy")
    assert y.shape == (100, 10) and len(np.unique(y)) > 5  # not a dead network
    assert report["rtlsim"]["cycles_per_image"] <= report["rtlsim"]["estimated_cycles_per_image"] * 1.02
