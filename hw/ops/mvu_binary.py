"""MVAU_binary_rtl: FINN's MVAU for 1-bit weights on hw/rtl/qnn_mvu_binary.sv (LUTs, no DSP).

FINN's RTL MVU refuses what makes a layer binary (binaryXnorMode, bipolar or unsigned
weights, embedded thresholds), so such layers would stay HLS and need Vivado. The core
covers two arithmetic cases of FINN's MVAU.execute_node, each with or without embedded
thresholds (noActivation = 0 / 1):

- "xnor": binaryXnorMode = 1 (BINARY inputs and weights standing for -1/+1), or BIPOLAR
  inputs times BIPOLAR weights, which FINN also computes as popcount(xnor);
- "sum": weights all -1/+1 (typed BIPOLAR, or INT2 after FINN's width minimisation) times
  integer inputs of any width: acc = sum of x where w = +1 minus x where w = -1.

Weights and thresholds live in the core (read from `<node>_weights.dat` and
`<node>_thresholds.dat`), not in FINN's memstream: the layer is one self-contained stream
node, whatever its mem_mode attribute says. Folding and timing are FINN's (PE, SIMD;
MH/PE * MW/SIMD cycles per vector, get_exp_cycles).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU
from qonnx.core.datatype import DataType

from .base import OpenRTLBackend, open_core
from .memfiles import activation_params, rom_unsupported, hex_words, threshold_words, thresholds_unsupported


def binary_mode(inst, model) -> tuple[str | None, str | None]:
    """("xnor" | "sum", None) for a layer the core implements, else (None, the reason)."""
    idt, wdt = inst.get_input_datatype(0), inst.get_input_datatype(1)
    w = model.get_initializer(inst.onnx_node.input[1])
    if w is None:
        return None, "weights are not a constant of the graph (streamed weights)"
    vals = set(np.unique(w).tolist())
    if inst.get_nodeattr("binaryXnorMode"):
        if idt.name != "BINARY" or not vals <= {0, 1}:
            return None, f"binaryXnorMode with {idt.name} inputs and weights {sorted(vals)[:4]} (not 0/1)"
        return "xnor", None
    if not vals <= {-1, 1}:
        return None, f"{wdt.name} weights with values {sorted(vals)[:4]} (the core holds -1/+1 weights only)"
    if idt.name == "BIPOLAR":
        if wdt.name != "BIPOLAR":
            return None, f"BIPOLAR inputs times {wdt.name} weights (FINN's matmul of -1/+1 inputs)"
        return "xnor", None
    if not idt.is_integer():
        return None, f"{idt.name} inputs (the core takes integers)"
    return "sum", None


class MVAU_binary(MVAU):
    """FINN's MVAU under this op's generic name (FINN's python execution)."""


@open_core("MVAU_hls")
class MVAU_binary_rtl(MVAU, OpenRTLBackend):
    CORE = "qnn_mvu_binary"
    CORE_FILES = ("qnn_mvu_binary.sv", "qnn_mvu_binary_addtree.sv")
    GENERIC_OPS = (MVAU_binary,)

    # -- which layers -------------------------------------------------------------
    @classmethod
    def supports(cls, node, model):
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        g = inst.get_nodeattr
        why = rom_unsupported(inst)
        if why:
            return why
        if g("pumpedMemory") or int(g("TH")) != 1:
            return "double-pumped memory or tiling (TH > 1)"
        if g("MW") % g("SIMD") or g("MH") % g("PE"):
            return f"folding SIMD {g('SIMD')} / PE {g('PE')} does not divide MW {g('MW')} / MH {g('MH')}"
        mode, why = binary_mode(inst, model)
        if mode is None:
            return why
        odt = inst.get_output_datatype()
        if g("noActivation"):
            if not odt.is_integer() or odt.name == "BIPOLAR":
                return f"accumulator output of type {odt.name}"
            return None
        return thresholds_unsupported(inst, node, model, int(g("MH")))

    def _mode(self, model=None) -> str:
        mode, why = binary_mode(self, model if model is not None else self._model)
        if mode is None:
            raise RuntimeError(f"{self.onnx_node.name}: qnn_mvu_binary cannot implement this layer: {why}")
        return mode

    def _acc_range(self, mode: str) -> tuple[int, int]:
        """Every value a row's partial sum can take (from the types, not the weights)."""
        mw = int(self.get_nodeattr("MW"))
        if mode == "xnor":
            return 0, mw
        idt = self.get_input_datatype(0)
        m = max(abs(int(idt.min())), abs(int(idt.max())))
        return -mw * m, mw * m

    # -- FINN's datatype minimisation, where popcount differs -----------------------
    def minimize_accumulator_width(self, model, datatype_only=False):
        """FINN sizes a binaryXnorMode accumulator for the +-1 dot product with 0/1 inputs
        (e.g. INT7 for 64 inputs), but the layer computes popcount(xnor), 0..MW: 64 matches
        would overflow INT7. Size it for 0..MW instead."""
        adt = super().minimize_accumulator_width(model, datatype_only)
        mode, _ = binary_mode(self, model)
        if mode != "xnor":
            return adt
        bits = max(1, int(self.get_nodeattr("MW")).bit_length())
        if self.get_nodeattr("noActivation") and model.find_direct_successors(self.onnx_node) is None:
            bits = -(-bits // 8) * 8  # FINN's rule for a graph output: whole bytes
        adt = DataType[f"UINT{bits}"]
        self.set_nodeattr("accDataType", adt.name)
        if self.get_nodeattr("noActivation"):
            self.set_nodeattr("outputDataType", adt.name)
        return adt

    def minimize_weight_bit_width(self, model, datatype_only=False):
        """Keep 1-bit weight types: the core stores one bit per weight whatever the label, and
        relabelling BIPOLAR as INT2 would turn FINN's BIPOLAR x BIPOLAR popcount into a matmul."""
        wdt = self.get_input_datatype(1)
        if wdt.bitwidth() == 1:
            return wdt
        return super().minimize_weight_bit_width(model, datatype_only)

    # -- code generation ---------------------------------------------------------------
    def core_params(self):
        mode = self._mode()
        idt = self.get_input_datatype(0)
        lo, hi = self._acc_range(mode)
        params = {
            "MW": int(self.get_nodeattr("MW")), "MH": int(self.get_nodeattr("MH")),
            "PE": int(self.get_nodeattr("PE")), "SIMD": int(self.get_nodeattr("SIMD")),
            "XNOR": mode == "xnor",
            "IBITS": 1 if mode == "xnor" else int(idt.bitwidth()),
            "ISIGNED": mode == "sum" and bool(idt.signed()),
        }
        params.update(activation_params(self, self._model, lo, hi))
        return params

    def write_memory_files(self, code_gen_dir: Path) -> None:
        model, top = self._model, self.get_nodeattr("gen_top_module")
        mode = self._mode()
        mw, mh = int(self.get_nodeattr("MW")), int(self.get_nodeattr("MH"))
        pe, simd = int(self.get_nodeattr("PE")), int(self.get_nodeattr("SIMD"))
        nf, sf = mh // pe, mw // simd
        # one bit per weight, 1 for +1 (BINARY 1 in xnor mode): (MW, MH) -> [nf][sf][pe][simd]
        bits = (np.asarray(model.get_initializer(self.onnx_node.input[1])) > 0).T.astype(np.int64)
        bits = bits.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
        weights = [int("".join(map(str, row[::-1])), 2) for row in bits]
        (code_gen_dir / f"{top}_weights.dat").write_text(hex_words(weights, pe * simd))
        if self.get_nodeattr("noActivation"):
            return
        lo, hi = self._acc_range(mode)
        text, _ = threshold_words(model.get_initializer(self.onnx_node.input[2]), mh, pe, lo, hi)
        (code_gen_dir / f"{top}_thresholds.dat").write_text(text)

    # -- estimates ------------------------------------------------------------------
    def lut_estimation(self, fpgapart):
        """Rough: per PE an XNOR or conditional inversion per input bit, an adder tree as wide,
        the accumulator and the threshold comparators; weights in LUTRAM (64 bits a LUT)."""
        pe, simd = int(self.get_nodeattr("PE")), int(self.get_nodeattr("SIMD"))
        ibits = int(self.get_input_datatype(0).bitwidth())
        acc = int(self.get_accumulator_datatype().bitwidth())
        n_thr = 0 if self.get_nodeattr("noActivation") else 2 ** int(self.get_output_datatype().bitwidth()) - 1
        per_pe = 2 * simd * ibits + acc + n_thr * acc
        wmem = pe * simd * math.ceil(self.calc_wmem() / 64)
        return int(pe * per_pe + wmem)

    def bram_estimation(self, fpgapart):
        return 0

    def uram_estimation(self, fpgapart):
        return 0

    def dsp_estimation(self, fpgapart):
        return 0
