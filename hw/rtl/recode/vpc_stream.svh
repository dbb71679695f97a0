`ifdef QNNFLOW_SIM_RECODE
		// qnnflow (Verilator only): the case dwc_axi always makes (N = IBITS*OBITS, so
		// whole vectors span whole beats on both sides and the last output beat is full:
		// nxt, idone, odone and olast stay 0) recoded. FINN's code (genFinn, under
		// `else) keeps the free input capacity ICap = PO0 - H, where H is the number of
		// elements held in Buf (irdy: ICap >= 0, ovld: ICap <= 0), and places input
		// elements with a rotating deposit mask and a barrel rotator so that Buf[0..H-1]
		// hold the stream in order. Here H itself, and Buf as that queue: an output
		// beat takes PO0 elements off its head, an input beat appends PI0 after the rest.
		if((TRNI * PI0 == TRNO * PO0) && (OLAST == PO)) begin : genStream
			localparam int unsigned  CAP = PI0 + PO0;
			typedef logic [$clog2(CAP+1)-1:0]  h_t;

			logic [W0-1:0]  Buf[CAP];
			h_t  H = 0;	// 0, ..., CAP
			assign	irdy = H <= PO0;
			assign	ovld = H >= PO0;

			always_ff @(posedge clk) begin
				if(rst)  H <= 0;
				else begin
					automatic h_t  h = H;
					if(otrn) begin
						for(int unsigned  j = 0; j + PO0 < CAP; j++)  Buf[j] <= Buf[j + PO0];
						h -= PO0;
					end
					if(itrn) begin
						for(int unsigned  i = 0; i < PI0; i++)  Buf[h + i] <= idat[i*GCD +: GCD];
						h += PI0;
					end
					H <= h;
				end
			end

			assign	odat_raw = Buf[0:PO0-1];
			assign	olast_beat = 0;
		end : genStream
		else begin : genFinn
`endif
