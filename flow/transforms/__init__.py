"""Graph transformations of our own, in qonnx's style: one idea per file."""
from .round_half_even import RoundThresholdsHalfEven
from .float_tail import FloatTail, split_float_tail
from .remove_identity_thresholds import RemoveIdentityThresholds
from .layout_head import LayoutHead, split_layout_head
from .bipolar_as_int2 import BipolarAsInt2
from .joins import ExplicitSplitSizes, MoveMulPastSplit, MoveScalesPastJoins, dynamic_joins
from .global_pool import ReduceMeanToGlobalAveragePool
from .input_layout import TransposeBeforeInputThresholds
from .qcdq_weights import QCDQWeightsToQuant

__all__ = ["RemoveIdentityThresholds", "RoundThresholdsHalfEven", "FloatTail", "split_float_tail",
           "LayoutHead", "split_layout_head", "BipolarAsInt2",
           "ExplicitSplitSizes", "MoveMulPastSplit", "MoveScalesPastJoins", "dynamic_joins",
           "ReduceMeanToGlobalAveragePool",
           "TransposeBeforeInputThresholds", "QCDQWeightsToQuant"]
