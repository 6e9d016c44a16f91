"""Read side shared by the web app and ``followaudit report``: audits from stored labels, follower pages.

The server opens the workspace read-only, so it never labels-and-saves: it builds the Report from the
labels an earlier ``followaudit audit`` stored (through ``audit.audit_frame``, the same function the CLI
uses), or labels in memory when none are stored. Either way the numbers come from one Report object.

DuckDB connections are not thread-safe: every query here runs on its own ``cursor()`` (a connection
to the same database), and audits, which use the Store's own connection, are built under a lock.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..audit import LABEL_INPUT_COLUMNS, AuditResult, audit_frame, finish_report, reason_pattern_sql
from ..bursts.attach import BURSTS_REASON
from ..classify import METHODS
from ..classify.rules import DEFAULT_INACTIVE_DAYS, inactive_mask
from ..errors import InputError, SnapshotNotFoundError
from ..render.static_charts import report_charts
from ..store.workspace import Store

SORTABLE = (
    "follow_rank", "handle", "created_at", "followers_count", "following_count", "posts_count",
    "last_active_at", "label", "probability",
)
TABLE_COLUMNS = [
    "follow_rank", "follower_id", "handle", "display_name", "created_at", "followers_count",
    "following_count", "posts_count", "last_active_at",
]
MAX_PER_PAGE = 500
BURST_REASON = r"^in burst #"  # reasons written by bursts.py start "in burst #<n>:"
_CACHE_IDS = itertools.count(1)
DB_SLOTS = 1  # concurrent DuckDB queries (see ReadDB.query)
ORDER_CACHE_BYTES = 256 * 2**20  # sorted follower positions kept for paging


def stored_methods(store: Store, snapshot_id: int, cursor: Any = None) -> list[str]:
    """Labelling methods with complete stored labels for a snapshot, in METHODS order."""
    con = cursor if cursor is not None else store.con
    rows = con.execute(
        """SELECT method, count(*) AS n FROM labels WHERE snapshot_id = ? GROUP BY method""", [snapshot_id]
    ).fetchall()
    n = con.execute("SELECT count(*) FROM followers WHERE snapshot_id = ?", [snapshot_id]).fetchall()[0][0]
    have = {m for m, c in rows if c == n and n}
    return [m for m in METHODS if m in have] + sorted(have - set(METHODS))


def build_audit(
    store: Store,
    ref: int | str,
    method: str | None = None,
    *,
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    confidence: float = 0.95,
) -> AuditResult:
    """The audit of a stored snapshot without writing anything.

    Uses the labels stored for ``method`` (default: the first method with stored labels, else rules)
    when they cover every follower; otherwise labels in memory. Both go through ``audit.audit_frame``.
    """
    snapshot = store.snapshot(ref)
    sid = snapshot.snapshot_id
    have = stored_methods(store, sid)
    method = method or (have[0] if have else METHODS[0])
    if method not in have and method not in METHODS:
        raise InputError(f"unknown labelling method {method!r}", f"choose one of {', '.join(METHODS)}")
    followers = store.followers(sid, LABEL_INPUT_COLUMNS)
    labels = None
    if method in have:
        as_of = snapshot.taken_at or datetime.now(UTC)
        unknown = inactive_mask(followers, as_of=as_of, inactive_days=inactive_days).select("follower_id", "activity_unknown")
        labels = store.labels(sid, method).join(unknown, on="follower_id", how="left")
    rejects = store.rejects(sid).head(1) if snapshot.n_rejects else None
    first = rejects.to_dicts()[0] if rejects is not None and rejects.height else None
    result = audit_frame(
        followers, snapshot, method=method, inactive_days=inactive_days, confidence=confidence,
        first_reject=first, labels=labels,
    )
    finish_report(store, snapshot, result.report, method=method, save=False)
    return result


def factory_frame(store: Store, snapshot_id: int, labels: pl.DataFrame | None = None) -> pl.DataFrame:
    """What the follower-factory chart reads: follow order, account creation and (with labels) label."""
    frame = store.query(
        """SELECT follower_id, follow_rank, created_at, followed_at FROM followers WHERE snapshot_id = ?
           ORDER BY follow_rank NULLS LAST, follower_id""",
        [snapshot_id],
    )
    if labels is not None:
        frame = frame.join(labels.select("follower_id", "label"), on="follower_id", how="left", maintain_order="left")
    return frame


@dataclass
class Audit:
    """A cached audit: the result, its method, whether its labels are the stored ones, its charts,
    and the in-memory table (followers joined with their labels) the follower pages query."""

    result: AuditResult
    method: str
    stored: bool
    charts: dict[str, str]
    table: str
    rows: pl.DataFrame  # the same rows in memory, row i = pos i: a page is a slice or a gather


@dataclass
class FollowerQuery:
    label: str | None = None
    reason: str | None = None
    burst: str | None = None  # "any" or a burst number
    q: str | None = None  # handle / display name prefix search
    sort: str = "follow_rank"
    order: str = "asc"
    page: int = 1
    per_page: int = 50

    def validate(self) -> FollowerQuery:
        if self.label and self.label not in ("fake", "inactive", "real"):
            raise InputError(f"unknown label {self.label!r}", "use fake, inactive or real")
        if self.sort not in SORTABLE:
            raise InputError(f"cannot sort by {self.sort!r}", "sort by one of " + ", ".join(SORTABLE))
        if self.order not in ("asc", "desc"):
            raise InputError(f"order must be asc or desc, not {self.order!r}")
        if self.burst and self.burst != "any" and not self.burst.isdigit():
            raise InputError(f"burst must be 'any' or a burst number, not {self.burst!r}")
        if self.page < 1 or not 1 <= self.per_page <= MAX_PER_PAGE:
            raise InputError(f"page must be ≥ 1 and per_page between 1 and {MAX_PER_PAGE}")
        return self

    def filters(self) -> dict[str, Any]:
        return {k: v for k, v in (("label", self.label), ("reason", self.reason), ("burst", self.burst), ("q", self.q)) if v}


class ReadDB:
    """The web app's read-only view of a workspace, with a per-process cache of audits.

    Each audited snapshot gets one table in an in-memory database attached beside the workspace:
    its followers joined with their labels, built once (seconds at 1M followers), so every follower
    page is a single-table scan with LIMIT/OFFSET instead of a join. The workspace file itself is
    never written. The cache is valid for the life of the process: DuckDB lets no other process
    write the file while it is open read-only.
    """

    def __init__(self, path: str | Path, writable: bool = False) -> None:
        # ``writable`` (``serve --review``): the review page records answers; nothing else writes.
        self.writable = writable
        self.store = Store(path, read_only=not writable)
        self.path = self.store.path
        # In-memory database beside the read-only workspace. DuckDB shares one instance between the
        # connections of a process to the same file, so each ReadDB gets its own name.
        self.cache = f"webcache_{os.getpid()}_{next(_CACHE_IDS)}"
        self.store.con.execute(f"ATTACH ':memory:' AS {self.cache} (READ_WRITE)")
        self._lock = threading.Lock()
        self._audits: dict[tuple[int, str | None], Audit] = {}
        self._counts: dict[tuple[Any, ...], int] = {}
        self._reasons: dict[str, list[tuple[str, int]]] = {}
        self._ids: set[int] | None = None
        self._slots = threading.BoundedSemaphore(DB_SLOTS)
        self._order_lock = threading.Lock()
        self._orders: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._order_bytes = 0

    def lock(self) -> threading.Lock:
        """The lock that serialises use of the Store's own connection (audit builds, review writes)."""
        return self._lock

    def forget(self, sid: int) -> None:
        """Drop the cached audits of a snapshot (a review changed its report)."""
        with self._lock:
            for key in [k for k in self._audits if k[0] == sid]:
                del self._audits[key]

    def close(self) -> None:
        self.store.con.execute(f"DETACH {self.cache}")
        self.store.close()

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        """Run a read query on its own cursor (safe from any thread).

        At most ``DB_SLOTS`` queries run at once: DuckDB parallelises each query itself, and many
        concurrent queries from the server's threads contend (measured on 2 cores, 40 threads:
        105 pages/s unbounded, 333 pages/s with one slot).
        """
        with self._slots:
            cur = self.store.con.cursor()
            try:
                return cur.sql(sql, params=params or None).pl()
            finally:
                cur.close()

    # -- snapshots and audits ---------------------------------------------------------------------
    def snapshots(self) -> pl.DataFrame:
        return self.query(
            """SELECT s.snapshot_id, s.platform, s.account, s.taken_at, s.source, s.sample_kind, s.sample_n,
                      s.sample_population, s.status,
                      (SELECT count(*) FROM followers f WHERE f.snapshot_id = s.snapshot_id) AS followers,
                      (SELECT list(DISTINCT method ORDER BY method) FROM labels l WHERE l.snapshot_id = s.snapshot_id) AS methods
               FROM snapshots s ORDER BY s.account NULLS LAST, s.taken_at, s.snapshot_id"""
        )

    def snapshot_id(self, sid: int) -> int:
        """``sid`` if that snapshot exists (the web addresses snapshots by number only)."""
        if self._ids is None:  # the file cannot change while it is open read-only
            self._ids = set(self.query("SELECT snapshot_id FROM snapshots")["snapshot_id"].to_list())
        if sid not in self._ids:
            raise SnapshotNotFoundError(f"no snapshot {sid} in this workspace", "the index page lists the stored snapshots")
        return sid

    def audit(self, sid: int, method: str | None = None) -> Audit:
        key = (sid, method)
        cached = self._audits.get(key)
        if cached is not None:
            return cached
        with self._lock:  # one build at a time; the Store's own connection is not thread-safe
            cached = self._audits.get(key)
            if cached is None:
                cached = self._build(sid, method)
                self._audits[key] = cached
                self._audits[(sid, cached.method)] = cached
        return cached

    def _build(self, sid: int, method: str | None) -> Audit:
        self.snapshot_id(sid)
        have = stored_methods(self.store, sid)
        result = build_audit(self.store, sid, method)
        method = result.report.method
        table = f"{self.cache}.followers_{sid}_{re.sub(r'[^a-z0-9]', '_', method.lower())}"
        labels = result.labels.select("follower_id", "label", "probability", "reasons")
        con = self.store.con
        con.register("_audit_labels", labels.to_arrow())
        try:
            cols = ", ".join(f"f.{c}" for c in TABLE_COLUMNS)
            con.execute(
                # pos = place in the default order (follow rank, then id); rows are stored in that
                # order, so a range of pos is a page that DuckDB reads via zone maps, not a sort.
                f"""CREATE OR REPLACE TABLE {table} AS
                    SELECT row_number() OVER (ORDER BY f.follow_rank NULLS LAST, f.follower_id) - 1 AS pos,
                           {cols}, l.label, l.probability, l.reasons
                    FROM followers f JOIN _audit_labels l ON l.follower_id = f.follower_id
                    WHERE f.snapshot_id = ? ORDER BY pos""",
                [sid],
            )
        finally:
            con.unregister("_audit_labels")
        charts = report_charts(result.report, factory_frame(self.store, sid, labels))
        rows = self.store.query(f"SELECT * EXCLUDE (pos) FROM {table} ORDER BY pos").rechunk()
        return Audit(result, method, method in have, charts, table, rows)

    # -- follower table ---------------------------------------------------------------------------
    def followers_page(self, sid: int, fq: FollowerQuery, method: str | None = None) -> dict[str, Any]:
        """One page of the follower table, filtered and sorted in DuckDB, and the filtered total."""
        fq.validate()
        audit = self.audit(sid, method)
        where: list[str] = []
        params: list[Any] = []
        if fq.label:
            where.append("label = ?")
            params.append(fq.label)
        if fq.reason == BURSTS_REASON:  # the report's one line for all burst members
            fq.burst = fq.burst or "any"
        elif fq.reason:  # reasons match by pattern, as the report counts them
            where.append(f"len(list_filter(reasons, lambda r: {reason_pattern_sql('r')} = ?)) > 0")
            params.append(fq.reason)
        if fq.burst:
            pattern = BURST_REASON + ("" if fq.burst == "any" else rf"{int(fq.burst)}\b")
            where.append("len(list_filter(reasons, lambda r: regexp_matches(r, ?))) > 0")
            params.append(pattern)
        if fq.q:
            where.append("(starts_with(lower(handle), lower(?)) OR starts_with(lower(display_name), lower(?)))")
            params += [fq.q.lstrip("@"), fq.q]
        body = f"FROM {audit.table}" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._page_rows(audit, body, where, params, fq)  # first: a sorted page also counts
        key = (audit.table, tuple(sorted(fq.filters().items())))
        total = self._counts.get(key)
        if total is None:
            total = int(self.query(f"SELECT count(*) AS n {body}", params)["n"][0])
            self._counts[key] = total
        return {
            "snapshot": sid,
            "method": audit.method,
            "filters": fq.filters(),
            "sort": fq.sort,
            "order": fq.order,
            "page": fq.page,
            "per_page": fq.per_page,
            "total": total,
            "pages": max(1, math.ceil(total / fq.per_page)),
            "rows": rows.to_dicts(),
        }

    def _page_rows(self, audit: Audit, body: str, where: list[str], params: list[Any], fq: FollowerQuery) -> pl.DataFrame:
        """DuckDB decides which rows and in what order; the rows themselves come from memory by pos
        (fetching 50 scattered rows back from DuckDB costs a scan, ~30 ms at 1M; a gather, 0.1 ms)."""
        offset, limit = (fq.page - 1) * fq.per_page, fq.per_page
        if not where and fq.sort == "follow_rank" and fq.order == "asc":  # the default view
            return audit.rows.slice(offset, limit)
        page = self._order(audit.table, body, params, fq)[offset : offset + limit]
        return audit.rows[page.astype(np.int64)] if page.size else audit.rows.head(0)

    def _order(self, table: str, body: str, params: list[Any], fq: FollowerQuery) -> np.ndarray:
        """Every matching row's pos in the asked order, computed once per filter+sort and kept (LRU).

        Paging through a sorted, filtered 1M-row table is then a slice plus a fetch of 50 rows,
        instead of a scan and a top-N sort per page (and deep pages stay as cheap as the first).
        """
        key = (table, tuple(sorted(fq.filters().items())), fq.sort, fq.order)
        with self._order_lock:
            found = self._orders.get(key)
            if found is not None:
                self._orders.move_to_end(key)
                return found
        direction = "DESC" if fq.order == "desc" else "ASC"
        order = self.query(f"SELECT pos {body} ORDER BY {fq.sort} {direction} NULLS LAST, pos", params)["pos"]
        array = order.cast(pl.Int32 if order.len() < 2**31 else pl.Int64).to_numpy()
        with self._order_lock:
            self._orders[key] = array
            self._order_bytes += array.nbytes
            while self._order_bytes > ORDER_CACHE_BYTES and len(self._orders) > 1:
                _, dropped = self._orders.popitem(last=False)
                self._order_bytes -= dropped.nbytes
        self._counts.setdefault((table, key[1]), int(array.size))
        return array

    def reason_counts(self, sid: int, method: str | None = None) -> list[tuple[str, int]]:
        """Every reason used in a snapshot's labels with its count (for the filter menu)."""
        audit = self.audit(sid, method)
        if audit.table not in self._reasons:
            frame = self.query(
                f"SELECT {reason_pattern_sql('r')} AS reason, count(*) AS n FROM (SELECT unnest(reasons) AS r FROM {audit.table}) GROUP BY 1 ORDER BY n DESC, reason"
            )
            self._reasons[audit.table] = [(r, int(n)) for r, n in frame.iter_rows()]
        return self._reasons[audit.table]

    def follower(self, sid: int, follower_id: str, method: str | None = None) -> dict[str, Any]:
        """One follower's profile fields, label, probability and reasons."""
        audit = self.audit(sid, method)
        found = self.query(
            "SELECT * EXCLUDE (snapshot_id) FROM followers WHERE snapshot_id = ? AND follower_id = ?", [sid, follower_id]
        )
        if not found.height:
            raise SnapshotNotFoundError(f"no follower {follower_id!r} in snapshot {sid}", "open the follower table to find one")
        label = self.query(f"SELECT label, probability, reasons FROM {audit.table} WHERE follower_id = ?", [follower_id])
        lab = label.to_dicts()[0] if label.height else {"label": None, "probability": None, "reasons": []}
        return {"snapshot": sid, "method": audit.method, "follower_id": follower_id, **lab, "profile": found.to_dicts()[0]}

    # -- comparison -------------------------------------------------------------------------------
    def compare(self, a: int, b: int, page: int = 1, per_page: int = 100) -> dict[str, Any]:
        """Who joined and who left between two snapshots of one account, and how the shares moved."""
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            raise InputError(f"page must be ≥ 1 and per_page between 1 and {MAX_PER_PAGE}")
        aa, ab = self.audit(a), self.audit(b)
        ra, rb = aa.result.report, ab.result.report
        if (ra.platform, (ra.account or "").lower()) != (rb.platform, (rb.account or "").lower()):
            raise InputError(
                f"snapshots {a} and {b} are of different accounts ({ra.account!r}, {rb.account!r})",
                "compare two snapshots of the same account",
            )
        out: dict[str, Any] = {"a": _snap_summary(ra), "b": _snap_summary(rb)}
        for name, new, old in (("joined", ab, aa), ("left", aa, ab)):
            body = f"FROM {new.table} n ANTI JOIN {old.table} o ON o.follower_id = n.follower_id"
            counts = self.query(f"SELECT label, count(*) AS n {body} GROUP BY label ORDER BY label")
            rows = self.query(
                f"""SELECT n.follower_id, n.handle, n.display_name, n.follow_rank, n.label {body}
                    ORDER BY n.follow_rank DESC NULLS LAST, n.follower_id LIMIT ? OFFSET ?""",
                [per_page, (page - 1) * per_page],
            )
            by_label = {str(k): int(v) for k, v in counts.iter_rows()}
            out[name] = {
                "count": sum(by_label.values()), "by_label": by_label,
                "snapshot": new.result.report.snapshot, "rows": rows.to_dicts(),
            }
        out["page"], out["per_page"] = page, per_page
        out["shares"] = share_changes(ra, rb)
        return out


