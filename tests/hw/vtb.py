"""Small Verilator testbenches for the module-level RTL tests (tests/hw/test_mvu_exact.py,
tests/hw/test_recode.py): a top module `tb(clk, rst)` clocked by MAIN, built with the
simulation flags of hw/rtlsim.py that matter to behaviour (--x-assign fast,
--x-initial unique, no timing)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hw.rtlsim import verilator_root

# argv[1]: cycles; reset for the first 8, and with argv[2] = 1 again for 3 cycles mid-way
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
    const bool again = argc > 2 && std::atoi(argv[2]) != 0;
    top->rst = 1;
    for (int i = 0; i < cycles; ++i) {
        if (i == 8) top->rst = 0;
        if (again && i == cycles / 2) top->rst = 1;
        if (again && i == cycles / 2 + 3) top->rst = 0;
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
        ctx->timeInc(1);  // $time counts cycles
    }
    top->final();
    return 0;
}
"""


def tb_top(cells: list[str]) -> str:
    """Module tb: a cycle counter Cyc and the given instance lines."""
    return ("module tb(input logic  clk, input logic  rst);\n\tint unsigned  Cyc = 0;\n"
            "\talways_ff @(posedge clk)  Cyc <= Cyc + 1;\n" + "\n".join(cells) + "\nendmodule\n")


def finn_copy(src: Path, rel: str) -> str:
    """Copy finn-rtllib/<rel> into src as hw/stitch.py does (hw/patches.py applied); the file name."""
    from hw.patches import patched
    from hw.verilog import finn_rtllib

    name = Path(rel).name
    text = (finn_rtllib() / rel).read_text()
    new = patched(name, text)
    (src / name).write_text(text if new is None else new)
    return name


def build_tb(src: Path, sources: list[str], mdir: Path, defines: list[str] = (), asserts: bool = False) -> Path:
    """Compile src/<sources> (top module tb) with MAIN into mdir; the simulator's path."""
    (src / "main.cpp").write_text(MAIN)
    root = verilator_root()
    cmd = [str(root / "bin" / "verilator"), "--cc", "--exe", "--build", "--top-module", "tb",
           "-Wno-fatal", "-Wno-lint", "-Wno-style", "--no-timing", "--x-assign", "fast", "--x-initial", "unique",
           *(["--assert"] if asserts else []), "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include", "-j", "2",
           "--Mdir", str(mdir), "-o", "sim", *(f"-D{d}" for d in defines), *sources, "main.cpp"]
    r = subprocess.run(cmd, cwd=src, env=dict(os.environ, VERILATOR_ROOT=str(root)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return mdir / "sim"


def run_tb(sim: Path, cycles: int, *args: str, cwd: Path | None = None, check: bool = True) -> str:
    """Run a testbench; its stdout and stderr."""
    r = subprocess.run([str(sim), str(cycles), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    return r.stdout + r.stderr


def by_instance_and_cycle(out: str) -> list[str]:
    """Lines "instance cycle ..." sorted (instances print in scheduling order within a cycle)."""
    return sorted(out.splitlines(), key=lambda ln: tuple(int(v) for v in ln.split()[:2]))


# An mvu.sv instance `probe` (tests/hw/test_mvu_exact.py, tests/hw/test_recode.py): random
# weights and activations from the cycle count (half of the cycles extreme weights, all
# -2**(WW-1)+1 or all 2**(WW-1)-1; with VIOLATE some -2**(WW-1), else none under
# NARROW), bubbles (zero), rows of ROW beats, with GAPS a clock enable with gaps; prints
# "instance cycle p" at every vld.
MVU_PROBE = """
module probe #(
	parameter int  G = 0,
	parameter int unsigned  VERSION = 1, PE = 1, SIMD = 1, WW = 2, AW = 2,
	parameter bit  NARROW = 0, SIGNED_A = 0,
	parameter int unsigned  ROW = 1, parameter bit  VIOLATE = 0, parameter bit  GAPS = 0
)(input logic  clk, input logic  rst, input int unsigned  cyc);
	localparam int unsigned  ACCU = WW + AW + $clog2(SIMD*ROW) + 1;
	localparam int unsigned  RW = PE*SIMD*WW + SIMD*AW + 16;
	localparam int unsigned  NR = (RW + 63) / 64;
	logic [63:0]  R[NR];  // xorshift64 generators: stimuli depend on the cycle only
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
		// half of the cycles extreme weights: all -2**(WW-1)+1 or all 2**(WW-1)-1
		if(rnd[RW-9]) for(int unsigned  i = 0; i < PE; i++) for(int unsigned  s = 0; s < SIMD; s++)
			w[i][s] = rnd[RW-10]? {1'b1, {(WW-2){1'b0}}, 1'b1} : {1'b0, {(WW-1){1'b1}}};
		if(VIOLATE && rnd[RW-11]) for(int unsigned  i = 0; i < PE; i++) for(int unsigned  s = 0; s < SIMD; s++)
			if(rnd[(i*SIMD+s) % (RW-16)])  w[i][s] = {1'b1, {(WW-1){1'b0}}};
		if(NARROW && !VIOLATE) begin
			for(int unsigned  i = 0; i < PE; i++)
				for(int unsigned  s = 0; s < SIMD; s++)
					if(w[i][s] == {1'b1, {(WW-1){1'b0}}})  w[i][s] = 0;
		end
		a = rnd[PE*SIMD*WW +: SIMD*AW];
		if(rnd[RW-12])  a = '1;
	end
	uwire  zero = rnd[RW-8 +: 3] == 0;
	uwire  en = !GAPS || rnd[RW-13 +: 2] != 0;
	int unsigned  Beat = 0;
	always_ff @(posedge clk) begin
		if(rst)  Beat <= 0;
		else if(en && !zero)  Beat <= (Beat == ROW-1)? 0 : Beat + 1;
	end
	uwire  vld;
	uwire [PE-1:0][ACCU-1:0]  p;
	mvu #(
		.VERSION(VERSION), .PE(PE), .SIMD(SIMD), .WEIGHT_WIDTH(WW), .ACTIVATION_WIDTH(AW),
		.ACCU_WIDTH(ACCU), .SIGNED_ACTIVATIONS(SIGNED_A), .NARROW_WEIGHTS(NARROW)
	) dut (
		.clk, .rst, .en, .last(!zero && Beat == ROW-1), .zero, .w, .a, .vld, .p
	);
	always_ff @(posedge clk)  if(!rst && vld)  $display("%0d %0d %h", G, cyc, p);
endmodule
"""
