"""intsim against FINN on the demo build; its refusals; detection of corrupted hardware."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

import sim
from flow.build_folder import final_graph, find_step
from flow.verify import verify_build


@pytest.fixture()
def build_copy(demo_build, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(demo_build, dst)
    return dst


def inputs(build):
    return np.load(build / "outputs" / "inputs.npy")


@pytest.mark.parametrize("step", ["split_float_tail", "hw_codegen"])
def test_strict_and_fast_agree_with_finn(demo_build, step):
    x = inputs(demo_build)
    strict = sim.IntSim(find_step(demo_build, step), "strict")
    fast = sim.IntSim(find_step(demo_build, step), "fast")
    assert {p.gemm for p in strict.nodes} == {"int64"}
    assert "u8s8" in {p.gemm for p in fast.nodes}  # 8-bit inputs and weights, bound < 2^31
    ys, yf = strict.run(x), fast.run(x)
    assert ys.dtype == np.int64 and np.array_equal(ys, yf)
    assert np.array_equal(ys, np.load(demo_build / "outputs" / "hw_python.npy"))


def test_fast_mode_picks_the_cheapest_exact_gemm(demo_build):
    from qonnx.core.datatype import DataType

    s = sim.IntSim(find_step(demo_build, "hw_codegen"), "fast")
    node = s.model.graph.node[0]
    s.model.set_tensor_datatype(node.input[0], DataType["UINT8"])
    assert s._gemm_for(node, np.ones((16, 4), dtype=np.int64)) == "u8s8"
    assert s._gemm_for(node, np.full((16, 4), 300, dtype=np.int64)) == "float32"  # weights beyond int8
    assert s._gemm_for(node, np.full((2**13, 4), 300, dtype=np.int64)) == "float64"  # bound > 2^24
    s.model.set_tensor_datatype(node.input[0], DataType["INT9"])
    assert s._gemm_for(node, np.ones((16, 4), dtype=np.int64)) == "float32"  # inputs beyond 8 bits
    s.model.set_tensor_datatype(node.input[0], DataType["INT32"])
    assert s._gemm_for(node, np.full((2**13, 4), 2**20, dtype=np.int64)) == "int64"  # bound > 2^53


def test_corrupted_weight_detected(build_copy):
    path = final_graph(build_copy)
    m = ModelWrapper(str(path))
    last = [n for n in m.graph.node if n.op_type.startswith("MVAU")][-1]
    w = m.get_initializer(last.input[1]).copy()
    w[:, 3] = -w[:, 3]  # flip one output neuron's weights
    m.set_initializer(last.input[1], w)
    m.save(str(path))
    v = verify_build(build_copy, 100, stages=("brevitas", "streamlined", "hw_python", "intsim"), check_files=False)["verify"]
    assert v["mismatches"]["streamlined"] > 0 and v["mismatches"]["brevitas"] > 0
    assert v["mismatches"]["hw_python"] == 0  # same corrupted graph
    assert v["first_mismatch"]["streamlined"]["index"] == 3


def test_shifted_threshold_detected_and_localised(build_copy):
    """Shift thresholds in the *streamlined* graph: the mismatch is pinned to that layer."""
    path = find_step(build_copy, "split_float_tail")
    m = ModelWrapper(str(path))
    mt = m.get_nodes_by_op_type("MultiThreshold")[0]
    t = m.get_initializer(mt.input[1]).copy()
    t[5] += 40
    m.set_initializer(mt.input[1], t)
    m.save(str(path))
    v = verify_build(build_copy, 100, stages=("streamlined", "intsim"), check_files=False)["verify"]
    assert v["mismatches"]["streamlined"] > 0
    fm = v["first_mismatch"]["streamlined"]
    assert fm["layer"] == mt.name and fm["layer_index"] == 5


def test_narrowed_accumulator_detected(demo_build):
    m = ModelWrapper(str(find_step(demo_build, "hw_codegen")))
    mvau = [n for n in m.graph.node if n.op_type.startswith("MVAU")][0]
    getCustomOp(mvau).set_nodeattr("accDataType", "INT8")
    for mode in ("strict", "fast"):  # fast mode's static range proof fails, so it checks at run time
        with pytest.raises(sim.SimError, match=rf"node {mvau.name}: tensor {mvau.name}.accumulator value -?\d+ at sample"):
            sim.run(m, inputs(demo_build)[:50], mode)


def test_fast_mode_proves_ranges_statically(demo_build):
    """Fast mode skips run-time datatype checks only where the input type bounds the values
    inside the tensor's type: on tfc-w2a2 every accumulator and activation."""
    s = sim.IntSim(find_step(demo_build, "hw_codegen"), "fast")
    compute = [p for p in s.nodes if p.op_type in ("MVAU", "Thresholding")]
    assert compute and all(p.out_proven for p in compute)
    assert all(p.acc_proven for p in compute if p.op_type == "MVAU")
    assert not any(p.acc_proven or p.out_proven for p in sim.IntSim(find_step(demo_build, "hw_codegen"), "strict").nodes)


def test_input_checks(demo_build):
    s = sim.IntSim(find_step(demo_build, "hw_codegen"))
    with pytest.raises(sim.SimError, match="does not fit the graph input"):
        s.run(np.zeros((2, 100)))
    with pytest.raises(sim.SimError, match="outside its datatype UINT8"):
        s.run(np.full((1, 784), 256))
    with pytest.raises(sim.SimError, match="non-integer"):
        s.run(np.full((1, 784), 0.5))


def test_refuses_unknown_ops_and_float_parameters(demo_build):
    from onnx import TensorProto, helper

    m = ModelWrapper(str(find_step(demo_build, "split_float_tail")))
    m.graph.node[1].op_type = "Sigmoid"
    m.graph.node[3].op_type = "Softmax"
    with pytest.raises(sim.SimError, match="no kernel for op\\(s\\) Sigmoid, Softmax"):
        sim.IntSim(m)
    m = ModelWrapper(str(find_step(demo_build, "split_float_tail")))
    w = m.get_initializer(m.graph.node[0].input[1]).astype(np.float32)
    w[0, 0] = 0.25
    m.set_initializer(m.graph.node[0].input[1], w)
    with pytest.raises(sim.SimError, match="non-integer values"):
        sim.IntSim(m)
    del TensorProto, helper


def test_first_divergence():
    order = [("a", "t0"), ("b", "t1")]
    env1 = {"t0": np.array([[1, 2]]), "t1": np.array([[3, 4]])}
    env2 = {"t0": np.array([[1, 2]]), "t1": np.array([[3, 5]])}
    assert sim.first_divergence(order, env1, env2) == {"node": "b", "tensor": "t1", "sample": 0, "index": 1,
                                                       "a": 4, "b": 5}
    assert sim.first_divergence(order, env1, env1) is None
