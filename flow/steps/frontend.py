"""Front end: Brevitas/QONNX in, a streamlined integer FINN graph out."""
from __future__ import annotations

import contextlib
import copy
import logging
import warnings

import numpy as np
import onnx
import torch
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.cleanup import cleanup_model

from ..config import BuildConfig
from ..record import BuildRecord
from ..errors import FlowError
from ..transforms import (
    BipolarAsInt2,
    ExplicitSplitSizes,
    MoveMulPastSplit,
    MoveScalesPastJoins,
    ReduceMeanToGlobalAveragePool,
    TransposeBeforeInputThresholds,
    RemoveIdentityThresholds,
    RoundThresholdsHalfEven,
    dynamic_joins,
    split_float_tail,
    split_layout_head,
)
from ..transforms.exact_streamline import ExactStreamline
from ..transforms.float_tail import FloatTail
from ..transforms.precise_thresholds import PreciseQuantThresholds

log = logging.getLogger(__name__)

QONNX_OPS = {"Quant", "BipolarQuant", "BinaryQuant", "Trunc"}
# ONNX/QONNX/FINN ops the front end can lower to FINN's dataflow layers.
LOWERABLE_OPS = QONNX_OPS | {
    "MatMul", "Gemm", "Conv", "Relu", "BatchNormalization", "Mul", "Add", "Sub", "Div",
    "Reshape", "Flatten", "Transpose", "MaxPool", "AveragePool", "GlobalAveragePool", "Pad",
    "Identity", "Squeeze", "Unsqueeze", "MultiThreshold", "TopK", "Im2Col", "MaxPoolNHWC",
    "XnorPopcountMatMul", "Constant", "Sign", "Concat", "Split",
}


class InputScale(torch.nn.Module):
    """Feeds integer inputs to a network trained on `x * scale` (e.g. pixels / 256)."""

    def __init__(self, module: torch.nn.Module, scale: float):
        super().__init__()
        self.module = module
        self.scale = float(scale)

    def forward(self, x):
        return self.module(x * self.scale)


def _brevitas_module(cfg: BuildConfig, rec: BuildRecord) -> torch.nn.Module:
    if cfg.module is not None:
        return cfg.module.eval()
    from models import ModelError, load_checkpoint, shipped_checkpoint

    try:
        ckpt = cfg.checkpoint or shipped_checkpoint(cfg.model)
        module, meta = load_checkpoint(ckpt, cfg.model)
    except ModelError as exc:
        raise FlowError(str(exc)) from None
    rec.checkpoint = str(ckpt)
    rec.checkpoint_meta = {k: v for k, v in meta.items() if k != "history"}
    return module


def _why_not_lowerable(model: ModelWrapper, n) -> str | None:
    """Why the flow cannot take this node (None: it can, as far as can be seen before lowering)."""
    if n.domain.startswith("finn.custom_op.fpgadataflow"):
        return None
    if n.op_type not in LOWERABLE_OPS:
        return "no quantized lowering for this op"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    if n.op_type == "Trunc":
        mode = attrs.get("rounding_mode", b"FLOOR")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode.upper() != "FLOOR":
            return (f"rounding_mode {mode} (FINN lowers a flooring average pool only: "
                    "TruncAvgPool2d(float_to_int_impl_type='FLOOR'))")
    if n.op_type in ("Add", "Concat") and len(n.input) > 1:
        scales = [_quant_scale(model, t) for t in n.input]
        if all(sc is not None for sc in scales) and \
                any(sc.shape != scales[0].shape or not np.array_equal(sc, scales[0]) for sc in scales[1:]):
            return ("its inputs are on different quantization scales, so the join is not an integer "
                    "one; give the branches one shared activation quantizer module")
    if n.op_type == "Split":
        shape = model.get_tensor_shape(n.input[0]) or []
        parts = [(model.get_tensor_shape(o) or [None])[-1] for o in n.output]
        if len(shape) != 2 or int(attrs.get("axis", 0)) not in (1, -1):
            return (f"split of a {len(shape)}-D tensor on axis {attrs.get('axis', 0)} (the flow splits the "
                    "channels of a flat (N, C) tensor: torch.chunk in an MLP)")
        if len(set(parts)) != 1:
            return f"unequal parts {parts} (equal channel groups only, as torch.chunk makes)"
    if n.op_type == "Conv":
        group = int(attrs.get("group", 1))
        cin = (model.get_tensor_shape(n.input[0]) or [0, 0])[1]
        cout = (model.get_tensor_shape(n.output[0]) or [0, 0])[1]
        if group != 1 and group != cin:
            return f"grouped conv ({group} groups of {cin} channels; dense and depthwise convs only)"
        if group > 1 and cout != cin:
            return f"depthwise conv with a channel multiplier ({cin} -> {cout} channels; FINN's VVAU keeps them)"
    return None


