"""The build configuration: one dataclass of the build's inputs, filled from the CLI or the
Python API and checked before any step runs (what steps learn goes to flow/record.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw.boards import BoardError, get_board

from .errors import FlowError

# How binary (bipolar) layers are implemented: qnnflow's LUT-based XNOR-popcount core, or
# FINN's DSP-based RTL matrix unit on bipolar values relabelled as INT2.
BINARY_IMPLS = ("xnor", "dsp")


@dataclass
class BuildConfig:
    out: Path
    model: str | None = None          # zoo name, e.g. "tfc-w2a2"
    checkpoint: Path | None = None    # default: the shipped checkpoint of `model`
    onnx: Path | None = None          # a QONNX or FINN-ONNX file exported elsewhere
    module: Any = None                # a Brevitas nn.Module (Python API)
    input_npy: Path | None = None     # verification inputs for --onnx builds
    board: str = "pynq-z1"
    clock_mhz: float | None = None    # default: the board's clock
    target_fps: float | None = 100_000.0
    folding: Path | None = None       # a FINN folding JSON; overrides target_fps
    samples: int = 1000               # verification samples (MNIST test images)
    verify: bool = True
    input_dtype: str = "UINT8"        # what the accelerator streams in
    input_scale: float = 1.0 / 256    # float input = integer input * input_scale
    force: bool = False
    rtlsim: bool = True               # insert/size FIFOs and simulate the stitched RTL (Verilator)
    exact_rounding: bool = True       # False: keep FINN's half-up thresholds (to compare)
    topk: int = 0                     # > 0: the accelerator ends in label select (top-K indices)
    binary_impl: str = "xnor"         # binary layers: "xnor" (our LUT XNOR-popcount core) or
                                      # "dsp" (bipolar relabelled INT2, FINN's DSP-based MVAU_rtl)
    input_shape: tuple | None = None  # Python API: the module's sample shape, when it cannot be inferred

    def __post_init__(self):
        self.out = Path(self.out)
        sources = [x is not None for x in (self.model, self.onnx, self.module)]
        if sum(sources) != 1:
            raise FlowError("give exactly one of --model NAME, --onnx FILE (or a module in the Python API)")
        try:
            self.board_info = get_board(self.board)
        except BoardError as exc:
            raise FlowError(str(exc)) from None
        if self.clock_mhz is None:
            self.clock_mhz = self.board_info.clock_mhz
        self.clock_mhz = _positive(self.clock_mhz, "--clock-mhz", "e.g. --clock-mhz 100")
        if self.target_fps is not None:
            self.target_fps = _positive(self.target_fps, "--fps", "e.g. --fps 100000, or --folding F.json")
        _check_input_dtype(self.input_dtype)
        if self.topk < 0:
            raise FlowError(f"--topk must be >= 1 (or 0 for logits), got {self.topk}")
        if self.binary_impl not in BINARY_IMPLS:
            raise FlowError(f"--binary-impl must be one of {', '.join(BINARY_IMPLS)}, got {self.binary_impl!r}")
        if self.samples < 1:
            raise FlowError(f"--samples must be >= 1, got {self.samples}")
        if self.folding is not None:
            self.folding = Path(self.folding)
            if not self.folding.is_file():
                raise FlowError(f"folding config {self.folding} does not exist")
            self.target_fps = None

    @property
    def fpga_part(self) -> str:
        return self.board_info.part

    @property
    def clk_period_ns(self) -> float:
        return 1000.0 / float(self.clock_mhz)



def _positive(value, option: str, hint: str) -> float:
    """A finite number > 0, or a one-line FlowError naming the option (checked before any step)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FlowError(f"{option} must be a number > 0, got {value!r} ({hint})") from None
    if not math.isfinite(v) or v <= 0:
        raise FlowError(f"{option} must be a finite number > 0, got {value!r} ({hint})")
    return v


def _check_input_dtype(name: str) -> None:
    """The accelerator streams integers: refuse an unknown or non-integer FINN datatype name."""
    from qonnx.core.datatype import DataType

    try:
        dt = DataType[str(name)]
    except Exception:
        raise FlowError(f"--input-dtype {name!r} is not a FINN datatype; use e.g. UINT8, INT8, UINT4 "
                        "or BIPOLAR") from None
    if not dt.is_integer():
        raise FlowError(f"--input-dtype {name} is not an integer type; the accelerator streams integers "
                        "(use e.g. UINT8 or INT8)")
