"""The boards qnnflow targets: part, default clock and shell flow, in one table."""
from __future__ import annotations

from dataclasses import dataclass


class BoardError(ValueError):
    pass


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    clock_mhz: float
    shell: str  # FINN shell flow: "vivado_zynq" for the PYNQ-style Zynq boards
    finn_name: str  # the board's name in FINN's tables (pynq_part_map)


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("pynq-z1", "xc7z020clg400-1", 100.0, "vivado_zynq", "Pynq-Z1"),
        Board("pynq-z2", "xc7z020clg400-1", 100.0, "vivado_zynq", "Pynq-Z2"),
        Board("ultra96-v2", "xczu3eg-sbva484-1-i", 200.0, "vivado_zynq", "Ultra96-V2"),
        Board("kv260", "xck26-sfvc784-2LV-c", 200.0, "vivado_zynq", "KV260_SOM"),
        Board("zcu104", "xczu7ev-ffvc1156-2-e", 200.0, "vivado_zynq", "ZCU104"),
    )
}


def get_board(name: str) -> Board:
    key = name.lower()
    if key not in BOARDS:
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[key]
