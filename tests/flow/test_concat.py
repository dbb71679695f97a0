"""Branching networks joined by a channel concatenation (Inception-style) through the whole
flow: the fork (DuplicateStreams, or a channel split: StreamingSplit on our qnn_split core),
the two branches, the Concat (StreamingConcat on our qnn_concat core), bit-exact in every
stage incl. Verilator.

Both branches end in one shared activation quantizer (one module used twice), so the two
halves of the concatenation are integers on one scale, as for residual adds."""
from __future__ import annotations

import numpy as np
import torch
from brevitas import nn as qnn

import flow

STAGES = ("brevitas", "qonnx", "streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls")


class InceptionNet(torch.nn.Module):
    """stem conv3x3(8) -> {conv1x1(8), conv3x3(8, pad 1)} -> concat (16) -> conv1x1(16) ->
    global average pool -> FC 10."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.stem = qnn.QuantConv2d(1, 8, 3, stride=2, bias=False, weight_bit_width=4)
        self.bn0 = torch.nn.BatchNorm2d(8)
        self.act0 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.a = qnn.QuantConv2d(8, 8, 1, bias=False, weight_bit_width=4)
        self.bna = torch.nn.BatchNorm2d(8)
        self.b = qnn.QuantConv2d(8, 8, 3, padding=1, bias=False, weight_bit_width=4)
        self.bnb = torch.nn.BatchNorm2d(8)
        self.join = qnn.QuantReLU(bit_width=4)  # shared by both branches: one scale
        self.mix = qnn.QuantConv2d(16, 16, 1, bias=False, weight_bit_width=4)
        self.bnm = torch.nn.BatchNorm2d(16)
        self.act1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = qnn.QuantLinear(16, 10, bias=False, weight_bit_width=4)

    def forward(self, x):
        x = self.act0(self.bn0(self.stem(self.inp(x))))
        y = torch.cat([self.join(self.bna(self.a(x))), self.join(self.bnb(self.b(x)))], dim=1)
        y = self.act1(self.bnm(self.mix(y)))
        return self.fc(torch.flatten(self.pool(y), 1))


def test_concat_net_all_rtl_and_exact_in_every_stage(tmp_path):
    import hw.ops
    from models import load_mnist
    from models.cnn import calibrate

    hw.ops.register()
    torch.manual_seed(0)
    calib = load_mnist("train").pixels[:256].astype(np.float32) / 256
    net = calibrate(InceptionNet(), torch.from_numpy(calib).reshape(-1, 1, 28, 28))
    out = tmp_path / "b"
    report = flow.build(net, out, input_shape=(1, 28, 28), samples=20)
    v = report["verify"]
    assert list(v["stages"]) == list(STAGES) and not v["skipped"]
    assert all(v["mismatches"][s] == 0 for s in STAGES), v["first_mismatch"]
    assert report["hls_layers"] == []
    ours = list(report["open_rtl_layers"].values())
    assert "StreamingConcat_rtl" in ours and "DuplicateStreams_rtl" in ours
    y = np.load(out / "outputs" / "intsim.npy")
    assert len(np.unique(y)) > 20  # not a dead network


class SplitNet(torch.nn.Module):
    """FC 784->32 -> torch.chunk into two halves of 16 channels -> an FC on each -> one shared
    activation -> concat (32) -> FC 10, or with `parts` torch.split into unequal parts."""

    def __init__(self, parts=None):
        super().__init__()
        self.parts = parts
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(784, 32, bias=False, weight_bit_width=4)
        self.bn1 = torch.nn.BatchNorm1d(32)
        self.act1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        a, b = parts or (16, 16)
        self.a = qnn.QuantLinear(a, 16, bias=False, weight_bit_width=4)
        self.bna = torch.nn.BatchNorm1d(16)
        self.b = qnn.QuantLinear(b, 16, bias=False, weight_bit_width=4)
        self.bnb = torch.nn.BatchNorm1d(16)
        self.join = qnn.QuantReLU(bit_width=4)
        self.fc = qnn.QuantLinear(32, 10, bias=False, weight_bit_width=4)

    def forward(self, x):
        x = self.act1(self.bn1(self.fc1(self.inp(x))))
        lo, hi = torch.split(x, list(self.parts), dim=1) if self.parts else torch.chunk(x, 2, dim=1)
        y = torch.cat([self.join(self.bna(self.a(lo))), self.join(self.bnb(self.b(hi)))], dim=1)
        return self.fc(y)


def _random_bn(net):
    torch.manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-.5, .5)
                m.running_var.uniform_(.5, 2)
    return net.eval()


def test_channel_split_net_all_rtl_and_exact_in_every_stage(tmp_path):
    """torch.chunk: the activation's scale moves onto the two parts (MoveMulPastSplit), the
    split becomes FINN's StreamingSplit on our qnn_split core, exact in every stage."""
    report = flow.build(_random_bn(SplitNet()), tmp_path / "b", input_shape=(784,), samples=20)
    v = report["verify"]
    assert list(v["stages"]) == list(STAGES) and not v["skipped"]
    assert all(v["mismatches"][s] == 0 for s in STAGES), v["first_mismatch"]
    assert report["hls_layers"] == []
    assert sorted(report["open_rtl_layers"].values()) == ["StreamingConcat_rtl", "StreamingSplit_rtl"]


def test_unequal_split_refused_before_the_build(tmp_path):
    import pytest

    from flow.errors import FlowError

    with pytest.raises(FlowError, match=r"Split: unequal parts \[12, 20\]"):
        flow.build(_random_bn(SplitNet((12, 20))), tmp_path / "b", input_shape=(784,), samples=5)
    assert not (tmp_path / "b").exists()
