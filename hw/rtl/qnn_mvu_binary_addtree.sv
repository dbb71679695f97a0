// qnnflow: the adder tree of qnn_mvu_binary.sv.
//
// Sum of N W-bit terms (two's complement if SIGNED) as a balanced tree of two halves, so
// the depth is log2(N) adders and every adder is only as wide as its partial sum.
module qnn_mvu_binary_addtree #(
	int unsigned N = 2,
	int unsigned W = 1,
	bit          SIGNED = 0,
	int unsigned OW = W + (N > 1 ? $clog2(N) : 0)
)(
	input  logic [N*W-1:0]  terms,
	output logic [OW-1:0]  sum
);
	if (N == 1) begin : gen_leaf
		assign sum = terms;
	end : gen_leaf
	else begin : gen_split
		localparam int unsigned NA = (N + 1) / 2;
		localparam int unsigned NB = N - NA;
		localparam int unsigned OWA = W + (NA > 1 ? $clog2(NA) : 0);
		localparam int unsigned OWB = W + (NB > 1 ? $clog2(NB) : 0);
		logic [OWA-1:0]  a;
		logic [OWB-1:0]  b;
		qnn_mvu_binary_addtree #(.N(NA), .W(W), .SIGNED(SIGNED)) lo (.terms(terms[NA*W-1:0]), .sum(a));
		qnn_mvu_binary_addtree #(.N(NB), .W(W), .SIGNED(SIGNED)) hi (.terms(terms[N*W-1:NA*W]), .sum(b));
		if (SIGNED) begin : gen_signed
			assign sum = OW'($signed(a)) + OW'($signed(b));
		end : gen_signed
		else begin : gen_unsigned
			assign sum = OW'(a) + OW'(b);
		end : gen_unsigned
	end : gen_split
endmodule : qnn_mvu_binary_addtree
