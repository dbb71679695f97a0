"""A small quantized depthwise-separable network for 28x28x1 MNIST (`mobilenet-<preset>`).

stem conv3x3(16, pad 1) -> max pool 2 -> three MobileNet-v1 blocks (depthwise conv3x3 then
pointwise conv1x1, each with BatchNorm and the preset's activation): 16 -> 32 at 14x14,
32 -> 64 with a stride-2 depthwise conv (14 -> 7), 64 -> 64 -> global average pool ->
classifier. Conventions of `models.cnn`: convolutions without bias, per-channel weight
scales, per-tensor activation quantizers, a classifier with one scale and no bias.

Depthwise layers lower to FINN's VVAU, which qnnflow's qnn_vvu core implements on 7-series
parts (FINN's own RTL VVAU is Versal-only).
"""
from __future__ import annotations

from torch import nn
from brevitas import nn as qnn

from .cnn import QuantCNN
from .quant import Preset


def _conv_bn_act(preset: Preset, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 per_channel: bool = True) -> list[nn.Module]:
    return [
        qnn.QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False,
                        weight_quant=preset.weight_quant(per_channel)),
        nn.BatchNorm2d(cout),
        preset.act_layer(),
    ]


def dws_block(preset: Preset, cin: int, cout: int, stride: int, per_channel: bool = True) -> list[nn.Module]:
    """MobileNet-v1's unit: depthwise 3x3 (one filter per channel) then pointwise 1x1."""
    return (_conv_bn_act(preset, cin, cin, 3, stride, groups=cin, per_channel=per_channel)
            + _conv_bn_act(preset, cin, cout, 1, per_channel=per_channel))


class MobileNet(QuantCNN):
    """stem 16 -> pool 2 -> dws 32 -> dws 64 (stride 2) -> dws 64 -> global average pool -> FC 10."""

    def __init__(self, preset: Preset, classes: int = 10, dropout: float = 0.0, per_channel: bool = True):
        pc = per_channel
        features = [
            *_conv_bn_act(preset, 1, 16, 3, per_channel=pc), nn.MaxPool2d(2),   # 28 -> 14
            *dws_block(preset, 16, 32, 1, pc),                                  # 14
            *dws_block(preset, 32, 64, 2, pc),                                  # 14 -> 7
            *dws_block(preset, 64, 64, 1, pc),                                  # 7
            nn.AdaptiveAvgPool2d(1),
        ]
        super().__init__(preset, features, [nn.Dropout(dropout)], 64, classes)
