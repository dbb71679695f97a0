// qnnflow: depthwise vector-vector unit, FINN's VVAU (VectorVectorActivation) semantics on
// generic logic: the multiplications are plain signed products, which synthesis maps to
// LUTs or DSP48E1 slices as it sees fit (FINN's own RTL VVAU needs Versal's DSP58).
//
// For every output pixel and channel c: acc[c] = sum over the K kernel taps t of
// x[t][c] * W[c][t], then the accumulator itself (N_THR = 0) or #(acc >= T[c][j]) + ACT_VAL
// (embedded thresholds).
//
// Input: the stream of FINN's depthwise sliding-window generator. Per output pixel,
// NF = CHANNELS/PE channel folds; per fold SF = K/SIMD beats; a beat holds SIMD taps of
// PE channels, element s*PE + p = tap sf*SIMD + s of channel nf*PE + p (FINN's folded input
// shape [H, W, NF*SF, SIMD*PE]; element 0 in the least significant bits).
// Output: per pixel NF beats of PE elements of OBITS bits.
//
// Timing: one beat per cycle, K*CHANNELS/(SIMD*PE) cycles per pixel (FINN's estimate); the
// whole pipeline moves together and stops only while the output register is full and not
// read, so no ready signal needs a skid buffer.
//
// Memories ($readmemh, hex, one word per line):
//   WEIGHTS_FILE:    NF*SF words of PE*SIMD*WBITS bits; word nf*SF + sf, field p*SIMD + s
//                    holds the weight of channel nf*PE + p at tap sf*SIMD + s (two's complement);
//   THRESHOLDS_FILE: NF words of PE*N_THR*ACC_BITS bits; word nf, field p*N_THR + j holds
//                    threshold j of channel nf*PE + p (two's complement).
module qnn_vvu #(
	int unsigned CHANNELS = 8,
	int unsigned K = 9,          // kernel taps (kh * kw)
	int unsigned PE = 1,
	int unsigned SIMD = 1,
	int unsigned IBITS = 4,      // bits per input element
	bit          ISIGNED = 0,    // inputs are two's complement
	int unsigned WBITS = 4,      // bits per weight, two's complement
	// signed width holding every partial sum of a channel and every threshold (the caller
	// clips thresholds to [acc min, acc max + 1], which keeps #(acc >= T) unchanged)
	int unsigned ACC_BITS = 16,
	int unsigned N_THR = 0,      // thresholds per channel; 0: the accumulator is the output
	int          ACT_VAL = 0,
	int unsigned OBITS = 16,     // bits per output element
	parameter    WEIGHTS_FILE = "",
	parameter    THRESHOLDS_FILE = "",
	int unsigned IWIDTH = SIMD * PE * IBITS,
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
	localparam int unsigned SF = K / SIMD;
	localparam int unsigned NF = CHANNELS / PE;
	localparam int unsigned WMEM = NF * SF;
	localparam int unsigned SF_BITS = SF > 1 ? $clog2(SF) : 1;
	localparam int unsigned NF_BITS = NF > 1 ? $clog2(NF) : 1;
	localparam int unsigned WA_BITS = WMEM > 1 ? $clog2(WMEM) : 1;
	// an input as a signed operand: unsigned inputs get a zero sign bit
	localparam int unsigned XBITS = ISIGNED ? IBITS : IBITS + 1;
	localparam int unsigned PBITS = XBITS + WBITS;  // one product, exactly
	localparam int unsigned CNT_BITS = N_THR > 0 ? $clog2(N_THR + 1) : 1;

	typedef logic signed [ACC_BITS-1:0] acc_t;

	logic  en;
	assign en = !m_tvalid || m_tready;
	assign s_tready = en;
	logic  take;
	assign take = s_tvalid && en;

	// ---- position in the pixel: fold nf, beat sf of the fold ------------------------
	logic [SF_BITS-1:0]  sf;
	logic [NF_BITS-1:0]  nf;
	logic [WA_BITS-1:0]  waddr;
	always_ff @(posedge clk) begin
		if (!rst_n) begin
			sf <= '0;
			nf <= '0;
			waddr <= '0;
		end else if (take) begin
			if (int'(sf) == SF - 1) begin
				sf <= '0;
				nf <= int'(nf) == NF - 1 ? '0 : nf + 1;
			end else
				sf <= sf + 1;
			waddr <= int'(waddr) == WMEM - 1 ? '0 : waddr + 1;
		end
	end

	// ---- stage 1: weights and inputs ------------------------------------------------
	logic [PE*SIMD*WBITS-1:0]  wmem [WMEM];
	initial $readmemh(WEIGHTS_FILE, wmem);

	logic [PE*SIMD*WBITS-1:0]  w1;
	logic [IWIDTH-1:0]  x1;
	logic  v1, first1, last1;
	logic [NF_BITS-1:0]  nf1;
	always_ff @(posedge clk) begin
		if (en) begin
			x1 <= s_tdata;
			w1 <= wmem[waddr];
			first1 <= sf == '0;
			last1 <= int'(sf) == SF - 1;
			nf1 <= nf;
		end
	end

	// ---- stage 2: per PE the sum of its SIMD products ------------------------------
	acc_t  psum2 [PE];
	logic  v2, first2, last2;
	logic [NF_BITS-1:0]  nf2;
	for (genvar p = 0; p < PE; p++) begin : gen_pe
		acc_t  psum;
		always_comb begin
			psum = '0;
			for (int unsigned s = 0; s < SIMD; s++) begin
				automatic logic [IBITS-1:0]  xr = x1[(s*PE + p)*IBITS +: IBITS];
				automatic logic signed [XBITS-1:0]  xs = ISIGNED ? XBITS'($signed(xr)) : XBITS'(xr);
				automatic logic signed [WBITS-1:0]  ws = w1[(p*SIMD + s)*WBITS +: WBITS];
				automatic logic signed [PBITS-1:0]  prod = PBITS'(xs) * PBITS'(ws);
				psum += ACC_BITS'(prod);
			end
		end
		always_ff @(posedge clk) begin
			if (en)
				psum2[p] <= psum;
		end
	end : gen_pe
	always_ff @(posedge clk) begin
		if (en) begin
			first2 <= first1;
			last2 <= last1;
			nf2 <= nf1;
		end
	end

	// ---- stage 3: accumulate over the SF beats of a fold ----------------------------
	acc_t  acc3 [PE];
	logic  v3;  // acc3 holds finished channels
	for (genvar p = 0; p < PE; p++) begin : gen_acc
		always_ff @(posedge clk) begin
			if (en && v2)
				acc3[p] <= (first2 ? acc_t'(0) : acc3[p]) + psum2[p];
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
		logic [PE*N_THR*ACC_BITS-1:0]  thr;  // the fold's thresholds, beside acc3
		always_ff @(posedge clk) begin
			if (en)
				thr <= tmem[nf2];
		end
		always_comb begin
			for (int unsigned p = 0; p < PE; p++) begin
				logic [CNT_BITS-1:0]  cnt;
				cnt = '0;
				// thresholds need not be sorted: every comparison counts
				for (int unsigned j = 0; j < N_THR; j++)
					cnt += CNT_BITS'(acc3[p] >= $signed(thr[(p*N_THR + j)*ACC_BITS +: ACC_BITS]));
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
			v1 <= take;
			v2 <= v1;
			v3 <= v2 && last2;
			m_tvalid <= v3;
		end
	end
	always_ff @(posedge clk) begin
		if (en)
			m_tdata <= y;
	end
endmodule : qnn_vvu
