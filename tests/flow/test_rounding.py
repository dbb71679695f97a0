"""Ties: Brevitas rounds half-to-even, FINN's thresholds half-up; the flow must follow Brevitas."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.core.scaling import ScalingImplType
from brevitas.quant import Int8WeightPerTensorFloat, Uint8ActPerTensorFloat

import flow
from flow.transforms.round_half_even import half_even_thresholds


def test_half_even_thresholds_unit():
    # levels 0,1,2,3: ties at 0.5 (lower level 0, even -> strict), 1.5 (odd -> >=), 2.5 (even -> strict)
    t = np.array([[0.5, 1.5, 2.5]], dtype=np.float32) * 2  # integer ties 1, 3, 5
    assert half_even_thresholds(t, 1.0, 0.0).tolist() == [[2.0, 3.0, 6.0]]
    # non-ties are ceiled exactly like FINN's RoundAndClipThresholds
    assert half_even_thresholds(np.array([[0.2, 1.7, -0.5]], np.float32), 1.0, 0.0).tolist() == [[1.0, 2.0, -0.0]]
    # a float32-ulp away from an integer is not a tie (thresholds come from float64
    # streamlining); signed levels (out_bias -2): lower levels -2, -1, 0
    near = np.array([[2.9999998, 5.0, 7.0]], dtype=np.float64)
    assert half_even_thresholds(near, 1.0, -2.0).tolist() == [[3.0, 5.0, 8.0]]


class TieNet(torch.nn.Module):
    """An input quantizer with scale 1/64 fed pixels/256: x/s = p/4 lands on .5 for p = 4k+2."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat.let(
            bit_width=4, scaling_impl_type=ScalingImplType.CONST, max_val=15.0 / 64),
            return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16, 8, bias=False, weight_quant=Int8WeightPerTensorFloat.let(bit_width=4))

    def forward(self, x):
        return self.fc(self.inp(x))


@pytest.fixture(scope="module")
def tie_inputs(tmp_path_factory):
    x = np.arange(256, dtype=np.int64).reshape(16, 16)  # every pixel value once
    path = tmp_path_factory.mktemp("ties") / "x.npy"
    np.save(path, x)
    return path


def test_tie_inputs_are_exact_ties():
    net = TieNet().eval()
    x = torch.arange(256, dtype=torch.float32) / 256
    q = net.inp(x.reshape(16, 16)).value.reshape(-1) * 64
    # p = 2 -> 0.5 -> 0 (even), p = 6 -> 1.5 -> 2, p = 10 -> 2.5 -> 2: half-to-even
    assert q[[2, 6, 10]].tolist() == [0.0, 2.0, 2.0]


@pytest.mark.parametrize("exact", [True, False])
def test_ties_follow_brevitas(tmp_path, tie_inputs, exact):
    rep = flow.build(TieNet().eval(), tmp_path / "b", input_shape=(16,), input_npy=tie_inputs,
                     exact_rounding=exact, samples=16, target_fps=None, rtlsim=False)
    mm = rep["verify"]["mismatches"]
    if exact:
        assert all(v == 0 for v in mm.values()), mm
    else:  # FINN's own half-up thresholds: the integer stages disagree with Brevitas on ties
        assert mm["brevitas"] > 0 and mm["streamlined"] == 0


def test_bnn_pynq_tfc_full_mnist_test_set(tmp_path):
    """Brevitas's own TFC-2w2a (input x -> 2x - 1, 2-bit input quantizer) puts pixel 192 on a tie;
    on all 10,000 MNIST test images every stage must give Brevitas's integers."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    net, _ = model_with_cfg("tfc_2w2a", pretrained=False)
    rep = flow.build(net.eval(), torch.zeros(1, 784), tmp_path / "b", samples=10000)  # the API form
    assert rep["verify"]["samples"] == 10000
    assert rep["verify"]["mismatches"] == {s: 0 for s in ("brevitas", "qonnx", "streamlined", "hw_python", "intsim",
                                                          "rtlsim", "rtlsim_stalls")}


def test_bnn_pynq_tfc_1w1a_all_rtl(tmp_path):
    """Brevitas's own binary TFC (bipolar input quantizer on 2x - 1, sign activations, BIPOLAR
    weights), seeded, through the Python API: every layer lowers to RTL (the binary matrix
    units on qnnflow's XNOR-popcount core, thresholds inside) and every stage, Verilator included, gives Brevitas's
    integers on 300 MNIST test images."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    net, _ = model_with_cfg("tfc_1w1a", pretrained=False)
    rep = flow.build(net.eval(), torch.zeros(1, 784), tmp_path / "b", samples=300)
    assert rep["hls_layers"] == []
    ops = [layer["op_type"] for layer in rep["layers"] if not layer["op_type"].startswith("Streaming")]
    # the input quantizer stays a thresholding layer; the others are inside the binary cores
    assert ops == ["Thresholding_rtl"] + ["MVAU_binary_rtl"] * 4 and len(rep["thresholds_absorbed"]) == 3
    assert rep["verify"]["samples"] == 300 and rep["verify"]["skipped"] == {}
    assert rep["verify"]["mismatches"] == {s: 0 for s in ("brevitas", "qonnx", "streamlined", "hw_python", "intsim",
                                                          "rtlsim", "rtlsim_stalls")}, rep["verify"]["first_mismatch"]
    assert len(np.unique(np.load(tmp_path / "b" / "outputs" / "rtlsim.npy"))) > 5
