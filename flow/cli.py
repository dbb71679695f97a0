"""The `qnnflow` command line."""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from rich.console import Console

from .errors import FlowError
from .cli_models import cmd_compact, cmd_eval, cmd_zoo  # the model-side commands

console = Console(stderr=True)


def _cmd_build(a) -> int:
    from .pipeline import run_build
    from .config import BuildConfig
    from .report import summary_table

    cfg = BuildConfig(out=Path(a.out), model=a.model, checkpoint=a.checkpoint and Path(a.checkpoint),
                      onnx=a.onnx and Path(a.onnx), input_npy=a.input and Path(a.input), board=a.board,
                      clock_mhz=a.clock_mhz, target_fps=a.fps, folding=a.folding, samples=a.samples,
                      verify=not a.no_verify, rtlsim=not a.no_rtlsim, force=a.force, input_dtype=a.input_dtype,
                      topk=a.topk, binary_impl=a.binary_impl, allow_over_budget=a.allow_over_budget)
    report = run_build(cfg, console=console)
    Console().print(summary_table(report))
    Console().print(f"build written to {cfg.out}/ (report.json, report.txt, steps/, outputs/)")
    v = report.get("verify") or {}
    return 1 if any(v.get("mismatches", {}).values()) else 0


def _cmd_verify(a) -> int:
    from .report import summary_table
    from .build_folder import record_verification
    from .verify import verify_build

    build = Path(a.build_dir)
    from .build_folder import open_build

    info = open_build(build)
    report = _read_report(build)
    samples = a.samples or info["samples"]
    record = build / "verify" / f"{time.strftime('%Y%m%d-%H%M%S')}-n{samples}"
    if record.exists():
        raise FlowError(f"{record} exists (two verify runs in one second?); run it again")
    res = verify_build(build, samples, out_dir=record / "outputs")
    kept = record_verification(build, report, record, res)
    console = Console()
    console.print(summary_table({**report, **res}))
    console.print(f"record written to {record}/"
                  + ("" if kept else f"; report.json keeps its stronger record "
                                     f"({report['verify']['samples']} samples)"))
    return 1 if any(res["verify"]["mismatches"].values()) else 0


def _read_report(build: Path) -> dict:
    from .build_folder import read_record

    rp = build / "report.json"
    if not rp.is_file():
        raise FlowError(f"{build} has no report.json; run `qnnflow build` first")
    return read_record(rp)


def _cmd_train(a) -> int:
    from rich.progress import Progress

    from models.train import TrainConfig, state_path, train
    from models.zoo import parse_name

    try:
        parse_name(a.name)
    except Exception as exc:
        raise FlowError(str(exc)) from None
    out = Path(a.out) if a.out else Path("build/train") / f"{a.name}.pt"
    argv = [x for x in sys.argv[1:] if x != "--resume"]
    cfg = TrainConfig(name=a.name, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, seed=a.seed,
                      dropout=a.dropout, shift=a.shift, init=a.init or "", resume=a.resume, threads=a.threads,
                      command="qnnflow " + " ".join(shlex.quote(x) for x in argv))
    try:
        with Progress(console=console) as progress:
            meta = train(cfg, out, progress=progress)
    except KeyboardInterrupt:
        if state_path(out).is_file():
            console.print(f"[red]interrupted[/red]: the last finished epoch is saved in {state_path(out)}; "
                          "run the same command with --resume to continue", soft_wrap=True)
            return 130
        raise
    Console().print(f"{a.name}: test top-1 {meta['test_accuracy']:.2f} % (val {meta['val_accuracy']:.2f} % at "
                    f"epoch {meta['best_epoch']}), {meta['train_seconds']:.0f} s; checkpoint {out}")
    return 0


_MVU_MODELS = {"finn-lanes": "matrix units: FINN's DSP lane arithmetic", "exact": "matrix units: exact products"}


