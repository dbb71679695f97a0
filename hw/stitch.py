"""Stitch FINN's per-layer RTL into one top-level Verilog module for Verilator.

FINN's own stitcher (CreateStitchedIP) drives Vivado's block design. Here the HW
graph (after FIFO and width-converter insertion and PrepareIP) is read node by node
and written as one module, `qnnflow_top`:

    s_axis -> layer 0 -> layer 1 -> ... -> m_axis        (AXI streams in0_V / out0_V)

with forks (DuplicateStreams) and joins (layers with several streamed inputs) wired
per streamed tensor;

- an MVAU/VVAU with decoupled weights gets its `<node>_memstream_wrapper`, whose
  m_axis_0 drives the layer's in1_V weight stream; its INIT_FILE is overridden;
- a Thresholding layer's THRESHOLDS_PATH is overridden, as is the MEM_PATH of our own
  cores (hw/ops) that hold weights or thresholds;
- AXI-lite ports are tied off (inputs 0, outputs open), as is Thresholding's
  set-selection stream (in1_V, ignored for one threshold set);
- every StreamingFIFO's `maxcount` is concatenated into the port `fifo_maxcount`
  (32 bits per FIFO, graph order), for FIFO sizing.

All sources (the nodes' generated wrappers and the finn-rtllib cores they use) are
copied into one folder with the memory files under `mem/`; memory paths are
relative to that folder, the simulator runs there. The Verilator fixes and
recodings of hw/patches.py are applied to the copies only, never to the installed
FINN. The parts of `stitch()`: `stream_order` (check and order the graph),
`_wires` (one wire per streamed tensor), `_layer_sources` (a node's files),
`_copy_memory_files`, `_instances` (a node's instance text) and `_top_module`.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HwError
from .patches import blank_init_file, patched
from .verilog import RTL_EXTS, RtlLibrary, defines_module, finn_rtllib, module_params, module_ports, \
    render_template, write_if_changed

__all__ = ["TOP", "RTL_EXTS", "StitchedDesign", "StreamInfo", "finn_rtllib", "load_model", "stitch",
           "stream_inputs", "stream_order"]

TOP = "qnnflow_top"

# finn-rtllib folders to prefer when a file name is ambiguous, by op type prefix
_HINTS = {
    "MVAU": ["mvu", "mvu_tiled", "skid", "memstream/hdl", "axi/hdl"],
    "VVAU": ["mvu", "mvu_tiled", "skid", "memstream/hdl", "axi/hdl"],
    "Thresholding": ["thresholding/hdl", "axi/hdl"],
    "StreamingFIFO": ["fifo/hdl"],
    "StreamingDataWidthConverter": ["dwc/hdl"],
    "ConvolutionInputGenerator": ["swg"],
    "FMPadding": ["fmpadding/hdl"],
}


# ---------------------------------------------------------------------------------

@dataclass
class StreamInfo:
    """One end of the accelerator: how words are packed."""
    width: int              # padded TDATA width in bits
    dtype: str              # FINN/qonnx datatype name of each element
    elem_bits: int          # bits per element in the word
    folded_shape: tuple     # FINN folded shape for one image (leading 1)
    normal_shape: tuple     # FINN normal shape for one image (leading 1)

    @property
    def word_bytes(self) -> int:
        return (self.width + 7) // 8

    @property
    def words_per_image(self) -> int:
        n = 1
        for d in self.folded_shape[:-1]:
            n *= int(d)
        return n

    @property
    def elems_per_word(self) -> int:
        return int(self.folded_shape[-1])


@dataclass
class StitchedDesign:
    rtl_dir: Path
    sources: list[str]                 # compile order, relative to rtl_dir
    memory_files: list[str]            # relative to rtl_dir
    input: StreamInfo
    output: StreamInfo
    layers: list[str]                  # node names, stream order
    fifos: list[str]                   # FIFO node names, order of fifo_maxcount
    fifo_depths: dict[str, int]
    estimated_cycles: dict[str, int] = field(default_factory=dict)
    patched: list[str] = field(default_factory=list)
    top: str = TOP

    def source_hash(self) -> str:
        """Content hash of every source the simulator is compiled from (memory files
        excluded: they are read at simulation start, so they need no rebuild)."""
        h = hashlib.sha256()
        for rel in self.sources:
            h.update(rel.encode() + b"\0")
            h.update((self.rtl_dir / rel).read_bytes() + b"\0")
        h.update(f"fifos={len(self.fifos)}".encode())
        return h.hexdigest()


class _Sources:
    """Collects RTL files into rtl_dir (flat), applying hw/patches.py's patches."""

    def __init__(self, rtl_dir: Path):
        self.rtl_dir = rtl_dir
        self.library = RtlLibrary()
        self.order: list[str] = []
        self.origin: dict[str, Path] = {}
        self.patched: list[str] = []

    def resolve(self, name: str, code_gen_dir: Path, hints: list[str]) -> Path:
        return self.library.resolve(name, code_gen_dir, hints)

    def add(self, src: Path) -> str:
        name = src.name
        if name in self.origin:
            if self.origin[name] != src and self.origin[name].read_bytes() != src.read_bytes():
                raise HwError(f"two different RTL files are both named {name} ({self.origin[name]}, {src}); "
                              "hw.stitch copies sources into one folder and cannot hold both")
            return name
        text = src.read_text()
        if name.endswith("_memstream_wrapper.v"):
            text = blank_init_file(text)
        new = patched(name, text)
        if new is not None:
            text = new
            self.patched.append(name)
        write_if_changed(self.rtl_dir / name, text)
        self.origin[name] = src
        self.order.append(name)
        return name


