"""The deployment package's driver on a simulated PYNQ board (hw/driver/simboard.py).

The driver (the package's driver.py, unchanged) allocates pynq buffers, packs inputs,
programs pynq's own AXI DMA driver, which writes the simulated DMA's registers; the DMA's
bytes go through the Verilator simulation of the accelerator graph the bitstream gets
(with the shell's width converters). Its outputs must equal the build's rtlsim and intsim
outputs bit for bit: for tfc-w2a2 (words the DMA takes as they are) and a 3-channel conv
net (24-bit input words: a width converter between DMA and accelerator, and a layout head
that really permutes)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pynq")

from flow.bitstream import check_build, prepare, resolve_board, write_deploy_package  # noqa: E402
from flow.transforms.float_tail import FloatTail  # noqa: E402
from hw.driver.simboard import SimulatedBoard  # noqa: E402
from hw.errors import HwError  # noqa: E402

TESTS = Path(__file__).resolve().parent.parent


def _package(build: Path, tmp: Path):
    info = check_build(build)
    prepared = prepare(build, tmp / "bitstream", resolve_board(info, None), info)
    deploy = write_deploy_package(build, tmp / "deploy", prepared, info=info)
    return prepared, deploy


def _deployed(deploy: Path, name: str):
    """Import the package's own copy of a module, as the board's Python would (`driver`,
    `validate` from the package folder)."""
    sys.path.insert(0, str(deploy))
    try:
        for mod in ("driver", "validate", "packing"):
            sys.modules.pop(mod, None)
        spec = importlib.util.spec_from_file_location(name, deploy / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(deploy))


def _board(prepared, deploy: Path, tmp: Path) -> SimulatedBoard:
    config = json.loads((deploy / "accel.json").read_text())
    return SimulatedBoard(prepared.model_path, config, tmp / "rtl", cache_dir=tmp / "simcache")


@pytest.fixture(scope="module")
def tfc(tmp_path_factory):
    from flow.config import BuildConfig
    from flow.pipeline import run_build

    tmp = tmp_path_factory.mktemp("driver_tfc")
    run_build(BuildConfig(out=tmp / "build", model="tfc-w2a2", samples=100))
    prepared, deploy = _package(tmp / "build", tmp)
    return tmp, prepared, deploy


def test_tfc_driver_equals_rtlsim(tfc):
    tmp, prepared, deploy = tfc
    build = tmp / "build"
    assert not prepared.plan.adapt_in and not prepared.plan.adapt_out  # 128- and 8-bit words: DMA widths
    driver = _deployed(deploy, "driver")
    x = np.load(build / "outputs" / "inputs.npy")
    with _board(prepared, deploy, tmp) as board:
        accel = driver.Accelerator(deploy, overlay=board.overlay, batch_size=32)
        y = accel.integers(x)
        assert len(board.runs) == 4 and sum(r.images for r in board.runs) == 100  # 32 + 32 + 32 + 4
        assert np.array_equal(y, np.load(build / "outputs" / "rtlsim.npy"))
        assert np.array_equal(y, np.load(build / "outputs" / "intsim.npy"))
        logits = accel(x[:10])
        tail = FloatTail.load(build / "float_tail.npz")
        assert np.array_equal(logits, tail.apply(y[:10]))
        labels = np.load(build / "outputs" / "labels.npy")
        acc = 100.0 * np.mean(accel.classify(x) == labels)
        report = json.loads((build / "report.json").read_text())
        assert acc == pytest.approx(report["accuracy"]["intsim"])
        assert accel.images == 100 + 10 + 100 and accel.dma_seconds > 0


def test_tfc_validate_script(tfc, capsys):
    """validate.py as shipped: the bit-exact check on the build's images, then accuracy and
    images/s on the MNIST test set (its first 400 images here)."""
    tmp, prepared, deploy = tfc
    validate = _deployed(deploy, "validate")
    with _board(prepared, deploy, tmp) as board:
        r = validate.main(["--limit", "400", "--folder", str(deploy)], overlay=board.overlay)
    out = capsys.readouterr().out
    assert r["reference_mismatches"] == 0 and r["reference_images"] == 100
    assert r["images"] == 400 and 90.0 < r["accuracy"] <= 100.0
    assert "bit-exact check: 0 / 100 images differ" in out
    assert f"accuracy: {r['accuracy']:.2f} %" in out and "images/s" in out
    with np.load(deploy / "mnist_test.npz") as z:
        assert z["x"].shape == (10000, 784) and z["x"].dtype == np.uint8 and z["y"].shape == (10000,)


def test_board_catches_a_wrong_beat_count(tfc):
    """The simulated DMA ends S2MM transfers where the shell's TLAST counter would: a driver
    that writes the wrong beat count into the GPIO fails as on the board."""
    tmp, prepared, deploy = tfc
    x = np.load(tmp / "build" / "outputs" / "inputs.npy")[:8]
    from hw.driver.accel import Accelerator

    with _board(prepared, deploy, tmp) as board:
        accel = Accelerator(deploy, overlay=board.overlay)
        accel.shell = dict(accel.shell, out_beats_per_image=accel.shell["out_beats_per_image"] * 2)
        with pytest.raises(HwError, match="that the accelerator will not send"):  # S2MM would hang
            accel.integers(x)
    with _board(prepared, deploy, tmp) as board:
        accel = Accelerator(deploy, overlay=board.overlay)
        accel.shell = dict(accel.shell, out_beats_per_image=1)  # TLAST too early: a short transfer
        with pytest.raises(RuntimeError, match="the DMA received 8 bytes for 8 images; expected 80"):
            accel.integers(x)


def test_board_needs_the_cache_maintenance(tfc):
    """Buffers have a CPU view and a DDR copy: pynq's DMA driver flushes and invalidates; data
    written to a buffer without a flush does not reach the accelerator."""
    tmp, prepared, deploy = tfc
    with _board(prepared, deploy, tmp) as board:
        import pynq

        buf = pynq.allocate(shape=(16,), dtype=np.uint8)
        buf[:] = 7
        a = board.device.default_memory.allocations[buf.bo]
        assert bytes(a.ddr) == bytes(16)
        buf.flush()
        assert bytes(a.ddr) == bytes([7] * 16)


def test_driver_runs_without_qnnflow(tfc):
    """The package's driver and packing import with nothing of qnnflow (nor qonnx) present."""
    import subprocess

    _, _, deploy = tfc
    code = ("import sys; sys.modules['hw'] = None; sys.modules['qonnx'] = None; sys.modules['flow'] = None\n"
            "import driver, packing, validate\n"
            "assert driver.pack_stream is packing.pack_stream\n"
            "c = driver.load_config('.')\n"
            "print(c['format'], c['bitfile'], c['shell']['dma'])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=deploy, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["qnnflow-accel/1", "qnnflow.bit", "axi_dma_0"]


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    import torch

    import flow
    from models.cnn import calibrate

    spec = importlib.util.spec_from_file_location("conv_build_tests", TESTS / "flow" / "test_conv_build.py")
    conv_tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conv_tests)
    tmp = tmp_path_factory.mktemp("driver_conv")
    torch.manual_seed(1)
    module = conv_tests.TinyRGBNet()
    x = np.random.default_rng(0).integers(0, 256, size=(40, 3, 8, 8))
    calibrate(module, torch.from_numpy(x.astype(np.float32) / 256))
    np.save(tmp / "x.npy", x.reshape(len(x), -1))
    # all 3 channels of a pixel in one input word (24 bits), all 5 outputs in one output word:
    # neither is a width the AXI DMA can have, so the shell puts width converters on both sides
    folding = {"FMPadding_rtl_0": {"SIMD": 3}, "ConvolutionInputGenerator_rtl_0": {"SIMD": 3},
               "MVAU_rtl_0": {"PE": 1, "SIMD": 3}, "Thresholding_rtl_0": {"PE": 1},
               "MVAU_rtl_1": {"PE": 5, "SIMD": 1}}
    (tmp / "folding.json").write_text(json.dumps(folding))
    report = flow.build(module, tmp / "build", input_shape=(3, 8, 8), samples=40, input_npy=tmp / "x.npy",
                        folding=tmp / "folding.json")
    assert report["hls_layers"] == [] and report["verify"]["mismatches"]["rtlsim"] == 0
    prepared, deploy = _package(tmp / "build", tmp)
    return tmp, prepared, deploy


