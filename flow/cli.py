"""The `qnnflow` command line."""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from rich.console import Console

from .errors import FlowError

console = Console(stderr=True)


def _cmd_build(a) -> int:
    from .pipeline import run_build
    from .config import BuildConfig
    from .report import summary_table

    cfg = BuildConfig(out=Path(a.out), model=a.model, checkpoint=a.checkpoint and Path(a.checkpoint),
                      onnx=a.onnx and Path(a.onnx), input_npy=a.input and Path(a.input), board=a.board,
                      clock_mhz=a.clock_mhz, target_fps=a.fps, folding=a.folding, samples=a.samples,
                      verify=not a.no_verify, force=a.force, input_dtype=a.input_dtype)
    report = run_build(cfg, console=console)
    Console().print(summary_table(report))
    Console().print(f"build written to {cfg.out}/ (report.json, report.txt, steps/, outputs/)")
    v = report.get("verify") or {}
    return 1 if any(v.get("mismatches", {}).values()) else 0


def _cmd_verify(a) -> int:
    import json

    from .report import summary_table
    from .verify import verify_build

    build = Path(a.build_dir)
    rp = build / "report.json"
    if not rp.is_file():
        raise FlowError(f"{build} has no report.json; run `qnnflow build` first")
    report = json.loads(rp.read_text())
    res = verify_build(build, a.samples)
    report.update(res)
    rp.write_text(json.dumps(report, indent=2, default=float))
    Console().print(summary_table(report))
    return 1 if any(res["verify"]["mismatches"].values()) else 0


def _cmd_train(a) -> int:
    from rich.progress import Progress

    from models.train import TrainConfig, train
    from models.zoo import parse_name

    try:
        parse_name(a.name)
    except Exception as exc:
        raise FlowError(str(exc)) from None
    out = Path(a.out) if a.out else Path("build/train") / f"{a.name}.pt"
    cfg = TrainConfig(name=a.name, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, seed=a.seed,
                      dropout=a.dropout, command="qnnflow " + " ".join(shlex.quote(x) for x in sys.argv[1:]))
    with Progress(console=console) as progress:
        meta = train(cfg, out, progress=progress)
    Console().print(f"{a.name}: test top-1 {meta['test_accuracy']:.2f} % (val {meta['val_accuracy']:.2f} % at "
                    f"epoch {meta['best_epoch']}), {meta['train_seconds']:.0f} s; checkpoint {out}")
    return 0


def _cmd_bench(a) -> int:
    from .bench import bench_table, run_bench

    r = run_bench(Path(a.out), model=a.model, rounds=a.rounds)
    Console().print(bench_table(r))
    Console().print(f"written {a.out}/bench.json")
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qnnflow",
        description="Quantized (Brevitas) networks to bit-exact FINN dataflow accelerators, "
                    "verified stage by stage against an integer-only reference.")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (FINN's messages included)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

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
    b.add_argument("--samples", type=int, default=1000, help="verification samples (default 1000)")
    b.add_argument("--no-verify", action="store_true", help="skip the verification chain")
    b.add_argument("--out", required=True, help="build folder (written completely or not at all)")
    b.add_argument("--force", action="store_true", help="replace an existing build folder")
    b.set_defaults(func=_cmd_build)

    v = sub.add_parser("verify", help="re-run the verification chain of a finished build")
    v.add_argument("build_dir")
    v.add_argument("--samples", type=int, help="number of MNIST test images (default: as built)")
    v.set_defaults(func=_cmd_verify)

    be = sub.add_parser("bench", help="throughput of intsim vs onnxruntime and FINN python execution")
    be.add_argument("--out", default="build/bench")
    be.add_argument("--model", default="tfc-w2a2")
    be.add_argument("--rounds", type=int, default=5)
    be.set_defaults(func=_cmd_bench)

    t = sub.add_parser("train", help="train a zoo model on MNIST (best-on-validation checkpoint)")
    t.add_argument("name", help="model name <arch>-<preset>, e.g. tfc-w2a2")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--lr", type=float, default=0.01)
    t.add_argument("--batch-size", type=int, default=100)
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--seed", type=int, default=0)
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
    try:
        return a.func(a)
    except FlowError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
