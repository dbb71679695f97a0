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