def _cmd_rtlsim(a) -> int:
    import json

    import numpy as np

    from hw import rtlsim
    from hw.errors import HwError

    from .build_folder import open_build
    from .verify import load_layout_head, verification_inputs

    build = Path(a.build_dir)
    info = open_build(build)
    x, _ = verification_inputs(build, info, a.samples or info["samples"])
    head = load_layout_head(build)
    if head is not None:
        x = head.apply(x)  # the accelerator's own input layout (e.g. NHWC)
    try:
        r = rtlsim(build, x, stall=a.stall, trace=a.trace, seed=a.seed,
                   finn_dsp_lanes=None if a.mvu is None else a.mvu == "lanes", finn_rtl=a.finn_rtl)
    except HwError as exc:
        raise FlowError(str(exc)) from None
    n = len(r.outputs)
    ref_path = build / "outputs" / "intsim.npy"
    verdict = "no intsim reference"
    mismatches = None
    if ref_path.is_file():
        ref = np.load(ref_path)
        if len(ref) >= n:
            mismatches = int(np.any(r.outputs != ref[:n], axis=1).sum())
            verdict = f"{mismatches} / {n} samples differ from intsim"
    s = r.summary()
    Console().print(f"rtlsim: {n} images, {verdict}; {s['cycles_per_image']:.1f} cycles/image "
                    f"(FINN estimate {s['estimated_cycles_per_image']}), latency {s['latency_cycles']} cycles, "
                    f"{s['fps']:,.0f} images/s at {s['clock_mhz']:g} MHz, "
                    f"{s['sim_cycles_per_s'] / 1e6:.2f} M cycles/s ({_MVU_MODELS[s['mvu_model']]}"
                    + (", FINN's RTL unrecoded" if s["finn_rtl"] else "") + ")"
                    + (f"; waveform {build / s['trace_path']}" if s["trace_path"] else ""))
    (build / "rtlsim").mkdir(exist_ok=True)
    (build / "rtlsim" / "last_run.json").write_text(json.dumps({**s, "mismatches": mismatches}, indent=2))
    return 1 if mismatches else 0


def _fps_list(text: str) -> list[float]:
    """argparse type: comma-separated finite numbers > 0."""
    vals = [_positive_float(t.strip()) for t in text.split(",") if t.strip()]
    if not vals:
        raise argparse.ArgumentTypeError(f"must list at least one number, got {text!r}")
    return vals


def _cmd_dse(a) -> int:
    from .dse import run_dse

    r = run_dse(a.model, a.fps, Path(a.out), presets=a.presets, board=a.board, samples=a.samples,
                ray_address=a.ray_address, console=console, binary_impl=a.binary_impl)
    failed = [p["folder"] for p in r["points"] if "error" in p]
    Console().print(f"dse: {len(r['points'])} points in {r['seconds']:.0f} s; Pareto (images/s vs LUT): "
                    f"{', '.join(r['pareto_LUT']) or '-'}; written to {a.out}/ (results.json, pareto.png, report.html)"
                    + (f"; failed: {', '.join(failed)}" if failed else ""), highlight=False)
    return 1 if failed else 0


def _cmd_bitstream(a) -> int:
    from .bitstream import run_bitstream

    s = run_bitstream(Path(a.build_dir), a.board, force=a.force, jobs=a.jobs, console=console)
    r = s.get("results") or {}
    numbers = ", ".join(f"{k} {v}" for k, v in r.items())
    Console().print(f"bitstream for {s['board']} ({s['part']}, {s['clock_mhz']:g} MHz) with Vivado "
                    f"{s['tools']['vivado_version']}" + (f": {numbers}" if numbers else "") +
                    f"\ndeployment package: {s['deploy']}/ (copy it to the board, run `sudo python3 validate.py`)")
    return 0


def _cmd_synth(a) -> int:
    import json

    from rich.table import Table

    from hw.errors import HwError
    from hw.synth import synth_counts, synth_table

    from .build_folder import open_build, read_record
    from .fit import check_fit, fit_report, from_yosys, shares_line

    build = Path(a.build_dir)
    open_build(build)
    try:
        result = synth_counts(build, per_layer=not a.top_only, top=True, jobs=a.jobs)
    except HwError as exc:
        raise FlowError(str(exc)) from None
    rows = synth_table(result, build / "estimates.json")
    t = Table(title=f"Yosys synth_xilinx -family xc7 vs FINN's estimates: {build}")
    cols = ["layer", "status", "yosys_LUT", "yosys_LUTRAM", "yosys_FF", "yosys_DSP", "yosys_BRAM18",
            "finn_LUT", "finn_DSP", "finn_BRAM18"]
    for c in cols:
        t.add_column(c.replace("_", " "), justify="left" if c in ("layer", "status") else "right")
    for r in rows:
        t.add_row(*["-" if r[c] is None else str(r[c]) for c in cols])
    t.caption = "Yosys/ABC cell counts (no placement); FINN has no estimate for FIFOs and width converters"
    Console().print(t)
    info = read_record(build / "build.json")
    top = (result.get("top") or {}).get("counts")
    fit = fit_report(from_yosys(top), info["fpga_part"], "Yosys synth_xilinx") if top else None
    if fit is not None:
        Console().print(shares_line(fit) + ("" if fit["fits"] is not False else
                                            f"; over budget: {', '.join(fit['over'])}"), highlight=False)
    rp = build / "report.json"
    if rp.is_file():
        report = read_record(rp)
        report["synth"] = {"rows": rows, "unreadable": result.get("unreadable"), "seconds": result.get("seconds")}
        if fit is not None:
            report["fit"] = fit
        rp.write_text(json.dumps(report, indent=2, default=float))
        from .html_report import write_html

        write_html(build, report)
    if fit is not None:
        check_fit(fit, a.allow_over_budget)
    return 0


