"""Property tests: random small quantized MLPs, random inputs with exact rounding ties.

For every generated network: intsim == FINN python execution == QONNX == Brevitas, as
integers, sample by sample. Examples per run: QNNFLOW_HYPOTHESIS_EXAMPLES (default 20).
"""
from __future__ import annotations

import os

import numpy as np
import torch
from brevitas import nn as qnn
from brevitas.core.scaling import ScalingImplType
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    Uint8ActPerTensorFloat,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flow

EXAMPLES = int(os.environ.get("QNNFLOW_HYPOTHESIS_EXAMPLES", "20"))


@st.composite
def networks(draw):
    return {
        "in_features": draw(st.integers(4, 20)),
        "hidden": draw(st.lists(st.integers(2, 12), min_size=1, max_size=2)),
        "classes": draw(st.integers(2, 6)),
        "in_bits": draw(st.integers(2, 8)),
        "tie_shift": draw(st.integers(0, 3)),  # input scale 2^s/256: ties at p = k*2^s + 2^(s-1)
        "w_bits": draw(st.integers(2, 8)),
        "a_bits": draw(st.integers(2, 8)),
        "signed_act": draw(st.booleans()),
        "per_channel": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "bn": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


class RandomMLP(torch.nn.Module):
    def __init__(self, spec):
        super().__init__()
        torch.manual_seed(spec["seed"])
        s = spec
        in_scale = 2.0 ** s["tie_shift"] / 256
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat.let(
            bit_width=s["in_bits"], scaling_impl_type=ScalingImplType.CONST,
            max_val=(2 ** s["in_bits"] - 1) * in_scale), return_quant_tensor=True)
        wq = (Int8WeightPerChannelFloat if s["per_channel"] else Int8WeightPerTensorFloat).let(bit_width=s["w_bits"])
        layers, fan_in = [], s["in_features"]
        for width in s["hidden"]:
            layers.append(qnn.QuantLinear(fan_in, width, bias=s["bias"], weight_quant=wq))
            if s["bn"]:
                bn = torch.nn.BatchNorm1d(width)
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.data.uniform_(0.5, 1.5)  # positive: FINN absorbs sign flips into weights otherwise
                bn.bias.data.uniform_(-0.5, 0.5)
                layers.append(bn)
            if s["signed_act"]:
                layers.append(qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat.let(bit_width=s["a_bits"]),
                                                return_quant_tensor=True))
            else:
                layers.append(qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat.let(bit_width=s["a_bits"]),
                                            return_quant_tensor=True))
            fan_in = width
        self.body = torch.nn.Sequential(*layers)
        self.head = qnn.QuantLinear(fan_in, s["classes"], bias=False,
                                    weight_quant=Int8WeightPerTensorFloat.let(bit_width=s["w_bits"]))

    def forward(self, x):
        return self.head(self.body(self.inp(x)))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=networks())
def test_random_mlps_bit_exact(spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("prop")
    rng = np.random.default_rng(spec["seed"])
    n = 24
    x = rng.integers(0, 256, size=(n, spec["in_features"]))
    step = 2 ** spec["tie_shift"]
    if step > 1:  # plant exact ties of the input quantizer
        x[: n // 2] = (rng.integers(0, 256 // step, size=(n // 2, spec["in_features"])) * step + step // 2)
    np.save(out / "x.npy", x)
    net = RandomMLP(spec).eval()
    rep = flow.build(net, out / "b", input_shape=(spec["in_features"],), input_npy=out / "x.npy",
                     samples=n, target_fps=None, rtlsim=False)  # RTL is covered by tests/hw
    mm = rep["verify"]["mismatches"]
    assert set(mm) == {"brevitas", "qonnx", "streamlined", "hw_python", "intsim"}
    assert all(v == 0 for v in mm.values()), (spec, mm, rep["verify"]["first_mismatch"])
