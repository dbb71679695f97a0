"""Quantized MLPs in the shapes of Brevitas's bnn_pynq TFC/SFC/LFC (784-N-N-N-10)."""
from __future__ import annotations

import torch
from torch import nn
from brevitas import nn as qnn

from .quant import Preset

MLP_WIDTHS = {"tfc": 64, "sfc": 256, "lfc": 1024}


class QuantMLP(nn.Module):
    """input quantizer -> [QuantLinear -> BatchNorm -> QuantReLU] x depth -> QuantLinear.

    Hidden layers have no bias (BatchNorm folds into FINN's thresholds); the last layer
    has a per-tensor weight scale and no bias, so its output is one integer accumulator
    times one scale: the integers are what the accelerator produces, the scale is the
    float tail kept in software, and argmax over the integers equals argmax over logits.
    """

    def __init__(self, preset: Preset, width: int = 64, depth: int = 3,
                 in_features: int = 784, classes: int = 10, dropout: float = 0.0):
        super().__init__()
        self.input_quant = qnn.QuantIdentity(act_quant=preset.input_quant(), return_quant_tensor=True)
        layers: list[nn.Module] = []
        fan_in = in_features
        for _ in range(depth):
            layers += [
                qnn.QuantLinear(fan_in, width, bias=False, weight_quant=preset.weight_quant(True)),
                nn.BatchNorm1d(width),
                qnn.QuantReLU(act_quant=preset.act_quant(), return_quant_tensor=True),
                nn.Dropout(dropout),  # always present: state-dict keys must not depend on it
            ]
            fan_in = width
        self.features = nn.Sequential(*layers)
        self.classifier = qnn.QuantLinear(fan_in, classes, bias=False,
                                          weight_quant=preset.weight_quant(False),
                                          return_quant_tensor=True)

    def forward(self, x: torch.Tensor):
        x = self.input_quant(x if x.dim() == 2 else x.flatten(1))
        x = self.features(x)
        out = self.classifier(x)
        return out.value if hasattr(out, "value") else out

    def forward_quant(self, x: torch.Tensor):
        """The classifier's QuantTensor: integers = value / scale."""
        x = self.input_quant(x if x.dim() == 2 else x.flatten(1))
        return self.classifier(self.features(x))
