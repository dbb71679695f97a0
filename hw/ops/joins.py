"""Forks and joins of graph-shaped networks (residual connections):

- DuplicateStreams_rtl: FINN's DuplicateStreams (one stream to N) on hw/rtl/qnn_dup_streams.sv;
- AddStreams_rtl: FINN's ElementwiseAdd of two streamed inputs on hw/rtl/qnn_add_streams.sv.

FINN has an ElementwiseAdd_rtl of its own (Versal, DSP58, equal input widths), so ours
has another name; its generic form AddStreams is FINN's ElementwiseAdd under that name.
"""
from __future__ import annotations

from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams
from finn.custom_op.fpgadataflow.elementwise_binary import ElementwiseAdd

from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from .base import OpenRTLBackend


class DuplicateStreams_rtl(DuplicateStreams, OpenRTLBackend):
    CORE = "qnn_dup_streams"
    CORE_FILES = ("qnn_dup_streams.sv",)

    def stream_outputs(self) -> int:
        return int(self.get_num_output_streams())

    def core_params(self):
        return {"N": self.stream_outputs(), "WIDTH": int(self.get_instream_width())}

    def get_exp_cycles(self):
        return int(super().get_exp_cycles())


class AddStreams(ElementwiseAdd):
    """FINN's ElementwiseAdd under this op's generic name (FINN's python execution)."""


class AddStreams_rtl(ElementwiseAdd, OpenRTLBackend):
    CORE = "qnn_add_streams"
    CORE_FILES = ("qnn_add_streams.sv",)
    GENERIC_OPS = (AddStreams,)

    def get_nodeattr_types(self):
        # FINN's elementwise ops take HWCustomOp's attributes directly (no super() chain
        # reaching RTLBackend): add the backend's
        attrs = ElementwiseAdd.get_nodeattr_types(self)
        attrs.update(RTLBackend.get_nodeattr_types(self))
        return attrs

    @classmethod
    def supports(cls, node, model):
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        if inst.get_nodeattr("lhs_style") != "input" or inst.get_nodeattr("rhs_style") != "input":
            return "one operand is a constant (the core adds two streams)"
        shapes = [list(inst.get_nodeattr(a)) for a in ("lhs_shape", "rhs_shape", "out_shape")]
        if not shapes[0] == shapes[1] == shapes[2]:
            return f"broadcasting add (shapes {shapes[0]} + {shapes[1]}; the core adds equal shapes)"
        for a in ("lhs_dtype", "rhs_dtype", "out_dtype"):
            from qonnx.core.datatype import DataType

            dt = DataType[inst.get_nodeattr(a)]
            if not dt.is_integer() or dt.name == "BIPOLAR" or dt.bitwidth() > 31:
                return f"{a} {dt.name} (the core adds integers of at most 31 bits)"
        return None

    def stream_inputs(self) -> int:
        return 2

    def core_params(self):
        a, b, o = self.get_input_datatype(0), self.get_input_datatype(1), self.get_output_datatype()
        return {"PE": int(self.get_nodeattr("PE")),
                "ABITS": int(a.bitwidth()), "ASIGNED": bool(a.signed()),
                "BBITS": int(b.bitwidth()), "BSIGNED": bool(b.signed()),
                "OBITS": int(o.bitwidth())}

    def get_exp_cycles(self):
        return int(super().get_exp_cycles())
