"""`qnnflow compress`: every method ends in a full build that is bit-exact in every stage
(rtlsim included), and the study's table, findings and plot."""
from __future__ import annotations

import json

import numpy as np
import pytest

from flow.cli import main
from flow.compress import mismatch_total
from flow.compress_study import CLUSTER_METHODS, findings, markdown, plot


INTEGER_STAGES = ("streamlined", "hw_python", "intsim", "rtlsim", "rtlsim_stalls")


def _run(argv) -> int:
    return main(["compress", *argv])


def _summary(out):
    return json.loads((out / "compress.json").read_text())


def test_share_builds_bit_exact(tmp_path):
    out = tmp_path / "share3"
    assert _run(["share", "--bits", "3", "--cluster", "hierarchical", "--samples", "200", "--out", str(out)]) == 0
    s = _summary(out)
    assert s["name"] == "tfc-w8a8" and s["compression"]["method"] == "hierarchical"
    assert all(layer["distinct"] <= 8 for layer in s["compression"]["layers"])
    hw = s["hardware"]
    assert hw["samples"] == 200 and set(hw["mismatches"]) >= {"intsim", "rtlsim", "brevitas"}
    assert mismatch_total(hw) == 0 and all(hw["mismatches"][k] == 0 for k in INTEGER_STAGES)
    assert s["storage"]["model_bits"] < s["storage"]["finn_weight_bits"]
    report = json.loads((out / "build" / "report.json").read_text())
    # the build carries its checkpoint; the source it names moved with the folder
    assert report["checkpoint"] == "checkpoint.pt" and (out / "build" / "checkpoint.pt").is_file()
    assert report["checkpoint_source"] == str((out / "model.pt").resolve())


def test_layer_without_positive_weights_builds(tmp_path):
    """2-bit linear quantization of tfc-w8a8 leaves the classifier with weights in {-1, 0}
    only; FINN's width minimisation labels them BIPOLAR (which has no 0) and its weight
    files refuse them: the flow labels such weights INT2, and the build is exact."""
    from models import load_checkpoint
    from models.compress import core

    out = tmp_path / "lin2"
    assert _run(["linear", "--bits", "2", "--samples", "200", "--out", str(out)]) == 0
    model, _ = load_checkpoint(out / "model.pt")
    w = core.int_weights(core.weight_layers(model)[-1])
    assert (w.min(), w.max()) == (-1, 0)
    hw = _summary(out)["hardware"]
    assert mismatch_total(hw) == 0 and all(hw["mismatches"][k] == 0 for k in INTEGER_STAGES)


@pytest.mark.parametrize("argv,check", [
    (["prune", "--sparsity", "0.6", "--prune-epochs", "1", "--finetune-epochs", "1"],
     lambda s: s["storage"]["zeros"] >= 0.6),
    (["neurons", "--tau", "2e-3", "--lasso-epochs", "1", "--finetune-epochs", "1"],
     lambda s: sum(s["arch_kwargs"]["widths"]) < 3 * 64),
    (["mixed", "--budget-bits", "3", "--search-epochs", "1", "--finetune-epochs", "1"],
     lambda s: s["storage"]["finn_weight_bits"] <= 3 * s["storage"]["weights"]),
], ids=["prune", "neurons", "mixed"])
def test_trained_methods_build_bit_exact(tmp_path, argv, check):
    out = tmp_path / argv[0]
    assert _run([*argv, "--samples", "200", "--out", str(out)]) == 0
    s = _summary(out)
    assert check(s), s["storage"]
    hw = s["hardware"]
    # integer stages exact; the float stages may only differ at explained float32 rounding ties
    assert mismatch_total(hw) == 0 and all(hw["mismatches"][k] == 0 for k in INTEGER_STAGES)
    assert s["test_accuracy"] > 80.0


