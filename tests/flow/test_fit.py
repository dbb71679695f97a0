"""The board fit check (flow/fit.py) and the self-contained HTML report (flow/html_report.py)."""
from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from flow.config import BuildConfig
from flow.errors import FlowError
from flow.fit import check_fit, fit_report, from_estimates, from_yosys, shares_line
from flow.html_report import render, write_html
from flow.pipeline import run_build
from hw.boards import BOARDS, part_resources


def test_every_board_has_a_budget():
    for b in BOARDS.values():
        r = part_resources(b.part)
        assert r and set(r) == {"LUT", "FF", "DSP", "BRAM18"} and all(v > 0 for v in r.values()), b.name
    assert part_resources("xc7z020clg400-1")["DSP"] == 220
    assert part_resources("xc7a35tcpg236-1") is None


def test_shares_and_over_budget():
    f = fit_report({"LUT": 26_600, "DSP": 330, "BRAM18": 10}, "xc7z020clg400-1", "FINN estimate")
    assert f["resources"]["LUT"]["share"] == 0.5 and f["resources"]["DSP"]["share"] == 1.5
    assert "FF" not in f["resources"] and f["over"] == ["DSP"] and f["fits"] is False
    assert "LUT 26,600 / 53,200 (50 %)" in shares_line(f)
    with pytest.raises(FlowError, match=r"does not fit xc7z020clg400-1 \(FINN estimate\): DSP 330 of 220 \(150 %\)"
                                        r".*--allow-over-budget"):
        check_fit(f, allow_over_budget=False)
    check_fit(f, allow_over_budget=True)
    unknown = fit_report({"LUT": 1}, "xc7a35t", "x")
    assert unknown["known"] is False and unknown["fits"] is None
    check_fit(unknown, False)


def test_yosys_lut_sites_and_estimate_totals():
    y = from_yosys({"LUT": 100, "LUTRAM": 20, "SRL": 3, "FF": 50, "DSP48E1": 2, "BRAM_18K": 4})
    assert y == {"LUT": 123, "FF": 50, "DSP": 2, "BRAM18": 4}
    e = from_estimates({"layer_resources": {"total": {"LUT": 78.0, "DSP": 33, "BRAM_18K": 11}}})
    assert e == {"LUT": 78.0, "DSP": 33, "BRAM18": 11}


def test_over_budget_build_refused_at_estimates_and_allowed_on_request(tmp_path, monkeypatch):
    import hw.boards

    monkeypatch.setitem(hw.boards.DEVICE_RESOURCES, "xc7z020", {"LUT": 53_200, "FF": 106_400, "DSP": 10,
                                                                "BRAM18": 280})
    out = tmp_path / "b"
    with pytest.raises(FlowError, match=r"does not fit xc7z020clg400-1 \(FINN estimate\): DSP \d+ of 10 \(\d+ %\); "
                                        r"--binary-impl lut moves MVAU_rtl_0, MVAU_rtl_1, MVAU_rtl_2, MVAU_rtl_3 off"):
        run_build(BuildConfig(out=out, model="tfc-w2a2", samples=10, rtlsim=False))  # ternary layers on DSPs
    assert not out.exists() and not list(tmp_path.glob(".b.tmp-*"))
    rep = run_build(BuildConfig(out=out, model="tfc-w2a2", samples=10, rtlsim=False, allow_over_budget=True))
    assert rep["fit"]["over"] == ["DSP"] and rep["fit"]["source"] == "FINN estimate"
    page = (out / "report.html").read_text()
    assert 'class="bad">over budget: DSP' in page


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.sections, self.refs, self.stack = [], [], [], []
        self.rows = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "tr" and self.sections:
            self.rows[self.sections[-1]] = self.rows.get(self.sections[-1], 0) + 1
        for k in ("src", "href"):
            if k in a:
                self.refs.append(a[k])


def test_report_html_is_self_contained_and_complete(demo_build):
    report = json.loads((demo_build / "report.json").read_text())
    page = (demo_build / "report.html").read_text()
    p = _Page()
    p.feed(page)
    assert p.sections == ["verification", "timing", "layers", "fifos", "fit"]
    assert "script" not in p.tags and "link" not in p.tags and p.refs == []
    assert "http://" not in page and "https://" not in page
    v = report["verify"]
    assert p.rows["verification"] == 1 + len(v["stages"]) + len(v.get("skipped") or {})
    assert p.rows["layers"] == 1 + len(report["layers"])
    assert p.rows["fifos"] == 1 + len(report["fifo_depths"])
    for layer in report["layers"]:
        assert f"<td>{layer['name']}</td>" in page
    assert "PE=" in page and "SIMD=" in page  # the folding
    assert f"{report['rtlsim']['cycles_per_image']:.1f}" in page


def test_report_html_escapes_build_text_and_embeds_a_plot():
    report = {"model": "<script>x</script>", "board": "pynq-z1", "fpga_part": "xc7z020clg400-1",
              "clock_mhz": 100.0, "layers": [], "verify": None}
    page = render(report, {}, pareto_svg="<svg><circle r='1'/></svg>")
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    p = _Page()
    p.feed(page)
    assert p.sections[-1] == "pareto" and "svg" in p.tags


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium/Chrome on PATH to render report.html "
                                               "(the structure test above runs regardless)")
def test_report_html_renders_in_a_headless_browser(demo_build, tmp_path):
    page = tmp_path / "report.html"
    write_html(tmp_path, json.loads((demo_build / "report.json").read_text()))
    r = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    for sid in ("verification", "timing", "layers", "fifos", "fit"):
        assert f'id="{sid}"' in r.stdout
    assert Path(page).is_file()
