"""Residual networks through the whole flow: a fork (DuplicateStreams), a join (AddStreams),
the graph stitcher, join-FIFO sizing, bit-exact in every stage including Verilator.

The MLP: x -> fc0+BN -> q = a; a -> fc1+BN+relu -> fc2+BN -> q = b; relu5(a + b) -> fc3,
with q one shared 4-bit quantizer (both operands of the add on one scale, as Brevitas's
residual blocks share theirs), BatchNorm statistics random (seeded) so that no channel
is constant."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from brevitas import nn as qnn

import flow
from qonnx.core.modelwrapper import ModelWrapper

from flow.build_folder import final_graph

STAGES = ("brevitas", "qonnx", "streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls")


class ResMLP(torch.nn.Module):
    def __init__(self, n=32, w=4, a=4):
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.fc0 = qnn.QuantLinear(784, n, bias=False, weight_bit_width=w)
        self.bn0 = torch.nn.BatchNorm1d(n)
        self.act = qnn.QuantReLU(bit_width=a, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(n, n, bias=False, weight_bit_width=w)
        self.bn1 = torch.nn.BatchNorm1d(n)
        self.relu1 = qnn.QuantReLU(bit_width=a, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(n, n, bias=False, weight_bit_width=w)
        self.bn2 = torch.nn.BatchNorm1d(n)
        self.out = qnn.QuantReLU(bit_width=a + 1, return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(n, 10, bias=False, weight_bit_width=w)

    def forward(self, x):
        a = self.act(self.bn0(self.fc0(self.inp(x))))
        b = self.act(self.bn2(self.fc2(self.relu1(self.bn1(self.fc1(a))))))
        return self.fc3(self.out(a + b))


def res_mlp(seed=0):
    torch.manual_seed(seed)
    net = ResMLP()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-.2, .2)
                m.running_var.uniform_(.5, 2)
                m.weight.uniform_(.5, 1.5)
                m.bias.uniform_(-.2, .2)
    return net.eval()


@pytest.fixture(scope="module")
def res_build(tmp_path_factory):
    import hw.ops

    hw.ops.register()  # the build's graphs hold qnnflow's own RTL layers
    out = tmp_path_factory.mktemp("res") / "build"
    report = flow.build(res_mlp(), torch.zeros(1, 784), out, samples=100)
    return out, report


def test_residual_mlp_all_rtl_and_exact_in_every_stage(res_build):
    out, report = res_build
    v = report["verify"]
    assert v["samples"] == 100 and list(v["stages"]) == list(STAGES) and not v["skipped"]
    assert all(v["mismatches"][s] == 0 for s in STAGES), v["first_mismatch"]
    assert report["hls_layers"] == []
    assert sorted(set(report["open_rtl_layers"].values())) == ["AddStreams_rtl", "DuplicateStreams_rtl"]
    y = np.load(out / "outputs" / "intsim.npy")
    assert len(np.unique(y)) > 20  # not a dead network
    np.testing.assert_array_equal(np.load(out / "outputs" / "rtlsim.npy"), y)


def test_residual_fifos_sized_for_the_skip_path(res_build):
    """The FIFO in front of each join input holds at least one image of its stream, and the
    sized pipeline reaches FINN's estimated interval."""
    from qonnx.custom_op.registry import getCustomOp

    from flow.steps.rtl import _join_fifos

    out, report = res_build
    model = ModelWrapper(str(final_graph(out)))
    joins = _join_fifos(model)
    assert len(joins) == 2  # one per input of the one AddStreams
    depths = {n.name: int(getCustomOp(n).get_nodeattr("depth")) for n in model.graph.node if n.name in joins}
    assert all(depths[f] >= joins[f] + 2 for f in joins), (depths, joins)
    sizing = json.loads((out / "fifo_sizing.json").read_text())
    assert sizing["within_tolerance"] is True
    assert report["rtlsim"]["cycles_per_image"] <= 1.02 * report["estimates"]["max_cycles"]
    top = (out / "rtl" / "qnnflow_top.v").read_text()
    assert "(a graph: 1 fork(s), 1 join(s))" in top


