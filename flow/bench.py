"""`make bench`: throughput of intsim (fast and strict) against onnxruntime and FINN's python
execution, all measured in the same run on the same machine; ratios, not absolutes, are the result."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

BATCH = 1000


def _rate(fn, n_images: int, rounds: int) -> float:
    """Median images/s over `rounds` calls of fn (each processing n_images)."""
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_images / statistics.median(times)


def run_bench(out: Path, model: str = "tfc-w2a2", rounds: int = 5, finn_images: int = 1000) -> dict:
    import torch
    from brevitas.export import export_onnx_qcdq

    import sim
    from models import load_mnist

    from .config import BuildConfig
    from .build_folder import final_graph, find_step
    from .pipeline import run_build
    from .steps.frontend import InputScale
    from .stages import run_batched

    out = Path(out)
    build = out / "build"
    run_build(BuildConfig(out=build, model=model, samples=100, force=True))  # fresh: steps change
    info = json.loads((build / "build.json").read_text())
    x = load_mnist("test").pixels  # all 10,000 test images, UINT8 as the accelerator streams them
    hw_graph = final_graph(build)
    batches = [x[i:i + BATCH] for i in range(0, len(x), BATCH)]

    fast, strict = sim.IntSim(hw_graph, "fast"), sim.IntSim(hw_graph, "strict")
    ref = np.concatenate([strict.run(b) for b in batches])
    assert np.array_equal(ref, np.concatenate([fast.run(b) for b in batches])), "fast != strict"

    # onnxruntime on the QCDQ export of the same Brevitas model (2 threads)
    import onnxruntime as ort
    from models import load_checkpoint

    module = InputScale(load_checkpoint(build / info["checkpoint"])[0], info["input_scale"]).eval()
    qcdq = out / "model_qcdq.onnx"
    export_onnx_qcdq(module, torch.zeros(BATCH, x.shape[1]), export_path=str(qcdq))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(qcdq), so, providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    xf = [b.astype(np.float32) for b in batches]

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
        rates["finn_python"].append(_rate(lambda: run_batched(streamlined, xs, BATCH, execute_onnx), len(xs), 1))
    med = {k: statistics.median(v) for k, v in rates.items()}

    # cycle-accurate simulation of the stitched RTL (Verilator), all test images, cached build
    from hw import rtlsim

    rtl = rtlsim(build, x, finn_dsp_lanes=True)  # as the verification chain runs it
    assert np.array_equal(rtl.outputs, ref), "rtlsim != intsim"
    rtl_exact = rtlsim(build, x, finn_dsp_lanes=False)  # exact dot products, same cycles
    assert np.array_equal(rtl_exact.outputs, ref), "rtlsim (exact MVU) != intsim"
    assert rtl_exact.total_cycles == rtl.total_cycles, "exact MVU model changed the cycle count"
    # baseline: FINN's RTL as FINN wrote it (no recodings), FINN's lanes
    rtl_finn = rtlsim(build, x, finn_dsp_lanes=True, finn_rtl=True)
    assert np.array_equal(rtl_finn.outputs, ref), "rtlsim (FINN's RTL) != intsim"
    assert rtl_finn.total_cycles == rtl.total_cycles, "the recodings changed the cycle count"
    ort_rate = med["onnxruntime"]
    result = {
        "model": model, "images": int(len(x)), "batch": BATCH, "rounds": rounds,
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
        "targets": {"intsim_vs_onnxruntime": 1.5, "intsim_strict_vs_onnxruntime": 0.25,
                    "intsim_vs_finn_python": 100.0},
        "fast_mode_gemm": [p.gemm for p in fast.nodes],
        "rtlsim_cycles_per_s": rtl.sim_cycles_per_s,
        "rtlsim_exact_mvu_cycles_per_s": rtl_exact.sim_cycles_per_s,
        "rtlsim_exact_mvu_images_per_s": len(x) / rtl_exact.wall_s,
        "rtlsim_finn_rtl_cycles_per_s": rtl_finn.sim_cycles_per_s,
        "rtlsim_finn_rtl_images_per_s": len(x) / rtl_finn.wall_s,
        "rtlsim_images_per_s": len(x) / rtl.wall_s,
        "rtlsim_cycles_per_image": rtl.cycles_per_image,
        "rtlsim_target_cycles_per_s": 5e6,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    return result


def bench_table(r: dict):
    from rich.table import Table

    t = Table(title=f"qnnflow bench: {r['model']}, {r['images']} MNIST test images, batch {r['batch']}, "
                    f"median of {r['rounds']} interleaved rounds")
    t.add_column("method")
    t.add_column("images/s", justify="right")
    t.add_column("/ onnxruntime", justify="right")
    t.add_column("/ FINN python", justify="right")
    ort, finn = r["onnxruntime_images_per_s"], r["finn_python_images_per_s"]
    for name, key in (("intsim fast (int8 or float GEMM, proven exact)", "intsim_images_per_s"),
                      ("intsim strict (int64)", "intsim_strict_images_per_s"),
                      ("onnxruntime QCDQ, 2 threads", "onnxruntime_images_per_s"),
                      ("FINN python execution (streamlined)", "finn_python_images_per_s")):
        v = r[key]
        t.add_row(name, f"{v:,.0f}", f"{v / ort:.2f}x", f"{v / finn:.0f}x")
    t.add_row("rtlsim (Verilator, stitched RTL)", f"{r['rtlsim_images_per_s']:,.0f}",
              f"{r['rtlsim_images_per_s'] / ort:.4f}x", f"{r['rtlsim_images_per_s'] / finn:.2f}x")
    t.add_row("rtlsim, exact dot products in the MVUs", f"{r['rtlsim_exact_mvu_images_per_s']:,.0f}",
              f"{r['rtlsim_exact_mvu_images_per_s'] / ort:.4f}x", f"{r['rtlsim_exact_mvu_images_per_s'] / finn:.2f}x")
    if "rtlsim_finn_rtl_images_per_s" in r:
        v = r["rtlsim_finn_rtl_images_per_s"]
        t.add_row("rtlsim, FINN's RTL without qnnflow's recodings", f"{v:,.0f}", f"{v / ort:.4f}x", f"{v / finn:.2f}x")
    base = (f", {r['rtlsim_finn_rtl_cycles_per_s'] / 1e6:.2f} M with FINN's RTL unrecoded (same run: "
            f"{r['ratios']['rtlsim_vs_finn_rtl']:.2f}x and {r['ratios']['rtlsim_exact_mvu_vs_finn_rtl']:.2f}x)"
            if "rtlsim_finn_rtl_cycles_per_s" in r else "")
    t.caption = (f"rtlsim: {r['rtlsim_cycles_per_s'] / 1e6:.2f} M simulated cycles/s with FINN's DSP lane model "
                 f"(verification), {r['rtlsim_exact_mvu_cycles_per_s'] / 1e6:.2f} M with exact MVU dot products "
                 f"(FIFO sizing){base}; target 5 M; {r['rtlsim_cycles_per_image']:.0f} cycles/image\n"
                 "targets: fast >= 1.5x onnxruntime, strict >= 0.25x onnxruntime, fast >= 100x FINN python")
    return t
