"""report.json (its documented keys, README "What a build contains", plus more) and a human report."""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table


def assemble_report(info: dict, timings: dict, verify: dict | None, rec) -> dict:
    """report.json from the build record (build.json), step timings, verification and
    the steps' BuildRecord (flow/record.py)."""
    report = {
        "model": info.get("model") or info.get("onnx") or "module",
        "board": info["board"], "fpga_part": info["fpga_part"], "clock_mhz": info["clock_mhz"],
        "target_fps": info.get("target_fps"),
        "checkpoint": info.get("checkpoint"),  # the build's own copy (build-relative)
        "checkpoint_source": info.get("checkpoint_source"),  # where it was copied from (provenance)
        "checkpoint_meta": rec.checkpoint_meta,
        "exporter": rec.exporter,  # "torch.export", "torchscript" (fallback), None for --onnx
        "input_dtype": info.get("input_dtype"),
        "float_tail": rec.float_tail,
        "hls_layers": rec.hls_layers,
        # HLS-only layers of FINN that run on qnnflow's own RTL cores (hw/rtl): node -> op
        "open_rtl_layers": rec.open_rtl_layers,
        "thresholds_absorbed": rec.thresholds_absorbed,
        "topk": info.get("topk") or None,
        "binary_impl": info.get("binary_impl", "xnor"),  # binary layers: xnor (LUT core), lut (ternary too) or dsp (MVAU_rtl)
        "layers": rec.layers,
        "estimates": rec.estimates,
        "fit": rec.fit,  # resources vs the board's part (flow/fit.py); qnnflow synth puts Yosys's here
        "verify": None, "accuracy": {},
        "rtlsim": None,
        "timings_s": timings,
    }
    if verify:
        report["verify"] = verify["verify"]
        report["accuracy"] = verify["accuracy"]
        report["rtlsim"] = verify.get("rtlsim")
    report["fifo_depths"] = rec.fifo_depths
    report["fifo_sizing"] = rec.fifo_sizing
    return report


def summary_table(report: dict) -> Table:
    v = report.get("verify") or {}
    t = Table(title=f"qnnflow build: {report['model']} on {report['board']} "
                    f"({report['fpga_part']}, {report['clock_mhz']:g} MHz)")
    t.add_column("stage")
    t.add_column("mismatches", justify="right")
    t.add_column("top-1 %", justify="right")
    t.add_column("seconds", justify="right")
    for s in v.get("stages", []):
        mm = v["mismatches"][s]
        ex = (v.get("explained") or {}).get(s)
        note = f" ({ex['float_ties']} float ties)" if ex and ex.get("float_ties") else ""
        t.add_row(s, f"{mm} / {v['samples']}" + note + (" (reference)" if s == v.get("reference") else ""),
                  f"{report['accuracy'].get(s, float('nan')):.2f}" if s in report["accuracy"] else "-",
                  f"{v.get('timings_s', {}).get(s, 0):.2f}")
    for s, why in v.get("skipped", {}).items():
        t.add_row(s, "skipped", "-", "-", style="dim")
    est = report.get("estimates") or {}
    rs = report.get("rtlsim") or {}
    lines = []
    if rs:
        lines.append(f"rtlsim (Verilator): {rs['cycles_per_image']:.1f} cycles/image, latency {rs['latency_cycles']} "
                     f"cycles, {rs['fps']:,.0f} images/s at {rs['clock_mhz']:g} MHz; "
                     f"{rs['sim_cycles_per_s'] / 1e6:.2f} M simulated cycles/s")
    if est:
        t.caption = (f"FINN estimate: {est['max_cycles']} cycles/image, {est['fps']:,.0f} images/s, "
                     f"latency {est['critical_path_cycles']} cycles; "
                     f"LUT {est['layer_resources']['total'].get('LUT', 0):,.0f}, "
                     f"BRAM18 {est['layer_resources']['total'].get('BRAM_18K', 0):,.0f}, "
                     f"DSP {est['layer_resources']['total'].get('DSP', 0):,.0f}")
    if report.get("fit"):
        from .fit import shares_line

        lines.append(shares_line(report["fit"]))
    if lines:
        t.caption = "\n".join(lines + ([t.caption] if t.caption else []))
    return t


def write_report(build_dir: Path, report: dict) -> dict:
    build_dir = Path(build_dir)
    (build_dir / "report.json").write_text(json.dumps(report, indent=2, default=float))
    console = Console(record=True, width=110, file=open("/dev/null", "w"))
    console.print(summary_table(report))
    v = report.get("verify") or {}
    for s, fm in (v.get("first_mismatch") or {}).items():
        console.print(f"{s}: first mismatch at sample {fm['sample']}, output {fm['index']}: "
                      f"{fm['value']} vs {v['reference']} {fm['reference']}")
    console.print("timings (s): " + ", ".join(f"{k} {val:.2f}" for k, val in report["timings_s"].items()))
    (build_dir / "report.txt").write_text(console.export_text())
    from .html_report import write_html

    write_html(build_dir, report)
    return report
