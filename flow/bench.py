"""`make bench`: throughput of intsim (fast and strict) against onnxruntime and FINN's python
execution, and of the Verilator simulation of the stitched RTL, on several zoo models, all
measured in the same run on the same machine; ratios, not absolutes, are the result."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

BATCH = 1000
MODELS = ("tfc-w2a2", "lenet5-w2a2", "resnet-w4a4")
# per model: (FINN python images, rtlsim images); the conv nets cost ~100x more per image
_IMAGES = {"tfc-w2a2": (1000, 10000)}
_CONV_IMAGES = (100, 1000)
# simulator-speed targets (issue 18): intsim against onnxruntime and FINN python on every
# model; simulated cycles per second of the default rtlsim (FINN's DSP lanes) where set
TARGETS = {"intsim_vs_onnxruntime": 2.0, "intsim_strict_vs_onnxruntime": 0.25, "intsim_vs_finn_python": 100.0}
RTLSIM_TARGETS = {"tfc-w2a2": 5e6, "lenet5-w2a2": 3e6}


def _rate(fn, n_images: int, rounds: int) -> float:
    """Median images/s over `rounds` calls of fn (each processing n_images)."""
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_images / statistics.median(times)


def _ort_session(module, example, path: Path):
    """onnxruntime (2 threads, all graph optimisations) on the QCDQ export of `module`. The
    exporter lists the initializers among the graph inputs, which keeps onnxruntime from
    folding the weights' DequantizeLinear or fusing QLinear ops: they are taken out, so that
    the baseline runs as fast as onnxruntime can."""
    import contextlib
    import io
    import logging

    import onnx
    import onnxruntime as ort
    from brevitas.export import export_onnx_qcdq

    quiet = logging.getLogger("onnxscript")
    level, quiet.level = quiet.level, logging.CRITICAL  # the version converter's fallback trace
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch.onnx's progress lines
            export_onnx_qcdq(module, example, export_path=str(path))
    finally:
        quiet.setLevel(level)
    model = onnx.load(str(path))
    inits = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    onnx.save(model, str(path))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def bench_model(out: Path, model: str, rounds: int = 5, finn_images: int | None = None,
                rtl_images: int | None = None, progress=print) -> dict:
    """Build `model` (100 samples, fresh) under out/ and measure every simulator on it."""
    import torch

    import sim
    from models import load_mnist

    from .build_folder import final_graph, find_step
    from .config import BuildConfig
    from .pipeline import run_build
    from .stages import run_batched
    from .steps.frontend import InputScale
    from .verify import load_layout_head

    d_finn, d_rtl = _IMAGES.get(model, _CONV_IMAGES)
    finn_images, rtl_images = finn_images or d_finn, rtl_images or d_rtl
    out = Path(out)
    build = out / "build"
    progress(f"{model}: building (100 samples) in {build}")
    run_build(BuildConfig(out=build, model=model, samples=100, force=True))  # fresh: steps change
    info = json.loads((build / "build.json").read_text())
    x = load_mnist("test").pixels  # all 10,000 test images, UINT8 as the accelerator streams them
    head = load_layout_head(build)
    x_hw = head.apply(x) if head is not None else x  # e.g. NCHW -> NHWC, as verification does
    in_shape = tuple(head.in_shape) if head is not None else (x.shape[1],)
    hw_graph = final_graph(build)
    batches = [x_hw[i:i + BATCH] for i in range(0, len(x), BATCH)]

    progress(f"{model}: intsim, onnxruntime, FINN python ({rounds} interleaved rounds)")
    fast, strict = sim.IntSim(hw_graph, "fast"), sim.IntSim(hw_graph, "strict")
    ref = np.concatenate([strict.run(b) for b in batches])
    assert np.array_equal(ref, np.concatenate([fast.run(b) for b in batches])), f"{model}: fast != strict"

    # onnxruntime on the QCDQ export of the same Brevitas model (2 threads)
    from models import load_checkpoint

    module = InputScale(load_checkpoint(build / info["checkpoint"])[0], info["input_scale"]).eval()
    qcdq = out / "model_qcdq.onnx"
    sess = _ort_session(module, torch.zeros((BATCH,) + in_shape), qcdq)
    iname = sess.get_inputs()[0].name
    xf = [x[i:i + BATCH].reshape((-1,) + in_shape).astype(np.float32) for i in range(0, len(x), BATCH)]

    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    streamlined = ModelWrapper(str(find_step(build, "split_float_tail")))
    xs = x[:finn_images]

    rates = {k: [] for k in ("intsim", "intsim_strict", "onnxruntime", "finn_python")}
    for _ in range(rounds):  # interleaved rounds: machine noise hits every method alike
        rates["intsim"].append(_rate(lambda: [fast.run(b) for b in batches], len(x), 1))
        rates["intsim_strict"].append(_rate(lambda: [strict.run(b) for b in batches], len(x), 1))
        rates["onnxruntime"].append(_rate(lambda: [sess.run(None, {iname: b}) for b in xf], len(x), 1))
    for _ in range(max(1, rounds // 2)):
        rates["finn_python"].append(_rate(lambda: run_batched(streamlined, xs, min(BATCH, len(xs)),
                                                              execute_onnx), len(xs), 1))
    med = {k: statistics.median(v) for k, v in rates.items()}

    # cycle-accurate simulation of the stitched RTL (Verilator), cached simulators
    from hw import rtlsim

    progress(f"{model}: rtlsim on {rtl_images} images (FINN's lanes, exact products, FINN's RTL)")
    xr, want = x_hw[:rtl_images], ref[:rtl_images]
    rtl = rtlsim(build, xr, finn_dsp_lanes=True)  # as the verification chain runs it
    assert np.array_equal(rtl.outputs, want), f"{model}: rtlsim != intsim"
    rtl_exact = rtlsim(build, xr, finn_dsp_lanes=False)  # exact dot products, same cycles
    assert np.array_equal(rtl_exact.outputs, want), f"{model}: rtlsim (exact MVU) != intsim"
    assert rtl_exact.total_cycles == rtl.total_cycles, f"{model}: exact MVU model changed the cycle count"
    # baseline: FINN's RTL as FINN wrote it (no recodings), FINN's lanes
    rtl_finn = rtlsim(build, xr, finn_dsp_lanes=True, finn_rtl=True)
    assert np.array_equal(rtl_finn.outputs, want), f"{model}: rtlsim (FINN's RTL) != intsim"
    assert rtl_finn.total_cycles == rtl.total_cycles, f"{model}: the recodings changed the cycle count"
    ort_rate = med["onnxruntime"]
    r = {
        "model": model, "images": int(len(x)), "finn_python_images": int(len(xs)),
        "rtlsim_images": int(len(xr)), "batch": BATCH, "rounds": rounds,
        "intsim_images_per_s": med["intsim"],
        "intsim_strict_images_per_s": med["intsim_strict"],
        "onnxruntime_images_per_s": ort_rate,
        "finn_python_images_per_s": med["finn_python"],
        "ratios": {
            "intsim_vs_onnxruntime": med["intsim"] / ort_rate,
            "intsim_strict_vs_onnxruntime": med["intsim_strict"] / ort_rate,
            "intsim_vs_finn_python": med["intsim"] / med["finn_python"],
            "intsim_strict_vs_finn_python": med["intsim_strict"] / med["finn_python"],
            "rtlsim_vs_finn_rtl": rtl.sim_cycles_per_s / rtl_finn.sim_cycles_per_s,
            "rtlsim_exact_mvu_vs_finn_rtl": rtl_exact.sim_cycles_per_s / rtl_finn.sim_cycles_per_s,
        },
        "fast_mode_gemm": [p.gemm for p in fast.nodes],
        "rtlsim_cycles_per_s": rtl.sim_cycles_per_s,
        "rtlsim_exact_mvu_cycles_per_s": rtl_exact.sim_cycles_per_s,
        "rtlsim_exact_mvu_images_per_s": len(xr) / rtl_exact.wall_s,
        "rtlsim_finn_rtl_cycles_per_s": rtl_finn.sim_cycles_per_s,
        "rtlsim_finn_rtl_images_per_s": len(xr) / rtl_finn.wall_s,
        "rtlsim_images_per_s": len(xr) / rtl.wall_s,
        "rtlsim_cycles_per_image": rtl.cycles_per_image,
    }
    targets = dict(TARGETS)
    if model in RTLSIM_TARGETS:
        targets["rtlsim_cycles_per_s"] = RTLSIM_TARGETS[model]
        r["rtlsim_target_cycles_per_s"] = RTLSIM_TARGETS[model]  # bench.json's key before `targets` had it
    r["targets"] = targets
    r["targets_met"] = {k: bool((r["ratios"].get(k) if k in r["ratios"] else r[k]) >= v)
                        for k, v in targets.items()}
    return r


def run_bench(out: Path, models=MODELS, rounds: int = 5, progress=print) -> dict:
    """Every model in `models` through bench_model; bench.json keeps the first model's
    figures at the top level (the layout before several models were measured) and all of
    them under `models`."""
    out = Path(out)
    if not models:
        raise ValueError("no model to benchmark")
    per = {m: bench_model(out / m, m, rounds=rounds, progress=progress) for m in models}
    result = dict(per[models[0]])
    result["models"] = per
    result["all_targets_met"] = all(all(r["targets_met"].values()) for r in per.values())
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    return result


def bench_table(r: dict):
    """One row per model and method; the rtlsim figures in simulated cycles/s."""
    from rich.table import Table

    models = r.get("models") or {r["model"]: r}
    t = Table(title=f"qnnflow bench ({r['rounds']} interleaved rounds, medians)")
    for c in ("model", "method", "images/s", "/ORT", "/FINN", "Mcyc/s", "target"):
        t.add_column(c, justify="left" if c in ("model", "method", "target") else "right")

    def mark(m, key):
        if key not in m["targets"]:
            return ""
        v = m["targets"][key]
        goal = f">={v / 1e6:.0f}M" if v >= 1e5 else f">={v:g}x"
        return f"{'met' if m['targets_met'][key] else 'MISSED'} {goal}"

    for name, m in models.items():
        ort, finn = m["onnxruntime_images_per_s"], m["finn_python_images_per_s"]
        rows = [("intsim fast", "intsim_images_per_s", None),
                ("intsim strict", "intsim_strict_images_per_s", None),
                ("onnxruntime", "onnxruntime_images_per_s", None),
                ("FINN python", "finn_python_images_per_s", None),
                ("rtlsim lanes", "rtlsim_images_per_s", "rtlsim_cycles_per_s"),
                ("rtlsim exact", "rtlsim_exact_mvu_images_per_s", "rtlsim_exact_mvu_cycles_per_s"),
                ("rtlsim FINN", "rtlsim_finn_rtl_images_per_s", "rtlsim_finn_rtl_cycles_per_s")]
        tgt = {"intsim_images_per_s": f"{mark(m, 'intsim_vs_onnxruntime')} ORT, "
                                      f"{mark(m, 'intsim_vs_finn_python')} FINN",
               "intsim_strict_images_per_s": mark(m, "intsim_strict_vs_onnxruntime") + " ORT",
               "rtlsim_images_per_s": mark(m, "rtlsim_cycles_per_s")}
        for i, (label, key, cyc) in enumerate(rows):
            v = m[key]
            t.add_row(name if i == 0 else "", label, f"{v:,.0f}", f"{v / ort:.3g}", f"{v / finn:.3g}",
                      f"{m[cyc] / 1e6:.2f}" if cyc else "", tgt.get(key, "").strip())
        t.add_section()
    t.caption = ("intsim and onnxruntime (QCDQ export, 2 threads) on the 10,000 MNIST test images in "
                 f"batches of {r['batch']}; FINN python (streamlined graph) and rtlsim on the first "
                 "images (bench.json: finn_python_images, rtlsim_images). rtlsim lanes: the default, "
                 "FINN's DSP-lane model; exact: exact MVU dot products (FIFO sizing); FINN: FINN's RTL "
                 "without qnnflow's recodings. Mcyc/s: simulated clock cycles per second of the "
                 f"simulation loop. All targets met: {r.get('all_targets_met', all(r['targets_met'].values()))}")
    return t
