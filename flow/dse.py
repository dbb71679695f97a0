"""Design-space exploration: one verified build and one Yosys synthesis per (preset, fps)
point, run in parallel as Ray tasks, collected into results.json and a Pareto plot.

Contract: `run_dse(model, fps_targets, out, presets=..., ray_address=...)` builds every
point into <out>/points/<arch>-<preset>-fps<F>/ (qnnflow build with --allow-over-budget,
so an over-budget point is measured, not refused), synthesizes its stitched design
(`qnnflow synth --top-only`), and writes <out>/results.json ({"model", "points": [row]},
one row per point: images/s from rtlsim, Yosys LUT/FF/DSP/BRAM18, the fit against the
board's part, verification mismatches, seconds, or "error"), <out>/pareto.png and
pareto.svg (images/s vs LUT and vs DSP; the Pareto-optimal points joined; points that do
not fit hollow), and <out>/report.html. Without an address Ray starts locally with one
task per CPU; with one (`--ray-address HOST:PORT`) the tasks run on that cluster, whose
nodes need qnnflow installed and `out` on a file system they share.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .errors import FlowError


def points(model: str, fps_targets: list[float], presets: list[str] | None) -> list[dict]:
    from models.zoo import parse_name

    try:
        mn = parse_name(model)
    except Exception as exc:  # noqa: BLE001 - the zoo's one-line reason
        raise FlowError(str(exc)) from None
    names = [f"{mn.arch}-{p}" for p in presets] if presets else [model]
    for n in names:
        try:
            parse_name(n)
        except Exception as exc:  # noqa: BLE001
            raise FlowError(f"--presets: {exc}") from None
    return [{"name": n, "fps": float(f), "folder": f"{n}-fps{f:g}"} for n in names for f in fps_targets]


def run_point(point: dict, out: str, board: str, samples: int, binary_impl: str = "xnor") -> dict:
    """One point: build, verify, synthesize (runs inside a Ray worker)."""
    from hw.synth import synth_counts

    from .config import BuildConfig
    from .fit import fit_report, from_yosys
    from .pipeline import run_build

    folder = Path(out) / "points" / point["folder"]
    row = {**point, "folder": str(folder.relative_to(out))}
    t0 = time.time()
    try:
        rep = run_build(BuildConfig(out=folder, model=point["name"], target_fps=point["fps"], board=board,
                                    samples=samples, force=True, allow_over_budget=True,
                                    binary_impl=binary_impl))
        syn = synth_counts(folder, per_layer=False, top=True, jobs=1)
        if (syn.get("top") or {}).get("status") == "failed":
            # a Yosys process that ends without an error of its own (seen once in a Ray
            # worker while another point built) is run once more before the point fails
            row["synth_retried"] = True
            syn = synth_counts(folder, per_layer=False, top=True, jobs=1)
        top = syn.get("top") or {}
        counts = top.get("counts")
        if not counts:
            raise FlowError(f"Yosys did not synthesize {point['folder']} ({top.get('status')}); log: {top.get('log')}")
        fit = fit_report(from_yosys(counts), rep["fpga_part"], "Yosys synth_xilinx")
        rs = rep.get("rtlsim") or {}
        row.update({"images_per_s": rs.get("fps"), "cycles_per_image": rs.get("cycles_per_image"),
                    "estimated_images_per_s": (rep.get("estimates") or {}).get("fps"),
                    "LUT": fit["resources"].get("LUT", {}).get("used"), "FF": fit["resources"].get("FF", {}).get("used"),
                    "DSP": fit["resources"].get("DSP", {}).get("used"),
                    "BRAM18": fit["resources"].get("BRAM18", {}).get("used"),
                    "fit": fit, "fits": fit["fits"], "mismatches": (rep.get("verify") or {}).get("mismatches"),
                    "hls_layers": rep.get("hls_layers")})
        rep["fit"] = fit
        (folder / "report.json").write_text(json.dumps(rep, indent=2, default=float))
    except Exception as exc:  # noqa: BLE001 - a failed point is a result, the sweep goes on
        row["error"] = " ".join(str(exc).split())[:400] or type(exc).__name__
    row["seconds"] = round(time.time() - t0, 1)
    return row


def pareto(rows: list[dict], key: str) -> list[dict]:
    """The points no other point beats on both images/s (higher) and `key` (lower)."""
    ok = [r for r in rows if r.get("images_per_s") and r.get(key) is not None]
    return sorted([r for r in ok if not any(o is not r and o["images_per_s"] >= r["images_per_s"] and o[key] <= r[key]
                                            and (o["images_per_s"] > r["images_per_s"] or o[key] < r[key]) for o in ok)],
                  key=lambda r: r[key])


def plot(result: dict, out: Path) -> str:
    """pareto.png and pareto.svg; returns the SVG text (for report.html)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["points"] if "error" not in r]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, key in zip(axes, ("LUT", "DSP")):
        for name in sorted({r["name"] for r in rows}):
            for fits, face in ((True, None), (False, "none")):
                pts = [r for r in rows if r["name"] == name and bool(r["fits"]) == fits]
                if pts:
                    ax.scatter([r[key] for r in pts], [r["images_per_s"] for r in pts], s=50,
                               facecolors=face, edgecolors=f"C{sorted({r['name'] for r in rows}).index(name)}",
                               color=None if face else f"C{sorted({r['name'] for r in rows}).index(name)}",
                               label=f"{name}{'' if fits else ' (over budget)'}")
        front = pareto(rows, key)
        if front:
            ax.plot([r[key] for r in front], [r["images_per_s"] for r in front], "k--", linewidth=0.8,
                    label="Pareto front")
        budget = next((r["fit"]["resources"].get(key, {}).get("available") for r in rows if r.get("fit")), None)
        if budget:
            ax.axvline(budget, color="red", linewidth=0.8, label=f"{result['part']} {key} budget")
        ax.set_xlabel(f"Yosys {key}")
        ax.set_ylabel("images/s (rtlsim)")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"qnnflow dse: {result['model']} on {result['board']}")
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=110)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    (out / "pareto.svg").write_text(svg)
    return svg[svg.index("<svg"):]


