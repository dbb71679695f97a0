"""Yosys fixes, applied to the synthesis copies only (finn-plus 1.6.1 sources), and
the work copy they are applied to.

Registry: `@synth_fix("what it fixes")` registers a function text -> (text, number of
changes), applied to every source file. Each finds its construct by pattern and is a
no-op where the construct is absent; prepare_work records which fixed what.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from ..errors import HwError
from ..verilog import write_if_changed

SynthFix = Callable[[str], tuple[str, int]]
SYNTH_PATCHES: dict[str, SynthFix] = {}  # what it fixes -> the fix, in order


def synth_fix(what: str):
    """Register the decorated function text -> (text, changes) as a Yosys source fix."""
    def register(fn: SynthFix) -> SynthFix:
        SYNTH_PATCHES[what] = fn
        return fn
    return register


@synth_fix("`default_nettype inside a module")
def _fix_default_nettype(text: str) -> tuple[str, int]:
    """slang: "directive is not allowed inside a design element" (fifo.sv, vpc.sv put
    `default_nettype none/wire inside the module). It only forbids implicit nets, so
    dropping it changes nothing in code that compiles with it."""
    return re.subn(r"^([ \t]*)(`default_nettype\b[^\n]*)",
                   r"\1// qnnflow (Yosys): \2", text, flags=re.M)


@synth_fix("DSP start-up watchdog (simulation only)")
def _fix_recovery_watch(text: str) -> tuple[str, int]:
    """slang: "non-blocking assignments unsupported in design initialization": mvu.sv's
    DSP start-up watchdog (`initial begin #100ns; Dirty <= 0; end` plus an assertion)
    is simulation-only; synthesis tools drop it. Excluded under SYNTHESIS."""
    return re.subn(r"(\n[ \t]*if\s*\(\s*1\s*\)\s*begin\s*:\s*blkRecoveryWatch\b.*?"
                   r"end\s*:\s*blkRecoveryWatch\b[^\n]*\n)",
                   lambda m: "\n`ifndef SYNTHESIS  // qnnflow (Yosys): simulation-only watchdog"
                             + m.group(1) + "`endif\n", text, flags=re.S)


@synth_fix("thresholding dead-branch reversed part-select")
def _fix_threshold_scope(text: str) -> tuple[str, int]:
    """slang: "unsynthesizable feature" (no location) in thresholding.sv:
    `Scope <= (SCOPE_REDUCE == 0)? 1 : p.ptr[M-1:SN+1] < ...` has, at stage 0
    (SN = M-1), the reversed part-select p.ptr[M-1:M] in the branch the constant
    condition never takes (SCOPE_REDUCE is 0 at stage 0 for every N). The same bits
    as a shift and mask: ptr[M-1:SN+1] = (ptr >> (SN+1)) & (2**stage - 1), as
    SN + stage = M - 1; identical values wherever the part-select is well-formed."""
    return re.subn(r"p\.ptr\[M-1:SN\+1\](\s*<\s*2\*\*stage)",
                   r"((p.ptr >> (SN+1)) & (2**stage - 1))\1  /* qnnflow (Yosys) */", text)


def prepare_work(rtl_dir: Path, work: Path) -> tuple[list[str], dict[str, list[str]]]:
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
        write_if_changed(work / "src" / n, text)
    if (rtl_dir / "mem").is_dir():
        shutil.copytree(rtl_dir / "mem", work / "mem")
    return [f"src/{n}" for n in names], patched
