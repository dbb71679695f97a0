// qnnflow: binary matrix-vector unit, FINN's MVAU semantics for the layers FINN's RTL MVU
// refuses (1-bit weights), built from LUTs only: no multiplier, so no DSP.
//
// y = W x for an MH x MW matrix W, folded like FINN's MVAU: PE output channels in parallel,
// SIMD inputs per beat, SF = MW/SIMD beats per input vector, NF = MH/PE output beats.
// Two arithmetic modes:
//   XNOR = 1: inputs and weights are bits standing for -1 (0) and +1 (1); acc = number of
//             lanes where they agree (FINN's binaryXnorMode, and BIPOLAR x BIPOLAR);
//   XNOR = 0: weights are -1 (0) / +1 (1), inputs IBITS-bit integers; acc = sum of +-x.
//             Lanes go in pairs (a, b): the four sums +-x_a +-x_b are formed once per beat
//             and shared by all PEs, so a PE spends one 4:1 selection per bit of a pair
//             and an adder tree over SIMD/2 terms, not an adder per lane.
//             TERNARY = 1: weights -1 / 0 / +1, each as two -1/+1 weights u, v with
//             w = (u + v) / 2 (+1: u = v = +1; 0: u = +1, v = -1; -1: u = v = -1), so a PE
//             selects from the same shared pair sums twice and its tree sums both halves:
//             U x + V x = 2 W x, halved exactly (the sum is even).
// Output: the accumulator (N_THR = 0), or #(acc >= T[c][j]) + ACT_VAL (embedded thresholds;
// a BIPOLAR output is the 0/1 count itself, which FINN packs as -1/+1).
//
// Timing: one (nf, sf) step per cycle, NF*SF cycles per vector, FINN's estimate. The input
// vector streams in during the nf = 0 pass (one beat per cycle) and is replayed from a
// buffer for the other NF-1 passes, so the input is held off (s_tready low) meanwhile.
//
// Memories ($readmemh, hex, one word per line):
//   WEIGHTS_FILE:    NF*SF words of PE*SIMD bits (TERNARY: 2*PE*SIMD); word nf*SF + sf, bit
//                    p*SIMD + s holds the weight of output channel nf*PE + p and input
//                    sf*SIMD + s (1 = +1); TERNARY: that bit is u (w >= 0), bit
//                    PE*SIMD + p*SIMD + s is v (w > 0);
//   THRESHOLDS_FILE: NF words of PE*N_THR*ACC_BITS bits; word nf, field p*N_THR + j holds
//                    threshold j of channel nf*PE + p (two's complement).
// Both are plain arrays read synchronously, so synthesis may map them to LUTRAM or BRAM.
module qnn_mvu_binary #(
	int unsigned MW = 16,
	int unsigned MH = 16,
	int unsigned PE = 1,
	int unsigned SIMD = 1,
	bit          XNOR = 1,
	int unsigned IBITS = 1,      // bits per input element (1 in XNOR mode)
	bit          ISIGNED = 0,    // inputs are two's complement (XNOR = 0 only)
	bit          TERNARY = 0,    // XNOR = 0 only: -1/0/+1 weights, two bits each (see above)
	// signed width holding every partial sum of a row and every threshold (the caller clips
	// thresholds to [acc min, acc max + 1], which keeps #(acc >= T) unchanged)
	int unsigned ACC_BITS = 8,
	int unsigned N_THR = 0,      // thresholds per channel; 0: the accumulator is the output
	int          ACT_VAL = 0,
	int unsigned OBITS = 8,      // bits per output element
	bit          WEIGHTS_BRAM = 0,   // 1: weights in block RAM (rom_style), 0: synthesis decides
	parameter    WEIGHTS_FILE = "",
	parameter    THRESHOLDS_FILE = "",
	int unsigned IWIDTH = SIMD * IBITS,
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
	localparam int unsigned SF = MW / SIMD;
	localparam int unsigned NF = MH / PE;
	localparam int unsigned WMEM = NF * SF;
	localparam int unsigned SF_BITS = SF > 1 ? $clog2(SF) : 1;
	localparam int unsigned NF_BITS = NF > 1 ? $clog2(NF) : 1;
	localparam int unsigned WA_BITS = WMEM > 1 ? $clog2(WMEM) : 1;
	// sum mode: lane pairs, each term +-x_a +-x_b (a lone last lane: +-x_a)
	localparam int unsigned NPAIR = (SIMD + 1) / 2;
	localparam int unsigned PAIR_BITS = IBITS + 2;
	localparam int unsigned PLANES = TERNARY && !XNOR ? 2 : 1;  // weight bits per weight
	localparam int unsigned WWIDTH = PLANES * PE * SIMD;
	localparam int unsigned TERMS = XNOR ? SIMD : PLANES * NPAIR;
	localparam int unsigned TERM_BITS = XNOR ? 1 : PAIR_BITS;
	localparam int unsigned PSUM_BITS = TERM_BITS + (TERMS > 1 ? $clog2(TERMS) : 0);
	localparam int unsigned CNT_BITS = N_THR > 0 ? $clog2(N_THR + 1) : 1;

	typedef logic signed [ACC_BITS-1:0] acc_t;

	// ---- issue: one (nf, sf) step per cycle -----------------------------------------
	// The whole pipeline moves together and stops only while the output register is full
	// and not read, so nothing can be lost and no ready signal needs a skid buffer.
	logic  en;
	assign en = !m_tvalid || m_tready;

	logic [SF_BITS-1:0]  sf;
	logic [NF_BITS-1:0]  nf;
	logic [WA_BITS-1:0]  waddr;
	logic  first_pass;
	assign first_pass = nf == '0;
	assign s_tready = en && first_pass;
	logic  issue;
	assign issue = en && (!first_pass || s_tvalid);

	always_ff @(posedge clk) begin
		if (!rst_n) begin
			sf <= '0;
			nf <= '0;
			waddr <= '0;
		end else if (issue) begin
			if (int'(sf) == SF - 1) begin
				sf <= '0;
				if (int'(nf) == NF - 1) begin
					nf <= '0;
					waddr <= '0;
				end else begin
					nf <= nf + 1;
					waddr <= waddr + 1;
				end
			end else begin
				sf <= sf + 1;
				waddr <= waddr + 1;
			end
		end
	end

	// ---- stage 1: weights and inputs ------------------------------------------------
	logic [WWIDTH-1:0]  w1;
	if (WEIGHTS_BRAM) begin : gen_wbram
		(* rom_style = "block", ram_style = "block" *) logic [WWIDTH-1:0]  wmem [WMEM];
		initial $readmemh(WEIGHTS_FILE, wmem);
		always_ff @(posedge clk) begin
			if (en)
				w1 <= wmem[waddr];
		end
	end : gen_wbram
	else begin : gen_wauto
		logic [WWIDTH-1:0]  wmem [WMEM];
		initial $readmemh(WEIGHTS_FILE, wmem);
		always_ff @(posedge clk) begin
			if (en)
				w1 <= wmem[waddr];
		end
	end : gen_wauto

	// this step's input beat: streamed during the nf = 0 pass, replayed after it
	logic [IWIDTH-1:0]  x0;
	if (NF > 1) begin : gen_replay
		logic [IWIDTH-1:0]  ibuf [SF];
		always_ff @(posedge clk) begin
			if (issue && first_pass)
				ibuf[sf] <= s_tdata;
		end
		assign x0 = first_pass ? s_tdata : ibuf[sf];
	end : gen_replay
	else begin : gen_stream
		assign x0 = s_tdata;
	end : gen_stream

	logic  v1, first1, last1;
	logic [NF_BITS-1:0]  nf1;
	always_ff @(posedge clk) begin
		if (en) begin
			first1 <= sf == '0;
			last1 <= int'(sf) == SF - 1;
			nf1 <= nf;
		end
	end

	// ---- stage 2: one beat's sum per PE (adder trees) -------------------------------
	logic [PSUM_BITS-1:0]  psum2 [PE];   // XNOR: matches (unsigned); sum mode: sum of +-x
	logic  v2, first2, last2;
	logic [NF_BITS-1:0]  nf2;

	if (XNOR) begin : gen_xnor
		logic [IWIDTH-1:0]  x1;
		always_ff @(posedge clk) begin
			if (en)
				x1 <= x0;
		end
		for (genvar p = 0; p < PE; p++) begin : gen_pe
			logic [PSUM_BITS-1:0]  psum;
			qnn_mvu_binary_addtree #(.N(SIMD), .W(1), .SIGNED(0))
				tree (.terms(x1 ~^ w1[p*SIMD +: SIMD]), .sum(psum));
			always_ff @(posedge clk) begin
				if (en)
					psum2[p] <= psum;
			end
		end : gen_pe
	end : gen_xnor
	else begin : gen_sum
		// pair j's four sums, registered: pv1[j][{w_a, w_b}] = (w_a ? x_a : -x_a) + (w_b ? x_b : -x_b)
		typedef logic signed [PAIR_BITS-1:0]  pair_t;
		pair_t  pv1 [NPAIR][4];
		for (genvar j = 0; j < NPAIR; j++) begin : gen_pair
			pair_t  xa, xb;
			if (ISIGNED) begin : gen_sext
				assign xa = pair_t'($signed(x0[2*j*IBITS +: IBITS]));
				assign xb = 2*j + 1 < SIMD ? pair_t'($signed(x0[(2*j + 1)*IBITS +: IBITS])) : pair_t'(0);
			end : gen_sext
			else begin : gen_zext
				assign xa = pair_t'(x0[2*j*IBITS +: IBITS]);
				assign xb = 2*j + 1 < SIMD ? pair_t'(x0[(2*j + 1)*IBITS +: IBITS]) : pair_t'(0);
			end : gen_zext
			always_ff @(posedge clk) begin
				if (en) begin
					pv1[j][3] <= xa + xb;
					pv1[j][2] <= xa - xb;
					pv1[j][1] <= xb - xa;
					pv1[j][0] <= -xa - xb;
				end
			end
		end : gen_pair
		for (genvar p = 0; p < PE; p++) begin : gen_pe
			logic [TERMS*PAIR_BITS-1:0]  terms;
			for (genvar q = 0; q < PLANES; q++) begin : gen_plane  // TERNARY: u, then v
				for (genvar j = 0; j < NPAIR; j++) begin : gen_term
					localparam int unsigned  B = q*PE*SIMD + p*SIMD + 2*j;
					logic [1:0]  sel;
					// a lone last lane's missing partner counts as weight +1 times x_b = 0
					assign sel = {w1[B], 2*j + 1 < SIMD ? w1[B + 1] : 1'b1};
					assign terms[(q*NPAIR + j)*PAIR_BITS +: PAIR_BITS] = pv1[j][sel];
				end : gen_term
			end : gen_plane
			logic [PSUM_BITS-1:0]  psum;
			qnn_mvu_binary_addtree #(.N(TERMS), .W(PAIR_BITS), .SIGNED(1), .KMIN(0))
				tree (.terms(terms), .sum(psum));
			always_ff @(posedge clk) begin
				if (en)
					psum2[p] <= psum;
			end
		end : gen_pe
	end : gen_sum

	always_ff @(posedge clk) begin
		if (en) begin
			first2 <= first1;
			last2 <= last1;
			nf2 <= nf1;
		end
	end

	// ---- stage 3: accumulate over the SF beats of a row -----------------------------
	acc_t  acc3 [PE];
	logic  v3;  // acc3 holds finished rows

	for (genvar p = 0; p < PE; p++) begin : gen_acc
		acc_t  beat;
		// TERNARY: the tree summed U x + V x = 2 W x
		assign beat = XNOR ? acc_t'(psum2[p]) : acc_t'($signed(psum2[p]) >>> (PLANES - 1));
		always_ff @(posedge clk) begin
			if (en && v2)
				acc3[p] <= (first2 ? acc_t'(0) : acc3[p]) + beat;
		end
	end : gen_acc

	// ---- stage 4: activation into the output register -------------------------------
	logic [OWIDTH-1:0]  y;

	if (N_THR == 0) begin : gen_acc_out
		// the value fits OBITS (FINN's output type is the accumulator's): truncation is exact
		always_comb begin
			for (int unsigned p = 0; p < PE; p++)
				y[p*OBITS +: OBITS] = OBITS'(acc3[p]);
		end
		logic  unused_nf;
		assign unused_nf = ^nf2;  // the channel fold selects thresholds only
	end : gen_acc_out
	else begin : gen_thresholds
		logic [PE*N_THR*ACC_BITS-1:0]  tmem [NF];
		initial $readmemh(THRESHOLDS_FILE, tmem);
		logic [PE*N_THR*ACC_BITS-1:0]  thr3;
		always_ff @(posedge clk) begin
			if (en)
				thr3 <= tmem[nf2];
		end
		always_comb begin
			for (int unsigned p = 0; p < PE; p++) begin
				logic [CNT_BITS-1:0]  cnt;
				cnt = '0;
				// thresholds need not be sorted: every comparison counts
				for (int unsigned j = 0; j < N_THR; j++)
					cnt += CNT_BITS'(acc3[p] >= $signed(thr3[(p*N_THR + j)*ACC_BITS +: ACC_BITS]));
				y[p*OBITS +: OBITS] = OBITS'(int'(cnt) + ACT_VAL);
			end
		end
	end : gen_thresholds

	always_ff @(posedge clk) begin
		if (!rst_n) begin
			v1 <= 0;
			v2 <= 0;
			v3 <= 0;
			m_tvalid <= 0;
		end else if (en) begin
			v1 <= issue;
			v2 <= v1;
			v3 <= v2 && last2;
			m_tvalid <= v3;
		end
	end
	always_ff @(posedge clk) begin
		if (en)
			m_tdata <= y;
	end
endmodule : qnn_mvu_binary