def test_residual_rtlsim_deadlock_names_the_full_fifo(res_build, tmp_path):
    """A skip FIFO made too shallow for the long branch deadlocks the fork; the watchdog's
    error names the FIFO that filled up."""
    from qonnx.custom_op.registry import getCustomOp

    from flow.steps.rtl import _join_fifos
    from hw.errors import HwError
    from hw.layertest import generate_rtl
    from hw.rtlsim import simulate
    from hw.stitch import stitch

    out, _ = res_build
    model = ModelWrapper(str(final_graph(out)))
    skip = max(_join_fifos(model), key=lambda f: int(getCustomOp(model.get_node_from_name(f)).get_nodeattr("depth")))
    for n in model.graph.node:
        inst = getCustomOp(n)
        inst.set_nodeattr("code_gen_dir_ipgen", "")
        if n.name == skip:
            inst.set_nodeattr("depth", 2)
    from flow.finn_compat import finn_build_dir

    with finn_build_dir(tmp_path / "finn"):  # FINN's FIFOs read FINN's settings
        generate_rtl(model, tmp_path / "codegen")
    design = stitch(model, tmp_path / "rtl")
    x = np.load(out / "outputs" / "inputs.npy")[:4].reshape(4, 784)  # the MLP's HW input is the pixels
    with pytest.raises(HwError, match=rf"deadlock.*filled up: [^;]*{skip} \(depth 2\)"):
        simulate(design, x, cache_dir=tmp_path / "cache")


@pytest.fixture(scope="module")
def resnet_build(tmp_path_factory):
    """models.resnet (stem, pool, identity block, downsampling block with a 1x1-conv
    shortcut, global average pool), seeded random weights, BatchNorm and activation scales
    calibrated on MNIST so that activations are not degenerate."""
    import hw.ops
    from models import build_model, load_mnist
    from models.cnn import calibrate

    hw.ops.register()
    torch.manual_seed(0)
    module = build_model("resnet-w4a4")
    calib = load_mnist("train").pixels[:256].astype(np.float32) / 256
    calibrate(module, torch.from_numpy(calib).reshape(-1, 1, 28, 28))
    out = tmp_path_factory.mktemp("resnet") / "build"
    return out, flow.build(module, out, input_shape=(1, 28, 28), samples=50)


def test_conv_resnet_all_rtl_and_exact_in_every_stage(resnet_build):
    out, report = resnet_build
    v = report["verify"]
    assert v["samples"] == 50 and list(v["stages"]) == list(STAGES) and not v["skipped"]
    assert all(v["mismatches"][s] == 0 for s in STAGES), v["first_mismatch"]
    assert report["hls_layers"] == []
    ours = report["open_rtl_layers"].values()
    for op in ("AddStreams_rtl", "DuplicateStreams_rtl", "GlobalAccPool_rtl", "Pool_rtl"):
        assert op in ours, op
    assert sum(op == "AddStreams_rtl" for op in ours) == 2  # both blocks' joins
    y = np.load(out / "outputs" / "intsim.npy")
    assert len(np.unique(y)) > 50  # the scores vary from image to image: not a dead network
    top = (out / "rtl" / "qnnflow_top.v").read_text()
    assert "(a graph: 2 fork(s), 2 join(s))" in top


def test_no_finn_mvau_with_a_single_fold(resnet_build):
    """FINN's RTL matrix unit overflows its output queue at SIMD == MW under backpressure;
    the folding never leaves one so (the stem conv has MW = 9)."""
    from qonnx.custom_op.registry import getCustomOp

    out, _ = resnet_build
    model = ModelWrapper(str(final_graph(out)))
    mvaus = [getCustomOp(n) for n in model.graph.node if n.op_type == "MVAU_rtl"]
    assert mvaus and all(int(i.get_nodeattr("SIMD")) < int(i.get_nodeattr("MW")) for i in mvaus)


