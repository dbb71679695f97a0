"""Forks and joins in RTL (hw/rtl/qnn_dup_streams.sv, qnn_add_streams.sv, qnn_concat.sv,
qnn_split.sv) and the graph
stitcher: small HW graphs with DuplicateStreams and two-stream adds against intsim, with
folding, mixed signedness and random stalls."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

import sim
from flow.finn_compat import finn_build_dir
from hw.errors import HwError
from hw.layertest import simulate_layer
from hw.ops import open_rtl_layers
from hw.stitch import stream_order

HLS = "finn.custom_op.fpgadataflow.hls"


def dup(name, x, outs, ch, pe, dt, vecs=(1,)):
    return helper.make_node("DuplicateStreams_hls", [x], outs, name=name, domain=HLS, backend="fpgadataflow",
                            NumChannels=ch, PE=pe, NumOutputStreams=len(outs), inputDataType=dt,
                            numInputVectors=list(vecs))


def add(name, a, b, y, shape, pe, adt, bdt, odt):
    return helper.make_node("ElementwiseAdd_hls", [a, b], [y], name=name, domain=HLS, backend="fpgadataflow",
                            lhs_dtype=adt, rhs_dtype=bdt, out_dtype=odt, lhs_shape=list(shape),
                            rhs_shape=list(shape), out_shape=list(shape), PE=pe,
                            lhs_style="input", rhs_style="input")


def graph(nodes, shape, types: dict[str, str], inp="x", out="y") -> ModelWrapper:
    vi = lambda t: helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, *shape])  # noqa: E731
    inner = sorted({t for n in nodes for t in list(n.input) + list(n.output)} - {inp, out})
    m = ModelWrapper(qonnx_make_model(helper.make_graph(nodes, "g", [vi(inp)], [vi(out)],
                                                       value_info=[vi(t) for t in inner])))
    for t, dt in types.items():
        m.set_tensor_datatype(t, DataType[dt])
    m, moved, kept = open_rtl_layers(m)
    assert not kept and len(moved) == len(nodes), (moved, kept)
    return m


def triple(ch, pe, dt, vecs=1) -> ModelWrapper:
    """y = (x + x) + x: a three-way fork and two joins."""
    d = DataType[dt]
    s = DataType[f"{'INT' if d.signed() else 'UINT'}{d.bitwidth() + 1}"]
    o = DataType[f"{'INT' if d.signed() else 'UINT'}{d.bitwidth() + 2}"]
    shape = (vecs, ch) if vecs > 1 else (ch,)
    nodes = [dup("Dup", "x", ["d0", "d1", "d2"], ch, pe, dt, (1, vecs) if vecs > 1 else (1,)),
             add("Add0", "d0", "d1", "s", (1, *shape), pe, dt, dt, s.name),
             add("Add1", "s", "d2", "y", (1, *shape), pe, s.name, dt, o.name)]
    return graph(nodes, shape, {"x": dt, "d0": dt, "d1": dt, "d2": dt, "s": s.name, "y": o.name})


@pytest.mark.parametrize("ch,pe,dt,vecs", [(8, 1, "UINT4", 1), (12, 4, "INT3", 3), (6, 6, "INT8", 2)])
def test_fork_and_joins_match_intsim(ch, pe, dt, vecs, tmp_path):
    m = triple(ch, pe, dt, vecs)
    assert [n.op_type for n in m.graph.node] == ["DuplicateStreams_rtl", "AddStreams_rtl", "AddStreams_rtl"]
    d = DataType[dt]
    rng = np.random.default_rng(ch * 10 + pe)
    x = rng.integers(d.min(), d.max() + 1, size=(60, vecs * ch))
    x[0], x[1] = d.min(), d.max()  # the extremes: the output type must hold 3 * them
    ref = sim.run(m, x)
    np.testing.assert_array_equal(ref, 3 * x)
    for stall, sub in ((0.0, "s0"), (0.4, "s4")):
        r = simulate_layer(m, x, tmp_path / sub, stall=stall, seed=2)
        np.testing.assert_array_equal(r.outputs, ref)


ADD_TB = """
module tb(input logic  clk, input logic  rst);
	int unsigned  Cyc = 0;
	always_ff @(posedge clk)  Cyc <= Cyc + 1;
	logic [7:0]  a;   logic  av, ar;   // 2 lanes UINT4
	logic [5:0]  b;   logic  bv, br;   // 2 lanes INT3
	logic [11:0] y;   logic  yv, yr;   // 2 lanes INT6
	logic [15:0] ka, kb;               // beats taken: every operand pair comes by
	assign a = ka[7:0];
	assign b = kb[5:0] ^ kb[13:8];
	// valid and ready from the cycle count: stalls on every side, never for long
	assign av = !rst && ((Cyc * 7) % 5 != 0);
	assign bv = !rst && ((Cyc * 3) % 4 != 1);
	assign yr = (Cyc * 5) % 7 > 1;
	qnn_add_streams #(.PE(2), .ABITS(4), .ASIGNED(0), .BBITS(3), .BSIGNED(1), .OBITS(6)) dut (
		.clk(clk), .rst_n(!rst), .s0_tdata(a), .s0_tvalid(av), .s0_tready(ar),
		.s1_tdata(b), .s1_tvalid(bv), .s1_tready(br), .m_tdata(y), .m_tvalid(yv), .m_tready(yr));
	always_ff @(posedge clk) begin
		if (rst) begin ka <= 0; kb <= 0; end
		else begin
			if (av && ar) ka <= ka + 1;
			if (bv && br) kb <= kb + 1;
			if (av && ar && !(bv && br)) $display("ERROR a taken alone");
			if (av && ar) $display("I %0d %0d", a, b);
			if (yv && yr) $display("O %0d", y);
		end
	end
