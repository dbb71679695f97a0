"""qnnflow's flow: model -> hardware as ordered, named build steps over ONNX."""
from hw.ops import register as _register_open_rtl

from .api import build
from .config import BuildConfig
from .errors import FlowError

_register_open_rtl()  # graphs of a build may hold qnnflow's own RTL ops

__all__ = ["BuildConfig", "FlowError", "build"]
