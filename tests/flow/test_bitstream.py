"""`qnnflow bitstream`: clean refusals without Vivado, and the Vivado path up to the tool calls.

Without Vivado it must fail before writing anything, with one line naming what is missing.
With recording stand-ins for `vivado` and `vitis_hls` (on PATH, XILINX_VIVADO pointing at a
folder named like a 2022.2 install) the flow runs to the tool calls; the stand-ins record
argv, cwd and the TCL they are handed and check that every file the TCL adds exists, and
the test checks the scripts: part, clock, every layer (our own RTL cores included: sources,
memory files, module reference), the shell's DMA and TLAST counter. Then: a tool that
produces nothing (the stitched IP fails; the error names the log, no output folder is
written), a tool that succeeds (the deployment package appears, atomically), and a failing
bitstream run (the error names Vivado's log and its first ERROR line).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from flow.cli import main

STUB = r'''#!{python}
"""Stand-in for {tool}: records the call, checks the files the TCL adds, and (STUB_MODE) fakes outputs."""
import json, os, re, shutil, sys
from pathlib import Path

rec = Path(os.environ["STUB_RECORD"])
rec.mkdir(parents=True, exist_ok=True)
if sys.argv[1:] == ["-version"]:
    print("{tool} v2022.2 (64-bit)")
    sys.exit(0)
n = len(list(rec.glob("call*.json")))
argv = sys.argv[1:]
src = argv[argv.index("-source") + 1] if "-source" in argv else (argv[-1] if argv else "")
tcl = Path(src) if Path(src).is_absolute() else Path.cwd() / src
info = {{"tool": "{tool}", "argv": argv, "cwd": os.getcwd(), "tcl": None, "missing": [],
        "env": {{k: os.environ.get(k) for k in ("FINN_RTLLIB", "XILINX_VIVADO", "FINN_BUILD_DIR")}}}}
mode = os.environ.get("STUB_MODE", "record")
if tcl.is_file():
    text = tcl.read_text()
    info["tcl"] = str(rec / f"call{{n}}_{{tcl.name}}")
    shutil.copy(tcl, info["tcl"])
    expand = lambda f: re.sub(r"\$::env\((\w+)\)", lambda m: os.environ.get(m.group(1), "?"), f.strip("{{}}"))
    added = [expand(f) for f in re.findall(r"^\s*add_files -norecurse (\S+)\s*$", text, re.M)]
    info["added"] = added
    # files Vivado itself writes (the block design wrapper) are not expected beforehand
    info["missing"] = [f for f in added if not Path(f).exists() and not f.endswith("_wrapper.v")]
    for f in added:  # $readmemh files named in the Verilog handed over must exist too
        if f.endswith((".v", ".sv")) and Path(f).is_file():
            for m in re.findall(r'"(/[^"]+\.dat)"', Path(f).read_text()):
                if not Path(m).is_file():
                    info["missing"].append(m)
            for m in re.findall(r'"(/[^"]+_)"', Path(f).read_text()):  # threshold/memory path prefixes
                if not list(Path(m).parent.glob(Path(m).name + "*.dat")):
                    info["missing"].append(m + "*.dat")
    if mode in ("succeed", "fail-shell"):
        for f in added:
            if f.endswith("_wrapper.v") and not Path(f).exists():
                Path(f).parent.mkdir(parents=True, exist_ok=True)
                Path(f).write_text("// stand-in\n")
        if tcl.name == "shell.tcl":
            if mode == "fail-shell":
                Path("vivado.log").write_text("INFO: stand-in\nERROR: [Place 30-640] Place Check : 1 DSP48E1 over capacity\n")
                json.dump(info, open(rec / f"call{{n}}.json", "w"))
                sys.exit(1)
            for name in ("qnnflow.bit", "qnnflow.hwh"):
                Path(name).write_text("stand-in " + name)
            Path("utilization.rpt").write_text("| Slice LUTs    | 1234 |     0 |  53200 |  2.32 |\n"
                                               "| Slice Registers | 2345 | 0 | 106400 | 2.2 |\n"
                                               "| Block RAM Tile | 3.5 | 0 | 140 | 2.5 |\n| DSPs | 16 | 0 | 220 | 7.27 |\n")
            Path("timing.rpt").write_text("    WNS(ns)      TNS(ns)\n    -------      -------\n      1.234        0.000\n")
Path("vivado.log").write_text("INFO: stand-in for {tool}\n")
json.dump(info, open(rec / f"call{{n}}.json", "w"))
'''


@pytest.fixture
def stubs(tmp_path, monkeypatch):
    """Recording stand-ins on PATH and a fake Vivado 2022.2 installation folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("vivado", "vitis_hls"):
        p = bin_dir / tool
        p.write_text(STUB.format(python=sys.executable, tool=tool))
        p.chmod(0o755)
    root = tmp_path / "Xilinx"
    for d in ("Vivado/2022.2", "Vitis_HLS/2022.2"):
        (root / d).mkdir(parents=True)
    rec = tmp_path / "record"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("XILINX_VIVADO", str(root / "Vivado/2022.2"))
    monkeypatch.setenv("XILINX_HLS", str(root / "Vitis_HLS/2022.2"))
    monkeypatch.setenv("STUB_RECORD", str(rec))
    monkeypatch.delenv("FINN_TOOL_DIR_OVERRIDE", raising=False)
    return rec


