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
