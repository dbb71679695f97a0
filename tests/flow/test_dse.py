"""qnnflow dse: a two-point sweep on a local Ray, results.json, the Pareto plot and pages."""
from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from flow.dse import pareto, points
from flow.errors import FlowError


def qnnflow(*args):
    return subprocess.run([sys.executable, "-m", "flow.cli", *args], capture_output=True, text=True)


def test_points_and_pareto_front():
    ps = points("tfc-w1a1", [1e4, 1e6], ["w1a1", "w2a2"])
    assert [p["folder"] for p in ps] == ["tfc-w1a1-fps10000", "tfc-w1a1-fps1e+06",
                                         "tfc-w2a2-fps10000", "tfc-w2a2-fps1e+06"]
    with pytest.raises(FlowError, match="--presets"):
        points("tfc-w1a1", [1e4], ["w9x"])
    rows = [{"folder": "a", "images_per_s": 10, "LUT": 100}, {"folder": "b", "images_per_s": 100, "LUT": 1000},
            {"folder": "c", "images_per_s": 50, "LUT": 2000}, {"folder": "d", "error": "x"}]
    assert [r["folder"] for r in pareto(rows, "LUT")] == ["a", "b"]  # c: slower and larger than b


@pytest.mark.parametrize("args, words", [
    (["--fps", "1e4,abc"], "--fps: must be a finite number > 0"),
    (["--fps", "0"], "--fps: must be a finite number > 0"),
    (["--fps", "1e4", "--binary-impl", "luts"], "invalid choice: 'luts'"),
])
def test_bad_values_are_usage_errors(args, words):
    r = qnnflow("dse", "--model", "tfc-w1a1", *args)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr


def test_refuses_a_folder_that_is_not_a_sweep(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    r = qnnflow("dse", "--model", "tfc-w1a1", "--fps", "1e4", "--out", str(tmp_path))
    assert r.returncode == 2 and "not a qnnflow dse folder" in r.stderr and "Traceback" not in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_two_point_sweep_on_local_ray(tmp_path):
    out = tmp_path / "dse"
    r = qnnflow("dse", "--model", "tfc-w1a1", "--fps", "2e3,5e4", "--samples", "20", "--out", str(out))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert res["binary_impl"] == "xnor"
    assert [p["folder"] for p in res["points"]] == ["points/tfc-w1a1-fps2000", "points/tfc-w1a1-fps50000"]
    slow, fast = res["points"]
    for p in res["points"]:
        assert "error" not in p, p
        assert p["LUT"] > 0 and p["FF"] > 0 and p["fits"] is True and not any(p["mismatches"].values())
        assert p["fit"]["source"] == "Yosys synth_xilinx" and p["hls_layers"] == []
    assert fast["images_per_s"] > 5 * slow["images_per_s"] and fast["LUT"] > slow["LUT"]
    assert set(res["pareto_LUT"]) == {slow["folder"], fast["folder"]}
    assert (out / "pareto.png").stat().st_size > 10_000 and "<svg" in (out / "pareto.svg").read_text()

    class Sections(HTMLParser):
        ids: list = []

        def handle_starttag(self, tag, attrs):
            if tag == "section":
                self.ids.append(dict(attrs).get("id"))

    for page, want in ((out / "report.html", ["points", "pareto"]),
                       (out / fast["folder"] / "report.html", ["verification", "timing", "layers", "fifos", "fit",
                                                               "pareto"])):
        s = Sections()
        s.ids = []
        s.feed(page.read_text())
        assert s.ids == want, page
    rep = json.loads((out / fast["folder"] / "report.json").read_text())
    assert rep["fit"]["source"] == "Yosys synth_xilinx"
