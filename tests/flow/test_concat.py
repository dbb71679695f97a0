"""Branching networks joined by a channel concatenation (Inception-style) through the whole
flow: the fork (DuplicateStreams), the two branches, the Concat (StreamingConcat on our
qnn_concat core), bit-exact in every stage incl. Verilator.

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
