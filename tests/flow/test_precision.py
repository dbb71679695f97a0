"""Float precision traps in FINN's front end, each of which made the integer graph differ
from Brevitas: float32 quantizer thresholds, lossy identity removal, float32 streamlining."""
from __future__ import annotations

import numpy as np
import torch

import flow
from flow.transforms.exact_streamline import RemoveExactIdentityOps
from models import build_model


def test_po2_random_init_bit_exact(tmp_path):
    """Random-init tfc-po2: input scale float32(1/255) puts 127.5*scale at 0.500000001 (FINN's
    float32 threshold says 0.5), and unit batch norms are Mul(0.999995) that FINN's
    RemoveIdentityOps deletes. Either trap alone gave mismatches on these 100 images."""
    torch.manual_seed(0)
    rep = flow.build(build_model("tfc-po2").eval(), tmp_path / "b", input_shape=(784,), samples=100,
                     rtlsim=False)
    assert all(v == 0 for v in rep["verify"]["mismatches"].values()), rep["verify"]["first_mismatch"]


def test_exact_identity_removal_keeps_near_one_scales():
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Mul", ["x", "c"], ["h"]), helper.make_node("Mul", ["h", "one"], ["y"])],
                          "g", [x], [y])
    m = ModelWrapper(qonnx_make_model(g))
    m.set_initializer("c", np.full((1, 4), 0.999995, dtype=np.float32))
    m.set_initializer("one", np.ones((1, 4), dtype=np.float32))
    from qonnx.transformation.infer_shapes import InferShapes

    m = m.transform(InferShapes()).transform(RemoveExactIdentityOps())
    assert [n.input[1] for n in m.graph.node] == ["c"]