def _cmd_bench(a) -> int:
    from .bench import bench_table, run_bench

    from models import ModelError, parse_name

    models = tuple(m.strip() for m in a.models.split(",") if m.strip())
    if not models:
        raise FlowError("--models names no model; e.g. --models tfc-w2a2,lenet5-w2a2")
    for m in models:
        try:
            parse_name(m)
        except ModelError as exc:
            raise FlowError(f"--models: {exc}") from None
    r = run_bench(Path(a.out), models=models, rounds=a.rounds,
                  progress=lambda s: Console(stderr=True).print(f"[dim]bench: {s}[/dim]"))
    Console(width=max(Console().width, 110)).print(bench_table(r))  # 7 columns: wrapped below that
    Console().print(f"written {a.out}/bench.json")
    return 0


def _cmd_compress(a) -> int:
    if a.method == "study":
        from .compress_study import run_study

        r = run_study(Path(a.out), a.model, a.checkpoint, bits=tuple(a.bits), sparsity=a.sparsity,
                      budgets=tuple(a.budgets), build_bits=a.build_bits, builds=Path(a.builds),
                      samples=a.samples, epochs_scale=a.epochs_scale, seed=a.seed, build=not a.no_build,
                      console=console)
        bad = [r_ for r_ in r["rows"] if r_.get("build", {}).get("mismatches")]
        Console().print(f"compress study of {r['model']}: {len(r['rows'])} points, "
                        f"{sum('build' in r_ for r_ in r['rows'])} built ({len(bad)} with mismatches); "
                        f"written {a.out}/RESULTS.md, results.json, accuracy_vs_size.png ({r['seconds']:.0f} s)")
        return 1 if bad else 0
    from .compress import run_method

    return run_method(a, console=console)


