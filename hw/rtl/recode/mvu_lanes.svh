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