def test_conv_driver_equals_rtlsim(conv):
    tmp, prepared, deploy = conv
    build = tmp / "build"
    plan = prepared.plan
    # 3 x 8-bit pixels per word: a converter from 64-bit DMA beats (192 bytes per image); 5 x 16-bit
    # outputs per word: a converter to 16-bit beats (10 bytes per image, 5 beats)
    assert (plan.word_in_bits, plan.dma_in_bits, plan.in_bytes_per_image) == (24, 64, 192)
    assert (plan.word_out_bits, plan.dma_out_bits, plan.out_bytes_per_image) == (80, 16, 10)
    from qonnx.core.modelwrapper import ModelWrapper

    ops = [n.op_type for n in ModelWrapper(str(prepared.model_path)).graph.node]
    assert ops[0] == ops[-1] == "StreamingDataWidthConverter_rtl"
    driver = _deployed(deploy, "driver")
    x = np.load(build / "outputs" / "inputs.npy")
    assert x.shape == (40, 192)
    with _board(prepared, deploy, tmp) as board:
        accel = driver.Accelerator(deploy, overlay=board.overlay, batch_size=16)
        y = accel.integers(x)
        assert len(board.runs) == 3
    assert np.array_equal(y, np.load(build / "outputs" / "rtlsim.npy"))
    assert np.array_equal(y, np.load(build / "outputs" / "intsim.npy"))
    # the layout head matters: NCHW fed as it is gives other outputs
    with _board(prepared, deploy, tmp) as board:
        accel = driver.Accelerator(deploy, overlay=board.overlay)
        accel.head = None
        assert not np.array_equal(accel.integers(x), y)
