"""qnnflow's flow: model -> hardware as ordered, named build steps over ONNX."""
from .api import build
from .config import BuildConfig
from .errors import FlowError

__all__ = ["BuildConfig", "FlowError", "build"]
