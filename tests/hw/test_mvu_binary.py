"""qnn_mvu_binary (hw/rtl) against intsim: FINN's binary MVAU cases (XNOR popcount with
BINARY or BIPOLAR operands, -1/+1 and -1/0/+1 weights times integer inputs), with and without embedded
thresholds, random sizes and folding, with and without random stalls. Layers are chained
so that one Verilator build covers several cases (a build takes ~5-8 s on 2 cores)."""
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
from hw.layertest import simulate_layer
from hw.ops import open_rtl_layers
from hw.ops.mvu_binary import MVAU_binary_rtl


def _acc_type(mode: str, mw: int, idt: DataType) -> DataType:
    """popcount: 0..MW; sum of +-x: within +-MW * max|x|."""
    if mode == "xnor":
        return DataType[f"UINT{mw.bit_length()}"]
    m = max(abs(int(idt.min())), abs(int(idt.max()))) * mw
    return DataType[f"INT{m.bit_length() + 1}"]


def mvau_node(i, mw, mh, pe, simd, idt, wdt, odt, *, xnor=False, n_thr=0, act_val=0, rng,
              mem_mode="internal_decoupled", weights=None):
    """MVAU_hls_<i> (x<i> -> x<i+1>) as FINN's converters make it; n_thr = 0: no activation.
    Returns the node, its initializers and the datatypes of its tensors."""
    idt, wdt = DataType[idt], DataType[wdt]
    mode = "xnor" if xnor or (idt.name == "BIPOLAR" and wdt.name == "BIPOLAR") else "sum"
    adt = _acc_type(mode, mw, idt)
    if weights is None:
        weights = rng.integers(0, 2, (mw, mh)) if xnor else rng.choice([-1, 1], (mw, mh))
    x, y, w, t = f"x{i}", f"x{i + 1}", f"w{i}", f"t{i}"
    inits = [helper.make_tensor(w, TensorProto.FLOAT, [mw, mh], weights.astype(np.float32).ravel())]
    dtypes = {x: idt, w: wdt}
    if n_thr:
        # sorted per channel, spread a little beyond the accumulator range (clipped by the op)
        lo, hi = (0, mw) if mode == "xnor" else (int(adt.min()) // 4, int(adt.max()) // 4)
        thr = np.sort(rng.integers(lo - 2, hi + 3, (mh, n_thr)), axis=1)
        inits.append(helper.make_tensor(t, TensorProto.FLOAT, [mh, n_thr], thr.astype(np.float32).ravel()))
        dtypes[t] = DataType["INT32"]
    odt = adt.name if not n_thr else odt
    dtypes[y] = DataType[odt]
    node = helper.make_node(
        "MVAU_hls", [x, w] + ([t] if n_thr else []), [y], name=f"MVAU_hls_{i}",
        domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow", MW=mw, MH=mh, PE=pe, SIMD=simd,
        inputDataType=idt.name, weightDataType=wdt.name, outputDataType=odt, accDataType=adt.name,
        ActVal=act_val, binaryXnorMode=int(xnor), noActivation=int(not n_thr), mem_mode=mem_mode,
        numInputVectors=[1])
    return node, inits, dtypes


def mvau_model(layers: list[dict], rng) -> ModelWrapper:
    """A chain of MVAU_hls layers; each dict holds mvau_node's arguments."""
    nodes, inits, dtypes = [], [], {}
    for i, kw in enumerate(layers):
        n, ini, dts = mvau_node(i, rng=rng, **kw)
        nodes.append(n)
        inits += ini
        dtypes.update(dts)
    k = len(layers)
    graph = helper.make_graph(
        nodes, "mvau", [helper.make_tensor_value_info("x0", TensorProto.FLOAT, [1, layers[0]["mw"]])],
        [helper.make_tensor_value_info(f"x{k}", TensorProto.FLOAT, [1, layers[-1]["mh"]])], inits)
    m = ModelWrapper(qonnx_make_model(graph))
    for i, kw in enumerate(layers[:-1]):
        m.set_tensor_shape(f"x{i + 1}", [1, kw["mh"]])
    for name, dt in dtypes.items():
        m.set_tensor_datatype(name, dt)
    return m


def with_fifos(m: ModelWrapper, depth: int = 32) -> ModelWrapper:
    """FINN's RTL FIFOs between the layers (as the flow inserts them), deep enough to
    hold a vector while the next layer replays its previous one."""
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    m = m.transform(InsertFIFO(create_shallow_fifos=True))
    for node in m.graph.node:
        if node.op_type == "StreamingFIFO":
            inst = getCustomOp(node)
            inst.set_nodeattr("preferred_impl_style", "rtl")
            inst.set_nodeattr("depth", depth)
    return m.transform(SpecializeLayers("xc7z020clg400-1")).transform(GiveUniqueNodeNames())


def random_inputs(dt: str, n: int, mw: int, rng) -> np.ndarray:
    dt = DataType[dt]
    if dt.name == "BIPOLAR":
        return rng.choice([-1, 1], (n, mw))
    # extremes often: they reach the ends of the accumulator range
    pool = np.array([int(dt.min()), int(dt.max()), *rng.integers(dt.min(), dt.max() + 1, 6)])
    return rng.choice(pool, (n, mw))


# Each chain is one simulation (one Verilator build): layer i's PE is layer i+1's SIMD and its
# MH layer i+1's MW, so the streams connect without width converters.
CHAINS = {  # name: per layer (input, weights, output (None: the accumulator), xnor mode, thresholds, ActVal)
    "int_inputs": [
        ("UINT8", "BIPOLAR", "BIPOLAR", False, 1, 0),    # -1/+1 weights x integers, thresholds
        ("BIPOLAR", "BIPOLAR", "BIPOLAR", False, 1, 0),  # BIPOLAR x BIPOLAR: popcount, like xnor
        ("BIPOLAR", "BIPOLAR", "INT2", False, 3, -2),    # three thresholds, signed output
        ("INT2", "INT2", None, False, 0, 0),             # -1/+1 weights typed INT2, signed inputs
    ],
    "ternary": [  # "TERNARY": INT2 weights drawn from -1/0/+1 (the core's TERNARY mode)
        ("UINT8", "TERNARY", "UINT2", False, 3, 0),      # tfc-w2a2's first layer, thresholds
        ("UINT2", "TERNARY", "INT2", False, 3, -2),      # its hidden layers (signed output here)
        ("INT2", "TERNARY", None, False, 0, 0),          # signed inputs, the accumulator out
    ],
    "xnor": [
        ("BINARY", "BINARY", "BINARY", True, 1, 0),      # binaryXnorMode, thresholds
        ("BINARY", "BINARY", "UINT2", True, 3, 0),
        ("UINT2", "BIPOLAR", "BINARY", False, 1, 0),     # unsigned inputs
        ("BINARY", "BINARY", None, True, 0, 0),          # popcount out (tfc-w1a1's layers)
    ],
}


def chain_layers(spec, rng) -> list[dict]:
    simd, sf = int(rng.choice([3, 5, 8])), int(rng.integers(1, 4))
    layers = []
    for idt, wdt, odt, xnor, n_thr, act_val in spec:
        pe, nf = int(rng.integers(1, 5)), int(rng.integers(2, 4))
        extra = {}
        if wdt == "TERNARY":  # zeros often, a row of each value somewhere
            wdt, w = "INT2", rng.choice([-1, 0, 0, 1], (simd * sf, pe * nf))
            w[:, 0], w[0, :] = 0, 1
            extra["weights"] = w
        layers.append(dict(mw=simd * sf, mh=pe * nf, pe=pe, simd=simd, idt=idt, wdt=wdt, odt=odt, xnor=xnor,
                           n_thr=n_thr, act_val=act_val, **extra))
        simd, sf = pe, nf
    return layers


@pytest.mark.parametrize("chain", list(CHAINS))
def test_mvu_binary_core_matches_intsim(chain, tmp_path):
    rng = np.random.default_rng(sum(map(ord, chain)))
    layers = chain_layers(CHAINS[chain], rng)
    m = mvau_model(layers, rng)
    m, moved, kept = open_rtl_layers(m)
    assert set(moved.values()) == {"MVAU_binary_rtl"} and len(moved) == len(layers) and not kept, kept
    x = random_inputs(layers[0]["idt"], 60, layers[0]["mw"], rng)
    ref = sim.run(m, x)
    folds = ", ".join(f"{d['mw']}x{d['mh']}/SIMD{d['simd']}/PE{d['pe']}" for d in layers)
    exp = [getCustomOp(n).get_exp_cycles() for n in m.graph.node]
    assert exp == [d["mw"] // d["simd"] * d["mh"] // d["pe"] for d in layers]
    with finn_build_dir(tmp_path / "finn"):  # FINN's FIFO code generation reads FINN's settings
        m = with_fifos(m)
        r = simulate_layer(m, x, tmp_path / "s0", stall=0.0)
        np.testing.assert_array_equal(r.outputs, ref, err_msg=folds)
        # a layer takes no input while it replays one (as FINN's MVAU): FIFOs in between let
        # the slowest layer set the pace, at exactly its MH/PE * MW/SIMD cycles
        assert r.cycles_per_image == max(exp), (exp, folds)
        r = simulate_layer(m, x, tmp_path / "s3", stall=0.3, seed=1)
        np.testing.assert_array_equal(r.outputs, ref, err_msg=folds + ", stalls")


def test_mvu_binary_supports_exactly_its_cases():
    rng = np.random.default_rng(0)

    def why(**kw):
        layer = dict(mw=4, mh=2, pe=1, simd=2, idt="UINT4", wdt="INT2", odt=None)
        layer.update(kw)
        m = mvau_model([layer], rng)
        return MVAU_binary_rtl.supports(m.graph.node[0], m)

    assert why() is None
    assert why(idt="BINARY", wdt="BINARY", xnor=True) is None
    assert why(weights=np.array([[1, -1], [0, 1], [1, 1], [-1, -1]])) is None         # ternary
    assert "values" in why(weights=np.array([[1, -1], [-2, 1], [1, 1], [-1, -1]]))    # INT2's -2
    assert "0/1" in why(idt="BINARY", wdt="BINARY", xnor=True, weights=np.full((4, 2), -1))
    assert "mem_mode" in why(mem_mode="external")
    assert "matmul" in why(idt="BIPOLAR", wdt="INT2")
    assert "do not fit" in why(odt="UINT2", n_thr=4)                                   # counts 0..4


def test_mvu_binary_xnor_accumulator_is_popcount():
    """FINN sizes an XNOR accumulator for the +-1 dot product (INT7 for 64 inputs); popcount
    reaches 64, so the op sizes it 0..MW."""
    rng = np.random.default_rng(1)
    m = mvau_model([dict(mw=64, mh=4, pe=1, simd=8, idt="BINARY", wdt="BINARY", odt=None, xnor=True,
                         weights=np.ones((64, 4), dtype=np.int64))], rng)
    m, _, _ = open_rtl_layers(m)
    inst = getCustomOp(m.graph.node[0])
    assert inst.minimize_accumulator_width(m).name == "UINT8"  # graph output: whole bytes
    x = np.ones((1, 64), dtype=np.int64)
    assert sim.run(m, x).max() == 64


def test_mvu_binary_executes_in_python_as_finn_mvau():
    """flow's hw_python stage strips `_rtl` and runs FINN's python execution: MVAU_binary is
    FINN's MVAU under that name, and agrees with intsim."""
    from finn.core.onnx_exec import execute_onnx

    from flow.stages import generic_hw_layers

    rng = np.random.default_rng(2)
    layers = chain_layers(CHAINS["int_inputs"], rng)
    m, _, _ = open_rtl_layers(mvau_model(layers, rng))
    x = random_inputs(layers[0]["idt"], 8, layers[0]["mw"], rng)
    g = generic_hw_layers(m)
    assert {n.op_type for n in g.graph.node} == {"MVAU_binary"}
    y = np.stack([execute_onnx(g, {"x0": xi[None].astype(np.float32)})[g.graph.output[0].name][0] for xi in x])
    np.testing.assert_array_equal(y, sim.run(m, x))


def _mvau_rtl(wdt: str, weights: np.ndarray, idt: str = "UINT4") -> ModelWrapper:
    """One FINN MVAU_rtl (what SpecializeLayers makes of a +-1 x integer layer, the weights
    labelled INT2 by FINN's width minimisation)."""
    rng = np.random.default_rng(3)
    mw, mh = weights.shape
    m = mvau_model([dict(mw=mw, mh=mh, pe=1, simd=2, idt=idt, wdt=wdt, odt=None, weights=weights)], rng)
    node = m.graph.node[0]
    node.op_type, node.domain = "MVAU_rtl", "finn.custom_op.fpgadataflow.rtl"
    return m


def test_binary_weights_leave_finn_dsp_unit():
    """+-1 weights x integers on FINN's MVAU_rtl (DSP slices) move onto our LUT core by default;
    ternary weights only with lut_ternary (--binary-impl lut), wider ones never; everything
    stays with lut_binary=False (--binary-impl dsp). A FINN RTL layer that stays is not
    reported as kept on HLS."""
    rng = np.random.default_rng(4)
    pm1 = rng.choice([-1, 1], (4, 2))
    m, moved, kept = open_rtl_layers(_mvau_rtl("INT2", pm1))
    assert moved == {"MVAU_hls_0": "MVAU_binary_rtl"} and not kept
    inst = getCustomOp(m.graph.node[0])
    assert inst.dsp_estimation("xc7z020clg400-1") == 0 and inst.get_nodeattr("ternaryWeights") == 0
    tern = np.array([[1, -1], [0, 1], [1, 1], [-1, -1]])
    for w in (tern, rng.integers(-7, 8, (4, 2))):
        m, moved, kept = open_rtl_layers(_mvau_rtl("INT4", w))
        assert m.graph.node[0].op_type == "MVAU_rtl" and not moved and not kept
    m, moved, _ = open_rtl_layers(_mvau_rtl("INT2", tern), lut_ternary=True)
    assert moved == {"MVAU_hls_0": "MVAU_binary_rtl"}
    inst = getCustomOp(m.graph.node[0])
    assert inst.get_nodeattr("ternaryWeights") == 1 and inst.dsp_estimation("xc7z020clg400-1") == 0
    m, moved, _ = open_rtl_layers(_mvau_rtl("INT4", rng.integers(-7, 8, (4, 2))), lut_ternary=True)
    assert not moved
    for w in (pm1, tern):
        m, moved, _ = open_rtl_layers(_mvau_rtl("INT2", w), lut_binary=False, lut_ternary=True)
        assert m.graph.node[0].op_type == "MVAU_rtl" and not moved


def test_over_dsp_budget_names_the_binary_impl_that_frees_them(tmp_path):
    """A design over the DSP budget with FINN's DSP units on -1/+1 or ternary weights: the fit
    error names the --binary-impl that moves them onto LUTs (none where nothing would move)."""
    from flow.config import BuildConfig
    from flow.errors import FlowError
    from flow.fit import check_fit
    from flow.steps.hardware import _dsp_hint

    rng = np.random.default_rng(5)
    pm1, tern = rng.choice([-1, 1], (4, 2)), np.array([[1, -1], [0, 1], [1, 1], [-1, -1]])

    def hint(impl, w):
        return _dsp_hint(_mvau_rtl("INT2", w), BuildConfig(out=tmp_path / "b", model="tfc-w2a2", binary_impl=impl))

    assert hint("xnor", tern) == "--binary-impl lut moves MVAU_hls_0 off DSPs onto LUTs"
    assert hint("dsp", pm1) == "--binary-impl xnor moves MVAU_hls_0 off DSPs onto LUTs"
    assert hint("dsp", tern).startswith("--binary-impl lut ")
    assert hint("xnor", pm1) == "" and hint("lut", tern) == ""
    assert _dsp_hint(_mvau_rtl("INT4", rng.integers(-7, 8, (4, 2))),
                     BuildConfig(out=tmp_path / "b", model="tfc-w2a2")) == ""
    fit = {"part": "xc7z020clg400-1", "source": "FINN estimate", "over": ["DSP"],
           "resources": {"DSP": {"used": 300, "available": 220, "share": 300 / 220}}}
    with pytest.raises(FlowError, match=r"DSP 300 of 220 \(136 %\); --binary-impl lut moves MVAU_hls_0"):
        check_fit(fit, False, hint("xnor", tern))
    check_fit(fit, True, hint("xnor", tern))  # --allow-over-budget


def _thresholding(i: int, ch: int, n_thr: int, idt: str, odt: str, act_val: int, rng, lo: int, hi: int):
    thr = np.sort(rng.integers(lo, hi + 1, (ch, n_thr)), axis=1)
    node = helper.make_node(
        "Thresholding_rtl", [f"x{i}", f"t{i}"], [f"x{i + 1}"], name=f"Thresholding_rtl_{i}",
        domain="finn.custom_op.fpgadataflow.rtl", backend="fpgadataflow", NumChannels=ch, PE=1,
        numSteps=n_thr, inputDataType=idt, weightDataType="INT32", outputDataType=odt, ActVal=act_val,
        numInputVectors=[1])
    return node, helper.make_tensor(f"t{i}", TensorProto.FLOAT, [ch, n_thr], thr.astype(np.float32).ravel())


@pytest.mark.parametrize("odt,n_thr,act_val", [("BIPOLAR", 1, 0), ("INT2", 3, -2)])
def test_absorbed_thresholds_compute_the_same(odt, n_thr, act_val, tmp_path):
    """A binary layer's accumulators read only by a thresholding layer: the thresholds move into
    the core (one layer, no accumulator stream); intsim and the simulated RTL agree with the
    two-layer graph, stalls included. A second reader of the accumulators keeps them apart."""
    from hw.ops import absorb_thresholds

    rng = np.random.default_rng(5 + n_thr)
    layer = dict(mw=12, mh=6, pe=2, simd=4, idt="UINT8", wdt="BIPOLAR", odt=None)
    m = mvau_model([layer], rng)
    adt = m.get_tensor_datatype("x1")
    tn, ti = _thresholding(1, 6, n_thr, adt.name, odt, act_val, rng, int(adt.min()) // 3, int(adt.max()) // 3)
    m.graph.node.append(tn)
    m.graph.initializer.append(ti)
    m.graph.output[0].name = "x2"
    m.set_tensor_shape("x1", [1, 6])
    m.set_tensor_datatype("t1", DataType["INT32"])
    m.set_tensor_datatype("x2", DataType[odt])
    m, _, _ = open_rtl_layers(m)
    x = random_inputs("UINT8", 40, 12, rng)
    ref = sim.run(m, x)
    m, absorbed = absorb_thresholds(m)
    assert absorbed == ["Thresholding_rtl_1"] and [n.op_type for n in m.graph.node] == ["MVAU_binary_rtl"]
    inst = getCustomOp(m.graph.node[0])
    assert inst.get_nodeattr("noActivation") == 0 and inst.get_nodeattr("outputDataType") == odt
    np.testing.assert_array_equal(sim.run(m, x), ref)
    with finn_build_dir(tmp_path / "finn"):
        for stall in (0.0, 0.3):
            r = simulate_layer(m, x, tmp_path / f"s{stall}", stall=stall, seed=2)
            np.testing.assert_array_equal(r.outputs, ref, err_msg=f"stall {stall}")

    m2 = mvau_model([layer], rng)
    tn, ti = _thresholding(1, 6, n_thr, adt.name, odt, act_val, rng, -5, 5)
    m2.graph.node.append(tn)
    m2.graph.initializer.append(ti)
    m2.graph.output.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 6]))
    m2, _, _ = open_rtl_layers(m2)
    m2, absorbed = absorb_thresholds(m2)  # x1 is also a graph output: both layers stay
    assert not absorbed and len(m2.graph.node) == 2