endmodule
"""


def test_add_core_extends_each_operand_by_its_sign(tmp_path):
    """qnn_add_streams alone (Verilator): UINT4 + INT3 -> INT6 on 2 lanes, every operand
    pair, stalls on both inputs and the output; each sum in order, none lost or doubled."""
    from vtb import build_tb, run_tb

    from hw.ops.base import RTL_DIR

    src = tmp_path / "src"
    src.mkdir()
    (src / "tb.sv").write_text(ADD_TB)
    (src / "qnn_add_streams.sv").write_text((RTL_DIR / "qnn_add_streams.sv").read_text())
    out = run_tb(build_tb(src, ["qnn_add_streams.sv", "tb.sv"], tmp_path / "obj"), 6000)
    assert "ERROR" not in out
    ins = [tuple(int(v) for v in ln.split()[1:]) for ln in out.splitlines() if ln.startswith("I ")]
    outs = [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("O ")]
    assert len(ins) > 2000 and 0 <= len(ins) - len(outs) <= 1

    def lanes(word, bits, signed):
        vals = [(word >> (bits * i)) & ((1 << bits) - 1) for i in range(2)]
        return [v - (1 << bits) if signed and v >> (bits - 1) else v for v in vals]

    seen = set()
    for (a, b), y in zip(ins, outs):
        la, lb = lanes(a, 4, False), lanes(b, 3, True)
        assert lanes(y, 6, True) == [la[0] + lb[0], la[1] + lb[1]], (a, b, y)
        seen.update(zip(la, lb))
    assert len(seen) == 16 * 8  # every (UINT4, INT3) pair went through a lane


def test_stitcher_refuses_a_tensor_with_two_readers():
    nodes = [add("Add0", "x", "x", "y", (1, 4), 1, "UINT4", "UINT4", "UINT5")]
    m = graph(nodes, (4,), {"x": "UINT4", "y": "UINT5"})
    with pytest.raises(HwError, match="read by 2 layers.*DuplicateStreams"):
        stream_order(m)


def test_add_core_refuses_broadcast():
    from hw.ops.joins import AddStreams_rtl

    n = add("Add0", "x", "z", "y", (1, 4), 1, "UINT4", "UINT4", "UINT5")
    for a in n.attribute:
        if a.name == "rhs_shape":
            a.ints[:] = [1, 1]
    assert "broadcast" in AddStreams_rtl.supports(n, None)


def gap_model(h, w, ch, pe, dt) -> ModelWrapper:
    node = helper.make_node("GlobalAccPool_hls", ["x"], ["y"], name="GAP", domain=HLS, backend="fpgadataflow",
                            NumChannels=ch, PE=pe, inputDataType=dt, numInputVectors=[1, h, w])
    m = ModelWrapper(qonnx_make_model(helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, h, w, ch])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, ch])])))
    m.set_tensor_datatype("x", DataType[dt])
    m.set_tensor_datatype("y", getCustomOp(node).get_output_datatype())
    m, moved, kept = open_rtl_layers(m)
    assert moved == {"GAP": "GlobalAccPool_rtl"} and not kept
    return m


@pytest.mark.parametrize("h,w,ch,pe,dt", [(7, 7, 8, 1, "UINT4"), (3, 5, 12, 4, "INT4"), (2, 2, 6, 6, "INT8")])
def test_global_acc_pool_core_matches_intsim(h, w, ch, pe, dt, tmp_path):
    m = gap_model(h, w, ch, pe, dt)
    d = DataType[dt]
    rng = np.random.default_rng(h * w + ch)
    x = rng.integers(d.min(), d.max() + 1, size=(30, h * w * ch))
    x[0], x[1] = d.min(), d.max()  # sums at the output type's extremes
    ref = sim.run(m, x)
    np.testing.assert_array_equal(ref, x.reshape(30, h * w, ch).sum(axis=1))
    r = simulate_layer(m, x, tmp_path / "s0")
    np.testing.assert_array_equal(r.outputs, ref)
    assert r.cycles_per_image == h * w * ch // pe  # one beat per cycle, no gap between images
    r = simulate_layer(m, x, tmp_path / "s4", stall=0.4, seed=3)
    np.testing.assert_array_equal(r.outputs, ref)


def concat(name, ins, y, chans, simd, dts, vecs=(1,)):
    return helper.make_node("StreamingConcat_hls", list(ins), [y], name=name, domain=HLS, backend="fpgadataflow",
                            SIMD=simd, ChannelsPerStream=list(chans), inputDataTypes=list(dts),
                            numInputVectors=list(vecs))


@pytest.mark.parametrize("ch,simd,dt,vecs", [(4, 1, "UINT4", 1), (6, 3, "INT3", 5), (8, 8, "INT2", 2)])
def test_concat_matches_intsim(ch, simd, dt, vecs, tmp_path):
    """y = concat(x, x + x, x) along channels: three inputs, the middle one a wider type
    (each input's elements are extended by its own signedness), with and without stalls."""
    d = DataType[dt]
    s = DataType[f"{'INT' if d.signed() else 'UINT'}{d.bitwidth() + 1}"]
    shape = (vecs, ch) if vecs > 1 else (ch,)
    v = (1, vecs) if vecs > 1 else (1,)
    nodes = [dup("Dup", "x", ["d0", "d1", "d2", "d3"], ch, simd, dt, v),
             add("Add0", "d1", "d2", "s", (1, *shape), simd, dt, dt, s.name),
             concat("Cat", ["d0", "s", "d3"], "y", [ch] * 3, simd, [dt, s.name, dt], v)]
    m = graph(nodes, shape, {"x": dt, "d0": dt, "d1": dt, "d2": dt, "d3": dt, "s": s.name, "y": s.name})
    m.set_tensor_shape("y", [1, *shape[:-1], 3 * ch])
    assert getCustomOp(m.graph.node[2]).get_output_datatype() == s
    m = _join_fifos_deep(m)
    rng = np.random.default_rng(ch + simd)
    x = rng.integers(d.min(), d.max() + 1, size=(40, vecs * ch))
    x[0], x[1] = d.min(), d.max()
    ref = sim.run(m, x)
    xs = x.reshape(40, vecs, ch)
    np.testing.assert_array_equal(ref, np.concatenate([xs, 2 * xs, xs], axis=-1).reshape(40, -1))
    with finn_build_dir(tmp_path / "finn"):  # FINN's FIFOs read FINN's settings
        for stall, sub in ((0.0, "s0"), (0.4, "s4")):
            r = simulate_layer(m, x, tmp_path / sub, stall=stall, seed=5)
            np.testing.assert_array_equal(r.outputs, ref)
    cat = next(n for n in m.graph.node if n.op_type == "StreamingConcat_rtl")
    assert r.cycles_per_image >= getCustomOp(cat).get_exp_cycles()


def split(name, x, outs, chans, simd, dt, vecs=(1,)):
    return helper.make_node("StreamingSplit_hls", [x], list(outs), name=name, domain=HLS, backend="fpgadataflow",
                            SIMD=simd, ChannelsPerStream=list(chans), inputDataType=dt, numInputVectors=list(vecs))


@pytest.mark.parametrize("ch,simd,dt,vecs", [(4, 1, "UINT4", 1), (6, 3, "INT3", 5), (4, 2, "INT2", 3)])
def test_split_matches_intsim(ch, simd, dt, vecs, tmp_path):
    """x (a | b | c, ch channels each) -> split -> concat(b, a + c): the split sends consecutive
    channel groups to three streams, the joins read them in another order; with and without
    stalls. (The core itself takes unequal groups; see test_split_core_takes_unequal_parts.)"""
    d = DataType[dt]
    s = DataType[f"{'INT' if d.signed() else 'UINT'}{d.bitwidth() + 1}"]
    shape = (vecs, 3 * ch) if vecs > 1 else (3 * ch,)
    v = (1, vecs) if vecs > 1 else (1,)
    part = lambda c: (1, vecs, c) if vecs > 1 else (1, c)  # noqa: E731
    nodes = [split("Split", "x", ["a", "b", "c"], [ch] * 3, simd, dt, v),
             add("Add0", "a", "c", "s", part(ch), simd, dt, dt, s.name),
             concat("Cat", ["b", "s"], "y", [ch, ch], simd, [dt, s.name], v)]
    m = graph(nodes, shape, {"x": dt, "a": dt, "b": dt, "c": dt, "s": s.name, "y": s.name})
    for t, c in (("a", ch), ("b", ch), ("c", ch), ("s", ch), ("y", 2 * ch)):
        m.set_tensor_shape(t, list(part(c)))
    m = _join_fifos_deep(m)
    rng = np.random.default_rng(ch + simd + vecs)
    x = rng.integers(d.min(), d.max() + 1, size=(40, int(np.prod(shape))))
    x[0], x[1] = d.min(), d.max()
    ref = sim.run(m, x)
    xs = x.reshape(40, vecs, 3 * ch)
    want = np.concatenate([xs[..., ch:2 * ch], xs[..., :ch] + xs[..., 2 * ch:]], axis=-1).reshape(40, -1)
    np.testing.assert_array_equal(ref, want)
    with finn_build_dir(tmp_path / "finn"):
        for stall, sub in ((0.0, "s0"), (0.4, "s4")):
            r = simulate_layer(m, x, tmp_path / sub, stall=stall, seed=7)
            np.testing.assert_array_equal(r.outputs, ref)
    sp = next(n for n in m.graph.node if n.op_type == "StreamingSplit_rtl")
    assert getCustomOp(sp).get_exp_cycles() == vecs * 3 * ch // simd


def _join_fifos_deep(m: ModelWrapper) -> ModelWrapper:
    """FINN's FIFOs between the layers, those in front of a join one image deep (+2), as the
    flow sizes them: the concat reads its inputs one after the other, so without them the
    fork would wait on the branch not being read."""
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    from flow.steps.rtl import _join_fifos

    m = m.transform(InsertFIFO(create_shallow_fifos=True))
    for n in m.graph.node:
        if n.op_type == "StreamingFIFO":
            getCustomOp(n).set_nodeattr("preferred_impl_style", "rtl")
    m = m.transform(SpecializeLayers("xc7z020clg400-1")).transform(GiveUniqueNodeNames())
    for f, words in _join_fifos(m).items():
        getCustomOp(m.get_node_from_name(f)).set_nodeattr("depth", max(words + 2, 2))
    return m


CONCAT_TB = """
module tb(input logic  clk, input logic  rst);
	int unsigned  Cyc = 0;
	always_ff @(posedge clk)  Cyc <= Cyc + 1;
	// three inputs of 1, 3 and 2 beats per pixel, 2 lanes of 4 bits; each input counts its beats
	logic [23:0] d;   logic [2:0] v, r;
	logic [7:0]  y;   logic  yv, yr;
	logic [7:0]  c0, c1, c2;
	assign d = {c2 | 8'hc0, c1 | 8'h80, c0 & 8'h3f};  // tag each input in the top bits
	assign v[0] = !rst && ((Cyc * 7) % 5 != 0);
	assign v[1] = !rst && ((Cyc * 3) % 4 != 1);
	assign v[2] = !rst && ((Cyc * 5) % 3 != 2);
	assign yr = (Cyc * 5) % 7 > 1;
	qnn_concat #(.N(3), .SIMD(2), .EBITS(4), .FOLDS({16'd2, 16'd3, 16'd1})) dut (
		.clk(clk), .rst_n(!rst), .s_tdata(d), .s_tvalid(v), .s_tready(r),
		.m_tdata(y), .m_tvalid(yv), .m_tready(yr));
	always_ff @(posedge clk) begin
		if (rst) begin c0 <= 0; c1 <= 0; c2 <= 0; end
		else begin
			if (v[0] && r[0]) c0 <= c0 + 1;
			if (v[1] && r[1]) c1 <= c1 + 1;
			if (v[2] && r[2]) c2 <= c2 + 1;
			if ((r[0] + r[1] + r[2]) > 1) $display("ERROR two inputs read at once");
			if (yv && yr) $display("O %0d", y);
		end
	end
endmodule
"""


def test_concat_core_takes_each_input_for_its_folds(tmp_path):
    """qnn_concat alone (Verilator): inputs of 1, 3 and 2 beats per pixel under stalls on
    every side; the output is, pixel after pixel, input 0's beat, input 1's three, input
    2's two, each input's beats in order, none lost or doubled."""
    from vtb import build_tb, run_tb

    from hw.ops.base import RTL_DIR

    src = tmp_path / "src"
    src.mkdir()
    (src / "tb.sv").write_text(CONCAT_TB)
    (src / "qnn_concat.sv").write_text((RTL_DIR / "qnn_concat.sv").read_text())
    out = run_tb(build_tb(src, ["qnn_concat.sv", "tb.sv"], tmp_path / "obj"), 6000)
    assert "ERROR" not in out
    outs = [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("O ")]
    assert len(outs) > 1200
    expect, counts = [], [0, 0, 0]
    tags, masks = [0x00, 0x80, 0xC0], [0x3F, 0xFF, 0xFF]
    for k, n in [(0, 1), (1, 3), (2, 2)] * (len(outs) // 6 + 1):
        for _ in range(n):
            expect.append(((counts[k] & 0xFF) | tags[k]) & masks[k] if k else counts[k] & 0x3F)
            counts[k] += 1
    assert outs == expect[:len(outs)]


SPLIT_TB = """
module tb(input logic  clk, input logic  rst);
	int unsigned  Cyc = 0;
	always_ff @(posedge clk)  Cyc <= Cyc + 1;
	// input beats count up; outputs of 1, 3 and 2 beats per pixel, each stalling on its own
	logic [7:0]  x;  logic  xv, xr;
	logic [23:0] y;  logic [2:0] yv, yr;
	assign xv = !rst && ((Cyc * 7) % 5 != 0);
	assign yr[0] = (Cyc * 3) % 4 != 1;
	assign yr[1] = (Cyc * 5) % 3 != 2;
	assign yr[2] = (Cyc * 5) % 7 > 1;
	qnn_split #(.N(3), .W(8), .FOLDS({16'd2, 16'd3, 16'd1})) dut (
		.clk(clk), .rst_n(!rst), .s_tdata(x), .s_tvalid(xv), .s_tready(xr),
		.m_tdata(y), .m_tvalid(yv), .m_tready(yr));
	always_ff @(posedge clk) begin
		if (rst) x <= 0;
		else begin
			if (xv && xr) x <= x + 1;
			if ((yv[0] + yv[1] + yv[2]) > 1) $display("ERROR two outputs valid at once");
			for (int k = 0; k < 3; k++)
				if (yv[k] && yr[k]) $display("O %0d %0d", k, y[8*k +: 8]);
		end
	end
endmodule
"""


def test_split_core_takes_unequal_parts(tmp_path):
    """qnn_split alone (Verilator): 1, 3 and 2 beats per pixel to outputs 0, 1, 2 under stalls
    on every side; every input beat leaves once, on its output, in order."""
    from vtb import build_tb, run_tb

    from hw.ops.base import RTL_DIR

    src = tmp_path / "src"
    src.mkdir()
    (src / "tb.sv").write_text(SPLIT_TB)
    (src / "qnn_split.sv").write_text((RTL_DIR / "qnn_split.sv").read_text())
    out = run_tb(build_tb(src, ["qnn_split.sv", "tb.sv"], tmp_path / "obj"), 6000)
    assert "ERROR" not in out
    outs = [tuple(map(int, ln.split()[1:])) for ln in out.splitlines() if ln.startswith("O ")]
    assert len(outs) > 1200
    expect = [(k, i & 0xFF) for i, k in zip(range(len(outs)), [0, 1, 1, 1, 2, 2] * (len(outs) // 6 + 1))]
    assert outs == expect
