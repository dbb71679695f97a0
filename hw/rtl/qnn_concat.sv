// qnnflow: concatenation of N streams along the channel axis (FINN's StreamingConcat).
//
// Per pixel (vector), the output is FOLDS[0] beats taken from input 0, then FOLDS[1] beats
// from input 1, ..., each beat SIMD elements of EBITS bits (element 0 in the least
// significant bits, FINN's packing). Input k's elements arrive already extended to EBITS
// bits by the wrapper (by input k's own signedness), so the core only selects and forwards.
// One beat per cycle when the selected input holds one and the output register is free or
// being emptied; the inputs not being read wait (the FIFOs in front of a join absorb the
// difference of the paths).
//
// FOLDS is packed: bits [16*k +: 16] hold input k's beats per pixel (its channels / SIMD).
module qnn_concat #(
	int unsigned N = 2,
	int unsigned SIMD = 1,
	int unsigned EBITS = 4,
	logic [16*N-1:0] FOLDS = {16'd1, 16'd1},
	int unsigned W = SIMD * EBITS
)(
	input  logic  clk,
	input  logic  rst_n,

	input  logic [N*W-1:0]  s_tdata,   // input k in bits [k*W +: W]
	input  logic [N-1:0]  s_tvalid,
	output logic [N-1:0]  s_tready,

	output logic [W-1:0]  m_tdata,
	output logic  m_tvalid,
	input  logic  m_tready
);
	localparam int unsigned K_BITS = N > 1 ? $clog2(N) : 1;

	logic [K_BITS-1:0]  k;   // the input being read
	logic [15:0]  f;         // beats taken from it in this pixel
	logic [15:0]  folds_k;
	assign folds_k = FOLDS[16*k +: 16];

	logic  ov;
	logic [W-1:0]  od;
	logic  take;
	assign take = s_tvalid[k] && (!ov || m_tready);
	always_comb begin
		s_tready = '0;
		s_tready[k] = take;
	end
	assign m_tvalid = ov;
	assign m_tdata = od;

	always_ff @(posedge clk) begin
		if (!rst_n) begin
			k <= '0;
			f <= '0;
			ov <= 0;
		end else begin
			if (take) begin
				ov <= 1;
				od <= s_tdata[k*W +: W];
				if (f == folds_k - 16'd1) begin
					f <= '0;
					k <= int'(k) == N - 1 ? '0 : k + 1;
				end else
					f <= f + 1;
			end else if (m_tready)
				ov <= 0;
		end
	end
endmodule : qnn_concat