def _attr(inst, name, default=None):
    try:
        return inst.get_nodeattr(name)
    except Exception:  # noqa: BLE001 - qonnx raises AttributeError for attributes an op lacks
        return default


def _op_family(op_type: str) -> str:
    return op_type.rsplit("_", 1)[0]


def load_model(model):
    from qonnx.core.modelwrapper import ModelWrapper

    from .ops import register

    register()  # a graph may hold qnnflow's own RTL layers

    if isinstance(model, (str, Path)):
        p = Path(model)
        if not p.is_file():
            raise HwError(f"model {p} does not exist; give a HW-layer ONNX file from a qnnflow build")
        return ModelWrapper(str(p))
    return model


def stream_order(model) -> list:
    """The HW graph's nodes in an order where every stream's producer precedes its readers
    (the graph's own order where that holds, as FINN writes it), after checking that the
    graph is a stream graph: one input, one output, every streamed tensor written by one
    node and read by exactly one (a fork is a DuplicateStreams layer)."""
    nodes = list(model.graph.node)
    if not nodes:
        raise HwError("the HW graph has no nodes; build a model first (qnnflow build)")
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise HwError(f"hw.stitch supports one input and one output stream, the graph has "
                      f"{len(model.graph.input)} and {len(model.graph.output)}")
    not_rtl = [f"{n.name} ({n.op_type})" for n in nodes if not n.op_type.endswith("_rtl")]
    if not_rtl:
        raise HwError(f"layer(s) without RTL: {', '.join(not_rtl)}; Verilator simulation needs RTL layers "
                      "(prefer RTL when specializing, or add an RTL core under hw/rtl/)")
    g_in, g_out = model.graph.input[0].name, model.graph.output[0].name
    producer: dict[str, object] = {}
    readers: dict[str, list] = {}
    for n in nodes:
        for t in n.output:
            producer[t] = n
        for t in stream_inputs(model, n):
            readers.setdefault(t, []).append(n)
    for t, rs in readers.items():
        if len(rs) > 1:
            raise HwError(f"tensor {t} is read by {len(rs)} layers ({', '.join(r.name for r in rs)}); a stream has "
                          "one reader: fork it with DuplicateStreams (FINN's InferDuplicateStreamsLayer)")
        if t != g_in and t not in producer:
            raise HwError(f"{rs[0].name} reads {t}, which no layer writes and which is not the graph input")
    for t, n in producer.items():
        if t != g_out and t not in readers:
            raise HwError(f"output {t} of {n.name} is read by no layer; hw.stitch needs every stream consumed")
    if g_out not in producer:
        raise HwError(f"no layer writes the graph output {g_out}")
    if g_in not in readers:
        raise HwError(f"no layer reads the graph input {g_in}")
    order, ready, remaining = [], {g_in}, list(nodes)
    while remaining:
        n = next((n for n in remaining if all(t in ready for t in stream_inputs(model, n))), None)
        if n is None:
            raise HwError(f"the HW graph has a cycle through {', '.join(r.name for r in remaining)}; "
                          "hw.stitch connects acyclic stream graphs")
        order.append(n)
        remaining.remove(n)
        ready.update(n.output)
    return order


def stream_inputs(model, node) -> list[str]:
    """The node's streamed inputs (in0_V, in1_V, ...): its inputs that are no initializer."""
    return [t for t in node.input if t and model.get_initializer(t) is None]


