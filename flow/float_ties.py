"""Explain Brevitas-vs-integer mismatches caused by PyTorch's float32 arithmetic.

Brevitas computes a layer in float32: a pre-activation that is *exactly* on a decision
boundary in exact arithmetic (a binary net's dot product of exactly 0, a value exactly
k + 0.5 quantization steps) comes out a few ulps to either side, and the sign or the
rounding then depends on summation order. The accelerator (and intsim) compute those
values exactly. Such a sample is not a flow error; it is reported as a float tie.

Contract: for each given sample, re-run the module with hooks on its activation
quantizers and find the smallest distance of any pre-activation from its decision
boundary, in quantization steps (sign: |x| relative to the layer's largest |x|;
integer: |x/s - (floor(x/s) + 1/2)|). Samples with a distance below TIE_TOLERANCE
are float ties.
"""
from __future__ import annotations

import numpy as np

TIE_TOLERANCE = 1e-4  # float32 sums of a few thousand terms stay well inside this


def boundary_distance(module, x: np.ndarray) -> np.ndarray:
    """Per sample, the smallest distance of any pre-activation from a decision boundary."""
    import torch
    from brevitas import nn as qnn

    per_sample = np.full(len(x), np.inf)
    hooks = []

    def hook(mod, inputs, output):
        pre = inputs[0].value if hasattr(inputs[0], "value") else inputs[0]
        if not hasattr(output, "scale") or pre is None:
            return
        pre = pre.detach().double().reshape(len(pre), -1)
        scale = output.scale.detach().double()
        bits = float(output.bit_width) if getattr(output, "bit_width", None) is not None else 8.0
        if bits == 1.0:  # sign: boundary at 0, relative to the layer's magnitude
            mag = pre.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
            d = (pre.abs() / mag).amin(dim=1)
        else:
            z = pre / scale.reshape(1, -1) if scale.numel() == pre.shape[1] else pre / scale.reshape(-1)[0]
            d = (z - (torch.floor(z) + 0.5)).abs().amin(dim=1)
        np.minimum(per_sample, d.numpy(), out=per_sample)

    for m in module.modules():
        if isinstance(m, (qnn.QuantIdentity, qnn.QuantReLU)):
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(torch.from_numpy(x.astype(np.float32)))
    finally:
        for h in hooks:
            h.remove()
    return per_sample


def explain_mismatches(module, x: np.ndarray, bad: np.ndarray) -> dict:
    """Classify the mismatching samples `bad` (indices) into float ties and the rest."""
    if len(bad) == 0:
        return {"float_ties": 0, "unexplained": 0}
    d = boundary_distance(module, x[bad])
    ties = d < TIE_TOLERANCE
    return {"float_ties": int(ties.sum()), "unexplained": int((~ties).sum()),
            "tie_samples": [int(i) for i in np.asarray(bad)[ties]],
            "unexplained_samples": [int(i) for i in np.asarray(bad)[~ties][:10]],
            "tolerance_steps": TIE_TOLERANCE}
