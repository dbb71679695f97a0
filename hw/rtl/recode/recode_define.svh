// qnnflow: Verilator-only recodings for simulation speed below (QNNFLOW_SIM_RECODE),
// cycle-identical to FINN's code kept under `else; hw/stitch.py, tests/hw/test_recode.py.
`ifdef VERILATOR
`ifndef QNNFLOW_FINN_RTL
`ifndef QNNFLOW_SIM_RECODE
`define QNNFLOW_SIM_RECODE
`endif
`endif
`endif

