"""Build-folder safety and foreign files: options checked before any step, --force replaces only
our builds, replacement is atomic, one build per target, FINN-written ONNX files load."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from flow import build_folder
from flow.config import BuildConfig
from flow.errors import FlowError
from flow.build_folder import find_step
from flow.pipeline import run_build


def qnnflow(*args):
    return subprocess.run([sys.executable, "-m", "flow.cli", *args], capture_output=True, text=True)


def one_line_error(r) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr[-1500:]
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["--fps", "nan"], "--fps must be a finite number > 0"),
    (["--fps", "-1"], "--fps must be a finite number > 0"),
    (["--fps", "0"], "--fps must be a finite number > 0"),
    (["--fps", "inf"], "--fps must be a finite number > 0"),
    (["--clock-mhz", "0"], "--clock-mhz must be a finite number > 0"),
    (["--clock-mhz", "-5"], "--clock-mhz must be a finite number > 0"),
    (["--input-dtype", "FOO99"], "is not a FINN datatype"),
    (["--input-dtype", "FLOAT32"], "is not an integer type"),
])
def test_bad_option_values_refused_before_any_step(tmp_path, args, words):
    r = qnnflow("build", "--model", "tfc-w2a2", "--out", str(tmp_path / "b"), *args)
    assert words in one_line_error(r)
    assert "step export" not in r.stdout + r.stderr  # refused before the first step
    assert os.listdir(tmp_path) == []


def test_force_refuses_a_folder_that_is_not_a_build(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n.txt").write_text("mine")
    with pytest.raises(FlowError, match="not a qnnflow build"):
        run_build(BuildConfig(out=notes, model="tfc-w2a2", samples=10, force=True))
    assert (notes / "n.txt").read_text() == "mine"


def test_force_refuses_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("data")
    r = qnnflow("build", "--model", "tfc-w2a2", "--out", str(f), "--force")
    assert "is a file, not a build folder" in one_line_error(r)
    assert f.read_text() == "data"


def test_unwritable_out_is_one_line(tmp_path):
    r = qnnflow("build", "--model", "tfc-w2a2", "--out", "/proc/qnnflow-x/b")
    assert "choose an --out in a writable folder" in one_line_error(r)


def test_second_build_into_a_locked_target_refused(tmp_path):
    out = tmp_path / "b"
    fd = os.open(tmp_path / ".b.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a running build holds it
    try:
        with pytest.raises(FlowError, match="another build is writing"):
            run_build(BuildConfig(out=out, model="tfc-w2a2", samples=10))
        assert (tmp_path / ".b.lock").exists()  # the refused build leaves the holder's lock alone
    finally:
        os.close(fd)
    assert not out.exists()


def test_stale_temp_of_a_killed_build_is_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".b.tmp-{dead.pid}"
    (stale / "steps").mkdir(parents=True)
    with build_folder.claim(tmp_path / "b", force=False) as work:
        assert not stale.exists()
        assert work.is_dir()
    assert not work.exists()  # a claim left without replace() leaves nothing


def _fake_build(path, tag):
    (path / "steps").mkdir(parents=True, exist_ok=True)
    (path / "build.json").write_text(json.dumps({"tag": tag}))
    (path / "weights.dat").write_text(tag)


def test_replace_keeps_new_build_when_old_cannot_be_deleted(tmp_path, monkeypatch):
    out = tmp_path / "b"
    _fake_build(out, "old")
    with build_folder.claim(out, force=True) as work:
        _fake_build(work, "new")
        real = shutil.rmtree

        def failing_rmtree(p, ignore_errors=False, **kw):
            if ignore_errors:
                return None  # one undeletable file: nothing goes
            return real(p, **kw)

        monkeypatch.setattr(build_folder.shutil, "rmtree", failing_rmtree)
        build_folder.replace(work, out)
        monkeypatch.setattr(build_folder.shutil, "rmtree", real)
    assert json.loads((out / "build.json").read_text())["tag"] == "new"
    assert (out / "weights.dat").read_text() == "new"


def test_replace_without_exchange_is_whole(tmp_path, monkeypatch):
    out = tmp_path / "b"
    _fake_build(out, "old")
    monkeypatch.setattr(build_folder, "_exchange", lambda a, b: False)
    with build_folder.claim(out, force=True) as work:
        _fake_build(work, "new")
        build_folder.replace(work, out)
    assert (out / "weights.dat").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_rebuild_with_force_replaces_whole(demo_build, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(demo_build, out)
    run_build(BuildConfig(out=out, model="tfc-w2a2", samples=10, force=True, rtlsim=False))
    assert json.loads((out / "report.json").read_text())["verify"]["samples"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no lock, temp or old folder left


def test_finn_onnx_without_custom_opset_import_builds(demo_build, tmp_path):
    """A FINN-ONNX graph as FINN's tools write it: finn.custom_op.general nodes, no opset import for them."""
    proto = onnx.load(str(find_step(demo_build, "qonnx_to_finn")))
    for n in proto.graph.node:
        if n.domain.startswith("qonnx.custom_op"):
            n.domain = "finn.custom_op.general"
    del proto.opset_import[1:]
    assert {n.domain for n in proto.graph.node} >= {"finn.custom_op.general"}
    onnx.save(proto, str(tmp_path / "finn.onnx"))
    x = np.load(demo_build / "outputs" / "inputs.npy")[:20]
    np.save(tmp_path / "x.npy", x)
    r = qnnflow("build", "--onnx", str(tmp_path / "finn.onnx"), "--input", str(tmp_path / "x.npy"),
                "--out", str(tmp_path / "b"), "--no-rtlsim")
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    assert rep["verify"]["samples"] == 20 and all(v == 0 for v in rep["verify"]["mismatches"].values())
    assert np.array_equal(np.load(tmp_path / "b" / "outputs" / "intsim.npy"),
                          np.load(demo_build / "outputs" / "intsim.npy")[:20])


