"""The boards qnnflow targets: part, default clock and shell flow, in one table.

Every board here is a Zynq (7000 or UltraScale+ MPSoC) that runs PYNQ. `qnnflow
bitstream` puts the accelerator into the same shell on each (hw/shell.py): the
processing system, an AXI DMA between DDR and the accelerator's streams, and an AXI
GPIO holding the output transfer length; what differs per board is in this table.
"""
from __future__ import annotations

from dataclasses import dataclass


class BoardError(ValueError):
    pass


@dataclass(frozen=True)
class Board:
    name: str
    part: str             # Vivado part
    clock_mhz: float      # default accelerator clock
    shell: str            # shell flow: "zynq-axidma" (hw/shell.py) on every board here
    finn_name: str        # the board's name in FINN's tables (pynq_part_map)
    board_part: str       # Vivado board part (board files), for the processing system's presets
    ps: str               # "zynq_7000" (processing_system7) or "zynq_us+" (zynq_ultra_ps_e)
    hp_bits: int          # width of the PS slave port (S_AXI_HP0) the DMA reaches DDR through

    @property
    def family(self) -> str:
        return "7-series" if self.ps == "zynq_7000" else "UltraScale+"


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("pynq-z1", "xc7z020clg400-1", 100.0, "zynq-axidma", "Pynq-Z1",
              "www.digilentinc.com:pynq-z1:part0:1.0", "zynq_7000", 64),
        Board("pynq-z2", "xc7z020clg400-1", 100.0, "zynq-axidma", "Pynq-Z2",
              "tul.com.tw:pynq-z2:part0:1.0", "zynq_7000", 64),
        Board("ultra96-v2", "xczu3eg-sbva484-1-i", 200.0, "zynq-axidma", "Ultra96-V2",
              "avnet.com:ultra96v2:part0:1.2", "zynq_us+", 128),
        Board("kv260", "xck26-sfvc784-2LV-c", 200.0, "zynq-axidma", "KV260_SOM",
              "xilinx.com:kv260_som:part0:1.3", "zynq_us+", 128),
        Board("zcu104", "xczu7ev-ffvc1156-2-e", 200.0, "zynq-axidma", "ZCU104",
              "xilinx.com:zcu104:part0:1.1", "zynq_us+", 128),
    )
}


# Programmable-logic resources per device (AMD's product tables): slice LUTs (logic and
# LUT memory together), flip-flops, DSP slices, 18 Kb block RAMs (a 36 Kb block is two).
# Keyed by device: a part is "<device><package>-<speed>".
DEVICE_RESOURCES: dict[str, dict[str, int]] = {
    "xc7z020": {"LUT": 53_200, "FF": 106_400, "DSP": 220, "BRAM18": 280},
    "xczu3eg": {"LUT": 70_560, "FF": 141_120, "DSP": 360, "BRAM18": 432},
    "xck26": {"LUT": 117_120, "FF": 234_240, "DSP": 1_248, "BRAM18": 288},
    "xczu7ev": {"LUT": 230_400, "FF": 460_800, "DSP": 1_728, "BRAM18": 624},
}


def part_resources(part: str) -> dict[str, int] | None:
    """The resource budget of `part` (e.g. xc7z020clg400-1), None for a device not in the table."""
    p = part.lower()
    device = max((d for d in DEVICE_RESOURCES if p.startswith(d)), key=len, default=None)
    return None if device is None else dict(DEVICE_RESOURCES[device])


def get_board(name: str) -> Board:
    key = name.lower()
    if key not in BOARDS:
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[key]
