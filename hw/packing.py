"""FINN's stream packing: integer arrays <-> the bytes an accelerator's AXI stream carries.

An image in its normal shape is reshaped to the folded shape (1, ..., elems_per_word);
each innermost vector is one stream word, element 0 in the least significant bits
(FINN's npy_to_rtlsim_input with reverse_inner=True), zero-padded to whole bytes, the
words one after another, each little-endian. These bytes are what the Verilator
harness streams (hw.rtlsim) and what a PYNQ driver hands the AXI DMA (hw/driver).

This module needs numpy only: `qnnflow bitstream` ships a copy of this very file in the
deployment package, where the board's Python has neither qonnx nor the rest of qnnflow.
`info` is any object with the fields of hw.stitch.StreamInfo: width (padded TDATA bits),
dtype (a FINN integer datatype name), elem_bits, folded_shape, normal_shape.
"""
from __future__ import annotations

import re

import numpy as np

try:  # inside qnnflow: the hardware side's one exception type
    from .errors import HwError as _Error
except ImportError:  # a copy beside a deployed driver
    class _Error(ValueError):
        """Inputs that cannot be packed into the stream (or outputs that cannot be unpacked)."""

PackingError = _Error
_CHUNK_WORDS = 1 << 16  # bounds the bit-level path's temporaries (a board has 512 MiB)


def dtype_range(name: str) -> tuple[int, int, bool]:
    """(min, max, signed) of a FINN integer datatype name; raises for non-integer types."""
    if name == "BIPOLAR":
        return -1, 1, True
    if name == "BINARY":
        return 0, 1, False
    if name == "TERNARY":
        return -1, 1, True
    m = re.fullmatch(r"(U?)INT(\d+)", name)
    if not m:
        raise _Error(f"datatype {name} is not an integer type; the accelerator streams integers only")
    bits = int(m.group(2))
    if m.group(1):
        return 0, (1 << bits) - 1, False
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1, True


def word_bytes(info) -> int:
    return (int(info.width) + 7) // 8


def elems_per_word(info) -> int:
    return int(info.folded_shape[-1])


def words_per_image(info) -> int:
    return int(np.prod([int(d) for d in info.folded_shape[:-1]], dtype=np.int64))


def values_per_image(info) -> int:
    return int(np.prod([int(d) for d in info.normal_shape[1:]], dtype=np.int64))


def image_bytes(info) -> int:
    """Bytes one image occupies in the stream."""
    return words_per_image(info) * word_bytes(info)


def pack_stream(values: np.ndarray, info) -> tuple[bytes, int]:
    """(N, ...) integer array -> little-endian packed words, and the word count."""
    per_image = values_per_image(info)
    values = np.asarray(values)
    if values.size % per_image:
        raise _Error(f"inputs hold {values.size} values, not a multiple of one image's "
                     f"{per_image} (shape {tuple(info.normal_shape[1:])}); give an (N, {per_image}) array")
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.equal(np.mod(values, 1), 0)):
            raise _Error("inputs are not integers; the accelerator streams integer "
                         f"{info.dtype} values (give the quantized integers, not floats)")
    k, b = elems_per_word(info), int(info.elem_bits)
    v = values.astype(np.int64).reshape(-1, k)
    lo, hi, _ = dtype_range(info.dtype)
    if info.dtype == "BIPOLAR":
        if not np.all(np.isin(v, (-1, 1))):
            raise _Error("BIPOLAR inputs must be -1 or +1")
        v = (v + 1) // 2
    else:
        bad = np.flatnonzero((v < lo) | (v > hi))
        if bad.size:
            raise _Error(f"input value {int(v.flat[bad[0]])} (flat index {int(bad[0])}) is outside "
                         f"{info.dtype} [{lo}, {hi}]; quantize the inputs to the accelerator's input type")
    nbytes = word_bytes(info)
    if k * b > nbytes * 8:
        raise _Error(f"{k} x {b}-bit elements do not fit the {info.width}-bit input stream")
    if b in (8, 16, 32, 64):  # whole-byte elements: each word is the elements' bytes, then zero pad
        raw = v.astype(f"<u{b // 8}").view(np.uint8).reshape(v.shape[0], k * b // 8)
        out = np.zeros((v.shape[0], nbytes), np.uint8)
        out[:, :raw.shape[1]] = raw
        return out.tobytes(), v.shape[0]
    parts = []
    mask = np.uint64((1 << b) - 1)
    shifts = np.arange(b, dtype=np.uint64)
    for i in range(0, v.shape[0], _CHUNK_WORDS):
        u = v[i:i + _CHUNK_WORDS].astype(np.uint64) & mask
        bits = ((u[:, :, None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(u.shape[0], -1)
        bits = np.pad(bits, ((0, 0), (0, nbytes * 8 - bits.shape[1])))
        parts.append(np.packbits(bits, axis=1, bitorder="little").tobytes())
    return b"".join(parts), v.shape[0]


def unpack_stream(raw: bytes, n_words: int, info) -> np.ndarray:
    """Packed output words -> int64 (N, prod(normal_shape[1:]))."""
    b, k = int(info.elem_bits), elems_per_word(info)
    nbytes = word_bytes(info)
    _, _, signed = dtype_range(info.dtype)
    words = np.frombuffer(raw, dtype=np.uint8, count=n_words * nbytes).reshape(n_words, nbytes)
    if b in (8, 16, 32, 64) and info.dtype != "BIPOLAR":
        kind = "i" if signed else "u"
        vals = np.ascontiguousarray(words[:, :k * b // 8]).view(f"<{kind}{b // 8}").astype(np.int64)
    else:
        chunks = []
        for i in range(0, n_words, _CHUNK_WORDS):
            w = words[i:i + _CHUNK_WORDS]
            bits = np.unpackbits(w, axis=1, bitorder="little")[:, :k * b].reshape(w.shape[0], k, b)
            chunks.append((bits.astype(np.int64) << np.arange(b, dtype=np.int64)).sum(axis=-1))
        vals = np.concatenate(chunks) if chunks else np.zeros((0, k), np.int64)
        if info.dtype == "BIPOLAR":
            vals = 2 * vals - 1
        elif signed:
            vals = np.where(vals >= (1 << (b - 1)), vals - (1 << b), vals)
    return vals.reshape(-1, values_per_image(info))
