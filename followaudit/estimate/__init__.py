"""Estimates: shares with intervals, model-corrected shares, and the sample a precision needs."""

from .intervals import (
    Share,
    confidence_label,
    estimate_shares,
    fpc_factor,
    interval_method,
    shares_from_counts,
    wilson,
    z_value,
)
from .sample_design import check_sampling, draw_sample, sample_size

__all__ = [
    "check_sampling",
    "draw_sample",
    "sample_size",
    "Share",
    "confidence_label",
    "estimate_shares",
    "fpc_factor",
    "interval_method",
    "shares_from_counts",
    "wilson",
    "z_value",
]
