"""Driver for a qnnflow accelerator on a PYNQ board (Zynq shell with AXI DMA, hw/shell.py).

    from driver import Accelerator           # in the deployment package (qnnflow bitstream)
    accel = Accelerator()                    # loads the overlay named in accel.json
    logits = accel(x)                        # x: (N, ...) integer inputs, e.g. MNIST pixels 0..255
    labels = accel.classify(x)

Per batch: the layout head (e.g. NCHW -> NHWC) is applied in software, the images are
packed into the input stream's words exactly as the RTL simulation packs them
(packing.py, a copy of qnnflow's hw/packing.py), the AXI GPIO gets the number of output
beats (the shell raises TLAST after them), the DMA moves the batch through the
accelerator, the output words are unpacked to integers and the float tail (the final
dequantising scale, float_tail.npz) is applied in software. Needs numpy and pynq only.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

try:  # inside qnnflow
    from hw.packing import pack_stream, unpack_stream, values_per_image, words_per_image
except ImportError:  # the deployment package: packing.py beside this file
    from packing import pack_stream, unpack_stream, values_per_image, words_per_image

CONFIG = "accel.json"
BUFFER_BYTES = 32 << 20  # input + output buffers of one batch (contiguous memory is scarce)


def load_config(folder) -> dict:
    p = Path(folder) / CONFIG
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing; run the driver from a qnnflow deployment package "
                                "(qnnflow bitstream BUILD writes BUILD/deploy/)")
    return json.loads(p.read_text())


def _float_tail(path: Path) -> list[tuple[str, np.ndarray]]:
    """float_tail.npz: elementwise ops applied in order ('NN_Mul', ...), as qnnflow's FloatTail."""
    with np.load(path) as z:
        return [(k.split("_", 1)[1], z[k].astype(np.float32)) for k in sorted(z.files)]


class Accelerator:
    """The accelerator behind an overlay. `overlay`: a loaded pynq.Overlay (default: load
    the package's bitfile) or anything with the same DMA and GPIO attributes (e.g.
    hw.driver.simboard.SimulatedBoard().overlay)."""

    def __init__(self, folder=None, overlay=None, batch_size: int | None = None):
        self.folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
        c = self.config = load_config(self.folder)
        self.input = SimpleNamespace(**c["input"])
        self.output = SimpleNamespace(**c["output"])
        self.shell = c["shell"]
        if overlay is None:
            from pynq import Overlay

            overlay = Overlay(str(self.folder / c["bitfile"]))
        self.overlay = overlay
        self.dma = getattr(overlay, self.shell["dma"])
        self.beats = getattr(overlay, self.shell["beats"])
        self.topk = int(c.get("topk") or 0)
        self.tail = _float_tail(self.folder / c["float_tail"]) if c.get("float_tail") else []
        self.head = None
        if c.get("layout_head"):
            with np.load(self.folder / c["layout_head"]) as z:
                self.head = (z["index"].astype(np.int64), tuple(int(v) for v in z["out_shape"]))
        ib, ob = self.shell["in_bytes_per_image"], self.shell["out_bytes_per_image"]
        limit = min(int(self.shell["max_transfer_bytes"]) // max(ib, ob), max(1, BUFFER_BYTES // (ib + ob)))
        self.batch_size = max(1, min(int(batch_size or limit), limit))
        self._ibuf = self._obuf = None
        self.dma_seconds = 0.0  # time spent in DMA transfers (the accelerator's own time, and DDR)
        self.images = 0

    # -- the steps ---------------------------------------------------------------------
    def to_accelerator_layout(self, x: np.ndarray) -> np.ndarray:
        """Network inputs (N, ...) -> the accelerator's input layout (the layout head)."""
        x = np.asarray(x)
        flat = x.reshape(len(x), -1)
        if self.head is None:
            return flat
        index, shape = self.head
        if flat.shape[1] != index.size:
            raise ValueError(f"inputs hold {flat.shape[1]} values per sample; the model takes {index.size}")
        return flat[:, index].reshape((len(x),) + shape)

    def apply_tail(self, y: np.ndarray) -> np.ndarray:
        """The accelerator's integers -> the network's outputs (float32)."""
        out = y.astype(np.float32)
        for op, c in self.tail:
            out = {"Mul": np.multiply, "Add": np.add, "Div": np.divide, "Sub": np.subtract}[op](out, c)
        return out.astype(np.float32)

    def _buffers(self):
        if self._ibuf is None:
            from pynq import allocate

            bs = self.batch_size
            self._ibuf = allocate(shape=(bs * self.shell["in_bytes_per_image"],), dtype=np.uint8)
            self._obuf = allocate(shape=(bs * self.shell["out_bytes_per_image"],), dtype=np.uint8)
        return self._ibuf, self._obuf

    def _run_batch(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        raw, _ = pack_stream(x, self.input)
        ibuf, obuf = self._buffers()
        n_in, n_out = n * self.shell["in_bytes_per_image"], n * self.shell["out_bytes_per_image"]
        if len(raw) != n_in:
            raise ValueError(f"packed {len(raw)} bytes for {n} images; the shell expects {n_in}")
        ibuf[:n_in] = np.frombuffer(raw, dtype=np.uint8)
        self.beats.write(0x0, n * int(self.shell["out_beats_per_image"]))  # TLAST after the batch
        t0 = time.perf_counter()
        self.dma.recvchannel.transfer(obuf, nbytes=n_out)
        self.dma.sendchannel.transfer(ibuf, nbytes=n_in)  # flushes ibuf from the CPU cache first
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()                         # invalidates obuf's cached lines after
        self.dma_seconds += time.perf_counter() - t0
        self.images += n
        got = int(getattr(self.dma.recvchannel, "transferred", n_out) or n_out)
        if got != n_out:
            raise RuntimeError(f"the DMA received {got} bytes for {n} images; expected {n_out}")
        words = n * words_per_image(self.output)
        return unpack_stream(np.asarray(obuf[:n_out]).tobytes(), words, self.output)

    # -- the API -----------------------------------------------------------------------
    def integers(self, x) -> np.ndarray:
        """Inputs (N, ...) -> the accelerator's integer outputs (N, outputs): what qnnflow's
        verification chain calls intsim/rtlsim (BUILD/outputs/intsim.npy)."""
        x = self.to_accelerator_layout(x)
        out = np.empty((len(x), values_per_image(self.output)), dtype=np.int64)
        for i in range(0, len(x), self.batch_size):
            out[i:i + self.batch_size] = self._run_batch(x[i:i + self.batch_size])
        return out

    def __call__(self, x) -> np.ndarray:
        """Inputs -> the network's outputs: logits with the float tail applied, or with
        --topk builds the K best class indices."""
        y = self.integers(x)
        return y if self.topk else self.apply_tail(y)

    def classify(self, x) -> np.ndarray:
        """Inputs -> top-1 class per input."""
        y = self.integers(x)
        return y[:, 0] if self.topk else np.argmax(self.apply_tail(y), axis=1)
