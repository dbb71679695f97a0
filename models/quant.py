"""Quantizer presets: one place per scheme, each a small frozen description.

A preset says how weights, hidden activations and the network input are quantized.
`weight_quant(...)`/`act_quant(...)` turn it into Brevitas quantizers. All activation
quantizers round half-to-even (Brevitas's ROUND), which the flow reproduces exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

from brevitas.quant import (
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    Uint8ActPerTensorFloat,
)

from .errors import ModelError


@dataclass(frozen=True)
class Preset:
    name: str
    weight_bits: int
    act_bits: int
    input_bits: int = 8
    description: str = ""

    def weight_quant(self, per_channel: bool = True):
        """Signed, narrow-range integer weights (2 bits: ternary {-1, 0, +1})."""
        base = Int8WeightPerChannelFloat if per_channel else Int8WeightPerTensorFloat
        return base.let(bit_width=self.weight_bits, narrow_range=True)

    def act_quant(self):
        """Unsigned activations after ReLU, per-tensor learned scale."""
        return Uint8ActPerTensorFloat.let(bit_width=self.act_bits)

    def input_quant(self):
        """The network input (pixels k/256) as an unsigned integer of `input_bits`."""
        return Uint8ActPerTensorFloat.let(bit_width=self.input_bits)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("w2a2", 2, 2, description="ternary weights {-1,0,+1} x scale, 2-bit activations"),
        Preset("w4a4", 4, 4, description="4-bit linear weights and activations"),
        Preset("w8a8", 8, 8, description="8-bit linear weights and activations"),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(
            f"unknown preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}"
        ) from None