@dataclass
class _Layer:
    """One stream node as the top level instantiates it."""
    index: int                 # position in stream order
    node: object
    inst: object               # its qonnx CustomOp
    family: str                # op type without the _rtl/_hls suffix
    top_mod: str               # its generated top module
    code_gen_dir: Path
    top_file: Path
    decoupled: bool            # weights streamed from <top_mod>_memstream_wrapper
    wrapper: Path | None = None


def _wires(model, order, insts) -> tuple[dict[str, str], dict[str, int]]:
    """Wire name and width of every streamed tensor: the graph input s0, output k of the
    i-th node s<i+1> (k = 0) or s<i+1>_<k>; each reader's stream width is checked."""
    g_in = model.graph.input[0].name
    wire = {g_in: "s0"}
    width: dict[str, int] = {g_in: int(insts[0].get_instream_width_padded(stream_inputs(model, order[0]).index(g_in)))}
    for i, (n, inst) in enumerate(zip(order, insts)):
        for j, t in enumerate(stream_inputs(model, n)):
            iw = int(inst.get_instream_width_padded(j))
            if iw != width[t]:
                src = next((m.name for m in order if t in m.output), "the graph input")
                raise HwError(f"stream width mismatch {src} -> {n.name} ({width[t]} vs {iw} bits); "
                              "insert FINN's width converters and FIFOs first (flow step insert_fifos)")
        for k, t in enumerate(n.output):
            wire[t] = f"s{i + 1}" if k == 0 else f"s{i + 1}_{k}"
            width[t] = int(inst.get_outstream_width_padded(k))
    return wire, width


def _code_gen_dir(n, inst, codegen_fallback: Path | None) -> Path:
    cgd_attr = str(_attr(inst, "code_gen_dir_ipgen") or "")
    cgd = Path(cgd_attr)
    if cgd_attr and codegen_fallback is not None and (Path(codegen_fallback) / cgd.name).is_dir():
        cgd = Path(codegen_fallback) / cgd.name
    if not cgd_attr or not cgd.is_dir():
        raise HwError(f"{n.name} has no generated RTL (code_gen_dir_ipgen {cgd_attr or 'unset'}); "
                      "run FINN's PrepareIP (flow steps hw_codegen / insert_fifos)")
    return cgd


def _layer_sources(i: int, n, inst, srcs: _Sources, codegen_fallback: Path | None) -> _Layer:
    """Copy the node's RTL files (its generated wrapper, the finn-rtllib files it lists,
    its weight memory's) into the RTL folder; the node as the top level will use it."""
    fam = _op_family(n.op_type)
    top_mod = _attr(inst, "gen_top_module") or n.name
    cgd = _code_gen_dir(n, inst, codegen_fallback)
    if _attr(inst, "pumpedCompute", 0) or _attr(inst, "pumpedMemory", 0):
        raise HwError(f"{n.name} uses a double-pumped clock (ap_clk2x); hw.stitch drives one clock: "
                      "set pumpedCompute/pumpedMemory to 0")
    hints = _HINTS.get(fam.split("_")[0], [])
    try:
        names = inst.get_rtl_file_list(abspath=False)
    except Exception as exc:  # noqa: BLE001
        raise HwError(f"cannot list the RTL files of {n.name} ({n.op_type}): {exc}") from None
    node_files = [srcs.resolve(str(x), cgd, hints) for x in names]
    decoupled = fam in ("MVAU", "VVAU") and _attr(inst, "mem_mode") == "internal_decoupled"
    if fam in ("MVAU", "VVAU") and not decoupled:
        raise HwError(f"{n.name} has mem_mode={_attr(inst, 'mem_mode')}; hw.stitch streams RTL weights "
                      "from FINN's memstream: set mem_mode internal_decoupled")
    wrapper = None
    if decoupled:
        wrapper = cgd / f"{top_mod}_memstream_wrapper.v"
        if not wrapper.is_file():
            raise HwError(f"{wrapper} is missing; regenerate {n.name} (PrepareIP)")
        node_files += [srcs.resolve(x, cgd, ["memstream/hdl", "axi/hdl"])
                       for x in ("axilite.sv", "memstream_axi.sv", "memstream.sv")] + [wrapper]
    top_file = None
    for f in node_files:
        srcs.add(f)
        if f.parent == cgd and top_file is None and f.suffix == ".v" and defines_module(f, top_mod):
            top_file = f
    if top_file is None:
        raise HwError(f"module {top_mod} of {n.name} not found in {cgd}; regenerate it (PrepareIP)")
    return _Layer(i, n, inst, fam, top_mod, cgd, top_file, decoupled, wrapper)


