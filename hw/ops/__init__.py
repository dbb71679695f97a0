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
from .joins import AddStreams_rtl, DuplicateStreams_rtl, StreamingConcat_rtl
from .labelselect import LabelSelect_rtl
from .mvu_binary import MVAU_binary_rtl
from .pool import GlobalAccPool_rtl, Pool_rtl
from .vvu import VVAU_int_rtl

__all__ = ["OPEN_CORES", "AddStreams_rtl", "DuplicateStreams_rtl", "GlobalAccPool_rtl", "LabelSelect_rtl",
           "MVAU_binary_rtl", "OpenRTLBackend", "Pool_rtl", "StreamingConcat_rtl", "VVAU_int_rtl", "open_rtl_layers",
           "register"]

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


def open_rtl_layers(model) -> tuple[object, dict[str, str], dict[str, str]]:
    """Move every HLS layer that a core of ours implements onto it.

    Returns (model, {node: new op type}, {node: why it stays HLS}) for the report."""
    from qonnx.custom_op.registry import getCustomOp

    register()
    moved, kept = {}, {}
    for node in model.graph.node:
        cls = OPEN_CORES.get(node.op_type)
        if cls is None:
            continue
        why = cls.supports(node, model)
        if why:
            kept[node.name] = why
            continue
        new_type = cls.__name__
        node.op_type, node.domain = new_type, DOMAIN
        declared = set(getCustomOp(node).get_nodeattr_types())
        for a in [a for a in node.attribute if a.name not in declared]:
            node.attribute.remove(a)  # HLS-only attributes (cppsim paths, ...)
        moved[node.name] = new_type
    return model, moved, kept
