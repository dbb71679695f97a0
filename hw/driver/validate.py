#!/usr/bin/env python3
"""Validate a qnnflow accelerator on its board, as FINN's deployment package does.

    sudo python3 validate.py [--batch N] [--limit N]

1. Bit-exactness: the build's verification inputs (reference.npz) through the board must
   give exactly the integers qnnflow's integer reference (intsim) computed.
2. Accuracy and speed: the MNIST test set (mnist_test.npz, for models that take MNIST):
   top-1 accuracy, and images/s of the accelerator (DMA transfer time: the accelerator and
   DDR) and end to end (with packing, the layout head and float tail on the CPU).
Exit status 0 when the reference matched, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

try:  # the deployment package
    from driver import Accelerator
except ImportError:  # inside qnnflow
    from hw.driver.accel import Accelerator


def main(argv: list[str] | None = None, overlay=None, folder=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, help="images per DMA transfer (default: as many as the buffers hold)")
    p.add_argument("--limit", type=int, help="use only the first N test images")
    p.add_argument("--folder", default=folder or Path(__file__).resolve().parent,
                   help="the deployment package (default: this script's folder)")
    a = p.parse_args(argv)
    folder = Path(a.folder)
    accel = Accelerator(folder, overlay=overlay, batch_size=a.batch)
    print(f"qnnflow accelerator: {accel.config['model']} on {accel.config['board']} "
          f"({accel.config['clock_mhz']:g} MHz), batch {accel.batch_size}")
    result: dict = {"batch": accel.batch_size}

    ref = folder / "reference.npz"
    if ref.is_file():
        with np.load(ref) as z:
            x, want = z["inputs"], z["outputs"]
        if a.limit:
            x, want = x[:a.limit], want[:a.limit]
        got = accel.integers(x)
        bad = np.flatnonzero(np.any(got != want, axis=1))
        result["reference_mismatches"] = int(bad.size)
        result["reference_images"] = int(len(x))
        msg = f"bit-exact check: {bad.size} / {len(x)} images differ from qnnflow's integer reference (intsim)"
        if bad.size:
            i = int(bad[0])
            msg += f"; first: image {i}, got {got[i].tolist()}, expected {want[i].tolist()}"
        print(msg)

    data = folder / "mnist_test.npz"
    if data.is_file():
        with np.load(data) as z:
            x, y = z["x"], z["y"].astype(np.int64)
        if a.limit:
            x, y = x[:a.limit], y[:a.limit]
        accel.dma_seconds, accel.images = 0.0, 0
        t0 = time.perf_counter()
        pred = accel.classify(x)
        wall = time.perf_counter() - t0
        correct = int(np.sum(pred == y))
        result.update(accuracy=100.0 * correct / len(y), images=int(len(y)),
                      accelerator_images_per_s=len(y) / max(accel.dma_seconds, 1e-12),
                      end_to_end_images_per_s=len(y) / max(wall, 1e-12))
        print(f"accuracy: {result['accuracy']:.2f} % ({correct} / {len(y)} MNIST test images)")
        print(f"throughput: {result['accelerator_images_per_s']:,.0f} images/s in the accelerator "
              f"(DMA transfers), {result['end_to_end_images_per_s']:,.0f} images/s end to end")
    return result


if __name__ == "__main__":
    r = main()
    sys.exit(1 if r.get("reference_mismatches") else 0)
