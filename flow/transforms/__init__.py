"""Graph transformations of our own, in qonnx's style: one idea per file."""
from .round_half_even import RoundThresholdsHalfEven
from .float_tail import FloatTail, split_float_tail
from .remove_identity_thresholds import RemoveIdentityThresholds

__all__ = ["RemoveIdentityThresholds", "RoundThresholdsHalfEven", "FloatTail", "split_float_tail"]
