// qnnflow: duplicate one stream into N (FINN's DuplicateStreams), for forks in a graph.
//
// Every input word leaves on all N outputs; element order and packing are unchanged.
// An output that has taken the current word waits (its TVALID low) until every other
// output has taken it too, then the input word is released (s_tready). No buffering
// and no added latency: a word passes in the cycle it arrives when all outputs are ready,
// so the fork runs at one word per cycle. TVALID never depends on TREADY (AXI-Stream);
// s_tready depends on the outputs' TREADY, as a combinational fork does.
module qnn_dup_streams #(
	int unsigned N = 2,       // outputs
	int unsigned WIDTH = 8    // bits per word (PE elements)
)(
	input  logic  clk,
	input  logic  rst_n,

	input  logic [WIDTH-1:0]  s_tdata,
	input  logic  s_tvalid,
	output logic  s_tready,

	// output k in bits [k*WIDTH +: WIDTH], TVALID/TREADY bit k
	output logic [N*WIDTH-1:0]  m_tdata,
	output logic [N-1:0]  m_tvalid,
	input  logic [N-1:0]  m_tready
);
	logic [N-1:0]  taken;  // outputs that took the current input word already
	logic [N-1:0]  done;   // ... or take it in this cycle

	assign m_tvalid = {N{s_tvalid}} & ~taken;
	assign m_tdata = {N{s_tdata}};
	assign done = taken | (m_tvalid & m_tready);
	assign s_tready = &done;

	always_ff @(posedge clk) begin
		if (!rst_n)
			taken <= '0;
		else if (s_tvalid)
			taken <= s_tready ? '0 : done;
	end
endmodule : qnn_dup_streams
