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
    """Copy finn-rtllib/<rel> into src as hw/stitch.py does (its PATCHES applied); the file name."""
    from hw.stitch import PATCHES, finn_rtllib

    name = Path(rel).name
    text = (finn_rtllib() / rel).read_text()
    (src / name).write_text(PATCHES[name](text) if name in PATCHES else text)
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
