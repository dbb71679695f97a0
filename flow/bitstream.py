"""`qnnflow bitstream DIR`: a finished build, through Vivado, to a PYNQ deployment package.

    DIR/bitstream/   accel.onnx (the accelerator graph as stitched: the build's last step
                     plus the DMA width converters), codegen/ (its RTL), finn/ (FINN's
                     stitched-IP project), shell/ (the Zynq project: shell.tcl, vivado.log,
                     utilization.rpt, timing.rpt), bitstream.json (tools, timings, results)
    DIR/deploy/      what goes onto the board: qnnflow.bit, qnnflow.hwh, driver.py,
                     packing.py, validate.py, accel.json, float_tail.npz, layout_head.npz,
                     mnist_test.npz, reference.npz, README.md

Order: the build and board are checked, then the tools (flow/steps/vivado.py); only then
is anything written, into DIR/.bitstream.tmp-<pid>/, renamed to DIR/bitstream and
DIR/deploy when every step succeeded. A failed run leaves DIR/bitstream and DIR/deploy
as they were and keeps its work (and the tools' logs) in DIR/bitstream.failed/.
`prepare` and `write_deploy_package` need no Vivado: the driver test runs the package's
driver against the Verilator simulation of the same graph (hw/driver/simboard.py).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import FlowError

log = logging.getLogger(__name__)

BITFILE = "qnnflow.bit"   # PYNQ finds qnnflow.hwh beside it by name
HWH = "qnnflow.hwh"
DRIVER_FILES = {"driver.py": "accel.py", "validate.py": "validate.py"}  # deploy name -> hw/driver/
CONFIG_FORMAT = "qnnflow-accel/1"


@dataclass
class BitstreamInputs:
    """The accelerator graph for the bitstream and the driver's configuration."""
    model_path: Path
    plan: object           # hw.shell.ShellPlan
    config: dict           # accel.json
    hls_layers: list[str]


# ---------------------------------------------------------------------------------
# checks (nothing written)

def check_build(build_dir: Path) -> dict:
    """build.json of a finished build whose accelerator has its FIFOs and width converters."""
    from .build_folder import open_build

    build_dir = Path(build_dir)
    info = open_build(build_dir)
    if not info.get("rtlsim", True):
        raise FlowError(f"{build_dir} was built with --no-rtlsim: its accelerator has no FIFOs or width converters; "
                        "rebuild it without --no-rtlsim")
    return info


def resolve_board(info: dict, name: str | None):
    """The board to build for: --board, else the build's. Its part must be the build's,
    whose RTL was specialised for it."""
    from hw.boards import BoardError, get_board

    try:
        board = get_board(name or info.get("board") or "pynq-z1")
    except BoardError as exc:
        raise FlowError(str(exc)) from None
    if info.get("fpga_part") and board.part != info["fpga_part"]:
        raise FlowError(f"the build targets {info['fpga_part']} ({info.get('board')}), {board.name} has {board.part}; "
                        f"rebuild for it: qnnflow build ... --board {board.name}")
    return board


def load_accelerator(build_dir: Path):
    """The build's final HW graph (our own RTL ops registered), checked to be the whole
    accelerator: the parent graph holds nothing but its dataflow partition."""
    import onnx

    import hw.ops
    from hw.stitch import load_model

    from .build_folder import final_graph, resolve_paths

    hw.ops.register()
    parent = Path(build_dir) / "dataflow_parent.onnx"
    if parent.is_file():
        others = [f"{n.name} ({n.op_type})" for n in onnx.load(str(parent), load_external_data=False).graph.node
                  if n.op_type != "StreamingDataflowPartition"]
        if others:
            raise FlowError(f"the build's parent graph runs {', '.join(others)} outside the accelerator; "
                            "the driver applies only the layout head and float tail in software")
    model = resolve_paths(load_model(final_graph(build_dir)), build_dir)
    if not any(n.op_type.startswith("StreamingFIFO") for n in model.graph.node):
        raise FlowError(f"{final_graph(build_dir).name} has no FIFOs; is {build_dir} a complete build?")
    return model


# ---------------------------------------------------------------------------------
# the accelerator graph and the deployment package (no Vivado)