def _copy_memory_files(layer: _Layer, rtl_dir: Path) -> dict[str, str]:
    """The node's memory files, flat under mem/ and prefixed with its module name:
    {file name in its code generation folder: path relative to rtl_dir}."""
    mem_map: dict[str, str] = {}
    for f in sorted(layer.code_gen_dir.glob("*.dat")):
        dst = f.name if f.name.startswith(layer.top_mod + "_") else f"{layer.top_mod}_{f.name}"
        write_if_changed(rtl_dir / "mem" / dst, f.read_bytes())
        mem_map[f.name] = f"mem/{dst}"
    return mem_map


def _connect(port: str, direction: str, layer: _Layer, ins: list[str], outs: list[str], wire: dict[str, str],
             fifo_index: int) -> str:
    """What the top level connects to one port of a layer's module."""
    m = re.match(r"(in|out)(\d+)_V_", port)
    if port in ("ap_clk", "ap_clk2x"):
        return "ap_clk"
    if port == "ap_rst_n":
        return "ap_rst_n"
    if m and int(m.group(2)) < len(ins if m.group(1) == "in" else outs):
        t = (ins if m.group(1) == "in" else outs)[int(m.group(2))]
        return f"{wire[t]}_{port.split('_')[-1].lower()}"
    if port.startswith("in1_V_") and layer.decoupled:
        return f"w{layer.index}_{port.split('_')[-1].lower()}"
    if port.startswith("in1_V_") or port.startswith("s_axilite_"):
        return "'0" if direction == "input" else ""
    if port == "maxcount" and layer.family == "StreamingFIFO":
        return f"fifo_maxcount[{32 * fifo_index + 31}:{32 * fifo_index}]"
    if direction == "output":
        return ""
    raise HwError(f"unknown input port {port} on {layer.top_mod} ({layer.node.op_type}); "
                  "hw.stitch does not know how to drive it")


def _weight_stream(layer: _Layer, mem_map: dict[str, str]) -> tuple[str, str]:
    """(wire declarations, instance text) of a decoupled layer's weight memory."""
    i, n, top_mod = layer.index, layer.node, layer.top_mod
    ww = int(layer.inst.get_instream_width_padded(1))
    wires = f"\twire [{ww - 1}:0] w{i}_tdata;\n\twire w{i}_tvalid, w{i}_tready;"
    init = mem_map.get("memblock.dat")
    if init is None:
        raise HwError(f"{layer.code_gen_dir}/memblock.dat is missing; regenerate {n.name} (PrepareIP)")
    wconns = []
    for port, direction in module_ports(layer.wrapper, f"{top_mod}_memstream_wrapper").items():
        if port in ("ap_clk", "ap_clk2x"):
            c = "ap_clk"
        elif port == "ap_rst_n":
            c = "ap_rst_n"
        elif port.startswith("m_axis_0_"):
            c = f"w{i}_{port.split('_')[-1].lower()}"
        elif direction == "input":
            c = "'0"
        else:
            c = ""
        wconns.append(f"\t\t.{port}({c})")
    inst = (f"\t// weights of {n.name}, streamed from {init}\n"
            f"\t{top_mod}_memstream_wrapper #(.INIT_FILE(\"{init}\")) {n.name}_wstrm (\n"
            + ",\n".join(wconns) + "\n\t);")
    return wires, inst


def _layer_instance(layer: _Layer, model, wire: dict[str, str], fifo_index: int) -> str:
    """The instance text of the layer's own module, its memory paths overridden."""
    n, top_mod = layer.node, layer.top_mod
    params = module_params(layer.top_file, top_mod)
    overrides = []
    if "THRESHOLDS_PATH" in params:
        overrides.append(f'.THRESHOLDS_PATH("mem/{top_mod}_")')
    if "MEM_PATH" in params:  # qnnflow's own cores (hw/ops/base.py)
        overrides.append(f'.MEM_PATH("mem/{top_mod}_")')
    ins, outs = stream_inputs(model, n), list(n.output)
    conns = [f"\t\t.{port}({_connect(port, direction, layer, ins, outs, wire, fifo_index)})"
             for port, direction in module_ports(layer.top_file, top_mod).items()]
    ov = f" #({', '.join(overrides)})" if overrides else ""
    return f"\t// {n.name}: {n.op_type}\n\t{top_mod}{ov} {n.name}_i (\n" + ",\n".join(conns) + "\n\t);"


