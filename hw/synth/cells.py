"""Resource counts from Yosys cells (7-series), and the report's table of them next
to FINN's estimates."""
from __future__ import annotations

import json
import re
from pathlib import Path

COUNT_KEYS = ["LUT", "LUTRAM", "SRL", "FF", "CARRY4", "MUXF7", "MUXF8",
              "DSP48E1", "RAMB18E1", "RAMB36E1", "BRAM_18K"]
# distributed RAM and shift registers, in LUT sites (7-series)
_LUTRAM_SITES = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2, "RAM128X1S": 2,
                 "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM32X2S": 2}
_SRL = {"SRL16E", "SRLC16E", "SRLC32E"}
_IGNORED = {"$check", "$print", "$scopeinfo", "BUFG", "BUFGCTRL", "IBUF", "OBUF", "IOBUF", "OBUFT",
            "GND", "VCC"}


def counts_from_cells(cells: dict[str, int]) -> dict:
    """Resource counts from Yosys cell types (stat -json num_cells_by_type)."""
    c = {k: 0 for k in COUNT_KEYS}
    other: dict[str, int] = {}
    for t, n in cells.items():
        n = int(n)
        if re.fullmatch(r"LUT[1-6]|LUT6_2", t):
            c["LUT"] += n
        elif t in _LUTRAM_SITES:
            c["LUTRAM"] += n * _LUTRAM_SITES[t]
        elif t in _SRL:
            c["SRL"] += n
        elif re.fullmatch(r"FD[RSCP]E(_1)?|FD[RSCP]?|LD[CP]E|LD[CP]", t):
            c["FF"] += n
        elif t in ("CARRY4", "MUXF7", "MUXF8", "DSP48E1", "RAMB18E1", "RAMB36E1"):
            c[t] += n
        elif t not in _IGNORED:
            other[t] = other.get(t, 0) + n
    c["BRAM_18K"] = c["RAMB18E1"] + 2 * c["RAMB36E1"]
    if other:
        c["other"] = other
    return c


def add_counts(a: dict, b: dict) -> dict:
    out = {k: a.get(k, 0) + b.get(k, 0) for k in COUNT_KEYS}
    other = dict(a.get("other", {}))
    for k, v in b.get("other", {}).items():
        other[k] = other.get(k, 0) + v
    if other:
        out["other"] = other
    return out


TABLE_COLUMNS = ["layer", "status", "yosys_LUT", "yosys_LUTRAM", "yosys_FF", "yosys_DSP", "yosys_BRAM18",
                 "finn_LUT", "finn_DSP", "finn_BRAM18"]


def synth_table(result: dict, estimates) -> list[dict]:
    """Rows for the report: per layer (stream order), Yosys counts next to FINN's
    estimates (<build>/estimates.json layer_resources; a dict or a path), then the
    sum over layers ("total (layers)") and the stitched design ("design (stitched)").
    yosys_LUT counts logic LUTs; yosys_LUTRAM the LUT sites used as distributed RAM
    and shift registers. FINN has no estimate for FIFOs and width converters (None)."""
    if isinstance(estimates, (str, Path)):
        p = Path(estimates)
        estimates = json.loads(p.read_text()) if p.is_file() else {}
    est = (estimates or {}).get("layer_resources", {})

    def fin(d: dict | None, key: str):
        if not d or d.get(key) is None:
            return None
        v = float(d[key])
        return int(v) if v.is_integer() else round(v, 1)

    def row(name: str, status: str, c: dict | None, e: dict | None) -> dict:
        return {"layer": name, "status": status,
                "yosys_LUT": c["LUT"] if c else None,
                "yosys_LUTRAM": (c["LUTRAM"] + c["SRL"]) if c else None,
                "yosys_FF": c["FF"] if c else None,
                "yosys_DSP": c["DSP48E1"] if c else None,
                "yosys_BRAM18": c["BRAM_18K"] if c else None,
                "finn_LUT": fin(e, "LUT"), "finn_DSP": fin(e, "DSP"), "finn_BRAM18": fin(e, "BRAM_18K")}

    layers = result.get("layers", {})
    rows = [row(name, e["status"], e.get("counts"), est.get(name)) for name, e in layers.items()]
    if layers:
        n_bad = sum(1 for e in layers.values() if e["status"] != "ok")
        # FINN's side summed over the same layers (it has no FIFO/DWC estimates)
        fsum = {k: sum(float(est[n][k]) for n in layers if est.get(n, {}).get(k) is not None)
                for k in ("LUT", "DSP", "BRAM_18K")} if any(n in est for n in layers) else None
        rows.append(row("total (layers)", "ok" if not n_bad else f"{n_bad} layer(s) missing",
                        result.get("layer_total"), fsum))
    if "top" in result:
        t = result["top"]
        rows.append(row("design (stitched)", t["status"], t.get("counts"), est.get("total")))
    return rows
