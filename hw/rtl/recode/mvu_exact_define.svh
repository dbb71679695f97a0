// qnnflow: under Verilator, mvu below computes its dot products exactly instead of
// through FINN's behavioural model of packed DSP lanes (see genExact), unless
// QNNFLOW_FINN_DSP_LANES is defined (hw.rtlsim(..., finn_dsp_lanes=True)).
`ifdef VERILATOR
`ifndef QNNFLOW_FINN_DSP_LANES
`define QNNFLOW_EXACT_MVU
`endif
`endif