def _top_module(model, order, wire: dict[str, str], width: dict[str, int], weight_wires: list[str],
                instances: list[str], n_fifos: int) -> str:
    g_in, g_out = model.graph.input[0].name, model.graph.output[0].name
    lines_wire = list(weight_wires)
    for t, w in wire.items():
        if t not in (g_in, g_out):
            lines_wire.append(f"\twire [{width[t] - 1}:0] {w}_tdata;\n\twire {w}_tvalid, {w}_tready;")
    w_in, w_out, out_wire = width[g_in], width[g_out], wire[g_out]
    forks = sum(len(n.output) > 1 for n in order)
    joins = sum(len(stream_inputs(model, n)) > 1 for n in order)
    shape = "" if not (forks or joins) else f" (a graph: {forks} fork(s), {joins} join(s))"
    nf = max(1, n_fifos)
    zero_fifos = "" if n_fifos else "\tassign fifo_maxcount = '0;\n"
    return render_template("stitched_top.v", TOP=TOP, N_NODES=len(order), SHAPE=shape,
                           CHAIN=" -> ".join(n.name for n in order), IN_MSB=w_in - 1, OUT_MSB=w_out - 1,
                           FIFO_MSB=32 * nf - 1, OUT_WIRE=out_wire, ZERO_FIFOS=zero_fifos,
                           WIRES="\n".join(lines_wire), INSTANCES="\n\n".join(instances))


def _stream_info(inst, first: bool, width: int) -> StreamInfo:
    dt = inst.get_input_datatype() if first else inst.get_output_datatype()
    fs = inst.get_folded_input_shape() if first else inst.get_folded_output_shape()
    ns = inst.get_normal_input_shape() if first else inst.get_normal_output_shape()
    return StreamInfo(width=width, dtype=dt.name, elem_bits=int(dt.bitwidth()),
                      folded_shape=tuple(int(x) for x in fs), normal_shape=tuple(int(x) for x in ns))


def stitch(model, rtl_dir: Path, *, codegen_fallback: Path | None = None) -> StitchedDesign:
    """Write `qnnflow_top` for a FINN HW graph (ModelWrapper or ONNX path) into rtl_dir.

    The graph may fork (DuplicateStreams) and join (layers with several streamed inputs):
    each streamed tensor is one AXI stream wire from its producer's out{k}_V to its
    reader's in{j}_V, k and j its positions among the producer's outputs and the reader's
    streamed inputs; widths are checked per edge.

    codegen_fallback: a build's own code generation folder (<build>/codegen). A node's
    folder of the same name there is used before the absolute path stored in the graph,
    so a moved or copied build is stitched from its own files, never from the original's."""
    from qonnx.custom_op.registry import getCustomOp

    model = load_model(model)
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    (rtl_dir / "mem").mkdir(exist_ok=True)
    order = stream_order(model)
    insts = [getCustomOp(n) for n in order]
    wire, width = _wires(model, order, insts)
    g_in, g_out = model.graph.input[0].name, model.graph.output[0].name

    srcs = _Sources(rtl_dir)
    weight_wires: list[str] = []
    instances: list[str] = []
    memory_files: list[str] = []
    fifos: list[str] = []
    fifo_depths: dict[str, int] = {}
    estimated: dict[str, int] = {}
    for i, (n, inst) in enumerate(zip(order, insts)):
        layer = _layer_sources(i, n, inst, srcs, codegen_fallback)
        try:
            estimated[n.name] = int(inst.get_exp_cycles())
        except Exception:  # noqa: BLE001 - an estimate is optional
            pass
        mem_map = _copy_memory_files(layer, rtl_dir)
        memory_files += mem_map.values()
        node_inst = _layer_instance(layer, model, wire, len(fifos))
        if layer.family == "StreamingFIFO":
            fifos.append(n.name)
            fifo_depths[n.name] = int(_attr(inst, "depth", 0))
        if layer.decoupled:
            wires, wstrm = _weight_stream(layer, mem_map)
            weight_wires.append(wires)
            instances.append(wstrm)
        instances.append(node_inst)

    write_if_changed(rtl_dir / f"{TOP}.v", _top_module(model, order, wire, width, weight_wires, instances, len(fifos)))
    order_src = sorted(srcs.order, key=lambda s: 0 if s.endswith("_pkg.sv") else 1) + [f"{TOP}.v"]
    write_if_changed(rtl_dir / "files.f", "\n".join(order_src) + "\n")

    in_node = next(i for i, n in enumerate(order) if g_in in stream_inputs(model, n))
    out_node = next(i for i, n in enumerate(order) if g_out in n.output)
    return StitchedDesign(rtl_dir=rtl_dir, sources=order_src, memory_files=memory_files,
                          input=_stream_info(insts[in_node], True, width[g_in]),
                          output=_stream_info(insts[out_node], False, width[g_out]),
                          layers=[n.name for n in order], fifos=fifos, fifo_depths=fifo_depths,
                          estimated_cycles=estimated, patched=srcs.patched)
