"""The PYNQ driver of a qnnflow accelerator, and a PYNQ board simulated with Verilator.

- `accel.py`, the driver: numpy integers in, the network's outputs out, through the
  AXI DMA of the shell (hw/shell.py). `qnnflow bitstream` copies it, with hw/packing.py
  and `validate.py`, into the deployment package; on the board it needs numpy and pynq.
- `simboard.py`: a pynq Device whose AXI DMA and GPIO registers drive the Verilator
  simulation of the same accelerator graph, so the unchanged driver (and pynq's own DMA
  driver) runs here against the RTL.
"""
from .accel import Accelerator, load_config

__all__ = ["Accelerator", "load_config"]
