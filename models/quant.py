"""Quantizer presets: one place per scheme, each a small frozen description.

A preset says how weights, hidden activations and the network input are quantized;
its methods turn that into Brevitas quantizers and activation layers. Activation
quantizers round half-to-even (Brevitas's ROUND), which the flow reproduces exactly.

  w1a1  binary: sign weights with a per-channel scale mean|W| (XNOR-Net), sign activations
  w2a2  ternary weights {-1, 0, +1} x scale, 2-bit activations
  w4a4, w8a8  linear integer weights and activations
  po2   power-of-two weights {0, +-2^k} (INQ, 5 bits: 8 exponents and zero), 8-bit activations;
        trained by incremental network quantization (models/inq.py)
  fp32  float reference (trained the same way; not buildable)
  wBaC  any other linear preset: B-bit weights (2..8), C-bit activations (2..8), e.g. w3a8
        (compression studies, models/compress: linear quantization at 8..3 bits, mixed precision)
  mix:P1,P2,...  one preset per layer (hidden layers then classifier), e.g. mix:w8a8,w2a2,w2a2,w4a4
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from brevitas import nn as qnn
from brevitas.core.quant import QuantType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.stats import StatsOp
from brevitas.quant import (
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    Uint8ActPerTensorFloat,
)
from torch import nn

from .errors import ModelError

PO2_EXPONENTS_BELOW_MAX = 7  # INQ with 5 bits: 2^-7 .. 2^0 and zero


@dataclass(frozen=True)
class Preset:
    name: str
    weight_bits: int            # 0: float
    act_bits: int               # 0: float; 1: sign (bipolar)
    weight_kind: str = "int"    # "int" | "binary" | "po2" | "float" ("float_weights": po2 during INQ)
    input_bits: int = 8
    description: str = ""

    @property
    def buildable(self) -> bool:
        return self.weight_kind != "float"

    def weight_quant(self, per_channel: bool = True):
        """Brevitas weight quantizer (None: float weights)."""
        if self.weight_kind in ("float", "float_weights"):
            return None
        if self.weight_kind == "binary":  # sign(W) * mean|W| per output channel (XNOR-Net)
            base = Int8WeightPerChannelFloat if per_channel else Int8WeightPerTensorFloat
            return base.let(bit_width=1, quant_type=QuantType.BINARY, scaling_stats_op=StatsOp.AVE,
                            narrow_range=False)
        if self.weight_kind == "po2":  # INQ values 2^k, k <= 0 (weights normalised so n1 = 0): 2^-7 grid
            return Int8WeightPerTensorFloat.let(bit_width=9, narrow_range=True, scaling_impl_type=ScalingImplType.CONST,
                                                scaling_const=255 * 2.0 ** -PO2_EXPONENTS_BELOW_MAX)
        base = Int8WeightPerChannelFloat if per_channel else Int8WeightPerTensorFloat
        return base.let(bit_width=self.weight_bits, narrow_range=True)

    def act_layer(self) -> nn.Module:
        """The hidden activation: quantized ReLU, sign for binary nets, float ReLU for fp32."""
        if self.act_bits == 0:
            return nn.ReLU()
        if self.act_bits == 1:
            return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        return qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat.let(bit_width=self.act_bits),
                             return_quant_tensor=True)

    def input_quant(self):
        """The network input (pixels k/256) as an unsigned integer of `input_bits` (None: float)."""
        if self.weight_kind == "float":
            return None
        return Uint8ActPerTensorFloat.let(bit_width=self.input_bits)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("w1a1", 1, 1, "binary", description="binary weights (sign x mean|W|) and sign activations"),
        Preset("w2a2", 2, 2, description="ternary weights {-1,0,+1} x scale, 2-bit activations"),
        Preset("w4a4", 4, 4, description="4-bit linear weights and activations"),
        Preset("w8a8", 8, 8, description="8-bit linear weights and activations"),
        Preset("po2", 5, 8, "po2", description="power-of-two weights {0, +-2^k} by INQ (5 bits), 8-bit activations"),
        Preset("fp32", 0, 0, "float", description="float reference, trained the same way (not buildable)"),
    )
}


LINEAR_BITS = range(2, 9)  # the wBaC family: B, C in 2..8


def linear_preset(name: str) -> Preset | None:
    """`wBaC` with B, C in 2..8 (linear integer weights and activations), else None."""
    m = re.fullmatch(r"w(\d)a(\d)", name)
    if not m or int(m[1]) not in LINEAR_BITS or int(m[2]) not in LINEAR_BITS:
        return None
    return Preset(name, int(m[1]), int(m[2]),
                  description=f"{m[1]}-bit linear weights, {m[2]}-bit activations")


def is_preset(name: str) -> bool:
    return name in PRESETS or linear_preset(name) is not None


def get_preset(name: str) -> Preset:
    preset = PRESETS.get(name) or linear_preset(name)
    if preset is None:
        raise ModelError(
            f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}, wBaC (B, C in 2..8, e.g. w3a8) "
            "or mix:P1,P2,... (one per layer)")
    return preset


def layer_presets(name: str, layers: int) -> list[Preset]:
    """One preset per weight layer: a plain preset everywhere, or `mix:P1,...,Pn`."""
    if not name.startswith("mix:"):
        return [get_preset(name)] * layers
    parts = name[4:].split(",")
    if len(parts) != layers:
        raise ModelError(f"preset {name!r} names {len(parts)} layers; this architecture has {layers} "
                         f"weight layers (hidden layers, then the classifier)")
    presets = [get_preset(p) for p in parts]
    if any(p.weight_kind in ("float", "po2") for p in presets):
        raise ModelError(f"preset {name!r}: a mix takes integer or binary presets (w1a1, wBaC such as w2a2, w4a8)")
    return presets
