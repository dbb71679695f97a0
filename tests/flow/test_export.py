"""Export: residual blocks of QuantTensor adds (Brevitas's bnn_pynq QuantBasicBlock) reach QONNX."""
from __future__ import annotations

from collections import Counter

import onnx
import pytest
import torch
import brevitas.nn as qnn
from brevitas.quant import TruncTo8bit
from brevitas.quant_tensor import QuantTensor
from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock

from flow.config import BuildConfig
from flow.errors import FlowError
from flow.record import BuildRecord
from flow.steps import frontend as fe


class SmallResNet(torch.nn.Module):
    """Two bnn_pynq residual blocks: an identity shortcut and a downsampling (1x1, stride 2) one."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.relu = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.block1 = QuantBasicBlock(8, 8, 1, shared_quant_act=self.relu, act_bit_width=4, weight_bit_width=4)
        self.block2 = QuantBasicBlock(8, 16, 2, act_bit_width=4, weight_bit_width=4)
        self.pool = qnn.TruncAvgPool2d(kernel_size=14, trunc_quant=TruncTo8bit, float_to_int_impl_type="FLOOR")
        self.fc = qnn.QuantLinear(16, 10, bias=False, weight_bit_width=4)

    def forward(self, x):
        x = self.block2(self.block1(self.relu(self.bn(self.conv(self.inp(x))))))
        return self.fc(self.pool(x).flatten(1))


def _export(module, tmp_path, shape):
    cfg = BuildConfig(out=tmp_path / "b", module=module, input_shape=shape)
    rec = BuildRecord(tmp_path / "work")
    (rec.work_dir / "steps").mkdir(parents=True)
    model = fe.step_export(None, cfg, rec)
    return rec, Counter(n.op_type for n in model.graph.node)


def test_residual_quanttensor_adds_export(tmp_path):
    net = SmallResNet().eval()
    rec, ops = _export(net, tmp_path, (1, 28, 28))
    assert rec.exporter == "torchscript"  # torch.export cannot trace the QuantTensor add
    assert ops["Add"] == 2 and ops["Conv"] == 6 and ops["Trunc"] == 1
    onnx.checker.check_model(onnx.load(str(rec.path("steps", "00_export.onnx"))))
    # the failed first try did not leave the user's module in Brevitas's export mode
    assert isinstance(net.relu(torch.rand(1, 8, 4, 4)), QuantTensor)


def test_plain_chains_keep_the_default_exporter(tmp_path):
    net = torch.nn.Sequential(qnn.QuantIdentity(bit_width=8), qnn.QuantLinear(16, 4, bias=False, weight_bit_width=4))
    rec, ops = _export(net.eval(), tmp_path, (16,))
    assert rec.exporter == "torch.export" and ops["MatMul"] + ops["Gemm"] == 1


def test_module_that_exports_with_neither_exporter_is_one_line(tmp_path):
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = qnn.QuantLinear(16, 4, bias=False)

        def forward(self, x):
            raise RuntimeError("my forward is broken")

    with pytest.raises(FlowError, match="does not export to QONNX.*my forward is broken"):
        _export(Broken().eval(), tmp_path, (16,))
