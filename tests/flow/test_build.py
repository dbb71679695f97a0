"""The build pipeline end to end, its report contract, and its refusals of bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from flow.build_folder import find_step
from flow.pipeline import STEPS, run_build
from flow.config import BuildConfig
from flow.errors import FlowError

CORE_STAGES = ("brevitas", "qonnx", "streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls")


def qnnflow(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "flow.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_demo_report_contract(demo_build):
    r = json.loads((demo_build / "report.json").read_text())
    assert r["model"] == "tfc-w2a2"
    assert r["verify"]["samples"] == 300
    assert r["verify"]["reference"] == "intsim"
    for stage in CORE_STAGES:
        assert r["verify"]["mismatches"][stage] == 0, stage
        assert (demo_build / "outputs" / f"{stage}.npy").is_file()
        assert r["accuracy"][stage] > 90.0
    assert set(STEPS_NAMES := [n for n, _ in STEPS]) <= set(r["timings_s"])
    assert len(list((demo_build / "steps").glob("*.onnx"))) == len(STEPS_NAMES)
    assert r["hls_layers"] == []  # all RTL
    assert r["estimates"]["max_cycles"] > 0
    assert (demo_build / "report.txt").read_text().count("intsim") >= 1
    # the accelerator starts at the integer pixels: no identity thresholding layer
    ops = [layer["op_type"] for layer in r["layers"] if not layer["op_type"].startswith("Streaming")]
    assert ops[0].startswith("MVAU") and all(op.endswith("_rtl") for op in ops)
    rs = r["rtlsim"]
    for key in ("latency_cycles", "cycles_per_image", "fps", "clock_mhz", "sim_cycles_per_s"):
        assert rs[key] > 0, key
    assert rs["clock_mhz"] == 100.0
    assert rs["mvu_model"] == "finn-lanes" and rs["finn_rtl"] is False  # the verification default
    assert abs(rs["cycles_per_image"] / r["estimates"]["max_cycles"] - 1) <= 0.15
    assert r["fifo_depths"]


def test_rtlsim_cli_mvu_models(demo_build):
    """`qnnflow rtlsim --mvu exact` simulates exact MVU products, says so, and agrees with intsim."""
    r = qnnflow("rtlsim", str(demo_build), "--samples", "40", "--mvu", "exact")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "0 / 40 samples differ from intsim" in r.stdout and "exact products" in r.stdout
    last = json.loads((demo_build / "rtlsim" / "last_run.json").read_text())
    assert last["mvu_model"] == "exact" and last["mismatches"] == 0
    bad = qnnflow("rtlsim", str(demo_build), "--mvu", "dsp")
    assert bad.returncode != 0 and "invalid choice" in bad.stderr


def test_outputs_are_integers_and_argmax_matches_labels(demo_build):
    y = np.load(demo_build / "outputs" / "intsim.npy")
    labels = np.load(demo_build / "outputs" / "labels.npy")
    assert y.dtype == np.int64 and y.shape == (300, 10)
    assert np.mean(y.argmax(1) == labels) > 0.9


def test_build_paths_relocated(demo_build):
    """FINN stores absolute paths; the finished build names its own files relative to itself,
    never the temporary folder it was built in."""
    m = find_step(demo_build, "hw_codegen").read_bytes()
    assert b".tmp-" not in m and str(demo_build.resolve()).encode() not in m
    assert b"codegen/code_gen_ipgen_" in m


def test_unknown_model_lists_valid_names(tmp_path):
    r = qnnflow("build", "--model", "tfc-w9a9", "--out", str(tmp_path / "b"))
    assert r.returncode == 2
    assert "unknown preset 'w9a9'" in r.stderr and "w2a2" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_checkpoint_of_other_model_refused(tmp_path):
    from models.zoo import build_model, save_checkpoint

    ck = tmp_path / "other.pt"
    save_checkpoint(ck, build_model("tfc-w4a4"), {"arch": "tfc", "preset": "w4a4"})
    with pytest.raises(FlowError, match="holds tfc-w4a4, not the requested tfc-w2a2"):
        run_build(BuildConfig(out=tmp_path / "b", model="tfc-w2a2", checkpoint=ck, samples=10))
    assert not (tmp_path / "b").exists()
    assert not list(tmp_path.glob(".b.tmp-*"))  # no half-written build left behind


def test_corrupt_checkpoint_refused(tmp_path):
    ck = tmp_path / "bad.pt"
    ck.write_bytes(b"not a checkpoint")
    r = qnnflow("build", "--model", "tfc-w2a2", "--checkpoint", str(ck), "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "cannot be read" in r.stderr
    assert not (tmp_path / "b").exists()


def test_malformed_onnx_refused(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    r = qnnflow("build", "--onnx", str(bad), "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "does not load" in r.stderr
    assert not (tmp_path / "b").exists()


def test_unsupported_ops_listed_up_front(tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["h"], name="sig0"),
                           helper.make_node("Softmax", ["h"], ["y"], name="soft0")], "g", [x], [y])
    path = tmp_path / "m.onnx"
    import onnx

    onnx.save(helper.make_model(g), path)
    with pytest.raises(FlowError, match=r"2 node\(s\) the flow cannot lower: sig0 \(Sigmoid: no quantized lowering for this op\), soft0 \(Softmax: "):
        run_build(BuildConfig(out=tmp_path / "b", onnx=path, samples=4))
    assert not (tmp_path / "b").exists()


def test_existing_build_needs_force(demo_build):
    with pytest.raises(FlowError, match="--force"):
        run_build(BuildConfig(out=demo_build, model="tfc-w2a2", samples=10))


def test_onnx_build_with_inputs(demo_build, tmp_path):
    """A QONNX file exported elsewhere builds and verifies (no Brevitas stage)."""
    x = np.load(demo_build / "outputs" / "inputs.npy")[:50]
    np.save(tmp_path / "x.npy", x)
    r = qnnflow("build", "--onnx", str(find_step(demo_build, "export")), "--input", str(tmp_path / "x.npy"),
                "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    assert rep["verify"]["samples"] == 50
    assert set(rep["verify"]["mismatches"]) == {"qonnx", "streamlined", "hw_python", "intsim", "rtlsim",
                                                "rtlsim_stalls"}
    assert all(v == 0 for v in rep["verify"]["mismatches"].values())
    ours = np.load(tmp_path / "b" / "outputs" / "intsim.npy")
    assert np.array_equal(ours, np.load(demo_build / "outputs" / "intsim.npy")[:50])


def test_onnx_input_outside_dtype_refused(demo_build, tmp_path):
    np.save(tmp_path / "x.npy", np.full((2, 784), 300))
    with pytest.raises(FlowError, match="outside UINT8"):
        run_build(BuildConfig(out=tmp_path / "b", onnx=find_step(demo_build, "export"),
                              input_npy=tmp_path / "x.npy", samples=2))
    assert not (tmp_path / "b").exists()


def test_unknown_board_lists_known(tmp_path):
    with pytest.raises(FlowError, match="known boards: pynq-z1"):
        BuildConfig(out=tmp_path / "b", model="tfc-w2a2", board="zedboard-x")


def test_help_lists_commands():
    r = qnnflow("--help")
    assert r.returncode == 0
    for cmd in ("build", "verify", "train"):
        assert cmd in r.stdout


def test_verify_keeps_each_record_and_shows_the_strongest(demo_build):
    before = json.loads((demo_build / "report.json").read_text())
    outputs = {p.name: p.read_bytes() for p in (demo_build / "outputs").iterdir()}
    r = qnnflow("verify", str(demo_build), "--samples", "40")
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((demo_build / "report.json").read_text())
    assert rep["verify"] == before["verify"]  # a 40-sample run does not replace the 300-sample record
    rec = rep["verify_records"][-1]
    assert rec["samples"] == 40 and rec["mismatches"]["intsim"] == 0
    record = demo_build / rec["record"]
    assert json.loads((record / "record.json").read_text())["verify"]["samples"] == 40
    assert np.load(record / "outputs" / "intsim.npy").shape[0] == 40
    assert {p.name: p.read_bytes() for p in (demo_build / "outputs").iterdir()} == outputs
    r = qnnflow("verify", str(demo_build), "--samples", "300")
    rep = json.loads((demo_build / "report.json").read_text())
    assert rep["verify_shown"] == rep["verify_records"][-1]["record"] and rep["verify"]["samples"] == 300
    assert len(rep["verify_records"]) == 2


def test_verify_of_a_corrupt_report_is_one_line(demo_build, tmp_path):
    import shutil

    b = tmp_path / "b"
    shutil.copytree(demo_build, b)
    (b / "report.json").write_text('{"model": "tfc')
    r = qnnflow("verify", str(b), "--samples", "5")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "report.json is corrupt" in r.stderr


def test_module_with_unlowerable_layers_refused_before_long_steps(tmp_path):
    import flow
    from brevitas import nn as qnn

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q = qnn.QuantIdentity(return_quant_tensor=False)
            self.fc = qnn.QuantLinear(784, 10, bias=False)
            self.act = torch.nn.Sigmoid()

        def forward(self, x):
            return torch.nn.functional.softmax(self.act(self.fc(self.q(x))), dim=-1)

    with pytest.raises(FlowError, match=r"cannot lower: .*\(Sigmoid: .*\), .*\(Softmax: "):
        flow.build(Net().eval(), tmp_path / "b", input_shape=(784,), samples=10)
    assert not (tmp_path / "b").exists()


def test_topk_build_ends_in_label_select_core(tmp_path):
    """--topk 1: the accelerator outputs class indices from our label-select core (all RTL,
    Verilator-simulated); every stage agrees, the logit stages read through label select."""
    rep = run_build(BuildConfig(out=tmp_path / "b", model="tfc-w2a2", samples=100, topk=1))
    assert rep["open_rtl_layers"] == {"LabelSelect_rtl_0": "LabelSelect_rtl"} and not rep["hls_layers"]
    v = rep["verify"]
    assert {"brevitas", "streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls"} <= set(v["mismatches"])
    assert not any(v["mismatches"].values()), v["first_mismatch"]
    idx = np.load(tmp_path / "b" / "outputs" / "rtlsim.npy")
    assert idx.shape == (100, 1) and idx.max() <= 9
    labels = np.load(tmp_path / "b" / "outputs" / "labels.npy")
    assert rep["accuracy"]["rtlsim"] == pytest.approx(100.0 * np.mean(idx[:, 0] == labels))
    assert rep["accuracy"]["rtlsim"] > 90


def test_topk_refuses_a_reordering_tail_and_bad_k(tmp_path):
    with pytest.raises(FlowError, match="exceeds the 10 outputs"):
        run_build(BuildConfig(out=tmp_path / "b", model="tfc-w2a2", samples=10, topk=11))
    assert not (tmp_path / "b").exists()
    with pytest.raises(FlowError, match="--topk must be"):
        BuildConfig(out=tmp_path / "c", model="tfc-w2a2", topk=-1)
    from flow.record import BuildRecord
    from flow.steps.frontend import step_insert_topk
    from flow.transforms.float_tail import FloatTail

    cfg = BuildConfig(out=tmp_path / "d", model="tfc-w2a2", topk=1)
    rec = BuildRecord(tmp_path)
    for tail, why in (([("Mul", np.array([0.5, 2.0], dtype=np.float32))], "Mul by 2 different values"),
                      ([("Mul", np.array([-0.5], dtype=np.float32))], "Mul by -0.5")):
        FloatTail(tail).save(tmp_path / "float_tail.npz")
        with pytest.raises(FlowError, match=why):
            step_insert_topk(None, cfg, rec)


def test_power_of_two_weights_reaching_minus_128_build_all_rtl(tmp_path):
    """tfc-po2's weights include -2^7 = -128: FINN labels them INT8 (not narrow), which its RTL
    matrix unit refuses on DSP48E1; one bit wider they stay RTL and simulate bit-exact."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from flow.build_folder import final_graph

    rep = run_build(BuildConfig(out=tmp_path / "b", model="tfc-po2", samples=100))
    assert rep["hls_layers"] == []
    assert rep["verify"]["mismatches"]["rtlsim"] == 0 and rep["verify"]["mismatches"]["rtlsim_stalls"] == 0
    m = ModelWrapper(str(final_graph(tmp_path / "b")))
    widened = 0
    for n in m.get_nodes_by_op_type("MVAU_rtl"):
        w, wdt = m.get_initializer(n.input[1]), getCustomOp(n).get_input_datatype(1)
        assert w.min() > wdt.min()  # narrow range, as the DSP48E1 datapath needs
        widened += int(w.min() == -128)
    assert widened >= 1


def test_python_api_argument_forms(tmp_path):
    import flow

    with pytest.raises(FlowError, match="no batch axis"):
        flow.build(torch.nn.Identity(), torch.zeros(784), tmp_path / "a")
    with pytest.raises(FlowError, match="contradicts"):
        flow.build(torch.nn.Identity(), torch.zeros(1, 784), tmp_path / "a", input_shape=(28, 28))
    with pytest.raises(FlowError, match="call flow.build"):
        flow.build(torch.nn.Identity())
    assert not (tmp_path / "a").exists()
