"""report.html: one self-contained page per build (no script, no network, inline CSS).

Contract: `write_html(build_dir, report)` writes <build>/report.html from report.json's
content and the build's folding_config.json: the verification table, rtlsim's timing,
the layers (FINN's cycles and resource estimates, the folding, Yosys's counts where
`qnnflow synth` ran), the FIFO depths and the resources against the board's part (bars),
and, given `pareto_svg` (a DSE's plot), that figure inline. Each section is a <section>
with an id (verification, timing, layers, fifos, fit, pareto) so tests and readers can
find it. Every text taken from the build is escaped. It is rewritten whenever report.json
is (build, verify, synth).
"""
from __future__ import annotations

import html
import json
import logging
from pathlib import Path

from .fit import shares_line

log = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f2f2f2}
.ok{color:#176b17}.bad{color:#b00020;font-weight:bold}.note{color:#666;font-size:.85em}
.bar{background:#eee;width:300px;height:.9em;display:inline-block;vertical-align:middle}
.bar span{display:block;height:100%;background:#4a7ebb}.bar span.over{background:#b00020}
"""
_FOLD_KEYS = ("PE", "SIMD", "parallel_window", "depth", "ram_style", "resType")


def _e(x) -> str:
    return html.escape("-" if x is None else str(x))


def _table(head: list[str], rows: list[list], cls: dict[int, str] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def _verification(report: dict) -> str:
    v = report.get("verify") or {}
    if not v:
        return "<p>not verified (built with --no-verify)</p>"
    rows = []
    for s in v.get("stages", []):
        mm = v["mismatches"][s]
        cls = "ok" if mm == 0 else "bad"
        acc = report.get("accuracy", {}).get(s)
        rows.append([_e(s), f'<span class="{cls}">{_e(mm)} / {_e(v["samples"])}</span>'
                     + (" (reference)" if s == v.get("reference") else ""),
                     "-" if acc is None else f"{acc:.2f}", f"{v.get('timings_s', {}).get(s, 0):.2f}"])
    for s, why in (v.get("skipped") or {}).items():
        rows.append([_e(s), "skipped", "-", _e(why)])
    return _table(["stage", "mismatches", "top-1 %", "seconds"], rows)


def _timing(report: dict) -> str:
    rs, est = report.get("rtlsim") or {}, report.get("estimates") or {}
    rows = []
    if rs:
        rows.append(["rtlsim (Verilator)", f"{rs['cycles_per_image']:.1f}", _e(rs.get("latency_cycles")),
                     f"{rs['fps']:,.0f}"])
    if est:
        rows.append(["FINN estimate", _e(est.get("max_cycles")), _e(est.get("critical_path_cycles")),
                     f"{est.get('fps', 0):,.0f}"])
    clock = report.get("clock_mhz")
    at = f" at {clock:g} MHz" if isinstance(clock, (int, float)) else ""
    return _table(["source", "cycles/image", "latency cycles", f"images/s{at}"], rows) if rows else "<p>no timing</p>"


def _layers(report: dict, folding: dict) -> str:
    est = report.get("estimates") or {}
    cycles, res = est.get("layer_cycles") or {}, est.get("layer_resources") or {}
    synth = {r["layer"]: r for r in (report.get("synth") or {}).get("rows", [])}
    rows = []
    for layer in report.get("layers") or []:
        name = layer["name"]
        fold = folding.get(name) or {}
        r, y = res.get(name) or {}, synth.get(name) or {}
        rows.append([_e(name), _e(layer["op_type"]),
                     _e(", ".join(f"{k}={fold[k]}" for k in _FOLD_KEYS if k in fold) or "-"),
                     _e(cycles.get(name)), _e(r.get("LUT")), _e(r.get("DSP")), _e(r.get("BRAM_18K")),
                     _e(y.get("yosys_LUT")), _e(y.get("yosys_FF")), _e(y.get("yosys_DSP")), _e(y.get("yosys_BRAM18"))])
    head = ["layer", "op", "folding", "cycles", "FINN LUT", "FINN DSP", "FINN BRAM18",
            "Yosys LUT", "Yosys FF", "Yosys DSP", "Yosys BRAM18"]
    note = "" if synth else '<p class="note">Yosys columns: run <code>qnnflow synth</code> on this build</p>'
    return _table(head, rows) + note


def _fifos(report: dict) -> str:
    depths = report.get("fifo_depths") or {}
    if not depths:
        return "<p>no FIFOs (built with --no-rtlsim)</p>"
    occ = (report.get("rtlsim") or {}).get("fifo_max_occupancy") or {}
    return _table(["FIFO", "depth", "max occupancy in rtlsim"],
                  [[_e(k), _e(v), _e(occ.get(k))] for k, v in depths.items()])


def _fit(report: dict) -> str:
    fit = report.get("fit")
    if not fit:
        return "<p>no resource figures</p>"
    rows = []
    for k, v in fit.get("resources", {}).items():
        pct = 100 * v["share"]
        cls = ' class="over"' if v["share"] > 1 else ""
        rows.append([_e(k), f"{v['used']:,.0f}", f"{v['available']:,}", f"{pct:.1f} %",
                     f'<span class="bar"><span{cls} style="width:{min(pct, 100):.1f}%"></span></span>'])
    verdict = {True: '<p class="ok">fits</p>', False: f'<p class="bad">over budget: {_e(", ".join(fit["over"]))}</p>',
               None: ""}[fit.get("fits")]
    return f"<p>{_e(shares_line(fit))}</p>" + (_table(["resource", "used", "available", "share", ""], rows)
                                               if rows else "") + verdict


def render(report: dict, folding: dict, pareto_svg: str | None = None) -> str:
    title = f"qnnflow build: {report.get('model')} on {report.get('board')}"
    sections = [("verification", "Verification (integer outputs vs the reference)", _verification(report)),
                ("timing", "Throughput and latency", _timing(report)),
                ("layers", "Layers: folding, cycles, resources", _layers(report, folding)),
                ("fifos", "FIFO depths", _fifos(report)),
                ("fit", f"Resources vs the board's part ({report.get('fpga_part')})", _fit(report))]
    if pareto_svg:
        sections.append(("pareto", "Design-space exploration (images/s vs resources)", pareto_svg))
    body = "".join(f'<section id="{sid}"><h2>{_e(h)}</h2>{content}</section>' for sid, h, content in sections)
    hls = report.get("hls_layers") or []
    meta = (f"<p>part {_e(report.get('fpga_part'))}, {_e(report.get('clock_mhz'))} MHz; "
            f"HLS layers: {_e(', '.join(hls) or 'none (all RTL)')}</p>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>{meta}{body}</body></html>\n")


def write_html(build_dir: Path, report: dict, pareto_svg: str | None = None) -> Path:
    build_dir = Path(build_dir)
    fp = build_dir / "folding_config.json"
    try:
        folding = json.loads(fp.read_text()) if fp.is_file() else {}
    except ValueError:
        folding = {}
    out = build_dir / "report.html"
    tmp = out.with_name(out.name + ".tmp")
    try:
        page = render(report, folding if isinstance(folding, dict) else {}, pareto_svg)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # a report.json of an older layout: the page is a view, the command's result stands
        log.warning("report.html not rewritten: %s does not have the expected layout (%s)", build_dir, exc)
        return out
    tmp.write_text(page)
    tmp.replace(out)
    return out
