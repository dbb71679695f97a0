"""The common half of qnnflow's own RTL layers: code generation of a FINN-style wrapper.

An op of ours is a FINN HW op (its abstract layer class, e.g. FINN's LabelSelect, gives
shapes, folding and datatypes) plus this backend. Its Verilog is a wrapper module named
after the node with FINN's interface (ap_clk, ap_rst_n, AXI streams in0_V / out0_V, byte
aligned) around one core from hw/rtl/, so FINN's FIFO/width-converter insertion, our
stitcher and Vivado's block design see it like any FINN RTL layer.
"""
from __future__ import annotations

from pathlib import Path

from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from ..verilog import render_template

RTL_DIR = Path(__file__).resolve().parent.parent / "rtl"
DOMAIN = "finn.custom_op.fpgadataflow.rtl"
GENERIC_DOMAIN = "finn.custom_op.fpgadataflow"  # FINN's abstract HW layers (python execution)


# FINN HLS op type -> our RTL op replacing it; filled by @open_core as hw/ops' modules load
OPEN_CORES: dict[str, type["OpenRTLBackend"]] = {}


def open_core(hls_op_type: str):
    """Register the decorated OpenRTLBackend class as the RTL core for FINN's `hls_op_type`
    (one core per HLS op; the flow step open_rtl moves such layers onto it)."""
    def register(cls):
        if hls_op_type in OPEN_CORES:
            raise ValueError(f"{hls_op_type} already has a core ({OPEN_CORES[hls_op_type].__name__})")
        OPEN_CORES[hls_op_type] = cls
        return cls
    return register


class Raw(str):
    """A core parameter value written into the wrapper as a Verilog expression, unquoted
    (e.g. a memory file name built from the wrapper's MEM_PATH)."""


