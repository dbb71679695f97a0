"""What qnnflow's matrix cores (qnn_mvu_binary, qnn_vvu) share: accumulator widths and
their $readmemh files of embedded thresholds, and the check that thresholds fit a core."""
from __future__ import annotations

import math

import numpy as np


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the narrowest two's complement type holding [lo, hi]."""
    b = 1
    while lo < -(1 << (b - 1)) or hi > (1 << (b - 1)) - 1:
        b += 1
    return b


def hex_words(words: list[int], bits: int) -> str:
    """$readmemh text: one word of `bits` bits a line."""
    digits = max(1, math.ceil(bits / 4))
    return "".join(f"{w:0{digits}x}\n" for w in words)


def threshold_words(t: np.ndarray, channels: int, pe: int, lo: int, hi: int) -> tuple[str, int]:
    """Thresholds (channels or 1, n) as the cores read them: word nf, field p*n + j holds
    threshold j of channel nf*PE + p, in ACC_BITS two's complement; returns (text, ACC_BITS).
    Clipped to [lo, hi + 1] (lo..hi: every accumulator value): outside it a threshold
    compares like its bound, so #(acc >= T) is unchanged."""
    t = np.broadcast_to(np.asarray(t).astype(np.int64), (channels, np.asarray(t).shape[1]))
    t = np.clip(t, lo, hi + 1)
    acc_bits = signed_bits(lo, hi + 1)
    n, mask = t.shape[1], (1 << acc_bits) - 1
    words = []
    for f in range(channels // pe):
        w = 0
        for p in range(pe):
            for j in range(n):
                w |= (int(t[f * pe + p, j]) & mask) << ((p * n + j) * acc_bits)
        words.append(w)
    return hex_words(words, pe * n * acc_bits), acc_bits


def rom_unsupported(inst) -> str | None:
    """Why a layer's weights cannot be a ROM inside a core (None: they can)."""
    mode = inst.get_nodeattr("mem_mode")
    if mode not in ("internal_embedded", "internal_decoupled"):
        return f"mem_mode {mode} (the core holds its weights)"
    if inst.get_nodeattr("runtime_writeable_weights"):
        return "runtime-writeable weights (the core's weights are a ROM)"
    return None


def thresholds_unsupported(inst, node, model, channels: int) -> str | None:
    """Why a layer's embedded thresholds do not fit a core (None: they do)."""
    odt = inst.get_output_datatype()
    t = model.get_initializer(node.input[2]) if len(node.input) > 2 else None
    if t is None:
        return "embedded thresholds that are not a constant of the graph"
    if t.ndim != 2 or t.shape[0] not in (1, channels) or not np.array_equal(t, np.rint(t)):
        return f"thresholds of shape {t.shape} or with non-integer values"
    n = int(t.shape[1])
    if odt.name == "BIPOLAR":
        return None if n == 1 else f"BIPOLAR output from {n} thresholds"
    lo, hi = int(inst.get_nodeattr("ActVal")), int(inst.get_nodeattr("ActVal")) + n
    if not odt.is_integer() or lo < odt.min() or hi > odt.max():
        return f"{n} thresholds + ActVal {lo} do not fit the output type {odt.name}"
    return None


def activation_params(inst, model, lo: int, hi: int) -> dict:
    """The matrix cores' common parameters: accumulator width for [lo, hi] (+ 1: thresholds
    are clipped to hi + 1), thresholds per channel, output offset and width, memory files."""
    from .base import Raw

    act = not inst.get_nodeattr("noActivation")
    odt = inst.get_output_datatype()
    params = {
        "ACC_BITS": signed_bits(lo, hi + 1),
        "N_THR": int(model.get_initializer(inst.onnx_node.input[2]).shape[1]) if act else 0,
        # a BIPOLAR output is the 0/1 count, FINN's packing of -1/+1
        "ACT_VAL": 0 if odt.name == "BIPOLAR" else int(inst.get_nodeattr("ActVal")),
        "OBITS": int(odt.bitwidth()),
        "WEIGHTS_FILE": Raw('{MEM_PATH, "weights.dat"}'),
    }
    if act:
        params["THRESHOLDS_FILE"] = Raw('{MEM_PATH, "thresholds.dat"}')
    return params
