"""Pool_rtl: FINN's Pool (MaxPool, QuantAvgPool, AccPool) on hw/rtl/qnn_pool.sv;
GlobalAccPool_rtl: FINN's GlobalAccPool on hw/rtl/qnn_global_acc_pool.sv.

Like Pool_hls it consumes a depthwise ConvolutionInputGenerator's stream (per output
pixel: CHANNELS/PE channel folds, each KH*KW beats of PE elements) and emits one beat
per channel fold; the core reduces every KH*KW beats lane by lane. It takes one beat
per cycle, so FINN's Pool.get_exp_cycles holds as it is (checked in tests/hw/test_pool.py).
"""
from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow.globalaccpool import GlobalAccPool
from finn.custom_op.fpgadataflow.pool import Pool

from .base import OpenRTLBackend, open_core

FUNCTIONS = ("MaxPool", "QuantAvgPool", "AccPool")


@open_core("Pool_hls")
class Pool_rtl(Pool, OpenRTLBackend):
    CORE = "qnn_pool"
    CORE_FILES = ("qnn_pool.sv",)

    def core_params(self):
        fxn = self.get_nodeattr("Function")
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        return {
            "PE": int(self.get_nodeattr("PE")),
            "KERNEL": int(np.prod(self.get_nodeattr("KernelSize"))),
            "IBITS": int(idt.bitwidth()),
            # BIPOLAR is stored as 0 (-1) / 1 (+1): ordered like unsigned bits, not like INT1
            "SIGNED": bool(idt.signed()) and idt.name != "BIPOLAR",
            "ACCUMULATE": fxn != "MaxPool",
            "SHIFT": int(self.get_nodeattr("Size")) if fxn == "QuantAvgPool" else 0,
            "OBITS": int(odt.bitwidth()),
        }

    @classmethod
    def supports(cls, node, model):
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        fxn = inst.get_nodeattr("Function")
        if fxn not in FUNCTIONS:
            return (f"Function {fxn} (the core does {', '.join(FUNCTIONS)}; AvgPool divides by the "
                    "window size, which has no integer form here)")
        idt, odt = inst.get_input_datatype(), inst.get_output_datatype()
        if not idt.is_integer() or not odt.is_integer():
            return f"{idt.name} -> {odt.name} pooling (the core handles integers)"
        if fxn != "MaxPool":
            if idt.name == "BIPOLAR":
                return f"{fxn} of BIPOLAR values (the core sums the 0/1 codes, not -1/+1)"
            k = int(np.prod(inst.get_nodeattr("KernelSize")))
            shift = int(inst.get_nodeattr("Size")) if fxn == "QuantAvgPool" else 0
            sum_bits = int(idt.bitwidth()) + int(np.ceil(np.log2(k)))
            if int(odt.bitwidth()) + shift > sum_bits:
                return (f"{odt.name} output after a shift by {shift} needs more than the {sum_bits}-bit "
                        f"sum of {k} {idt.name} values")
            if idt.signed() != odt.signed():
                return f"{fxn} from {idt.name} to {odt.name} (mixed signedness)"
        return None


@open_core("GlobalAccPool_hls")
class GlobalAccPool_rtl(GlobalAccPool, OpenRTLBackend):
    """FINN's GlobalAccPool (sum over all pixels per channel) on hw/rtl/qnn_global_acc_pool.sv."""

    CORE = "qnn_global_acc_pool"
    CORE_FILES = ("qnn_global_acc_pool.sv",)

    @classmethod
    def supports(cls, node, model):
        from qonnx.core.datatype import DataType
        from qonnx.custom_op.registry import getCustomOp

        inst = getCustomOp(node)
        idt = DataType[inst.get_nodeattr("inputDataType")]
        if not idt.is_integer() or idt.name == "BIPOLAR":
            return f"input of type {idt.name} (the core sums integers)"
        if len(inst.get_nodeattr("numInputVectors")) != 3:
            return "input not an image (numInputVectors [N, H, W])"
        return None

    def core_params(self):
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        vecs = list(self.get_nodeattr("numInputVectors"))
        return {"CHANNELS": int(self.get_nodeattr("NumChannels")), "PE": int(self.get_nodeattr("PE")),
                "PIXELS": int(vecs[-1] * vecs[-2]), "IBITS": int(idt.bitwidth()), "SIGNED": bool(idt.signed()),
                "OBITS": int(odt.bitwidth())}

    def get_exp_cycles(self):
        # one input beat per cycle; the sums leave with the last pixel's beats
        return int(np.prod(self.get_folded_input_shape()[:-1]))
