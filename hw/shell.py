"""The Zynq shell around an accelerator: what `qnnflow bitstream` builds for a PYNQ board.

    DDR <-> PS (S_AXI_HP0) <-> AXI DMA --MM2S--> [width converter] -> accelerator
                                      <--S2MM-- TLAST counter <- [width converter] <-
    PS (M_AXI_GP0 / HPM0_FPD) -> AXI-lite: DMA registers, GPIO (beats per output transfer)

- The AXI DMA (simple mode) moves a batch of packed images from DDR into the
  accelerator's input stream and its results back; its streams are 8..1024 bits wide in
  powers of two. Where the accelerator's stream word is not such a width, one of FINN's
  RTL width converters (StreamingDataWidthConverter_rtl) sits between DMA and
  accelerator, added to the accelerator's graph (`add_dma_adapters`), so the stitched
  IP and the Verilator simulation (hw/driver/simboard.py) both contain it. The stream's
  bytes are the same either way: FINN's packing (hw/packing.py), words back to back.
- The DMA's S2MM channel ends a transfer on TLAST, which the accelerator does not
  drive: hw/rtl/qnn_axis_tlast.v raises it after the number of beats the driver writes
  into an AXI GPIO before each batch.
- Clock: a clocking wizard makes the board's accelerator clock from the PS's 100 MHz
  PL clock (as FINN's Zynq shell does); everything in the PL runs on it.

This module writes the shell's Vivado TCL; flow/steps/vivado.py runs it. Nothing here
needs Vivado, so the scripts are checked by tests (tests/flow/test_bitstream.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .boards import Board
from .errors import HwError
from .packing import image_bytes, word_bytes

TLAST_SOURCE = Path(__file__).resolve().parent / "rtl" / "qnn_axis_tlast.v"

# block design cell names: the driver finds the IP by them (pynq.Overlay attributes)
DMA_CELL = "axi_dma_0"
BEATS_CELL = "qnn_beats"
ACCEL_CELL = "qnn_accel"
TLAST_CELL = "qnn_tlast"
SG_LENGTH_WIDTH = 26                      # AXI DMA buffer length register: 2**26 - 1 bytes
MAX_TRANSFER_BYTES = (1 << SG_LENGTH_WIDTH) - 1
ADAPTER_IN = "StreamingDataWidthConverter_rtl_dma_in"
ADAPTER_OUT = "StreamingDataWidthConverter_rtl_dma_out"


@dataclass(frozen=True)
class ShellPlan:
    """How the accelerator's streams meet the AXI DMA (all widths in bits)."""
    board: str
    part: str
    ps: str
    clock_mhz: float
    word_in_bits: int            # the accelerator's padded input word
    word_out_bits: int
    dma_in_bits: int             # MM2S stream width
    dma_out_bits: int            # S2MM stream width
    in_bytes_per_image: int
    out_bytes_per_image: int
    max_transfer_bytes: int = MAX_TRANSFER_BYTES

    @property
    def adapt_in(self) -> bool:
        return self.dma_in_bits != self.word_in_bits

    @property
    def adapt_out(self) -> bool:
        return self.dma_out_bits != self.word_out_bits

    @property
    def out_beats_per_image(self) -> int:
        return self.out_bytes_per_image * 8 // self.dma_out_bits

    def max_batch(self) -> int:
        """Images per DMA transfer (the DMA's length register bounds both directions)."""
        return max(1, self.max_transfer_bytes // max(self.in_bytes_per_image, self.out_bytes_per_image))

    def to_json(self) -> dict:
        return {**asdict(self), "dma": DMA_CELL, "beats": BEATS_CELL, "accel": ACCEL_CELL,
                "out_beats_per_image": self.out_beats_per_image}


def dma_stream_bytes(word: int, image: int, port_bytes: int) -> int:
    """The DMA stream width (bytes) for a stream of `word`-byte words, `image` bytes per
    image: the word itself where the DMA can have that width (a power of two, at most
    128 bytes), else the widest power of two up to the PS port's width that divides an
    image, so that every batch is whole DMA beats."""
    if word & (word - 1) == 0 and word <= 128:
        return word
    p = port_bytes
    while p > 1 and image % p:
        p //= 2
    return p


def plan_shell(input_info, output_info, board: Board, clock_mhz: float) -> ShellPlan:
    """The shell for an accelerator with these input/output streams (hw.stitch.StreamInfo)."""
    wi, wo = word_bytes(input_info), word_bytes(output_info)
    ii, io = image_bytes(input_info), image_bytes(output_info)
    port = board.hp_bits // 8
    return ShellPlan(board=board.name, part=board.part, ps=board.ps, clock_mhz=float(clock_mhz),
                     word_in_bits=8 * wi, word_out_bits=8 * wo,
                     dma_in_bits=8 * dma_stream_bytes(wi, ii, port), dma_out_bits=8 * dma_stream_bytes(wo, io, port),
                     in_bytes_per_image=ii, out_bytes_per_image=io)


def add_dma_adapters(model, plan: ShellPlan):
    """Put FINN's RTL width converters between the DMA's stream widths and the accelerator's
    where they differ (a new graph input `dma_in` / output `dma_out`, UINT8 bytes: the
    converters move bytes and know nothing of the elements). Their Verilog is generated
    by FINN's PrepareIP afterwards, like any node without code."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType

    g = model.graph
    if plan.adapt_in:
        old = g.input[0]
        if model.get_initializer(old.name) is not None or len(model.find_consumers(old.name) or []) != 1:
            raise HwError(f"graph input {old.name} does not feed exactly one layer; cannot adapt it to the DMA")
        vi = helper.make_tensor_value_info("dma_in", TensorProto.FLOAT, [1, plan.in_bytes_per_image])
        g.value_info.append(old)  # the accelerator's input tensor becomes internal
        g.input.remove(old)
        g.input.insert(0, vi)
        model.set_tensor_datatype("dma_in", DataType["UINT8"])
        g.node.insert(0, helper.make_node(
            "StreamingDataWidthConverter_rtl", ["dma_in"], [old.name], name=ADAPTER_IN,
            domain="finn.custom_op.fpgadataflow.rtl", backend="fpgadataflow",
            inShape=[1, plan.in_bytes_per_image], outShape=[1, plan.in_bytes_per_image],
            inWidth=plan.dma_in_bits, outWidth=plan.word_in_bits, dataType="UINT8"))
    if plan.adapt_out:
        old = g.output[0]
        vi = helper.make_tensor_value_info("dma_out", TensorProto.FLOAT, [1, plan.out_bytes_per_image])
        g.value_info.append(old)
        g.output.remove(old)
        g.output.insert(0, vi)
        model.set_tensor_datatype("dma_out", DataType["UINT8"])
        g.node.append(helper.make_node(
            "StreamingDataWidthConverter_rtl", [old.name], ["dma_out"], name=ADAPTER_OUT,
            domain="finn.custom_op.fpgadataflow.rtl", backend="fpgadataflow",
            inShape=[1, plan.out_bytes_per_image], outShape=[1, plan.out_bytes_per_image],
            inWidth=plan.word_out_bits, outWidth=plan.dma_out_bits, dataType="UINT8"))
    return model


def _tcl_list(items) -> str:
    return "[list " + " ".join("{" + str(i) + "}" for i in items) + "]"


def zynq_shell_tcl(plan: ShellPlan, board: Board, *, accel_vlnv: str, ip_repos: list[str],
                   board_repos: list[str], jobs: int, outputs: dict[str, str]) -> str:
    """Vivado batch script: project, block design (PS, DMA, GPIO, TLAST counter, the
    stitched accelerator IP), synthesis, implementation, bitstream; then copies the
    bitfile, the hardware handoff and reports to the paths in `outputs` (keys bit, hwh,
    utilization, timing). Fails (a Tcl error, Vivado exits non-zero) on any failed run."""
    dma_mm_in = max(32, plan.dma_in_bits)
    dma_mm_out = max(32, plan.dma_out_bits)
    addr_width = 32 if plan.ps == "zynq_7000" else 64
    return f"""# Generated by qnnflow (hw/shell.py): Zynq shell with AXI DMA for {board.name} ({plan.part}).
# Run: vivado -mode batch -source shell.tcl   (in this folder)
set FPGA_PART {{{plan.part}}}
set BOARD_PART {{{board.board_part}}}
set PS_TYPE {{{plan.ps}}}
set FREQ_MHZ {plan.clock_mhz:g}
set ACCEL_VLNV {{{accel_vlnv}}}
set NUM_JOBS {int(jobs)}

create_project qnnflow_zynq ./qnnflow_zynq -part $FPGA_PART -force
set_param tcl.collectionResultDisplayLimit 0
# board files (FINN_DEPS/board_files, QNNFLOW_BOARD_FILES) give the PS its board presets
set_param board.repoPaths [concat [get_param board.repoPaths] {_tcl_list(board_repos)}]
set HAVE_BOARD [expr {{[llength [get_board_parts -quiet $BOARD_PART]] > 0}}]
if {{$HAVE_BOARD}} {{
    set_property board_part $BOARD_PART [current_project]
}} else {{
    puts "CRITICAL WARNING: qnnflow: board files for $BOARD_PART not found; the PS gets Vivado's defaults (PYNQ configures the PS at boot, the bitstream only the PL)"
}}
set_property ip_repo_paths {_tcl_list(ip_repos)} [current_project]
update_ip_catalog -rebuild
add_files -norecurse {{{TLAST_SOURCE}}}
update_compile_order -fileset sources_1

create_bd_design "top"

# processing system: one master for AXI-lite, one HP slave port for the DMA
if {{$PS_TYPE eq "zynq_us+"}} {{
    create_bd_cell -type ip -vlnv [get_property VLNV [get_ipdefs "xilinx.com:ip:zynq_ultra_ps_e:*"]] zynq_ps
    if {{$HAVE_BOARD}} {{
        apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {{apply_board_preset "1"}} [get_bd_cells zynq_ps]
    }}
    set_property -dict [list CONFIG.PSU__USE__M_AXI_GP0 {{1}} CONFIG.PSU__USE__M_AXI_GP1 {{0}} \\
        CONFIG.PSU__USE__M_AXI_GP2 {{0}} CONFIG.PSU__USE__S_AXI_GP2 {{1}} \\
        CONFIG.PSU__OVERRIDE__BASIC_CLOCK {{0}} CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{100}}] [get_bd_cells zynq_ps]
    set PS_CLK zynq_ps/pl_clk0
    set PS_RESETN zynq_ps/pl_resetn0
    set PS_MASTER zynq_ps/M_AXI_HPM0_FPD
    set PS_SLAVE zynq_ps/S_AXI_HP0_FPD
    set PS_ACLKS [list zynq_ps/maxihpm0_fpd_aclk zynq_ps/saxihp0_fpd_aclk]
}} else {{
    create_bd_cell -type ip -vlnv [get_property VLNV [get_ipdefs "xilinx.com:ip:processing_system7:*"]] zynq_ps
    if {{$HAVE_BOARD}} {{
        apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 -config {{make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"}} [get_bd_cells zynq_ps]
    }} else {{
        apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 -config {{make_external "FIXED_IO, DDR" Master "Disable" Slave "Disable"}} [get_bd_cells zynq_ps]
    }}
    set_property -dict [list CONFIG.PCW_USE_M_AXI_GP0 {{1}} CONFIG.PCW_USE_S_AXI_HP0 {{1}} \\
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {{100}}] [get_bd_cells zynq_ps]
    set PS_CLK zynq_ps/FCLK_CLK0
    set PS_RESETN zynq_ps/FCLK_RESET0_N
    set PS_MASTER zynq_ps/M_AXI_GP0
    set PS_SLAVE zynq_ps/S_AXI_HP0
    set PS_ACLKS [list zynq_ps/M_AXI_GP0_ACLK zynq_ps/S_AXI_HP0_ACLK]
}}

# the accelerator clock, made from the PS's 100 MHz PL clock, and its reset
create_bd_cell -type ip -vlnv [get_property VLNV [get_ipdefs -filter {{NAME == clk_wiz}}]] clk_wiz_0
set_property -dict [list CONFIG.PRIM_IN_FREQ.VALUE_SRC PROPAGATED CONFIG.PRIM_SOURCE {{No_buffer}} \\
    CONFIG.PRIMITIVE {{PLL}} CONFIG.CLKOUT1_REQUESTED_OUT_FREQ $FREQ_MHZ CONFIG.USE_LOCKED {{true}} \\
    CONFIG.USE_RESET {{true}} CONFIG.RESET_TYPE {{ACTIVE_LOW}} CONFIG.RESET_PORT {{resetn}}] [get_bd_cells clk_wiz_0]
create_bd_cell -type ip -vlnv [get_property VLNV [get_ipdefs "xilinx.com:ip:proc_sys_reset:*"]] proc_sys_reset_0
connect_bd_net [get_bd_pins $PS_CLK] [get_bd_pins clk_wiz_0/clk_in1]
connect_bd_net [get_bd_pins $PS_RESETN] [get_bd_pins clk_wiz_0/resetn]
connect_bd_net [get_bd_pins $PS_RESETN] [get_bd_pins proc_sys_reset_0/ext_reset_in]
connect_bd_net [get_bd_pins clk_wiz_0/clk_out1] [get_bd_pins proc_sys_reset_0/slowest_sync_clk]
connect_bd_net [get_bd_pins clk_wiz_0/locked] [get_bd_pins proc_sys_reset_0/dcm_locked]
set CLK [get_bd_pins clk_wiz_0/clk_out1]
set RESETN [get_bd_pins proc_sys_reset_0/peripheral_aresetn]
set IC_RESETN [get_bd_pins proc_sys_reset_0/interconnect_aresetn]
foreach pin $PS_ACLKS {{ connect_bd_net $CLK [get_bd_pins $pin] }}

# AXI DMA, simple mode: MM2S {plan.dma_in_bits}-bit stream, S2MM {plan.dma_out_bits}-bit stream
create_bd_cell -type ip -vlnv [get_property VLNV [get_ipdefs "xilinx.com:ip:axi_dma:*"]] {DMA_CELL}
set_property -dict [list CONFIG.c_include_sg {{0}} CONFIG.c_sg_include_stscntrl_strm {{0}} \\
    CONFIG.c_sg_length_width {{{SG_LENGTH_WIDTH}}} CONFIG.c_addr_width {{{addr_width}}} \\
    CONFIG.c_include_mm2s {{1}} CONFIG.c_m_axi_mm2s_data_width {{{dma_mm_in}}} CONFIG.c_m_axis_mm2s_tdata_width {{{plan.dma_in_bits}}} \\
    CONFIG.c_include_s2mm {{1}} CONFIG.c_m_axi_s2mm_data_width {{{dma_mm_out}}} CONFIG.c_s_axis_s2mm_tdata_width {{{plan.dma_out_bits}}} \\
    CONFIG.c_mm2s_burst_size {{16}} CONFIG.c_s2mm_burst_size {{16}} \\
    CONFIG.c_include_mm2s_dre {{0}} CONFIG.c_include_s2mm_dre {{0}}] [get_bd_cells {DMA_CELL}]

# the accelerator (FINN's stitched IP) and the TLAST counter behind it
create_bd_cell -type ip -vlnv $ACCEL_VLNV {ACCEL_CELL}
create_bd_cell -type module -reference qnn_axis_tlast {TLAST_CELL}
set_property CONFIG.WIDTH {{{plan.dma_out_bits}}} [get_bd_cells {TLAST_CELL}]
create_bd_cell -type ip -vlnv [get_property VLNV [get_ipdefs "xilinx.com:ip:axi_gpio:*"]] {BEATS_CELL}
set_property -dict [list CONFIG.C_GPIO_WIDTH {{32}} CONFIG.C_ALL_OUTPUTS {{1}} CONFIG.C_DOUT_DEFAULT {{0x00000001}}] [get_bd_cells {BEATS_CELL}]

connect_bd_intf_net [get_bd_intf_pins {DMA_CELL}/M_AXIS_MM2S] [get_bd_intf_pins {ACCEL_CELL}/s_axis_0]
connect_bd_intf_net [get_bd_intf_pins {ACCEL_CELL}/m_axis_0] [get_bd_intf_pins {TLAST_CELL}/s_axis]
connect_bd_intf_net [get_bd_intf_pins {TLAST_CELL}/m_axis] [get_bd_intf_pins {DMA_CELL}/S_AXIS_S2MM]
connect_bd_net [get_bd_pins {BEATS_CELL}/gpio_io_o] [get_bd_pins {TLAST_CELL}/count]

# AXI-lite from the PS to the DMA and the GPIO; the DMA's two masters to DDR
create_bd_cell -type ip -vlnv [get_property VLNV [get_ipdefs "xilinx.com:ip:smartconnect:*"]] axi_lite_ic
set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{2}}] [get_bd_cells axi_lite_ic]
create_bd_cell -type ip -vlnv [get_property VLNV [get_ipdefs "xilinx.com:ip:smartconnect:*"]] axi_mem_ic
set_property -dict [list CONFIG.NUM_SI {{2}} CONFIG.NUM_MI {{1}}] [get_bd_cells axi_mem_ic]
connect_bd_intf_net [get_bd_intf_pins $PS_MASTER] [get_bd_intf_pins axi_lite_ic/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins axi_lite_ic/M00_AXI] [get_bd_intf_pins {DMA_CELL}/S_AXI_LITE]
connect_bd_intf_net [get_bd_intf_pins axi_lite_ic/M01_AXI] [get_bd_intf_pins {BEATS_CELL}/S_AXI]
connect_bd_intf_net [get_bd_intf_pins {DMA_CELL}/M_AXI_MM2S] [get_bd_intf_pins axi_mem_ic/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins {DMA_CELL}/M_AXI_S2MM] [get_bd_intf_pins axi_mem_ic/S01_AXI]
connect_bd_intf_net [get_bd_intf_pins axi_mem_ic/M00_AXI] [get_bd_intf_pins $PS_SLAVE]