def test_neuron_pruning_shrinks_the_accelerator(tmp_path):
    """Structured pruning narrows FINN's matrix units: fewer DSPs and BRAMs than the unpruned
    base at the same folding target (unstructured zeros would not change them)."""
    base = tmp_path / "base"
    assert _run(["linear", "--bits", "8", "--model", "tfc-w8a8", "--samples", "100", "--out", str(base)]) == 0
    out = tmp_path / "neurons"
    assert _run(["neurons", "--tau", "3e-3", "--lasso-epochs", "1", "--finetune-epochs", "0",
                 "--samples", "100", "--out", str(out)]) == 0
    b, n = _summary(base)["hardware"], _summary(out)["hardware"]
    assert sum(_summary(out)["arch_kwargs"]["widths"]) < 3 * 64
    # the matrix units shrink: fewer DSPs and weight BRAMs (FINN may move the narrower
    # layers' threshold memories from BRAM into LUTs, so LUTs can rise: see docs/compress)
    assert n["DSP"] < b["DSP"] and n["BRAM_18K"] < b["BRAM_18K"]
    mvu = lambda hw: sum(r["DSP"] for k, r in hw["layer_resources"].items() if k.startswith("MVAU"))  # noqa: E731
    assert mvu(n) < mvu(b)


def test_bad_inputs_fail_cleanly(tmp_path, capsys):
    out = tmp_path / "x"
    assert _run(["linear", "--model", "tfc-w1a1", "--out", str(out), "--no-build"]) == 2
    err = capsys.readouterr().err
    assert "linear integer base" in err and not out.exists()
    assert not any(tmp_path.iterdir())
    assert _run(["share", "--bits", "4", "--out", str(out), "--no-build"]) == 0
    assert (out / "model.pt").is_file() and not (out / "build").exists()
    assert _run(["share", "--bits", "4", "--out", str(out), "--no-build"]) == 2
    assert "exists" in capsys.readouterr().err
    assert _run(["neurons", "--model", "lenet5-w2a2", "--out", str(tmp_path / "y"), "--no-build"]) == 2
    assert "MLPs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run(["share", "--bits", "9", "--out", str(tmp_path / "z")])


def _synthetic_result():
    rows = []
    hw = {"LUT": 100.0, "BRAM_18K": 4.0, "DSP": 8.0, "est_cycles_per_image": 784, "rtlsim_cycles_per_image": 784.0}
    for pruned in (False, True):
        for b in (4, 3):
            for i, m in enumerate(("linear",) + CLUSTER_METHODS):
                rows.append({"method": m, "pruned": pruned, "bits": b, "accuracy": 90.0 + i - (4 - b) * (i == 0) * 5,
                             "model_kib": b * 3.0, "finn_weight_kib": 24.0, "zeros": 0.1, "hw": hw})
    rows.append({"method": "magnitude-prune", "pruned": True, "bits": 8, "accuracy": 95.0, "model_kib": 9.0,
                 "finn_weight_kib": 57.0, "zeros": 0.8, "hw": hw, "detail": {"sparsity": 0.8}})
    rows.append({"method": "neuron-prune", "pruned": True, "bits": 8, "accuracy": 96.0, "model_kib": 30.0,
                 "finn_weight_kib": 30.0, "zeros": 0.0, "hw": {**hw, "LUT": 50.0}, "detail": {"widths": [32, 32, 16]},
                 "build": {"mismatches": 0}})
    for m, acc in (("mixed-precision", 97.0), ("uniform", 96.5)):
        rows.append({"method": m, "pruned": False, "bits": [2, 8, 8, 8] if m == "mixed-precision" else [3] * 4,
                     "accuracy": acc, "model_kib": 21.0, "finn_weight_kib": 21.0, "zeros": 0.0, "hw": None,
                     "budget_bits": 3})
    return {"model": "tfc-w8a8", "base_accuracy": 98.0, "bits": [4, 3], "grid_bits": 8, "sparsity": 0.8,
            "command": "qnnflow compress study", "seconds": 1.0, "rows": rows}


def test_study_table_findings_and_plot(tmp_path):
    r = _synthetic_result()
    lines = findings(r)
    assert any("clustering beats linear" in line and "[4, 3] of [4, 3]" in line for line in lines)
    assert any("beats uniform 3 bits" in line and "97.00 vs 96.50" in line for line in lines)
    assert any("50 LUT" in line for line in lines)
    md = markdown(r)
    assert "| 3 | 85.00 | 91.00 | 92.00 | 93.00 | 94.00 |" in md
    assert "yes, 0" in md and md.count("\n| ") > 20
    plot(r, tmp_path / "p.png")
    png = (tmp_path / "p.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    assert np.isfinite(r["base_accuracy"])
