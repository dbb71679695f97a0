"""Run the verification chain on a build folder and compare the stages' integers."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from . import stages as st
from .build_folder import final_graph, find_step, load_build_config
from .errors import FlowError
from .transforms.float_tail import FloatTail
from .transforms.layout_head import LayoutHead

log = logging.getLogger(__name__)


def verification_inputs(build_dir: Path, info: dict, samples: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The integer inputs (and labels where known) that every stage sees."""
    src = info.get("input_source", "mnist")
    if src == "mnist":
        from models import load_mnist

        test = load_mnist("test")
        if samples > len(test.y):
            raise FlowError(f"--samples {samples} exceeds the {len(test.y)} MNIST test images")
        return test.pixels[:samples].astype(np.int64), test.y[:samples]
    if src == "file":
        x = np.load(build_dir / "inputs_all.npy")
        return x[:samples], None
    raise FlowError(f"unknown input source {src!r} in build.json")


def _first_mismatch(a: np.ndarray, ref: np.ndarray) -> dict | None:
    diff = np.argwhere(a != ref)
    if len(diff) == 0:
        return None
    s, i = (int(v) for v in diff[0])
    return {"sample": s, "index": i, "value": int(a[s, i]), "reference": int(ref[s, i])}


RTLSIM_STALL = 0.3  # probability of a withheld input valid / output ready per cycle


def _run_rtlsim(build_dir: Path, x: np.ndarray, outputs: dict, timings: dict) -> dict:
    """Cycle-accurate Verilator simulation, free-running and with random stalls on both ends."""
    from hw import rtlsim
    from hw.errors import HwError

    try:
        t0 = time.perf_counter()
        r = rtlsim(build_dir, x)
        timings["rtlsim"] = round(time.perf_counter() - t0, 3)
        outputs["rtlsim"] = r.outputs
        t0 = time.perf_counter()
        rs = rtlsim(build_dir, x, stall=RTLSIM_STALL, seed=1)
        timings["rtlsim_stalls"] = round(time.perf_counter() - t0, 3)
        outputs["rtlsim_stalls"] = rs.outputs
    except HwError as exc:
        raise FlowError(f"rtlsim: {exc}") from None
    summary = r.summary()
    summary["stalls"] = {"probability": RTLSIM_STALL, "cycles_per_image": rs.cycles_per_image,
                         "total_cycles": rs.total_cycles}
    return summary


def load_layout_head(build_dir: Path) -> LayoutHead | None:
    """The software head (layout ops cut off the graph input), None for builds without one."""
    p = Path(build_dir) / "layout_head.npz"
    return LayoutHead.load(p) if p.is_file() else None


def localize(build_dir: Path, stage: str, reference: str, x: np.ndarray, sample: int) -> dict:
    """Name the first layer where `stage` and intsim diverge on `sample`, where they run the
    same graph (streamlined: FINN vs intsim on the streamlined graph; hw_python: on the HW graph).
    `x` holds the network's inputs; the HW graph is fed them through the layout head."""

    graph = {"streamlined": "split_float_tail", "hw_python": "final"}.get(stage)
    if graph is None or reference != "intsim":
        return {}
    try:
        head = load_layout_head(build_dir)
        x1 = x[sample:sample + 1]
        x1_hw = head.apply(x1) if head is not None else x1
        stage_x = x1 if stage == "streamlined" else x1_hw
        stage_graph = final_graph(build_dir) if graph == "final" else find_step(build_dir, graph)
        return st.localize_layer(stage_graph, final_graph(build_dir),
                                 stage_x, stage, ref_x=x1_hw) or {}
    except Exception as exc:  # localisation is a diagnosis; never hide the mismatch itself
        log.warning("could not localise the mismatch of %s: %s", stage, exc)
        return {}


