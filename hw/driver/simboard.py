"""A PYNQ board in software: the shell's AXI DMA and GPIO, with the accelerator simulated
by Verilator, behind pynq's own Device, MMIO and DMA driver classes.

    with SimulatedBoard(accel_graph, config, rtl_dir) as board:
        accel = Accelerator(deploy_dir, overlay=board.overlay)   # the deployment package's driver
        y = accel(x)                                              # through pynq.lib.dma.DMA -> Verilator

pynq 4.0 installs on x86 but ships no mock device (`allocate` raises "No Devices Found").
`SimDevice` is a pynq Device with register access (pynq's REGISTER_RW capability, as
for XRT devices), so pynq's unchanged DMA and MMIO drivers program it:
- the AXI DMA's registers (PG021, simple mode: DMACR, DMASR, SA/DA, LENGTH): writing
  MM2S_LENGTH reads the bytes from "DDR" and streams them through the simulated
  accelerator; an armed S2MM channel receives the output bytes until TLAST, which the
  shell's counter (hw/rtl/qnn_axis_tlast.v) raises after the beats written into the GPIO;
  a packet longer than the S2MM buffer sets DMAIntErr, as on the hardware;
- memory: each buffer has a CPU view and a separate "DDR" copy, moved by pynq's
  flush/invalidate, so a driver that skipped a cache operation would read stale data;
- the accelerator: hw.stitch + hw.rtlsim.simulate on the DMA's bytes (raw, no packing
  of ours in between) for the graph with the shell's width converters (hw.shell).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..errors import HwError

DMA_BASE = 0x4040_0000
GPIO_BASE = 0x4120_0000
ADDR_RANGE = 0x1_0000
DDR_BASE = 0x1000_0000
PAGE = 4096

# AXI DMA status register bits (PG021)
HALTED, IDLE, DMA_INT_ERR, DMA_DEC_ERR, IOC_IRQ = 0x1, 0x2, 0x10, 0x40, 0x1000
POLL_LIMIT = 100_000  # status reads of a channel that cannot finish before we call it a hang


def _pynq():
    try:
        import pynq
        import pynq.lib.dma  # noqa: F401 - pynq's AXI DMA driver, programmed through our registers
        from pynq.buffer import PynqBuffer
    except ImportError:
        raise HwError("pynq is not installed; install the pinned version: pip install --no-deps "
                      "pynq==4.0.0 (with its pins in requirements.lock)") from None
    return pynq, PynqBuffer


class _Allocation:
    def __init__(self, bo: int, addr: int, nbytes: int):
        self.bo, self.addr, self.nbytes = bo, addr, nbytes
        self.host = bytearray(nbytes)   # what the CPU sees (its cache)
        self.ddr = bytearray(nbytes)    # what the DMA sees


class SimMemory:
    """Contiguous "DDR" buffers for pynq.allocate."""

    def __init__(self, device):
        self.device = device
        self.allocations: dict[int, _Allocation] = {}
        self._next = DDR_BASE

    def allocate(self, shape, dtype, **kwargs):
        _, PynqBuffer = _pynq()

        class _SimBuffer(PynqBuffer):
            device = None  # numpy 2 made ndarray.device read-only; pynq 4.0 assigns it

        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        a = _Allocation(len(self.allocations) + 1, self._next, nbytes)
        self._next += max(PAGE, -(-nbytes // PAGE) * PAGE)
        self.allocations[a.bo] = a
        return _SimBuffer(shape, dtype, buffer=a.host, device=self.device, device_address=a.addr,
                          bo=a.bo, coherent=False)

    def find(self, addr: int, nbytes: int) -> tuple[_Allocation, int] | None:
        for a in self.allocations.values():
            if a.addr <= addr and addr + nbytes <= a.addr + a.nbytes:
                return a, addr - a.addr
        return None


class _Channel:
    def __init__(self, name: str):
        self.name = name
        self.cr = 0
        self.sr = HALTED
        self.addr = 0
        self.length = 0
        self.armed = False
        self.polls = 0


class SimulatedBoard:
    """The shell of hw/shell.py around a simulated accelerator.

    accel_graph: the accelerator's HW graph as the bitstream gets it (with the DMA width
    converters, `qnnflow bitstream`'s BUILD/bitstream/accel.onnx or flow.bitstream.prepare);
    config: the deployment package's accel.json (its `shell` section: stream widths,
    bytes per image, cell names); rtl_dir: where to stitch the RTL."""

    def __init__(self, accel_graph, config: dict, rtl_dir: Path, *, cache_dir: Path | None = None,
                 codegen_fallback: Path | None = None):
        from ..stitch import stitch

        pynq, _ = _pynq()
        self.config = config
        self.shell = config["shell"]
        self.design = stitch(accel_graph, Path(rtl_dir), codegen_fallback=codegen_fallback)
        self.cache_dir = cache_dir
        self.clock_mhz = float(config.get("clock_mhz") or 100.0)
        in_img = self.design.input.words_per_image * self.design.input.word_bytes
        out_img = self.design.output.words_per_image * self.design.output.word_bytes
        if (in_img, out_img) != (self.shell["in_bytes_per_image"], self.shell["out_bytes_per_image"]):
            raise HwError(f"the accelerator graph streams {in_img} / {out_img} bytes per image, accel.json "
                          f"says {self.shell['in_bytes_per_image']} / {self.shell['out_bytes_per_image']}: "
                          "they are from different builds")
        self.in_beat = self.shell["dma_in_bits"] // 8
        self.out_beat = self.shell["dma_out_bits"] // 8
        self.device = SimDevice(self)
        self.mm2s, self.s2mm = _Channel("MM2S"), _Channel("S2MM")
        self.gpio = 1                      # C_DOUT_DEFAULT
        self._in_queue = bytearray()       # bytes of an incomplete image
        self._out_queue = bytearray()      # output bytes not yet taken by S2MM
        self._beat = 0                     # the TLAST counter's state
        self._received = bytearray()       # the current S2MM packet
        self.runs: list = []               # hw.rtlsim results, one per MM2S transfer
        dma = pynq.lib.dma.DMA({
            "phys_addr": DMA_BASE, "addr_range": ADDR_RANGE, "device": self.device, "interrupts": {},
            "fullpath": self.shell["dma"], "type": "xilinx.com:ip:axi_dma:7.1",
            "parameters": {"c_include_sg": "0", "c_sg_length_width": str(self.shell["max_transfer_bytes"].bit_length()),
                           "c_include_mm2s": "1", "c_include_s2mm": "1",
                           "c_m_axi_mm2s_data_width": str(max(32, self.shell["dma_in_bits"])),
                           "c_m_axi_s2mm_data_width": str(max(32, self.shell["dma_out_bits"])),
                           "c_include_mm2s_dre": "0", "c_include_s2mm_dre": "0",
                           "c_mm2s_burst_size": "16", "c_s2mm_burst_size": "16", "c_micro_dma": "0"}})
        gpio = pynq.DefaultIP({"phys_addr": GPIO_BASE, "addr_range": ADDR_RANGE, "device": self.device,
                               "fullpath": self.shell["beats"], "type": "xilinx.com:ip:axi_gpio:2.0"})
        self.overlay = SimpleNamespace(**{self.shell["dma"]: dma, self.shell["beats"]: gpio})

    # -- pynq's active device while in use ------------------------------------------------
    def __enter__(self):
        pynq, _ = _pynq()
        Device = pynq.Device
        self._saved = Device.__dict__.get("_active_device", None)
        Device.active_device = self.device
        return self

    def __exit__(self, *exc):
        pynq, _ = _pynq()
        if self._saved is None:
            if "_active_device" in pynq.Device.__dict__:
                del pynq.Device._active_device
        else:
            pynq.Device.active_device = self._saved
        return False

    @property
    def cycles(self) -> int:
        return sum(r.total_cycles for r in self.runs)

    # -- registers ---------------------------------------------------------------------
    def read(self, addr: int) -> int:
        if GPIO_BASE <= addr < GPIO_BASE + ADDR_RANGE:
            return self.gpio if addr - GPIO_BASE == 0 else 0
        if not DMA_BASE <= addr < DMA_BASE + ADDR_RANGE:
            raise HwError(f"read of unmapped address {addr:#x} (the shell maps the DMA at {DMA_BASE:#x} "
                          f"and the GPIO at {GPIO_BASE:#x})")
        off = addr - DMA_BASE
        ch = self.mm2s if off < 0x30 else self.s2mm
        reg = off if off < 0x30 else off - 0x30
        if reg == 0x00:
            return ch.cr
        if reg == 0x04:
            if ch is self.s2mm and ch.armed and not ch.sr & IDLE:
                ch.polls += 1
                if ch.polls > POLL_LIMIT:
                    raise HwError(f"S2MM waits for the end of a packet (TLAST after {self.gpio} beats of "
                                  f"{self.out_beat} bytes, {len(self._received)} bytes received so far) that the "
                                  "accelerator will not send: the driver sent too few images or wrote a "
                                  "wrong beat count into the GPIO")
            return ch.sr
        if reg in (0x18, 0x1C):
            return (ch.addr >> (32 if reg == 0x1C else 0)) & 0xFFFFFFFF
        if reg == 0x28:
            return ch.length
        return 0

    def write(self, addr: int, value: int) -> None:
        if GPIO_BASE <= addr < GPIO_BASE + ADDR_RANGE:
            if addr - GPIO_BASE == 0:
                self.gpio = value & 0xFFFFFFFF
            return
        if not DMA_BASE <= addr < DMA_BASE + ADDR_RANGE:
            raise HwError(f"write to unmapped address {addr:#x}")
        off = addr - DMA_BASE
        ch = self.mm2s if off < 0x30 else self.s2mm
        reg = off if off < 0x30 else off - 0x30
        if reg == 0x00:
            if value & 0x4:  # soft reset
                ch.__init__(ch.name)
                return
            ch.cr = value
            ch.sr = ch.sr & ~HALTED if value & 1 else ch.sr | HALTED
        elif reg == 0x04:
            ch.sr &= ~(value & 0x7000)  # interrupt bits: write 1 to clear
        elif reg == 0x18:
            ch.addr = (ch.addr & ~0xFFFFFFFF) | value
        elif reg == 0x1C:
            ch.addr = (ch.addr & 0xFFFFFFFF) | (value << 32)
        elif reg == 0x28:
            self._start(ch, value)

    def _start(self, ch: _Channel, length: int) -> None:
        if ch.sr & HALTED:
            return  # the DMA ignores a length written while halted
        ch.sr &= ~IDLE
        ch.length, ch.polls = length, 0
        if length == 0:
            ch.sr |= DMA_INT_ERR | HALTED
            return
        if ch is self.mm2s:
            self._mm2s(length)
        else:
            ch.armed = True
            self._received = bytearray()
        self._s2mm()

    def _mm2s(self, length: int) -> None:
        ch = self.mm2s
        hit = self.device.default_memory.find(ch.addr, length)
        if hit is None:
            ch.sr |= DMA_DEC_ERR | HALTED
            return
        if length % self.in_beat:
            raise HwError(f"MM2S transfer of {length} bytes is not whole {self.in_beat}-byte DMA beats; "
                          "the accelerator's width converter would take a partial beat as a full one")
        a, off = hit
        self._in_queue += a.ddr[off:off + length]
        image = self.shell["in_bytes_per_image"]
        whole = len(self._in_queue) // image * image
        if whole:
            from ..rtlsim import simulate

            r = simulate(self.design, bytes(self._in_queue[:whole]), clock_mhz=self.clock_mhz,
                         cache_dir=self.cache_dir)
            self.runs.append(r)
            self._out_queue += r.output_bytes
            del self._in_queue[:whole]
        ch.sr |= IDLE | IOC_IRQ

    def _s2mm(self) -> None:
        ch = self.s2mm
        if not ch.armed:
            return
        count = max(1, self.gpio)
        while len(self._out_queue) >= self.out_beat:
            beat = self._out_queue[:self.out_beat]
            del self._out_queue[:self.out_beat]
            self._received += beat
            last = self._beat + 1 >= count
            self._beat = 0 if last else self._beat + 1
            if len(self._received) > ch.length:
                ch.sr |= DMA_INT_ERR | HALTED  # packet longer than the buffer (PG021)
                ch.armed = False
                return
            if last:
                hit = self.device.default_memory.find(ch.addr, len(self._received))
                if hit is None:
                    ch.sr |= DMA_DEC_ERR | HALTED
                else:
                    a, off = hit
                    a.ddr[off:off + len(self._received)] = self._received
                    ch.length = len(self._received)  # S2MM_LENGTH: bytes received
                    ch.sr |= IDLE | IOC_IRQ
                ch.armed = False
                return


def SimDevice(board: SimulatedBoard):
    """A pynq Device (created on first use, so that importing this module needs no pynq)."""
    pynq, _ = _pynq()

    class _SimDevice(pynq.Device):
        def __init__(self, board):
            super().__init__("qnnflow-simulated-board")
            self.board = board
            self.default_memory = SimMemory(self)
            self.name = "qnnflow simulated board (Verilator)"

        def has_capability(self, cap):
            return cap == "REGISTER_RW"

        def read_registers(self, address, length):
            return int(self.board.read(address)).to_bytes(4, "little")[:length]

        def write_registers(self, address, data):
            if isinstance(data, int):
                self.board.write(address, data)
                return
            data = bytes(data)
            for i in range(0, len(data), 4):
                self.board.write(address + i, int.from_bytes(data[i:i + 4], "little"))

        def _allocation(self, bo):
            return self.default_memory.allocations[bo]

        def flush(self, bo, offset, vaddr, nbytes):
            a = self._allocation(bo)
            a.ddr[offset:offset + nbytes] = a.host[offset:offset + nbytes]

        def invalidate(self, bo, offset, vaddr, nbytes):
            a = self._allocation(bo)
            a.host[offset:offset + nbytes] = a.ddr[offset:offset + nbytes]

        def close(self):
            pass

    return _SimDevice(board)
