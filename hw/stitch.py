"""Stitch FINN's per-layer RTL into one top-level Verilog module for Verilator.

FINN's own stitcher (CreateStitchedIP) drives Vivado's block design. Here the HW
graph (after FIFO and width-converter insertion and PrepareIP) is read node by node
and written as one module, `qnnflow_top`:

    s_axis -> layer 0 -> layer 1 -> ... -> m_axis        (AXI streams in0_V / out0_V)

- an MVAU/VVAU with decoupled weights gets its `<node>_memstream_wrapper`, whose
  m_axis_0 drives the layer's in1_V weight stream; its INIT_FILE is overridden;
- a Thresholding layer's THRESHOLDS_PATH is overridden, as is the MEM_PATH of our own
  cores (hw/ops) that hold weights or thresholds;
- AXI-lite ports are tied off (inputs 0, outputs open), as is Thresholding's
  set-selection stream (in1_V, ignored for one threshold set);
- every StreamingFIFO's `maxcount` is concatenated into the port `fifo_maxcount`
  (32 bits per FIFO, graph order), for FIFO sizing.

All sources (the nodes' generated wrappers and the finn-rtllib cores they use) are
copied into one folder with the memory files under `mem/`; memory paths are
relative to that folder, the simulator runs there. Verilator fixes are applied to
the copies only (see PATCHES), never to the installed FINN.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HwError

TOP = "qnnflow_top"
RTL_EXTS = (".v", ".sv", ".vh", ".svh")


def finn_rtllib() -> Path:
    import finn

    return Path(finn.__file__).parent / "finn-rtllib"


# ---------------------------------------------------------------------------------
# Verilator fixes, applied to copies of finn-rtllib sources (finn-plus 1.6.1)

def _patch_add_multi(text: str) -> str:
    """Verilator 5.48 rejects a constant function declared inside a generate block
    ("Constant function may not be declared under generate"): move init_leaf_loads
    (and its return type) to module scope. It depends only on the parameter N."""
    func = re.search(r"\n(\t\t// Compute the count of decendents.*?endfunction : init_leaf_loads\n)", text, re.S)
    anchor = "\tuwire [SUM_WIDTH-1:0]  sum0;\n"
    if not func or anchor not in text:
        raise HwError("finn-rtllib/mvu/add_multi.sv changed (init_leaf_loads not found); "
                      "update hw/stitch.py's Verilator fix for the installed FINN version")
    body = func.group(1)
    text = text.replace(body, "")
    moved = ("\t// qnnflow: moved out of the generate block genTree below: Verilator 5.48 rejects\n"
             "\t// constant functions declared under generate. Unchanged otherwise.\n"
             + "\n".join(line[1:] if line.startswith("\t") else line for line in body.splitlines()) + "\n\n")
    return text.replace(anchor, moved + anchor, 1)


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
                      "update hw/stitch.py's Verilator fix for the installed FINN version")
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


def _blank_init_file(text: str) -> str:
    """The memstream wrapper's INIT_FILE default is an absolute path into FINN's code
    generation folder; the top level overrides it with a path relative to the RTL
    folder. Blank the default so the copy does not depend on where the build lives
    (the simulator cache key is a hash of these sources)."""
    new, n = re.subn(r'(parameter\s+INIT_FILE\s*=\s*)"[^"]*"',
                     r'\1""  /* qnnflow: set by qnnflow_top (relative to the RTL folder) */', text, count=1)
    return new if n else text


# ---------------------------------------------------------------------------------
# Simulation speed: Verilator-only recodings (`ifdef QNNFLOW_SIM_RECODE, defined under
# Verilator unless QNNFLOW_FINN_RTL is; the exact MVU model has its own define). Yosys
# synthesis of the same copies (hw/synth.py) still reads FINN's code. Each keeps every
# value at the module's ports on every cycle where it is valid, so outputs and cycle
# counts are unchanged: tests/hw/test_recode.py compares modules port by port,
# tests/hw/test_rtlsim.py the stitched accelerator, with FINN's code
# (hw.rtlsim(..., finn_rtl=True)). tfc-w2a2, simulated cycles per CPU second on a
# shared 2-core machine, with the compiler flags of hw/rtlsim.py and the harness's
# direct model calls: FINN's code 1.0-1.1 M; recoded, with FINN's DSP lane arithmetic
# (_MVU_LANES) 2.1-2.3 M (1.3 M with FINN's lane code and the other recodings), with
# exact MVU products 6.2-6.6 M (3.0 M before the FIFO, thresholding and width
# converter recodings). The lane arithmetic itself is the limit: per SIMD element and
# DSP slice ~50 operations (packing, 48-bit product and accumulation, canaries, lane
# sums) against one multiply-add per weight for the exact products; without its
# canaries and high parts it would still run at only ~3 M.

def _replace_once(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) != 1:
        raise HwError(f"finn-rtllib/{what} changed ({old.strip()[:60]!r} not found once); "
                      "update hw/stitch.py's Verilator fix for the installed FINN version")
    return text.replace(old, new)


# FINN's DSP lane model (mvu.sv's genPipes, the verification default) recoded for
# Verilator: same arithmetic, register by register, in one process per pipe
_MVU_LANES = """\
	// qnnflow (Verilator only): FINN's behavioural model of packed DSP lanes (genPipes
	// under `else below), recoded for simulation speed with the same arithmetic register
	// by register, in one process per pipe. Per SIMD element: the DSP stages B1, AD1 (the
	// packed weights, dd - aa), M2 and P3; the canaries X1-X3 and PZ; the cross-lane
	// overflows h3. Per lane: the SIMD adder trees (add_multi) as their sums delayed by
	// their register levels, the high sideband accumulator Hi4 (its overflow assertion
	// included) and Res5. Sums over SIMD are taken several lanes to a 64-bit word where
	// the fields stay apart (SWAR); the lanes' 2-bit canaries share a word, each at its
	// lane's offset (lanes are >= 3 bits wide, so a field's carry or borrow ends in the
	// bit above it). A tree's sum is the plain sum of its arguments, which add_multi's
	// node widths hold, unless some cross-lane overflow is -2, outside what FINN's lane
	// widths allow: then the tree is evaluated node by node with add_multi's widths (the
	// tests reach it only with gaps in the clock enable, which mvu_vvu_axi ties to 1).
	// Not kept, as no port shows them where vld is set: canaries and PZ that feed no
	// high part, and the 'x FINN resets its low-part tree registers and Res5 to (0 here).
	// Weights that violate NARROW_WEIGHTS get FINN's warning, under FINN's condition.
	// tests/hw/test_recode.py compares this with FINN's code port by port, clock-enable
	// gaps, resets and NARROW_WEIGHTS violations included.
	typedef logic [63:0]  lane_word_t;
	typedef int unsigned  lane_ints_t[NUM_LANES];
	function automatic lane_ints_t lane_widths(input bit  high);
		automatic lane_ints_t  res;
		for(int unsigned  i = 0; i < NUM_LANES; i++)  res[i] = high? hi_width(i) : lo_width(i);
		return  res;
	endfunction : lane_widths
	// pattern at the offset of each lane above rem (the lanes that carry canaries)
	function automatic lane_word_t canary_fields(input int unsigned  rem, input lane_word_t  pattern);
		automatic lane_word_t  res = 0;
		for(int unsigned  i = rem+1; i < NUM_LANES; i++)  res |= pattern << OFFSETS[i];
		return  res;
	endfunction : canary_fields
	function automatic lane_word_t sext(input lane_word_t  x, input int unsigned  n);
		return  lane_word_t'($signed(x << (64-n)) >>> (64-n));
	endfunction : sext
	function automatic lane_word_t ones(input int unsigned  n);
		return  n >= 64? '1 : (lane_word_t'(1) << n) - 1;
	endfunction : ones
	// The low parts of every other lane from rem on (parity 0: rem, rem+2, ...), in place
	function automatic lane_word_t low_parts(input int unsigned  rem, input bit  parity);
		automatic lane_word_t  res = 0;
		for(int unsigned  i = rem + parity; i < NUM_LANES; i += 2)  res |= ones(lo_width(i)) << OFFSETS[i];
		return  res;
	endfunction : low_parts
	// Whether SIMD low parts of each lane from rem on, summed in place, stay clear of the
	// next lane summed in the same word
	function automatic bit low_sums_apart(input int unsigned  rem);
		for(int unsigned  i = rem; i < NUM_LANES; i++)
			if(OFFSETS[i] + lo_width(i) + $clog2(SIMD) > (i+2 < NUM_LANES? OFFSETS[i+2] : 64))  return  0;
		return  1;
	endfunction : low_sums_apart
	// Bit 0 of the h3 fields (at OFFSETS[i+1]) of the lanes i from rem on with a high part
	function automatic lane_word_t high_fields(input int unsigned  rem);
		automatic lane_word_t  res = 0;
		for(int unsigned  i = rem; i+1 < NUM_LANES; i++)  if(hi_width(i) != 0)  res |= lane_word_t'(1) << OFFSETS[i+1];
		return  res;
	endfunction : high_fields
	// Whether counts up to SIMD at those fields stay clear of the next field
	function automatic bit high_counts_apart(input int unsigned  rem);
		for(int unsigned  i = rem+1; i < NUM_LANES; i++)
			if(OFFSETS[i] + $clog2(SIMD+1) > (i+1 < NUM_LANES? OFFSETS[i+1] : 64))  return  0;
		return  1;
	endfunction : high_counts_apart
	// add_multi's signed tree (ARG_LO = -1, ARG_HI = 1) node by node, in its heap order:
	// each node's sum wraps to sumwidth(leaves below it, 2, -1, 1) bits
	function automatic lane_word_t hi_tree(input logic [1:0]  h[SIMD]);
		automatic lane_word_t   t[2*SIMD-1];
		automatic int unsigned  n[2*SIMD-1];
		for(int unsigned  i = 0; i < SIMD; i++) begin
			t[SIMD-1+i] = sext(lane_word_t'(h[i]), 2);
			n[SIMD-1+i] = 1;
		end
		for(int  i = int'(SIMD)-2; i >= 0; i--) begin
			n[i] = n[2*i+1] + n[2*i+2];
			t[i] = sext(t[2*i+1] + t[2*i+2], sumwidth(n[i], 2, -1, 1));
		end
		return  t[0];
	endfunction : hi_tree

	if(1) begin : genLanes
		localparam lane_ints_t  LW = lane_widths(0);
		localparam lane_ints_t  HW = lane_widths(1);
		localparam int unsigned  PIPE_COUNT = 1 + (PE-1)/NUM_LANES;
		localparam lane_word_t  LO4_MASK = (lane_word_t'(1) << sum_width(SIMD, LO_WIDTH_MAX)) - 1;
		localparam int unsigned  HI4_WIDTH = HI_WIDTH_MAX == 0? 2 : HI_WIDTH_MAX;  // hi4's [HI_WIDTH_MAX-1:0]
		// add_multi: registered tree levels (clock-enabled) and extra delay stages (not)
		localparam int unsigned  LEVELS = $clog2(SIMD);
		localparam int unsigned  LO_DEPTH = PIPELINE_DEPTH-4;
		localparam int unsigned  HI_DEPTH = PIPELINE_DEPTH-5;
		localparam int unsigned  LO_REGS = LEVELS == 0? 0 : LO_DEPTH < LEVELS? LO_DEPTH : LEVELS;
		localparam int unsigned  HI_REGS = LEVELS == 0? 0 : HI_DEPTH < LEVELS? HI_DEPTH : LEVELS;
		localparam int unsigned  LO_STAGES = LO_REGS + (LO_DEPTH > LEVELS? LO_DEPTH - LEVELS : 0);
		localparam int unsigned  HI_STAGES = HI_REGS + (HI_DEPTH > LEVELS? HI_DEPTH - LEVELS : 0);
		localparam lane_word_t  PMASK = (lane_word_t'(1) << P_WIDTH) - 1;
		localparam lane_word_t  WSIGN = lane_word_t'(1) << (WEIGHT_WIDTH-1);
		localparam lane_word_t  ASIGN = SIGNED_ACTIVATIONS? lane_word_t'(1) << (ACTIVATION_WIDTH-1) : 0;
		initial begin
			if(ACCU_WIDTH > 64 || sum_width(SIMD, LO_WIDTH_MAX) > 63) begin
				$error("%m: ACCU_WIDTH=%0d: qnnflow's recoding of the DSP lanes computes in 64 bits; simulate FINN's code (hw.rtlsim(..., finn_rtl=True))", ACCU_WIDTH);
				$finish;
			end
		end

		for(genvar  c = 0; c < PIPE_COUNT; c++) begin : genPipe
			localparam int unsigned  PE_BEG = NUM_LANES*c;
			localparam int unsigned  PE_END = PE < NUM_LANES*(c+1)? PE : NUM_LANES*(c+1);
			localparam int unsigned  PE_REM = NUM_LANES*(c+1) - PE_END;
			localparam lane_word_t  CMASK = canary_fields(PE_REM, 3);
			localparam lane_word_t  CLOW  = canary_fields(PE_REM, 1);
			localparam lane_word_t  GUARD = CLOW << 2;
			// SWAR sums over SIMD where the fields stay apart: the low parts of every other
			// lane in one word (two words), the bits of the h3 fields in one word each
			localparam bit  LO_SWAR = low_sums_apart(PE_REM);
			localparam lane_word_t  LO_EVEN = low_parts(PE_REM, 0);
			localparam lane_word_t  LO_ODD = low_parts(PE_REM, 1);
			localparam lane_word_t  HI_FIELDS = high_fields(PE_REM);
			localparam bit  HI_SWAR = high_counts_apart(PE_REM);

			// The registers below are read by this pipe's process only, which updates them
			// with blocking assignments after it has read them (nonblocking assignments to
			// array elements cost Verilator a flag and a copy each); Res5 drives p and is
			// assigned nonblocking. Stages #1 - #3, per SIMD element: the DSP registers
			// (B1 as FINN's, one per pipe) and the canaries
			lane_word_t  B1[SIMD] = '{ default: 0 };
			lane_word_t  AD1[SIMD] = '{ default: 0 };
			lane_word_t  M2[SIMD] = '{ default: 0 };
			lane_word_t  P3[SIMD] = '{ default: 0 };
			lane_word_t  X1[SIMD] = '{ default: 0 };
			lane_word_t  X2[SIMD] = '{ default: 0 };
			lane_word_t  X3[SIMD] = '{ default: 0 };
			logic  PZ[SIMD] = '{ default: 0 };
			// Stage #4: the adder trees' outputs delayed (index k: after k stages), Hi4
			lane_word_t  LoQ[LO_STAGES+1][NUM_LANES] = '{ default: 0 };
			lane_word_t  HiQ[HI_STAGES+1][NUM_LANES] = '{ default: 0 };
			lane_word_t  Hi4[NUM_LANES] = '{ default: 0 };
			// Stage #5
			logic [NUM_LANES-1:0][ACCU_WIDTH-1:0]  Res5 = '0;

			always_ff @(posedge clk) begin
				automatic lane_word_t  lo[NUM_LANES] = '{ default: 0 };	// the trees' arguments summed
				automatic lane_word_t  hi[NUM_LANES] = '{ default: 0 };
				automatic lane_word_t  lo_sum[2] = '{ default: 0 };	// SWAR: every other lane's low parts
				automatic lane_word_t  hi_cnt[2] = '{ default: 0 };	// SWAR: counts of h3's bits 0 and 1
				automatic lane_word_t  hv[SIMD];	// h3[s][i] at OFFSETS[i+1]
				automatic lane_word_t  wide = 0;	// some h3 = -2 (see above)
				automatic lane_word_t  lo4[NUM_LANES];
				automatic lane_word_t  sum[NUM_LANES];

				// Per SIMD element: stage #4's arguments from stage #3's registers, then
				// stages #1 - #3, each register after its readers
				for(int unsigned  s = 0; s < SIMD; s++) begin
					automatic lane_word_t  pp = P3[s];
					automatic lane_word_t  acc = L[3]? 0 : pp;
					if(LO_SWAR) begin
						lo_sum[0] += pp & LO_EVEN;
						lo_sum[1] += pp & LO_ODD;
					end
					else begin
						for(int unsigned  i = PE_REM; i < NUM_LANES; i++)  lo[i] += (pp >> OFFSETS[i]) & ones(LW[i]);
					end
					if(HI_FIELDS != 0) begin
						// h3[s][i] = pp[OFFSETS[i+1]+:2] - X3[i+1], in the field at OFFSETS[i+1]
						hv[s] = ((pp & CMASK) | GUARD) - X3[s];
						if(HI_SWAR) begin
							hi_cnt[0] += hv[s] & HI_FIELDS;
							hi_cnt[1] += (hv[s] >> 1) & HI_FIELDS;
						end
						else begin
							for(int unsigned  i = PE_REM; i+1 < NUM_LANES; i++) begin
								if(HW[i] != 0) begin
									automatic lane_word_t  h = (hv[s] >> OFFSETS[i+1]) & 3;
									hi[i] += h - ((h & 2) << 1);
								end
							end
						end
						wide |= (hv[s] >> 1) & ~hv[s] & HI_FIELDS;
					end
					if(HW[NUM_LANES-1] != 0) begin	// the high lane's overflow
						if( PZ[s] && pp[P_WIDTH-1 -: 2] == 2'b00)  hi[NUM_LANES-1] += 1;
						if(!PZ[s] && pp[P_WIDTH-1 -: 2] == 2'b11)  hi[NUM_LANES-1] -= 1;
					end

					// (registers no port can see are not kept: the canaries without a
					// next lane to feed, PZ without a high part in the high lane)
					if(rst) begin
						if(HW[NUM_LANES-1] != 0)  PZ[s] = 0;
						P3[s] = 0;
						if(CMASK != 0) begin
							X3[s] = 0;
							X2[s] = 0;
							X1[s] = 0;
						end
						M2[s] = 0;
						AD1[s] = 0;
					end
					else if(en) begin
						automatic lane_word_t  d = 0;	// dd - aa
						automatic lane_word_t  x = 0;	// xx
						for(int unsigned  pe = PE_BEG; pe < PE_END; pe++) begin
							automatic lane_word_t  ww = lane_word_t'(w[pe][s]);
							d += ((ww ^ WSIGN) - WSIGN) << OFFSETS[pe - PE_BEG + PE_REM];
							if(pe > PE_BEG)  x |= ((ww * lane_word_t'(a[s])) & 3) << OFFSETS[pe - PE_BEG + PE_REM];
						end
						if(HW[NUM_LANES-1] != 0)  PZ[s] = L[3]? 0 : pp[P_WIDTH-1];
						P3[s] = (M2[s] + acc) & PMASK;
						if(CMASK != 0) begin
							X3[s] = (X2[s] + (acc & CMASK)) & CMASK;
							X2[s] = X1[s];
							X1[s] = zero? 0 : x;
						end
						M2[s] = B1[s] * AD1[s];
						AD1[s] = sext(d, A_WIDTH);
					end
					if(zero)     B1[s] = 0;
					else if(en)  B1[s] = (lane_word_t'(a[s]) ^ ASIGN) - ASIGN;
				end

				for(int unsigned  i = PE_REM; i < NUM_LANES; i++) begin
					if(LO_SWAR)  lo[i] = (lo_sum[(i-PE_REM) % 2] >> OFFSETS[i]) & ones(LW[i] + $clog2(SIMD));
					if(HI_SWAR && i+1 < NUM_LANES && HW[i] != 0) begin
						automatic lane_word_t  ones0 = (hi_cnt[0] >> OFFSETS[i+1]) & ones($clog2(SIMD+1));
						automatic lane_word_t  ones1 = (hi_cnt[1] >> OFFSETS[i+1]) & ones($clog2(SIMD+1));
						hi[i] = ones0 - 2*ones1;	// the sum of h3 = b1 b0 as signed 2-bit numbers
					end
				end
				if(wide != 0) begin
					for(int unsigned  i = PE_REM; i+1 < NUM_LANES; i++) begin
						if(HW[i] != 0) begin
							automatic logic [1:0]  h[SIMD];
							for(int unsigned  s = 0; s < SIMD; s++)  h[s] = 2'(hv[s] >> OFFSETS[i+1]);
							hi[i] = hi_tree(h);
						end
					end
				end
				for(int unsigned  i = 0; i < NUM_LANES; i++) begin
					lo4[i] = (LO_STAGES == 0? lo[i] : LoQ[LO_STAGES][i]) & LO4_MASK;
					sum[i] = HI_STAGES == 0? hi[i] : HiQ[HI_STAGES][i];
				end

				// Stages #4 and #5
				if(rst) begin
					LoQ = '{ default: 0 };
					HiQ = '{ default: 0 };
					Hi4 = '{ default: 0 };
					Res5 <= '0;
				end
				else begin
					// the trees' registers are clock-enabled, add_multi's extra delay stages not
					for(int  k = LO_STAGES; k >= 1; k--)  if(en || k > LO_REGS)  LoQ[k] = k == 1? lo : LoQ[k-1];
					for(int  k = HI_STAGES; k >= 1; k--)  if(en || k > HI_REGS)  HiQ[k] = k == 1? hi : HiQ[k-1];
					if(en) begin
						for(int unsigned  i = PE_REM; i < NUM_LANES; i++) begin
							automatic lane_word_t  hi4 = HW[i] == 0? 0 : sext(Hi4[i], HI4_WIDTH);
							automatic lane_word_t  hi4p = i == PE_REM || HW[i-1] == 0? 0 : sext(Hi4[i-1], HI4_WIDTH);
							Res5[i] <= ACCU_WIDTH'((hi4 << LW[i]) + lo4[i] - hi4p);
						end
						for(int unsigned  i = PE_REM; i < NUM_LANES; i++) begin
							if(HW[i] != 0) begin
								automatic lane_word_t  h = (L[PIPELINE_DEPTH-1]? 0 : Hi4[i]) + sum[i];
								assert(h[HW[i]] == h[HW[i]-1]) else begin
									$error("%m [%0d:%0d]: Accumulation overflow for ACCU_WIDTH=%0d", c, i, ACCU_WIDTH);
								end
								Hi4[i] = sext(h, HW[i]);
							end
						end
					end
				end
			end
			for(genvar  pe = PE_BEG; pe < PE_END; pe++)  assign  p[pe] = Res5[pe - PE_BEG + PE_REM];
		end : genPipe

		if(NARROW_WEIGHTS) begin : genNarrowCheck
			always_ff @(posedge clk) begin
				if(en && !rst && !zero && narrow_violated(w)) begin
					for(int unsigned  pe = 0; pe < PE; pe++) begin
						for(int unsigned  s = 0; s < SIMD; s++) begin
							// FINN's condition as written: unary minus binds before **, so for odd
							// WEIGHT_WIDTH it compares with +2**(WEIGHT_WIDTH-1) and never fires
							assert($signed(w[pe][s]) !== -2**(WEIGHT_WIDTH-1)) else begin
								$warning("%m: genPipes[%0d].genSIMD[%0d]: Weight of %0x violates NARROW_WEIGHTS commitment.", pe / NUM_LANES, s, w[pe][s]);
							end
						end
					end
				end
			end
		end : genNarrowCheck
	end : genLanes
"""


# mvu.sv: which model runs is a Verilator define (hw.rtlsim passes -DQNNFLOW_FINN_DSP_LANES
# for finn_dsp_lanes=True), so one copy of the sources (and its hash) serves both
_MVU_EXACT_DEFINE = """\
// qnnflow: under Verilator, mvu below computes its dot products exactly instead of
// through FINN's behavioural model of packed DSP lanes (see genExact), unless
// QNNFLOW_FINN_DSP_LANES is defined (hw.rtlsim(..., finn_dsp_lanes=True)).
`ifdef VERILATOR
`ifndef QNNFLOW_FINN_DSP_LANES
`define QNNFLOW_EXACT_MVU
`endif
`endif

"""

_MVU_EXACT = """\
`ifdef VERILATOR
	// qnnflow: whether a weight is -2**(WEIGHT_WIDTH-1), a PE's weights at once (at most
	// 64 bits for most shapes: cheap to simulate): one is iff its sign bit is set and the
	// bits below it (shifted up onto the sign position) are all clear.
	function automatic logic  narrow_violated(input logic [PE-1:0][SIMD-1:0][WEIGHT_WIDTH-1:0]  ws);
		typedef logic [SIMD*WEIGHT_WIDTH-1:0]  wrow_t;
		localparam wrow_t  SIGNS = {SIMD{1'b1, {(WEIGHT_WIDTH-1){1'b0}}}};
		automatic logic  bad = 0;
		for(int unsigned  pe = 0; pe < PE; pe++) begin
			automatic wrow_t  row = ws[pe];
			automatic wrow_t  low = 0;
			for(int unsigned  k = 1; k < WEIGHT_WIDTH; k++)  low |= row << k;
			bad |= |(row & SIGNS & ~low);
		end
		return  bad;
	endfunction
`endif
`ifdef QNNFLOW_EXACT_MVU
	// qnnflow (Verilator only): the exact dot product, with the DSP lanes' timing.
	// FINN's lane model (below, under `else) packs several PEs into each 48-bit DSP
	// product and undoes the packing with per-SIMD canaries and registered SIMD
	// adder trees; simulated, that was half of all the work per cycle. Here: stage #1
	// registers sum(w*a) over SIMD (= the products B1*AD1 summed; zeroed by zero or
	// rst as B1 and AD1 are), #2 delays it (M2), #3 accumulates it per row (P3, restarted
	// by L[3] as there), and PIPELINE_DEPTH-3 stages delay the result as the adder trees
	// and Res5 do. Arithmetic modulo 2^32 (2^64) truncated to ACCU_WIDTH: the same p at
	// every vld as the lanes wherever their packing holds. It holds when the weights
	// are narrow (checked below: a violation stops the simulation, since only the
	// lane model shows what the DSPs would compute) and the accumulator is wide
	// enough (a wrong sum differs from the reference, so the comparison catches it).
	if(1) begin : genExact
		localparam int unsigned  SUM_WIDTH = ACCU_WIDTH <= 32? 32 : 64;
		typedef logic [SUM_WIDTH-1:0]  sum_t;
		// sign extension as (x ^ sign) - sign: no signed arithmetic for Verilator to widen
		localparam sum_t  WSIGN = sum_t'(1) << (WEIGHT_WIDTH-1);
		localparam sum_t  ASIGN = SIGNED_ACTIVATIONS? sum_t'(1) << (ACTIVATION_WIDTH-1) : 0;

		sum_t  S1[PE] = '{ default: 0 };
		sum_t  M2[PE] = '{ default: 0 };
		sum_t  P3[PE] = '{ default: 0 };
		logic [PE-1:0][ACCU_WIDTH-1:0]  D[PIPELINE_DEPTH-3];
		always_ff @(posedge clk) begin
			automatic sum_t  av[SIMD];
			for(int unsigned  s = 0; s < SIMD; s++)  av[s] = (sum_t'(a[s]) ^ ASIGN) - ASIGN;
			for(int unsigned  pe = 0; pe < PE; pe++) begin
				if(rst || zero)  S1[pe] <= 0;
				else if(en) begin
					automatic sum_t  dot = 0;
					for(int unsigned  s = 0; s < SIMD; s++)  dot += ((sum_t'(w[pe][s]) ^ WSIGN) - WSIGN) * av[s];
					S1[pe] <= dot;
				end
				if(rst)      M2[pe] <= 0;
				else if(en)  M2[pe] <= S1[pe];
				if(rst)      P3[pe] <= 0;
				else if(en)  P3[pe] <= M2[pe] + (L[3]? 0 : P3[pe]);
			end
			if(en) begin
				for(int unsigned  pe = 0; pe < PE; pe++)  D[0][pe] <= P3[pe][ACCU_WIDTH-1:0];
				for(int unsigned  i = 1; i < PIPELINE_DEPTH-3; i++)  D[i] <= D[i-1];
			end
		end
		assign	p = D[PIPELINE_DEPTH-4];

		if(NARROW_WEIGHTS) begin : genNarrowCheck
			// FINN's check of the lanes' narrow-range commitment (a $warning there, next to
			// the wrong products it leads to), here an error: the exact products would hide
			// them. A plain `if`, so that --no-assert keeps it.
			always_ff @(posedge clk) begin
				if(en && !rst && !zero && narrow_violated(w)) begin
					$error("%m: a weight of -2**%0d violates NARROW_WEIGHTS: FINN's DSP lanes would compute wrong products; this exact-product model (QNNFLOW_RTLSIM_EXACT_MVU=1 or finn_dsp_lanes=False) cannot show them; simulate FINN's lanes (the default)", WEIGHT_WIDTH-1);
				end
			end
		end : genNarrowCheck
	end : genExact
`elsif QNNFLOW_SIM_RECODE
""" + _MVU_LANES + """\
`else
"""


def _patch_mvu(text: str) -> str:
    """mvu.sv under Verilator: FINN's lane model recoded (_MVU_LANES; FINN's own code
    with QNNFLOW_FINN_RTL), or replaced by the exact dot product (_MVU_EXACT, unless
    QNNFLOW_FINN_DSP_LANES). Both drop the DSP start-up watchdog: with --no-timing its
    `#100ns` is ignored, so it never fires; it only cost time."""
    text = _replace_once(text, "\nmodule mvu #(", "\n" + _MVU_EXACT_DEFINE + "module mvu #(", "mvu/mvu.sv")
    text = _recode_define(text, "\nmodule mvu #(", "mvu/mvu.sv")
    text = _replace_once(text, "\tif(1) begin : blkRecoveryWatch\n",
                         "`ifndef QNNFLOW_EXACT_MVU  // qnnflow: FINN's code only (see _patch_mvu)\n"
                         "`ifndef QNNFLOW_SIM_RECODE\n"
                         "\tif(1) begin : blkRecoveryWatch\n", "mvu/mvu.sv")
    text = _replace_once(text, "\tend : blkRecoveryWatch\n", "\tend : blkRecoveryWatch\n`endif\n`endif\n", "mvu/mvu.sv")
    text = _replace_once(text, "\t// Stages #1 - #3: DSP Lanes", _MVU_EXACT + "\t// Stages #1 - #3: DSP Lanes",
                         "mvu/mvu.sv")
    return _replace_once(text, "\tend : genPipes\n", "\tend : genPipes\n`endif  // QNNFLOW_EXACT_MVU, QNNFLOW_SIM_RECODE\n",
                         "mvu/mvu.sv")


# Each recoded file opens with this define block: QNNFLOW_SIM_RECODE selects the
# recodings, under Verilator only, unless QNNFLOW_FINN_RTL is defined (hw.rtlsim's
# finn_rtl=True: FINN's own descriptions, which tests/hw/test_recode.py compares with).
_RECODE_DEFINE = """\
// qnnflow: Verilator-only recodings for simulation speed below (QNNFLOW_SIM_RECODE),
// cycle-identical to FINN's code kept under `else; hw/stitch.py, tests/hw/test_recode.py.
`ifdef VERILATOR
`ifndef QNNFLOW_FINN_RTL
`ifndef QNNFLOW_SIM_RECODE
`define QNNFLOW_SIM_RECODE
`endif
`endif
`endif

"""


def _recode_define(text: str, anchor: str, what: str) -> str:
    return _replace_once(text, anchor, "\n" + _RECODE_DEFINE + anchor.lstrip("\n"), what)


def _patch_memstream_axi(text: str) -> str:
    """memstream_axi.sv: the stitcher ties every AXI-lite input to 0 (qnnflow_top), so
    axilite never starts an access and its IP side stays idle (ip_en = 0); under
    Verilator its idle outputs become constants. Its registers, clocked every cycle
    in each of the weight memories, were ~7% of the simulation."""
    m = re.search(r"\n(\taxilite #\(\n.*?\n\t\) cfg \(\n.*?\n\t\);\n)", text, re.S)
    if not m:
        raise HwError("finn-rtllib/memstream/hdl/memstream_axi.sv changed (axilite cfg not found); "
                      "update hw/stitch.py's Verilator fix for the installed FINN version")
    tied = ("`ifdef QNNFLOW_SIM_RECODE\n"
            "\t// qnnflow: AXI-lite tied off by the stitcher (inputs 0): axilite's idle state\n"
            "\tassign\tconfig_ce = 0;\n\tassign\tconfig_we = 0;\n"
            "\tassign\tconfig_address = '0;\n\tassign\tconfig_d0 = '0;\n"
            "\tassign\tawready = 1;\n\tassign\twready = 1;\n\tassign\tbvalid = 0;\n\tassign\tbresp = '0;\n"
            "\tassign\tarready = 1;\n\tassign\trvalid = 0;\n\tassign\trresp = '0;\n\tassign\trdata = '0;\n"
            "`else\n" + m.group(1) + "`endif\n")
    text = text[:m.start(1)] + tied + text[m.end(1):]
    return _recode_define(text, "\nmodule memstream_axi #(", "memstream/hdl/memstream_axi.sv")


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


_FIFO_SRL = """\
`ifdef QNNFLOW_SIM_RECODE
		// qnnflow (Verilator only): FINN's SRL FIFO below (`else) in one clocked block
		// on unsigned counts (Verilator's signed compares cost more). The same values at
		// every port on every cycle (odat where ovld), by invariants of FINN's code:
		//  - N = Ptr+1, the number of words in A;
		//  - Rdy == (Ptr < DEPTH_IMPL-1) (FINN asserts it: "Broken Rdy computation");
		//  - Count == Ptr+1 + Vld (the words in A and in the output register B): count,
		//    and the next count that MaxCount follows, come from N and Vld;
		//  - the shift register A becomes a ring buffer: A[k], the k-th newest word
		//    written, is the ring's A[AWp-1-k], so B loads A[AWp-N].
		localparam int unsigned  RING = 2**$clog2(DEPTH_IMPL);
		typedef logic [$clog2(RING)-1:0]  ring_t;  // indices wrap around
		typedef logic [$clog2(DEPTH_IMPL+1)-1:0]  n_t;
		typedef logic [COUNT_WIDTH-1:0]  cnt_t;

		dat_t  A[RING];
		ring_t  AWp = 0;
		n_t  N = 0;	// 0, 1, ..., DEPTH_IMPL
		logic  Rdy = 1;
		logic  Vld = 0;
		dat_t  B = 'x;
		cnt_t  MaxCnt = 0;

		assign	irdy = Rdy;
		assign	odat = B;
		assign	ovld = Vld;
		assign	count = cnt_t'(N) + cnt_t'(Vld);
		assign	maxcount = MaxCnt;

		always_ff @(posedge clk) begin
			automatic logic  push = Rdy && ivld;
			automatic logic  bload = !Vld || ordy;
			automatic logic  pop = (N != 0) && bload;
			automatic n_t  n_nxt = N + n_t'(push) - n_t'(pop);
			automatic logic  vld_nxt = bload? N != 0 : Vld;
			automatic cnt_t  cnt_nxt = cnt_t'(n_nxt) + cnt_t'(vld_nxt);
			if(push) begin
				A[AWp] <= idat;
				AWp <= AWp + 1;
			end
			if(rst) begin
				N <= 0;
				Rdy <= 1;
				Vld <= 0;
				MaxCnt <= 0;
			end
			else begin
				N <= n_nxt;
				Rdy <= n_nxt < DEPTH_IMPL;
				Vld <= vld_nxt;
				if(bload)  B <= A[ring_t'(AWp - N)];
				if(cnt_nxt > MaxCnt)  MaxCnt <= cnt_nxt;
			end
		end
`else
"""


def _patch_fifo_srl(text: str) -> str:
    """fifo.sv, "shift" style (DEPTH <= 33, e.g. every FIFO that FIFO sizing first
    makes 32 deep): the whole FIFO, occupancy counters included, recoded under
    Verilator as one clocked block (_FIFO_SRL), ~3x cheaper to simulate. The
    module-level occupancy monitor is left to the other styles there."""
    what = "fifo/hdl/fifo.sv"
    text = _recode_define(text, "\nmodule fifo #(", what)
    m = re.search(r"\n(\tuwire  cnt_push = irdy && ivld;\n.*?\tassign\tmaxcount = MaxCount;\n)", text, re.S)
    if not m:
        raise HwError("finn-rtllib/fifo/hdl/fifo.sv changed (occupancy monitor not found); "
                      "update hw/stitch.py's Verilator fix for the installed FINN version")
    text = (text[:m.start(1)]
            + "`ifdef QNNFLOW_SIM_RECODE\n\tif(RAM_STYLE_EFF != \"shift\") begin : genCount  // shift: in genSRL\n`endif\n"
            + m.group(1)
            + "`ifdef QNNFLOW_SIM_RECODE\n\tend : genCount\n`endif\n" + text[m.end(1):])
    head = "\t\tlocalparam int unsigned  DEPTH_IMPL = DEPTH > 4? DEPTH-1 : 4;  // output register B provides one slot\n"
    text = _replace_once(text, "\t\"shift\": begin : genSRL\n" + head,
                         "\t\"shift\": begin : genSRL\n" + head + _FIFO_SRL, what)
    return _replace_once(text, "\tend : genSRL\n", "`endif  // QNNFLOW_SIM_RECODE\n\tend : genSRL\n", what)


_THRESHOLDING_STAGES = """\
`ifdef QNNFLOW_SIM_RECODE
	// qnnflow (Verilator only): without run-time configuration (USE_CONFIG = 0) FINN's
	// free-running pipeline below (genStages, under `else) is a binary search over
	// constant thresholds with fixed timing: each of its M stages reads the threshold
	// that the result bits above its own select (address {channel, bits so far}) and
	// decides its bit (Scope && cmp), taking 1 cycle (2 with DEEP_PIPELINE). Here the
	// search runs at once, when a TH beat enters pipe[*][0], over the same threshold
	// files (loaded stage after stage into one memory per PE), and the beats pass a
	// delay line of the pipeline's length: pipe[*][M] carries the same op, ptr and val
	// on every cycle for TH beats (NOP beats: op only), all the stream output uses.
	if(!USE_CONFIG && SETS == 1 && !FPARG) begin : genSearch
		localparam int unsigned  L = (DEEP_PIPELINE+1) * M;  // pipeline latency
		localparam int unsigned  TOTAL = CF * (2**M - 1);    // stage s at CF*(2**s-1)
		localparam val_t  SGN = SIGNED? val_t'(1) << (K-1) : 0;  // signed as unsigned compare

		pipe_t  q[PE];
		pipe_t  D[L][PE];
		for(genvar  pe = 0; pe < PE; pe++) begin : genPE
			val_t  Th[TOTAL];
			if(THRESHOLDS_PATH != "") begin
				for(genvar  stage = 0; stage < M; stage++) begin : genLoad
					initial  $readmemh($sformatf("%sthreshs_%0d_%0d.dat", THRESHOLDS_PATH, pe, stage), Th,
					                   CF*(2**stage-1), CF*(2**(stage+1)-1)-1);
				end
			end
			always_comb begin
				q[pe] = pipe[pe][0];
				if(q[pe].op ==? TH) begin
					automatic int unsigned  cnl = int'(q[pe].ptr >> M);
					automatic logic [M-1:0]  r = 0;
					for(int unsigned  s = 0; s < M; s++) begin
						automatic int unsigned  hi = int'(r >> (M-s));  // bits above M-1-s
						automatic int unsigned  sr = (2**(M-s-1) + 2**M-1-N) >> (M-s);  // SCOPE_REDUCE
						automatic val_t  th = Th[CF*(2**s-1) + (cnl << s) + hi];
						r[M-1-s] = (sr == 0 || hi < 2**s - sr) && ((th ^ SGN) <= (q[pe].val ^ SGN));
					end
					q[pe].ptr[M-1:0] = r;
				end
			end
			assign	pipe[pe][M] = D[L-1][pe];
		end : genPE

		always_ff @(posedge clk) begin
			for(int unsigned  i = L-1; i > 0; i--)  D[i] <= D[i-1];
			D[0] <= q;
			if(rst) begin
				for(int unsigned  i = 0; i < L; i++)
					for(int unsigned  pe = 0; pe < PE; pe++)  D[i][pe].op <= NOP;
			end
		end
	end : genSearch
	else begin : genFinn
`endif
"""


def _patch_thresholding(text: str) -> str:
    """thresholding.sv: the threshold pipeline as a direct binary search plus a delay line
    under Verilator (_THRESHOLDING_STAGES), where no AXI-lite configuration can change
    the thresholds."""
    what = "thresholding/hdl/thresholding.sv"
    text = _recode_define(text, "\nmodule thresholding #(", what)
    text = _replace_once(text, "\t// Free-Running Thresholding Pipeline\n",
                         "\t// Free-Running Thresholding Pipeline\n" + _THRESHOLDING_STAGES, what)
    return _replace_once(text, "\tend : genStages\n",
                         "\tend : genStages\n`ifdef QNNFLOW_SIM_RECODE\n\tend : genFinn\n`endif\n", what)


_VPC_STREAM = """\
`ifdef QNNFLOW_SIM_RECODE
		// qnnflow (Verilator only): the case dwc_axi always makes (N = IBITS*OBITS, so
		// whole vectors span whole beats on both sides and the last output beat is full:
		// nxt, idone, odone and olast stay 0) recoded. FINN's code (genFinn, under
		// `else) keeps the free input capacity ICap = PO0 - H, where H is the number of
		// elements held in Buf (irdy: ICap >= 0, ovld: ICap <= 0), and places input
		// elements with a rotating deposit mask and a barrel rotator so that Buf[0..H-1]
		// hold the stream in order. Here H itself, and Buf as that queue: an output
		// beat takes PO0 elements off its head, an input beat appends PI0 after the rest.
		if((TRNI * PI0 == TRNO * PO0) && (OLAST == PO)) begin : genStream
			localparam int unsigned  CAP = PI0 + PO0;
			typedef logic [$clog2(CAP+1)-1:0]  h_t;

			logic [W0-1:0]  Buf[CAP];
			h_t  H = 0;	// 0, ..., CAP
			assign	irdy = H <= PO0;
			assign	ovld = H >= PO0;

			always_ff @(posedge clk) begin
				if(rst)  H <= 0;
				else begin
					automatic h_t  h = H;
					if(otrn) begin
						for(int unsigned  j = 0; j + PO0 < CAP; j++)  Buf[j] <= Buf[j + PO0];
						h -= PO0;
					end
					if(itrn) begin
						for(int unsigned  i = 0; i < PI0; i++)  Buf[h + i] <= idat[i*GCD +: GCD];
						h += PI0;
					end
					H <= h;
				end
			end

			assign	odat_raw = Buf[0:PO0-1];
			assign	olast_beat = 0;
		end : genStream
		else begin : genFinn
`endif
"""


def _patch_vpc(text: str) -> str:
    """vpc.sv (dwc_axi's core): the generic width conversion as a plain element queue
    under Verilator, in the case dwc_axi instantiates (_VPC_STREAM)."""
    what = "dwc/hdl/vpc.sv"
    text = _recode_define(text, "\nmodule vpc #(", what)
    text = _replace_once(text, "\telse begin : genGeneric\n", "\telse begin : genGeneric\n" + _VPC_STREAM, what)
    return _replace_once(text, "\tend : genGeneric\n",
                         "`ifdef QNNFLOW_SIM_RECODE\n\t\tend : genFinn\n`endif\n\tend : genGeneric\n", what)


PATCHES = {
    "add_multi.sv": _patch_add_multi,
    "fifo.sv": lambda text: _patch_fifo_srl(_patch_fifo(text)),
    "mvu.sv": _patch_mvu,
    "memstream_axi.sv": _patch_memstream_axi,
    "memstream.sv": _patch_memstream,
    "thresholding.sv": _patch_thresholding,
    "vpc.sv": _patch_vpc,
}

# finn-rtllib folders to prefer when a file name is ambiguous, by op type prefix
_HINTS = {
    "MVAU": ["mvu", "mvu_tiled", "skid", "memstream/hdl", "axi/hdl"],
    "VVAU": ["mvu", "mvu_tiled", "skid", "memstream/hdl", "axi/hdl"],
    "Thresholding": ["thresholding/hdl", "axi/hdl"],
    "StreamingFIFO": ["fifo/hdl"],
    "StreamingDataWidthConverter": ["dwc/hdl"],
    "ConvolutionInputGenerator": ["swg"],
    "FMPadding": ["fmpadding/hdl"],
}


# ---------------------------------------------------------------------------------

@dataclass
class StreamInfo:
    """One end of the accelerator: how words are packed."""
    width: int              # padded TDATA width in bits
    dtype: str              # FINN/qonnx datatype name of each element
    elem_bits: int          # bits per element in the word
    folded_shape: tuple     # FINN folded shape for one image (leading 1)
    normal_shape: tuple     # FINN normal shape for one image (leading 1)

    @property
    def word_bytes(self) -> int:
        return (self.width + 7) // 8

    @property
    def words_per_image(self) -> int:
        n = 1
        for d in self.folded_shape[:-1]:
            n *= int(d)
        return n

    @property
    def elems_per_word(self) -> int:
        return int(self.folded_shape[-1])


@dataclass
class StitchedDesign:
    rtl_dir: Path
    sources: list[str]                 # compile order, relative to rtl_dir
    memory_files: list[str]            # relative to rtl_dir
    input: StreamInfo
    output: StreamInfo
    layers: list[str]                  # node names, stream order
    fifos: list[str]                   # FIFO node names, order of fifo_maxcount
    fifo_depths: dict[str, int]
    estimated_cycles: dict[str, int] = field(default_factory=dict)
    patched: list[str] = field(default_factory=list)
    top: str = TOP

    def source_hash(self) -> str:
        """Content hash of every source the simulator is compiled from (memory files
        excluded: they are read at simulation start, so they need no rebuild)."""
        h = hashlib.sha256()
        for rel in self.sources:
            h.update(rel.encode() + b"\0")
            h.update((self.rtl_dir / rel).read_bytes() + b"\0")
        h.update(f"fifos={len(self.fifos)}".encode())
        return h.hexdigest()


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r"\(\*.*?\*\)", " ", text, flags=re.S)  # (* attributes *)


def _balanced(text: str, i: int) -> int:
    """Index just past the parenthesis group opening at text[i] == '('."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError("unbalanced parentheses")


def _split_top(text: str) -> list[str]:
    """Split on commas outside (), [] and {}."""
    items, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur))
    return [x for x in items if x.strip()]


def _module_header(path: Path, module: str) -> tuple[str, str]:
    """(parameter list, port list) texts of an ANSI-style module declaration."""
    text = _strip_comments(path.read_text())
    m = re.search(rf"\bmodule\s+{re.escape(module)}\b\s*", text)
    if not m:
        raise HwError(f"module {module} not found in {path}; regenerate the layer's RTL (PrepareIP)")
    i, params = m.end(), ""
    try:
        if text.startswith("#", i):
            j = text.index("(", i)
            k = _balanced(text, j)
            params, i = text[j + 1:k - 1], k
        j = text.index("(", i)
        ports = text[j + 1:_balanced(text, j) - 1]
    except ValueError:
        raise HwError(f"cannot parse the header of module {module} in {path}") from None
    return params, ports


def module_ports(path: Path, module: str) -> dict[str, str]:
    """Port name -> direction ('input'/'output'/'inout') of `module` in a Verilog file."""
    _, ports = _module_header(path, module)
    out, direction = {}, None
    for item in _split_top(ports):
        m = re.match(r"\s*(input|output|inout)\b(.*)", item, re.S)
        rest = item
        if m:
            direction, rest = m.group(1), m.group(2)
        names = re.findall(r"[A-Za-z_]\w*", re.sub(r"\[[^\]]*\]", " ", rest))
        if direction is None or not names:
            raise HwError(f"cannot parse port {item.strip()!r} of module {module} in {path}")
        out[names[-1]] = direction
    return out


def _module_params(path: Path, module: str) -> set[str]:
    params, _ = _module_header(path, module)
    return {re.findall(r"[A-Za-z_]\w*", item.split("=")[0])[-1]
            for item in _split_top(params) if "=" in item}


class _Sources:
    """Collects RTL files into rtl_dir (flat), applying the Verilator fixes."""

    def __init__(self, rtl_dir: Path):
        self.rtl_dir = rtl_dir
        self.order: list[str] = []
        self.origin: dict[str, Path] = {}
        self.patched: list[str] = []
        self._index: dict[str, list[Path]] | None = None

    def index(self) -> dict[str, list[Path]]:
        if self._index is None:
            idx: dict[str, list[Path]] = {}
            for p in finn_rtllib().rglob("*"):
                if p.suffix in RTL_EXTS and not ({"sim", "tb", "test", "tests"} & set(p.parts)) \
                        and not p.stem.endswith("_tb"):
                    idx.setdefault(p.name, []).append(p)
            self._index = idx
        return self._index

    def resolve(self, name: str, code_gen_dir: Path, hints: list[str]) -> Path:
        local = code_gen_dir / name
        if local.is_file():
            return local
        parts = tuple(x for x in Path(name).parts if x not in ("..", "."))
        cands = self.index().get(parts[-1], [])
        if len(cands) > 1 and len(parts) > 1:
            cands = [c for c in cands if c.parts[-len(parts):] == parts] or cands
        if len(cands) > 1:
            root = finn_rtllib()
            for h in hints:
                pick = [c for c in cands if c.parent == root / h]
                if len(pick) == 1:
                    return pick[0]
        if len(cands) == 1:
            return cands[0]
        where = "found in several places" if cands else "not found"
        raise HwError(f"RTL file {name} {where} in {code_gen_dir} or {finn_rtllib()}; "
                      "check the FINN installation (finn-plus) and regenerate the layer (PrepareIP)")

    def add(self, src: Path) -> str:
        name = src.name
        if name in self.origin:
            if self.origin[name] != src and self.origin[name].read_bytes() != src.read_bytes():
                raise HwError(f"two different RTL files are both named {name} ({self.origin[name]}, {src}); "
                              "hw.stitch copies sources into one folder and cannot hold both")
            return name
        text = src.read_text()
        if name.endswith("_memstream_wrapper.v"):
            text = _blank_init_file(text)
        if name in PATCHES:
            text = PATCHES[name](text)
            self.patched.append(name)
        _write_if_changed(self.rtl_dir / name, text)
        self.origin[name] = src
        self.order.append(name)
        return name


def _write_if_changed(path: Path, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _attr(inst, name, default=None):
    try:
        return inst.get_nodeattr(name)
    except Exception:  # noqa: BLE001 - qonnx raises AttributeError for attributes an op lacks
        return default


def _op_family(op_type: str) -> str:
    return op_type.rsplit("_", 1)[0]


def load_model(model):
    from qonnx.core.modelwrapper import ModelWrapper

    from .ops import register

    register()  # a graph may hold qnnflow's own RTL layers

    if isinstance(model, (str, Path)):
        p = Path(model)
        if not p.is_file():
            raise HwError(f"model {p} does not exist; give a HW-layer ONNX file from a qnnflow build")
        return ModelWrapper(str(p))
    return model


def stream_order(model) -> list:
    """The HW graph's nodes in an order where every stream's producer precedes its readers
    (the graph's own order where that holds, as FINN writes it), after checking that the
    graph is a stream graph: one input, one output, every streamed tensor written by one
    node and read by exactly one (a fork is a DuplicateStreams layer)."""
    nodes = list(model.graph.node)
    if not nodes:
        raise HwError("the HW graph has no nodes; build a model first (qnnflow build)")
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise HwError(f"hw.stitch supports one input and one output stream, the graph has "
                      f"{len(model.graph.input)} and {len(model.graph.output)}")
    not_rtl = [f"{n.name} ({n.op_type})" for n in nodes if not n.op_type.endswith("_rtl")]
    if not_rtl:
        raise HwError(f"layer(s) without RTL: {', '.join(not_rtl)}; Verilator simulation needs RTL layers "
                      "(prefer RTL when specializing, or add an RTL core under hw/rtl/)")
    g_in, g_out = model.graph.input[0].name, model.graph.output[0].name
    producer: dict[str, object] = {}
    readers: dict[str, list] = {}
    for n in nodes:
        for t in n.output:
            producer[t] = n
        for t in stream_inputs(model, n):
            readers.setdefault(t, []).append(n)
    for t, rs in readers.items():
        if len(rs) > 1:
            raise HwError(f"tensor {t} is read by {len(rs)} layers ({', '.join(r.name for r in rs)}); a stream has "
                          "one reader: fork it with DuplicateStreams (FINN's InferDuplicateStreamsLayer)")
        if t != g_in and t not in producer:
            raise HwError(f"{rs[0].name} reads {t}, which no layer writes and which is not the graph input")
    for t, n in producer.items():
        if t != g_out and t not in readers:
            raise HwError(f"output {t} of {n.name} is read by no layer; hw.stitch needs every stream consumed")
    if g_out not in producer:
        raise HwError(f"no layer writes the graph output {g_out}")
    if g_in not in readers:
        raise HwError(f"no layer reads the graph input {g_in}")
    order, ready, remaining = [], {g_in}, list(nodes)
    while remaining:
        n = next((n for n in remaining if all(t in ready for t in stream_inputs(model, n))), None)
        if n is None:
            raise HwError(f"the HW graph has a cycle through {', '.join(r.name for r in remaining)}; "
                          "hw.stitch connects acyclic stream graphs")
        order.append(n)
        remaining.remove(n)
        ready.update(n.output)
    return order


def stream_inputs(model, node) -> list[str]:
    """The node's streamed inputs (in0_V, in1_V, ...): its inputs that are no initializer."""
    return [t for t in node.input if t and model.get_initializer(t) is None]


def stitch(model, rtl_dir: Path, *, codegen_fallback: Path | None = None) -> StitchedDesign:
    """Write `qnnflow_top` for a FINN HW graph (ModelWrapper or ONNX path) into rtl_dir.

    The graph may fork (DuplicateStreams) and join (layers with several streamed inputs):
    each streamed tensor is one AXI stream wire from its producer's out{k}_V to its
    reader's in{j}_V, k and j its positions among the producer's outputs and the reader's
    streamed inputs; widths are checked per edge.

    codegen_fallback: a build's own code generation folder (<build>/codegen). A node's
    folder of the same name there is used before the absolute path stored in the graph,
    so a moved or copied build is stitched from its own files, never from the original's."""
    from qonnx.custom_op.registry import getCustomOp

    model = load_model(model)
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    (rtl_dir / "mem").mkdir(exist_ok=True)
    order = stream_order(model)

    srcs = _Sources(rtl_dir)
    lines_inst: list[str] = []
    lines_wire: list[str] = []
    memory_files: list[str] = []
    fifos: list[str] = []
    fifo_depths: dict[str, int] = {}
    estimated: dict[str, int] = {}

    insts = [getCustomOp(n) for n in order]
    g_in, g_out = model.graph.input[0].name, model.graph.output[0].name
    # wire names: the graph input s0, output k of the i-th node s<i+1> (k = 0) or s<i+1>_<k>
    wire = {g_in: "s0"}
    width: dict[str, int] = {g_in: int(insts[0].get_instream_width_padded(stream_inputs(model, order[0]).index(g_in)))}
    for i, (n, inst) in enumerate(zip(order, insts)):
        for j, t in enumerate(stream_inputs(model, n)):
            iw = int(inst.get_instream_width_padded(j))
            if iw != width[t]:
                src = next((m.name for m in order if t in m.output), "the graph input")
                raise HwError(f"stream width mismatch {src} -> {n.name} ({width[t]} vs {iw} bits); "
                              "insert FINN's width converters and FIFOs first (flow step insert_fifos)")
        for k, t in enumerate(n.output):
            wire[t] = f"s{i + 1}" if k == 0 else f"s{i + 1}_{k}"
            width[t] = int(inst.get_outstream_width_padded(k))
    out_wire = wire[g_out]
    in_node = next(i for i, n in enumerate(order) if g_in in stream_inputs(model, n))
    out_node = next(i for i, n in enumerate(order) if g_out in n.output)

    for i, (n, inst) in enumerate(zip(order, insts)):
        fam = _op_family(n.op_type)
        top_mod = _attr(inst, "gen_top_module") or n.name
        cgd_attr = str(_attr(inst, "code_gen_dir_ipgen") or "")
        cgd = Path(cgd_attr)
        if cgd_attr and codegen_fallback is not None and (Path(codegen_fallback) / cgd.name).is_dir():
            cgd = Path(codegen_fallback) / cgd.name
        if not cgd_attr or not cgd.is_dir():
            raise HwError(f"{n.name} has no generated RTL (code_gen_dir_ipgen {cgd_attr or 'unset'}); "
                          "run FINN's PrepareIP (flow steps hw_codegen / insert_fifos)")
        try:
            estimated[n.name] = int(inst.get_exp_cycles())
        except Exception:  # noqa: BLE001 - an estimate is optional
            pass
        if _attr(inst, "pumpedCompute", 0) or _attr(inst, "pumpedMemory", 0):
            raise HwError(f"{n.name} uses a double-pumped clock (ap_clk2x); hw.stitch drives one clock: "
                          "set pumpedCompute/pumpedMemory to 0")
        hints = _HINTS.get(fam.split("_")[0], [])
        try:
            names = inst.get_rtl_file_list(abspath=False)
        except Exception as exc:  # noqa: BLE001
            raise HwError(f"cannot list the RTL files of {n.name} ({n.op_type}): {exc}") from None
        node_files = [srcs.resolve(str(x), cgd, hints) for x in names]
        decoupled = fam in ("MVAU", "VVAU") and _attr(inst, "mem_mode") == "internal_decoupled"
        if fam in ("MVAU", "VVAU") and not decoupled:
            raise HwError(f"{n.name} has mem_mode={_attr(inst, 'mem_mode')}; hw.stitch streams RTL weights "
                          "from FINN's memstream: set mem_mode internal_decoupled")
        if decoupled:
            wrapper = cgd / f"{top_mod}_memstream_wrapper.v"
            if not wrapper.is_file():
                raise HwError(f"{wrapper} is missing; regenerate {n.name} (PrepareIP)")
            node_files += [srcs.resolve(x, cgd, ["memstream/hdl", "axi/hdl"])
                           for x in ("axilite.sv", "memstream_axi.sv", "memstream.sv")] + [wrapper]
        top_file = None
        for f in node_files:
            srcs.add(f)
            if f.parent == cgd and top_file is None and f.suffix == ".v" and \
                    re.search(rf"\bmodule\s+{re.escape(top_mod)}\b", f.read_text()):
                top_file = f
        if top_file is None:
            raise HwError(f"module {top_mod} of {n.name} not found in {cgd}; regenerate it (PrepareIP)")

        # memory files: flat under mem/, prefixed with the module name
        mem_map: dict[str, str] = {}
        for f in sorted(cgd.glob("*.dat")):
            dst = f.name if f.name.startswith(top_mod + "_") else f"{top_mod}_{f.name}"
            _write_if_changed(rtl_dir / "mem" / dst, f.read_bytes())
            memory_files.append(f"mem/{dst}")
            mem_map[f.name] = f"mem/{dst}"

        ports = module_ports(top_file, top_mod)
        params = _module_params(top_file, top_mod)
        overrides = []
        if "THRESHOLDS_PATH" in params:
            overrides.append(f'.THRESHOLDS_PATH("mem/{top_mod}_")')
        if "MEM_PATH" in params:  # qnnflow's own cores (hw/ops/base.py)
            overrides.append(f'.MEM_PATH("mem/{top_mod}_")')
        ins, outs = stream_inputs(model, n), list(n.output)
        conns = []
        for port, direction in ports.items():
            c = None
            m = re.match(r"(in|out)(\d+)_V_", port)
            if port == "ap_clk":
                c = "ap_clk"
            elif port == "ap_clk2x":
                c = "ap_clk"
            elif port == "ap_rst_n":
                c = "ap_rst_n"
            elif m and int(m.group(2)) < len(ins if m.group(1) == "in" else outs):
                t = (ins if m.group(1) == "in" else outs)[int(m.group(2))]
                c = f"{wire[t]}_{port.split('_')[-1].lower()}"
            elif port.startswith("in1_V_") and decoupled:
                c = f"w{i}_{port.split('_')[-1].lower()}"
            elif port.startswith("in1_V_") or port.startswith("s_axilite_"):
                c = "'0" if direction == "input" else ""
            elif port == "maxcount" and fam == "StreamingFIFO":
                c = f"fifo_maxcount[{32 * len(fifos) + 31}:{32 * len(fifos)}]"
            elif direction == "output":
                c = ""
            else:
                raise HwError(f"unknown input port {port} on {top_mod} ({n.op_type}); "
                              "hw.stitch does not know how to drive it")
            conns.append(f"\t\t.{port}({c})")
        if fam == "StreamingFIFO":
            fifos.append(n.name)
            fifo_depths[n.name] = int(_attr(inst, "depth", 0))
        if decoupled:
            ww = int(inst.get_instream_width_padded(1))
            lines_wire.append(f"\twire [{ww - 1}:0] w{i}_tdata;\n\twire w{i}_tvalid, w{i}_tready;")
            init = mem_map.get("memblock.dat")
            if init is None:
                raise HwError(f"{cgd}/memblock.dat is missing; regenerate {n.name} (PrepareIP)")
            wports = module_ports(wrapper, f"{top_mod}_memstream_wrapper")
            wconns = []
            for port, direction in wports.items():
                if port in ("ap_clk", "ap_clk2x"):
                    c = "ap_clk"
                elif port == "ap_rst_n":
                    c = "ap_rst_n"
                elif port.startswith("m_axis_0_"):
                    c = f"w{i}_{port.split('_')[-1].lower()}"
                elif direction == "input":
                    c = "'0"
                else:
                    c = ""
                wconns.append(f"\t\t.{port}({c})")
            lines_inst.append(f"\t// weights of {n.name}, streamed from {init}\n"
                              f"\t{top_mod}_memstream_wrapper #(.INIT_FILE(\"{init}\")) {n.name}_wstrm (\n"
                              + ",\n".join(wconns) + "\n\t);")
        ov = f" #({', '.join(overrides)})" if overrides else ""
        lines_inst.append(f"\t// {n.name}: {n.op_type}\n\t{top_mod}{ov} {n.name}_i (\n" + ",\n".join(conns) + "\n\t);")

    for t, w in wire.items():
        if t not in (g_in, g_out):
            lines_wire.append(f"\twire [{width[t] - 1}:0] {w}_tdata;\n\twire {w}_tvalid, {w}_tready;")
    w_in, w_out = width[g_in], width[g_out]
    forks = sum(len(n.output) > 1 for n in order)
    joins = sum(len(stream_inputs(model, n)) > 1 for n in order)
    shape = "" if not (forks or joins) else f" (a graph: {forks} fork(s), {joins} join(s))"
    nf = max(1, len(fifos))
    zero_fifos = "" if fifos else "\tassign fifo_maxcount = '0;\n"
    header = f"""// Generated by qnnflow hw/stitch.py; do not edit (it is rewritten on every simulation).
// {len(order)} stream nodes{shape}: {' -> '.join(n.name for n in order)}
module {TOP} (
	input ap_clk,
	input ap_rst_n,
	input [{w_in - 1}:0] s_axis_tdata,
	input s_axis_tvalid,
	output s_axis_tready,
	output [{w_out - 1}:0] m_axis_tdata,
	output m_axis_tvalid,
	input m_axis_tready,
	output [{32 * nf - 1}:0] fifo_maxcount  // 32 bits per StreamingFIFO, graph order
);
	wire [{w_in - 1}:0] s0_tdata = s_axis_tdata;
	wire s0_tvalid = s_axis_tvalid;
	wire s0_tready;
	assign s_axis_tready = s0_tready;
	wire [{w_out - 1}:0] {out_wire}_tdata;
	wire {out_wire}_tvalid;
	wire {out_wire}_tready = m_axis_tready;
	assign m_axis_tdata = {out_wire}_tdata;
	assign m_axis_tvalid = {out_wire}_tvalid;
{zero_fifos}"""
    text = header + "\n".join(lines_wire) + "\n\n" + "\n\n".join(lines_inst) + f"\n\nendmodule // {TOP}\n"
    _write_if_changed(rtl_dir / f"{TOP}.v", text)

    order_src = sorted(srcs.order, key=lambda s: 0 if s.endswith("_pkg.sv") else 1) + [f"{TOP}.v"]
    _write_if_changed(rtl_dir / "files.f", "\n".join(order_src) + "\n")

    def stream(inst, first: bool) -> StreamInfo:
        dt = inst.get_input_datatype() if first else inst.get_output_datatype()
        fs = inst.get_folded_input_shape() if first else inst.get_folded_output_shape()
        ns = inst.get_normal_input_shape() if first else inst.get_normal_output_shape()
        return StreamInfo(width=w_in if first else w_out, dtype=dt.name, elem_bits=int(dt.bitwidth()),
                          folded_shape=tuple(int(x) for x in fs), normal_shape=tuple(int(x) for x in ns))

    return StitchedDesign(rtl_dir=rtl_dir, sources=order_src, memory_files=memory_files,
                          input=stream(insts[in_node], True), output=stream(insts[out_node], False),
                          layers=[n.name for n in order], fifos=fifos, fifo_depths=fifo_depths,
                          estimated_cycles=estimated, patched=srcs.patched)
