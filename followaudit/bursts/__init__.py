"""Bought batches: follow times, burst detection, attaching bursts to an audit, the injection harness."""

from .detect import (
    BURST_REASON_PREFIX,
    METHOD,
    Burst,
    BurstParams,
    BurstScan,
    burst_membership,
    detect_bursts,
    estimate_follow_times,
    scan_bursts,
)

__all__ = [
    "BURST_REASON_PREFIX",
    "METHOD",
    "Burst",
    "BurstParams",
    "BurstScan",
    "burst_membership",
    "detect_bursts",
    "estimate_follow_times",
    "scan_bursts",
]
