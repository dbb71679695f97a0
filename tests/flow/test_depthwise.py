"""Depthwise-separable networks through the whole flow: depthwise convs lowered to FINN's
VVAU and onto qnnflow's qnn_vvu core (7-series), bit-exact in every stage incl. Verilator.

Two nets, seeded random weights with BatchNorm and activation scales calibrated on MNIST
(non-degenerate activations):
- models.mobilenet (stem, pool, three depthwise-separable blocks, one with a stride-2
  depthwise conv, global average pool);
- Brevitas's own MobileNet-v1 (brevitas_examples.imagenet_classification) at small width:
  per-channel activation scales in front of its depthwise convs, TruncAvgPool2d.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import flow

STAGES = ("brevitas", "qonnx", "streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls")


def _calibrated(module):
    from models import load_mnist
    from models.cnn import calibrate

    calib = load_mnist("train").pixels[:256].astype(np.float32) / 256
    return calibrate(module, torch.from_numpy(calib).reshape(-1, 1, 28, 28))


def _exact_all_rtl(report, samples):
    v = report["verify"]
    assert v["samples"] == samples and list(v["stages"]) == list(STAGES) and not v["skipped"]
    assert all(v["mismatches"][s] == 0 for s in STAGES), v["first_mismatch"]
    assert report["hls_layers"] == []


@pytest.fixture(scope="module")
def mobilenet_build(tmp_path_factory):
    import hw.ops
    from models import build_model

    hw.ops.register()
    torch.manual_seed(0)
    module = _calibrated(build_model("mobilenet-w4a4"))
    out = tmp_path_factory.mktemp("mobilenet") / "build"
    return out, flow.build(module, out, input_shape=(1, 28, 28), samples=30)


def test_mobilenet_all_rtl_and_exact_in_every_stage(mobilenet_build):
    out, report = mobilenet_build
    _exact_all_rtl(report, 30)
    ours = list(report["open_rtl_layers"].values())
    assert ours.count("VVAU_int_rtl") == 3  # every depthwise conv on the core
    assert "GlobalAccPool_rtl" in ours
    y = np.load(out / "outputs" / "intsim.npy")
    assert len(np.unique(y)) > 30  # scores vary from image to image: not a dead network


def test_depthwise_cycles_match_finn_estimate(mobilenet_build):
    """One window beat per cycle in the core: the sized pipeline reaches FINN's estimate."""
    _, report = mobilenet_build
    assert report["rtlsim"]["cycles_per_image"] <= 1.05 * report["estimates"]["max_cycles"]


def test_brevitas_mobilenet_v1_all_rtl_and_exact(tmp_path):
    from brevitas_examples.imagenet_classification.models.mobilenetv1 import MobileNet

    import hw.ops

    hw.ops.register()
    torch.manual_seed(0)
    # FINN lowers only a flooring TruncAvgPool2d (round_average_pool=False)
    net = _calibrated(MobileNet(channels=[[8], [16], [32]], first_stage_stride=False, act_bit_width=4,
                                weight_bit_width=4, first_layer_bit_width=4, last_layer_bit_width=8,
                                avg_pool_kernel_size=7, round_average_pool=False, in_channels=1,
                                num_classes=10))
    report = flow.build(net, tmp_path / "b", input_shape=(1, 28, 28), samples=20)
    _exact_all_rtl(report, 20)
    assert list(report["open_rtl_layers"].values()).count("VVAU_int_rtl") == 2


def test_unlowerable_layers_refused_before_any_long_step_with_reasons(tmp_path):
    """A rounding average pool and a grouped conv are both named, each with its reason, in
    one error at the first step; no build folder is left."""
    from brevitas import nn as qnn

    from flow.errors import FlowError

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.conv = qnn.QuantConv2d(1, 8, 3, bias=False, weight_bit_width=4)
            self.act = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            self.grouped = qnn.QuantConv2d(8, 8, 3, groups=2, bias=False, weight_bit_width=4)
            self.act2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            self.pool = qnn.TruncAvgPool2d(kernel_size=22, bit_width=8, float_to_int_impl_type="ROUND")
            self.fc = qnn.QuantLinear(8, 10, bias=False, weight_bit_width=4)

        def forward(self, x):
            x = self.pool(self.act2(self.grouped(self.act(self.conv(self.inp(x))))))
            return self.fc(x.flatten(1))

    out = tmp_path / "b"
    with pytest.raises(FlowError, match=r"2 node\(s\) the flow cannot lower: .*\(Conv: grouped conv \(2 groups "
                                        r"of 8 channels.*\(Trunc: rounding_mode ROUND"):
        flow.build(Net().eval(), out, input_shape=(1, 28, 28), samples=5)
    assert not out.exists()
