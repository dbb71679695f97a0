"""Quantized convolutional networks for 28x28x1 MNIST: LeNet-5 and a CNV-style net.

Same conventions as `models.mlp.QuantMLP`: the input is quantized by the preset's input
quantizer (pixels k/256), hidden convolutions and linear layers have no bias (BatchNorm
folds into FINN's thresholds), each is followed by BatchNorm and the preset's activation
(`Preset.act_layer()`: a QuantReLU, sign for w1a1), and the classifier has a per-tensor
weight scale and no bias, so the output is one integer accumulator times one scale (the
float tail kept in software). A float preset (fp32) gives the same net unquantized.
"""
from __future__ import annotations

import torch
from torch import nn
from brevitas import nn as qnn

from .errors import ModelError
from .quant import Preset

CNN_ARCHS = ("lenet5", "cnv", "resnet", "mobilenet")


def _conv_block(preset: Preset, cin: int, cout: int, k: int, padding: int = 0,
                per_channel: bool = True) -> list[nn.Module]:
    return [
        qnn.QuantConv2d(cin, cout, k, padding=padding, bias=False, weight_quant=preset.weight_quant(per_channel)),
        nn.BatchNorm2d(cout),
        preset.act_layer(),
    ]


def _fc_block(preset: Preset, fin: int, fout: int, dropout: float, per_channel: bool = True) -> list[nn.Module]:
    return [
        qnn.QuantLinear(fin, fout, bias=False, weight_quant=preset.weight_quant(per_channel)),
        nn.BatchNorm1d(fout),
        preset.act_layer(),
        nn.Dropout(dropout),  # always present: state-dict keys must not depend on it
    ]


class QuantCNN(nn.Module):
    """input quantizer -> conv features (NCHW) -> flatten -> FC features -> classifier."""

    def __init__(self, preset: Preset, features: list[nn.Module], fc: list[nn.Module],
                 classifier_in: int, classes: int = 10, in_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.in_shape = tuple(in_shape)
        quantized = preset.buildable
        self.input_quant = (qnn.QuantIdentity(act_quant=preset.input_quant(), return_quant_tensor=True)
                            if quantized else nn.Identity())
        self.features = nn.Sequential(*features)
        self.fc = nn.Sequential(*fc)
        self.classifier = qnn.QuantLinear(classifier_in, classes, bias=False,
                                          weight_quant=preset.weight_quant(False),
                                          return_quant_tensor=quantized)

    def _body(self, x: torch.Tensor):
        if x.dim() == 2:  # (N, 784) flattened pixels
            x = x.reshape((x.shape[0],) + self.in_shape)
        x = self.input_quant(x)
        x = self.features(x)
        x = self.fc(x.flatten(1))
        return self.classifier(x)

    def forward(self, x: torch.Tensor):
        out = self._body(x)
        return out.value if hasattr(out, "value") else out

    def forward_quant(self, x: torch.Tensor):
        """The classifier's output (a QuantTensor for quantized presets: integers = value / scale)."""
        return self._body(x)


class LeNet5(QuantCNN):
    """conv5x5(6, pad 2) -> pool2 -> conv5x5(16) -> pool2 -> FC120 -> FC84 -> FC10."""

    def __init__(self, preset: Preset, classes: int = 10, dropout: float = 0.0, per_channel: bool = True):
        pc = per_channel
        features = [
            *_conv_block(preset, 1, 6, 5, padding=2, per_channel=pc), nn.MaxPool2d(2),    # 28 -> 28 -> 14
            *_conv_block(preset, 6, 16, 5, per_channel=pc), nn.MaxPool2d(2),              # 14 -> 10 -> 5
        ]
        fc = [*_fc_block(preset, 16 * 5 * 5, 120, dropout, pc), *_fc_block(preset, 120, 84, dropout, pc)]
        super().__init__(preset, features, fc, 84, classes)


class CNV(QuantCNN):
    """CNV-style, sized for 28x28: conv3x3 32, 32, pool2, conv3x3 64, 64, pool2 -> FC256 -> FC10."""

    def __init__(self, preset: Preset, classes: int = 10, dropout: float = 0.0, per_channel: bool = True):
        pc = per_channel
        features = [
            *_conv_block(preset, 1, 32, 3, per_channel=pc), *_conv_block(preset, 32, 32, 3, per_channel=pc),
            nn.MaxPool2d(2),                                                                    # 28->26->24->12
            *_conv_block(preset, 32, 64, 3, per_channel=pc), *_conv_block(preset, 64, 64, 3, per_channel=pc),
            nn.MaxPool2d(2),                                                                    # 12->10->8->4
        ]
        fc = _fc_block(preset, 64 * 4 * 4, 256, dropout, pc)
        super().__init__(preset, features, fc, 256, classes)


def build_cnn(arch: str, preset: Preset, dropout: float = 0.0, per_channel: bool = True) -> QuantCNN:
    """A freshly initialised conv net: arch in CNN_ARCHS; per_channel=False: one
    weight scale per layer."""
    if arch == "lenet5":
        return LeNet5(preset, dropout=dropout, per_channel=per_channel)
    if arch == "cnv":
        return CNV(preset, dropout=dropout, per_channel=per_channel)
    if arch == "resnet":
        from .resnet import ResNet

        return ResNet(preset, dropout=dropout, per_channel=per_channel)
    if arch == "mobilenet":
        from .mobilenet import MobileNet

        return MobileNet(preset, dropout=dropout, per_channel=per_channel)
    raise ModelError(f"unknown conv architecture {arch!r}; valid: {', '.join(CNN_ARCHS)}")


def calibrate(module: nn.Module, images: torch.Tensor, batch: int = 128) -> nn.Module:
    """Set BatchNorm statistics (exact averages) and activation scales from `images`
    (float, as the module sees them) by forward passes in training mode, without any
    gradient step: a randomly initialised network then produces non-degenerate
    activations (tests, demos). Returns the module in eval mode."""
    momenta = {}
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            momenta[m] = m.momentum
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    module.train()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            module(images[i:i + batch])
    for m, mom in momenta.items():
        m.momentum = mom
    return module.eval()
