"""The integer-only reference simulator (intsim) and the bit-exact comparison tools."""
from .compare import first_divergence
from .errors import SimError
from .interpreter import IntSim, run
from .kernels import KERNELS

__all__ = ["IntSim", "KERNELS", "SimError", "first_divergence", "run"]
