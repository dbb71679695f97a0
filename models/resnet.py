"""A small quantized residual network for 28x28x1 MNIST (`resnet-<preset>`).

stem conv3x3(16, pad 1) -> max pool 2 -> identity block (16) -> downsampling block (32,
stride 2, 1x1-conv shortcut) -> global average pool -> classifier. Conventions of
`models.cnn`: convolutions without bias, each followed by BatchNorm and the preset's
activation; the classifier has a per-tensor scale and no bias.

The two operands of every residual add share one activation quantizer (one module used
twice, as Brevitas's own residual blocks share theirs): both are integers on the same
scale, so the add is an integer add in hardware (qnnflow's AddStreams core). For the
identity block that quantizer is the one that produced the block's input.
"""
from __future__ import annotations

from torch import nn
from brevitas import nn as qnn

from .cnn import QuantCNN
from .quant import Preset


def _conv(preset: Preset, cin: int, cout: int, k: int, stride: int = 1, per_channel: bool = True) -> nn.Module:
    return qnn.QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False,
                           weight_quant=preset.weight_quant(per_channel))


class BasicBlock(nn.Module):
    """out = act_out(shortcut + join(bn2(conv2(act1(bn1(conv1(x))))))), shortcut = x
    (identity: x is already on `join`'s scale) or join(bn(conv1x1, stride)(x))."""

    def __init__(self, preset: Preset, cin: int, cout: int, stride: int, join: nn.Module | None,
                 per_channel: bool = True):
        super().__init__()
        identity = stride == 1 and cin == cout
        if identity and join is None:
            raise ValueError("an identity block needs the quantizer of its input as its join quantizer")
        self.conv1 = _conv(preset, cin, cout, 3, stride, per_channel)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = preset.act_layer()
        self.conv2 = _conv(preset, cout, cout, 3, 1, per_channel)
        self.bn2 = nn.BatchNorm2d(cout)
        self.join = join if identity else preset.act_layer()
        self.down = None if identity else nn.Sequential(_conv(preset, cin, cout, 1, stride, per_channel),
                                                         nn.BatchNorm2d(cout))
        self.act_out = preset.act_layer()

    def forward(self, x):
        y = self.join(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        s = x if self.down is None else self.join(self.down(x))
        return self.act_out(y + s)


class ResNet(QuantCNN):
    """stem 16 -> pool 2 -> block 16 -> block 32 (stride 2) -> global average pool -> FC 10."""

    def __init__(self, preset: Preset, classes: int = 10, dropout: float = 0.0, per_channel: bool = True):
        pc = per_channel
        stem_act = preset.act_layer()
        features = [
            _conv(preset, 1, 16, 3, 1, pc), nn.BatchNorm2d(16), stem_act, nn.MaxPool2d(2),   # 28 -> 14
            BasicBlock(preset, 16, 16, 1, stem_act, pc),                                     # 14
            BasicBlock(preset, 16, 32, 2, None, pc),                                         # 14 -> 7
            nn.AdaptiveAvgPool2d(1),
        ]
        super().__init__(preset, features, [nn.Dropout(dropout)], 32, classes)
