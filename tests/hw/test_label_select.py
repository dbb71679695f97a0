"""qnn_label_select (hw/rtl) against intsim: random label counts, folding, K, signed and
unsigned scores with many ties, with and without random stalls."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

import sim
from hw.layertest import simulate_layer
from hw.ops import open_rtl_layers


def label_select_model(labels: int, pe: int, k: int, idt: str) -> ModelWrapper:
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, labels])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, k])
    node = helper.make_node("LabelSelect_hls", ["x"], ["y"], name="LabelSelect_0",
                            domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow",
                            Labels=labels, PE=pe, K=k, inputDataType=idt)
    m = ModelWrapper(qonnx_make_model(helper.make_graph([node], "ls", [inp], [out])))
    m.set_tensor_datatype("x", DataType[idt])
    from qonnx.custom_op.registry import getCustomOp

    m.set_tensor_datatype("y", getCustomOp(node).get_output_datatype())
    m, moved, kept = open_rtl_layers(m)
    assert moved == {"LabelSelect_0": "LabelSelect_rtl"} and not kept
    return m


CASES = [  # labels, PE, K, input type
    (10, 1, 1, "INT8"),
    (10, 2, 3, "UINT4"),
    (12, 4, 12, "INT3"),   # K = all labels: a full sort
    (7, 7, 2, "INT16"),
]


@pytest.mark.parametrize("labels,pe,k,idt", CASES)
def test_label_select_core_matches_intsim(labels, pe, k, idt, tmp_path):
    rng = np.random.default_rng(labels * 100 + pe * 10 + k)
    dt = DataType[idt]
    # few distinct values: ties everywhere, plus the extremes of the type
    pool = np.array(sorted({int(dt.min()), int(dt.max()), 0, *rng.integers(dt.min(), dt.max() + 1, 3)}))
    x = rng.choice(pool, size=(200, labels)).astype(np.int64)
    m = label_select_model(labels, pe, k, idt)
    ref = sim.run(m, x)
    assert ref.shape == (200, k)
    np.testing.assert_array_equal(ref[:, 0], np.argmax(x, axis=1))  # first index of the max
    r = simulate_layer(m, x, tmp_path / "s0", stall=0.0)
    np.testing.assert_array_equal(r.outputs, ref)
    assert r.cycles_per_image == labels + k + 1  # the op's get_exp_cycles
    r = simulate_layer(m, x, tmp_path / "s3", stall=0.3, seed=1)
    np.testing.assert_array_equal(r.outputs, ref)


def test_label_select_rejects_bipolar_scores():
    from hw.ops.labelselect import LabelSelect_rtl

    m = label_select_model(10, 1, 1, "INT8")
    m.graph.node[0].op_type = "LabelSelect_hls"
    m.graph.node[0].domain = "finn.custom_op.fpgadataflow.hls"
    helper_attr = [a for a in m.graph.node[0].attribute if a.name == "inputDataType"][0]
    helper_attr.s = b"BIPOLAR"
    assert "BIPOLAR" in LabelSelect_rtl.supports(m.graph.node[0], m)
