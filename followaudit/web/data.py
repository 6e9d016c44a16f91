"""Read side shared by the web app and ``followaudit report``: audits from stored labels, follower pages.

The server opens the workspace read-only, so it never labels-and-saves: it builds the Report from the
labels an earlier ``followaudit audit`` stored (through ``audit.audit_frame``, the same function the CLI
uses), or labels in memory when none are stored. Either way the numbers come from one Report object.

DuckDB connections are not thread-safe: every query here runs on its own ``cursor()`` (a connection
to the same database), and audits, which use the Store's own connection, are built under a lock.

Memory: each audited snapshot is held once, as one Polars frame (followers joined with their labels)
that DuckDB also queries in place through Arrow (no copy), with its sort orders and reason index
(``Audit.orders``, ``Audit.reasons``: 4 bytes per follower per order), and audits are evicted least
recently used past a byte budget (``FOLLOWAUDIT_WEB_CACHE_MB``, default 1024; ``followaudit serve
--cache-mb``, of which the web app gives 1/16 to rendered pages).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..audit import (
    LABEL_INPUT_COLUMNS,
    AuditResult,
    audit_frame,
    finish_report,
)
from ..bursts.attach import BURSTS_REASON
from ..classify import METHODS
from ..classify.reasons import reason_pattern
from ..classify.rules import DEFAULT_INACTIVE_DAYS, rule_columns
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
log = logging.getLogger("followaudit.web")
DB_SLOTS = 1  # concurrent DuckDB queries (see ReadDB.query)
ORDER_CACHE_BYTES = 256 * 2**20  # sorted follower positions kept for paging
ORDER_STEP = 4096  # positions of a sort order scanned beyond what a filter's density predicts
MASKS_KEPT = 64  # filter masks kept (1 byte per follower each)
DEFAULT_CACHE_MB = 1024  # audits kept in memory (FOLLOWAUDIT_WEB_CACHE_MB)


def freeze_long_lived() -> None:
    """Move every live object out of the cyclic garbage collector's walks (``gc.freeze``).

    A full collection walks every live object: ~200k once an audit is built, ~90 CPU-ms, 200-340 ms
    wall on a loaded machine, and it fell on a page now and then — the table's p99. What is alive
    once the server has started or built an audit lives long; frozen, it is still freed by
    reference counting when an audit is evicted (only cycles among frozen objects would stay).
    """
    gc.collect()
    gc.freeze()


def cache_budget(cache_mb: float | None = None) -> int:
    """Bytes of audits the web app keeps: ``cache_mb``, else $FOLLOWAUDIT_WEB_CACHE_MB, else 1 GiB."""
    if cache_mb is None:
        text = os.environ.get("FOLLOWAUDIT_WEB_CACHE_MB", "")
        try:
            cache_mb = float(text) if text else DEFAULT_CACHE_MB
        except ValueError:
            raise InputError(f"FOLLOWAUDIT_WEB_CACHE_MB must be a number of MiB, not {text!r}") from None
    if cache_mb <= 0:
        raise InputError(f"the web cache must be larger than 0 MiB, not {cache_mb:g}")
    return int(cache_mb * 2**20)


def stored_methods(store: Store, snapshot_id: int, cursor: Any = None) -> list[str]:
    """Labelling methods with complete stored labels for a snapshot, in METHODS order."""
    con = cursor if cursor is not None else store.con
    rows = store.label_counts(snapshot_id, cursor).items()
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
        unknown = followers.select("follower_id", rule_columns(as_of, inactive_days)["activity_unknown"].alias("activity_unknown"))
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
    """A cached audit: the result (its report; the labels are in ``rows``), its method, whether its
    labels are the stored ones, its charts, and its one table: followers joined with their labels in
    the default order, row i = pos i. Pages slice or gather ``rows``; DuckDB filters, sorts and
    counts ``arrow``, the same buffers viewed as Arrow with a ``pos`` column, under the name ``table``."""

    result: AuditResult
    method: str
    stored: bool
    charts: dict[str, str]
    table: str
    rows: pl.DataFrame
    arrow: pa.Table
    # Derived once and kept with the audit (counted in ``nbytes``, evicted with it): the whole
    # table's order per (column, asc|desc), and each reason pattern's rows.
    orders: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    reasons: dict[str, np.ndarray] | None = None  # reason pattern -> rows that give it
    locks: dict[Any, threading.Lock] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Memory held (the Arrow view shares the frame's buffers; only ``pos`` is its own)."""
        derived = sum(o.nbytes for o in list(self.orders.values()))
        derived += sum(p.nbytes for p in (self.reasons or {}).values())
        return int(self.rows.estimated_size()) + 8 * self.rows.height + sum(len(c) for c in self.charts.values()) + derived

    def lock(self, key: Any) -> threading.Lock:
        """One lock per derived thing, so two threads never compute the same order twice."""
        return self.locks.setdefault(key, threading.Lock())  # setdefault is atomic under the GIL


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
        if self.reason == BURSTS_REASON:  # the report's one line for all burst members: burst=any
            self.burst = self.burst or "any"
        return self

    def filters(self) -> dict[str, Any]:
        return {k: v for k, v in (("label", self.label), ("reason", self.reason), ("burst", self.burst), ("q", self.q)) if v}


