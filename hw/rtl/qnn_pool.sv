// qnnflow: pooling over windows that a depthwise sliding-window generator streams in
// (FINN's Pool layer: MaxPool, QuantAvgPool, AccPool).
//
// FINN's depthwise ConvolutionInputGenerator sends, per output pixel and channel fold,
// the KERNEL (= KH*KW) window elements of PE channels as KERNEL consecutive beats
// (stream order OFM_H, OFM_W, CHANNELS/PE, KH, KW, PE; element 0 in the least
// significant bits). So the core needs neither the channel count nor the image size:
// every KERNEL input beats reduce, lane by lane, to one output beat of PE elements.
//
// One input beat is taken per cycle (FINN's get_exp_cycles: CHANNELS*KERNEL/PE beats
// per output pixel). The reduced beat is registered on the window's last input beat;
// the input is held off only when that last beat arrives while the previous result is
// still waiting downstream, so with a ready consumer there is no bubble, also for
// KERNEL = 1.
module qnn_pool #(
	int unsigned PE = 1,
	int unsigned KERNEL = 4,  // window elements (KH*KW): input beats per output beat
	int unsigned IBITS = 4,   // bits per input element
	bit          SIGNED = 0,  // elements are two's complement (BIPOLAR's 0/1 code is not: its order is unsigned)
	bit          ACCUMULATE = 0,  // 0: maximum; 1: sum shifted right by SHIFT (floor, as HLS and intsim)
	int unsigned SHIFT = 0,   // QuantAvgPool's Size; 0 for AccPool
	int unsigned OBITS = IBITS,  // bits per output element (the sum >> SHIFT is truncated to it, as in HLS)
	int unsigned IWIDTH = PE * IBITS,
	int unsigned OWIDTH = PE * OBITS
)(
	input  logic  clk,
	input  logic  rst_n,

	input  logic [IWIDTH-1:0]  s_tdata,
	input  logic  s_tvalid,
	output logic  s_tready,

	output logic [OWIDTH-1:0]  m_tdata,
	output logic  m_tvalid,
	input  logic  m_tready
);
	// a sum of KERNEL elements needs $clog2(KERNEL) more bits than one element; a maximum none
	localparam int unsigned ABITS = ACCUMULATE ? IBITS + $clog2(KERNEL) : IBITS;
	localparam int unsigned CNT_BITS = KERNEL > 1 ? $clog2(KERNEL) : 1;
	typedef logic [ABITS-1:0] acc_t;

	initial begin
		if (ACCUMULATE && OBITS + SHIFT > ABITS)
			$error("qnn_pool: OBITS + SHIFT (%0d) exceeds the %0d-bit sum", OBITS + SHIFT, ABITS);
		if (!ACCUMULATE && (OBITS != IBITS || SHIFT != 0))
			$error("qnn_pool: max pooling keeps the input type (OBITS = IBITS, SHIFT = 0)");
	end

	logic [CNT_BITS-1:0]  cnt;  // window element the next input beat holds
	acc_t  acc[PE];             // per lane: reduction over the window's beats so far
	acc_t  nxt[PE];             // ... including the current input beat
	logic  first, last;
	assign first = cnt == 0;
	assign last = 32'(cnt) == KERNEL - 1;

	function automatic acc_t extend(logic [IBITS-1:0] x);
		return SIGNED ? acc_t'($signed(x)) : acc_t'(x);
	endfunction

	function automatic logic greater(acc_t a, acc_t b);
		return SIGNED ? $signed(a) > $signed(b) : a > b;
	endfunction

	function automatic logic [OBITS-1:0] result(acc_t a);
		// the bits above OBITS are dropped on purpose: FINN's output type says the result fits
		/* verilator lint_off UNUSEDSIGNAL */
		acc_t  shifted;
		/* verilator lint_on UNUSEDSIGNAL */
		shifted = SIGNED ? acc_t'($signed(a) >>> SHIFT) : a >> SHIFT;
		return shifted[OBITS-1:0];
	endfunction

	always_comb begin
		for (int unsigned i = 0; i < PE; i++) begin
			automatic acc_t  x = extend(s_tdata[i*IBITS +: IBITS]);
			if (first)
				nxt[i] = x;
			else if (ACCUMULATE)
				nxt[i] = acc[i] + x;
			else
				nxt[i] = greater(x, acc[i]) ? x : acc[i];
		end
	end

	assign s_tready = !last || !m_tvalid || m_tready;

	always_ff @(posedge clk) begin
		if (!rst_n) begin
			cnt <= '0;
			m_tvalid <= 0;
		end else begin
			if (m_tready)
				m_tvalid <= 0;
			if (s_tvalid && s_tready) begin
				if (last) begin
					cnt <= '0;
					m_tvalid <= 1;
				end else
					cnt <= cnt + 1;
			end
		end
	end

	// data registers need no reset: cnt and m_tvalid say when they hold something
	always_ff @(posedge clk) begin
		if (s_tvalid && s_tready) begin
			for (int unsigned i = 0; i < PE; i++) begin
				acc[i] <= nxt[i];
				if (last)
					m_tdata[i*OBITS +: OBITS] <= result(nxt[i]);
			end
		end
	end
endmodule : qnn_pool