class OpenRTLBackend(RTLBackend):
    """Subclasses list FINN's layer class first (`class X_rtl(X, OpenRTLBackend)`): its
    get_nodeattr_types reaches RTLBackend's through super(), so the attributes of both hold.
    They set CORE (module name), CORE_FILES (file names in hw/rtl/) and implement
    core_params(); optional: write_memory_files() next to the wrapper.

    Memory files are named `<top>_<name>.dat`. A wrapper whose layer has any gets the
    parameter MEM_PATH, the prefix of those names, relative to the simulator's working
    directory like FINN's THRESHOLDS_PATH; hw.stitch sets it to where it copies them.
    core_params() passes a file to the core as Raw(f'{{MEM_PATH, "<name>.dat"}}')."""

    CORE: str = ""
    CORE_FILES: tuple[str, ...] = ()
    # An op named <X>_rtl whose X is not a FINN op gives X here, FINN's layer under that
    # name: tools that strip `_rtl` to execute a layer in python (flow's hw_python) find it.
    GENERIC_OPS: tuple[type, ...] = ()

    # -- what a subclass provides -------------------------------------------------
    def core_params(self) -> dict[str, int | str]:
        raise NotImplementedError

    def write_memory_files(self, code_gen_dir: Path) -> None:
        """Weights/thresholds for cores that hold them (read with $readmemh)."""

    def stream_inputs(self) -> int:
        """Streamed inputs (in0_V, in1_V, ...); node.input[k] for k below this."""
        return 1

    def stream_outputs(self) -> int:
        """Output streams (out0_V, out1_V, ...), node.output[k]."""
        return 1

    @classmethod
    def supports(cls, node, model) -> str | None:
        """None if the core implements this node, else the reason it does not."""
        return None

    @classmethod
    def annotate(cls, node, model) -> None:
        """After open_rtl_layers moved `node` here: record in its attributes what the
        estimates need from the graph (they see no weights). Nothing by default."""

    # -- FINN's RTL backend ---------------------------------------------------------
    def core_sources(self) -> list[Path]:
        return [RTL_DIR / f for f in self.CORE_FILES]

    def generate_hdl(self, model, fpgapart, clk):
        # core_params() and write_memory_files() read the graph (weights, thresholds) as self._model
        self._model = model
        try:
            self._generate_hdl()
        finally:
            del self._model

    def _generate_hdl(self):
        top = self.get_verilog_top_module_name()
        self.set_nodeattr("gen_top_module", top)
        cgd = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        cgd.mkdir(parents=True, exist_ok=True)
        for old in cgd.glob(f"{top}_*.dat"):
            old.unlink()  # from an earlier generation with other memories
        self.write_memory_files(cgd)
        mems = sorted(p.name for p in cgd.glob(f"{top}_*.dat"))
        mem_param = (f'#(\n\t// prefix of {", ".join(mems)}\n\tparameter MEM_PATH = "./{top}_"\n) '
                     if mems else "")
        params = ",\n".join(f"\t\t.{k}({_vlog(v)})" for k, v in self.core_params().items())
        text = self._wrapper(top, mem_param, params, self.stream_inputs(), self.stream_outputs())
        (cgd / f"{top}.v").write_text(text)
        self.set_nodeattr("ipgen_path", str(cgd))
        self.set_nodeattr("ip_path", str(cgd))

    def _render_wrapper(self, top: str, mem_param: str, params: str, ports: list[str], body: list[str],
                        conns: list[str]) -> str:
        """The wrapper module (hw/rtl/templates/stream_wrapper.v): FINN's clock, reset and
        stream ports (`ports`), glue (`body`), the core instance with `params` and `conns`."""
        return render_template(
            "stream_wrapper.v", KIND=type(self).__name__, NODE=self.onnx_node.name, CORE=self.CORE, TOP=top,
            MEM_PARAM=mem_param, PARAMS=params, BODY="\n".join(body),
            PORTS=",\n".join(f"\t{p}" for p in ["input  ap_clk", "input  ap_rst_n"] + ports),
            CONNS=",\n".join(f"\t\t{c}" for c in [".clk(ap_clk), .rst_n(ap_rst_n)"] + conns))

    def _wrapper(self, top: str, mem_param: str, params: str, n_in: int, n_out: int) -> str:
        """FINN's in{k}_V / out{k}_V streams around the core. The core has s_* ports, or s{k}_*
        per input when it has several inputs, and m_* ports, packed vectors (output k in
        slice k) when it has several outputs."""
        ports, body, conns = [], [], []
        for k in range(n_in):
            iw, iwp = int(self.get_instream_width(k)), int(self.get_instream_width_padded(k))
            ports += [f"input  [{iwp - 1}:0] in{k}_V_TDATA", f"input  in{k}_V_TVALID", f"output in{k}_V_TREADY"]
            s = "s" if n_in == 1 else f"s{k}"
            conns.append(f".{s}_tdata(in{k}_V_TDATA[{iw - 1}:0]), .{s}_tvalid(in{k}_V_TVALID), "
                         f".{s}_tready(in{k}_V_TREADY)")
        data = ["core_tdata"] if n_in == n_out == 1 else [f"core_tdata{k}" for k in range(n_out)]
        for k in range(n_out):
            ow, owp = int(self.get_outstream_width(k)), int(self.get_outstream_width_padded(k))
            ports += [f"output [{owp - 1}:0] out{k}_V_TDATA", f"output out{k}_V_TVALID", f"input  out{k}_V_TREADY"]
            body.append(f"\twire [{ow - 1}:0] {data[k]};")
            pad = f"{{{owp - ow}'b0, {data[k]}}}" if owp > ow else data[k]
            body.append(f"\tassign out{k}_V_TDATA = {pad};")
        rev = list(reversed(range(n_out)))  # packed vectors: output 0 in the low bits
        if n_out == 1:
            conns.append(f".m_tdata({data[0]}), .m_tvalid(out0_V_TVALID), .m_tready(out0_V_TREADY)")
        else:
            conns.append(f".m_tdata({{{', '.join(data[k] for k in rev)}}}), "
                         f".m_tvalid({{{', '.join(f'out{k}_V_TVALID' for k in rev)}}}), "
                         f".m_tready({{{', '.join(f'out{k}_V_TREADY' for k in rev)}}})")
        return self._render_wrapper(top, mem_param, params, ports, body, conns)

    def get_rtl_file_list(self, abspath=False):
        top = self.get_nodeattr("gen_top_module") or self.get_verilog_top_module_name()
        wrapper = f"{top}.v"
        if abspath:
            wrapper = str(Path(self.get_nodeattr("code_gen_dir_ipgen")) / wrapper)
        return [str(p) for p in self.core_sources()] + [wrapper]

    def code_generation_ipi(self):
        cmd = [f"add_files -norecurse {f}" for f in self.get_rtl_file_list(abspath=True)]
        top = self.get_nodeattr("gen_top_module")
        # a relative $readmemh path resolves against the project's files (untested: no Vivado here)
        cmd += [f"add_files -norecurse {p}"
                for p in sorted(Path(self.get_nodeattr("code_gen_dir_ipgen")).glob(f"{top}_*.dat"))]
        return cmd + [f"create_bd_cell -type module -reference {self.get_nodeattr('gen_top_module')} "
                      f"{self.onnx_node.name}"]

    def execute_node(self, context, graph):
        if self.get_nodeattr("exec_mode") == "rtlsim":
            raise RuntimeError(f"{self.onnx_node.name}: FINN's rtlsim needs Vivado; "
                               "simulate qnnflow's RTL cores with `qnnflow rtlsim`")
        # the layer's python semantics (the abstract FINN op, next in the MRO after us)
        for cls in type(self).__mro__:
            if cls is not OpenRTLBackend and "execute_node" in cls.__dict__ and \
                    not issubclass(cls, OpenRTLBackend) and cls is not RTLBackend:
                return cls.execute_node(self, context, graph)
        raise RuntimeError(f"{self.onnx_node.name}: no python execution")


def _vlog(v) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return f'"{v}"'
