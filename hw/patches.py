"""Fixes and recodings applied to copies of finn-rtllib sources (finn-plus 1.6.1) when
the stitcher (hw/stitch.py) collects them; never to the installed FINN.

Registry: `@patch("file.sv")` registers a function text -> text for every copied
file of that name, applied in registration order; `patched(name, text)` applies
them. The SystemVerilog they insert lives in hw/rtl/recode/*.svh, each a fragment
of the module it is inserted into, linted in place by the tests that compile the
patched copies (tests/hw/test_recode.py, tests/hw/test_rtlsim.py).

Two kinds:
- Verilator fixes: constructs Verilator 5.48 rejects, rewritten with the same meaning
  (add_multi.sv, fifo.sv's INIT_ABITS);
- simulation-speed recodings, under `ifdef QNNFLOW_SIM_RECODE (recode_define.svh:
  defined under Verilator unless QNNFLOW_FINN_RTL is; the exact MVU model has its own
  define, mvu_exact_define.svh). Yosys synthesis of the same copies (hw/synth/)
  still reads FINN's code. Each keeps every value at the module's ports on every
  cycle where it is valid, so outputs and cycle counts are unchanged:
  tests/hw/test_recode.py compares modules port by port, tests/hw/test_rtlsim.py
  the stitched accelerator, with FINN's code (hw.rtlsim(..., finn_rtl=True)). What
  each recoding gains is measured by `make bench` (README, "Cycle-accurate simulation").
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Callable

from .errors import HwError

FRAGMENTS = Path(__file__).resolve().parent / "rtl" / "recode"

Patch = Callable[[str], str]
PATCHES: dict[str, list[Patch]] = {}  # finn-rtllib file name -> its patches, in order


def patch(file_name: str):
    """Register the decorated function text -> text for copies of `file_name`."""
    def register(fn: Patch) -> Patch:
        PATCHES.setdefault(file_name, []).append(fn)
        return fn
    return register


def patched(name: str, text: str) -> str | None:
    """`text` of the file `name` with its patches applied; None when it has none."""
    if name not in PATCHES:
        return None
    for fn in PATCHES[name]:
        text = fn(text)
    return text


@cache
def fragment(name: str) -> str:
    """The SystemVerilog fragment hw/rtl/recode/<name>."""
    p = FRAGMENTS / name
    if not p.is_file():
        raise HwError(f"{p} is missing; reinstall qnnflow (make install)")
    return p.read_text()


def blank_init_file(text: str) -> str:
    """The memstream wrapper's INIT_FILE default is an absolute path into FINN's code
    generation folder; the top level overrides it with a path relative to the RTL
    folder. Blank the default so the copy does not depend on where the build lives
    (the simulator cache key is a hash of these sources)."""
    new, n = re.subn(r'(parameter\s+INIT_FILE\s*=\s*)"[^"]*"',
                     r'\1""  /* qnnflow: set by qnnflow_top (relative to the RTL folder) */', text, count=1)
    return new if n else text


# ---------------------------------------------------------------------------------
# Verilator fixes

@patch("add_multi.sv")
def _patch_add_multi(text: str) -> str:
    """Verilator 5.48 rejects a constant function declared inside a generate block
    ("Constant function may not be declared under generate"): move init_leaf_loads
    (and its return type) to module scope. It depends only on the parameter N."""
    func = re.search(r"\n(\t\t// Compute the count of decendents.*?endfunction : init_leaf_loads\n)", text, re.S)
    anchor = "\tuwire [SUM_WIDTH-1:0]  sum0;\n"
    if not func or anchor not in text:
        raise HwError("finn-rtllib/mvu/add_multi.sv changed (init_leaf_loads not found); "
                      "update hw/patches.py's Verilator fix for the installed FINN version")
    body = func.group(1)
    text = text.replace(body, "")
    moved = ("\t// qnnflow: moved out of the generate block genTree below: Verilator 5.48 rejects\n"
             "\t// constant functions declared under generate. Unchanged otherwise.\n"
             + "\n".join(line[1:] if line.startswith("\t") else line for line in body.splitlines()) + "\n\n")
    return text.replace(anchor, moved + anchor, 1)


@patch("fifo.sv")
def _patch_fifo(text: str) -> str:
    """Verilator 5.48 cannot evaluate INIT_ABITS(), a constant function returning a
    struct built with an assignment pattern ("Expecting expression to be constant").
    FINN's template avoids it with +define+FINN_SIMULATION, which swaps every FIFO for
    fifo_gauge, an unbounded always-ready queue: that hides back-pressure, so a
    cycle-accurate simulation would not see the real FIFO depths. We keep the real
    FIFO and compute the same decomposition with plain constant expressions."""
    m = re.search(r"\tfunction abits_t INIT_ABITS\(\);.*?endfunction : INIT_ABITS\n"
                  r"\tlocalparam abits_t\s+ABITS\s+= INIT_ABITS\(\);\n", text, re.S)
    if not m:
        raise HwError("finn-rtllib/fifo/hdl/fifo.sv changed (INIT_ABITS not found); "
                      "update hw/patches.py's Verilator fix for the installed FINN version")
    new = ("\t// qnnflow: INIT_ABITS() rewritten as constant expressions; Verilator 5.48 cannot\n"
           "\t// evaluate a constant function that returns a struct. Same lo/hi decomposition.\n"
           "\tlocalparam int unsigned  ABITS_LO0   = $clog2(DEPTH_REQ);\n"
           "\tlocalparam int unsigned  ABITS_HI0   = (ABITS_LO0 > MIN_ABITS)? $clog2(DEPTH_REQ - 2**(ABITS_LO0-1)) : 0;\n"
           "\tlocalparam bit           ABITS_SPLIT = (ABITS_LO0 > MIN_ABITS) && (ABITS_HI0 < ABITS_LO0 - 1);\n"
           "\tlocalparam abits_t       ABITS       = '{\n"
           "\t\tlo: ABITS_SPLIT? ABITS_LO0 - 1 : ABITS_LO0,\n"
           "\t\thi: ABITS_SPLIT? (ABITS_HI0 < 1? 1 : ABITS_HI0) : 0\n"
           "\t};\n")
    return text[:m.start()] + new + text[m.end():]


# ---------------------------------------------------------------------------------
# Simulation-speed recodings (Verilator only)

def _replace_once(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) != 1:
        raise HwError(f"finn-rtllib/{what} changed ({old.strip()[:60]!r} not found once); "
                      "update hw/patches.py's Verilator fix for the installed FINN version")
    return text.replace(old, new)


def _recode_define(text: str, anchor: str, what: str) -> str:
    return _replace_once(text, anchor, "\n" + fragment("recode_define.svh") + anchor.lstrip("\n"), what)


def _mvu_exact() -> str:
    """The exact dot product (mvu_exact.svh), else FINN's lane model recoded
    (mvu_lanes.svh), else (`else) FINN's own code, which follows the insertion point."""
    return fragment("mvu_exact.svh") + "`elsif QNNFLOW_SIM_RECODE\n" + fragment("mvu_lanes.svh") + "`else\n"


@patch("mvu.sv")
def _patch_mvu(text: str) -> str:
    """mvu.sv under Verilator: FINN's lane model recoded (mvu_lanes.svh; FINN's own code
    with QNNFLOW_FINN_RTL), or replaced by the exact dot product (mvu_exact.svh, unless
    QNNFLOW_FINN_DSP_LANES). Both drop the DSP start-up watchdog: with --no-timing its
    `#100ns` is ignored, so it never fires; it only cost time."""
    text = _replace_once(text, "\nmodule mvu #(", "\n" + fragment("mvu_exact_define.svh") + "module mvu #(", "mvu/mvu.sv")
    text = _recode_define(text, "\nmodule mvu #(", "mvu/mvu.sv")
    text = _replace_once(text, "\tif(1) begin : blkRecoveryWatch\n",
                         "`ifndef QNNFLOW_EXACT_MVU  // qnnflow: FINN's code only (see _patch_mvu)\n"
                         "`ifndef QNNFLOW_SIM_RECODE\n"
                         "\tif(1) begin : blkRecoveryWatch\n", "mvu/mvu.sv")
    text = _replace_once(text, "\tend : blkRecoveryWatch\n", "\tend : blkRecoveryWatch\n`endif\n`endif\n", "mvu/mvu.sv")
    text = _replace_once(text, "\t// Stages #1 - #3: DSP Lanes", _mvu_exact() + "\t// Stages #1 - #3: DSP Lanes",
                         "mvu/mvu.sv")
    return _replace_once(text, "\tend : genPipes\n", "\tend : genPipes\n`endif  // QNNFLOW_EXACT_MVU, QNNFLOW_SIM_RECODE\n",
                         "mvu/mvu.sv")


@patch("memstream_axi.sv")
def _patch_memstream_axi(text: str) -> str:
    """memstream_axi.sv: the stitcher ties every AXI-lite input to 0 (qnnflow_top), so
    axilite never starts an access and its IP side stays idle (ip_en = 0); under
    Verilator its idle outputs become constants. Its registers, clocked every cycle
    in each of the weight memories, were ~7% of the simulation."""
    m = re.search(r"\n(\taxilite #\(\n.*?\n\t\) cfg \(\n.*?\n\t\);\n)", text, re.S)
    if not m:
        raise HwError("finn-rtllib/memstream/hdl/memstream_axi.sv changed (axilite cfg not found); "
                      "update hw/patches.py's Verilator fix for the installed FINN version")
    tied = ("`ifdef QNNFLOW_SIM_RECODE\n"
            "\t// qnnflow: AXI-lite tied off by the stitcher (inputs 0): axilite's idle state\n"
            "\tassign\tconfig_ce = 0;\n\tassign\tconfig_we = 0;\n"
            "\tassign\tconfig_address = '0;\n\tassign\tconfig_d0 = '0;\n"
            "\tassign\tawready = 1;\n\tassign\twready = 1;\n\tassign\tbvalid = 0;\n\tassign\tbresp = '0;\n"
            "\tassign\tarready = 1;\n\tassign\trvalid = 0;\n\tassign\trresp = '0;\n\tassign\trdata = '0;\n"
            "`else\n" + m.group(1) + "`endif\n")
    text = text[:m.start(1)] + tied + text[m.end(1):]
    return _recode_define(text, "\nmodule memstream_axi #(", "memstream/hdl/memstream_axi.sv")


@patch("memstream.sv")
def _patch_memstream(text: str) -> str:
    """memstream.sv: the output queue OSrl, a shift register of FULL_CREDIT-1 words moved
    on every read (7 x 128 bits each cycle for tfc-w2a2's first layer), becomes a ring
    buffer under Verilator. OSrl[k] is the k-th newest word written, so is
    ORing[OWp-1-k]; OPtr counts the same words as before, ODat gets the same word."""
    what = "memstream/hdl/memstream.sv"
    text = _recode_define(text, "\nmodule memstream #(", what)
    text = _replace_once(text, "\t\tdata_t  OSrl[FULL_CREDIT-1];\n",
                         "`ifdef QNNFLOW_SIM_RECODE  // qnnflow: ring buffer, see hw/stitch.py\n"
                         "\t\tlocalparam int unsigned  RING = 2**$clog2(FULL_CREDIT-1);\n"
                         "\t\ttypedef logic [$clog2(RING)-1:0]  ring_t;  // indices wrap around\n"
                         "\t\tdata_t  ORing[RING];\n"
                         "\t\tring_t  OWp = 0;\n"
                         "`else\n"
                         "\t\tdata_t  OSrl[FULL_CREDIT-1];\n"
                         "`endif\n", what)
    text = _replace_once(text, "\t\t\tif(Rs3)  OSrl <= { Dat3, OSrl[0:FULL_CREDIT-3] };\n",
                         "`ifdef QNNFLOW_SIM_RECODE\n"
                         "\t\t\tif(Rs3) begin\n\t\t\t\tORing[OWp] <= Dat3;\n\t\t\t\tOWp <= OWp + 1;\n\t\t\tend\n"
                         "`else\n"
                         "\t\t\tif(Rs3)  OSrl <= { Dat3, OSrl[0:FULL_CREDIT-3] };\n"
                         "`endif\n", what)
    return _replace_once(text, "\t\t\t\tODat <= OSrl[OPtr];\n",
                         "`ifdef QNNFLOW_SIM_RECODE\n"
                         "\t\t\t\tODat <= ORing[ring_t'(OWp - 1 - OPtr[$clog2(RING)-1:0])];\n"
                         "`else\n"
                         "\t\t\t\tODat <= OSrl[OPtr];\n"
                         "`endif\n", what)


@patch("fifo.sv")
def _patch_fifo_srl(text: str) -> str:
    """fifo.sv, "shift" style (DEPTH <= 33, e.g. every FIFO that FIFO sizing first
    makes 32 deep): the whole FIFO, occupancy counters included, recoded under
    Verilator as one clocked block (fifo_srl.svh), ~3x cheaper to simulate. The
    module-level occupancy monitor is left to the other styles there."""
    what = "fifo/hdl/fifo.sv"
    text = _recode_define(text, "\nmodule fifo #(", what)
    m = re.search(r"\n(\tuwire  cnt_push = irdy && ivld;\n.*?\tassign\tmaxcount = MaxCount;\n)", text, re.S)
    if not m:
        raise HwError("finn-rtllib/fifo/hdl/fifo.sv changed (occupancy monitor not found); "
                      "update hw/patches.py's Verilator fix for the installed FINN version")
    text = (text[:m.start(1)]
            + "`ifdef QNNFLOW_SIM_RECODE\n\tif(RAM_STYLE_EFF != \"shift\") begin : genCount  // shift: in genSRL\n`endif\n"
            + m.group(1)
            + "`ifdef QNNFLOW_SIM_RECODE\n\tend : genCount\n`endif\n" + text[m.end(1):])
    head = "\t\tlocalparam int unsigned  DEPTH_IMPL = DEPTH > 4? DEPTH-1 : 4;  // output register B provides one slot\n"
    text = _replace_once(text, "\t\"shift\": begin : genSRL\n" + head,
                         "\t\"shift\": begin : genSRL\n" + head + fragment("fifo_srl.svh"), what)
    return _replace_once(text, "\tend : genSRL\n", "`endif  // QNNFLOW_SIM_RECODE\n\tend : genSRL\n", what)


@patch("thresholding.sv")
def _patch_thresholding(text: str) -> str:
    """thresholding.sv: the threshold pipeline as a direct binary search plus a delay line
    under Verilator (thresholding_search.svh), where no AXI-lite configuration can change
    the thresholds."""
    what = "thresholding/hdl/thresholding.sv"
    text = _recode_define(text, "\nmodule thresholding #(", what)
    text = _replace_once(text, "\t// Free-Running Thresholding Pipeline\n",
                         "\t// Free-Running Thresholding Pipeline\n" + fragment("thresholding_search.svh"), what)
    return _replace_once(text, "\tend : genStages\n",
                         "\tend : genStages\n`ifdef QNNFLOW_SIM_RECODE\n\tend : genFinn\n`endif\n", what)


@patch("vpc.sv")
def _patch_vpc(text: str) -> str:
    """vpc.sv (dwc_axi's core): the generic width conversion as a plain element queue
    under Verilator, in the case dwc_axi instantiates (vpc_stream.svh)."""
    what = "dwc/hdl/vpc.sv"
    text = _recode_define(text, "\nmodule vpc #(", what)
    text = _replace_once(text, "\telse begin : genGeneric\n", "\telse begin : genGeneric\n" + fragment("vpc_stream.svh"), what)
    return _replace_once(text, "\tend : genGeneric\n",
                         "`ifdef QNNFLOW_SIM_RECODE\n\t\tend : genFinn\n`endif\n\tend : genGeneric\n", what)
