"""hw/patches.py recodes some of FINN's RTL under Verilator for simulation speed
(QNNFLOW_SIM_RECODE; FINN's code stays under `else, selected by -DQNNFLOW_FINN_RTL).
Each recoding must be cycle-identical at the module's ports. Here each recoded module
runs side by side with FINN's, over a spread of parameters, fed the same random
valid/ready patterns and data (with a second reset mid-way): the same handshakes on
every cycle, the same data wherever valid, the same occupancy counts (fifo.sv).
tests/hw/test_rtlsim.py compares the whole stitched accelerator (outputs, cycles,
FIFO occupancy) with and without the recodings."""
from __future__ import annotations

import re

from vtb import MVU_PROBE, build_tb, by_instance_and_cycle, finn_copy, run_tb, tb_top

# DEPTH, DATA_WIDTH, RAM_STYLE, P(ivld) and P(ordy) in 1/8
FIFOS = [
    (2, 8, "auto", 6, 3), (2, 128, "auto", 3, 6), (3, 16, "auto", 5, 5), (4, 4, "auto", 7, 2),
    (5, 16, "auto", 4, 4), (6, 1, "auto", 7, 5), (9, 33, "auto", 6, 4), (17, 70, "auto", 5, 4),
    (30, 8, "auto", 6, 5), (32, 12, "auto", 7, 6), (33, 8, "auto", 5, 6),
    (40, 16, "auto", 6, 5), (20, 8, "distributed", 6, 5), (150, 8, "block", 7, 6),
]
CYCLES = 4000

# random valid/ready (P(ivld) = PV/8, P(ordy) = PR/8) and data R, from the cycle only;
# phases of long runs fill the module up and drain it
STIMULI = """\
	logic [63:0]  R;  // xorshift64
	always_ff @(posedge clk) begin
		automatic logic [63:0]  x = R;
		x ^= x << 13;  x ^= x >> 7;  x ^= x << 17;
		R <= rst? 64'h9E3779B97F4A7C15 * (G + 1) : x;
	end
	uwire [1:0]  phase = cyc[9:8];
	uwire  ivld = phase == 1? 1 : phase == 2? 0 : R[2:0] < PV;
	uwire  ordy = phase == 1? R[3] && R[4] : phase == 2? 1 : R[7:5] < PR;
"""

# the handshakes on every cycle and the data where valid, after the instance and the cycle
DISPLAY = """\
	always_ff @(posedge clk)
		$display("%0d %0d %b%b %h", G, cyc, irdy, ovld, ovld? odat : '0);
endmodule
"""

TB = """
module probe #(parameter int G = 0, parameter int unsigned  DEPTH = 2, W = 8,
              parameter  STYLE = "auto", parameter int unsigned  PV = 4, PR = 4)
             (input logic  clk, input logic  rst, input int unsigned  cyc);
{stimuli}	logic [W-1:0]  Dat = 0;
	uwire  irdy, ovld;
	uwire [W-1:0]  odat;
	uwire [$clog2(DEPTH+1):0]  count, maxcount;
	always_ff @(posedge clk)  if(ivld && irdy)  Dat <= Dat + W'(R[63:40]);
	fifo #(.DEPTH(DEPTH), .DATA_WIDTH(W), .RAM_STYLE(STYLE)) dut (
		.clk, .rst, .idat(Dat), .ivld, .irdy, .odat, .ovld, .ordy, .count, .maxcount
	);
	always_ff @(posedge clk)
		$display("%0d %0d %b%b %0d %0d %h", G, cyc, irdy, ovld, count, maxcount, ovld? odat : W'(0));
endmodule
"""

def _recoded_and_finn(tmp_path, src, sources: list[str]) -> tuple[list[str], list[str]]:
    """Both builds of the testbench in src, run: their output lines by instance and cycle."""
    runs = []
    for name, defines in (("recoded", []), ("finn", ["QNNFLOW_FINN_RTL"])):
        sim = build_tb(src, sources, tmp_path / name, defines, asserts=True)
        runs.append(by_instance_and_cycle(run_tb(sim, CYCLES, "1", cwd=src)))  # "1": a reset mid-way
    assert len(runs[0]) == len(runs[1])
    return runs[0], runs[1]


def _assert_same(recoded: list[str], finn: list[str], columns: str) -> None:
    diff = next((i for i, (x, y) in enumerate(zip(recoded, finn)) if x != y), None)
    assert diff is None, f"first difference ({columns}): recoded {recoded[diff]!r} vs FINN {finn[diff]!r}"


