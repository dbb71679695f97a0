"""Does the accelerator fit its board? Resource counts as shares of the part's budget.

Contract: `fit_report(used, part, source)` takes counts in the budget's units (LUT, FF,
DSP, BRAM18; a missing key is not estimated) and returns report.json's `fit`: {"part",
"source", "resources": {key: {"used", "available", "share"}}, "over": [keys over 100 %],
"fits"}; "known": False where the part is not in hw/boards.py's table (nothing is
checked then). A build checks FINN's estimate at step `estimates`, `qnnflow synth` the
Yosys counts of the stitched design; over budget is a one-line error unless
--allow-over-budget.
"""
from __future__ import annotations

from hw.boards import part_resources

from .errors import FlowError

KEYS = ("LUT", "FF", "DSP", "BRAM18")


def from_estimates(est: dict) -> dict:
    """FINN's totals (its layer estimates: no flip-flop figure, nothing for FIFOs and width
    converters) in budget units."""
    total = (est.get("layer_resources") or {}).get("total") or {}
    return {"LUT": total.get("LUT", 0), "DSP": total.get("DSP", 0), "BRAM18": total.get("BRAM_18K", 0)}


def from_yosys(counts: dict) -> dict:
    """Yosys cell counts of the stitched design in budget units: LUT sites hold logic, LUT
    memory and shift registers alike, so all three count against the LUT budget."""
    return {"LUT": counts.get("LUT", 0) + counts.get("LUTRAM", 0) + counts.get("SRL", 0),
            "FF": counts.get("FF", 0), "DSP": counts.get("DSP48E1", 0), "BRAM18": counts.get("BRAM_18K", 0)}


def fit_report(used: dict, part: str, source: str) -> dict:
    budget = part_resources(part)
    if budget is None:
        return {"part": part, "source": source, "known": False, "resources": {}, "over": [], "fits": None}
    res = {k: {"used": round(float(used[k]), 1), "available": budget[k], "share": float(used[k]) / budget[k]}
           for k in KEYS if used.get(k) is not None}
    over = [k for k, v in res.items() if v["share"] > 1.0]
    return {"part": part, "source": source, "known": True, "resources": res, "over": over, "fits": not over}


def shares_line(fit: dict) -> str:
    """e.g. 'xc7z020clg400-1 (Yosys): LUT 23,768 / 53,200 (45 %), ...'."""
    if not fit.get("known"):
        return f"{fit['part']}: no resource table for this part; fit not checked"
    parts = [f"{k} {v['used']:,.0f} / {v['available']:,} ({100 * v['share']:.0f} %)"
             for k, v in fit["resources"].items()]
    return f"{fit['part']} ({fit['source']}): " + ", ".join(parts)


def check_fit(fit: dict, allow_over_budget: bool, dsp_hint: str = "") -> None:
    """FlowError where the design is over the part's budget (dsp_hint: a way to free DSPs,
    named first when DSP is what is over)."""
    if not fit.get("over") or allow_over_budget:
        return
    worst = ", ".join(f"{k} {fit['resources'][k]['used']:,.0f} of {fit['resources'][k]['available']:,} "
                      f"({100 * fit['resources'][k]['share']:.0f} %)" for k in fit["over"])
    hint = f"{dsp_hint}, " if dsp_hint and "DSP" in fit["over"] else ""
    raise FlowError(f"the design does not fit {fit['part']} ({fit['source']}): {worst}; {hint}lower --fps, fold "
                    "with --folding, choose a larger --board, or pass --allow-over-budget to build it anyway")
