"""The build: an ordered list of named steps, run into a temporary folder that is
renamed to the requested one only when everything succeeded."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from qonnx.core.modelwrapper import ModelWrapper

from . import build_folder
from .config import BuildConfig
from .errors import FlowError
from .record import BuildRecord
from .steps import frontend as fe
from .steps import hardware as hwsteps
from .steps import rtl as rtlsteps
from .verify import verify_build

log = logging.getLogger(__name__)

Step = Callable[[ModelWrapper, BuildConfig, BuildRecord], ModelWrapper]

STEPS: list[tuple[str, Step]] = [
    ("export", fe.step_export),
    ("qonnx_to_finn", fe.step_qonnx_to_finn),
    ("tidy_up", fe.step_tidy_up),
    ("float64", fe.step_float64),
    ("streamline", fe.step_streamline),
    ("round_half_even", fe.step_round_half_even),
    ("bipolar_as_int2", fe.step_bipolar_as_int2),
    ("remove_identity_thresholds", fe.step_remove_identity_thresholds),
    ("split_float_tail", fe.step_split_float_tail),
    ("split_layout_head", fe.step_split_layout_head),
    ("insert_topk", fe.step_insert_topk),
    ("convert_to_hw", hwsteps.step_convert_to_hw),
    ("minimize_bit_width_initial", hwsteps.step_minimize_bit_width),
    ("create_dataflow_partition", hwsteps.step_create_dataflow_partition),
    ("prefer_rtl", hwsteps.step_prefer_rtl),
    ("specialize_layers", hwsteps.step_specialize_layers),
    ("open_rtl", hwsteps.step_open_rtl),
    ("set_folding", hwsteps.step_set_folding),
    ("minimize_bit_width", hwsteps.step_minimize_bit_width),
    ("estimates", hwsteps.step_estimates),
    ("hw_codegen", hwsteps.step_hw_codegen),
    ("insert_fifos", rtlsteps.step_insert_fifos),
    ("size_fifos", rtlsteps.step_size_fifos),
]
RTL_STEPS = ("insert_fifos", "size_fifos")  # skipped with BuildConfig(rtlsim=False)


def run_build(cfg: BuildConfig, console=None) -> dict:
    """Run every step, verification and the report; return the report dict."""
    out = cfg.out
    with build_folder.claim(out, cfg.force) as work:
        return _run_steps(cfg, BuildRecord(work), out, console)


def _run_steps(cfg: BuildConfig, rec: BuildRecord, out: Path, console) -> dict:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .report import assemble_report, write_report

    work = rec.work_dir
    timings: dict[str, float] = {}
    model = None
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("build", total=len(STEPS))
        for i, (name, fn) in enumerate(STEPS):
            if name in RTL_STEPS and not cfg.rtlsim:
                progress.advance(task)
                continue
            progress.update(task, description=f"step {name}")
            t0 = time.perf_counter()
            model = _run_step(name, fn, model, cfg, rec)
            model.save(str(work / "steps" / build_folder.step_file(i, name)))
            timings[name] = round(time.perf_counter() - t0, 3)
            progress.advance(task)
        info = build_info(cfg, rec, model)
        build_folder.write_build_info(work, info)
        verify = None
        if cfg.verify:
            t0 = time.perf_counter()
            # the manifest is written after the report: nothing to check it against yet
            verify = verify_build(work, cfg.samples, module=rec.brevitas_module,
                                  progress=progress, check_files=False)
            timings["verify"] = round(time.perf_counter() - t0, 3)
        progress.update(task, description="done")
    report = write_report(work, assemble_report(info, timings, verify, rec))
    build_folder.relativize(work)
    build_folder.write_manifest(work)
    build_folder.replace(work, out)
    return report


def _run_step(name: str, fn, model, cfg: BuildConfig, rec: BuildRecord):
    """One step; an exception that is not one of ours (FINN or qonnx asserting on a graph
    they do not support) becomes a one-line FlowError naming the step, chained to the
    original for API users and `-v`."""
    from hw.errors import HwError
    from models.errors import ModelError
    from sim.errors import SimError

    try:
        return fn(model, cfg, rec)
    except (FlowError, HwError, ModelError, SimError):
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the step's name
        log.info("step %s failed", name, exc_info=True)
        msg = (str(exc).strip().splitlines() or [""])[0][:300]
        raise FlowError(f"step {name} failed inside FINN/qonnx ({type(exc).__name__}: {msg}); the graph "
                        "holds something the flow does not support; rerun with -v for the traceback and "
                        "QNNFLOW_KEEP_FAILED=1 to keep the step graphs") from exc


CHECKPOINT_COPY = "checkpoint.pt"


def _copy_checkpoint(rec: BuildRecord) -> str:
    import shutil

    shutil.copyfile(rec.checkpoint, rec.path(CHECKPOINT_COPY))
    return CHECKPOINT_COPY


def build_info(cfg: BuildConfig, rec: BuildRecord, model: ModelWrapper) -> dict:
    """What a later `qnnflow verify`/`rtlsim` needs to know about this build (build.json)."""
    import numpy as np

    ishape = model.get_tensor_shape(model.graph.input[0].name)
    rec.layers = [{"name": n.name, "op_type": n.op_type} for n in model.graph.node]
    info = {
        "model": cfg.model, "onnx": str(cfg.onnx.resolve()) if cfg.onnx else None,
        # the checkpoint travels with the build (verify's brevitas stage reads it); the
        # source path is provenance only
        "checkpoint": rec.checkpoint and _copy_checkpoint(rec),
        "checkpoint_source": rec.checkpoint and str(Path(rec.checkpoint).resolve()),
        "input_scale": cfg.input_scale, "input_dtype": rec.input_dtype or cfg.input_dtype,
        "input_shape": list(ishape), "samples": cfg.samples,
        "board": cfg.board, "fpga_part": cfg.fpga_part, "clock_mhz": float(cfg.clock_mhz),
        "target_fps": cfg.target_fps, "folding": str(cfg.folding) if cfg.folding else None,
        "input_source": "mnist", "rtlsim": cfg.rtlsim, "topk": cfg.topk,
        "binary_impl": cfg.binary_impl,
    }
    # MNIST's test images where the network takes 784 values; otherwise --input or random
    # integers of the input type (a Python module for another shape, e.g. CIFAR's 3x32x32)
    not_mnist = int(np.prod(ishape[1:])) != 28 * 28
    if cfg.onnx is not None or cfg.module is not None and (cfg.input_npy is not None or not_mnist):
        from qonnx.core.datatype import DataType

        from .steps.frontend import check_inputs

        if cfg.input_npy is not None:
            x = check_inputs(cfg.input_npy, ishape, info["input_dtype"])
        else:
            dt = DataType[info["input_dtype"]]
            rng = np.random.default_rng(0)
            x = rng.integers(int(dt.min()), int(dt.max()) + 1, size=(cfg.samples, int(np.prod(ishape[1:]))))
        np.save(rec.path("inputs_all.npy"), x.astype(np.int64))
        info["input_source"] = "file"
        info["samples"] = cfg.samples = min(cfg.samples, len(x))
    return info
