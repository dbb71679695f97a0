// qnnflow: add two streams element by element (FINN's ElementwiseAdd of two streamed
// inputs), the join of a residual connection.
//
// Each beat holds PE elements per input (element 0 in the least significant bits, FINN's
// packing); output lane i is a[i] + b[i], each operand sign- or zero-extended by its own
// type, in OBITS bits (FINN's inferred output type, wide enough for every sum). A beat is
// taken when both inputs hold one and the output register is free or being emptied, so
// the join runs at one beat per cycle with one cycle of latency. Either input waits for
// the other: the FIFOs in front of a join absorb the difference of the two paths.
module qnn_add_streams #(
	int unsigned PE = 1,
	int unsigned ABITS = 4,  // bits per element of input 0
	bit          ASIGNED = 0,
	int unsigned BBITS = 4,  // bits per element of input 1
	bit          BSIGNED = 0,
	int unsigned OBITS = 5   // bits per output element
)(
	input  logic  clk,
	input  logic  rst_n,

	input  logic [PE*ABITS-1:0]  s0_tdata,
	input  logic  s0_tvalid,
	output logic  s0_tready,

	input  logic [PE*BBITS-1:0]  s1_tdata,
	input  logic  s1_tvalid,
	output logic  s1_tready,

	output logic [PE*OBITS-1:0]  m_tdata,
	output logic  m_tvalid,
	input  logic  m_tready
);
	// one bit above every operand and the result: extension and sum never wrap
	localparam int unsigned W = 1 + (OBITS > ABITS ? (OBITS > BBITS ? OBITS : BBITS)
	                                               : (ABITS > BBITS ? ABITS : BBITS));
	typedef logic signed [W-1:0]  wide_t;

	function automatic wide_t extend(logic [31:0] x, int unsigned bits, bit sgn);
		wide_t  r;
		for (int unsigned j = 0; j < W; j++)
			r[j] = j < bits ? x[j] : (sgn ? x[bits-1] : 1'b0);
		return r;
	endfunction

	logic [PE*OBITS-1:0]  sum;
	always_comb begin
		for (int unsigned i = 0; i < PE; i++) begin
			automatic wide_t  a = extend(32'(s0_tdata[i*ABITS +: ABITS]), ABITS, ASIGNED);
			automatic wide_t  b = extend(32'(s1_tdata[i*BBITS +: BBITS]), BBITS, BSIGNED);
			automatic wide_t  s = a + b;
			sum[i*OBITS +: OBITS] = s[OBITS-1:0];
		end
	end

	logic  ov;
	logic [PE*OBITS-1:0]  od;
	logic  take;
	assign take = s0_tvalid && s1_tvalid && (!ov || m_tready);
	assign s0_tready = take;
	assign s1_tready = take;
	assign m_tvalid = ov;
	assign m_tdata = od;

	always_ff @(posedge clk) begin
		if (!rst_n)
			ov <= 0;
		else if (take) begin
			ov <= 1;
			od <= sum;
		end else if (m_tready)
			ov <= 0;
	end
endmodule : qnn_add_streams
