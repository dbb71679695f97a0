"""Brevitas's own BNN-PYNQ CNV (brevitas_examples.bnn_pynq cnv_1w1a: 3x32x32 input, six
binary convs in three stages, max pools, three binary FC layers, TensorNorm) on random
weights through the whole flow: all-RTL, and exact from its QONNX export down to the
stitched RTL under stalls (its input is not MNIST's, so the build verifies on random
8-bit inputs).

The Brevitas stage is recorded, not asserted: on these random weights the module's own
forward and its QONNX export (run by qonnx) disagree on some samples while every stage
from the export on agrees with intsim; the flow reports such samples as unexplained
(report.json verify.explained) instead of calling them float ties."""
from __future__ import annotations

import torch

import flow

EXACT = ("qonnx", "streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls")


def test_bnn_pynq_cnv_all_rtl_and_exact_from_the_export(tmp_path):
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    import hw.ops
    from models.cnn import calibrate

    hw.ops.register()
    torch.manual_seed(0)
    net, _ = model_with_cfg("cnv_1w1a", pretrained=False)
    calibrate(net, torch.rand(64, 3, 32, 32) * 2 - 1)
    report = flow.build(net, tmp_path / "b", input_shape=(3, 32, 32), samples=5)
    v = report["verify"]
    assert v["samples"] == 5 and not v["skipped"]
    assert all(v["mismatches"][s] == 0 for s in EXACT), v["first_mismatch"]
    assert "brevitas" in v["mismatches"]
    assert report["hls_layers"] == []
    assert "MVAU_binary_rtl" in report["open_rtl_layers"].values()
