"""The stages of the verification chain, each mapping the same integer inputs to the
integers at the accelerator's output boundary (before the float tail).

brevitas -> qonnx -> streamlined -> hw_python -> intsim (-> rtlsim, in hw)
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes

from .errors import FlowError
from .transforms.float_tail import FloatTail

log = logging.getLogger(__name__)

STAGES = ("brevitas", "qonnx", "streamlined", "hw_python", "intsim", "rtlsim")
# Outputs that must be integers after inverting the float tail (brevitas, qonnx run in float).
INT_RTOL = 1e-3


def to_integers(y: np.ndarray, tail: FloatTail, stage: str) -> tuple[np.ndarray, float]:
    """Invert the float tail of a float-domain stage and read its integers.

    Returns the integers and the largest distance from an integer seen (float noise).
    """
    z = tail.invert(y)
    ints = np.rint(z)
    resid = float(np.max(np.abs(z - ints))) if z.size else 0.0
    if resid > INT_RTOL * max(1.0, float(np.max(np.abs(z)))):
        log.warning("%s: outputs are %.3g away from integers after the float tail", stage, resid)
    return ints.astype(np.int64), resid


def label_select(ints: np.ndarray, k: int) -> np.ndarray:
    """The K largest per row, largest first, equal values by lower index (ONNX TopK's order):
    what an accelerator ending in label select outputs, for stages that end in the logits."""
    return np.argsort(-ints, axis=1, kind="stable")[:, :k].astype(np.int64)


def with_batch(model: ModelWrapper, n: int) -> ModelWrapper:
    """A copy of a plain ONNX/QONNX/FINN (non-HW) graph whose batch dimension is n."""
    m = ModelWrapper(model.model.__deepcopy__())
    old = m.get_tensor_shape(m.graph.input[0].name)[0]
    for node in m.graph.node:  # flatten before the classifier: Reshape to a constant (1, K)
        shape = m.get_initializer(node.input[1]) if node.op_type == "Reshape" else None
        if shape is not None and shape.ndim == 1 and len(shape) and shape[0] == old \
                and len(m.find_consumers(node.input[1]) or []) == 1:
            m.set_initializer(node.input[1], np.concatenate([[n], shape[1:]]).astype(shape.dtype))
    if m.get_nodes_by_op_type("Im2Col"):
        # qonnx's Im2Col mixes samples for batch > 1 (its index arithmetic assumes batch 1)
        raise ValueError("graph holds Im2Col, which executes one sample at a time")
    for vi in list(m.graph.value_info):
        m.graph.value_info.remove(vi)
    for t in list(m.graph.input) + list(m.graph.output):
        shape = m.get_tensor_shape(t.name)
        m.set_tensor_shape(t.name, [n] + list(shape[1:]))
    return m.transform(InferShapes())


def run_batched(model: ModelWrapper, x: np.ndarray, batch: int, execute: Callable) -> np.ndarray:
    """Execute in batches; graphs that hard-code batch 1 (a constant Reshape) go one by one."""
    try:
        return _run_batched(model, x, batch, execute)
    except Exception as exc:
        if len(x) == 1:
            raise
        log.info("batched execution failed (%s); running one sample at a time", exc)
        return run_per_sample(model, x, execute)


def _run_batched(model: ModelWrapper, x: np.ndarray, batch: int, execute: Callable) -> np.ndarray:
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    ishape = model.get_tensor_shape(iname)
    outs = []
    cache: dict[int, ModelWrapper] = {}
    for i in range(0, len(x), batch):
        xb = x[i:i + batch].astype(np.float32).reshape([-1] + list(ishape[1:]))
        n = len(xb)
        if n not in cache:
            cache[n] = with_batch(model, n)
        outs.append(np.asarray(execute(cache[n], {iname: xb})[oname]))
    return np.concatenate(outs).reshape(len(x), -1)


def run_per_sample(model: ModelWrapper, x: np.ndarray, execute: Callable, progress=None) -> np.ndarray:
    """HW-layer graphs fix their batch to 1 in node attributes: one sample at a time."""
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    ishape = model.get_tensor_shape(iname)
    outs = []
    for i in range(len(x)):
        outs.append(np.asarray(execute(model, {iname: x[i:i + 1].astype(np.float32).reshape(ishape)})[oname]))
        if progress:
            progress()
    return np.concatenate([o.reshape(1, -1) for o in outs])


def stage_brevitas(module, x: np.ndarray, tail: FloatTail,
                   input_shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, float]:
    """The module on the integer inputs, reshaped to one sample's `input_shape` if given."""
    import torch

    if input_shape is not None:
        x = x.reshape((len(x),) + tuple(input_shape))
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            y = module(torch.from_numpy(x[i:i + 1000].astype(np.float32)))
            outs.append((y.value if hasattr(y, "value") else y).numpy().reshape(len(y), -1))
    return to_integers(np.concatenate(outs), tail, "brevitas")


def stage_qonnx(path: Path, x: np.ndarray, tail: FloatTail) -> tuple[np.ndarray, float]:
    from qonnx.core.onnx_exec import execute_onnx

    y = run_batched(ModelWrapper(str(path)), x, 1000, execute_onnx)
    return to_integers(y, tail, "qonnx")


def stage_finn(path: Path, x: np.ndarray) -> np.ndarray:
    """FINN's python execution of the streamlined (integer) graph."""
    from finn.core.onnx_exec import execute_onnx

    y = run_batched(ModelWrapper(str(path)), x, 1000, execute_onnx)
    return _exact_ints(y, "streamlined")


def stage_hw_python(path: Path, x: np.ndarray, progress=None) -> np.ndarray:
    from finn.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp

    model = generic_hw_layers(ModelWrapper(str(path)))
    for node in model.graph.node:
        getCustomOp(node).set_nodeattr("exec_mode", "")  # "" is FINN's python execution
    y = run_per_sample(model, x, execute_onnx, progress)
    return _exact_ints(y, "hw_python")


def stage_intsim(path: Path, x: np.ndarray, mode: str = "strict") -> np.ndarray:
    """Our golden model on the final HW-layer graph, exact integers."""
    import sim

    try:
        return sim.run(path, x, mode=mode)
    except sim.SimError as exc:
        raise FlowError(f"intsim: {exc}") from None


# Layers that compute (identity-like ops such as FIFOs and width converters are skipped);
# with standalone thresholds the streamlined and HW graphs have these one-to-one, once
# FINN's splits are undone: Im2Col became [FMPadding ->] ConvolutionInputGenerator (the
# padding is part of the window) and MaxPoolNHWC became ConvolutionInputGenerator -> Pool
# (the window is part of the pool).
COMPUTE_OPS = ("MatMul", "XnorPopcountMatMul", "MVAU", "VVAU", "MultiThreshold", "Thresholding", "Im2Col",
               "ConvolutionInputGenerator", "MaxPoolNHWC", "Pool", "TopK", "LabelSelect")
PASS_THROUGH_OPS = ("StreamingFIFO", "StreamingDataWidthConverter")


def _compute_layers(model: ModelWrapper) -> list[tuple[str, str]]:
    from sim.interpreter import generic_op

    def next_compute(node):
        while node is not None and generic_op(node.op_type) in PASS_THROUGH_OPS:
            node = model.find_consumer(node.output[0])
        return node

    layers = []
    for n in model.graph.node:
        op = generic_op(n.op_type)
        if op not in COMPUTE_OPS:
            continue
        if op in ("ConvolutionInputGenerator", "Im2Col"):
            nxt = next_compute(model.find_consumer(n.output[0]))
            if nxt is not None and generic_op(nxt.op_type) == "Pool":
                continue
        layers.append((n.name, n.output[0]))
    return layers


def localize_layer(stage_graph: Path, ref_graph: Path, x1: np.ndarray, stage: str,
                   ref_x: np.ndarray | None = None) -> dict | None:
    """First layer where the stage's FINN execution differs from intsim on one sample.

    Layers are paired in order between the stage's graph (fed x1) and the graph intsim
    ran (fed ref_x, default x1: the two may differ by the layout head).
    """
    from finn.core.onnx_exec import execute_onnx

    import sim

    sm, rm = ModelWrapper(str(stage_graph)), ModelWrapper(str(ref_graph))
    ours = sim.IntSim(rm).run(x1 if ref_x is None else ref_x, return_all=True)
    finn_model = generic_hw_layers(sm) if stage == "hw_python" else sm
    iname = sm.graph.input[0].name
    theirs = execute_onnx(finn_model, {iname: x1.astype(np.float32).reshape(sm.get_tensor_shape(iname))},
                          return_full_exec_context=True)
    s_layers, r_layers = _compute_layers(sm), _compute_layers(rm)
    if len(s_layers) != len(r_layers):
        return None
    for (s_name, s_t), (r_name, r_t) in zip(s_layers, r_layers):
        a = np.asarray(theirs[s_t]).reshape(-1)
        b = np.asarray(ours[r_t]).reshape(-1)
        if a.shape != b.shape:
            return None
        diff = np.flatnonzero(a != b)
        if len(diff):
            i = int(diff[0])
            return {"layer": s_name, "intsim_layer": r_name, "layer_index": i,
                    f"{stage}_value": a[i].item(), "intsim_value": b[i].item()}
    return None


def generic_hw_layers(model: ModelWrapper) -> ModelWrapper:
    """The specialised (_rtl/_hls) layers as FINN's generic HW layers, which execute in
    python; folding, widths and parameters are those of the final graph."""
    m = ModelWrapper(model.model.__deepcopy__())
    for node in m.graph.node:
        for suffix in ("_rtl", "_hls"):
            if node.op_type.endswith(suffix):
                node.op_type = node.op_type[: -len(suffix)]
                node.domain = "finn.custom_op.fpgadataflow"
    return _vvau_after_swg(m)


def _vvau_after_swg(m: ModelWrapper) -> ModelWrapper:
    """FINN's python VVAU reads its input in the depthwise window's (kh, kw, c) order only when
    its producer *is* a ConvolutionInputGenerator; behind a FIFO or width converter (identity
    in python) it assumes a PE-interleaved order and computes something else (seen: every
    sample wrong on a depthwise conv). Feed such a VVAU from its window generator directly."""
    for node in list(m.graph.node):
        if node.op_type not in ("VVAU", "VVAU_int"):
            continue
        chain, prod = [], m.find_producer(node.input[0])
        while prod is not None and prod.op_type in PASS_THROUGH_OPS \
                and len(m.find_consumers(prod.output[0]) or []) == 1:
            chain.append(prod)
            prod = m.find_producer(prod.input[0])
        if chain and prod is not None and prod.op_type == "ConvolutionInputGenerator":
            node.input[0] = prod.output[0]
            for n in chain:
                m.graph.node.remove(n)
    return m


def _exact_ints(y: np.ndarray, stage: str) -> np.ndarray:
    if not np.array_equal(y, np.rint(y)):
        raise FlowError(f"stage {stage} produced non-integer outputs; the integer graph is broken "
                        "(a float op inside the dataflow part)")
    return y.astype(np.int64)
