// qnnflow: label select (top-K) over a stream of class scores.
//
// Per image: LABELS scores arrive in LABELS/PE beats of PE elements (element 0 in the
// least significant bits, FINN's packing). The K labels with the largest scores leave as
// K beats, one index each, largest first; equal scores keep the lower index first (the
// order of ONNX TopK and of FINN's LabelSelect). Each element is inserted into a sorted
// list of K entries in one cycle, so an image takes LABELS + K + 1 cycles; the input is
// held off (in0_V_TREADY low) while a beat's elements are inserted or the result leaves.
module qnn_label_select #(
	int unsigned LABELS = 10,
	int unsigned PE = 1,
	int unsigned K = 1,
	int unsigned IBITS = 8,   // bits per score
	bit          SIGNED = 1,  // scores are two's complement
	int unsigned OBITS = 8,   // output word width (>= $clog2(LABELS), byte aligned by the wrapper)
	int unsigned IWIDTH = PE * IBITS
)(
	input  logic  clk,
	input  logic  rst_n,

	input  logic [IWIDTH-1:0]  s_tdata,
	input  logic  s_tvalid,
	output logic  s_tready,

	output logic [OBITS-1:0]  m_tdata,
	output logic  m_tvalid,
	input  logic  m_tready
);
	localparam int unsigned IDX_BITS = LABELS > 1 ? $clog2(LABELS) : 1;
	localparam int unsigned PE_BITS = PE > 1 ? $clog2(PE) : 1;
	localparam int unsigned K_BITS = K > 1 ? $clog2(K) : 1;

	typedef logic [IBITS:0] score_t;  // one extra bit: unsigned scores compare as signed
	typedef logic [IDX_BITS-1:0] idx_t;

	// sorted list, entry 0 the largest
	score_t  val[K];
	idx_t    idx[K];
	logic [K-1:0]  filled;

	logic [IWIDTH-1:0]  beat;
	logic  busy;                  // a beat is being inserted
	logic [PE_BITS-1:0]  lane;    // its element being inserted
	idx_t  label;                 // index of that element
	logic  emitting;              // the result is leaving
	logic [K_BITS-1:0]  out_pos;

	function automatic score_t extend(logic [IBITS-1:0] x);
		return SIGNED ? score_t'({x[IBITS-1], x}) : score_t'({1'b0, x});
	endfunction

	score_t  cand;
	assign cand = extend(beat[lane*IBITS +: IBITS]);

	// ahead[j]: the candidate goes before entry j (strictly larger, or j empty); monotonic in j
	logic [K-1:0]  ahead;
	always_comb begin
		for (int unsigned j = 0; j < K; j++)
			ahead[j] = !filled[j] || ($signed(cand) > $signed(val[j]));
	end

	// the next beat may enter while the last element of this one is inserted
	assign s_tready = !emitting && (!busy || (int'(lane) == PE - 1 && int'(label) != LABELS - 1));
	assign m_tvalid = emitting;
	assign m_tdata = OBITS'(idx[out_pos]);

	always_ff @(posedge clk) begin
		if (!rst_n) begin
			filled <= '0;
			busy <= 0;
			lane <= '0;
			label <= '0;
			emitting <= 0;
			out_pos <= '0;
		end else begin
			if (busy) begin
				for (int unsigned j = 0; j < K; j++) begin
					if (ahead[j]) begin
						if (j == 0 || !ahead[j-1]) begin
							val[j] <= cand;
							idx[j] <= label;
						end else begin
							val[j] <= val[j-1];
							idx[j] <= idx[j-1];
						end
					end
				end
				filled <= K'({filled, 1'b1});  // one more entry holds a label
				if (int'(label) == LABELS - 1) begin
					busy <= 0;
					label <= '0;
					emitting <= 1;
					out_pos <= '0;
				end else begin
					label <= label + 1;
					if (int'(lane) == PE - 1)
						busy <= 0;
					else
						lane <= lane + 1;
				end
			end
			// after the insertion above: a beat taken while the last lane is inserted keeps busy
			if (s_tvalid && s_tready) begin
				beat <= s_tdata;
				busy <= 1;
				lane <= '0;
			end
			if (emitting && m_tready) begin
				if (int'(out_pos) == K - 1) begin
					emitting <= 0;
					filled <= '0;
				end else
					out_pos <= out_pos + 1;
			end
		end
	end
endmodule : qnn_label_select
