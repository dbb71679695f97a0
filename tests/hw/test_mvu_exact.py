"""hw/stitch.py replaces, under Verilator, FINN's behavioural model of packed DSP lanes in
mvu.sv by exact dot products with the same timing (faster to simulate). Both models of
the same mvu instances, fed the same random stimuli, must give the same vld cycles and
the same p at each of them, over a spread of shapes: PE not filling the lanes, SIMD 1
and not a power of two, signed activations, wide and non-narrow weights, DSP48E1/E2/58,
rows of one beat, and bubbles (zero). The clock enable is tied to 1, as mvu_vvu_axi does
(with gaps in it, FINN's lanes themselves go out of step: a zero during a gap clears B1
but not the canaries)."""
from __future__ import annotations

import os
import subprocess

import pytest

from hw.rtlsim import verilator_root
from hw.stitch import PATCHES, finn_rtllib

# VERSION, PE, SIMD, WEIGHT_WIDTH, ACTIVATION_WIDTH, NARROW_WEIGHTS, SIGNED_ACTIVATIONS, row beats
CONFIGS = [
    (1, 4, 16, 2, 8, 1, 0, 49),   # tfc-w2a2's first layer
    (1, 3, 6, 4, 4, 0, 1, 5),
    (1, 5, 3, 8, 8, 1, 1, 7),
    (1, 1, 1, 2, 2, 0, 0, 1),
    (2, 2, 12, 3, 7, 1, 0, 4),
    (2, 6, 7, 5, 3, 0, 1, 1),
    (1, 7, 5, 9, 8, 1, 0, 3),     # tfc-po2's 9-bit weights
    (3, 4, 9, 4, 4, 1, 1, 2),
    (3, 16, 4, 8, 8, 1, 1, 3),
]
CYCLES = 3000

CELL = """
module probe #(
	parameter int  G = 0,
	parameter int unsigned  VERSION = 1, PE = 1, SIMD = 1, WW = 2, AW = 2,
	parameter bit  NARROW = 0, SIGNED_A = 0,
	parameter int unsigned  ROW = 1
)(input logic  clk, input logic  rst, input int unsigned  cyc);
	localparam int unsigned  ACCU = WW + AW + $clog2(SIMD*ROW) + 1;
	localparam int unsigned  RW = PE*SIMD*WW + SIMD*AW + 8;
	localparam int unsigned  NR = (RW + 63) / 64;

	// xorshift64 generators: the stimuli depend on the cycle only, not on scheduling
	logic [63:0]  R[NR];
	always_ff @(posedge clk) begin
		for(int unsigned  j = 0; j < NR; j++) begin
			automatic logic [63:0]  x = R[j];
			x ^= x << 13;  x ^= x >> 7;  x ^= x << 17;
			R[j] <= rst? 64'h9E3779B97F4A7C15 * (64*G + j + 1) : x;
		end
	end
	logic [64*NR-1:0]  rnd;
	always_comb  for(int unsigned  j = 0; j < NR; j++)  rnd[64*j +: 64] = R[j];

	logic [PE-1:0][SIMD-1:0][WW-1:0]  w;
	logic [SIMD-1:0][AW-1:0]  a;
	always_comb begin
		w = rnd[0 +: PE*SIMD*WW];
		if(NARROW) begin  // no -2**(WW-1)
			for(int unsigned  i = 0; i < PE; i++)
				for(int unsigned  s = 0; s < SIMD; s++)
					if(w[i][s] == {1'b1, {(WW-1){1'b0}}})  w[i][s] = 0;
		end
		a = rnd[PE*SIMD*WW +: SIMD*AW];
	end
	uwire  zero = rnd[RW-8 +: 3] == 0;
	uwire  en = 1;
	int unsigned  Beat = 0;
	always_ff @(posedge clk) begin
		if(rst)  Beat <= 0;
		else if(en && !zero)  Beat <= (Beat == ROW-1)? 0 : Beat + 1;
	end
	uwire  last = !zero && (Beat == ROW-1);

	uwire  vld;
	uwire [PE-1:0][ACCU-1:0]  p;
	mvu #(
		.VERSION(VERSION), .PE(PE), .SIMD(SIMD), .WEIGHT_WIDTH(WW), .ACTIVATION_WIDTH(AW),
		.ACCU_WIDTH(ACCU), .SIGNED_ACTIVATIONS(SIGNED_A), .NARROW_WEIGHTS(NARROW)
	) dut (
		.clk, .rst, .en, .last, .zero, .w, .a, .vld, .p
	);
	always_ff @(posedge clk)  if(!rst && vld)  $display("%0d %0d %h", G, cyc, p);
endmodule

module tb(input logic  clk, input logic  rst);
	int unsigned  Cyc = 0;
	always_ff @(posedge clk)  Cyc <= Cyc + 1;
{cells}
endmodule
"""

MAIN = """
#include <cstdlib>
#include <memory>
#include "Vtb.h"
#include "verilated.h"
int main(int argc, char** argv) {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vtb>(ctx.get(), "top");
    const int cycles = std::atoi(argv[1]);
    top->rst = 1;
    for (int i = 0; i < cycles; ++i) {
        if (i == 8) top->rst = 0;
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }
    top->final();
    return 0;
}
"""


def _build(tmp_path, name: str, lanes: bool):
    src = tmp_path / "src"
    if not src.is_dir():
        src.mkdir()
        for f in ("mvu_pkg.sv", "add_multi.sv", "mvu.sv"):
            text = (finn_rtllib() / "mvu" / f).read_text()
            (src / f).write_text(PATCHES[f](text) if f in PATCHES else text)
        cells = "\n".join(f"\tprobe #({g}, {', '.join(str(v) for v in c)}) c{g} (clk, rst, Cyc);"
                          for g, c in enumerate(CONFIGS))
        (src / "tb.sv").write_text(CELL.replace("{cells}", cells))
        (src / "main.cpp").write_text(MAIN)
    root = verilator_root()
    cmd = [str(root / "bin" / "verilator"), "--cc", "--exe", "--build", "--top-module", "tb",
           "-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-timing", "--x-assign", "fast", "--x-initial", "unique",
           "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include", "-j", "2", "--Mdir", str(tmp_path / name), "-o", "sim",
           *(["-DQNNFLOW_FINN_DSP_LANES"] if lanes else []),
           "mvu_pkg.sv", "add_multi.sv", "mvu.sv", "tb.sv", "main.cpp"]
    r = subprocess.run(cmd, cwd=src, env=dict(os.environ, VERILATOR_ROOT=str(root)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp_path / name / "sim"


def test_exact_products_match_finn_dsp_lanes(tmp_path):
    runs = {}
    for name, lanes in (("exact", False), ("lanes", True)):
        sim = _build(tmp_path, name, lanes)
        r = subprocess.run([str(sim), str(CYCLES)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        # "instance cycle p" lines; instances print in scheduling order within a cycle
        runs[name] = sorted(r.stdout.splitlines(), key=lambda ln: tuple(int(v) for v in ln.split()[:2]))
    exact, lanes = runs["exact"], runs["lanes"]
    for g in range(len(CONFIGS)):  # every instance finished many rows
        assert sum(ln.startswith(f"{g} ") for ln in lanes) > 50, CONFIGS[g]
    diff = next((i for i, (x, y) in enumerate(zip(exact, lanes)) if x != y), None)
    assert diff is None and len(exact) == len(lanes), \
        f"first difference: exact {exact[diff] if diff is not None else len(exact)!r} vs lanes " \
        f"{lanes[diff] if diff is not None else len(lanes)!r}"
