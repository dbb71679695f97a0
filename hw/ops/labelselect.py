"""LabelSelect_rtl: FINN's LabelSelect (top-K class indices) on hw/rtl/qnn_label_select.sv."""
from __future__ import annotations

from finn.custom_op.fpgadataflow.labelselect import LabelSelect

from .base import OpenRTLBackend, open_core


@open_core("LabelSelect_hls")
class LabelSelect_rtl(LabelSelect, OpenRTLBackend):
    CORE = "qnn_label_select"
    CORE_FILES = ("qnn_label_select.sv",)

    def core_params(self):
        idt = self.get_input_datatype()
        return {"LABELS": self.get_nodeattr("Labels"), "PE": self.get_nodeattr("PE"), "K": self.get_nodeattr("K"),
                "IBITS": int(idt.bitwidth()), "SIGNED": bool(idt.signed()),
                "OBITS": int(self.get_outstream_width())}

    @classmethod
    def supports(cls, node, model):
        from qonnx.core.datatype import DataType
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        idt = DataType[inst.get_nodeattr("inputDataType")]
        if not idt.is_integer() or idt.name == "BIPOLAR":
            return f"scores of type {idt.name} (the core compares integers)"
        return None

    def get_exp_cycles(self):
        # one element inserted per cycle, K result beats, one cycle to take the first beat
        return int(self.get_nodeattr("Labels")) + int(self.get_nodeattr("K")) + 1
