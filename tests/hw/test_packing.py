"""hw/packing.py: FINN's stream packing without qonnx (the deployment package ships it)."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import hw.packing as packing
from hw.errors import HwError


def _info(dtype: str, bits: int, k: int, words: int = 3) -> SimpleNamespace:
    return SimpleNamespace(width=(k * bits + 7) // 8 * 8, dtype=dtype, elem_bits=bits,
                           folded_shape=(1, words, k), normal_shape=(1, words * k))


@pytest.mark.parametrize("dtype, bits, k", [("UINT8", 8, 5), ("INT8", 8, 3), ("INT16", 16, 2), ("UINT32", 32, 3),
                                            ("INT2", 2, 7), ("UINT4", 4, 3), ("INT12", 12, 5), ("BIPOLAR", 1, 9),
                                            ("BINARY", 1, 4), ("TERNARY", 2, 6)])
def test_whole_byte_fast_path_and_bit_path_agree_with_finn(dtype, bits, k):
    from finn.util.data_packing import finnpy_to_packed_bytearray
    from qonnx.core.datatype import DataType

    dt = DataType[dtype]
    assert packing.dtype_range(dtype) == (int(dt.min()), int(dt.max()), dt.signed())
    rng = np.random.default_rng(1)
    info = _info(dtype, bits, k)
    lo, hi = (int(dt.min()), int(dt.max())) if bits < 24 else (-(1 << 20), 1 << 20)  # FINN packs from float32
    x = rng.choice([-1, 1], size=(4, 3 * k)) if dtype == "BIPOLAR" else \
        rng.integers(max(lo, int(dt.min())), hi + 1, size=(4, 3 * k))
    raw, n = packing.pack_stream(x, info)
    finn = finnpy_to_packed_bytearray(x.reshape(-1, k).astype(np.float32), dt, reverse_inner=True, reverse_endian=True)
    assert n == 12 and raw == np.ascontiguousarray(finn).tobytes()
    assert np.array_equal(packing.unpack_stream(raw, n, info), x)


def test_chunked_bit_path_equals_one_chunk(monkeypatch):
    info = _info("INT3", 3, 5, words=10)
    x = np.random.default_rng(2).integers(-4, 4, size=(7, 50))
    whole = packing.pack_stream(x, info)
    monkeypatch.setattr(packing, "_CHUNK_WORDS", 4)
    assert packing.pack_stream(x, info) == whole
    assert np.array_equal(packing.unpack_stream(whole[0], whole[1], info), x)


def test_errors_name_the_value_and_type():
    with pytest.raises(HwError, match=r"input value 300 .* outside UINT8 \[0, 255\]"):
        packing.pack_stream(np.array([[1, 2, 300]]), _info("UINT8", 8, 3, words=1))
    with pytest.raises(HwError, match="not an integer type"):
        packing.dtype_range("FLOAT32")


def test_the_copy_runs_without_qnnflow(tmp_path):
    """The deployment package's packing.py: numpy only, its own error type."""
    import shutil

    shutil.copy(packing.__file__, tmp_path / "packing.py")
    code = ("import sys; sys.modules['hw'] = None; sys.modules['qonnx'] = None\n"
            "import numpy as np, packing\n"
            "from types import SimpleNamespace as S\n"
            "i = S(width=16, dtype='INT4', elem_bits=4, folded_shape=(1, 2, 3), normal_shape=(1, 6))\n"
            "raw, n = packing.pack_stream(np.array([[-8, 7, 0, 1, -1, 3]]), i)\n"
            "print(raw.hex(), n, packing.unpack_stream(raw, n, i).tolist())\n"
            "try:\n    packing.pack_stream(np.array([[9, 0, 0, 0, 0, 0]]), i)\n"
            "except ValueError as e:\n    print(type(e).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    raw, n, vals, err = out.stdout.split(maxsplit=3)
    i = _info("INT4", 4, 3, words=2)
    assert bytes.fromhex(raw) == packing.pack_stream(np.array([[-8, 7, 0, 1, -1, 3]]), i)[0] and n == "2"
    assert err.strip().endswith("_Error")
