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
BINARY_IMPLS = ("xnor", "lut", "dsp")


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
    binary_impl: str = "xnor"         # binary layers: "xnor" (our LUT cores: XNOR popcount, +-1 x integers),
                                      # "lut" (those, and -1/0/+1 weights x integers on the same core) or
                                      # "dsp" (bipolar relabelled INT2, FINN's DSP-based MVAU_rtl)
    input_shape: tuple | None = None  # Python API: the module's sample shape, when it cannot be inferred
    allow_over_budget: bool = False   # build even where the estimate exceeds the board's part (flow/fit.py)

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
            read_folding(self.folding)
            self.target_fps = None
        if self.checkpoint is not None and self.model is None:
            raise FlowError("--checkpoint goes with --model (a zoo architecture); an --onnx file or a module "
                            "already holds its weights")
        if self.input_npy is not None:
            if self.model is not None:
                raise FlowError("--input gives verification inputs for --onnx (or Python API) builds; --model "
                                "builds verify on MNIST test images")
            self.input_npy = Path(self.input_npy)
            load_inputs(self.input_npy)

    @property
    def fpga_part(self) -> str:
        return self.board_info.part

    @property
    def clk_period_ns(self) -> float:
        return 1000.0 / float(self.clock_mhz)



# folding attributes that count something: positive integers in a folding JSON
_FOLDING_COUNTS = ("PE", "SIMD", "depth")


def read_folding(path: Path) -> dict:
    """A FINN folding JSON ({node name: {attribute: value}}, "Defaults" optional), checked
    for form before any step runs; whether its names and factors fit the graph is
    checked when it is applied (step set_folding)."""
    import json

    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FlowError(f"--folding {path} is not valid JSON ({exc}); write {{\"<node>\": {{\"PE\": 4, "
                        "\"SIMD\": 8}}, ...}} as FINN's folding_config.json") from None
    if not isinstance(cfg, dict) or not all(isinstance(v, dict) for v in cfg.values()):
        raise FlowError(f"--folding {path} must map node names to attribute objects, e.g. "
                        "{\"MVAU_rtl_0\": {\"PE\": 4, \"SIMD\": 8}} (a build's folding_config.json)")
    for node, attrs in cfg.items():
        for k in _FOLDING_COUNTS:
            v = attrs.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise FlowError(f"--folding {path}: {node} {k}={v!r}; {k} must be an integer >= 1")
    return cfg


def load_inputs(path: Path):
    """--input: a readable .npy of finite integer values, one sample per row (or a single
    sample), checked before any step runs; its size and range against the graph's input
    are checked once the input is known (step qonnx_to_finn)."""
    import numpy as np

    if not Path(path).is_file():
        raise FlowError(f"--input {path} does not exist; give a .npy file of integer inputs")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for bad files
        raise FlowError(f"--input {path} is not a readable .npy file ({exc}); save it with numpy.save") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
        raise FlowError(f"--input {path} holds {getattr(x, 'dtype', type(x))} values; it must hold numbers")
    if x.size == 0:
        raise FlowError(f"--input {path} is empty; it needs at least one sample")
    if not np.all(np.isfinite(x)) or not np.array_equal(x, np.rint(x)):
        raise FlowError(f"--input {path}: inputs must be integers; found non-integer values")
    return x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(1, -1)


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
