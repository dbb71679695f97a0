"""Locate where two executions of the same graph diverge."""
from __future__ import annotations

import numpy as np


def first_divergence(order: list[tuple[str, str]], a: dict, b: dict, sample: int | None = None) -> dict | None:
    """The first (node, tensor) in `order` whose values differ between environments a and b.

    `order` lists (node name, output tensor) in execution order; a and b map tensor
    names to arrays with the batch first. Returns node, tensor, sample, index and both
    values, or None if every shared tensor agrees.
    """
    for node, tensor in order:
        if tensor not in a or tensor not in b:
            continue
        x = np.asarray(a[tensor]).reshape(len(a[tensor]), -1)
        y = np.asarray(b[tensor]).reshape(len(b[tensor]), -1)
        if sample is not None:
            x, y = x[sample:sample + 1], y[sample:sample + 1]
        diff = np.argwhere(x != y)
        if len(diff):
            s, i = (int(v) for v in diff[0])
            return {"node": node, "tensor": tensor, "sample": s + (sample or 0), "index": i,
                    "a": x[s, i].item(), "b": y[s, i].item()}
    return None
