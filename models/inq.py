"""Incremental network quantization (Zhou et al., ICLR'17): weights in {0, +-2^k}.

Per layer, the weights are partitioned by magnitude; the largest share is projected
onto powers of two and frozen, the rest is retrained; the share grows in steps
(50 %, 75 %, 87.5 %, 100 %). With b bits, a layer holds 0 and +-2^k for
n2 <= k <= n1, where n1 = floor(log2(4 max|W| / 3)) and n2 = n1 + 1 - 2^(b-1)/2.
Projection (the paper's rule): |w| -> beta where (alpha + beta)/2 <= |w| < 3 beta / 2
for adjacent levels alpha < beta (alpha = 0 below the smallest power).

The weights then are integers times 2^(n1-7) (b = 5): the po2 preset's 9-bit
fixed-point quantizer represents them exactly, so FINN receives integer weights.
"""
from __future__ import annotations

import math

import torch
from brevitas import nn as qnn

DEFAULT_BITS = 5
DEFAULT_SCHEDULE = (0.5, 0.75, 0.875, 1.0)


def exponent_range(w: torch.Tensor, bits: int = DEFAULT_BITS) -> tuple[int, int]:
    n1 = math.floor(math.log2(4.0 * float(w.abs().max()) / 3.0))
    return n1 + 1 - 2 ** (bits - 1) // 2, n1


def po2_project(w: torch.Tensor, n2: int, n1: int) -> torch.Tensor:
    """INQ's projection onto {0, +-2^n2, ..., +-2^n1}."""
    a = w.abs()
    k = torch.floor(torch.log2(a.clamp_min(2.0 ** (n2 - 2))))
    beta = torch.pow(2.0, k)
    q = torch.where(a >= 1.5 * beta, 2 * beta, beta)
    q = q.clamp(max=2.0 ** n1)
    q = torch.where(a >= 2.0 ** (n2 - 1), q.clamp(min=2.0 ** n2), torch.zeros_like(q))
    return torch.sign(w) * q


class INQ:
    """Holds each QuantLinear/QuantConv's frozen mask and values across the schedule."""

    def __init__(self, model: torch.nn.Module, bits: int = DEFAULT_BITS):
        self.layers = [m for m in model.modules() if isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d))]
        self.bits = bits
        self.masks = {id(m): torch.zeros_like(m.weight, dtype=torch.bool) for m in self.layers}
        self.values = {id(m): torch.zeros_like(m.weight) for m in self.layers}
        self.ranges = {}
        self._hooks = [m.weight.register_hook(self._grad_hook(m)) for m in self.layers]

    def _grad_hook(self, layer):
        def hook(grad):
            return grad.masked_fill(self.masks[id(layer)], 0.0)
        return hook

    @torch.no_grad()
    def quantize_share(self, share: float) -> None:
        """Freeze the largest `share` of each layer's weights at their power-of-two values."""
        for m in self.layers:
            key = id(m)
            if key not in self.ranges:  # the range comes from the full-precision weights
                self.ranges[key] = exponent_range(m.weight, self.bits)
            n2, n1 = self.ranges[key]
            w = m.weight
            free = ~self.masks[key]
            n_target = int(round(share * w.numel()))
            n_new = n_target - int(self.masks[key].sum())
            if n_new <= 0:
                continue
            mag = torch.where(free, w.abs(), torch.full_like(w, -1.0)).reshape(-1)
            idx = torch.topk(mag, n_new).indices
            new = torch.zeros_like(mag, dtype=torch.bool)
            new[idx] = True
            new = new.reshape(w.shape)
            self.values[key][new] = po2_project(w[new], n2, n1)
            self.masks[key] |= new
            self.restore()

    @torch.no_grad()
    def restore(self) -> None:
        """Put the frozen values back (after an optimizer step)."""
        for m in self.layers:
            mask = self.masks[id(m)]
            m.weight[mask] = self.values[id(m)][mask]

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