foreach pin [list axi_lite_ic/aclk axi_mem_ic/aclk {DMA_CELL}/s_axi_lite_aclk {DMA_CELL}/m_axi_mm2s_aclk \\
        {DMA_CELL}/m_axi_s2mm_aclk {BEATS_CELL}/s_axi_aclk {ACCEL_CELL}/ap_clk {TLAST_CELL}/ap_clk] {{
    connect_bd_net $CLK [get_bd_pins $pin]
}}
foreach pin [list {DMA_CELL}/axi_resetn {BEATS_CELL}/s_axi_aresetn {ACCEL_CELL}/ap_rst_n {TLAST_CELL}/ap_rst_n] {{
    connect_bd_net $RESETN [get_bd_pins $pin]
}}
foreach pin [list axi_lite_ic/aresetn axi_mem_ic/aresetn] {{ connect_bd_net $IC_RESETN [get_bd_pins $pin] }}

assign_bd_address
validate_bd_design
save_bd_design
set BD [get_files top.bd]
make_wrapper -files $BD -top
add_files -norecurse [file join [file dirname [get_property FILE_NAME [get_files top.bd]]] hdl top_wrapper.v]
set_property top top_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs $NUM_JOBS
wait_on_run impl_1
if {{[get_property PROGRESS [get_runs synth_1]] ne "100%"}} {{
    error "qnnflow: synthesis failed; see [get_property DIRECTORY [get_runs synth_1]]/runme.log"
}}
if {{[get_property PROGRESS [get_runs impl_1]] ne "100%"}} {{
    error "qnnflow: implementation failed; see [get_property DIRECTORY [get_runs impl_1]]/runme.log"
}}
open_run impl_1
report_utilization -file {{{outputs['utilization']}}}
report_timing_summary -file {{{outputs['timing']}}}
file copy -force [file join [get_property DIRECTORY [get_runs impl_1]] top_wrapper.bit] {{{outputs['bit']}}}
set HWH [lindex [glob -nocomplain ./qnnflow_zynq/qnnflow_zynq.gen/sources_1/bd/top/hw_handoff/top.hwh \\
                                   ./qnnflow_zynq/qnnflow_zynq.srcs/sources_1/bd/top/hw_handoff/top.hwh] 0]
if {{$HWH eq ""}} {{ error "qnnflow: no hardware handoff (top.hwh) was written" }}
file copy -force $HWH {{{outputs['hwh']}}}
puts "qnnflow: bitstream written to {outputs['bit']}"
"""
