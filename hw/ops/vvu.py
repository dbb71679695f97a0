"""VVAU_int_rtl: FINN's VVAU (depthwise convolution) on hw/rtl/qnn_vvu.sv, for 7-series.

FINN's RTL VVAU exists only for Versal's DSP58, so on a Zynq-7000 part every depthwise
layer stays HLS and needs Vivado. The core computes FINN's VVAU.execute_node for integer
inputs and integer (or -1/+1) weights, with or without embedded thresholds, from plain
signed products that synthesis maps to LUTs or DSP48E1 slices.

It consumes FINN's depthwise ConvolutionInputGenerator stream (SetFolding ties the window
generator's SIMD to this layer's PE); folding and timing are FINN's (PE channels, SIMD taps;
Channels*K/(PE*SIMD) cycles per output pixel, get_exp_cycles). Weights and thresholds live
in the core (`<node>_weights.dat`, `<node>_thresholds.dat`), whatever mem_mode says.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.vectorvectoractivation import VVAU

from .base import OpenRTLBackend, open_core
from .memfiles import activation_params, rom_unsupported, hex_words, signed_bits, threshold_words, thresholds_unsupported


class VVAU_int(VVAU):
    """FINN's VVAU under this op's generic name (FINN's python execution)."""


@open_core("VVAU_hls")
class VVAU_int_rtl(VVAU, OpenRTLBackend):
    CORE = "qnn_vvu"
    CORE_FILES = ("qnn_vvu.sv",)
    GENERIC_OPS = (VVAU_int,)

    @classmethod
    def supports(cls, node, model):
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        g = inst.get_nodeattr
        why = rom_unsupported(inst)
        if why:
            return why
        if g("binaryXnorMode"):
            return "binaryXnorMode (xnor-popcount depthwise layers are not implemented)"
        k = int(np.prod(g("Kernel")))
        if k % g("SIMD") or g("Channels") % g("PE"):
            return f"folding SIMD {g('SIMD')} / PE {g('PE')} does not divide K {k} / Channels {g('Channels')}"
        idt = inst.get_input_datatype(0)
        if not idt.is_integer() or idt.name == "BIPOLAR":
            return f"{idt.name} inputs (the core multiplies integers)"
        w = model.get_initializer(node.input[1])
        if w is None:
            return "weights are not a constant of the graph"
        if not np.array_equal(w, np.rint(w)):
            return "non-integer weights"
        odt = inst.get_output_datatype()
        if g("noActivation"):
            if not odt.is_integer() or odt.name == "BIPOLAR":
                return f"accumulator output of type {odt.name}"
            return None
        return thresholds_unsupported(inst, node, model, int(g("Channels")))

    # -- what the core is built from ------------------------------------------------
    def _weights(self, model) -> np.ndarray:
        """(Channels, K) integer weights."""
        ch = int(self.get_nodeattr("Channels"))
        return np.rint(np.asarray(model.get_initializer(self.onnx_node.input[1]))).astype(np.int64).reshape(ch, -1)

    def _acc_range(self, w: np.ndarray) -> tuple[int, int]:
        """Every value a channel's partial sum can take: the sums of each tap's most negative
        (most positive) product over the input type, for the worst channel."""
        idt = self.get_input_datatype(0)
        xlo, xhi = int(idt.min()), int(idt.max())
        lo_t = np.minimum(np.minimum(w * xlo, w * xhi), 0)
        hi_t = np.maximum(np.maximum(w * xlo, w * xhi), 0)
        return int(lo_t.sum(axis=1).min()), int(hi_t.sum(axis=1).max())

    def core_params(self):
        w = self._weights(self._model)
        lo, hi = self._acc_range(w)
        idt = self.get_input_datatype(0)
        params = {
            "CHANNELS": int(self.get_nodeattr("Channels")), "K": int(w.shape[1]),
            "PE": int(self.get_nodeattr("PE")), "SIMD": int(self.get_nodeattr("SIMD")),
            "IBITS": int(idt.bitwidth()), "ISIGNED": bool(idt.signed()),
            "WBITS": signed_bits(int(w.min()), int(w.max())),
        }
        params.update(activation_params(self, self._model, lo, hi))
        return params

    def write_memory_files(self, code_gen_dir: Path) -> None:
        model, top = self._model, self.get_nodeattr("gen_top_module")
        w = self._weights(model)
        ch, k = w.shape
        pe, simd = int(self.get_nodeattr("PE")), int(self.get_nodeattr("SIMD"))
        nf, sf = ch // pe, k // simd
        wbits = signed_bits(int(w.min()), int(w.max()))
        # (C, K) -> [nf][sf][pe][simd]: word nf*SF + sf, field p*SIMD + s
        words_w = w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
        mask = (1 << wbits) - 1
        words = []
        for row in words_w:
            v = 0
            for i, x in enumerate(row):
                v |= (int(x) & mask) << (i * wbits)
            words.append(v)
        (code_gen_dir / f"{top}_weights.dat").write_text(hex_words(words, pe * simd * wbits))
        if self.get_nodeattr("noActivation"):
            return
        lo, hi = self._acc_range(w)
        text, _ = threshold_words(model.get_initializer(self.onnx_node.input[2]), ch, pe, lo, hi)
        (code_gen_dir / f"{top}_thresholds.dat").write_text(text)

    # -- estimates ------------------------------------------------------------------
    def lut_estimation(self, fpgapart):
        """Rough (`qnnflow synth` counts): per PE and SIMD tap a LUT multiplier of the input
        and weight widths and an adder of the accumulator's, per PE the accumulator and the
        threshold comparators. FINN's memory estimate (bram_estimation) is kept: the weight
        memory has FINN's shape, PE*SIMD weights a word."""
        pe, simd = int(self.get_nodeattr("PE")), int(self.get_nodeattr("SIMD"))
        ib = int(self.get_input_datatype(0).bitwidth()) + 1
        wb = int(self.get_input_datatype(1).bitwidth())
        acc = int(self.get_accumulator_datatype().bitwidth())
        n_thr = 0 if self.get_nodeattr("noActivation") else 2 ** int(self.get_output_datatype().bitwidth()) - 1
        return int(pe * (simd * (ib * wb + acc) + acc + n_thr * acc))

    def dsp_estimation(self, fpgapart):
        """None asked for: the products are narrow; synthesis may still map wide ones to DSPs."""
        return 0
