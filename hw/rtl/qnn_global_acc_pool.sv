// qnnflow: global accumulation pool (FINN's GlobalAccPool): per image, the sum of every
// channel over all PIXELS pixels, the integer half of a global average pool (the 1/PIXELS
// scale stays in the graph as a multiplication that FINN moves into the next layer).
//
// Input: PIXELS pixels, each CHANNELS/PE beats of PE elements (channel c of a pixel in beat
// c/PE, lane c%PE; element 0 in the least significant bits, FINN's packing). Output: the
// CHANNELS sums in CHANNELS/PE beats of PE elements of OBITS bits (FINN's output type,
// wide enough for PIXELS * the input's extreme). The sums of the last pixel's beat leave
// as that beat arrives (one register), so an image takes PIXELS * CHANNELS/PE cycles and
// the next image follows without a gap.
module qnn_global_acc_pool #(
	int unsigned CHANNELS = 8,
	int unsigned PE = 1,
	int unsigned PIXELS = 4,
	int unsigned IBITS = 4,
	bit          SIGNED = 0,
	int unsigned OBITS = 6,
	int unsigned FOLD = CHANNELS / PE
)(
	input  logic  clk,
	input  logic  rst_n,

	input  logic [PE*IBITS-1:0]  s_tdata,
	input  logic  s_tvalid,
	output logic  s_tready,

	output logic [PE*OBITS-1:0]  m_tdata,
	output logic  m_tvalid,
	input  logic  m_tready
);
	localparam int unsigned F_BITS = FOLD > 1 ? $clog2(FOLD) : 1;
	localparam int unsigned P_BITS = PIXELS > 1 ? $clog2(PIXELS) : 1;
	typedef logic [PE*OBITS-1:0]  sums_t;

	sums_t  acc[FOLD];  // running sums of the image's channels, one word per beat position
	logic [F_BITS-1:0]  f;  // beat within the pixel
	logic [P_BITS-1:0]  p;  // pixel
	logic  first, last;
	assign first = p == 0;
	assign last = int'(p) == PIXELS - 1;

	sums_t  sum;  // this beat's elements added to their channels' sums
	always_comb begin
		for (int unsigned i = 0; i < PE; i++) begin
			automatic logic [IBITS-1:0]  x = s_tdata[i*IBITS +: IBITS];
			automatic logic [OBITS-1:0]  e = SIGNED ? OBITS'($signed(x)) : OBITS'(x);
			sum[i*OBITS +: OBITS] = (first ? OBITS'(0) : acc[f][i*OBITS +: OBITS]) + e;
		end
	end

	logic  ov;
	sums_t  od;
	logic  take;
	assign s_tready = !last || !ov || m_tready;
	assign take = s_tvalid && s_tready;
	assign m_tvalid = ov;
	assign m_tdata = od;

	always_ff @(posedge clk) begin
		if (!rst_n) begin
			f <= '0;
			p <= '0;
			ov <= 0;
		end else begin
			if (ov && m_tready)
				ov <= 0;
			if (take) begin
				if (last) begin
					od <= sum;
					ov <= 1;
				end else
					acc[f] <= sum;
				if (int'(f) == FOLD - 1) begin
					f <= '0;
					p <= last ? '0 : p + 1;
				end else
					f <= f + 1;
			end
		end
	end
endmodule : qnn_global_acc_pool