def _remap_codegen(model, dest: Path) -> list[str]:
    """Point the nodes' code generation paths at the copy in `dest`; returns the old roots."""
    from qonnx.custom_op.registry import getCustomOp

    roots = set()
    for node in model.graph.node:
        inst = getCustomOp(node)
        for attr in ("code_gen_dir_ipgen", "ipgen_path", "ip_path"):
            try:
                v = inst.get_nodeattr(attr)
            except Exception:  # noqa: BLE001 - an op without that attribute
                continue
            if v and "/codegen/" in v:
                root, _, rest = v.rpartition("/codegen/")
                roots.add(root + "/codegen")
                inst.set_nodeattr(attr, str(dest / rest))
    return sorted(roots, key=len, reverse=True)


def stream_info(inst, first: bool):
    from hw.stitch import StreamInfo

    dt = inst.get_input_datatype() if first else inst.get_output_datatype()
    return StreamInfo(
        width=int(inst.get_instream_width_padded() if first else inst.get_outstream_width_padded()),
        dtype=dt.name, elem_bits=int(dt.bitwidth()),
        folded_shape=tuple(int(x) for x in (inst.get_folded_input_shape() if first else inst.get_folded_output_shape())),
        normal_shape=tuple(int(x) for x in (inst.get_normal_input_shape() if first else inst.get_normal_output_shape())))


def prepare(build_dir: Path, dest: Path, board, info: dict) -> BitstreamInputs:
    """Copy the build's accelerator into `dest` (accel.onnx, codegen/), add the shell's DMA
    width converters and generate what has no code yet (those converters' Verilog, the HLS
    layers' C++), all without Vivado."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    from hw.shell import add_dma_adapters, plan_shell

    from .finn_compat import finn_build_dir

    build_dir, dest = Path(build_dir), Path(dest)
    model = load_accelerator(build_dir)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(build_dir / "codegen", dest / "codegen", dirs_exist_ok=True)
    # Vivado opens the generated files' paths from its own project folder: make them
    # absolute in the copy (build-relative "codegen/..." and, in older builds, the roots
    # the graph names)
    roots = _remap_codegen(model, dest / "codegen")
    for p in (dest / "codegen").rglob("*"):
        if p.is_file() and p.suffix in (".v", ".sv", ".tcl", ".cpp", ".h", ".sh"):
            text = p.read_text(errors="replace")
            new = re.sub(r'(?<=["\s{])codegen/', f"{dest}/codegen/", text)
            for root in roots:
                new = new.replace(root, str(dest / "codegen"))
            if new != text:
                p.write_text(new)
    nodes = list(model.graph.node)
    in_info, out_info = stream_info(getCustomOp(nodes[0]), True), stream_info(getCustomOp(nodes[-1]), False)
    clock = float(info.get("clock_mhz") or board.clock_mhz)
    plan = plan_shell(in_info, out_info, board, clock)
    model = add_dma_adapters(model, plan)
    try:
        with finn_build_dir(dest / "codegen"):
            model = model.transform(PrepareIP(board.part, 1000.0 / clock))
    except Exception as exc:  # noqa: BLE001 - FINN's code generation: name the layer it stopped at
        raise FlowError(f"code generation for the bitstream failed: {' '.join(str(exc).split())[:300]}") from None
    model.save(str(dest / "accel.onnx"))
    hls = [n.name for n in model.graph.node if n.op_type.endswith("_hls")]
    return BitstreamInputs(dest / "accel.onnx", plan, accel_config(build_dir, info, board, plan, in_info, out_info), hls)


def accel_config(build_dir: Path, info: dict, board, plan, in_info, out_info) -> dict:
    """accel.json: everything the driver needs to know about the accelerator and shell."""
    def stream(s):
        d = asdict(s)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    build_dir = Path(build_dir)
    tail = build_dir / "float_tail.npz"
    has_tail = tail.is_file() and bool(np.load(tail).files)
    head = build_dir / "layout_head.npz"
    shape = list(info.get("input_shape") or [])[1:]  # the accelerator's; the network's is the head's input
    if head.is_file():
        with np.load(head) as z:
            shape = [int(v) for v in z["in_shape"]]
    return {
        "format": CONFIG_FORMAT,
        "model": info.get("model") or info.get("onnx") or "module",
        "board": board.name, "part": board.part, "clock_mhz": plan.clock_mhz,
        "bitfile": BITFILE, "hwh": HWH,
        "input_dtype": info.get("input_dtype"), "input_shape": shape,
        "input": stream(in_info), "output": stream(out_info),
        "shell": plan.to_json(),
        "layout_head": "layout_head.npz" if head.is_file() else None,
        "float_tail": "float_tail.npz" if has_tail else None,
        "topk": int(info.get("topk") or 0),
    }


def write_deploy_package(build_dir: Path, dest: Path, prepared: BitstreamInputs, bitfile: Path | None = None,
                         hwh: Path | None = None, info: dict | None = None) -> Path:
    """The folder to copy onto the board (see the module docstring). Without a bitfile (no
    Vivado) it holds everything else, e.g. for the driver test on the simulated board."""
    import hw.driver
    import hw.packing

    build_dir, dest = Path(build_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    drv = Path(hw.driver.__file__).parent
    for name, src in DRIVER_FILES.items():
        shutil.copy2(drv / src, dest / name)
    shutil.copy2(hw.packing.__file__, dest / "packing.py")
    for name in ("float_tail.npz", "layout_head.npz"):
        if (build_dir / name).is_file():
            shutil.copy2(build_dir / name, dest / name)
    if bitfile is not None:
        shutil.copy2(bitfile, dest / BITFILE)
        shutil.copy2(hwh, dest / HWH)
    (dest / "accel.json").write_text(json.dumps(prepared.config, indent=2) + "\n")
    out = build_dir / "outputs"
    if (out / "inputs.npy").is_file() and (out / "intsim.npy").is_file():
        np.savez_compressed(dest / "reference.npz", inputs=np.load(out / "inputs.npy"),
                            outputs=np.load(out / "intsim.npy"))
    info = info or json.loads((build_dir / "build.json").read_text())
    if info.get("input_source", "mnist") == "mnist":
        from models import load_mnist

        test = load_mnist("test")
        x = test.pixels.astype(np.int64)
        lo, hi = int(x.min()), int(x.max())
        x = x.astype(np.uint8) if lo >= 0 and hi <= 255 else x
        np.savez_compressed(dest / "mnist_test.npz", x=x, y=test.y.astype(np.uint8))
    (dest / "README.md").write_text(_deploy_readme(prepared.config))
    return dest


def _deploy_readme(c: dict) -> str:
    return f"""# qnnflow deployment package: {c['model']} on {c['board']}

