"""Import a follower file into the workspace as one snapshot (idempotent per file content + options)."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

import duckdb
import numpy as np
import polars as pl

from ..schema import COLUMN_NAMES, SampleDesign, conform
from ..store.workspace import FOLLOWER_ROWS, Store
from .filehash import FileHash, hash_file
from .files import Detected, ParsedFile, ReadOptions, check_options, read_followers
from .formats import stream
from .formats.common import Observed
from .in_place import InPlace, RowCheck, check_in_place

# How the observation time of a snapshot is known, in the words the report uses (evidence.observed_at).
OBSERVED_FLAG = "flag"
OBSERVED_RECORD = "record"
OBSERVED_FILE_TIME = "file time (assumed)"

STREAM_MEMORY_LIMIT = "256MB"  # DuckDB's memory during a streamed import (see import_file)


@dataclass
class ImportResult:
    """What one import stored."""

    snapshot_id: int
    detected: Detected
    n_followers: int
    n_rejects: int
    first_reject: dict[str, Any] | None
    reused: bool
    account: str | None = None
    n_without_profile: int = 0
    observed: Observed | None = None  # when the file says its profiles were read
    # read in place before its rows' ids and texts were checked (``import_file(check_rows=False)``):
    # the check, to feed the rows as they are read; if it fails, import the file with ``copy=True``
    row_check: RowCheck | None = None

    def summary_lines(self) -> list[str]:
        """The human summary the CLI prints (stderr)."""
        noun = "follower" if self.n_followers == 1 else "followers"
        lines = [f"stored {self.n_followers:,} {noun} as snapshot {self.snapshot_id}"
                 + (" (replaced the earlier import of the same file)" if self.reused else "")]
        if self.n_without_profile:
            lines.append(f"{self.n_without_profile:,} followers have no profile (kept with their rank, profile fields empty)")
        if self.n_rejects:
            r = self.first_reject or {}
            lines.append(
                f"{self.n_rejects:,} {'row' if self.n_rejects == 1 else 'rows'} rejected; first: {r.get('file')}:{r.get('line')}, column {r.get('column')}: "
                f"{r.get('reason')} (see `followaudit rejects {self.snapshot_id}`)"
            )
        else:
            lines.append("0 rows rejected")
        return lines


def source_hash(path: str | Path, settings: dict[str, Any], profiles: str | Path | None = None,
                file_hash: FileHash | None = None) -> str:
    """Content hash of the file(s) plus the options that change what is read (``file_hash``: the
    file's own hash, when the caller started it)."""
    if file_hash is not None:
        digest = file_hash.digest()
    else:
        digest = hashlib.sha256()
        hash_file(path, digest)
    if profiles is not None:
        digest.update(b"\x00profiles\x00")
        hash_file(profiles, digest)
    return _with_settings(digest, settings)


def _with_settings(digest: Any, settings: dict[str, Any]) -> str:
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def import_file(
    store: Store,
    path: str | Path,
    *,
    input_format: str | None = None,
    progress: Callable[[int], None] | None = None,
    observed_at: datetime | None = None,
    copy: bool = False,
    file_hash: FileHash | None = None,
    check_rows: bool = True,
    **read: Unpack[ReadOptions],
) -> ImportResult:
    """Parse ``path`` and store it as a snapshot; importing the same file with the same options again
    replaces that snapshot's rows instead of adding a new snapshot.

    The snapshot's ``taken_at`` is when its profiles were observed, so ages and rates are measured
    then, not today: ``observed_at`` (the user's ``--observed-at``) wins; else what the file says
    (records' crawl times, a dataset's crawl date derived from its fields, Bluesky's latest
    ``indexedAt``); else the file's modification time, recorded as an assumption.

    ``input_format`` is an alias of ``fmt`` (the CLI's ``--input-format`` on commands whose
    ``--format`` is the output format). ``progress(n)`` is told of file bytes read (streamed files).

    A canonical Parquet file that needs no change is read where it is, not copied (``in_place``);
    ``copy=True`` (``--copy``) stores its rows in the workspace all the same. ``file_hash``: the
    hash of ``path`` started by the caller (see ``filehash``), instead of hashing it here.
    ``check_rows=False``: such a file is stored once its footer and columns pass, and the check of
    its rows' ids and texts is left to the caller, who reads them anyway (``ImportResult.row_check``).
    """
    platform, order, account, profiles = read.get("platform"), read.get("order"), read.get("account"), read.get("profiles")
    fmt, mapping = read.get("fmt") or input_format, read.get("mapping")
    strict, encoding = read.get("strict", False), read.get("encoding", "utf-8")
    if isinstance(mapping, tuple | list):
        mapping = list(mapping)
    check_options(platform, fmt, order)
    options: dict[str, Any] = dict(
        platform=platform, fmt=fmt, order=order, mapping=mapping or None, strict=strict, encoding=encoding,
        account=account, profiles=profiles,
    )
    settings = {
        "platform": platform, "format": fmt, "order": order, "mapping": mapping or None, "strict": strict,
        "encoding": encoding, "account": account, "profiles": str(profiles) if profiles is not None else None,
    }
    the_plan = stream.plan(path, platform=platform, fmt=fmt, order=order, mapping=mapping, profiles=profiles)
    parsed = read_followers(path, **options) if the_plan is None else None  # parse before touching the workspace
    taken_at = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    meta: dict[str, Any] = dict(source=str(path), settings=settings, taken_at=taken_at)
    found = Observed(_utc(observed_at), OBSERVED_FLAG, "--observed-at") if observed_at is not None else (
        parsed.observed if parsed is not None else None)
    digest: str | None = None  # the file's hash, once computed
    if the_plan is not None and the_plan.kind == "parquet" and not copy and not mapping:
        # the file is hashed (hashlib and reads release the GIL) on the other core while it is checked
        with ThreadPoolExecutor(1, thread_name_prefix="followaudit-hash") as pool:
            hashing = pool.submit(source_hash, path, settings, None, file_hash)
            checked = check_in_place(store, path, platform=platform, account=account, order=order, verify=check_rows)
            digest = hashing.result()
        if checked is not None:
            with store.transaction():
                result = _store_in_place(store, path, checked, digest, meta, the_plan)
                set_observation_time(store, result.snapshot_id, found, fallback=taken_at)
            result.row_check = None if check_rows else RowCheck(path, checked)
            return result
    con = store.con
    # zstd for the bulk insert: measured ~2x faster than DuckDB's default string compression on raw
    # JSON, and smaller on disk. A streamed import caps DuckDB's cache of the blocks it writes (~40
    # bytes a follower that nothing reads during an import), so its peak memory stays flat.
    with store.bulk_writes(), store.memory_limit(STREAM_MEMORY_LIMIT if the_plan is not None else None):
        if parsed is not None:
            digest = source_hash(path, settings, profiles, file_hash)
            result = _store_parsed(store, parsed, store.find_snapshot_by_hash(digest), digest, meta)
        else:
            assert the_plan is not None
            result = _store_streamed(store, path, the_plan, settings, meta, encoding=encoding, strict=strict,
                                     account=account, progress=progress, known_digest=digest, file_hash=file_hash)
        with store.transaction():
            set_observation_time(store, result.snapshot_id, found or result.observed, fallback=taken_at)
        if the_plan is not None:
            # Checkpoint now, within the cap: left to closing the store it ran without the cap and
            # peaked at 2.6 GiB after a 10M-row import.
            con.execute("CHECKPOINT")
    return result


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def set_observation_time(store: Store, snapshot_id: int, found: Observed | None, *, fallback: datetime) -> Observed:
    """Store when the snapshot's profiles were observed as its ``taken_at``, and how that is known
    (``settings["observed"]``: source and detail, shown in the report's evidence).

    ``found`` (a flag, or what the file said) wins; else the latest crawl time the records carry;
    else ``fallback`` (the file's modification time), marked as assumed.
    """
    if found is None:
        row = store.row("SELECT max(observed_at) AS latest FROM followers WHERE snapshot_id = ?", [snapshot_id])
        latest = row["latest"] if row else None
        found = (Observed(_utc(latest), OBSERVED_RECORD, "the latest crawl time the records carry") if latest is not None
                 else Observed(fallback, OBSERVED_FILE_TIME, "the file's modification time"))
    snapshot = store.snapshot(snapshot_id)
    settings = {**snapshot.settings, "observed": {"source": found.source, "detail": found.detail}}
    store.update_snapshot(snapshot_id, taken_at=found.at, settings=settings)
    return found


def _store_parsed(store: Store, parsed: ParsedFile, existing: int | None, digest: str, meta: dict[str, Any]) -> ImportResult:
    """A file parsed in memory: one transaction, so a failure leaves the workspace as it was."""
    n = parsed.followers.height
    with store.transaction():
        snapshot_id = existing if existing is not None else store.create_snapshot(
            platform=None, account=None, source_hash=digest, status="importing", **meta
        )
        store.delete_snapshot_rows(snapshot_id)
        _insert(store, snapshot_id, parsed.followers, parsed.rejects)
        store.update_snapshot(snapshot_id, platform=parsed.detected.platform, account=parsed.account,
                              design=SampleDesign("full", n, n), status="complete", **meta)
    return ImportResult(
        snapshot_id=snapshot_id, detected=parsed.detected, n_followers=n, n_rejects=parsed.rejects.height,
        first_reject=_first(parsed.rejects), reused=existing is not None, account=parsed.account,
        n_without_profile=parsed.n_without_profile,
    )


def _store_streamed(store: Store, path: str | Path, the_plan: stream.Plan, settings: dict[str, Any],
                    meta: dict[str, Any], *, encoding: str, strict: bool, account: str | None,
                    progress: Callable[[int], None] | None, known_digest: str | None = None,
                    file_hash: FileHash | None = None) -> ImportResult:
    """A large JSONL, CSV or Parquet file, block by block.

    Each block is committed on its own: DuckDB keeps uncommitted inserts in memory (measured ~650
    bytes per follower), so one transaction over 10M followers would need ~7 GB. The first block is
    parsed before the workspace is touched (a file of the wrong kind changes nothing); the rows go to
    a new snapshot marked ``importing``; if anything fails it is removed again. The file is hashed
    as it is read (in the parsing thread), and a re-import of the same file then takes over the
    earlier snapshot's id in one final transaction. ``known_digest``: ``source_hash`` of the file,
    when the caller already computed it (a Parquet file checked for reading in place), so it is not
    hashed again; ``file_hash``: the file's hash being taken by the caller's thread.
    """
    con = store.con
    digest = hashlib.sha256()
    hashed_while_reading = not the_plan.compressed and known_digest is None and file_hash is None
    # No prefetch thread: the writer stores two batches on DuckDB's threads while this thread reads
    # the next (the parsers run ahead of it), which holds as many batches as before.
    batches = stream.iter_batches(
        path, the_plan, name=str(path), encoding=encoding, strict=strict, account=account, on_progress=progress,
        digest=digest if hashed_while_reading else None,
    )
    first_batch = next(batches, None)
    account = account or the_plan.account
    target = store.create_snapshot(platform=the_plan.platform, account=account, source_hash=None,
                                   status="importing", **meta)
    try:
        n, n_rejects, first, file_ranks = 0, 0, None, False
        observed: Observed | None = None
        ids: list[pl.DataFrame] = []
        writer = _OrderedWriter(store, target)
        # The first batch is not held for the whole import (a chain over a list of it held it).
        if first_batch is not None:
            batches = itertools.chain(_once(first_batch), batches)
            first_batch = None
        try:
            for batch in batches:
                writer.put(batch.followers, batch.rejects)  # its "line" is not stored
                ids.append(batch.followers.select(stream.id_hash(), "line"))
                n += batch.followers.height
                n_rejects += batch.rejects.height
                first = first or _first(batch.rejects)
                file_ranks = file_ranks or batch.file_ranks
                if batch.observed is not None and (observed is None or batch.observed.at > observed.at):
                    observed = batch.observed
                del batch  # the writer holds it until it is stored; not while the next one is read
        finally:
            writer.close()
        if known_digest is not None:
            source_digest = known_digest
        elif file_hash is not None:
            source_digest = _with_settings(file_hash.digest(), settings)
        else:
            if not hashed_while_reading:
                hash_file(path, digest)
            source_digest = _with_settings(digest, settings)
        existing = store.find_snapshot_by_hash(source_digest)
        dups = _repeated(store, target, pl.concat(ids)) if ids else pl.DataFrame()
        del ids
        with store.transaction():
            if dups.height:
                dropped = _drop_repeats(store, target, dups, str(path), the_plan.id_column,
                                        renumber=not file_ranks and the_plan.order != "unknown")
                if the_plan.kind == "csv":  # the stored row holds no copy of its line: read it again
                    texts = stream.line_texts(path, dropped["line"].to_list(), encoding)
                    dropped = dropped.with_columns(pl.col("line").replace_strict(texts, default=None, return_dtype=pl.Utf8).alias("raw"))
                _insert(store, target, pl.DataFrame(), dropped)
                n -= dropped.height
                n_rejects += dropped.height
                first = min([r for r in (first, _first(dropped)) if r is not None], key=lambda r: r["line"])
            if not file_ranks and the_plan.order == "newest-first":
                # Blocks stored positions (0 = first line); the first line is the newest follower.
                con.execute(f"UPDATE {FOLLOWER_ROWS} SET follow_rank = ? - 1 - follow_rank WHERE snapshot_id = ?", [n, target])
            if file_ranks and the_plan.ranks_by:  # each block was ranked on its own: rank the whole file (rows are in file order)
                column = the_plan.ranks_by
                con.execute(
                    f"""UPDATE {FOLLOWER_ROWS} SET follow_rank = r.k
                        FROM (SELECT rowid AS rid, CASE WHEN {column} IS NOT NULL THEN row_number() OVER
                                     (PARTITION BY {column} IS NULL ORDER BY {column}, rowid) - 1 END AS k
                              FROM {FOLLOWER_ROWS} WHERE snapshot_id = ?) r
                        WHERE {FOLLOWER_ROWS}.rowid = r.rid""",
                    [target],
                )
            snapshot_id = target
            if existing is not None:  # same file, same options: keep the earlier snapshot's id
                store.delete_snapshot_rows(existing)
                for table in (FOLLOWER_ROWS, "rejects"):
                    con.execute(f"UPDATE {table} SET snapshot_id = ? WHERE snapshot_id = ?", [existing, target])
                con.execute("DELETE FROM snapshots WHERE snapshot_id = ?", [target])
                snapshot_id = existing
            store.update_snapshot(snapshot_id, platform=the_plan.platform, account=account, source_hash=source_digest,
                                  design=SampleDesign("full", n, n), status="complete", **meta)
    except BaseException:
        store.delete_snapshot(target)  # leave no half import behind
        raise
    order_used = "file" if file_ranks else the_plan.order
    return ImportResult(
        snapshot_id=snapshot_id, detected=the_plan.detected(order_used), n_followers=n, n_rejects=n_rejects,
        first_reject=first, reused=existing is not None, account=account, observed=observed,
    )


def _store_in_place(store: Store, path: str | Path, checked: InPlace, digest: str, meta: dict[str, Any],
                    the_plan: stream.Plan) -> ImportResult:
    """Register a checked canonical Parquet file as the snapshot's followers (the caller's transaction)."""
    existing = store.find_snapshot_by_hash(digest)
    design = SampleDesign("full", checked.n, checked.n)
    if existing is not None:
        store.delete_snapshot_rows(existing)
        store.update_snapshot(existing, platform=checked.platform, account=checked.account, design=design, status="complete", **meta)
        snapshot_id = existing
    else:
        snapshot_id = store.create_snapshot(platform=checked.platform, account=checked.account, source_hash=digest,
                                            design=design, **meta)
    store.add_follower_file(snapshot_id, path)
    the_plan.platform, the_plan.layout, the_plan.note = checked.platform, "followers", "canonical table, read in place"
    return ImportResult(
        snapshot_id=snapshot_id, detected=the_plan.detected("file" if checked.ranked else the_plan.order), n_followers=checked.n,
        n_rejects=0, first_reject=None, reused=existing is not None, account=checked.account,
    )


def _repeated(store: Store, snapshot_id: int, hashes: pl.DataFrame) -> pl.DataFrame:
    """``stream.duplicates`` of the stored rows, from each kept row's id hash and line (16 bytes a
    row however long the ids, so 10M rows need 160 MB, not the ids themselves).

    Equal hashes only nominate candidates: the repeated ids come from the workspace, and the lines
    of their copies from the rows with their hash (rows are stored in file order). If a hash is
    shared by another id (a 64-bit collision), the ids are read back in stored order instead.
    """
    ordered = np.sort(hashes.get_column("h").to_numpy())  # a sort needs less memory than a hash set
    if not (ordered[1:] == ordered[:-1]).any():
        return stream.duplicates(pl.DataFrame(schema={"follower_id": pl.Utf8, "line": pl.Int64}))
    del ordered
    repeated = store.query(
        "SELECT follower_id, count(*) AS n FROM followers WHERE snapshot_id = ? GROUP BY follower_id HAVING count(*) > 1",
        [snapshot_id],
    ).with_columns(stream.id_hash())
    candidates = hashes.join(repeated, on="h", how="inner", maintain_order="left")
    per_id = candidates.group_by("follower_id").agg(pl.len().alias("rows"), pl.col("n").first())
    if repeated.get_column("h").is_unique().all() and per_id.filter(pl.col("rows") != pl.col("n")).height == 0:
        return stream.duplicates(candidates.select("follower_id", "line"))
    stored = store.query(f"SELECT follower_id FROM {FOLLOWER_ROWS} WHERE snapshot_id = ? ORDER BY rowid", [snapshot_id])
    return stream.duplicates(stored.with_columns(hashes.get_column("line")))


def _drop_repeats(store: Store, snapshot_id: int, dups: pl.DataFrame, name: str, column: str, *,
                  renumber: bool) -> pl.DataFrame:
    """Remove ids repeated across streamed blocks (the first line keeps the follower); their rejects.

    Rows were appended in file order inside this transaction, so the k-th stored copy of an id (by
    rowid) is its k-th line. Positions are renumbered without gaps when they are in use.
    """
    con = store.con
    con.register("_repeats", dups.to_arrow())
    try:
        found = store.query(
            f"""WITH copies AS (
                   SELECT rowid AS rid, follower_id, raw,
                          row_number() OVER (PARTITION BY follower_id ORDER BY rowid) - 1 AS k
                   FROM {FOLLOWER_ROWS}
                   WHERE snapshot_id = ? AND follower_id IN (SELECT follower_id FROM _repeats))
               SELECT c.rid, r.follower_id, r.line, r.first_line, c.raw
               FROM copies c JOIN _repeats r ON c.follower_id = r.follower_id AND c.k = r.k
               ORDER BY r.line""",
            [snapshot_id],
        )
        con.register("_repeat_rows", found.select("rid").to_arrow())
        con.execute(f"DELETE FROM {FOLLOWER_ROWS} WHERE snapshot_id = ? AND rowid IN (SELECT rid FROM _repeat_rows)", [snapshot_id])
        con.unregister("_repeat_rows")
    finally:
        con.unregister("_repeats")
    rejects = stream.duplicate_rejects(found, name, column)
    if renumber:
        con.execute(
            f"""UPDATE {FOLLOWER_ROWS} SET follow_rank = r.new
               FROM (SELECT rowid AS rid, row_number() OVER (ORDER BY follow_rank) - 1 AS new
                     FROM {FOLLOWER_ROWS} WHERE snapshot_id = ?) r
               WHERE {FOLLOWER_ROWS}.rowid = r.rid""",
            [snapshot_id],
        )
    return rejects


def _append_canonical(con: duckdb.DuckDBPyConnection, snapshot_id: int, followers: pl.DataFrame) -> None:
    """Insert an already canonical frame (the importers' output is conformed once, in ``finish``).

    Like ``Store.append_followers`` without its second ``conform``, and handing DuckDB Arrow string
    views (no copy of the raw JSON): measured ~9% less CPU per imported follower. Columns after the
    canonical ones (a streamed batch's ``line``) are left out by the INSERT itself.
    """
    frame = followers if followers.columns[: len(COLUMN_NAMES)] == COLUMN_NAMES else conform(followers)
    con.register("_incoming_import", frame.to_arrow(compat_level=pl.CompatLevel.newest()))
    try:
        cols = ", ".join(COLUMN_NAMES)
        con.execute(f"INSERT INTO {FOLLOWER_ROWS} (snapshot_id, {cols}) SELECT ?, {cols} FROM _incoming_import", [snapshot_id])
    finally:
        con.unregister("_incoming_import")


def _first(rejects: pl.DataFrame) -> dict[str, Any] | None:
    return rejects.row(0, named=True) if rejects.height else None


def _insert(store: Store, snapshot_id: int, followers: pl.DataFrame, rejects: pl.DataFrame,
            con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Append followers and rejects to a snapshot (the caller holds the transaction, on ``con``
    when given: a cursor of ``store``)."""
    con = con or store.con
    if followers.height:
        _append_canonical(con, snapshot_id, followers)
    store.append_rejects(snapshot_id, rejects, con)


def _once(item: Any) -> Iterator[Any]:
    """``item``, yielded once and then no longer referenced here."""
    box = [item]
    del item
    yield box.pop()


class _OrderedWriter:
    """Stores streamed batches two at a time, each in its own transaction on its own cursor,
    committed in file order.

    A batch's INSERT (decoding Arrow, compressing one row group) runs on one core; the whole
    import waited on it while the parsers had the other. Two INSERTs at once run on DuckDB's two
    threads. Commits stay in file order (each waits for the previous batch's), and DuckDB numbers
    rows as they are committed, so stored rows are still in file order (``_drop_repeats`` relies on
    it). Each commit holds whole batches, as before: a failure or a crash leaves whole batches of an
    ``importing`` snapshot, which the caller removes.
    """

    LANES = 2

    def __init__(self, store: Store, snapshot_id: int) -> None:
        self.store, self.snapshot_id = store, snapshot_id
        self.cursors = [store.con.cursor() for _ in range(self.LANES)]
        self.pool = ThreadPoolExecutor(self.LANES, thread_name_prefix="followaudit-store")
        self.pending: deque[Future[None]] = deque()
        self.count = 0

    def put(self, followers: pl.DataFrame, rejects: pl.DataFrame) -> None:
        """Start storing a batch (after the batch two before it, which used the same cursor, is stored)."""
        if len(self.pending) == self.LANES:
            self.pending.popleft().result()
        before = self.pending[-1] if self.pending else None
        con = self.cursors[self.count % self.LANES]
        self.count += 1
        self.pending.append(self.pool.submit(self._store, con, before, [followers, rejects]))

    def _store(self, con: duckdb.DuckDBPyConnection, before: Future[None] | None, batch: list[pl.DataFrame]) -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            _insert(self.store, self.snapshot_id, *batch, con)
            batch.clear()  # stored: free its rows (and the file blocks they view) while it waits to commit
            if before is not None:
                before.result()  # commit after the previous batch (raises if it failed: this one goes too)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Wait for every batch to be stored; raise the first failure (after all have stopped)."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            for con in self.cursors:
                con.close()
