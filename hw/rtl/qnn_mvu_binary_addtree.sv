// qnnflow: the adder tree of qnn_mvu_binary.sv.
//
// Sum of N W-bit terms (two's complement if SIGNED) as a balanced tree of two halves, so
// the depth is log2(N) adders and every adder is only as wide as its partial sum.
//
// Partial sums of KMIN bits or more are kept (keep attribute) as the outputs of separate
// adders, which synthesis maps onto carry chains (one LUT per sum bit). Without it Yosys
// merges the whole tree into one multi-operand sum built from full adders (two LUTs per
// bit); for narrow sums (the first levels of a popcount) that merged form is smaller.
module qnn_mvu_binary_addtree #(
	int unsigned N = 2,
	int unsigned W = 1,
	bit          SIGNED = 0,
	int unsigned KMIN = 6,
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
		qnn_mvu_binary_addtree #(.N(NA), .W(W), .SIGNED(SIGNED), .KMIN(KMIN)) lo (.terms(terms[NA*W-1:0]), .sum(a));
		qnn_mvu_binary_addtree #(.N(NB), .W(W), .SIGNED(SIGNED), .KMIN(KMIN)) hi (.terms(terms[N*W-1:NA*W]), .sum(b));
		logic [OW-1:0]  s;
		if (SIGNED) begin : gen_signed
			assign s = OW'($signed(a)) + OW'($signed(b));
		end : gen_signed
		else begin : gen_unsigned
			assign s = OW'(a) + OW'(b);
		end : gen_unsigned
		if (OW >= KMIN) begin : gen_keep
			(* keep *) logic [OW-1:0]  k;
			assign k = s;
			assign sum = k;
		end : gen_keep
		else begin : gen_merge
			assign sum = s;
		end : gen_merge
	end : gen_split
endmodule : qnn_mvu_binary_addtree