Copy this folder to the board (PYNQ image with pynq >= 3.0) and run, as root:

    scp -r deploy xilinx@<board>:~/qnnflow-{c['model']}
    ssh xilinx@<board>
    cd ~/qnnflow-{c['model']} && sudo python3 validate.py

`validate.py` loads `{c['bitfile']}` (with `{c['hwh']}`), checks the accelerator's integer outputs
against qnnflow's integer reference (reference.npz: the build's verification inputs and intsim
outputs), then runs the MNIST test set (mnist_test.npz, where the model takes MNIST) and prints
top-1 accuracy and images/s. In your own code:

    from driver import Accelerator
    accel = Accelerator()          # this folder's accel.json and bitfile
    labels = accel.classify(x)     # x: (N, ...) integer inputs ({c['input_dtype']}), as the build's inputs

Clock {c['clock_mhz']:g} MHz; DMA streams {c['shell']['dma_in_bits']} / {c['shell']['dma_out_bits']} bits;
{c['shell']['in_bytes_per_image']} bytes in and {c['shell']['out_bytes_per_image']} bytes out per image.
"""


# ---------------------------------------------------------------------------------
# the whole command

def _parse_reports(util: Path, timing: Path) -> dict:
    out: dict = {}
    if util.is_file():
        for key, pattern in (("LUT", r"\|\s*(?:Slice|CLB) LUTs\*?\s*\|\s*(\d+)"),
                             ("FF", r"\|\s*(?:Slice|CLB) Registers\s*\|\s*(\d+)"),
                             ("BRAM", r"\|\s*Block RAM Tile\s*\|\s*([\d.]+)"),
                             ("DSP", r"\|\s*DSPs\s*\|\s*(\d+)")):
            m = re.search(pattern, util.read_text(errors="replace"))
            if m:
                out[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    if timing.is_file():
        lines = timing.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if re.match(r"\s*WNS\(ns\)", line) and i + 2 < len(lines):
                vals = lines[i + 2].split()
                if vals:
                    try:
                        out["wns_ns"] = float(vals[0])
                    except ValueError:
                        pass
                break
    return out


def run_bitstream(build_dir: Path, board: str | None = None, *, force: bool = False,
                  jobs: int | None = None, console=None) -> dict:
    """Check, then run every Vivado step and write DIR/bitstream and DIR/deploy; returns
    the summary also written to DIR/bitstream/bitstream.json and report.json's `bitstream`."""
    from .build_folder import relocate
    from .steps import vivado

    build_dir = Path(build_dir).resolve()
    info = check_build(build_dir)
    b = resolve_board(info, board)
    model = load_accelerator(build_dir)
    hls = [n.name for n in model.graph.node if n.op_type.endswith("_hls")]
    tools = vivado.check_tools(hls)
    finals = {"bitstream": build_dir / "bitstream", "deploy": build_dir / "deploy"}
    existing = [str(p) for p in finals.values() if p.exists()]
    if existing and not force:
        raise FlowError(f"{' and '.join(existing)} exist; pass --force to replace them")
    jobs = max(1, int(jobs or os.cpu_count() or 1))

    work = build_dir / f".bitstream.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    failed = build_dir / "bitstream.failed"
    timings: dict[str, float] = {}

    def timed(name, fn, *args):
        if console is not None:
            console.print(f"[bold]bitstream:[/bold] {name} ...", highlight=False)
        t0 = time.perf_counter()
        out = fn(*args)
        timings[name] = round(time.perf_counter() - t0, 3)
        return out

    try:
        bdir = work / "bitstream"
        prepared = timed("prepare", prepare, build_dir, bdir, b, info)
        from qonnx.core.modelwrapper import ModelWrapper

        accel = ModelWrapper(str(prepared.model_path))
        with vivado.vendor_env(bdir / "finn", jobs):
            if prepared.hls_layers:
                accel = timed("hls_synth", vivado.hls_synth, accel, b.part, jobs)
            accel = timed("stitched_ip", vivado.stitched_ip, accel, b.part, 1000.0 / prepared.plan.clock_mhz, jobs)
            accel.save(str(prepared.model_path))
            res = timed("zynq_bitstream", vivado.zynq_bitstream, accel, prepared.plan, b, bdir / "shell", jobs)
        deploy = timed("deploy_package", write_deploy_package, build_dir, work / "deploy", prepared,
                       res["bit"], res["hwh"], info)
        summary = {
            "board": b.name, "part": b.part, "clock_mhz": prepared.plan.clock_mhz,
            "tools": tools.to_json(), "hls_layers": prepared.hls_layers,
            "shell": prepared.plan.to_json(), "results": _parse_reports(res["utilization"], res["timing"]),
            "bitfile": str(finals["deploy"] / BITFILE), "deploy": str(finals["deploy"]),
            "timings_s": timings,
        }
        (bdir / "bitstream.json").write_text(json.dumps(summary, indent=2) + "\n")
        for name, final in finals.items():
            relocate(work / name, final)
        for name, final in finals.items():
            if final.exists():
                trash = build_dir / f".{name}.old-{os.getpid()}"
                final.rename(trash)
                shutil.rmtree(trash)
            (work / name).rename(final)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(failed, ignore_errors=True)  # an earlier failed run's work: superseded
        del deploy
    except BaseException as exc:
        if work.exists():
            shutil.rmtree(failed, ignore_errors=True)
            try:  # the kept work names itself where it now lies (scripts, logs, graphs)
                relocate(work, failed)
            except Exception:  # noqa: BLE001 - a diagnosis aid; never hide the error itself
                pass
            work.rename(failed)
        if isinstance(exc, vivado.VivadoError):
            logp = exc.log
            if logp is not None and str(logp).startswith(str(work)):
                logp = failed / Path(logp).relative_to(work)
            raise FlowError(exc.message(logp) + f" (work kept in {failed})") from None
        if isinstance(exc, FlowError):
            raise FlowError(f"{exc} (work kept in {failed})") from None
        raise
    rp = build_dir / "report.json"
    report = json.loads(rp.read_text())
    report["bitstream"] = summary
    rp.write_text(json.dumps(report, indent=2, default=float))
    return summary