def test_matrix_units_aligned_with_their_window_generators(resnet_build):
    """A matrix unit's SIMD and its window generator's divide one another (else FINN's width
    converter between them, at a non-integer ratio, holds the layer below its estimate), and
    the sized pipeline reaches FINN's estimated interval."""
    from qonnx.custom_op.registry import getCustomOp

    from flow.steps.hardware import _aligned

    out, report = resnet_build
    model = ModelWrapper(str(final_graph(out)))
    pairs = 0
    for n in model.graph.node:
        if n.op_type != "MVAU_rtl":
            continue
        prod = model.find_producer(n.input[0])
        while prod is not None and prod.op_type.startswith(("StreamingFIFO", "StreamingDataWidthConverter")):
            prod = model.find_producer(prod.input[0])
        if prod is not None and prod.op_type.startswith("ConvolutionInputGenerator") \
                and not getCustomOp(prod).get_nodeattr("parallel_window"):
            pairs += 1
            assert _aligned(int(getCustomOp(n).get_nodeattr("SIMD")), int(getCustomOp(prod).get_nodeattr("SIMD")))
    assert pairs >= 3
    assert report["rtlsim"]["cycles_per_image"] <= 1.02 * report["estimates"]["max_cycles"]


def test_brevitas_quant_basic_blocks_all_rtl_and_exact(tmp_path):
    """Brevitas's own residual block (brevitas_examples.bnn_pynq.models.resnet.QuantBasicBlock:
    identity and downsampling shortcuts, its adds of QuantTensors) behind Brevitas's default
    signed 8-bit input quantizer, with a global average pool: exact in all 7 stages."""
    from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock

    import hw.ops
    from models import load_mnist
    from models.cnn import calibrate

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.conv = qnn.QuantConv2d(1, 8, 3, padding=1, bias=False, weight_bit_width=4)
            self.bn = torch.nn.BatchNorm2d(8)
            self.act = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            self.b1 = QuantBasicBlock(8, 8, 1, shared_quant_act=self.act, act_bit_width=4, weight_bit_width=4)
            self.b2 = QuantBasicBlock(8, 16, 2, act_bit_width=4, weight_bit_width=4)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = qnn.QuantLinear(16, 10, bias=False, weight_bit_width=4)

        def forward(self, x):
            x = self.b2(self.b1(self.act(self.bn(self.conv(self.inp(x))))))
            return self.fc(torch.flatten(self.pool(x), 1))

    hw.ops.register()
    torch.manual_seed(0)
    net = Net()
    calib = load_mnist("train").pixels[:256].astype(np.float32) / 256
    calibrate(net, torch.from_numpy(calib).reshape(-1, 1, 28, 28))
    report = flow.build(net, tmp_path / "b", input_shape=(1, 28, 28), samples=20)
    v = report["verify"]
    assert list(v["stages"]) == list(STAGES) and not v["skipped"]
    assert all(v["mismatches"][s] == 0 for s in STAGES), v["first_mismatch"]
    assert report["hls_layers"] == []


def test_join_of_differently_scaled_branches_refused_at_the_first_step(tmp_path):
    """Branches quantized by two different quantizers (plain tensors, so Brevitas lets the
    add through) cannot be an integer join: the first step names the Add and the fix."""
    from flow.errors import FlowError

    class TwoScales(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.fc0 = qnn.QuantLinear(784, 16, bias=False, weight_bit_width=4)
            self.qa = qnn.QuantReLU(bit_width=4)
            self.fc1 = qnn.QuantLinear(784, 16, bias=False, weight_bit_width=4)
            self.qb = qnn.QuantReLU(bit_width=4)
            self.fc2 = qnn.QuantLinear(16, 10, bias=False, weight_bit_width=4)

        def forward(self, x):
            x = self.inp(x)
            return self.fc2(self.qa(self.fc0(x)) + self.qb(self.fc1(x)))

    torch.manual_seed(0)
    net = TwoScales()
    with torch.no_grad():  # qb on another scale than qa (uncalibrated, eval uses the buffer)
        impl = net.qb.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl
        impl.value.fill_(3.0)
        impl.buffer.fill_(3.0)
    out = tmp_path / "b"
    with pytest.raises(FlowError, match=r"1 node\(s\) the flow cannot lower: .*\(Add: its inputs are on different "
                                        r"quantization scales.*shared activation quantizer"):
        flow.build(net.eval(), torch.zeros(1, 784), out, samples=5)
    assert not out.exists()