class ReadDB:
    """The web app's read-only view of a workspace, with a per-process cache of audits.

    Each audited snapshot gets one table kept in memory: its followers joined with their labels,
    built once (seconds at 1M followers), so every follower page is a scan of one table instead of
    a join, and DuckDB reads it in place through Arrow. The workspace file itself is never written.
    The cache holds audits up to ``cache_bytes`` (see ``cache_budget``), evicting the least recently
    used; the most recent audit is kept whatever its size. Entries stay valid for the life of the
    process: DuckDB lets no other process write the file while it is open read-only.
    """

    def __init__(self, path: str | Path, writable: bool = False, cache_bytes: int | None = None,
                 warm_after_build: bool = False) -> None:
        # ``writable`` (``serve --review``): the review page records answers; nothing else writes.
        # ``warm_after_build`` (the server): compute sort orders in a thread once an audit is built.
        self.writable = writable
        self.warm_after_build = warm_after_build
        self._warming: list[threading.Thread] = []
        self.freeze_gc = False  # set by the server: see ``freeze_long_lived``
        self.store = Store(path, read_only=not writable)
        self.path = self.store.path
        self.cache_bytes = cache_bytes if cache_bytes is not None else cache_budget()
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._audits: OrderedDict[tuple[int, str], Audit] = OrderedDict()
        self._aliases: dict[tuple[int, str | None], tuple[int, str]] = {}
        self._counts: dict[tuple[Any, ...], int] = {}
        self._ids: set[int] | None = None
        self._slots = threading.BoundedSemaphore(DB_SLOTS)
        self._order_lock = threading.Lock()
        self._orders: OrderedDict[tuple[Any, ...], tuple[np.ndarray, int]] = OrderedDict()
        self._order_bytes = 0
        self._masks: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()

    def lock(self) -> threading.Lock:
        """The lock that serialises use of the Store's own connection (audit builds, review writes)."""
        return self._lock

    def forget(self, sid: int) -> None:
        """Drop the cached audits of a snapshot (a review changed its report)."""
        with self._lock, self._cache_lock:
            for key in [k for k in self._audits if k[0] == sid]:
                self._forget(self._audits.pop(key).table)
            self._aliases = {k: v for k, v in self._aliases.items() if v[0] != sid}

    def close(self) -> None:
        self.store.close()

    @property
    def cached_bytes(self) -> int:
        with self._cache_lock:
            return sum(a.nbytes for a in self._audits.values())

    def query(self, sql: str, params: list[Any] | None = None, tables: list[Audit] | None = None) -> pl.DataFrame:
        """Run a read query on its own cursor (safe from any thread); ``tables`` are the cached
        audits it reads, registered on that cursor under their names (zero-copy Arrow views).

        At most ``DB_SLOTS`` queries run at once: DuckDB parallelises each query itself, and many
        concurrent queries from the server's threads contend (measured on 2 cores, 40 threads:
        105 pages/s unbounded, 333 pages/s with one slot).
        """
        with self._slots:
            cur = self.store.cursor()
            try:
                for audit in tables or []:
                    cur.register(audit.table, audit.arrow)
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
        cached = self._cached((sid, method))
        if cached is not None:
            return cached
        with self._lock:  # one build at a time; the Store's own connection is not thread-safe
            cached = self._cached((sid, method))
            if cached is None:
                cached = self._build(sid, method)
                self._keep((sid, method), cached)
                if self.warm_after_build:
                    thread = threading.Thread(target=self._warm_quietly, args=(cached,), daemon=True, name=f"warm-{cached.table}")
                    self._warming = [t for t in self._warming if t.is_alive()] + [thread]
                    thread.start()
        return cached

    def wait_warm(self, timeout: float | None = None) -> bool:
        """Wait for the warming threads started so far (benchmarks, tests); True when all ended."""
        for thread in list(self._warming):
            thread.join(timeout)
        return not any(t.is_alive() for t in self._warming)

    def _warm_quietly(self, audit: Audit) -> None:
        try:
            self.warm(audit)
        except Exception:  # a request computes whatever is missing; closing the app stops this
            log.debug("warming %s stopped", audit.table, exc_info=True)
        if self.freeze_gc:
            freeze_long_lived()

    def _cached(self, key: tuple[int, str | None]) -> Audit | None:
        with self._cache_lock:
            found = self._aliases.get(key)
            if found is None or found not in self._audits:
                return None
            self._audits.move_to_end(found)
            return self._audits[found]

    def _keep(self, key: tuple[int, str | None], audit: Audit) -> None:
        """Add an audit to the cache, then evict the least recently used past the byte budget."""
        with self._cache_lock:
            canonical = (key[0], audit.method)
            self._audits[canonical] = audit
            self._audits.move_to_end(canonical)
            self._aliases[key] = self._aliases[canonical] = canonical
            self._evict()

    def _evict(self) -> None:  # under _cache_lock
        total = sum(a.nbytes for a in self._audits.values())
        while total > self.cache_bytes and len(self._audits) > 1:
            old_key, old = self._audits.popitem(last=False)
            total -= old.nbytes
            self._aliases = {k: v for k, v in self._aliases.items() if v != old_key}
            self._forget(old.table)

    def _forget(self, table: str) -> None:
        """Drop what was derived from an evicted audit's table and kept outside it (counts, filtered
        orders, masks)."""
        self._counts = {k: v for k, v in self._counts.items() if k[0] != table}
        with self._order_lock:
            for key in [k for k in self._orders if k[0] == table]:
                self._order_bytes -= self._orders.pop(key)[0].nbytes
            for key in [k for k in self._masks if k[0] == table]:
                del self._masks[key]

    def _build(self, sid: int, method: str | None) -> Audit:
        self.snapshot_id(sid)
        have = stored_methods(self.store, sid)
        result = build_audit(self.store, sid, method)
        method = result.report.method
        table = f"followers_{sid}_{re.sub(r'[^a-z0-9]', '_', method.lower())}"
        assert result.labels is not None
        labels = result.labels.select("follower_id", "label", "probability", "reasons")
        charts = report_charts(result.report, factory_frame(self.store, sid, labels))
        followers = self.store.query(
            f"SELECT {', '.join(TABLE_COLUMNS)} FROM followers WHERE snapshot_id = ?", [sid]
        )
        # The default order (follow rank, then id): a page of the default view is a slice.
        rows = (
            followers.join(labels, on="follower_id", how="inner")
            .sort(["follow_rank", "follower_id"], nulls_last=True)
            .rechunk()
        )
        result.labels = None  # the labels live in ``rows`` now: one copy
        arrow = rows.to_arrow(compat_level=pl.CompatLevel.newest())
        arrow = arrow.append_column("pos", pa.array(np.arange(rows.height, dtype=np.int64)))
        return Audit(result, method, method in have, charts, table, rows, arrow)

    # -- follower table ---------------------------------------------------------------------------
    def followers_page(self, sid: int, fq: FollowerQuery, method: str | None = None) -> dict[str, Any]:
        """One page of the follower table, filtered and sorted in memory, and the filtered total."""
        data, rows = self.followers_frame(sid, fq, method)
        return {**data, "rows": rows.to_dicts()}

    def followers_frame(self, sid: int, fq: FollowerQuery, method: str | None = None) -> tuple[dict[str, Any], pl.DataFrame]:
        """A page of the follower table as a frame, with what the page says about it (no ``rows``)."""
        fq.validate()
        audit = self.audit(sid, method)
        total = self._total(audit, fq)
        data = {
            "snapshot": sid,
            "method": audit.method,
            "filters": fq.filters(),
            "sort": fq.sort,
            "order": fq.order,
            "page": fq.page,
            "per_page": fq.per_page,
            "total": total,
            "pages": max(1, math.ceil(total / fq.per_page)),
        }
        return data, self._page_rows(audit, fq)

    def page_ready(self, sid: int, fq: FollowerQuery, method: str | None = None) -> bool:
        """Whether a page needs nothing computed: only slicing or gathering rows (well under a
        millisecond), so the server can answer it on its event loop instead of a worker thread."""
        audit = self._cached((sid, method))
        if audit is None or audit.reasons is None:
            return False
        key = self._filter_key(audit, fq)
        if not key[1]:
            return fq.sort == "follow_rank" and fq.order == "asc" or (fq.sort, fq.order) in audit.orders
        with self._order_lock:
            found = self._orders.get((*key, fq.sort, fq.order))
        return found is not None and (found[1] == audit.rows.height or len(found[0]) >= fq.page * fq.per_page)

    @staticmethod
    def _filter_key(audit: Audit, fq: FollowerQuery) -> tuple[str, tuple[tuple[str, Any], ...]]:
        return audit.table, tuple(sorted(fq.filters().items()))

    def _total(self, audit: Audit, fq: FollowerQuery) -> int:
        """How many rows pass the query's filters (kept per filter)."""
        key = self._filter_key(audit, fq)
        total = self._counts.get(key)
        if total is None:
            total = audit.rows.height if not key[1] else int(np.count_nonzero(self._mask(audit, fq)))
            self._counts[key] = total
        return total

    def _page_rows(self, audit: Audit, fq: FollowerQuery) -> pl.DataFrame:
        """A slice of the default view, or a gather of the rows of a filtered / sorted order."""
        offset, limit = (fq.page - 1) * fq.per_page, fq.per_page
        if not fq.filters() and fq.sort == "follow_rank" and fq.order == "asc":  # the default view
            return audit.rows.slice(offset, limit)
        page = self._order(audit, fq, offset + limit)[offset : offset + limit]
        return audit.rows[page.astype(np.int64)] if page.size else audit.rows.head(0)

    def _order(self, audit: Audit, fq: FollowerQuery, need: int | None = None) -> np.ndarray:
        """The matching rows' pos in the asked order: at least the first ``need`` of them (every one
        when None), computed once per filter+sort and kept (LRU).

        Paging through a sorted, filtered 1M-row table is then a slice plus a gather of 50 rows,
        instead of a filter and a sort per page. The order of the whole table per sort column is
        computed once per audit (``base_order``); a filtered order keeps the rows of that order its
        filter's mask passes, scanning only as far into it as the pages asked so far need (a first
        page reads a few thousand positions instead of gathering all 1M, ~5 ms), and further when a
        later page needs more.
        """
        filters = self._filter_key(audit, fq)[1]
        base = self.base_order(audit, fq.sort, fq.order)
        if not filters:
            return base
        key = (audit.table, filters, fq.sort, fq.order)
        n = len(base)
        with self._order_lock:
            found = self._orders.get(key)  # (the matching positions found, how far into ``base``)
            if found is not None:
                self._orders.move_to_end(key)
        if found is not None and (found[1] == n or need is not None and len(found[0]) >= need):
            return found[0]
        mask, total = self._mask(audit, fq), self._total(audit, fq)
        chosen, scanned = found if found is not None else (base[:0], 0)
        want = total if need is None else min(need, total)
        while len(chosen) < want:  # ends by the end of ``base`` at the latest, where all ``total`` are
            step = int((want - len(chosen)) * n / total * 1.25) + ORDER_STEP  # the span expected at its density
            part = base[scanned : scanned + step]
            chosen = np.concatenate([chosen, part[mask[part]]])
            scanned += len(part)
        if len(chosen) == total:
            scanned = n  # complete
        with self._order_lock:
            old = self._orders.get(key)
            if old is None or old[1] < scanned:
                self._order_bytes += chosen.nbytes - (old[0].nbytes if old is not None else 0)
                self._orders[key] = (chosen, scanned)
            while self._order_bytes > ORDER_CACHE_BYTES and len(self._orders) > 1:
                _, (dropped, _) = self._orders.popitem(last=False)
                self._order_bytes -= dropped.nbytes
        return chosen

    def base_order(self, audit: Audit, column: str, order: str) -> np.ndarray:
        """Every row's pos sorted by ``column`` (nulls last, ties in follow order), kept with the audit.

        A stable sort of the one column (Polars ``sort_by`` with ``maintain_order``; sorting on
        (column, pos) was 5-10x slower with many ties); the descending order is derived from the
        ascending one in one pass (``descending_order``).
        """
        key = (column, order)
        found = audit.orders.get(key)
        if found is not None:
            return found
        with audit.lock(key):
            found = audit.orders.get(key)
            if found is not None:
                return found
            if order == "desc":
                found = descending_order(audit.rows[column], self.base_order(audit, column, "asc"))
            elif column == "follow_rank":  # the default order is the table's own
                found = np.arange(audit.rows.height, dtype=_pos_dtype(audit.rows.height))
            else:
                pos = pl.int_range(pl.len(), dtype=pl.Int64 if audit.rows.height >= 2**31 else pl.Int32)
                found = audit.rows.select(pos.sort_by(column, nulls_last=True, maintain_order=True)).to_series().to_numpy()
            audit.orders[key] = found
        return found

    def warm(self, audit: Audit) -> None:
        """Compute what first pages of new filters and sorts would otherwise wait for: every sort
        order and the reason index of an audit (at 1M followers ~2 CPU-s; ``warm_after_build``
        runs it in a thread once an audit is built)."""
        self._reason_rows(audit)
        strings = {c for c in SORTABLE if audit.rows.schema[c] == pl.String}
        for column in sorted(SORTABLE, key=lambda c: c in strings):  # the slow string sorts last
            for order in ("asc", "desc"):
                with self._cache_lock:
                    if all(a is not audit for a in self._audits.values()):
                        return  # evicted or forgotten meanwhile: nobody will page through it
                self.base_order(audit, column, order)
        with self._cache_lock:  # the orders count in the audit's size: the budget may now be exceeded
            self._evict()

    def _reason_rows(self, audit: Audit) -> dict[str, np.ndarray]:
        """The rows each reason pattern is given to, and how often each is given (the filter menu).

        Few reasons are distinct (26 in a 1M-follower synthetic audit): the regex blanking runs on
        the distinct ones, then one join and one partition over all (~0.25 CPU-s at 1M, where a
        mask per reason filtered cost 0.1-0.25 s each and the menu's DuckDB count 0.8 s).
        """
        if audit.reasons is not None:
            return audit.reasons
        with audit.lock("reasons"):
            if audit.reasons is None:
                dtype = pl.Int64 if audit.rows.height >= 2**31 else pl.Int32
                given = audit.rows.select(pl.int_range(pl.len(), dtype=dtype).alias("pos"), "reasons").explode("reasons").drop_nulls("reasons")
                names = given.select(pl.col("reasons").unique()).with_columns(reason_pattern(pl.col("reasons")).alias("pattern"))
                each = given.join(names, on="reasons", how="left").select("pos", "pattern").partition_by("pattern", as_dict=True, include_key=False)
                audit.reasons = {str(k[0]): v.to_series().to_numpy() for k, v in each.items()}
        return audit.reasons

    def _mask(self, audit: Audit, fq: FollowerQuery) -> np.ndarray:
        """Which rows pass a query's filters: the AND of one kept mask per filter (1 byte per row)."""
        mask: np.ndarray | None = None
        for name, value in sorted(fq.filters().items()):
            if name == "reason" and value == BURSTS_REASON:  # stands for burst=any, set beside it
                continue
            one = self._one_mask(audit, name, value)
            mask = one if mask is None else mask & one
        assert mask is not None
        return mask

    def _one_mask(self, audit: Audit, name: str, value: str) -> np.ndarray:
        key = (audit.table, name, value)
        with self._order_lock:
            found = self._masks.get(key)
        if found is not None:
            return found
        rows = audit.rows
        if name == "label":
            found = (rows["label"] == value).fill_null(False).to_numpy()
        elif name == "reason":  # reasons match by pattern, as the report counts them
            found = np.zeros(rows.height, dtype=bool)
            found[self._reason_rows(audit).get(value, np.empty(0, dtype=np.int64))] = True
        elif name == "burst":
            pattern = BURST_REASON + ("" if value == "any" else rf"{int(value)}\b")
            found = rows.select(pl.col("reasons").list.eval(pl.element().str.contains(pattern)).list.any().fill_null(False)).to_series().to_numpy()
        else:  # q: handle or display name prefix
            handle, text = value.lstrip("@").lower(), value.lower()
            found = rows.select(
                pl.col("handle").str.to_lowercase().str.starts_with(handle).fill_null(False)
                | pl.col("display_name").str.to_lowercase().str.starts_with(text).fill_null(False)
            ).to_series().to_numpy()
        with self._order_lock:
            self._masks[key] = found
            while len(self._masks) > MASKS_KEPT:
                self._masks.popitem(last=False)
        return found

    def reason_counts(self, sid: int, method: str | None = None) -> list[tuple[str, int]]:
        """Every reason used in a snapshot's labels with its count (for the filter menu)."""
        rows = self._reason_rows(self.audit(sid, method))
        return sorted(((pattern, len(given)) for pattern, given in rows.items()), key=lambda rn: (-rn[1], rn[0]))

    def follower(self, sid: int, follower_id: str, method: str | None = None) -> dict[str, Any]:
        """One follower's profile fields, label, probability and reasons."""
        audit = self.audit(sid, method)
        found = self.query(
            "SELECT * EXCLUDE (snapshot_id) FROM followers WHERE snapshot_id = ? AND follower_id = ?", [sid, follower_id]
        )
        if not found.height:
            raise SnapshotNotFoundError(f"no follower {follower_id!r} in snapshot {sid}", "open the follower table to find one")
        label = audit.rows.filter(pl.col("follower_id") == follower_id).select("label", "probability", "reasons")
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
            counts = self.query(f"SELECT label, count(*) AS n {body} GROUP BY label ORDER BY label", tables=[new, old])
            rows = self.query(
                f"""SELECT n.follower_id, n.handle, n.display_name, n.follow_rank, n.label {body}
                    ORDER BY n.follow_rank DESC NULLS LAST, n.follower_id LIMIT ? OFFSET ?""",
                [per_page, (page - 1) * per_page], [new, old],
            )
            by_label = {str(k): int(v) for k, v in counts.iter_rows()}
            out[name] = {
                "count": sum(by_label.values()), "by_label": by_label,
                "snapshot": new.result.report.snapshot, "rows": rows.to_dicts(),
            }
        out["page"], out["per_page"] = page, per_page
        out["shares"] = share_changes(ra, rb)
        return out


def _pos_dtype(n: int) -> type:
    return np.int32 if n < 2**31 else np.int64


def descending_order(values: pl.Series, ascending: np.ndarray) -> np.ndarray:
    """The descending order of ``values`` (nulls still last, ties still in follow order) from the
    stable ascending one, in one pass: the runs of equal values in reverse, each run kept as is."""
    n = len(ascending) - values.null_count()
    head = ascending[:n]
    ordered = values.gather(head)
    new_run = ordered.ne_missing(ordered.shift(1)).fill_null(True)
    if ordered.dtype.is_float():  # NaN sorts as one value: a run, not one run per NaN
        new_run = new_run & ~(ordered.is_nan() & ordered.shift(1).is_nan()).fill_null(False)
    starts = np.flatnonzero(new_run.to_numpy())
    ends = np.append(starts[1:], n)
    run = np.cumsum(new_run.to_numpy()) - 1
    # element i of run r moves from ``i`` to ``n - ends[r] + (i - starts[r])``
    out = np.empty_like(head)
    out[n - ends[run] - starts[run] + np.arange(n)] = head
    return np.concatenate([out, ascending[n:]])


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