def run_dse(model: str, fps_targets: list[float], out: Path, *, presets: list[str] | None = None,
            board: str = "pynq-z1", samples: int = 200, ray_address: str | None = None, console=None,
            binary_impl: str = "xnor") -> dict:
    from hw.boards import BoardError, get_board

    try:
        part = get_board(board).part
    except BoardError as exc:
        raise FlowError(str(exc)) from None
    todo = points(model, fps_targets, presets)
    out = Path(out).resolve()
    if out.exists() and not (out / "results.json").is_file() and any(out.iterdir()):
        raise FlowError(f"{out} exists and is not a qnnflow dse folder (no results.json); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    try:
        import ray
    except ImportError:
        raise FlowError("ray is not installed; run `make install` (ray is in requirements.lock)") from None
    t0 = time.time()
    try:
        if ray_address:
            ray.init(address=ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - Ray's connection errors vary
        raise FlowError(f"cannot start or reach Ray{' at ' + ray_address if ray_address else ''}: "
                        f"{' '.join(str(exc).split())[:200]}") from None
    try:
        task = ray.remote(num_cpus=1)(run_point)
        pending = {task.remote(p, str(out), board, samples, binary_impl): p for p in todo}
        rows = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            p = pending.pop(done[0])
            row = ray.get(done[0])
            rows.append(row)
            if console is not None:
                what = (f"error: {row['error']}" if "error" in row else
                        f"{row['images_per_s']:,.0f} images/s, LUT {row['LUT']:,.0f}, DSP {row['DSP']:,.0f}, "
                        f"{'fits' if row['fits'] else 'over budget'}")
                console.print(f"[{len(rows)}/{len(todo)}] {p['folder']}: {what} ({row['seconds']:.0f} s)",
                              highlight=False)
    finally:
        ray.shutdown()
    order = {p["folder"]: i for i, p in enumerate(todo)}
    rows.sort(key=lambda r: order[Path(r["folder"]).name])
    result = {"model": model, "board": board, "part": part, "fps_targets": fps_targets, "presets": presets,
              "samples": samples, "binary_impl": binary_impl, "ray_address": ray_address,
              "seconds": round(time.time() - t0, 1),
              "points": rows}
    for key in ("LUT", "DSP"):
        result[f"pareto_{key}"] = [r["folder"] for r in pareto(rows, key)]
    (out / "results.json").write_text(json.dumps(result, indent=2, default=float))
    if any("error" not in r for r in rows):
        svg = plot(result, out)
        _write_pages(out, result, svg)
    return result


def _write_pages(out: Path, result: dict, svg: str) -> None:
    """Each point's report.html with the sweep's plot, and <out>/report.html: table and plot."""
    import html

    from .build_folder import read_record
    from .html_report import write_html

    for r in result["points"]:
        rp = out / r["folder"] / "report.json"
        if "error" not in r and rp.is_file():
            write_html(out / r["folder"], read_record(rp), pareto_svg=svg)
    head = ["point", "images/s", "cycles/image", "LUT", "FF", "DSP", "BRAM18", "fits", "mismatches", "seconds"]
    rows = []
    for r in result["points"]:
        if "error" in r:
            rows.append(f"<tr><td>{html.escape(r['folder'])}</td><td colspan='9'>error: {html.escape(r['error'])}</td></tr>")
            continue
        mm = sum((r.get("mismatches") or {}).values())
        cells = [r["folder"], f"{r['images_per_s']:,.0f}", f"{r['cycles_per_image']:.1f}", f"{r['LUT']:,.0f}",
                 f"{r['FF']:,.0f}", f"{r['DSP']:,.0f}", f"{r['BRAM18']:,.0f}", "yes" if r["fits"] else "no", mm,
                 r["seconds"]]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    table = ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")
    title = html.escape(f"qnnflow dse: {result['model']} on {result['board']} ({result['part']})")
    (out / "report.html").write_text(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:.2em .5em}"
        "table{border-collapse:collapse}</style></head>"
        f'<body><h1>{title}</h1><section id="points"><h2>Points</h2>{table}</section>'
        f'<section id="pareto"><h2>Pareto plot</h2>{svg}</section></body></html>\n')