def _compress_parser(sub) -> None:
    from models.compress.cluster import METHODS

    c = sub.add_parser("compress", help="compress a zoo model (pruning, weight sharing, mixed precision) "
                                        "and build the result verified",
                       description="Each method writes OUT/model.pt, OUT/compress.json and (unless --no-build) "
                                   "OUT/build, a full verified build; `study` runs them all into one table.")
    msub = c.add_subparsers(dest="method", required=True, metavar="METHOD")

    def method(name, help_):
        m = msub.add_parser(name, help=help_)
        m.add_argument("--model", default="tfc-w8a8", help="base zoo model (default tfc-w8a8: 8-bit weights "
                                                           "and activations)")
        m.add_argument("--checkpoint", help="base checkpoint (default: the shipped one of --model)")
        m.add_argument("--seed", type=int, default=0)
        m.add_argument("--samples", type=_at_least(1), default=1000, help="verification samples of the build (default 1000)")
        m.add_argument("--out", required=True, help="output folder (written completely or not at all)")
        if name != "study":
            m.add_argument("--no-build", action="store_true", help="write the checkpoint only")
            m.add_argument("--force", action="store_true", help="replace an existing output folder")
        m.set_defaults(func=_cmd_compress)
        return m

    m = method("linear", "plain linear quantization (post-training, one scale per layer)")
    m.add_argument("--bits", type=int, default=4, choices=range(2, 9), metavar="{2..8}")
    m = method("share", "weight sharing: cluster each layer into 2^bits values, centroids onto an integer grid")
    m.add_argument("--bits", type=int, default=4, choices=range(1, 9), metavar="{1..8}")
    m.add_argument("--cluster", default="kmeans-pso", choices=METHODS[1:], help="clustering (default kmeans-pso)")
    m.add_argument("--grid-bits", type=int, default=8, choices=range(2, 9), metavar="{2..8}",
                   help="integer grid of the centroids = FINN's weight width (default 8)")
    m = method("prune", "fine-grained magnitude pruning on the gradual (cubic) schedule, then fine-tuning")
    m.add_argument("--sparsity", type=float, default=0.8, help="final sparsity of every layer (default 0.8)")
    m.add_argument("--prune-epochs", type=int, default=6)
    m.add_argument("--finetune-epochs", type=int, default=4)
    m = method("neurons", "structured pruning of MLP neurons: group lasso (proximal), threshold, fine-tune")
    m.add_argument("--tau", type=float, default=7.5e-4, help="proximal step x lambda per optimizer step (default 7.5e-4)")
    m.add_argument("--threshold", type=float, default=0.05, help="remove neurons below this x the layer's "
                                                                 "strongest group norm (default 0.05)")
    m.add_argument("--multiple", type=int, default=4, help="keep a multiple of this many neurons (default 4)")
    m.add_argument("--lasso-epochs", type=int, default=4)
    m.add_argument("--finetune-epochs", type=int, default=4)
    m = method("mixed", "per-layer weight bits by differentiable search under a weight-memory budget")
    m.add_argument("--budget-bits", type=int, default=3, help="the budget: the weight memory of uniform "
                                                              "BITS-bit weights (default 3)")
    m.add_argument("--search-epochs", type=int, default=3)
    m.add_argument("--finetune-epochs", type=int, default=6)
    m = method("study", "every method on one model: the results table (RESULTS.md) and plot")
    m.add_argument("--bits", type=int, nargs="+", default=[8, 7, 6, 5, 4, 3, 2])
    m.add_argument("--sparsity", type=float, default=0.8)
    m.add_argument("--budgets", type=int, nargs="+", default=[3, 4])
    m.add_argument("--build-bits", type=int, default=4, help="build every method's model at these bits (default 4)")
    m.add_argument("--builds", default="build/compress-study", help="where the study's builds go")
    m.add_argument("--epochs-scale", type=float, default=1.0, help="scale every fine-tuning length (tests: < 1)")
    m.add_argument("--no-build", action="store_true", help="accuracy and size only: no builds, no estimates")


