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
