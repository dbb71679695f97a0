"""Binary nets: PyTorch's float32 decides signs of dot products that are exactly 0; the
accelerator computes them exactly. Such Brevitas mismatches must be found and explained."""
from __future__ import annotations

import numpy as np
import torch

import flow
from flow.float_ties import boundary_distance
from models import build_model


def test_binary_mlp_mismatches_are_float_ties(tmp_path):
    torch.manual_seed(0)
    net = build_model("tfc-w1a1").eval()
    rep = flow.build(net, tmp_path / "b", input_shape=(784,), samples=60, rtlsim=False)
    v = rep["verify"]
    for stage in ("streamlined", "hw_python", "intsim"):
        assert v["mismatches"][stage] == 0
    assert v["mismatches"]["brevitas"] > 0  # random binary weights: many exact-zero dot products
    ex = v["explained"]["brevitas"]
    assert ex["unexplained"] == 0 and ex["float_ties"] == v["mismatches"]["brevitas"]


def test_boundary_distance_sees_no_tie_in_a_trained_w2a2(demo_build):
    from flow.steps.frontend import InputScale
    from models import load_checkpoint

    module = InputScale(load_checkpoint("models/checkpoints/tfc-w2a2.pt")[0], 1 / 256).eval()
    x = np.load(demo_build / "outputs" / "inputs.npy")[:50]
    assert boundary_distance(module, x).min() > 1e-4
