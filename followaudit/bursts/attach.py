"""Bursts inside an audit: detect on a stored snapshot, give members the reason, fill the Report.

The audit pipeline calls ``attach_bursts`` once, after the labels are stored:

    from followaudit.bursts.attach import attach_bursts
    attach_bursts(store, snapshot, report, method=method, save=save)

The scan reads three columns of the snapshot (follow_rank, created_at, followed_at); follower ids and
stored labels are read for the bursts' members only, so this stays cheap at 10M followers (see
benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ..report.core import Report
from ..store.parquet_columns import ABSENT, file_plan, scan_planned
from .detect import BurstParams, BurstScan, burst_membership, scan_bursts, with_label_counts

if TYPE_CHECKING:  # not imported at run time: the CLI starts a scan before it loads DuckDB
    from ..store.workspace import Snapshot, Store

SECTION = "burst_detection"
# Members' own reasons name their burst; the report counts them together under one line.
BURSTS_REASON = "member of a bought batch found from follow order (see bursts)"


# Members are found in DuckDB from each burst's rectangle (follow ranks × creation dates), so the
# follower ids of a 10M-follower snapshot never have to be held in memory here: only the members'.
# Each rectangle is listed once per block of ranks it covers (``_rank_block``), so the join is a hash
# join on the block, then the rectangle's own bounds: on the ranges alone DuckDB sorted every follower
# it read (a piecewise merge join, twice the CPU at 3M followers).
RANK_BLOCK = 4096  # ranks per block, at least
BLOCKS = 65_536  # blocks listed for all rectangles together, at most (ranks can be sparse)


def _rank_block(scan: BurstScan) -> int:
    spans = sum(b.end_rank - b.start_rank + 1 for b in scan.bursts)
    return max(RANK_BLOCK, -(-spans // BLOCKS))


def _members_sql(block: int) -> str:
    return f"""
    SELECT f.follower_id, r.burst_id
    FROM followers f JOIN (
        SELECT *, unnest(range(start_rank // {block}, end_rank // {block} + 1)) AS block FROM _burst_rects
    ) r ON f.follow_rank // {block} = r.block
     AND f.follow_rank BETWEEN r.start_rank AND r.end_rank AND f.created_at BETWEEN r.created_from AND r.created_to
    WHERE f.snapshot_id = ?
"""


# The members' labels: the members found first (left to itself DuckDB joined every label to every
# follower first, which cost 4× the members' own query at 1M followers), then their labels by a hash
# join (an ``IN`` over the members before the join cost ~10% more)
def _labelled_sql(block: int) -> str:
    return f"""
    WITH m AS MATERIALIZED ({_members_sql(block)})
    SELECT m.follower_id, m.burst_id, l.label FROM m LEFT JOIN (
        SELECT follower_id, label FROM labels WHERE snapshot_id = ? AND method = ?
    ) l ON l.follower_id = m.follower_id
"""


def _rects(scan: BurstScan) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "burst_id": [b.burst_id for b in scan.bursts],
            "start_rank": [b.start_rank for b in scan.bursts],
            "end_rank": [b.end_rank for b in scan.bursts],
            "created_from": [b.created_from for b in scan.bursts],
            "created_to": [b.created_to for b in scan.bursts],
        },
        schema={"burst_id": pl.Int64, "start_rank": pl.Int64, "end_rank": pl.Int64,
                "created_from": pl.Datetime("us", "UTC"), "created_to": pl.Datetime("us", "UTC")},
    )


def burst_members(store: Store, snapshot_id: int, scan: BurstScan, method: str | None = None) -> pl.DataFrame:
    """``follower_id, burst_id`` (and ``label`` under ``method``) of every member, found in DuckDB."""
    schema = {"follower_id": pl.Utf8, "burst_id": pl.Int64, **({"label": pl.Utf8} if method else {})}
    if not scan.bursts:
        return pl.DataFrame(schema=schema)
    block = _rank_block(scan)
    store.con.register("_burst_rects", _rects(scan).to_arrow())
    try:
        if method:
            return store.query(_labelled_sql(block), [snapshot_id, snapshot_id, method])
        return store.query(_members_sql(block), [snapshot_id])
    finally:
        store.con.unregister("_burst_rects")


class MembersWhileLabelling:
    """The bursts' members and their labels, found in the batches an audit labels (``burst_members``
    with ``method``, without reading every stored label back: that lookup was most of its cost).

    The scan runs meanwhile (``scan_follow_order`` in a thread): batches labelled before it is done
    keep the four columns the search needs (bounded: the scan runs alongside small audits only)."""

    COLUMNS = ("follower_id", "follow_rank", "created_at")

    def __init__(self, scanning: Future[BurstScan | None]) -> None:
        self.scanning = scanning
        self.waiting: list[pl.DataFrame] = []
        self.found: list[pl.DataFrame] = []

    def add(self, batch: pl.DataFrame, labels: pl.DataFrame) -> None:
        """``labels``: ``label_followers`` of ``batch`` (the same rows in the same order)."""
        part = batch.select(*self.COLUMNS).with_columns(labels.get_column("label"))
        if self.scanning.done():
            self._search(part)
        else:
            self.waiting.append(part)

    def _search(self, part: pl.DataFrame) -> None:
        scan = self.scanning.result()
        if scan is not None and scan.bursts:
            self.found.append(burst_membership(part, scan.bursts, carry=("label",)))

    def members(self) -> pl.DataFrame:
        """``follower_id, burst_id, label`` of every member (once the scan is done)."""
        for part in self.waiting:
            self._search(part)
        self.waiting = []
        schema = {"follower_id": pl.Utf8, "burst_id": pl.Int64, "label": pl.Utf8}
        return pl.concat(self.found) if self.found else pl.DataFrame(schema=schema)


def label_bursts(scan: BurstScan, members: pl.DataFrame) -> int:
    """Give each burst its members' fake share (so its kind); returns members of bought bursts not labelled real."""
    counts = members.group_by("burst_id").agg(
        pl.col("label").is_not_null().sum().alias("labelled"), (pl.col("label") == "fake").sum().alias("fakes"))
    by_id = {row["burst_id"]: (row["fakes"], row["labelled"]) for row in counts.iter_rows(named=True)}
    scan.bursts = [with_label_counts(b, *by_id.get(b.burst_id, (0, 0))) for b in scan.bursts]
    bought = [b.burst_id for b in scan.bursts if b.kind == "bought"]
    return int(members.filter(pl.col("burst_id").is_in(bought) & pl.col("label").is_not_null() & (pl.col("label") != "real"))
               ["follower_id"].n_unique())


def add_burst_reasons(store: Store, snapshot_id: int, method: str, scan: BurstScan, members: pl.DataFrame) -> int:
    """Append each member's burst reason to its stored label; returns how many memberships there are."""
    if not scan.bursts or members.height == 0:
        return 0
    reasons = pl.DataFrame({"burst_id": [b.burst_id for b in scan.bursts], "reason": [b.reason() for b in scan.bursts]})
    rows = members.select("follower_id", "burst_id").join(reasons, on="burst_id").select("follower_id", "reason")
    store.set_added_reasons(snapshot_id, method, rows)
    return rows.height


# Up to this many followers an audit scans for bursts while it labels the followers (3M: 9.3 -> 8.4 s);
# above it, after, to bound memory: the scan's transient arrays (~0.8 GB at 10M) on top of
# labelling's batches took a 10M audit to 1.79–1.95 GiB (7.0–8.0 s), against ~1.65 GiB (8.4 s) after.
SCAN_ALONGSIDE_MAX = 4_000_000
SCAN_COLUMNS = ["follow_rank", "created_at", "followed_at"]


def scan_follow_order(store: Store, snapshot_id: int, params: BurstParams | None = None) -> BurstScan | None:
    """Bursts found in the follow order alone (None when the list has none).

    Only what the scan reads: ranks and times, no labels (read for the members alone, after the scan:
    joining 10M labels to the follow order cost more than the scan). ``Store.follower_columns`` is
    safe from a thread, so an audit runs this while it labels."""
    return _scan_frame(store.follower_columns(snapshot_id, SCAN_COLUMNS), params)


def scan_parquet_follow_order(path: str | Path, plan: dict[str, str]) -> BurstScan | None:
    """``scan_follow_order`` of the snapshot a canonical Parquet file read in place with ``plan``
    becomes, before it is one: the same columns read the same way (``Store.scan_follower_file``),
    so the audit can scan while the file is still being checked."""
    return _scan_frame(scan_planned(path, plan, SCAN_COLUMNS).collect(), None)


@dataclass
class EarlyScan:
    """A burst scan started on a Parquet file before the import made it a snapshot
    (``start_early_scan``); it stands for ``scan_follow_order`` of the snapshot that reads that file
    in place with that plan, and of no other."""

    path: str
    plan: dict[str, str]
    result: Future[BurstScan | None]

    def applies_to(self, store: Store, snapshot_id: int) -> bool:
        source = store.in_place_source(snapshot_id)
        return source is not None and source[0] == self.path and {c: source[1][c] for c in self.plan} == self.plan


def start_early_scan(path: Path, pool: Executor, *, max_rows: int) -> EarlyScan | None:
    """Start scanning a canonical Parquet file's follow order in ``pool`` while the command loads and
    the file is checked and imported; None when it cannot be read in place or has more than
    ``max_rows`` followers (a large scan waits for the labels, see audit.py). It needs no workspace
    (``parquet_columns.file_plan``): the CLI starts it before it loads DuckDB and opens one."""
    plan = file_plan(path, SCAN_COLUMNS)
    if plan is None or plan["follow_rank"] == ABSENT or pl.scan_parquet(path).select(pl.len()).collect().item() > max_rows:
        return None
    return EarlyScan(str(path.resolve()), plan, pool.submit(scan_parquet_follow_order, path, plan))


def _scan_frame(frame: pl.DataFrame, params: BurstParams | None) -> BurstScan | None:
    if frame.height == 0 or frame["follow_rank"].null_count() == frame.height:
        return None
    return scan_bursts(frame, params)


@dataclass
class ResolvedBursts:
    """What ``resolve_bursts`` found: the scan (None: no follow order), and the members of bought
    bursts not labelled real (None: no labels to tell)."""

    scan: BurstScan | None
    not_real: int | None
    stored: Future | None = None  # the members' reasons being stored (``resolve_bursts(store_in=)``)


def resolve_bursts(
    store: Store, snapshot_id: int, *, method: str, save: bool = True, params: BurstParams | None = None,
    scanned: Callable[[], BurstScan | None] | None = None, labelled: MembersWhileLabelling | None = None,
    store_in: Executor | None = None,
) -> ResolvedBursts:
    """The bursts of an audited snapshot with their members' labels, and the members' reasons stored
    (when ``save``); it needs no Report, so an audit runs it while its estimate is computed.

    ``scanned``: the result of ``scan_follow_order`` computed meanwhile (else it runs here);
    ``labelled``: the members found in the batches the audit labelled with ``method`` and stored;
    ``store_in``: the reasons are stored there (a DuckDB cursor of their own) while the caller goes
    on with the report, which needs only the counts; it waits for ``stored`` before it ends."""
    scan = scanned() if scanned is not None else scan_follow_order(store, snapshot_id, params)
    if scan is None:
        return ResolvedBursts(None, None)
    # members and their labels, once: for the fake shares (so each burst's kind and reason), the
    # report's count of bought members not labelled real, and the reasons written back
    members = None
    if scan.bursts and labelled is not None:
        members = labelled.members()
    elif scan.bursts and store.label_counts(snapshot_id).get(method, 0) > 0:
        members = burst_members(store, snapshot_id, scan, method)
    if members is None:
        return ResolvedBursts(scan, None)
    not_real = label_bursts(scan, members)
    stored = None
    if save and not store.read_only:
        if store_in is not None:
            stored = store_in.submit(add_burst_reasons, store, snapshot_id, method, scan, members)
        else:
            add_burst_reasons(store, snapshot_id, method, scan, members)
    return ResolvedBursts(scan, not_real, stored)


def report_bursts(report: Report, resolved: ResolvedBursts) -> BurstScan | None:
    """Put resolved bursts in ``report``: ``report.bursts``, a method section, the members' reason count."""
    scan = resolved.scan
    if scan is None:
        report.notes.append("the follower list has no follow order, so bought batches (bursts) cannot be located")
        return None
    report.bursts = [b.to_dict() for b in scan.bursts]
    report.sections[SECTION] = {**scan.section(), "reference": "docs/bursts.md"}
    if scan.followers_skipped:
        report.notes.append(
            f"{scan.followers_skipped:,} followers without a follow rank or creation date were not placed in the burst analysis"
        )
    if resolved.not_real is not None:
        report.add_reason_count(BURSTS_REASON, resolved.not_real)
    return scan


def attach_bursts(
    store: Store, snapshot: Snapshot, report: Report, *, method: str, save: bool = True, params: BurstParams | None = None,
    scanned: Callable[[], BurstScan | None] | None = None, labelled: MembersWhileLabelling | None = None,
) -> BurstScan | None:
    """Detect bursts for an audited snapshot: ``report.bursts``, a method section, member reasons
    (``resolve_bursts``, then ``report_bursts``)."""
    resolved = resolve_bursts(store, snapshot.snapshot_id, method=method, save=save, params=params, scanned=scanned,
                              labelled=labelled)
    return report_bursts(report, resolved)
