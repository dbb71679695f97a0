"""qnnflow's own RTL layers for what FINN offers only as HLS (hw/rtl/ holds the cores).

`register()` adds them to FINN's RTL op domain through qonnx's registry (never by editing
FINN), so FINN's graph tools (FIFO and width-converter insertion, PrepareIP, estimates)
handle them like FINN's own RTL layers. It runs when `hw` is imported; a graph holding
these ops loads in any process that imported `hw` first. `open_rtl_layers()` is the flow
step that moves HLS layers onto them.
"""
from __future__ import annotations

from .base import DOMAIN, GENERIC_DOMAIN, OPEN_CORES, OpenRTLBackend
# each module registers its cores (@open_core) when imported; a new core is one module
# here (its class, on a core in hw/rtl/) plus its import below
from .joins import AddStreams_rtl, DuplicateStreams_rtl, StreamingConcat_rtl, StreamingSplit_rtl
from .labelselect import LabelSelect_rtl
from .mvu_binary import MVAU_binary_rtl, absorb_thresholds, binary_mode
from .pool import GlobalAccPool_rtl, Pool_rtl
from .vvu import VVAU_int_rtl

__all__ = ["OPEN_CORES", "AddStreams_rtl", "DuplicateStreams_rtl", "GlobalAccPool_rtl", "LabelSelect_rtl",
           "MVAU_binary_rtl", "OpenRTLBackend", "Pool_rtl", "StreamingConcat_rtl", "StreamingSplit_rtl",
           "VVAU_int_rtl", "absorb_thresholds", "open_rtl_layers", "register"]

_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    from qonnx.custom_op.registry import add_op_to_domain

    for cls in OPEN_CORES.values():
        add_op_to_domain(DOMAIN, cls)
        for generic in cls.GENERIC_OPS:  # their python form, under FINN's generic HW domain
            add_op_to_domain(GENERIC_DOMAIN, generic)
    _registered = True


# FINN RTL op types that a core of ours replaces where it implements the layer without DSPs:
# FINN's RTL matrix unit takes +-1 weights (labelled INT2) times integers onto DSP slices,
# our LUT adder trees do the same additions and subtractions (lut_binary=True), and with
# lut_ternary=True those of -1/0/+1 weights too.
LUT_REPLACES = {"MVAU_rtl": "MVAU_hls"}


def _ternary(node, model) -> bool:
    from qonnx.custom_op.registry import getCustomOp

    return binary_mode(getCustomOp(node), model)[0] == "ternary"


def open_rtl_layers(model, lut_binary: bool = True, lut_ternary: bool = False) -> tuple[object, dict[str, str],
                                                                                         dict[str, str]]:
    """Move every HLS layer that a core of ours implements onto it, and with lut_binary
    every FINN RTL layer in LUT_REPLACES whose core takes it (binary weights off DSPs);
    one with -1/0/+1 weights only with lut_ternary as well.

    Returns (model, {node: new op type}, {node: why it stays HLS}) for the report."""
    from qonnx.custom_op.registry import getCustomOp

    register()
    moved, kept = {}, {}
    for node in model.graph.node:
        replacing = lut_binary and node.op_type in LUT_REPLACES
        cls = OPEN_CORES.get(LUT_REPLACES[node.op_type] if replacing else node.op_type)
        if cls is None:
            continue
        why = cls.supports(node, model)
        if why:
            if not replacing:  # an HLS layer stays HLS (reported); a FINN RTL layer stays RTL
                kept[node.name] = why
            continue
        if replacing and not lut_ternary and _ternary(node, model):
            continue  # ternary weights stay on FINN's DSP unit unless asked for
        new_type = cls.__name__
        node.op_type, node.domain = new_type, DOMAIN
        declared = set(getCustomOp(node).get_nodeattr_types())
        for a in [a for a in node.attribute if a.name not in declared]:
            node.attribute.remove(a)  # HLS-only attributes (cppsim paths, ...)
        cls.annotate(node, model)
        moved[node.name] = new_type
    return model, moved, kept