def verify_build(build_dir: Path, samples: int | None = None, module=None,
                 stages: tuple[str, ...] | None = None, progress=None, out_dir: Path | None = None,
                 check_files: bool = True) -> dict:
    """Run every available stage on the same inputs; write <out_dir>/<stage>.npy (default outputs/).

    check_files: first compare the build's files with its manifest and refuse a changed one
    (False only for tests that alter a graph on purpose to see the stages catch it).

    Returns the `verify` section of report.json (and `accuracy`).
    """
    from qonnx.core.modelwrapper import ModelWrapper


    from .build_folder import check_manifest

    build_dir = Path(build_dir)
    info = load_build_config(build_dir)
    if check_files:  # nothing to check while the build itself verifies (the manifest comes after)
        check_manifest(build_dir)
    samples = samples or info["samples"]
    x, labels = verification_inputs(build_dir, info, samples)
    tail = FloatTail.load(build_dir / "float_tail.npz")
    head = load_layout_head(build_dir)
    # the hardware graph's inputs: the layout head (e.g. NCHW -> NHWC) applied in software
    x_hw = head.apply(x) if head is not None else x
    wanted = stages or st.STAGES
    outputs: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}
    notes: dict[str, str] = {}
    residuals: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        outputs[name] = fn()
        timings[name] = round(time.perf_counter() - t0, 3)

    task = progress.add_task("verify", total=None) if progress is not None else None

    def status(text):
        if progress is not None:
            progress.update(task, description=f"verify: {text} ({samples} samples)")

    if "brevitas" in wanted:
        if module is None and info.get("checkpoint"):
            from .steps.frontend import InputScale
            from models import load_checkpoint

            # build-relative since builds carry their checkpoint (an older build: absolute)
            module = InputScale(load_checkpoint(build_dir / info["checkpoint"])[0], info["input_scale"]).eval()
        if module is not None:
            status("brevitas")

            def _brevitas():
                ints, residuals["brevitas"] = st.stage_brevitas(module, x, tail, head.in_shape if head else None)
                return ints
            timed("brevitas", _brevitas)
        else:
            notes["brevitas"] = "no Brevitas module for this build (--onnx, or a Python-API module not given)"
    if "qonnx" in wanted and (build_dir / "qonnx_clean.onnx").is_file():
        status("qonnx")

        def _qonnx():
            ints, residuals["qonnx"] = st.stage_qonnx(build_dir / "qonnx_clean.onnx", x, tail)
            return ints
        timed("qonnx", _qonnx)
    if "streamlined" in wanted:
        status("streamlined")
        timed("streamlined", lambda: st.stage_finn(find_step(build_dir, "split_float_tail"), x))
    if "hw_python" in wanted:
        status("hw_python")
        timed("hw_python", lambda: st.stage_hw_python(final_graph(build_dir), x_hw))

    if "intsim" in wanted:
        status("intsim")
        timed("intsim", lambda: st.stage_intsim(final_graph(build_dir), x_hw))
    rtl = {}
    if "rtlsim" in wanted and not info.get("rtlsim", True):
        notes["rtlsim"] = "built with rtlsim disabled (no FIFOs inserted)"
    elif "rtlsim" in wanted:
        hls = [n.name for n in ModelWrapper(str(final_graph(build_dir))).graph.node
               if n.op_type.endswith("_hls")]
        if hls:
            notes["rtlsim"] = f"layers without RTL (HLS only): {', '.join(hls)}"
        else:
            status("rtlsim")
            rtl = _run_rtlsim(build_dir, x_hw, outputs, timings)

    topk = int(info.get("topk") or 0)
    if topk:  # the accelerator ends in label select; these stages end in the logits
        for name in ("brevitas", "qonnx", "streamlined"):
            if name in outputs:
                outputs[name] = st.label_select(outputs[name], topk)

    out_dir = Path(out_dir) if out_dir is not None else build_dir / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "inputs.npy", x)
    np.save(out_dir / "hw_inputs.npy", x_hw.reshape(len(x_hw), -1))  # what the accelerator streams
    if labels is not None:
        np.save(out_dir / "labels.npy", labels)
    for name, y in outputs.items():
        np.save(out_dir / f"{name}.npy", y)

    reference = next((s for s in ("intsim", "streamlined") if s in outputs), None)
    ref = outputs[reference]
    mismatches, first, explained = {}, {}, {}
    for name, y in outputs.items():
        if y.shape != ref.shape:
            raise FlowError(f"stage {name} output shape {y.shape} differs from {reference} {ref.shape}")
        bad = np.any(y != ref, axis=1)
        mismatches[name] = int(bad.sum())
        if name == "brevitas" and bad.any() and module is not None:
            from .float_ties import explain_mismatches

            xb = x.reshape((len(x),) + tuple(head.in_shape)) if head is not None else x
            explained["brevitas"] = explain_mismatches(module, xb, np.flatnonzero(bad))
        if name == "qonnx" and bad.any() and module is not None:
            # the QONNX execution is float32 too, summing in another order: its wrong
            # roundings fall on exact ties as well, not always on the same samples as PyTorch's
            from .float_ties import explain_mismatches

            xb = x.reshape((len(x),) + tuple(head.in_shape)) if head is not None else x
            explained["qonnx"] = explain_mismatches(module, xb, np.flatnonzero(bad))
        fm = _first_mismatch(y, ref)
        if fm:
            fm.update(localize(build_dir, name, reference, x, fm["sample"]))
            first[name] = fm
    for e in explained.values():
        if "tie_samples" in e:
            e["tie_samples"] = e["tie_samples"][:20]  # the first few, for a look in the report
    accuracy = {}
    top = np.sort(ref, axis=1)
    argmax_ties = int(np.sum(top[:, -1] == top[:, -2])) if ref.shape[1] > 1 and not topk else 0
    if labels is not None:
        for name, y in outputs.items():
            top1 = y[:, 0] if topk else np.argmax(tail.apply(y), axis=1)
            accuracy[name] = round(100.0 * float(np.mean(top1 == labels)), 2)
    if progress is not None:
        progress.update(task, description=f"verify: done ({samples} samples)", total=1, completed=1)
    return {
        "verify": {
            "samples": int(samples), "reference": reference, "stages": list(outputs),
            "mismatches": mismatches, "first_mismatch": first, "float_residual": residuals,
            "skipped": notes, "timings_s": timings,
            # Brevitas mismatches at pre-activations exactly on a decision boundary, where
            # PyTorch's float32 rounding decides and the accelerator computes exactly
            "explained": explained,
            # samples whose largest integer logit is shared: argmax takes the first index,
            # while PyTorch's float logits break such ties by rounding noise
            "argmax_ties": argmax_ties,
        },
        "accuracy": accuracy,
        "rtlsim": rtl or None,
    }
