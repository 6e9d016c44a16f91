"""Bursts inside an audit: detect on a stored snapshot, give members the reason, fill the Report.

The audit pipeline calls ``attach_bursts`` once, after the labels are stored:

    from followaudit.bursts.attach import attach_bursts
    attach_bursts(store, snapshot, report, method=method, save=save)

Only four columns of the snapshot are read (follower_id, follow_rank, created_at, followed_at) plus
the stored labels, so this stays cheap at 10M followers (see benchmarks/README.md).
"""

from __future__ import annotations

import polars as pl

from ..report.core import Report
from ..store.workspace import Snapshot, Store
from .detect import METHOD, NULL_METHOD, BurstParams, BurstScan, burst_membership, scan_bursts

SECTION = "burst_detection"
# Members' own reasons name their burst; the report counts them together under one line.
BURSTS_REASON = "member of a bought batch found from follow order (see bursts)"


def members_not_real(store: Store, snapshot_id: int, method: str, frame: pl.DataFrame, scan: BurstScan) -> int:
    """How many members of bought bursts (not merely suspicious ones) carry a fake or inactive label."""
    bought = [b for b in scan.bursts if b.kind == "bought"]
    if not bought:
        return 0
    members = burst_membership(frame, bought).select("follower_id")
    labels = store.query(
        "SELECT follower_id FROM labels WHERE snapshot_id = ? AND method = ? AND label <> 'real'", [snapshot_id, method]
    )
    return members.join(labels, on="follower_id", how="semi").height


def add_burst_reasons(store: Store, snapshot_id: int, method: str, frame: pl.DataFrame, scan: BurstScan) -> int:
    """Append each member's burst reason to its stored label; returns how many labels changed."""
    if not scan.bursts:
        return 0
    reasons = pl.DataFrame({"burst_id": [b.burst_id for b in scan.bursts], "reason": [b.reason() for b in scan.bursts]})
    members = burst_membership(frame, scan.bursts).join(reasons, on="burst_id")
    with store.transaction() as con:
        con.register("_burst_members", members.to_arrow())
        try:
            con.execute(
                """UPDATE labels SET reasons = list_append(coalesce(labels.reasons, []::VARCHAR[]), m.reason)
                   FROM _burst_members m
                   WHERE labels.snapshot_id = ? AND labels.method = ? AND labels.follower_id = m.follower_id
                     AND NOT list_contains(coalesce(labels.reasons, []::VARCHAR[]), m.reason)""",
                [snapshot_id, method],
            )
        finally:
            con.unregister("_burst_members")
    return members.height


def attach_bursts(
    store: Store, snapshot: Snapshot, report: Report, *, method: str, save: bool = True, params: BurstParams | None = None
) -> BurstScan | None:
    """Detect bursts for an audited snapshot: ``report.bursts``, a method section, member reasons."""
    frame = store.followers(snapshot.snapshot_id, ["follower_id", "follow_rank", "created_at", "followed_at"])
    if frame.height == 0 or frame["follow_rank"].null_count() == frame.height:
        report.notes.append("the follower list has no follow order, so bought batches (bursts) cannot be located")
        return None
    labels = store.query(
        "SELECT follower_id, label FROM labels WHERE snapshot_id = ? AND method = ?", [snapshot.snapshot_id, method]
    )
    labelled = frame.join(labels, on="follower_id", how="left") if labels.height else frame
    scan = scan_bursts(labelled, params)
    report.bursts = [b.to_dict() for b in scan.bursts]
    report.sections[SECTION] = {
        "method": METHOD,
        "params": scan.params.to_dict(),
        "followers_scanned": scan.followers_scanned,
        "followers_skipped": scan.followers_skipped,
        "follow_times_exact": scan.follow_times_exact,
        "null": NULL_METHOD,
        "tests": scan.tests,
        "reference": "docs/bursts.md",
    }
    if scan.followers_skipped:
        report.notes.append(
            f"{scan.followers_skipped:,} followers without a follow rank or creation date were not placed in the burst analysis"
        )
    if save and not store.read_only and labels.height:
        add_burst_reasons(store, snapshot.snapshot_id, method, frame, scan)
    if labels.height and scan.bursts:
        report.add_reason_count(BURSTS_REASON, members_not_real(store, snapshot.snapshot_id, method, frame, scan))
    return scan
