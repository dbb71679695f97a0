"""MVAU_binary_rtl: FINN's MVAU for 1-bit weights on hw/rtl/qnn_mvu_binary.sv (LUTs, no DSP).

FINN's RTL MVU refuses what makes a layer binary (binaryXnorMode, bipolar or unsigned
weights, embedded thresholds), so such layers would stay HLS and need Vivado. The core
covers two arithmetic cases of FINN's MVAU.execute_node, each with or without embedded
thresholds (noActivation = 0 / 1):

- "xnor": binaryXnorMode = 1 (BINARY inputs and weights standing for -1/+1), or BIPOLAR
  inputs times BIPOLAR weights, which FINN also computes as popcount(xnor);
- "sum": weights all -1/+1 (typed BIPOLAR, or INT2 after FINN's width minimisation) times
  integer inputs of any width: acc = sum of x where w = +1 minus x where w = -1;
- "ternary": weights -1/0/+1 (narrow INT2) times integer inputs: the same adder trees, each
  weight stored as two -1/+1 halves (the core's TERNARY mode).

Weights and thresholds live in the core (read from `<node>_weights.dat` and
`<node>_thresholds.dat`), not in FINN's memstream: the layer is one self-contained stream
node, whatever its mem_mode attribute says. FINN's ram_style places the weights: "block"
(or "ultra", which 7-series lacks) in block RAM, "distributed" in LUTs, "auto" in block
RAM where the memory has 64 words or more and 4096 bits or more (as LUT ROM it would cost
several hundred LUTs), in LUTs otherwise: a shallow, wide memory (a few words of
thousands of bits, highly folded layers) would fill many BRAMs to a few percent. Folding and timing are FINN's (PE, SIMD;
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
    """("xnor" | "sum" | "ternary", None) for a layer the core implements, else (None, the reason)."""
    idt, wdt = inst.get_input_datatype(0), inst.get_input_datatype(1)
    w = model.get_initializer(inst.onnx_node.input[1])
    if w is None:
        return None, "weights are not a constant of the graph (streamed weights)"
    vals = set(np.unique(w).tolist())
    if inst.get_nodeattr("binaryXnorMode"):
        if idt.name != "BINARY" or not vals <= {0, 1}:
            return None, f"binaryXnorMode with {idt.name} inputs and weights {sorted(vals)[:4]} (not 0/1)"
        return "xnor", None
    if not vals <= {-1, 0, 1}:
        return None, f"{wdt.name} weights with values {sorted(vals)[:4]} (the core holds -1/0/+1 weights only)"
    if idt.name == "BIPOLAR":
        if wdt.name != "BIPOLAR":
            return None, f"BIPOLAR inputs times {wdt.name} weights (FINN's matmul of -1/+1 inputs)"
        return "xnor", None
    if not idt.is_integer():
        return None, f"{idt.name} inputs (the core takes integers)"
    return ("ternary" if 0 in vals else "sum"), None


# (width, depth) of a 7-series BRAM18 as a ROM
BRAM18_ASPECTS = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))


class MVAU_binary(MVAU):
    """FINN's MVAU under this op's generic name (FINN's python execution)."""


@open_core("MVAU_hls")
class MVAU_binary_rtl(MVAU, OpenRTLBackend):
    CORE = "qnn_mvu_binary"
    CORE_FILES = ("qnn_mvu_binary.sv", "qnn_mvu_binary_addtree.sv")
    GENERIC_OPS = (MVAU_binary,)

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        # set by annotate() when the layer moves here: estimates see no weights
        attrs["ternaryWeights"] = ("i", False, 0, {0, 1})
        return attrs

    @classmethod
    def annotate(cls, node, model) -> None:
        """ternaryWeights: whether the weights take two bits each (LUT and BRAM estimates)."""
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        inst.set_nodeattr("ternaryWeights", int(binary_mode(inst, model)[0] == "ternary"))

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

    def weights_in_bram(self) -> bool:
        style = self.get_nodeattr("ram_style")
        if style == "auto":
            depth = self.calc_wmem()
            return depth >= 64 and depth * self._weight_bits() * int(self.get_nodeattr("PE")) \
                * int(self.get_nodeattr("SIMD")) >= 4096
        return style in ("block", "ultra")

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
            "ISIGNED": mode != "xnor" and bool(idt.signed()),
            "TERNARY": mode == "ternary",
            "WEIGHTS_BRAM": self.weights_in_bram(),
        }
        params.update(activation_params(self, self._model, lo, hi))
        return params

    def write_memory_files(self, code_gen_dir: Path) -> None:
        model, top = self._model, self.get_nodeattr("gen_top_module")
        mode = self._mode()
        mw, mh = int(self.get_nodeattr("MW")), int(self.get_nodeattr("MH"))
        pe, simd = int(self.get_nodeattr("PE")), int(self.get_nodeattr("SIMD"))
        nf, sf = mh // pe, mw // simd
        # one bit per weight, 1 for +1 (BINARY 1 in xnor mode): (MW, MH) -> [nf][sf][pe][simd];
        # ternary: the plane u = (w >= 0) in the low PE*SIMD bits, v = (w > 0) above it
        w = np.asarray(model.get_initializer(self.onnx_node.input[1]))
        planes = [w >= 0, w > 0] if mode == "ternary" else [w > 0]
        words = [(b.T.astype(np.int64).reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd))
                 for b in planes]
        bits = np.concatenate(words, axis=1)
        weights = [int("".join(map(str, row[::-1])), 2) for row in bits]
        (code_gen_dir / f"{top}_weights.dat").write_text(hex_words(weights, bits.shape[1]))
        if self.get_nodeattr("noActivation"):
            return
        lo, hi = self._acc_range(mode)
        text, _ = threshold_words(model.get_initializer(self.onnx_node.input[2]), mh, pe, lo, hi)
        (code_gen_dir / f"{top}_thresholds.dat").write_text(text)

    # -- estimates ------------------------------------------------------------------
    def lut_estimation(self, fpgapart):
        """Rough, one LUT per adder bit: per PE in XNOR mode a popcount of SIMD bits; in sum
        mode a 4:1 selection per bit of each lane pair and a tree over the pairs (both twice
        for ternary weights), plus the pair sums shared by all PEs; then the accumulator and the threshold comparators;
        weights outside block RAM as LUT ROM (64 words a LUT)."""
        pe, simd = int(self.get_nodeattr("PE")), int(self.get_nodeattr("SIMD"))
        acc = int(self.get_accumulator_datatype().bitwidth())
        n_thr = 0 if self.get_nodeattr("noActivation") else 2 ** int(self.get_output_datatype().bitwidth()) - 1
        if self._mode_of_graph() == "xnor":
            shared, per_pe = 0, 2 * simd
        else:
            pair_bits, pairs = int(self.get_input_datatype(0).bitwidth()) + 2, (simd + 1) // 2
            shared, per_pe = 4 * pairs * pair_bits, 2 * pairs * pair_bits * self._weight_bits()
        per_pe += acc + n_thr * math.ceil(acc / 2)
        wmem = 0 if self.weights_in_bram() else self._weight_bits() * pe * simd * math.ceil(self.calc_wmem() / 64)
        return int(shared + pe * per_pe + wmem)

    def _weight_bits(self) -> int:
        """Bits per weight in the core's memory: 2 for -1/0/+1 (annotate), else 1."""
        return 2 if self.get_nodeattr("ternaryWeights") else 1

    def _mode_of_graph(self) -> str:
        """The arithmetic mode from the layer's types alone (estimates see no graph)."""
        return "xnor" if self.get_nodeattr("binaryXnorMode") or self.get_input_datatype(0).name == "BIPOLAR" else "sum"

    def bram_estimation(self, fpgapart):
        """ROM words of PE*SIMD bits in BRAM18s, each 18 kbit in its best aspect for this
        width and depth (16k x 1 ... 512 x 36)."""
        if not self.weights_in_bram():
            return 0
        width = self._weight_bits() * int(self.get_nodeattr("PE")) * int(self.get_nodeattr("SIMD"))
        depth = self.calc_wmem()
        return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM18_ASPECTS)

    def uram_estimation(self, fpgapart):
        return 0

    def dsp_estimation(self, fpgapart):
        return 0


