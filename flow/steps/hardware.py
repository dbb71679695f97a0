"""Hardware: FINN HW layers, one dataflow partition, RTL preferred, folded, code generated."""
from __future__ import annotations

import json
import logging
from functools import partial

import numpy as np

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.general import GiveUniqueNodeNames
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from ..config import BuildConfig
from ..record import BuildRecord
from ..errors import FlowError
from ..fit import check_fit, fit_report, from_estimates

log = logging.getLogger(__name__)

FOLDING_ATTRS = ["PE", "SIMD", "parallel_window", "ram_style", "ram_style_thresholds",
                 "resType", "mem_mode", "runtime_writeable_weights", "depth", "impl_style"]


def _is_hw(node) -> bool:
    return node.domain.startswith("finn.custom_op.fpgadataflow")


def step_convert_to_hw(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Standalone thresholds (never Requant: it would round half-up), then matrix units."""
    import finn.transformation.fpgadataflow.convert_to_hw as to_hw
    from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
        InferBinaryMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.fm_padding import InferFMPadding
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import InferGlobalAccPoolLayer
    from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.fpgadataflow.convert_to_hw.vector_vector_activation import (
        InferVectorVectorActivation,
    )
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten

    del to_hw
    if model.get_nodes_by_op_type("Split"):
        # first: qonnx's datatype inference gives a Split's outputs FLOAT32, FINN's
        # StreamingSplit the input's type, which the matrix units after it need
        from finn.transformation.fpgadataflow.convert_to_hw.split import InferSplitLayer

        model = model.transform(InferSplitLayer()).transform(InferDataTypes())
    for t in (InferThresholdingLayer(), InferBinaryMatrixVectorActivation(),
              InferQuantizedMatrixVectorActivation(), InferVectorVectorActivation(),
              InferLabelSelectLayer(), InferThresholdingLayer(), InferFMPadding(), InferPool(),
              InferGlobalAccPoolLayer(), InferConvInpGen(), RemoveCNVtoFCFlatten()):
        model = model.transform(t)
    model = _infer_joins_and_forks(model)
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(InferDataLayouts())
    model = model.transform(InferDataTypes())
    model = model.transform(InferShapes())
    left = [f"{n.name} ({n.op_type})" for n in model.graph.node if not _is_hw(n)]
    if left:
        raise FlowError(f"{len(left)} node(s) could not be converted to FINN hardware layers: "
                        f"{', '.join(left)}; rerun with QNNFLOW_KEEP_FAILED=1 to keep the step graphs "
                        "(<out>.failed/steps/) and see these nodes' inputs in the streamlined one")
    return model


def _infer_joins_and_forks(model: ModelWrapper) -> ModelWrapper:
    """Residual graphs: an Add of two integer streams becomes FINN's ElementwiseAdd (both
    inputs streamed), a Concat on the channel axis FINN's StreamingConcat, and every tensor
    read by several layers gets a DuplicateStreams.
    Graphs without either are returned unchanged (chains build as before)."""
    from finn.transformation.fpgadataflow.convert_to_hw.concat import InferConcatLayer
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import InferDuplicateStreamsLayer
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import (
        InferElementwiseBinaryOperation,
    )

    def integer_join(m, node) -> bool:
        return (node.op_type == "Add" and len(node.input) == 2
                and all(m.get_initializer(t) is None and m.get_tensor_datatype(t).is_integer()
                        for t in node.input))

    if any(integer_join(model, n) for n in model.graph.node):
        model = model.transform(InferElementwiseBinaryOperation(integer_join))
    if model.get_nodes_by_op_type("Concat"):  # channel concatenation of integer streams (NHWC)
        model = model.transform(InferConcatLayer())
    if any(len(model.find_consumers(t.name) or []) > 1 for t in model.graph.value_info) or \
            any(len(model.find_consumers(i.name) or []) > 1 for i in model.graph.input):
        model = model.transform(InferDuplicateStreamsLayer())
    return model


def step_minimize_bit_width(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """FINN's weight/accumulator width minimisation and threshold rounding/clipping."""
    from finn.transformation.fpgadataflow.minimize_accumulator_width import MinimizeAccumulatorWidth
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    # thresholds below an unsigned input's range (an input quantizer that is signed, fed
    # pixels >= 0) clipped first: FINN's threshold width minimisation asserts on them
    model = model.transform(RoundAndClipThresholds())
    model = model.transform(MinimizeWeightBitWidth())
    model = model.transform(MinimizeAccumulatorWidth())
    model = model.transform(InferDataTypes())
    model = model.transform(RoundAndClipThresholds())
    model = model.transform(InferDataTypes())
    model = model.transform(MinimizeWeightBitWidth())
    return narrow_weight_types(model.transform(InferDataTypes()), cfg)