def calls(rec: Path) -> list[dict]:
    return [json.loads((rec / f"call{i}.json").read_text()) for i in range(len(list(rec.glob("call*.json"))))]


def run(args, capsys) -> tuple[int, str]:
    rc = main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    return rc, (lines[-1] if lines else "")


def snapshot(build: Path) -> dict:
    return {str(p.relative_to(build)): p.stat().st_mtime_ns for p in build.rglob("*")}


@pytest.fixture(scope="module")
def topk_build(tmp_path_factory) -> Path:
    """tfc-w2a2 ending in label select (--topk 1): qnnflow's own RTL core LabelSelect_rtl."""
    from flow.config import BuildConfig
    from flow.pipeline import run_build

    out = tmp_path_factory.mktemp("bitstream") / "build"
    report = run_build(BuildConfig(out=out, model="tfc-w2a2", samples=100, topk=1))
    assert report["open_rtl_layers"] == {"LabelSelect_rtl_0": "LabelSelect_rtl"}
    return out


# ---------------------------------------------------------------------------------
# refusals: one line, non-zero, nothing written

def test_without_vivado_fails_cleanly(topk_build, monkeypatch, capsys):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    before = snapshot(topk_build)
    rc, line = run(["bitstream", str(topk_build)], capsys)
    assert rc != 0
    assert line.startswith("error: Vivado not found: XILINX_VIVADO is not set")
    assert "2022.2 or 2024.2" in line and "docker/README.md" in line
    assert snapshot(topk_build) == before  # nothing written, not even a temporary folder


