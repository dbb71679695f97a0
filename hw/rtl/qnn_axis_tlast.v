// qnnflow shell (hw/shell.py): marks the end of each output transfer for the AXI DMA.
//
// The accelerator's output stream has no TLAST; the AXI DMA's S2MM channel ends a
// transfer only on one. This pass-through counts accepted beats and raises TLAST on
// beat `count` (from an AXI GPIO the driver writes: beats per DMA transfer), then
// starts counting again. count 0 is taken as 1. Change count only between transfers.
// Plain Verilog, so that Vivado's block design can reference it as a module.
module qnn_axis_tlast #(
	parameter WIDTH = 64
)(
	(* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 ap_clk CLK" *)
	(* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF s_axis:m_axis, ASSOCIATED_RESET ap_rst_n" *)
	input  ap_clk,
	(* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 ap_rst_n RST" *)
	(* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)
	input  ap_rst_n,
	input  [31:0] count,

	input  [WIDTH-1:0] s_axis_tdata,
	input  s_axis_tvalid,
	output s_axis_tready,

	output [WIDTH-1:0] m_axis_tdata,
	output m_axis_tvalid,
	input  m_axis_tready,
	output m_axis_tlast
);
	reg [31:0] beat;  // beats accepted in the current transfer

	assign m_axis_tdata  = s_axis_tdata;
	assign m_axis_tvalid = s_axis_tvalid;
	assign s_axis_tready = m_axis_tready;
	assign m_axis_tlast  = (beat + 32'd1 >= count);

	always @(posedge ap_clk) begin
		if (!ap_rst_n)
			beat <= 32'd0;
		else if (s_axis_tvalid && m_axis_tready)
			beat <= m_axis_tlast ? 32'd0 : beat + 32'd1;
	end
endmodule