def _quant_scale(model: ModelWrapper, tensor: str):
    """The scale of the QONNX Quant node that produces `tensor` (None: not a Quant output,
    or a scale that is not a constant)."""
    prod = model.find_producer(tensor)
    if prod is None or prod.op_type != "Quant" or model.get_initializer(tensor) is not None:
        return None
    sc = model.get_initializer(prod.input[1])
    return None if sc is None else np.asarray(sc)


def check_lowerable(model: ModelWrapper, where: str) -> None:
    """Refuse, before any long step, a graph holding layers the flow cannot lower; list them
    all, each with its reason."""
    bad = [(n, _why_not_lowerable(model, n)) for n in model.graph.node]
    bad = [f"{n.name or '?'} ({n.op_type}: {why})" for n, why in bad if why]
    if bad:
        raise FlowError(f"{where}: {len(bad)} node(s) the flow cannot lower: {', '.join(bad)}; "
                        "replace these layers with supported equivalents (README: supported ops) "
                        "or keep them outside the exported network")


def step_export(model, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Brevitas module (zoo name, checkpoint or Python API) -> QONNX; or load --onnx."""
    dst = rec.path("steps", "00_export.onnx")
    if cfg.onnx is not None:
        try:
            proto = onnx.load(str(cfg.onnx))
            add_custom_opset_imports(proto)
            onnx.checker.check_model(proto)
            model = ModelWrapper(proto)
        except FileNotFoundError:
            raise FlowError(f"ONNX file {cfg.onnx} does not exist") from None
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise FlowError(f"ONNX file {cfg.onnx} does not load ({msg}); "
                            "export it again with brevitas.export.export_qonnx") from None
        inits = {t.name for t in model.graph.initializer}
        for t in [t for t in model.graph.input if t.name in inits]:
            model.graph.input.remove(t)  # old-style exports list weights as graph inputs
        if len(model.graph.input) != 1 or len(model.graph.output) != 1:
            raise FlowError(f"ONNX file {cfg.onnx} has {len(model.graph.input)} inputs and "
                            f"{len(model.graph.output)} outputs; the flow needs exactly one of each")
        if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
            from qonnx.transformation.qcdq_to_qonnx import QCDQToQuant

            from ..transforms import QCDQWeightsToQuant

            try:  # QCDQ export -> QONNX Quant nodes
                model = model.transform(QCDQWeightsToQuant()).transform(QCDQToQuant())
            except Exception as exc:
                raise FlowError(f"ONNX file {cfg.onnx} is a QCDQ export that qonnx's QCDQToQuant cannot "
                                f"convert ({exc.__class__.__name__}: {str(exc).strip()[:120]}); export it with "
                                "brevitas.export.export_qonnx instead") from None
        check_foreign_graph(model, cfg.onnx)
        model.save(str(dst))
        return ModelWrapper(str(dst))
    from brevitas.export import export_qonnx

    if not log.isEnabledFor(logging.INFO):  # torch's exporter logs at import; keep -v for that
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    module = InputScale(_brevitas_module(cfg, rec), cfg.input_scale).eval()
    rec.brevitas_module = module
    example = torch.zeros(1, *_input_shape(cfg, module))
    log_path = rec.path("export.log")
    with open(log_path, "w") as fh, contextlib.redirect_stdout(fh), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # each try on a copy: a failed export leaves Brevitas layers in export mode
            export_qonnx(copy.deepcopy(module), example, export_path=str(dst))
            rec.exporter = "torch.export"
        except Exception as first:
            # torch 2.13's default exporter traces with torch.export, under which Brevitas's quant
            # layers hand on plain tensors: code that adds QuantTensors (residual blocks, e.g.
            # bnn_pynq's QuantBasicBlock and its "Perform add among QuantTensors" check) fails.
            # The TorchScript exporter runs the module eagerly, QuantTensors included.
            log.info("torch.export failed (%s); exporting with the TorchScript exporter", first)
            try:
                export_qonnx(copy.deepcopy(module), example, export_path=str(dst), dynamo=False)
            except Exception as second:
                raise FlowError(f"the module does not export to QONNX (torch.export: "
                                f"{_first_line(first)}; TorchScript exporter: {_first_line(second)}); "
                                "check that its forward runs on a zero input of the declared shape") from None
            rec.exporter = "torchscript"
    return ModelWrapper(str(dst))


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{exc.__class__.__name__}: {lines[0][:160]}" if lines else exc.__class__.__name__


def check_foreign_graph(model: ModelWrapper, path) -> None:
    """Refuse, by name and before any transformation, an --onnx graph the flow cannot
    take: a symbolic or zero input dimension, a Quant node whose bit width is not a
    whole number >= 1, or declared shapes that contradict the weights (ONNX shape
    inference in strict mode, custom ops hidden as qonnx's InferShapes hides them).
    A graph without any quantizer is refused after the lowering check (step
    qonnx_to_finn), so that unsupported ops are listed first."""
    import copy

    from qonnx.transformation.infer_shapes import _hide_finn_ops

    inp = model.graph.input[0]
    dims = inp.type.tensor_type.shape.dim
    if not dims or any(not d.HasField("dim_value") or d.dim_value < 1 for d in dims):
        shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        raise FlowError(f"ONNX file {path}: input {inp.name} has shape {shown}; the flow needs a fixed shape "
                        "with batch 1 (export with an example input of batch 1)")
    for n in model.graph.node:
        if n.op_type == "Quant" and len(n.input) > 3:
            bits = model.get_initializer(n.input[3])
            if bits is not None and (bits.size != 1 or float(bits) < 1 or float(bits) != int(float(bits))):
                raise FlowError(f"ONNX file {path}: Quant node {n.name} has bit width {bits.ravel()[:3].tolist()}; "
                                "the flow needs whole bit widths >= 1")
    probe = copy.deepcopy(model)
    _hide_finn_ops(probe)
    try:
        onnx.shape_inference.infer_shapes(probe.model, strict_mode=True)
    except onnx.shape_inference.InferenceError as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "ShapeInferenceError" in msg:
            shape = [d.dim_value for d in dims]
            raise FlowError(f"ONNX file {path}: its declared shapes contradict each other (input {inp.name} "
                            f"{shape}): {msg.split('Inference error(s): ')[-1][:200]}; export it again "
                            "with the example input the model was built for") from None


def add_custom_opset_imports(proto: onnx.ModelProto) -> None:
    """Declare every node domain the file uses but does not import (version 1).

    FINN and qonnx write custom-domain nodes (e.g. `finn.custom_op.general` MultiThreshold)
    without an opset import for that domain, and their ModelWrapper accepts such files;
    ONNX's checker does not, so the missing imports are added before checking.
    """
    have = {o.domain for o in proto.opset_import}
    for domain in sorted({n.domain for n in proto.graph.node} - have - {"", "ai.onnx"}):
        proto.opset_import.append(onnx.helper.make_opsetid(domain, 1))


def _input_shape(cfg: BuildConfig, module) -> tuple[int, ...]:
    shape = cfg.input_shape
    if shape is not None:
        return tuple(shape)
    declared = next((m.in_shape for m in module.modules() if isinstance(getattr(m, "in_shape", None), tuple)), None)
    if declared is not None:  # e.g. models.cnn's conv nets: (C, H, W)
        return tuple(int(d) for d in declared)
    first = next((m for m in module.modules() if hasattr(m, "in_features") or hasattr(m, "in_channels")), None)
    if first is None or not hasattr(first, "in_features"):
        raise FlowError("cannot infer the input shape of the module; pass input_shape=(C, H, W) to flow.build")
    return (first.in_features,)


def step_qonnx_to_finn(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """QONNX cleanup, input datatype annotation, ConvertQONNXtoFINN."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    model = model.transform(InferShapes()).transform(ReduceMeanToGlobalAveragePool())
    check_lowerable(model, f"model {cfg.model or cfg.onnx or 'module'}")
    if cfg.onnx is not None and not any(n.op_type in QONNX_OPS or n.op_type == "MultiThreshold"
                                        for n in model.graph.node):
        raise FlowError(f"ONNX file {cfg.onnx} has no quantizer (no Quant, BipolarQuant, Trunc or MultiThreshold "
                        "node): it is a float model; export a Brevitas-quantized model with export_qonnx")
    model = cleanup_model(model)
    model = _remove_identity_reshapes(model.transform(InferShapes()))
    iname = model.graph.input[0].name
    annotated = model.get_tensor_datatype(iname)
    if annotated.is_integer():
        rec.input_dtype = annotated.name
    else:
        model.set_tensor_datatype(iname, DataType[cfg.input_dtype])
        rec.input_dtype = cfg.input_dtype
    if any(n.op_type in QONNX_OPS for n in model.graph.node):
        rec.qonnx_model = True
        model.save(str(rec.path("qonnx_clean.onnx")))
        model = model.transform(ConvertQONNXtoFINN())
        # FINN stores the quantizers' thresholds in float32; recompute them in float64
        model = model.transform(PreciseQuantThresholds())
    if cfg.input_npy is not None:  # before the long steps: the inputs fit the graph's input
        check_inputs(cfg.input_npy, model.get_tensor_shape(iname), rec.input_dtype)
    return model


def set_float_precision(model: ModelWrapper, dtype) -> ModelWrapper:
    """Cast every float initializer to `dtype` (tensor annotations are left alone)."""
    for init in list(model.graph.initializer):
        a = model.get_initializer(init.name)
        if a.dtype.kind == "f" and a.dtype != dtype:
            model.set_initializer(init.name, a.astype(dtype))
    return model


def step_float64(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Ours: streamline in float64. FINN folds scales, biases and batch norms into thresholds
    in the parameters' own precision; in float32 a threshold moves by up to ~1e-4 at the
    accumulator's scale, enough to put a value on the wrong side of a rounding boundary
    (seen: 1 of 10,000 MNIST test images on tfc-w2a2). In float64 the thresholds are the
    exact-arithmetic ones to ~1e-12; round_half_even then makes them integers and float32."""
    return set_float_precision(model, np.float64)
    return model


def _remove_identity_reshapes(model: ModelWrapper) -> ModelWrapper:
    """Reshape/Flatten nodes that keep the shape (e.g. x.reshape(N, -1) on (N, 784))."""
    from qonnx.transformation.remove import remove_node_and_rewire

    for node in list(model.graph.node):
        if node.op_type in ("Reshape", "Flatten") and \
                model.get_tensor_shape(node.input[0]) == model.get_tensor_shape(node.output[0]):
            remove_node_and_rewire(model, node)
    return model


def step_tidy_up(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    model = model.transform(InferShapes())
    model = model.transform(FoldConstants())
    model = _remove_identity_reshapes(model)
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(GiveReadableTensorNames())
    model = model.transform(InferDataTypes())
    model = model.transform(RemoveStaticGraphInputs())
    return model


def step_streamline(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """FINN's streamlining (exact identity removal): float scales and biases moved into the thresholds."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC
    from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    model = model.transform(ExactStreamline())
    if model.get_nodes_by_op_type("Conv"):
        model = _depthwise_scales_moved(model)
        model = model.transform(LowerConvsToMatMul())
        model = model.transform(MakeMaxPoolNHWC())
        model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
        model = model.transform(MakeMaxPoolNHWC())
        model = model.transform(absorb.AbsorbConsecutiveTransposes())
        model = model.transform(TransposeBeforeInputThresholds())
    if model.get_nodes_by_op_type("Split"):  # channel splits (torch.chunk): scales onto the parts
        model = model.transform(ExplicitSplitSizes())
        model = model.transform(MoveMulPastSplit())
        model = model.transform(ExactStreamline())
    if dynamic_joins(model):  # residual adds: their scales out of the join, then streamline again
        model = model.transform(MoveScalesPastJoins())
        model = model.transform(ExactStreamline())
        if model.get_nodes_by_op_type("Transpose"):  # conv nets: the joins in NHWC too
            model = _joins_channels_last(model)
    if model.get_nodes_by_op_type("GlobalAveragePool"):
        model = _global_pool_as_sum(model)
    if cfg.binary_impl != "dsp":  # "dsp": bipolar_as_int2 relabels them after rounding instead
        model = model.transform(ConvertBipolarMatMulToXnorPopcount())
    model = model.transform(ExactStreamline())
    model = model.transform(absorb.AbsorbScalarMulAddIntoTopK())
    model = model.transform(InferDataLayouts())
    model = model.transform(RemoveUnusedTensors())
    return model


def _depthwise_scales_moved(model: ModelWrapper) -> ModelWrapper:
    """Per-channel activation scales in front of a depthwise conv (MobileNet's per-channel
    ReLU quantizers) move past it, as each output channel reads only its own input channel
    (FINN's MoveMulPastDWConv), and on into the next thresholds; a per-channel average
    pool's NCHW form becomes NHWC (FINN's ChangeDataLayoutQuantAvgPool2d). Graphs without
    either are returned unchanged."""
    from finn.transformation.streamline.reorder import MoveMulPastDWConv
    from qonnx.transformation.change_datalayout import ChangeDataLayoutQuantAvgPool2d

    def depthwise(n) -> bool:
        g = next((a.i for a in n.attribute if a.name == "group"), 1)
        return n.op_type == "Conv" and g > 1 and g == model.get_tensor_shape(n.input[0])[1]

    changed = False
    if any(depthwise(n) for n in model.graph.node):
        model = model.transform(MoveMulPastDWConv()).transform(ExactStreamline())
        changed = True
    if model.get_nodes_by_op_type("QuantAvgPool2d"):
        model = model.transform(ChangeDataLayoutQuantAvgPool2d()).transform(InferShapes())
        changed = True
    return model.transform(InferDataLayouts()) if changed else model


def _joins_channels_last(model: ModelWrapper) -> ModelWrapper:
    """Add(T(x), T(y)) -> T(Add(x, y)) for equal NHWC -> NCHW Transposes (FINN's
    MoveTransposePastJoinAdd), then the Transpose into the next thresholds and against the
    next conv's own: the join adds channels-last streams, as the hardware does."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline.reorder import (
        MoveTransposePastFork,
        MoveTransposePastJoinAdd,
        MoveTransposePastJoinConcat,
    )

    for _ in range(4):  # each pass moves the transposes one join further
        before = [n.op_type for n in model.graph.node]
        model = model.transform(MoveTransposePastJoinAdd())
        model = model.transform(MoveTransposePastJoinConcat())
        model = model.transform(absorb.AbsorbTransposeIntoMultiThreshold())
        model = model.transform(MoveTransposePastFork())
        model = model.transform(absorb.AbsorbConsecutiveTransposes())
        model = model.transform(InferShapes())
        if [n.op_type for n in model.graph.node] == before:
            break
    return model


def _global_pool_as_sum(model: ModelWrapper) -> ModelWrapper:
    """GlobalAveragePool of integers -> FINN's GlobalAccPool (an integer per-channel sum)
    and a Mul by 1/(H*W) (FINN's InferGlobalAccPoolLayer), streamlined on into the float
    tail or the next thresholds, so that the dataflow part stays integer."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import InferGlobalAccPoolLayer

    model = model.transform(InferDataLayouts()).transform(InferGlobalAccPoolLayer())
    model = model.transform(InferShapes()).transform(InferDataTypes())
    model = model.transform(ExactStreamline())
    model = model.transform(absorb.AbsorbConsecutiveTransposes())  # its NHWC view against the layer before
    # its (N, 1, 1, C) sums back to NCHW before a Flatten: the same order in memory
    return model.transform(InferDataLayouts()).transform(absorb.AbsorbTransposeIntoFlatten())


def step_round_half_even(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Ours: integer thresholds with Brevitas's half-to-even ties (flow.transforms)."""
    if not cfg.exact_rounding:
        return set_float_precision(model, np.float32)
    model = model.transform(RoundThresholdsHalfEven())
    return set_float_precision(model.transform(InferDataTypes()), np.float32)


def step_bipolar_as_int2(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Ours, with --binary-impl dsp: bipolar activations and weights relabelled as INT2
    (flow.transforms.bipolar_as_int2), so FINN maps binary layers onto its DSP-based RTL
    matrix unit; with the default (xnor) the graph is left as it is."""
    if cfg.binary_impl != "dsp":
        return model
    model = model.transform(BipolarAsInt2())
    rec.bipolar_as_int2 = model.get_metadata_prop("qnnflow_bipolar_as_int2")
    kept = model.get_metadata_prop("qnnflow_bipolar_kept")
    if kept:
        log.warning("--binary-impl dsp: bipolar thresholds not in the streamlined -1/+1 form stay BIPOLAR: %s", kept)
    xnor = [n.name for n in model.get_nodes_by_op_type("XnorPopcountMatMul")]
    if xnor:  # e.g. an --onnx graph converted elsewhere: popcounts over 0/1 codes, no INT2 form
        log.warning("--binary-impl dsp: %s came in as XnorPopcountMatMul and stay on the XNOR core",
                    ", ".join(xnor))
    return model.transform(InferDataTypes())


def step_remove_identity_thresholds(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Ours: drop thresholds that return their input (an input quantizer on the input's own grid)."""
    before = len(model.graph.node)
    model = model.transform(RemoveIdentityThresholds())
    rec.identity_thresholds_removed = before - len(model.graph.node)
    return model.transform(InferDataTypes())


def step_split_float_tail(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Ours: keep the final float scale in software; the graph now ends in integers."""
    model, tail = split_float_tail(model)
    tail.save(rec.path("float_tail.npz"))
    rec.float_tail = tail.describe()
    out = model.graph.output[0].name
    if not model.get_tensor_datatype(out).is_integer():
        prod = model.find_producer(out)
        raise FlowError(f"the streamlined graph does not end in integers (output {out} from "
                        f"{prod.name if prod else 'input'} is {model.get_tensor_datatype(out).name}); "
                        "the last quantized layer must be followed only by a float scale/bias")
    return model


def step_split_layout_head(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """Ours: keep the data-movement ops on the graph input (conv lowering's NCHW -> NHWC
    Transpose) in software; the accelerator's input is their output (layout_head.npz)."""
    model, head = split_layout_head(model)
    head.save(rec.path("layout_head.npz"))
    rec.layout_head = head.describe()
    return model.transform(RemoveUnusedTensors())


def step_insert_topk(model: ModelWrapper, cfg: BuildConfig, rec: BuildRecord) -> ModelWrapper:
    """With --topk K: end the integer graph in TopK (FINN's LabelSelect in hardware), so the
    accelerator outputs the K best class indices. The float tail stays in software and does
    not change the ranking only if it is one positive scale and one bias for all classes."""
    from qonnx.transformation.insert_topk import InsertTopK

    if not cfg.topk:
        return model
    tail = FloatTail.load(rec.path("float_tail.npz"))
    bad = [f"{op} by {c.size} different values" if np.unique(c).size > 1 else f"{op} by {float(c.flat[0]):g}"
           for op, c in tail.ops
           if np.unique(c).size > 1 or (op in ("Mul", "Div") and float(c.flat[0]) <= 0)]
    if bad:
        raise FlowError(f"--topk: the float tail ({', '.join(bad)}) can reorder the logits, so the "
                        "integers' top-K is not the model's; build without --topk")
    out = model.graph.output[0].name
    classes = int(model.get_tensor_shape(out)[-1])
    if cfg.topk > classes:
        raise FlowError(f"--topk {cfg.topk} exceeds the {classes} outputs of the model")
    model = model.transform(InsertTopK(k=cfg.topk))
    return model.transform(InferShapes()).transform(InferDataTypes())


def check_inputs(path, ishape, dtype_name: str) -> np.ndarray:
    """The --input samples, checked against the graph's input shape and datatype."""
    from ..config import load_inputs

    x = load_inputs(path)
    n = int(np.prod(ishape[1:]))
    if x.shape[1] != n:
        raise FlowError(f"--input {path} has {x.shape[1]} values per sample; the graph input {list(ishape)} "
                        f"needs {n}")
    return integer_input_check(x, dtype_name, f"--input {path}")


def integer_input_check(x: np.ndarray, dtype_name: str, what: str) -> np.ndarray:
    """Inputs must be integers inside the input datatype: an error, never a silent clip."""
    dt = DataType[dtype_name]
    if not np.all(np.isfinite(x)) or not np.array_equal(x, np.rint(x)):
        raise FlowError(f"{what}: inputs must be integers of type {dtype_name}; found non-integer values")
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < dt.min() or hi > dt.max():
        raise FlowError(f"{what}: input values span [{lo:g}, {hi:g}], outside {dtype_name} "
                        f"[{dt.min():g}, {dt.max():g}]")
    return x
