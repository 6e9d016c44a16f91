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
from .detect import BurstParams, BurstScan, scan_bursts

SECTION = "burst_detection"
# Members' own reasons name their burst; the report counts them together under one line.
BURSTS_REASON = "member of a bought batch found from follow order (see bursts)"


# Members are found in DuckDB from each burst's rectangle (follow ranks × creation dates), so the
# follower ids of a 10M-follower snapshot never have to be held in memory here.
_MEMBERS_SQL = """
    SELECT f.follower_id, r.burst_id, r.reason, r.kind
    FROM followers f JOIN _burst_rects r
      ON f.follow_rank BETWEEN r.start_rank AND r.end_rank AND f.created_at BETWEEN r.created_from AND r.created_to
    WHERE f.snapshot_id = ?
"""


def _rects(scan: BurstScan) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "burst_id": [b.burst_id for b in scan.bursts],
            "start_rank": [b.start_rank for b in scan.bursts],
            "end_rank": [b.end_rank for b in scan.bursts],
            "created_from": [b.created_from for b in scan.bursts],
            "created_to": [b.created_to for b in scan.bursts],
            "reason": [b.reason() for b in scan.bursts],
            "kind": [b.kind for b in scan.bursts],
        },
        schema_overrides={"created_from": pl.Datetime("us", "UTC"), "created_to": pl.Datetime("us", "UTC")},
    )


def members_not_real(store: Store, snapshot_id: int, method: str, scan: BurstScan) -> int:
    """How many members of bought bursts (not merely suspicious ones) carry a fake or inactive label."""
    if not any(b.kind == "bought" for b in scan.bursts):
        return 0
    store.con.register("_burst_rects", _rects(scan).to_arrow())
    try:
        return int(store.row(
            f"""SELECT count(DISTINCT m.follower_id) AS n FROM ({_MEMBERS_SQL}) m
                JOIN labels l ON l.snapshot_id = ? AND l.method = ? AND l.follower_id = m.follower_id
                WHERE m.kind = 'bought' AND l.label <> 'real'""",
            [snapshot_id, snapshot_id, method],
        )["n"])
    finally:
        store.con.unregister("_burst_rects")


def add_burst_reasons(store: Store, snapshot_id: int, method: str, scan: BurstScan) -> int:
    """Append each member's burst reason to its stored label; returns how many memberships there are."""
    if not scan.bursts:
        return 0
    with store.transaction() as con:
        con.register("_burst_rects", _rects(scan).to_arrow())
        try:
            members = int(store.row(f"SELECT count(*) AS n FROM ({_MEMBERS_SQL})", [snapshot_id])["n"])
            con.execute(
                f"""UPDATE labels SET reasons = list_append(coalesce(labels.reasons, []::VARCHAR[]), m.reason)
                   FROM ({_MEMBERS_SQL}) m
                   WHERE labels.snapshot_id = ? AND labels.method = ? AND labels.follower_id = m.follower_id
                     AND NOT list_contains(coalesce(labels.reasons, []::VARCHAR[]), m.reason)""",
                [snapshot_id, snapshot_id, method],
            )
        finally:
            con.unregister("_burst_rects")
    return members


def attach_bursts(
    store: Store, snapshot: Snapshot, report: Report, *, method: str, save: bool = True, params: BurstParams | None = None
) -> BurstScan | None:
    """Detect bursts for an audited snapshot: ``report.bursts``, a method section, member reasons."""
    has_labels = bool(store.row(
        "SELECT count(*) > 0 AS any FROM labels WHERE snapshot_id = ? AND method = ?", [snapshot.snapshot_id, method]
    )["any"])
    # Only what the scan reads: ranks, times and the label (joined in DuckDB), never the follower ids.
    frame = store.query(
        """SELECT f.follow_rank, f.created_at, f.followed_at""" + (", l.label" if has_labels else "") + """
           FROM followers f""" + (""" LEFT JOIN labels l
             ON l.snapshot_id = f.snapshot_id AND l.method = ? AND l.follower_id = f.follower_id""" if has_labels else "") + """
           WHERE f.snapshot_id = ?""",
        [method, snapshot.snapshot_id] if has_labels else [snapshot.snapshot_id],
    )
    if frame.height == 0 or frame["follow_rank"].null_count() == frame.height:
        report.notes.append("the follower list has no follow order, so bought batches (bursts) cannot be located")
        return None
    if has_labels:
        frame = frame.with_columns(pl.col("label").cast(pl.Categorical))
    scan = scan_bursts(frame, params)
    del frame
    report.bursts = [b.to_dict() for b in scan.bursts]
    report.sections[SECTION] = {**scan.section(), "reference": "docs/bursts.md"}
    if scan.followers_skipped:
        report.notes.append(
            f"{scan.followers_skipped:,} followers without a follow rank or creation date were not placed in the burst analysis"
        )
    if save and not store.read_only and has_labels:
        add_burst_reasons(store, snapshot.snapshot_id, method, scan)
    if has_labels and scan.bursts:
        report.add_reason_count(BURSTS_REASON, members_not_real(store, snapshot.snapshot_id, method, scan))
    return scan