def _at_least(low: int):
    """argparse type: an integer >= low (a bad value is argparse's one-line usage error)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {v}")
        return v
    parse.__name__ = f"integer >= {low}"
    return parse


def _real(what: str, ok):
    """argparse type: a finite number for which ok(v) holds, described by `what`."""
    import math

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or not ok(v):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return v
    parse.__name__ = what
    return parse


_fraction = _real("a probability in [0, 1]", lambda v: 0.0 <= v <= 1.0)
_positive_float = _real("a finite number > 0", lambda v: v > 0)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qnnflow",
        description="Quantized (Brevitas) networks to bit-exact FINN dataflow accelerators, "
                    "verified stage by stage against an integer-only reference.")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (FINN's messages included)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    from .config import BINARY_IMPLS

    b = sub.add_parser("build", help="build a model into a verified FINN dataflow accelerator (RTL)",
                       description="Export, streamline, convert to FINN HW layers (RTL preferred), fold, "
                                   "generate RTL, then verify every stage on MNIST test images.")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a zoo model name <arch>-<preset>, e.g. tfc-w2a2")
    src.add_argument("--onnx", help="a QONNX or FINN-ONNX file exported elsewhere")
    b.add_argument("--checkpoint", help="checkpoint for --model (default: the shipped one)")
    b.add_argument("--input", help="with --onnx: verification inputs (.npy of integers)")
    b.add_argument("--input-dtype", default="UINT8", help="FINN datatype of the accelerator's input (default UINT8)")
    b.add_argument("--board", default="pynq-z1", help="target board (default pynq-z1)")
    b.add_argument("--clock-mhz", type=float, help="target clock (default: the board's)")
    fold = b.add_mutually_exclusive_group()
    fold.add_argument("--fps", type=float, default=100_000.0, help="target images/s for folding (default 100000)")
    fold.add_argument("--folding", help="a FINN folding JSON (PE/SIMD per layer) instead of --fps")
    b.add_argument("--topk", type=int, default=0, metavar="K",
                   help="end the accelerator in label select: it outputs the K best class indices")
    b.add_argument("--binary-impl", choices=BINARY_IMPLS, default="xnor",
                   help="binary (bipolar) layers: xnor = qnnflow's LUT cores (default: XNOR popcount, and "
                        "+-1 weights x integer inputs, e.g. the first layer, on adder trees; no DSP), "
                        "lut = as xnor, and ternary -1/0/+1 weights x integers on the same adder trees "
                        "(e.g. every w2 layer; no DSP), "
                        "dsp = bipolar relabelled INT2 on FINN's DSP-based RTL matrix unit (MVAU_rtl)")
    b.add_argument("--samples", type=int, default=1000, help="verification samples (default 1000)")
    b.add_argument("--allow-over-budget", action="store_true",
                   help="build even where FINN's resource estimate exceeds the board's part (default: error)")
    b.add_argument("--no-verify", action="store_true", help="skip the verification chain")
    b.add_argument("--no-rtlsim", action="store_true", help="skip FIFO insertion/sizing and the Verilator simulation")
    b.add_argument("--out", required=True, help="build folder (written completely or not at all)")
    b.add_argument("--force", action="store_true", help="replace an existing build folder")
    b.set_defaults(func=_cmd_build)

    v = sub.add_parser("verify", help="re-run the verification chain of a finished build")
    v.add_argument("build_dir")
    v.add_argument("--samples", type=_at_least(1), help="number of MNIST test images (default: as built)")
    v.set_defaults(func=_cmd_verify)

    r = sub.add_parser("rtlsim", help="cycle-accurate Verilator simulation of a build's accelerator",
                       description="Stitch the build's RTL layers, compile with Verilator (cached), stream the "
                                   "verification inputs, compare with intsim, report cycles and throughput.")
    r.add_argument("build_dir")
    r.add_argument("--samples", type=_at_least(1), help="MNIST test images (default: the build's verification inputs)")
    r.add_argument("--stall", type=_fraction, default=0.0, help="probability of random input/output stalls per cycle")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--trace", action="store_true", help="write a waveform to BUILD/rtlsim/wave.{fst,vcd}")
    r.add_argument("--mvu", choices=["lanes", "exact"],
                   help="matrix-unit arithmetic: FINN's packed DSP lanes (default; QNNFLOW_RTLSIM_EXACT_MVU=1 "
                        "changes it) or exact dot products with the same timing (faster; stops on a weight "
                        "that breaks FINN's narrow-range commitment)")
    r.add_argument("--finn-rtl", action="store_true",
                   help="simulate FINN's RTL as FINN wrote it, without qnnflow's cycle-identical recodings (slower)")
    r.set_defaults(func=_cmd_rtlsim)

    bs = sub.add_parser("bitstream", help="continue a finished build through Vivado to a PYNQ deployment package",
                        description="HLS synthesis of any HLS layer, FINN's stitched IP, the Zynq shell (AXI DMA), "
                                    "synthesis, implementation, bitstream, PYNQ driver and deployment package. Needs "
                                    "Vivado 2022.2 or 2024.2 (XILINX_VIVADO set, vivado on PATH; docker/README.md). "
                                    "Writes DIR/bitstream/ (projects, logs, reports) and DIR/deploy/ (for the board).")
    bs.add_argument("build_dir", help="a finished `qnnflow build` folder")
    from hw.boards import BOARDS

    bs.add_argument("--board", help=f"target board (default: the build's): {', '.join(BOARDS)}")
    bs.add_argument("--jobs", type=_at_least(1), help="parallel Vivado/HLS jobs (default: all cores)")
    bs.add_argument("--force", action="store_true", help="replace an existing DIR/bitstream and DIR/deploy")
    bs.set_defaults(func=_cmd_bitstream)

    sy = sub.add_parser("synth", help="open synthesis (Yosys, 7-series) cell counts per layer and design")
    sy.add_argument("build_dir")
    sy.add_argument("--jobs", type=_at_least(1), default=2, help="parallel Yosys runs (default 2)")
    sy.add_argument("--top-only", action="store_true", help="only the whole stitched design")
    sy.add_argument("--allow-over-budget", action="store_true",
                    help="exit 0 even where the design exceeds the board's part (the shares are printed either way)")
    sy.set_defaults(func=_cmd_synth)

    z = sub.add_parser("zoo", help="list the shipped models with their accuracy and provenance")
    z.add_argument("--json", action="store_true", help="a JSON list of {name, arch, preset, accuracy, ...}")
    z.add_argument("--markdown", action="store_true", help="a Markdown table (the README's)")
    z.set_defaults(func=cmd_zoo)

    e = sub.add_parser("eval", help="MNIST accuracy of a zoo model or a checkpoint file")
    e.add_argument("model", help="a zoo name (its shipped checkpoint) or a checkpoint path")
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.set_defaults(func=cmd_eval)

    co = sub.add_parser("compact", help="rewrite a checkpoint with its quantized weights as integer codes "
                                        "(about 4x smaller; for deployment and the zoo)")
    co.add_argument("checkpoint", help="a checkpoint written by qnnflow train")
    co.add_argument("--out", required=True, help="the compact checkpoint to write")
    co.set_defaults(func=cmd_compact)

    _compress_parser(sub)

    d = sub.add_parser("dse", help="design-space sweep on Ray: build, verify and synthesize each (preset, fps) point",
                       description="Each point is a verified build (rtlsim included) plus a Yosys synthesis of its "
                                   "stitched design; results.json, pareto.png/svg and report.html go to --out.")
    d.add_argument("--model", required=True, help="zoo model, e.g. tfc-w1a1")
    d.add_argument("--fps", required=True, type=_fps_list, help="comma-separated target images/s, e.g. 1e4,1e5,1e6")
    d.add_argument("--presets", type=lambda t: [p.strip() for p in t.split(",") if p.strip()],
                   help="comma-separated presets of the model's architecture (default: the model's own)")
    d.add_argument("--board", default="pynq-z1", help=f"target board: {', '.join(BOARDS)}")
    d.add_argument("--samples", type=_at_least(1), default=200, help="verification samples per point (default 200)")
    d.add_argument("--binary-impl", choices=BINARY_IMPLS, default="xnor",
                   help="every point's binary/ternary layers, as qnnflow build --binary-impl (default xnor)")
    d.add_argument("--ray-address", help="a running Ray cluster (HOST:PORT or auto); default: a local Ray")
    d.add_argument("--out", default="build/dse")
    d.set_defaults(func=_cmd_dse)

    be = sub.add_parser("bench", help="throughput of intsim vs onnxruntime and FINN python execution")
    be.add_argument("--out", default="build/bench")
    be.add_argument("--models", default="tfc-w2a2,lenet5-w2a2,resnet-w4a4",
                    help="comma-separated zoo models (default tfc-w2a2,lenet5-w2a2,resnet-w4a4; the first "
                         "one's figures are also bench.json's top-level keys)")
    be.add_argument("--rounds", type=_at_least(1), default=5)
    be.set_defaults(func=_cmd_bench)

    t = sub.add_parser("train", help="train a zoo model on MNIST (best-on-validation checkpoint)")
    t.add_argument("name", help="model name <arch>-<preset>, e.g. tfc-w2a2")
    t.add_argument("--epochs", type=_at_least(1), default=40)
    t.add_argument("--lr", type=_positive_float, default=0.01)
    t.add_argument("--batch-size", type=_at_least(1), default=100)
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--shift", type=int, choices=range(0, 5), default=0, metavar="PIXELS",
                   help="random-shift augmentation: each training image moved by up to this many pixels (0-4)")
    t.add_argument("--init", metavar="CHECKPOINT",
                   help="start from a checkpoint's weights (a float or wider-precision model of the same arch)")
    t.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the state saved after each epoch (OUT.state)")
    t.add_argument("--threads", type=_at_least(1), default=2, help="torch CPU threads")
    t.add_argument("--out", help="checkpoint path (default build/train/NAME.pt)")
    t.set_defaults(func=_cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not a.verbose:
        import warnings

        warnings.filterwarnings("ignore")
        for noisy in ("finn", "finn_logger", "qonnx", "brevitas", "torch"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    if a.command is None:
        parser.print_help()
        return 2
    from hw.errors import HwError
    from models.errors import ModelError
    from sim.errors import SimError

    try:
        return a.func(a)
    except (FlowError, HwError, ModelError, SimError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