def test_vivado_not_on_path(topk_build, tmp_path, monkeypatch, capsys):
    (tmp_path / "Vivado" / "2022.2").mkdir(parents=True)
    monkeypatch.setenv("XILINX_VIVADO", str(tmp_path / "Vivado" / "2022.2"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    rc, line = run(["bitstream", str(topk_build)], capsys)
    assert rc != 0 and "vivado is not on PATH" in line and "settings64.sh" in line


def test_unsupported_vivado_version(topk_build, stubs, tmp_path, monkeypatch, capsys):
    (tmp_path / "Xilinx" / "Vivado" / "2023.1").mkdir(parents=True)
    monkeypatch.setenv("XILINX_VIVADO", str(tmp_path / "Xilinx" / "Vivado" / "2023.1"))
    before = snapshot(topk_build)
    rc, line = run(["bitstream", str(topk_build)], capsys)
    assert rc != 0
    assert "Vivado 2023.1 is not supported" in line and "2022.2 and 2024.2" in line
    assert snapshot(topk_build) == before and not (stubs / "call0.json").exists()


def test_version_from_vivado_when_not_in_path(stubs, tmp_path, monkeypatch):
    """An installation outside <...>/Vivado/<version>: `vivado -version` tells."""
    from flow.steps.vivado import check_tools

    (tmp_path / "vivado-here").mkdir()
    monkeypatch.setenv("XILINX_VIVADO", str(tmp_path / "vivado-here"))
    assert check_tools([]).vivado_version == "2022.2"


def test_hls_layers_need_vitis_hls_and_finn_hlslib(stubs, tmp_path, monkeypatch):
    from flow.errors import FlowError
    from flow.steps.vivado import check_tools

    monkeypatch.delenv("XILINX_HLS")
    with pytest.raises(FlowError, match=r"HLS layers \(VVAU_hls_0\) and Vitis HLS is not found: XILINX_HLS is not set"):
        check_tools(["VVAU_hls_0"])
    monkeypatch.setenv("XILINX_HLS", str(tmp_path / "Xilinx" / "Vitis_HLS" / "2022.2"))
    monkeypatch.setenv("FINN_DEPS", str(tmp_path / "no-deps"))
    with pytest.raises(FlowError, match="finn-hlslib is not in .*no-deps; set FINN_DEPS"):
        check_tools(["VVAU_hls_0"])
    (tmp_path / "deps" / "finn-hlslib").mkdir(parents=True)
    monkeypatch.setenv("FINN_DEPS", str(tmp_path / "deps"))
    tools = check_tools(["VVAU_hls_0"])
    assert tools.vitis_hls.endswith("vitis_hls") and tools.finn_hlslib == str(tmp_path / "deps" / "finn-hlslib")
    (tmp_path / "Xilinx" / "Vitis_HLS" / "2024.2").mkdir(parents=True)
    monkeypatch.setenv("XILINX_HLS", str(tmp_path / "Xilinx" / "Vitis_HLS" / "2024.2"))
    with pytest.raises(FlowError, match="Vitis HLS 2024.2 with Vivado 2022.2"):
        check_tools(["VVAU_hls_0"])


def test_unknown_board_lists_the_known_ones(topk_build, stubs, capsys):
    rc, line = run(["bitstream", str(topk_build), "--board", "zedboard"], capsys)
    assert rc != 0 and "unknown board 'zedboard'" in line
    for name in ("pynq-z1", "pynq-z2", "ultra96-v2", "kv260", "zcu104"):
        assert name in line


def test_board_of_another_part_needs_a_rebuild(topk_build, stubs, capsys):
    rc, line = run(["bitstream", str(topk_build), "--board", "kv260"], capsys)
    assert rc != 0 and "xck26" in line and "--board kv260" in line


def test_not_a_build(tmp_path, stubs, capsys):
    rc, line = run(["bitstream", str(tmp_path / "nowhere")], capsys)
    assert rc != 0 and "does not exist" in line and "qnnflow build" in line
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "build.json").write_text(json.dumps({"model": "tfc-w2a2"}))
    rc, line = run(["bitstream", str(tmp_path / "half")], capsys)
    assert rc != 0 and "is not a finished qnnflow build" in line


# ---------------------------------------------------------------------------------
# up to the tool calls

def test_stitched_ip_script_and_clean_failure(topk_build, stubs, capsys):
    """The stand-in writes nothing: CreateStitchedIP fails; the error names the log, the
    build gets no bitstream/ or deploy/, the work stays in bitstream.failed/."""
    rc, line = run(["bitstream", str(topk_build)], capsys)
    assert rc != 0
    m = re.match(r"error: stitched IP \(FINN CreateStitchedIP\) failed: .*; log: (\S+/vivado\.log) ", line)
    assert m, line
    failed = topk_build / "bitstream.failed"
    assert Path(m.group(1)).is_file() and Path(m.group(1)).is_relative_to(failed)
    assert not (topk_build / "bitstream").exists() and not (topk_build / "deploy").exists()
    assert not list(topk_build.glob(".bitstream.tmp-*"))

    (call,) = calls(stubs)
    assert call["tool"] == "vivado" and call["argv"] == ["-mode", "batch", "-source", "make_project.tcl"]
    assert Path(call["cwd"]).name.startswith("vivado_stitch_proj_")
    assert call["env"]["FINN_RTLLIB"] and Path(call["env"]["FINN_RTLLIB"]).is_dir()
    assert call["missing"] == []
    tcl = Path(call["tcl"]).read_text()
    assert "-part xc7z020clg400-1" in tcl
    assert "set_property CONFIG.FREQ_HZ 100000000 [get_bd_ports /ap_clk]" in tcl
    assert "-module qnnflow_accel" in tcl  # packaged as IP xilinx_finn:finn:qnnflow_accel:1.0

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import hw.ops
    from hw.ops.base import OpenRTLBackend

    hw.ops.register()
    model = ModelWrapper(str(failed / "bitstream" / "accel.onnx"))
    # the stand-in saw the temporary folder, since renamed to bitstream.failed
    added = {re.sub(r"/\.bitstream\.tmp-\d+/", "/bitstream.failed/", f) for f in call["added"]}
    for node in model.graph.node:  # every layer is in the block design
        assert re.search(rf"create_bd_cell -type (module|hier) .*\b{node.name}\b", tcl), node.name
    ours = [n for n in model.graph.node if isinstance(getCustomOp(n), OpenRTLBackend)]
    assert [n.op_type for n in ours] == ["LabelSelect_rtl"]
    for node in ours:  # our cores: sources, memory files, wrapper referenced as a module
        inst = getCustomOp(node)
        top = inst.get_nodeattr("gen_top_module")
        cgd = Path(inst.get_nodeattr("code_gen_dir_ipgen"))
        for src in inst.core_sources():
            assert str(src) in added
        assert str(cgd / f"{top}.v") in added
        for mem in cgd.glob(f"{top}_*.dat"):
            assert str(mem) in added
        assert f"create_bd_cell -type module -reference {top} {node.name}" in tcl
    hw_rtl = Path(hw.ops.base.RTL_DIR)
    assert any(Path(f).parent == hw_rtl for f in added)
    # FINN's layers: their memory files exist where the Verilog points (checked by the stand-in)
    assert any(f.endswith("_memstream_wrapper.v") for f in added)


def test_full_run_with_standins(topk_build, stubs, monkeypatch, capsys):
    """Stand-ins that write what Vivado would: the flow completes, DIR/bitstream and DIR/deploy
    appear, the shell script has the board's part, clock, DMA widths and cells."""
    monkeypatch.setenv("STUB_MODE", "succeed")
    rc = main(["bitstream", str(topk_build), "--jobs", "3", "--force"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "deployment package" in out.out
    stitch, shell = calls(stubs)
    assert stitch["missing"] == [] and shell["missing"] == []
    assert shell["argv"][:5] == ["-mode", "batch", "-notrace", "-source", shell["argv"][4]]
    assert shell["argv"][4].endswith("/shell/shell.tcl")
    tcl = Path(shell["tcl"]).read_text()
    assert "set FPGA_PART {xc7z020clg400-1}" in tcl and "set FREQ_MHZ 100" in tcl
    assert "set BOARD_PART {www.digilentinc.com:pynq-z1:part0:1.0}" in tcl and "set PS_TYPE {zynq_7000}" in tcl
    assert "set ACCEL_VLNV {xilinx_finn:finn:qnnflow_accel:1.0}" in tcl and "set NUM_JOBS 3" in tcl
    assert "CONFIG.c_m_axis_mm2s_tdata_width {128}" in tcl and "CONFIG.c_s_axis_s2mm_tdata_width {8}" in tcl
    assert "create_bd_cell -type module -reference qnn_axis_tlast qnn_tlast" in tcl
    assert "set_property CONFIG.WIDTH {8} [get_bd_cells qnn_tlast]" in tcl
    assert "qnn_axis_tlast.v" in " ".join(shell["added"])
    ip_repos = re.search(r"set_property ip_repo_paths \[list (.*)\] \[current_project\]", tcl).group(1)
    assert "/ip}" in ip_repos and "memstream" in ip_repos and "$::env" not in ip_repos

    build = topk_build
    assert not (build / "bitstream.failed").exists() and not list(build.glob(".bitstream.tmp-*"))
    deploy = build / "deploy"
    for name in ("qnnflow.bit", "qnnflow.hwh", "driver.py", "packing.py", "validate.py", "accel.json",
                 "reference.npz", "mnist_test.npz", "README.md"):
        assert (deploy / name).is_file(), name
    config = json.loads((deploy / "accel.json").read_text())
    assert config["topk"] == 1 and config["board"] == "pynq-z1" and config["shell"]["dma"] == "axi_dma_0"
    summary = json.loads((build / "bitstream" / "bitstream.json").read_text())
    assert summary["results"] == {"LUT": 1234, "FF": 2345, "BRAM": 3.5, "DSP": 16, "wns_ns": 1.234}
    assert summary["tools"]["vivado_version"] == "2022.2"
    assert json.loads((build / "report.json").read_text())["bitstream"]["deploy"] == str(deploy)
    # paths inside the outputs name where they now lie, not the temporary folder
    assert ".bitstream.tmp-" not in (build / "bitstream" / "shell" / "shell.tcl").read_text()

    # again without --force: refused; with a failing Vivado: the previous outputs stay
    rc, line = run(["bitstream", str(build)], capsys)
    assert rc != 0 and "exist; pass --force" in line
    monkeypatch.setenv("STUB_MODE", "fail-shell")
    before = snapshot(build / "deploy")
    rc, line = run(["bitstream", str(build), "--force"], capsys)
    assert rc != 0
    assert "bitstream (Vivado synthesis and implementation for pynq-z1) failed: ERROR: [Place 30-640]" in line
    assert f"log: {build / 'bitstream.failed' / 'bitstream' / 'shell' / 'vivado.log'}" in line
    assert snapshot(build / "deploy") == before