def step_create_dataflow_partition(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """One StreamingDataflowPartition; the parent graph is saved as dataflow_parent.onnx."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition

    parent = model.transform(CreateDataflowPartition(partition_model_dir=str(rec.path("partitions"))))
    sdps = parent.get_nodes_by_op_type("StreamingDataflowPartition")
    if len(sdps) != 1:
        raise FlowError(f"expected one dataflow partition, got {len(sdps)}; "
                        "non-hardware layers sit between hardware layers")
    parent.save(str(rec.path("dataflow_parent.onnx")))
    return ModelWrapper(getCustomOp(sdps[0]).get_nodeattr("model"))


def step_prefer_rtl(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Ask for RTL everywhere: only RTL layers simulate without Vivado."""
    for node in model.graph.node:
        inst = getCustomOp(node)
        if "preferred_impl_style" in inst.get_nodeattr_types():
            inst.set_nodeattr("preferred_impl_style", "rtl")
    return narrow_weight_types(model, cfg)


def narrow_weight_types(model: ModelWrapper, cfg: BuildConfig) -> ModelWrapper:
    """On DSP48E1 (7-series) FINN's RTL matrix unit takes only narrow-range weights, and
    FINN's width minimisation labels weights that reach -2^(b-1) as INTb (not narrow), so a
    layer using -128 (e.g. power-of-two weights -2^7) fell back to HLS. Label such weights
    one bit wider: the values are unchanged and the DSP datapath keeps them narrow."""
    from finn.util.basic import get_dsp_block, get_dsp_datapath_limits
    from qonnx.core.datatype import DataType

    # FINN's width minimisation takes the smallest type holding the most negative weight:
    # for a layer whose weights are all in {-1, 0} (no positive weight, e.g. 2-bit linear
    # quantization with the largest magnitude negative) that is BIPOLAR, which has no 0
    # (the weight files refuse the zeros). Such weights are INT2.
    for node in model.graph.node:
        if node.op_type.startswith(("MVAU", "VVAU")) and not node.op_type.startswith("MVAU_binary"):
            inst = getCustomOp(node)
            w = model.get_initializer(node.input[1])
            if (w is not None and inst.get_nodeattr("weightDataType") == "BIPOLAR"
                    and not np.isin(w, (-1.0, 1.0)).all()):
                inst.set_nodeattr("weightDataType", "INT2")
    block = get_dsp_block(cfg.fpga_part)
    if block != "DSP48E1":
        return model
    max_weight = get_dsp_datapath_limits(block)[1]
    for node in model.graph.node:
        if not node.op_type.startswith(("MVAU", "VVAU")) or node.op_type.startswith("MVAU_binary"):
            continue
        inst = getCustomOp(node)
        w = model.get_initializer(node.input[1])
        wdt = DataType[inst.get_nodeattr("weightDataType")]
        if w is None or not wdt.signed() or not wdt.is_integer() or wdt.name == "BIPOLAR":
            continue
        if float(w.min()) == wdt.min() and wdt.bitwidth() + 1 <= max_weight:
            inst.set_nodeattr("weightDataType", f"INT{wdt.bitwidth() + 1}")
    return model


def step_specialize_layers(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    model = model.transform(SpecializeLayers(cfg.fpga_part))
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(InferShapes())
    return model.transform(InferDataTypes())


def step_open_rtl(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Layers FINN has only in HLS move onto qnnflow's own RTL cores (hw/ops, hw/rtl) where
    one implements them, so that the whole accelerator simulates with Verilator."""
    from hw.ops import absorb_thresholds, open_rtl_layers

    from hw.ops import OPEN_CORES

    model, moved, kept = open_rtl_layers(model, lut_binary=cfg.binary_impl != "dsp",
                                         lut_ternary=cfg.binary_impl == "lut")
    if cfg.binary_impl != "dsp":  # the binary cores' own thresholds: no accumulator stream
        model, rec.thresholds_absorbed = absorb_thresholds(model)
    model = model.transform(GiveUniqueNodeNames())  # names follow the new op types
    ours = {cls.__name__ for cls in OPEN_CORES.values()}
    rec.open_rtl_layers = {n.name: n.op_type for n in model.graph.node if n.op_type in ours}
    hls = [f"{n.name}" for n in model.graph.node if n.op_type.endswith("_hls")]
    rec.hls_layers = hls
    if hls:
        log.warning("layers without an RTL implementation (HLS only, need Vivado to synthesise "
                    "or simulate): %s%s", ", ".join(hls),
                    "".join(f"; {k}: {v}" for k, v in kept.items()))
    return model


def _apply_folding(model: ModelWrapper, path) -> ModelWrapper:
    """A --folding file applied (FINN's ApplyConfig), refused by name where it names no
    node of the graph or folds a layer by factors that do not divide its dimensions."""
    from finn.transformation.general import ApplyConfig

    from ..config import read_folding

    folding = read_folding(path)
    names = [n.name for n in model.graph.node if _is_hw(n)]
    unknown = sorted(set(folding) - set(names) - {"Defaults"})
    if unknown:
        raise FlowError(f"--folding {path} names {', '.join(unknown[:3])}, not a layer of this graph; its layers: "
                        f"{', '.join(names)} (start from a build's folding_config.json)")
    model = model.transform(ApplyConfig(str(path)))
    for node in model.graph.node:
        if node.name not in folding:
            continue
        inst = getCustomOp(node)
        try:
            inst.get_folded_input_shape()
            inst.get_folded_output_shape()
            inst.get_exp_cycles()
        except Exception as exc:  # noqa: BLE001 - FINN asserts its folding requirements
            given = ", ".join(f"{k}={v}" for k, v in folding[node.name].items())
            raise FlowError(f"--folding {path}: {node.name} ({given}) does not fit the layer "
                            f"({type(exc).__name__}: {str(exc).strip() or 'a factor does not divide its size'}); "
                            "PE must divide its output channels and SIMD its input channels") from None
    return model


def step_set_folding(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Fold to --fps with FINN's SetFolding, or apply a FINN folding JSON (--folding)."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding
    from finn.util.config import extract_model_config_to_json

    if cfg.folding is not None:
        model = _apply_folding(model, cfg.folding)
    elif cfg.target_fps:
        cycles = int(1e6 * float(cfg.clock_mhz) / float(cfg.target_fps))
        if cycles < 1:
            raise FlowError(f"--fps {cfg.target_fps:g} needs less than one clock cycle per image "
                            f"at {cfg.clock_mhz} MHz; lower it")
        model = _fold_open_cores_as_hls(model, SetFolding(cycles, two_pass_relaxation=True))
    model = _window_aligned_simd(model)
    model = _no_single_fold_mvau(model)
    model = model.transform(GiveUniqueNodeNames())
    extract_model_config_to_json(model, str(rec.path("folding_config.json")), FOLDING_ATTRS)
    return model


def _aligned(a: int, b: int) -> bool:
    return a % b == 0 or b % a == 0


def _window_simd(model: ModelWrapper, node) -> int | None:
    """SIMD of the (non-depthwise) sliding-window generator feeding a matrix unit, if any."""
    prod = model.find_producer(node.input[0])
    if prod is None or not prod.op_type.startswith("ConvolutionInputGenerator"):
        return None
    inst = getCustomOp(prod)
    if inst.get_nodeattr("depthwise") or inst.get_nodeattr("parallel_window"):
        return None
    return int(inst.get_nodeattr("SIMD"))


def _window_aligned_simd(model: ModelWrapper) -> ModelWrapper:
    """A matrix unit whose SIMD and its window generator's SIMD do not divide one another
    (e.g. 9 and 16, from FINN's weight-stream width limit) gets a width converter of
    non-integer ratio, and FINN's converter does not pass a word per cycle at such ratios:
    the layer misses its estimate. Move the unit's SIMD to the nearest divisor of MW aligned
    with the generator's (the smaller one on a tie: fewer multipliers); where that is
    smaller, PE grows to the next divisor of MH that keeps the cycles, as far as MH allows."""
    for node in model.graph.node:
        if node.op_type not in ("MVAU_rtl", "MVAU_binary_rtl"):
            continue
        s = _window_simd(model, node)
        inst = getCustomOp(node)
        simd, mw = int(inst.get_nodeattr("SIMD")), int(inst.get_nodeattr("MW"))
        pe, mh = int(inst.get_nodeattr("PE")), int(inst.get_nodeattr("MH"))
        if s is None or _aligned(simd, s):
            continue
        new = min((d for d in range(1, mw + 1) if mw % d == 0 and _aligned(d, s)), key=lambda d: (abs(d - simd), d))
        inst.set_nodeattr("SIMD", new)
        new_pe = pe
        if new < simd:
            want = -(-pe * simd // new)
            new_pe = min([d for d in range(want, mh + 1) if mh % d == 0] or [mh])
            inst.set_nodeattr("PE", new_pe)
        log.info("%s: SIMD %d -> %d, PE %d -> %d (aligned with its window generator's SIMD %d)",
                 node.name, simd, new, pe, new_pe, s)
    return model


def _no_single_fold_mvau(model: ModelWrapper) -> ModelWrapper:
    """FINN's RTL matrix unit (mvu_vvu_axi.sv) with SIMD == MW (one fold per output: a
    result every cycle) overflows its output queue under sustained backpressure (its own
    assertion fires in Verilator, with FINN's unmodified RTL too, after a few images of a
    conv layer that a slower layer holds up): outputs would be lost in hardware. Such a
    layer gets the largest SIMD below MW that divides it and as much more PE (a divisor of
    MH) as keeps its cycles per image, so the fold count is at least 2."""
    for node in model.graph.node:
        if node.op_type != "MVAU_rtl":
            continue
        inst = getCustomOp(node)
        mw, mh = int(inst.get_nodeattr("MW")), int(inst.get_nodeattr("MH"))
        simd, pe = int(inst.get_nodeattr("SIMD")), int(inst.get_nodeattr("PE"))
        if simd != mw or mw < 2:
            continue
        s = _window_simd(model, node)
        divs = [d for d in range(1, mw) if mw % d == 0]
        new_simd = max([d for d in divs if s is None or _aligned(d, s)] or divs)
        want = pe * (mw // new_simd)
        new_pe = min([d for d in range(want, mh + 1) if mh % d == 0] or [mh])
        inst.set_nodeattr("SIMD", new_simd)
        inst.set_nodeattr("PE", new_pe)
        log.info("%s: SIMD %d -> %d, PE %d -> %d (FINN's RTL matrix unit needs two or more folds)",
                 node.name, simd, new_simd, pe, new_pe)
    return model


def _fold_open_cores_as_hls(model: ModelWrapper, transform) -> ModelWrapper:
    """Run FINN's SetFolding with qnnflow's own RTL ops shown under the HLS op type they
    replace: SetFolding picks its rules by op type name, and for Pool_hls it also sets the
    SIMD of the depthwise window generator feeding it to the pool's PE (the two must agree:
    the stream order depends on it). Unnamed, our ops would keep their unfolded PE."""
    from hw.ops import OPEN_CORES

    hls_name = {cls.__name__: hls for hls, cls in OPEN_CORES.items()}
    ours = {}  # node index -> (op type, domain); SetFolding renames nodes but keeps their order
    for i, node in enumerate(model.graph.node):
        if node.op_type in hls_name:
            ours[i] = (node.op_type, node.domain)
            node.op_type, node.domain = hls_name[node.op_type], "finn.custom_op.fpgadataflow.hls"

    def restore(m: ModelWrapper) -> ModelWrapper:
        nodes = m.graph.node
        if len(nodes) != len(model.graph.node):
            raise FlowError(f"{type(transform).__name__} changed the number of layers")
        for i, (op_type, domain) in ours.items():
            nodes[i].op_type, nodes[i].domain = op_type, domain
        return m

    try:
        folded = model.transform(transform)
    finally:
        restore(model)
    return restore(folded)


def step_estimates(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """FINN's analytical estimates: cycles per layer, resources, fps and latency."""
    from finn.analysis.fpgadataflow.dataflow_performance import dataflow_performance
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.op_and_param_counts import aggregate_dict_keys
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles

    cycles = model.analysis(exp_cycles_per_layer)
    res = model.analysis(partial(res_estimation, fpgapart=cfg.fpga_part))
    res["total"] = aggregate_dict_keys(res)
    model = model.transform(AnnotateCycles())
    perf = dict(model.analysis(dataflow_performance))
    est = {
        "layer_cycles": {k: int(v) for k, v in cycles.items()},
        "layer_resources": res,
        "max_cycles": int(perf["max_cycles"]),
        "critical_path_cycles": int(perf["critical_path_cycles"]),
        "fps": 1e6 * float(cfg.clock_mhz) / int(perf["max_cycles"]),
        "latency_ns": int(perf["critical_path_cycles"]) * cfg.clk_period_ns,
        "clock_mhz": float(cfg.clock_mhz),
    }
    (rec.path("estimates.json")).write_text(json.dumps(est, indent=2, default=float))
    rec.estimates = est
    rec.fit = fit_report(from_estimates(est), cfg.fpga_part, "FINN estimate")
    check_fit(rec.fit, cfg.allow_over_budget, _dsp_hint(model, cfg))
    return model


def _dsp_hint(model: ModelWrapper, cfg: BuildConfig) -> str:
    """Which --binary-impl would take FINN's DSP matrix units with -1/+1 or -1/0/+1 weights
    onto our LUT core, if any are left on DSPs ("" if none)."""
    from hw.ops.mvu_binary import MVAU_binary_rtl, binary_mode

    modes = {}
    for n in model.get_nodes_by_op_type("MVAU_rtl"):
        mode, _ = binary_mode(getCustomOp(n), model)
        if mode in ("sum", "ternary") and MVAU_binary_rtl.supports(n, model) is None:
            modes[n.name] = mode
    if cfg.binary_impl == "xnor":  # its +-1 layers are on LUTs already
        modes = {k: m for k, m in modes.items() if m == "ternary"}
    if cfg.binary_impl == "lut" or not modes:
        return ""
    opt = "lut" if "ternary" in modes.values() else "xnor"
    return f"--binary-impl {opt} moves {', '.join(modes)} off DSPs onto LUTs"


def step_hw_codegen(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """FINN's per-layer code generation (as PrepareIP) for the RTL layers: Verilog wrappers
    and memory files, no Vivado needed. HLS layers get their C++ in `qnnflow bitstream`,
    where Vitis HLS compiles it; generating it here would only expose FINN's HLS-template
    limits (e.g. 1-bit non-bipolar inputs) without anything able to use it."""
    from finn.util.basic import make_build_dir

    from ..finn_compat import finn_build_dir

    with finn_build_dir(rec.path("codegen")):
        for node in model.graph.node:
            if not node.op_type.endswith("_rtl"):
                continue
            inst = getCustomOp(node)
            if not inst.get_nodeattr("code_gen_dir_ipgen"):
                inst.set_nodeattr("code_gen_dir_ipgen", str(make_build_dir(f"code_gen_ipgen_{node.name}_")))
                inst.code_generation_ipgen(model, cfg.fpga_part, cfg.clk_period_ns)
    return model
