// qnnflow: split of one stream into N along the channel axis (FINN's StreamingSplit), the
// inverse of qnn_concat.sv.
//
// Per pixel (vector), the first FOLDS[0] input beats go to output 0, the next FOLDS[1] to
// output 1, ..., each beat SIMD elements (FINN's packing; the core does not look inside).
// One output register: a beat is taken when the register is free or being emptied by the
// output it is meant for, so a busy output holds the input (and the other outputs) off,
// as FINN's StreamingSplit does; the FIFOs after a fork absorb the difference of the
// paths. One beat per cycle while the outputs read.
//
// FOLDS is packed: bits [16*k +: 16] hold output k's beats per pixel (its channels / SIMD).
module qnn_split #(
	int unsigned N = 2,
	int unsigned W = 8,                  // bits per beat
	logic [16*N-1:0] FOLDS = {16'd1, 16'd1}
)(
	input  logic  clk,
	input  logic  rst_n,

	input  logic [W-1:0]  s_tdata,
	input  logic  s_tvalid,
	output logic  s_tready,

	// output k in bits [k*W +: W], TVALID/TREADY bit k
	output logic [N*W-1:0]  m_tdata,
	output logic [N-1:0]  m_tvalid,
	input  logic [N-1:0]  m_tready
);
	localparam int unsigned K_BITS = N > 1 ? $clog2(N) : 1;

	logic [K_BITS-1:0]  k;    // the output the next input beat goes to
	logic [15:0]  f;          // beats sent to it in this pixel
	logic [15:0]  folds_k;
	assign folds_k = FOLDS[16*k +: 16];

	logic  ov;                // the register holds a beat ...
	logic [K_BITS-1:0]  ok;   // ... for this output
	logic [W-1:0]  od;
	logic  drain;
	assign drain = ov && m_tready[ok];
	assign s_tready = !ov || drain;
	assign m_tdata = {N{od}};
	always_comb begin
		m_tvalid = '0;
		m_tvalid[ok] = ov;
	end

	always_ff @(posedge clk) begin
		if (!rst_n) begin
			k <= '0;
			f <= '0;
			ok <= '0;
			ov <= 0;
		end else if (s_tvalid && s_tready) begin
			ov <= 1;
			od <= s_tdata;
			ok <= k;
			if (f == folds_k - 16'd1) begin
				f <= '0;
				k <= int'(k) == N - 1 ? '0 : k + 1;
			end else
				f <= f + 1;
		end else if (drain)
			ov <= 0;
	end
endmodule : qnn_split