def test_fifo_recoding_cycle_identical(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    assert "QNNFLOW_SIM_RECODE" in (src / finn_copy(src, "fifo/hdl/fifo.sv")).read_text()
    cells = [f'\tprobe #({g}, {d}, {w}, "{s}", {pv}, {pr}) c{g} (clk, rst, Cyc);'
             for g, (d, w, s, pv, pr) in enumerate(FIFOS)]
    (src / "tb.sv").write_text(TB.replace("{stimuli}", STIMULI) + tb_top(cells))
    recoded, finn = _recoded_and_finn(tmp_path, src, ["fifo.sv", "tb.sv"])
    assert len(finn) == len(FIFOS) * CYCLES
    for g, (depth, *_rest) in enumerate(FIFOS):  # every FIFO filled up and moved data
        mine = [ln.split() for ln in finn if ln.startswith(f"{g} ")]
        assert max(int(f[3]) for f in mine) >= depth, FIFOS[g]
        assert sum(f[2][1] == "1" for f in mine) > 20, FIFOS[g]
    _assert_same(recoded, finn, "instance cycle rdy/vld count maxcount odat")


# thresholding.sv: K, N, C, PE, SIGNED, BIAS, DEEP_PIPELINE, P(ivld), P(ordy) in 1/8
THRESHOLDINGS = [
    (14, 3, 64, 1, 1, 0, 1, 6, 5),   # tfc-w2a2's first layer
    (6, 3, 64, 1, 1, 0, 0, 7, 3),
    (8, 1, 4, 2, 0, 0, 1, 5, 6),
    (9, 7, 12, 3, 1, -4, 0, 6, 4),
    (5, 15, 6, 2, 0, 2, 1, 7, 7),
    (7, 5, 3, 1, 1, -2, 1, 6, 5),    # N not 2**M-1: scope reduction
    (12, 12, 10, 5, 1, 0, 0, 5, 4),
    (4, 2, 1, 1, 0, 0, 1, 6, 6),     # one channel
]

TH_TB = """
module probe #(parameter int G = 0, parameter int unsigned  K = 8, N = 3, C = 4, PE = 1,
               parameter bit  SIGNED = 1, parameter int  BIAS = 0, parameter bit  DEEP = 0,
               parameter int unsigned  PV = 4, PR = 4, parameter  PATH = "")
             (input logic  clk, input logic  rst, input int unsigned  cyc);
	localparam int unsigned  O_BITS = BIAS >= 0? $clog2(N+BIAS+1) : 1+$clog2(-BIAS >= N+BIAS+1? -BIAS : N+BIAS+1);
{stimuli}	logic [PE-1:0][K-1:0]  idat;
	always_comb  for(int unsigned  pe = 0; pe < PE; pe++)  idat[pe] = K'(R[63:32] >> (3*pe)) ^ K'(R[31:8] >> pe);
	uwire  irdy, ovld;
	uwire [PE-1:0][O_BITS-1:0]  odat;
	thresholding #(.K(K), .N(N), .C(C), .PE(PE), .SIGNED(SIGNED), .BIAS(BIAS),
	               .THRESHOLDS_PATH(PATH), .USE_CONFIG(0), .DEEP_PIPELINE(DEEP)) dut (
		.clk, .rst, .cfg_en(1'b0), .cfg_we(1'b0), .cfg_a('0), .cfg_d('0), .cfg_rack(), .cfg_q(),
		.irdy, .ivld, .iset('0), .idat, .ordy, .ovld, .odat
	);
{display}"""


def test_thresholding_recoding_cycle_identical(tmp_path):
    import numpy as np

    src = tmp_path / "src"
    src.mkdir()
    finn_copy(src, "thresholding/hdl/thresholding.sv")
    rng = np.random.default_rng(7)
    cells = []
    for g, (k, n, c, pe, signed, bias, deep, pv, pr) in enumerate(THRESHOLDINGS):
        m = n.bit_length()  # $clog2(N+1)
        for p in range(pe):
            # per channel: N thresholds, mostly sorted (some channels not), in FINN's
            # stage layout: stage s holds the 2**s thresholds its binary search can pick
            for s in range(m):
                rows = []
                for ch in range(c // pe):
                    lo, hi = (-(1 << (k - 1)), 1 << (k - 1)) if signed else (0, 1 << k)
                    t = np.sort(rng.integers(lo, hi, size=2 ** m - 1))
                    if ch % 3 == 2:
                        rng.shuffle(t)
                    idx = [(2 * j + 1) * 2 ** (m - 1 - s) - 1 for j in range(2 ** s)]
                    rows += [int(t[i]) & ((1 << k) - 1) for i in idx]
                (src / f"t{g}_threshs_{p}_{s}.dat").write_text("".join(f"{v:x}\n" for v in rows))
        cells.append(f'\tprobe #({g}, {k}, {n}, {c}, {pe}, {signed}, {bias}, {deep}, {pv}, {pr}, "t{g}_") '
                     f'c{g} (clk, rst, Cyc);')
    (src / "tb.sv").write_text(TH_TB.replace("{stimuli}", STIMULI).replace("{display}", DISPLAY) + tb_top(cells))
    recoded, finn = _recoded_and_finn(tmp_path, src, ["thresholding.sv", "tb.sv"])
    assert len(finn) == len(THRESHOLDINGS) * CYCLES
    for g, cfg in enumerate(THRESHOLDINGS):  # outputs flowed, back-pressure was hit, results vary
        mine = [ln.split() for ln in finn if ln.startswith(f"{g} ")]
        assert sum(f[2][1] == "1" for f in mine) > 200, cfg
        assert sum(f[2][0] == "0" for f in mine) > 20, cfg
        assert len({f[3] for f in mine if f[2][1] == "1"}) >= 2, cfg
    _assert_same(recoded, finn, "instance cycle rdy/vld odat")


# dwc_axi.sv (vpc.sv): IBITS, OBITS, P(ivld), P(ordy) in 1/8
DWCS = [
    (68, 17, 7, 6), (2, 16, 7, 5), (16, 2, 4, 7), (24, 16, 6, 5), (12, 20, 6, 6), (17, 5, 3, 7),
    (5, 17, 7, 3), (128, 72, 5, 6), (72, 128, 7, 5), (8, 1, 2, 7), (1, 8, 7, 2), (30, 30, 5, 5),
]

DWC_TB = """
module probe #(parameter int G = 0, parameter int unsigned  IBITS = 8, OBITS = 8, PV = 4, PR = 4)
             (input logic  clk, input logic  rst, input int unsigned  cyc);
	localparam int unsigned  AI = (IBITS+7)/8 * 8, AO = (OBITS+7)/8 * 8;
{stimuli}	logic [AI-1:0]  idat;
	always_comb  for(int unsigned  i = 0; i < AI; i += 32)  idat[i +: 32] = R[63:32] ^ (R[31:0] * (i + 1));
	uwire  irdy, ovld;
	uwire [AO-1:0]  odat;
	dwc_axi #(.IBITS(IBITS), .OBITS(OBITS)) dut (
		.ap_clk(clk), .ap_rst_n(!rst), .s_axis_tready(irdy), .s_axis_tvalid(ivld), .s_axis_tdata(idat),
		.m_axis_tready(ordy), .m_axis_tvalid(ovld), .m_axis_tdata(odat)
	);
{display}"""


def test_width_converter_recoding_cycle_identical(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = [finn_copy(src, "dwc/hdl/dwc_axi.sv"), finn_copy(src, "dwc/hdl/vpc.sv")]
    assert "QNNFLOW_SIM_RECODE" in (src / "vpc.sv").read_text()
    cells = [f"\tprobe #({g}, {i}, {o}, {pv}, {pr}) c{g} (clk, rst, Cyc);" for g, (i, o, pv, pr) in enumerate(DWCS)]
    (src / "tb.sv").write_text(DWC_TB.replace("{stimuli}", STIMULI).replace("{display}", DISPLAY) + tb_top(cells))
    recoded, finn = _recoded_and_finn(tmp_path, src, [*files, "tb.sv"])
    assert len(finn) == len(DWCS) * CYCLES
    for g, cfg in enumerate(DWCS):  # data flowed, both ends waited
        mine = [ln.split() for ln in finn if ln.startswith(f"{g} ")]
        assert sum(f[2][1] == "1" for f in mine) > 200, cfg
        assert sum(f[2][0] == "0" for f in mine) > 20, cfg
    _assert_same(recoded, finn, "instance cycle rdy/vld odat")


# mvu.sv, FINN's DSP lane model: VERSION, PE, SIMD, WEIGHT_WIDTH, ACTIVATION_WIDTH,
# NARROW_WEIGHTS, SIGNED_ACTIVATIONS, beats per row, VIOLATE (weights of -2**(WW-1)
# under NARROW_WEIGHTS), GAPS (a clock enable with gaps; mvu_vvu_axi ties it to 1)
MVUS = [
    (1, 4, 16, 2, 8, 1, 0, 49, 0, 0),   # tfc-w2a2's first layer: 3 lanes, 2 pipes
    (1, 1, 8, 2, 2, 1, 0, 8, 0, 0),     # its hidden layers: 8 lanes, one of them used
    (1, 1, 1, 2, 2, 1, 0, 3, 0, 0),     # SIMD 1: add_multi's delay stage without enable
    (1, 3, 6, 4, 4, 0, 1, 5, 0, 0),
    (1, 5, 3, 8, 8, 1, 1, 7, 0, 0),
    (1, 1, 1, 2, 2, 0, 0, 1, 0, 0),
    (2, 2, 12, 3, 7, 1, 0, 4, 0, 0),
    (2, 6, 7, 5, 3, 0, 1, 1, 0, 0),
    (1, 7, 5, 9, 8, 1, 0, 3, 0, 0),     # 9-bit weights (tfc-po2)
    (3, 4, 9, 4, 4, 1, 1, 2, 0, 0),
    (3, 16, 4, 8, 8, 1, 1, 3, 0, 0),
    (1, 9, 13, 2, 2, 1, 0, 6, 0, 0),
    (1, 4, 16, 2, 8, 1, 0, 5, 1, 0),
    (2, 3, 6, 4, 4, 1, 0, 3, 1, 0),
    (3, 4, 9, 4, 4, 1, 1, 3, 1, 0),
    (1, 7, 5, 9, 8, 1, 0, 3, 1, 0),     # odd width: FINN's narrow check never fires
    (2, 1, 1, 3, 2, 1, 0, 3, 1, 0),
    (1, 8, 32, 2, 2, 1, 0, 4, 1, 0),
    (1, 4, 16, 2, 8, 1, 0, 5, 1, 1),
    (1, 3, 6, 4, 4, 0, 1, 5, 0, 1),     # cross-lane overflows of -2: node-by-node trees
    (1, 1, 1, 2, 2, 0, 0, 2, 0, 1),
    (2, 9, 13, 2, 2, 1, 0, 6, 1, 1),
    (2, 12, 32, 2, 2, 1, 1, 4, 0, 1),   # two pipes of 8 lanes, SIMD 32
    (1, 24, 2, 2, 3, 1, 0, 2, 0, 1),
    (3, 8, 17, 4, 3, 1, 1, 1, 1, 1),
]


_WARNING = re.compile(r"^\[(\d+)\] %Warning: .*?top\.tb\.c(\d+)\.dut\..*?genPipes\[(\d+)\]\.genSIMD\[(\d+)\]"
                      r".*: Weight of (\w+) violates NARROW_WEIGHTS commitment\.$")


def _results_and_warnings(out: str) -> tuple[list[str], list[tuple[str, ...]]]:
    results, warnings = [], []
    for ln in out.splitlines():
        m = _WARNING.match(ln)
        if m:  # (time, instance, pipe, SIMD element, weight): the recoding's %m differs
            warnings.append(m.groups())
        else:
            assert re.fullmatch(r"\d+ \d+ [0-9a-f]+", ln), ln
            results.append(ln)
    return by_instance_and_cycle("\n".join(results)), sorted(warnings)


def test_lane_model_recoding_cycle_identical(tmp_path):
    """FINN's DSP lane model (the verification default) recoded: the same vld cycles and
    the same p at each of them as FINN's code, over lane counts 1-8, one to eight
    pipes, SIMD 1 to 32, DSP48E1/E2/58, signed activations, wide and non-narrow weights, a
    reset mid-way; NARROW_WEIGHTS violations give the same wrong products and the same
    warnings (FINN's check never fires for odd weight widths: the recoding keeps that);
    gaps in the clock enable reach the node-by-node adder trees (replacing them by plain
    sums changes results there)."""
    src = tmp_path / "src"
    src.mkdir()
    files = [finn_copy(src, f"mvu/{f}") for f in ("mvu_pkg.sv", "add_multi.sv", "mvu.sv")]
    cells = [f"\tprobe #({g}, {', '.join(str(v) for v in c)}) c{g} (clk, rst, Cyc);" for g, c in enumerate(MVUS)]
    (src / "tb.sv").write_text(MVU_PROBE + tb_top(cells))
    runs = []
    for name, defines in (("recoded", []), ("finn", ["QNNFLOW_FINN_RTL"])):
        sim = build_tb(src, [*files, "tb.sv"], tmp_path / name, ["QNNFLOW_FINN_DSP_LANES", *defines], asserts=True)
        runs.append(_results_and_warnings(run_tb(sim, 3000, "1", cwd=src)))
    (recoded, recoded_warnings), (finn, finn_warnings) = runs
    for g, cfg in enumerate(MVUS):  # every instance finished many rows
        assert sum(ln.startswith(f"{g} ") for ln in finn) > 50, cfg
    assert len(finn_warnings) > 10000
    assert {w[1] for w in finn_warnings} == {str(g) for g, c in enumerate(MVUS) if c[8] and c[3] % 2 == 0}
    assert len(recoded) == len(finn)
    _assert_same(recoded, finn, "instance cycle p")
    assert recoded_warnings == finn_warnings
