"""`qnnflow bench`'s table and targets on a result of the shape bench.json holds (the
benchmark itself runs under `make bench`: timings do not belong in tests)."""
from __future__ import annotations

from rich.console import Console

from flow.bench import RTLSIM_TARGETS, TARGETS, bench_table


def _model(name, intsim, ort, rtl_cycles):
    ratios = {"intsim_vs_onnxruntime": intsim / ort, "intsim_strict_vs_onnxruntime": 0.5,
              "intsim_vs_finn_python": intsim / 100.0, "intsim_strict_vs_finn_python": 5.0,
              "rtlsim_vs_finn_rtl": 2.0, "rtlsim_exact_mvu_vs_finn_rtl": 4.0}
    r = {"model": name, "images": 10000, "finn_python_images": 100, "rtlsim_images": 1000, "batch": 1000,
         "rounds": 3, "intsim_images_per_s": intsim, "intsim_strict_images_per_s": ort / 2,
         "onnxruntime_images_per_s": ort, "finn_python_images_per_s": 100.0, "ratios": ratios,
         "rtlsim_cycles_per_s": rtl_cycles, "rtlsim_exact_mvu_cycles_per_s": 2 * rtl_cycles,
         "rtlsim_finn_rtl_cycles_per_s": rtl_cycles / 2, "rtlsim_images_per_s": 10.0,
         "rtlsim_exact_mvu_images_per_s": 20.0, "rtlsim_finn_rtl_images_per_s": 5.0,
         "rtlsim_cycles_per_image": 784.0}
    targets = dict(TARGETS, **({"rtlsim_cycles_per_s": RTLSIM_TARGETS[name]} if name in RTLSIM_TARGETS else {}))
    r["targets"] = targets
    r["targets_met"] = {k: (ratios[k] if k in ratios else r[k]) >= v for k, v in targets.items()}
    return r


def test_bench_table_marks_each_target():
    a = _model("tfc-w2a2", intsim=300_000, ort=100_000, rtl_cycles=6e6)   # all met
    b = _model("lenet5-w2a2", intsim=10_000, ort=80_000, rtl_cycles=1e6)  # intsim and rtlsim missed
    r = dict(a, models={"tfc-w2a2": a, "lenet5-w2a2": b}, all_targets_met=False)
    assert all(a["targets_met"].values())
    assert not b["targets_met"]["intsim_vs_onnxruntime"] and not b["targets_met"]["rtlsim_cycles_per_s"]
    con = Console(width=200, record=True)
    con.print(bench_table(r))
    text = con.export_text()
    assert "tfc-w2a2" in text and "lenet5-w2a2" in text
    assert text.count("MISSED") == 2, text  # lenet5's intsim vs onnxruntime, its rtlsim cycles/s
    assert "met >=5M" in text and "MISSED >=3M" in text
    assert "All targets met: False" in text.replace("\n", " ")
