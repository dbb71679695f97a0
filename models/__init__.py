"""The Brevitas side: quantizer presets, the model zoo, MNIST data and training."""
from .data import load_mnist
from .errors import ModelError
from .quant import PRESETS, Preset, get_preset
from .zoo import ARCHS, build_model, compact_checkpoint, load_checkpoint, parse_name, shipped_checkpoint

__all__ = [
    "ARCHS", "PRESETS", "ModelError", "Preset", "build_model", "compact_checkpoint", "get_preset", "load_checkpoint",
    "load_mnist", "parse_name", "shipped_checkpoint",
]
