"""Quantized MLPs in the shapes of Brevitas's bnn_pynq TFC/SFC/LFC (784-N-N-N-10)."""
from __future__ import annotations

import torch
from brevitas import nn as qnn
from torch import nn

from .quant import Preset

MLP_WIDTHS = {"tfc": 64, "sfc": 256, "lfc": 1024}


class QuantMLP(nn.Module):
    """input quantizer -> [QuantLinear -> BatchNorm -> activation] x depth -> QuantLinear.

    `presets` holds one preset per weight layer (hidden layers, then the classifier); the
    input quantizer and the hidden activations follow each layer's preset. Hidden layers
    have no bias (BatchNorm folds into FINN's thresholds), each its own width (`width`: one
    for all or a list; structured pruning narrows them), with one weight scale per output
    channel (or per layer: per_channel=False); the classifier has a per-tensor
    weight scale and no bias, so its output is one integer accumulator times one scale:
    the integers are what the accelerator produces, the scale is the float tail kept in
    software, and argmax over the integers equals argmax over the logits.
    """

    def __init__(self, presets: list[Preset], width: int | list[int] = 64, in_features: int = 784,
                 classes: int = 10, dropout: float = 0.0, per_channel: bool = True):
        super().__init__()
        depth = len(presets) - 1
        widths = list(width) if isinstance(width, (list, tuple)) else [width] * depth
        quantized = presets[0].buildable
        self.input_quant = (qnn.QuantIdentity(act_quant=presets[0].input_quant(), return_quant_tensor=True)
                            if quantized else nn.Identity())
        layers: list[nn.Module] = []
        fan_in = in_features
        for p, width in zip(presets[:depth], widths):
            layers += [
                qnn.QuantLinear(fan_in, width, bias=False, weight_quant=p.weight_quant(per_channel)),
                nn.BatchNorm1d(width),
                p.act_layer(),
                nn.Dropout(dropout),  # always present: state-dict keys must not depend on it
            ]
            fan_in = width
        self.features = nn.Sequential(*layers)
        wq = presets[-1].weight_quant(False)
        self.classifier = qnn.QuantLinear(fan_in, classes, bias=False, weight_quant=wq,
                                          return_quant_tensor=quantized and wq is not None)

    def forward(self, x: torch.Tensor):
        out = self.forward_quant(x)
        return out.value if hasattr(out, "value") else out

    def forward_quant(self, x: torch.Tensor):
        """The classifier's output (a QuantTensor for quantized presets)."""
        x = self.input_quant(x if x.dim() == 2 else x.flatten(1))
        return self.classifier(self.features(x))
