"""The RTL side: stitching FINN's layers, Verilator simulation, boards."""
from .errors import HwError, RtlsimDeadlock
from .rtlsim import RtlsimResult, rtlsim

__all__ = ["HwError", "RtlsimDeadlock", "RtlsimResult", "rtlsim"]