def absorb_thresholds(model) -> tuple[object, list[str]]:
    """Fold each standalone thresholding layer that alone reads a MVAU_binary_rtl's
    accumulators into that layer (noActivation 0: the core's embedded thresholds).

    FINN's flow keeps thresholds standalone (its RTL matrix unit has none), so a binary
    layer would stream PE accumulators of ~log2(MW * max|x|) bits each, through a width
    converter, to a thresholding layer of its own: more LUTs in the converter than in the
    thresholds. The count #(acc >= T) + ActVal is the same in both places (FINN's MVAU
    and Thresholding execute it alike), so the graph computes the same integers.
    Returns (model, names of the thresholding layers absorbed)."""
    import onnx
    from qonnx.custom_op.registry import getCustomOp

    absorbed = []
    for node in list(model.graph.node):
        if node.op_type != "MVAU_binary_rtl" or not getCustomOp(node).get_nodeattr("noActivation"):
            continue
        succ = model.find_direct_successors(node) or []
        thr = succ[0] if len(succ) == 1 else None
        if (thr is None or not thr.op_type.startswith("Thresholding") or len(model.find_consumers(node.output[0])) != 1
                or node.output[0] in [o.name for o in model.graph.output]):
            continue
        t_inst = getCustomOp(thr)
        odt = t_inst.get_nodeattr("outputDataType")
        if model.get_initializer(thr.input[1]) is None or (odt == "BIPOLAR" and t_inst.get_nodeattr("ActVal") != 0):
            continue
        merged = onnx.NodeProto()
        merged.CopyFrom(node)
        merged.input.append(thr.input[1])
        merged.output[0] = thr.output[0]
        inst = getCustomOp(merged)
        inst.set_nodeattr("noActivation", 0)
        inst.set_nodeattr("ActVal", int(t_inst.get_nodeattr("ActVal")))
        inst.set_nodeattr("outputDataType", odt)
        if MVAU_binary_rtl.supports(merged, model) is not None:
            continue  # thresholds the core cannot hold: both layers stay
        node.CopyFrom(merged)
        model.graph.node.remove(thr)
        absorbed.append(thr.name)
    return model, absorbed
