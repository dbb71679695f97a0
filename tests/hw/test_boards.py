"""The boards table: every PYNQ board qnnflow targets, consistent with FINN's own tables."""
from __future__ import annotations

import pytest

from hw.boards import BOARDS, BoardError, get_board


def test_the_issue_boards_are_all_there():
    assert {"pynq-z1", "pynq-z2", "ultra96-v2", "kv260", "zcu104"} <= set(BOARDS)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_matches_finn(name):
    from finn.util.basic import pynq_native_port_width, pynq_part_map

    b = BOARDS[name]
    assert b.name == name and get_board(name.upper()) is b
    assert pynq_part_map[b.finn_name] == b.part  # the part FINN uses for that board
    assert b.ps == ("zynq_7000" if b.part.startswith("xc7z") else "zynq_us+")
    assert b.hp_bits == pynq_native_port_width[b.finn_name]
    assert b.shell == "zynq-axidma" and b.clock_mhz > 0
    assert b.board_part.count(":") == 3  # vendor:board:part0:version


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(BoardError) as e:
        get_board("zedboard")
    assert "zedboard" in str(e.value)
    for name in BOARDS:
        assert name in str(e.value)