def _build_foreign(path, demo_build, tmp_path, n=20):
    x = np.load(demo_build / "outputs" / "inputs.npy")[:n]
    np.save(tmp_path / "x.npy", x)
    r = qnnflow("build", "--onnx", str(path), "--input", str(tmp_path / "x.npy"),
                "--out", str(tmp_path / "b"), "--no-rtlsim")
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    assert rep["verify"]["samples"] == n and all(v == 0 for v in rep["verify"]["mismatches"].values())
    return np.load(tmp_path / "b" / "outputs" / "intsim.npy"), np.load(demo_build / "outputs" / "intsim.npy")[:n]


def test_qonnx_file_of_an_older_opset_builds(demo_build, tmp_path):
    """The cleaned QONNX graph declared at ONNX opset 11 (its ops mean the same there)."""
    proto = onnx.load(str(demo_build / "qonnx_clean.onnx"))
    proto.opset_import[0].version = 11
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp_path / "op11.onnx"))
    got, want = _build_foreign(tmp_path / "op11.onnx", demo_build, tmp_path)
    assert np.array_equal(got, want)


def test_qcdq_export_builds_like_the_qonnx_export(demo_build, tmp_path):
    """Brevitas's QCDQ export (per-channel int8 weights, Clip to 2 bits, DequantizeLinear with
    an axis), which qonnx's QCDQToQuant alone cannot convert, builds to the same integers."""
    import torch
    from brevitas.export import export_onnx_qcdq

    from flow.steps.frontend import InputScale
    from models import load_checkpoint, shipped_checkpoint

    module = InputScale(load_checkpoint(shipped_checkpoint("tfc-w2a2"))[0], 1 / 256).eval()
    export_onnx_qcdq(module, torch.zeros(1, 784), export_path=str(tmp_path / "qcdq.onnx"))
    ops = {n.op_type for n in onnx.load(str(tmp_path / "qcdq.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Clip"} <= ops
    got, want = _build_foreign(tmp_path / "qcdq.onnx", demo_build, tmp_path)
    assert np.array_equal(got, want)


def _flip_one_weight_digit(build):
    mem = sorted((build / "codegen").glob("code_gen_ipgen_MVAU_rtl_0_*/memblock.dat"))[0]
    lines = mem.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.strip("0"))  # a line with a non-zero weight
    j = next(k for k, c in enumerate(lines[i]) if c != "0")
    lines[i] = lines[i][:j] + ("0" if lines[i][j] != "0" else "1") + lines[i][j + 1:]
    mem.write_text("\n".join(lines) + "\n")
    return mem.relative_to(build)


def test_manifest_written_and_a_changed_weight_named(demo_build, tmp_path):
    m = json.loads((demo_build / "manifest.json").read_text())
    assert any(f.endswith("memblock.dat") for f in m["files"]) and any(f.startswith("steps/") for f in m["files"])
    assert not any(f.startswith(("outputs/", "rtl/", "rtlsim/")) for f in m["files"])
    b = tmp_path / "copy"
    shutil.copytree(demo_build, b)
    records = sorted((b / "verify").glob("*")) if (b / "verify").is_dir() else []  # other tests' verify runs
    changed = _flip_one_weight_digit(b)
    r = qnnflow("verify", str(b), "--samples", "5")
    line = one_line_error(r)
    assert "differs from its manifest" in line and str(changed) in line
    after = sorted((b / "verify").glob("*")) if (b / "verify").is_dir() else []
    assert after == records  # refused before anything was written


def test_build_holds_no_absolute_path_into_itself(demo_build):
    """Graphs (FINN's code generation attributes, the partitions' model), generated Verilog and
    records name files of the build relative to its root; the checkpoint travels with it."""
    root = str(demo_build.resolve()).encode()
    leaks = [str(p.relative_to(demo_build)) for p in demo_build.rglob("*")
             if p.is_file() and p.suffix != ".log" and root in p.read_bytes()]
    assert leaks == []
    g = onnx.load(str(build_folder.final_graph(demo_build)), load_external_data=False)
    cgd = [a.s.decode() for n in g.graph.node for a in n.attribute if a.name == "code_gen_dir_ipgen"]
    assert cgd and all(c.startswith("codegen/code_gen_ipgen_") for c in cgd)
    info = json.loads((demo_build / "build.json").read_text())
    assert info["checkpoint"] == "checkpoint.pt" and (demo_build / "checkpoint.pt").is_file()
    assert "checkpoint.pt" in json.loads((demo_build / "manifest.json").read_text())["files"]


def test_moved_build_verifies_from_its_own_files(demo_build, tmp_path, monkeypatch):
    """A copy verifies, every stage, from another working directory while the original is
    gone; a changed weight in the copy shows in rtlsim (nothing reads the original's files)."""
    from flow.verify import verify_build

    b = tmp_path / "copy"
    shutil.copytree(demo_build, b)
    hidden = demo_build.with_name(demo_build.name + ".away")
    demo_build.rename(hidden)
    try:
        monkeypatch.chdir(tmp_path)
        r = qnnflow("verify", str(b), "--samples", "20")
        assert r.returncode == 0, r.stderr[-1500:]
        record = json.loads(sorted((b / "verify").glob("*/record.json"))[-1].read_text())
        assert set(record["verify"]["mismatches"]) >= {"brevitas", "qonnx", "rtlsim", "rtlsim_stalls"}
        assert not any(record["verify"]["mismatches"].values())
        assert not Path(record["rtlsim"]["simulator"]).is_absolute()
        mem = sorted((b / "codegen").glob("code_gen_ipgen_MVAU_rtl_0_*/memblock.dat"))[0]
        mem.write_text("\n".join(mem.read_text().split()[::-1]) + "\n")
        v = verify_build(b, 30, stages=("intsim", "rtlsim"), out_dir=tmp_path / "o2", check_files=False)["verify"]
        assert v["mismatches"]["rtlsim"] > 0
    finally:
        hidden.rename(demo_build)


def test_relative_paths_resolve_against_the_opened_folder(demo_build):
    from qonnx.custom_op.registry import getCustomOp

    import hw.ops

    hw.ops.register()
    m = build_folder.load_graph(demo_build, build_folder.final_graph(demo_build))
    dirs = [getCustomOp(n).get_nodeattr("code_gen_dir_ipgen") for n in m.graph.node
            if n.op_type.startswith("MVAU")]
    assert dirs and all(Path(d).is_absolute() and Path(d).is_dir() and Path(d).is_relative_to(demo_build.resolve())
                        for d in dirs)
