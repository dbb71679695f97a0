"""The shell's TLAST counter (hw/rtl/qnn_axis_tlast.v), simulated with Verilator: with random
valid/ready on both sides, TLAST comes exactly on the last beat of every `count` beats, for
several counts in a row (as the driver writes one per batch), and the data passes unchanged."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from hw.rtlsim import verilator_root
from hw.shell import TLAST_SOURCE

TB = r"""
module tb;
	logic clk = 0, rst_n = 0;
	logic [31:0] count;
	logic [15:0] sd = 0, md;
	logic sv = 0, sr, mv, mr = 0, ml;
	qnn_axis_tlast #(.WIDTH(16)) dut (
		.ap_clk(clk), .ap_rst_n(rst_n), .count(count),
		.s_axis_tdata(sd), .s_axis_tvalid(sv), .s_axis_tready(sr),
		.m_axis_tdata(md), .m_axis_tvalid(mv), .m_axis_tready(mr), .m_axis_tlast(ml));
	always #5 clk = ~clk;
	initial begin  repeat(4) @(posedge clk);  rst_n <= 1;  end

	int unsigned  counts[5] = '{3, 1, 7, 0, 16};  // 0 counts as 1
	int unsigned  c = 0, p = 0, b = 0, errors = 0, beats = 0, packets = 0;
	assign count = counts[c];
	always @(posedge clk) if(rst_n) begin
		automatic int unsigned  n = counts[c] == 0? 1 : counts[c];
		if(sv && sr) begin  // a beat is taken on this edge (these are the values before it)
			if(!mv || md != sd) begin  errors++;  $display("beat %0d: data %0d (valid %0d)", beats, md, mv);  end
			if(ml != (b == n-1)) begin  errors++;  $display("beat %0d of %0d: tlast %0d", b, n, ml);  end
			beats++;  sd <= sd + 1;
			if(++b == n) begin
				b = 0;  packets++;
				if(++p == 3) begin  // three packets per count, then the next count
					p = 0;
					if(++c == 5) begin
						$display("RESULT errors=%0d beats=%0d packets=%0d", errors, beats, packets);
						$finish;
					end
				end
			end
		end
		sv <= $urandom_range(0, 2) != 0;  // random valid and ready on both sides
		mr <= $urandom_range(0, 1);
	end
endmodule
"""


def test_tlast_after_count_beats(tmp_path):
    if shutil.which("make") is None or shutil.which("g++") is None:
        pytest.skip("make and g++ are needed to build a Verilator simulation")
    root = verilator_root()
    (tmp_path / "tb.sv").write_text(TB)
    cmd = [str(root / "bin" / "verilator"), "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "--top-module", "tb",
           "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include", "-CFLAGS", "-std=gnu++20 -fcoroutines", "--Mdir", str(tmp_path / "obj"),
           str(TLAST_SOURCE), str(tmp_path / "tb.sv")]
    env = dict(os.environ, VERILATOR_ROOT=str(root))
    subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    out = subprocess.run([str(tmp_path / "obj" / "Vtb")], capture_output=True, text=True, timeout=60).stdout
    line = [x for x in out.splitlines() if x.startswith("RESULT")]
    assert line == ["RESULT errors=0 beats=84 packets=15"], out[-2000:]
