"""hw/patches.py replaces, under Verilator, FINN's behavioural model of packed DSP lanes in
mvu.sv by exact dot products with the same timing (faster to simulate). Both models of
the same mvu instances, fed the same random stimuli, must give the same vld cycles and
the same p at each of them, over a spread of shapes: PE not filling the lanes, SIMD 1
and not a power of two, signed activations, wide and non-narrow weights, DSP48E1/E2/58,
rows of one beat, and bubbles (zero). The clock enable is tied to 1, as mvu_vvu_axi does
(with gaps in it, FINN's lanes themselves go out of step: a zero during a gap clears B1
but not the canaries)."""
from __future__ import annotations

import pytest
from vtb import MVU_PROBE, build_tb, by_instance_and_cycle, finn_copy, run_tb, tb_top


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


def _sources(src):
    return [finn_copy(src, f"mvu/{f}") for f in ("mvu_pkg.sv", "add_multi.sv", "mvu.sv")] + ["tb.sv"]


def _build(tmp_path, name: str, lanes: bool):
    src = tmp_path / "src"
    if not src.is_dir():
        src.mkdir()
        _sources(src)
        cells = [f"\tprobe #({g}, {', '.join(str(v) for v in c)}) c{g} (clk, rst, Cyc);"
                 for g, c in enumerate(CONFIGS)]
        (src / "tb.sv").write_text(MVU_PROBE + tb_top(cells))
    # the lanes as FINN wrote them (tests/hw/test_recode.py holds its recoding to them)
    return build_tb(src, _sources(src), tmp_path / name, ["QNNFLOW_FINN_DSP_LANES", "QNNFLOW_FINN_RTL"] if lanes else [])


def test_exact_products_match_finn_dsp_lanes(tmp_path):
    runs = {}
    for name, lanes in (("exact", False), ("lanes", True)):
        runs[name] = by_instance_and_cycle(run_tb(_build(tmp_path, name, lanes), CYCLES))
    exact, lanes = runs["exact"], runs["lanes"]
    for g in range(len(CONFIGS)):  # every instance finished many rows
        assert sum(ln.startswith(f"{g} ") for ln in lanes) > 50, CONFIGS[g]
    diff = next((i for i, (x, y) in enumerate(zip(exact, lanes)) if x != y), None)
    assert diff is None and len(exact) == len(lanes), \
        f"first difference: exact {exact[diff] if diff is not None else len(exact)!r} vs lanes " \
        f"{lanes[diff] if diff is not None else len(lanes)!r}"


NARROW_TB = """
module tb(input logic  clk, input logic  rst);
	localparam int unsigned  PE = {pe}, SIMD = {simd}, WW = {ww}, AW = 4;
	logic [PE-1:0][SIMD-1:0][WW-1:0]  w;
	always_comb begin
		for(int unsigned  i = 0; i < PE; i++)
			for(int unsigned  s = 0; s < SIMD; s++)  w[i][s] = WW'((i + 3*s) % (2**(WW-1)-1)) - WW'(i % 2);
		if({bad}) w[{bad_pe}][{bad_s}] = {{1'b1, {{(WW-1){{1'b0}}}}}};
	end
	uwire  vld;
	uwire [PE-1:0][WW+AW+$clog2(SIMD)+1:0]  p;
	mvu #(.VERSION(1), .PE(PE), .SIMD(SIMD), .WEIGHT_WIDTH(WW), .ACTIVATION_WIDTH(AW),
	      .ACCU_WIDTH(WW+AW+$clog2(SIMD)+2), .SIGNED_ACTIVATIONS(0), .NARROW_WEIGHTS(1)
	) dut (.clk, .rst, .en(1'b1), .last(1'b1), .zero(1'b0), .w, .a('1), .vld, .p);
endmodule
"""


@pytest.mark.parametrize("pe, simd, ww, bad_pe, bad_s", [
    (4, 16, 2, 3, 15),   # tfc-w2a2's first layer: 32-bit rows
    (3, 5, 9, 1, 0),     # 45-bit rows
    (2, 40, 4, 0, 39),   # 160-bit rows
])
def test_exact_model_stops_on_a_weight_violating_narrow_range(tmp_path, pe, simd, ww, bad_pe, bad_s):
    """The exact model cannot show the wrong products FINN's lanes compute for a weight
    of -2**(WEIGHT_WIDTH-1) under NARROW_WEIGHTS: it stops with an error instead, and
    only then."""
    for bad in (0, 1):
        src = tmp_path / f"src{bad}"
        src.mkdir()
        (src / "tb.sv").write_text(NARROW_TB.format(pe=pe, simd=simd, ww=ww, bad=bad, bad_pe=bad_pe, bad_s=bad_s))
        sim = build_tb(src, _sources(src), tmp_path / f"obj{bad}")
        out = run_tb(sim, 40, check=False)
        assert ("violates NARROW_WEIGHTS" in out) == bool(bad), out[-2000:]
