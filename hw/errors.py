"""The one exception type of the hardware side; messages name the problem and the fix."""
from __future__ import annotations


class HwError(RuntimeError):
    """A hardware-side failure with a one-line message: what went wrong, and what to do."""


class RtlsimDeadlock(HwError):
    """The simulated accelerator stopped producing outputs (or ran past its cycle limit)."""

    def __init__(self, message: str, *, cycles: int, outputs_received: int, outputs_expected: int):
        super().__init__(message)
        self.cycles = cycles
        self.outputs_received = outputs_received
        self.outputs_expected = outputs_expected