def _snap_summary(report: Any) -> dict[str, Any]:
    return {
        "snapshot": report.snapshot, "account": report.account, "platform": report.platform,
        "taken_at": report.taken_at, "followers_audited": report.followers_audited, "method": report.method,
    }


def newcombe_difference(a: tuple[float, float, float], b: tuple[float, float, float]) -> tuple[float, float, float]:
    """Difference b − a of two shares with Newcombe's hybrid score interval (Newcombe 1998, method 10).

    Each share comes as (point, low, high) with its own Wilson interval. The interval assumes
    independent snapshots; two snapshots of one account share most followers, which makes it
    conservative (too wide) rather than too narrow.
    """
    pa, la, ua = a
    pb, lb, ub = b
    d = pb - pa
    return (d, d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2))


def share_changes(ra: Any, rb: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    # the headline shares (reviewed > corrected > raw), as every other output; none when withheld
    ha, hb = ra.headline_shares(), rb.headline_shares()
    for label in [lb for lb in ha if lb in hb]:
        sa, sb = ha[label], hb[label]
        d, lo, hi = newcombe_difference((sa.share, sa.low, sa.high), (sb.share, sb.low, sb.high))
        out[label] = {
            "a": {"share": sa.share, "low": sa.low, "high": sa.high, "count": sa.count},
            "b": {"share": sb.share, "low": sb.low, "high": sb.high, "count": sb.count},
            "difference": {"change": d, "low": lo, "high": hi, "method": "Newcombe hybrid score interval from the two Wilson intervals"},
        }
    return out
