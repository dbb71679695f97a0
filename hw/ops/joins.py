"""Forks and joins of graph-shaped networks (residual connections):

- DuplicateStreams_rtl: FINN's DuplicateStreams (one stream to N) on hw/rtl/qnn_dup_streams.sv;
- AddStreams_rtl: FINN's ElementwiseAdd of two streamed inputs on hw/rtl/qnn_add_streams.sv;
- StreamingConcat_rtl: FINN's StreamingConcat (channel concatenation) on hw/rtl/qnn_concat.sv;
- StreamingSplit_rtl: FINN's StreamingSplit (the channels into N streams) on hw/rtl/qnn_split.sv.

FINN has an ElementwiseAdd_rtl of its own (Versal, DSP58, equal input widths), so ours
has another name; its generic form AddStreams is FINN's ElementwiseAdd under that name.
"""
from __future__ import annotations

from finn.custom_op.fpgadataflow.concat import StreamingConcat
from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams
from finn.custom_op.fpgadataflow.elementwise_binary import ElementwiseAdd
from finn.custom_op.fpgadataflow.split import StreamingSplit

from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from .base import OpenRTLBackend, open_core, Raw


@open_core("DuplicateStreams_hls")
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


@open_core("ElementwiseAdd_hls")
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


def _folds_unsupported(chans, simd: int, what: str) -> str | None:
    """Why a channel-group stream layer does not fit qnn_concat / qnn_split (16-bit fold counts)."""
    for k, ch in enumerate(chans):
        if ch % simd or ch // simd >= 1 << 16:
            return f"{what} {k}: {ch} channels at SIMD {simd}"
    return None


def _folds_param(chans, simd: int) -> Raw:
    """FOLDS of qnn_concat / qnn_split: beats per pixel of group k in bits [16*k +: 16]."""
    return Raw("{" + ", ".join(f"16'd{int(c) // simd}" for c in reversed(list(chans))) + "}")


@open_core("StreamingConcat_hls")
class StreamingConcat_rtl(StreamingConcat, OpenRTLBackend):
    """FINN's StreamingConcat (channels of N streams, one after the other per pixel) on
    hw/rtl/qnn_concat.sv. The wrapper extends each input's elements to the output type's
    width by that input's own signedness; the core selects and forwards beats."""

    CORE = "qnn_concat"
    CORE_FILES = ("qnn_concat.sv",)

    @classmethod
    def supports(cls, node, model):
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        simd = int(inst.get_nodeattr("SIMD"))
        chans = inst.get_nodeattr("ChannelsPerStream")
        for k in range(len(chans)):
            dt = inst.get_input_datatype(k)
            if not dt.is_integer() or dt.name == "BIPOLAR":
                return f"input {k} of type {dt.name} (the core concatenates integers)"
        return _folds_unsupported(chans, simd, "input")

    def stream_inputs(self) -> int:
        return int(self.get_n_inputs())

    def core_params(self):
        simd, chans = int(self.get_nodeattr("SIMD")), self.get_nodeattr("ChannelsPerStream")
        return {"N": len(chans), "SIMD": simd, "EBITS": int(self.get_output_datatype().bitwidth()),
                "FOLDS": _folds_param(chans, simd)}

    def _wrapper(self, top, mem_param, params, n_in, n_out):
        simd, eb = int(self.get_nodeattr("SIMD")), int(self.get_output_datatype().bitwidth())
        ow, owp = int(self.get_outstream_width()), int(self.get_outstream_width_padded())
        ports, body = [], []
        for k in range(n_in):
            dt = self.get_input_datatype(k)
            ib, iwp = int(dt.bitwidth()), int(self.get_instream_width_padded(k))
            ports += [f"input  [{iwp - 1}:0] in{k}_V_TDATA", f"input  in{k}_V_TVALID", f"output in{k}_V_TREADY"]
            lanes = []
            for i in reversed(range(simd)):
                x = f"in{k}_V_TDATA[{i * ib + ib - 1}:{i * ib}]"
                if eb == ib:
                    lanes.append(x)
                else:
                    fill = f"in{k}_V_TDATA[{i * ib + ib - 1}]" if dt.signed() else "1'b0"
                    lanes.append(f"{{{{{eb - ib}{{{fill}}}}}, {x}}}")
            body.append(f"\tassign ext[{k}] = {{{', '.join(lanes)}}};  // {dt.name} -> {eb} bits")
        ports += [f"output [{owp - 1}:0] out0_V_TDATA", "output out0_V_TVALID", "input  out0_V_TREADY"]
        pad = f"{{{owp - ow}'b0, core_tdata}}" if owp > ow else "core_tdata"
        rev = list(reversed(range(n_in)))
        body = [f"\twire [{simd * eb - 1}:0] ext [{n_in}];", *body, f"\twire [{ow - 1}:0] core_tdata;",
                f"\tassign out0_V_TDATA = {pad};"]
        conns = [f".s_tdata({{{', '.join(f'ext[{k}]' for k in rev)}}})",
                 f".s_tvalid({{{', '.join(f'in{k}_V_TVALID' for k in rev)}}})",
                 f".s_tready({{{', '.join(f'in{k}_V_TREADY' for k in rev)}}})",
                 ".m_tdata(core_tdata), .m_tvalid(out0_V_TVALID), .m_tready(out0_V_TREADY)"]
        return self._render_wrapper(top, mem_param, params, ports, body, conns)

    def get_exp_cycles(self):
        return int(super().get_exp_cycles())


@open_core("StreamingSplit_hls")
class StreamingSplit_rtl(StreamingSplit, OpenRTLBackend):
    """FINN's StreamingSplit (consecutive channel groups to N streams, per pixel) on
    hw/rtl/qnn_split.sv; every output keeps the input's type, so beats pass unchanged.
    The core takes any group sizes; the op takes equal ones (torch.chunk), as FINN's
    FIFO insertion gives every output the first one's shape."""

    CORE = "qnn_split"
    CORE_FILES = ("qnn_split.sv",)

    @classmethod
    def supports(cls, node, model):
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        simd = int(inst.get_nodeattr("SIMD"))
        chans = list(inst.get_nodeattr("ChannelsPerStream"))
        if len(set(chans)) > 1:
            # FINN's InsertFIFO sizes every output's FIFO by output 0's folded shape
            return f"unequal parts {chans} (FINN's FIFO insertion takes every output to be like the first)"
        return _folds_unsupported(chans, simd, "output")

    def stream_outputs(self) -> int:
        return int(self.get_n_outputs())

    def core_params(self):
        simd, chans = int(self.get_nodeattr("SIMD")), self.get_nodeattr("ChannelsPerStream")
        return {"N": len(chans), "W": int(self.get_instream_width()), "FOLDS": _folds_param(chans, simd)}

    def get_exp_cycles(self):
        return int(super().get_exp_cycles())
