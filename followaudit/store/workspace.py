"""The workspace: one DuckDB file holding snapshots, followers, rejects and labels.

Default location: ``$FOLLOWAUDIT_DB`` if set, else ``followaudit.duckdb`` in the current directory.
Every command takes ``--db PATH``. Schema changes go through the numbered ``MIGRATIONS`` below, applied
in order inside a transaction and recorded in ``schema_migrations``.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .. import __version__
from ..errors import SnapshotNotFoundError, StoreError
from ..schema import COLUMN_NAMES, LABELS, SampleDesign, conform
from .collection import CollectionStore
from .parquet_columns import column_plan, parquet_slices, scan_planned, sql_columns
from .reach_tables import ReachStore
from .reviews import MIGRATION_SQL as REVIEWS_SQL
from .reviews import ReviewStore

DEFAULT_DB_NAME = "followaudit.duckdb"


def default_db_path() -> Path:
    """``$FOLLOWAUDIT_DB`` or ``./followaudit.duckdb``."""
    return Path(os.environ.get("FOLLOWAUDIT_DB") or DEFAULT_DB_NAME)


_FOLLOWER_COLUMNS_SQL = """
    snapshot_id BIGINT NOT NULL,
    platform VARCHAR, account VARCHAR, follower_id VARCHAR NOT NULL, handle VARCHAR,
    display_name VARCHAR, follow_rank BIGINT, created_at TIMESTAMPTZ,
    followers_count BIGINT, following_count BIGINT, posts_count BIGINT, likes_count BIGINT,
    listed_count BIGINT, has_avatar BOOLEAN, bio VARCHAR, bio_length BIGINT, has_url BOOLEAN,
    has_location BOOLEAN, verified BOOLEAN, private BOOLEAN, self_declared_bot BOOLEAN,
    moderation_labels VARCHAR[], last_active_at TIMESTAMPTZ, observed_at TIMESTAMPTZ,
    handle_length BIGINT, handle_digits BIGINT, truth_label VARCHAR, raw VARCHAR
"""

# Labels written before migration 8 stay in this table; an audit writes its labels to Parquet files in
# the workspace's labels folder (``Store.labels_dir``), registered in ``label_files``. Readers use the
# view ``labels``: both, with the reasons added after labelling (``label_reasons``: bursts) appended.
LABEL_ROWS = "label_rows"
LABEL_COLUMNS = ("snapshot_id", "follower_id", "method", "label", "probability", "reasons")


def _labels_view_sql(files: list[tuple[int, str, str]]) -> str:
    """The ``labels`` view: the stored rows and the Parquet ``files`` (snapshot id, method, absolute
    path). A file holds one snapshot's labels of one method, so those two are constants of its
    branch, not columns of the file (files written before kept them: they are not read), and a
    reader's filter on them skips the other snapshots' files."""
    columns = ", ".join(LABEL_COLUMNS)
    groups: dict[tuple[int, str], list[str]] = {}
    for snapshot_id, method, path in files:
        groups.setdefault((int(snapshot_id), method), []).append(path)
    branches = [
        f"SELECT {snapshot_id}::BIGINT AS snapshot_id, follower_id, {_quoted(method)} AS method, label, probability, reasons "
        f"FROM read_parquet([{', '.join(_quoted(p) for p in paths)}])"
        for (snapshot_id, method), paths in groups.items()
    ]
    return " UNION ALL ".join([f"SELECT {columns} FROM {LABEL_ROWS}", *branches])


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ``labels_full``: ``labels`` with the reasons added after labelling (bursts' members: a row per
# follower in ``label_reasons``), kept apart because a Parquet file cannot be updated in place; each
# is appended once to the label's own reasons. Only readers that show reasons pay for this join.
_LABELS_FULL_SQL = """
    SELECT s.snapshot_id, s.follower_id, s.method, s.label, s.probability,
           CASE WHEN a.reasons IS NULL THEN s.reasons
                ELSE list_concat(coalesce(s.reasons, []::VARCHAR[]),
                                 list_filter(a.reasons, lambda r: NOT list_contains(coalesce(s.reasons, []::VARCHAR[]), r)))
           END AS reasons
    FROM labels s LEFT JOIN label_reasons a
      ON a.snapshot_id = s.snapshot_id AND a.method = s.method AND a.follower_id = s.follower_id"""


# (version, name, SQL). Append only; never edit a migration that has shipped.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "core tables",
        f"""
        CREATE SEQUENCE IF NOT EXISTS snapshot_ids START 1;
        CREATE TABLE snapshots (
            snapshot_id BIGINT PRIMARY KEY DEFAULT nextval('snapshot_ids'),
            platform VARCHAR, account VARCHAR, source VARCHAR, source_hash VARCHAR,
            taken_at TIMESTAMPTZ, tool_version VARCHAR, settings VARCHAR,
            sample_kind VARCHAR DEFAULT 'full', sample_n BIGINT, sample_population BIGINT,
            sample_seed BIGINT, followers_reported BIGINT, status VARCHAR DEFAULT 'complete'
        );
        CREATE TABLE followers ({_FOLLOWER_COLUMNS_SQL});
        CREATE TABLE rejects (
            snapshot_id BIGINT, file VARCHAR, line BIGINT, "column" VARCHAR, reason VARCHAR, raw VARCHAR
        );
        CREATE TABLE labels (
            snapshot_id BIGINT NOT NULL, follower_id VARCHAR NOT NULL, method VARCHAR NOT NULL,
            label VARCHAR NOT NULL, probability DOUBLE, reasons VARCHAR[]
        );
        """,
    ),
    (
        2,
        "live collection: checkpoints, enumerated ids, posts",
        """
        CREATE TABLE collect_state (
            snapshot_id BIGINT PRIMARY KEY, resume_key VARCHAR NOT NULL, target_id VARCHAR,
            phase VARCHAR NOT NULL, cursor VARCHAR, pages BIGINT NOT NULL DEFAULT 0,
            enumerated BIGINT NOT NULL DEFAULT 0, updated_at TIMESTAMPTZ
        );
        CREATE TABLE collect_pages (
            snapshot_id BIGINT NOT NULL, page BIGINT NOT NULL, cursor_in VARCHAR, cursor_out VARCHAR,
            n BIGINT, fetched_at TIMESTAMPTZ
        );
        CREATE TABLE collect_ids (
            snapshot_id BIGINT NOT NULL, position BIGINT NOT NULL, follower_id VARCHAR NOT NULL,
            handle VARCHAR, sampled BOOLEAN NOT NULL DEFAULT false, done BOOLEAN NOT NULL DEFAULT false,
            status VARCHAR, last_active_at TIMESTAMPTZ, last_active_kind VARCHAR,
            observed_at TIMESTAMPTZ, profile VARCHAR
        );
        CREATE TABLE posts (
            snapshot_id BIGINT NOT NULL, post_id VARCHAR NOT NULL, created_at TIMESTAMPTZ,
            likes BIGINT, replies BIGINT, reposts BIGINT, quotes BIGINT, views BIGINT, raw VARCHAR
        );
        """,
    ),
    (
        3,
        "engagement and growth: count history, per-item views, likers audits",
        f"""
        CREATE TABLE follower_counts (
            platform VARCHAR, account VARCHAR NOT NULL, date DATE NOT NULL, followers BIGINT NOT NULL,
            source VARCHAR NOT NULL
        );
        CREATE TABLE view_items (
            platform VARCHAR, account VARCHAR NOT NULL, item_id VARCHAR NOT NULL, published TIMESTAMPTZ,
            views BIGINT, likes BIGINT, comments BIGINT, source VARCHAR
        );
        CREATE SEQUENCE IF NOT EXISTS likers_ids START 1;
        CREATE TABLE likers_audits (
            likers_id BIGINT PRIMARY KEY DEFAULT nextval('likers_ids'),
            platform VARCHAR NOT NULL, account VARCHAR, post_uri VARCHAR NOT NULL, post_url VARCHAR,
            api_base VARCHAR, resume_key VARCHAR, phase VARCHAR NOT NULL, cursor VARCHAR,
            pages BIGINT NOT NULL DEFAULT 0, settings VARCHAR, taken_at TIMESTAMPTZ,
            sample_kind VARCHAR DEFAULT 'full', sample_n BIGINT, sample_population BIGINT, sample_seed BIGINT,
            likes_reported BIGINT, reposts_reported BIGINT, status VARCHAR DEFAULT 'collecting'
        );
        CREATE TABLE engagers (
            likers_id BIGINT NOT NULL, kind VARCHAR NOT NULL, position BIGINT NOT NULL,
            engager_id VARCHAR NOT NULL, handle VARCHAR, engaged_at TIMESTAMPTZ, profile VARCHAR,
            sampled BOOLEAN NOT NULL DEFAULT false, done BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE engager_rows ({_FOLLOWER_COLUMNS_SQL.replace("snapshot_id", "likers_id")});
        """,
    ),
    (
        4,
        "exact follow times",
        """
        ALTER TABLE followers ADD COLUMN followed_at TIMESTAMPTZ;
        ALTER TABLE engager_rows ADD COLUMN followed_at TIMESTAMPTZ;
        """,
    ),
    (5, "reviews: the reviewed sample's design, queue and answers", REVIEWS_SQL),
    (
        6,
        "platform evidence: follow-time checkpoints of live collection",
        """
        ALTER TABLE collect_ids ADD COLUMN follow_checked BOOLEAN DEFAULT false;
        """,
    ),
    (
        7,
        "canonical Parquet read in place: stored rows in follower_rows, files in follower_files",
        """
        ALTER TABLE followers RENAME TO follower_rows;
        CREATE VIEW followers AS SELECT * FROM follower_rows;
        CREATE TABLE follower_files (
            snapshot_id BIGINT PRIMARY KEY, path VARCHAR NOT NULL, size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL
        );
        """,
    ),
    (
        8,
        "labels in Parquet files beside the workspace: label_files, reasons added later in label_reasons",
        f"""
        ALTER TABLE labels RENAME TO {LABEL_ROWS};
        CREATE TABLE label_files (
            snapshot_id BIGINT NOT NULL, method VARCHAR NOT NULL, file VARCHAR NOT NULL, rows BIGINT NOT NULL
        );
        CREATE TABLE label_reasons (
            snapshot_id BIGINT NOT NULL, method VARCHAR NOT NULL, follower_id VARCHAR NOT NULL, reasons VARCHAR[] NOT NULL
        );
        CREATE VIEW labels AS {_labels_view_sql([])};
        CREATE VIEW labels_full AS {_LABELS_FULL_SQL};
        """,
    ),
]

# Where follower rows are written. Readers use the view ``followers``: the stored rows, plus (in
# each connection, see ``Store.attach_files``) the canonical Parquet files read in place.
FOLLOWER_ROWS = "follower_rows"


@dataclass
class Snapshot:
    """One stored snapshot's metadata."""

    snapshot_id: int
    platform: str | None
    account: str | None
    source: str | None
    source_hash: str | None
    taken_at: datetime | None
    tool_version: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    design: SampleDesign = field(default_factory=SampleDesign)
    followers_reported: int | None = None
    status: str = "complete"
    n_followers: int = 0
    n_rejects: int = 0


class Store(CollectionStore, ReachStore, ReviewStore):
    """A DuckDB workspace file. Use as a context manager or call ``close()``."""

    def __init__(self, path: str | Path | None = None, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"no workspace at {self.path}", "run `followaudit demo` or `followaudit import FILE` first, or pass --db")
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:  # locked by another process, not a DuckDB file, ...
            raise StoreError(f"cannot open workspace {self.path}: {str(exc).splitlines()[0]}") from exc
        self.con.execute("SET TimeZone = 'UTC'")
        self._labels_view: str | None = None
        self._missing_labels: set[tuple[int, str]] = set()  # (snapshot, method) whose label files are gone
        self.labels_full = "labels_full"  # the view of labels with every reason (see _LABELS_FULL_SQL)
        self._in_transaction = False
        # label files to remove once the transaction that dropped them commits / that wrote them rolls back
        self._dropped_files: list[Path] = []
        self._written_files: list[Path] = []
        if not read_only:
            self.migrate()
        self.file_problems: dict[int, str] = {}  # snapshot id -> why its Parquet file cannot be read
        self._followers_view: str | None = None
        self._files: dict[int, str] = {}  # snapshot id -> the Parquet file its followers are read from
        self._plans: dict[int, dict[str, str]] = {}  # snapshot id -> how its file's columns read (parquet_columns)
        self._footers: dict[int, pl.DataFrame] = {}  # snapshot id -> its file's footer (parquet_footer)
        self._types: dict[str, str] | None = None  # the follower table's column types
        if not read_only:
            self._sweep_label_files()
        self.attach_files()
        self._attach_labels()

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def memory_limit(self, limit: str | None) -> Iterator[None]:
        """Cap DuckDB's memory for a block (``None``: leave it), restoring the setting after.

        DuckDB keeps the blocks it wrote or read cached up to its limit (80% of RAM by default);
        during a streamed import or an audit nothing reads them again, so the cap keeps the
        process's peak memory flat with the number of followers. Larger work spills to disk.
        """
        if limit is None:
            yield
            return
        old = self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # type: ignore[index]
        self.con.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            self.con.execute(f"SET memory_limit = '{old}'")

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Compress what a block writes with zstd: for an import's followers (raw JSON) measured about half
        the CPU of DuckDB's own choice, and smaller. (Not for labels: 25% less CPU, twice the bytes.)"""
        self.con.execute("SET force_compression = 'zstd'")
        try:
            yield
        finally:
            self.con.execute("RESET force_compression")

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block atomically: everything in it lands, or nothing does (label files included)."""
        self.con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            self._in_transaction = False
            _remove(self._written_files)
            self._dropped_files = []
            self.attach_files()  # the views as they were before the block
            self._attach_labels()
            raise
        else:
            self.con.execute("COMMIT")
            self._in_transaction = False
            _remove(self._dropped_files)
            self._written_files = []

    def migrate(self) -> None:
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
        )
        done = set(self.query("SELECT version FROM schema_migrations")["version"].to_list())
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            with self.transaction() as con:
                con.execute(sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])

    def schema_version(self) -> int:
        row = self.row("SELECT max(version) AS v FROM schema_migrations")
        return int(row["v"] or 0)

    def row(self, sql: str, params: list[Any] | None = None) -> dict[str, Any] | None:
        """The first row of a query as a dict, or None. Drains the result (DuckDB 2 requires it)."""
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        return dict(zip(names, rows[0], strict=True)) if rows else None

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        """Run SQL and return a Polars frame (the read side of the store)."""
        return self.con.sql(sql, params=params or None).pl()

    # -- snapshots -------------------------------------------------------------------------------
    def create_snapshot(
        self,
        *,
        platform: str | None,
        account: str | None,
        source: str | None,
        source_hash: str | None = None,
        settings: dict[str, Any] | None = None,
        design: SampleDesign | None = None,
        followers_reported: int | None = None,
        status: str = "complete",
        taken_at: datetime | None = None,
    ) -> int:
        design = design or SampleDesign()
        row = self.row(
            """INSERT INTO snapshots (platform, account, source, source_hash, taken_at, tool_version,
                   settings, sample_kind, sample_n, sample_population, sample_seed, followers_reported, status)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING snapshot_id""",
            [
                platform, account, source, source_hash, taken_at or datetime.now(UTC), __version__,
                json.dumps(settings or {}, sort_keys=True, default=str), design.kind, design.n,
                design.population, design.seed, followers_reported, status,
            ],
        )
        return int(row["snapshot_id"])

    def update_snapshot(self, snapshot_id: int, **values: Any) -> None:
        """Set snapshot columns (``design=`` expands to the sample columns)."""
        design = values.pop("design", None)
        if design is not None:
            values.update(sample_kind=design.kind, sample_n=design.n, sample_population=design.population, sample_seed=design.seed)
        if "settings" in values:
            values["settings"] = json.dumps(values["settings"], sort_keys=True, default=str)
        if not values:
            return
        sets = ", ".join(f"{k} = ?" for k in values)
        self.con.execute(f"UPDATE snapshots SET {sets} WHERE snapshot_id = ?", [*values.values(), snapshot_id])

    def find_snapshot_by_hash(self, source_hash: str) -> int | None:
        row = self.row(
            "SELECT snapshot_id FROM snapshots WHERE source_hash = ? ORDER BY snapshot_id LIMIT 1", [source_hash]
        )
        return int(row["snapshot_id"]) if row else None

    def snapshot(self, ref: int | str) -> Snapshot:
        """A snapshot by id, or the latest snapshot of an account name / handle."""
        snapshot_id = self.resolve(ref)
        if snapshot_id in self.file_problems:
            raise StoreError(self.file_problems[snapshot_id],
                             "put the file back unchanged, or import it again (`followaudit import FILE`; --copy stores its rows here)")
        # the counts by the id itself: correlated with s.snapshot_id, DuckDB grouped every follower of
        # every snapshot first (24 ms a call at 3M followers, 4 ms so)
        rec = self.row(
            """SELECT s.*, (SELECT count(*) FROM followers f WHERE f.snapshot_id = $1) AS n_followers,
                      (SELECT count(*) FROM rejects r WHERE r.snapshot_id = $1) AS n_rejects
               FROM snapshots s WHERE snapshot_id = $1""",
            [snapshot_id],
        )
        assert rec is not None
        return Snapshot(
            snapshot_id=rec["snapshot_id"], platform=rec["platform"], account=rec["account"],
            source=rec["source"], source_hash=rec["source_hash"], taken_at=rec["taken_at"],
            tool_version=rec["tool_version"], settings=json.loads(rec["settings"] or "{}"),
            design=SampleDesign(rec["sample_kind"] or "full", rec["sample_n"], rec["sample_population"], rec["sample_seed"]),
            followers_reported=rec["followers_reported"], status=rec["status"] or "complete",
            n_followers=int(rec["n_followers"]), n_rejects=int(rec["n_rejects"]),
        )

    def follower_count(self, snapshot_id: int, column: str | None = None) -> int:
        """A snapshot's followers (``column``: those with it known), counted by the snapshot's own id
        (a count correlated with a list of snapshots groups every follower of every snapshot first)."""
        counted = f"count({column})" if column else "count(*)"
        row = self.row(f"SELECT {counted} AS n FROM followers WHERE snapshot_id = $1", [snapshot_id])
        return int(row["n"]) if row else 0

    def resolve(self, ref: int | str) -> int:
        """Turn a snapshot id or an account name into a snapshot id."""
        text = str(ref).strip()
        if text.isdigit():
            row = self.row("SELECT snapshot_id FROM snapshots WHERE snapshot_id = ?", [int(text)])
        else:
            row = self.row(
                "SELECT snapshot_id FROM snapshots WHERE account = ? OR lower(account) = lower(?) ORDER BY taken_at DESC, snapshot_id DESC LIMIT 1",
                [text, text.lstrip("@")],
            )
        if not row:
            raise SnapshotNotFoundError(f"no snapshot {text!r} in {self.path}")
        return int(row["snapshot_id"])

    def list_snapshots(self) -> pl.DataFrame:
        return self.query(
            """SELECT s.snapshot_id, s.platform, s.account, s.taken_at, s.source, s.sample_kind,
                      s.sample_n, s.sample_population, s.status,
                      (SELECT count(*) FROM followers f WHERE f.snapshot_id = s.snapshot_id) AS followers,
                      (SELECT count(*) FROM rejects r WHERE r.snapshot_id = s.snapshot_id) AS rejects
               FROM snapshots s ORDER BY s.snapshot_id"""
        )

    # Tables keyed by snapshot_id ("labels": its rows, files and added reasons); a re-import replaces
    # only the first four (posts stay).
    SNAPSHOT_TABLES = (FOLLOWER_ROWS, "follower_files", "rejects", "labels", "posts", "collect_state", "collect_pages", "collect_ids")

    def delete_snapshot_rows(self, snapshot_id: int, tables: tuple[str, ...] = SNAPSHOT_TABLES[:4]) -> None:
        """Remove the follower rows (or file), rejects and labels of a snapshot (not the snapshot record)."""
        read_in_place = self.row("SELECT 1 AS x FROM follower_files WHERE snapshot_id = ?", [snapshot_id]) is not None
        for table in tables:
            if table == "labels":
                self.delete_labels(snapshot_id)
            else:
                self.con.execute(f"DELETE FROM {table} WHERE snapshot_id = ?", [snapshot_id])
        if read_in_place:
            self.attach_files()

    # -- canonical Parquet read in place ---------------------------------------------------------
    def add_follower_file(self, snapshot_id: int, path: str | Path) -> None:
        """Read a snapshot's followers from a canonical Parquet file, in place (the caller checked it:
        ``sources.in_place``); the file's size and modification time are kept to notice a change."""
        file = Path(path).resolve()
        stat = file.stat()
        self.con.execute("INSERT INTO follower_files VALUES (?, ?, ?, ?)", [snapshot_id, str(file), stat.st_size, stat.st_mtime_ns])
        self.attach_files()

    def attach_files(self) -> None:
        """(Re)define ``followers`` for this connection: the stored rows plus every Parquet file read in
        place that is still there unchanged. A missing or changed file leaves its snapshot out and is
        said by ``snapshot()`` (one line), so the other snapshots stay readable."""
        self.file_problems = {}
        self._followers_view = None
        self._files = {}
        self._plans = {}
        self._footers = {}
        if not self.has_table("follower_files"):
            return  # a read-only workspace from before migration 7
        files = self.query("SELECT snapshot_id, path, size, mtime_ns FROM follower_files ORDER BY snapshot_id")
        parts = [f"SELECT * FROM {FOLLOWER_ROWS}"]
        for snapshot_id, path, size, mtime_ns in files.iter_rows():
            try:
                stat = Path(path).stat()
            except OSError:
                self.file_problems[snapshot_id] = f"snapshot {snapshot_id} reads its followers from {path}, which is missing"
                continue
            if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
                self.file_problems[snapshot_id] = f"snapshot {snapshot_id} reads its followers from {path}, which changed after it was imported"
                continue
            plan = self.parquet_plan(path)
            if plan is None:  # checked when imported, so only a file replaced with the same size and time
                self.file_problems[snapshot_id] = f"snapshot {snapshot_id} reads its followers from {path}, whose columns changed"
                continue
            self._files[int(snapshot_id)] = str(path)
            self._plans[int(snapshot_id)] = plan
            quoted = str(path).replace("'", "''")
            parts.append(f"SELECT {int(snapshot_id)}::BIGINT AS snapshot_id, {sql_columns(plan, self._table_types())} FROM read_parquet('{quoted}')")
        if len(parts) > 1:
            self._followers_view = "CREATE OR REPLACE TEMP VIEW followers AS " + " UNION ALL BY NAME ".join(parts)
            self.con.execute(self._followers_view)
        else:
            self.con.execute("DROP VIEW IF EXISTS temp.followers")

    def parquet_plan(self, path: str | Path) -> dict[str, str] | None:
        """How a canonical Parquet file's columns read as the follower table's (``parquet_columns``);
        None when it cannot be read so (or at all)."""
        quoted = str(path).replace("'", "''")
        try:
            found = self.con.execute(f"DESCRIBE SELECT * FROM read_parquet('{quoted}')").fetchall()
        except duckdb.Error:
            return None
        return column_plan({name: kind for name, kind, *_ in found}, self._table_types())

    def _table_types(self) -> dict[str, str]:
        if self._types is None:
            self._types = {name: kind for name, kind, *_ in self.con.execute(f"DESCRIBE {FOLLOWER_ROWS}").fetchall() if name != "snapshot_id"}
        return self._types

    def scan_follower_file(self, snapshot_id: int, columns: list[str]) -> pl.LazyFrame | None:
        """``columns`` of a snapshot read in place, as Polars reads them with the table's types (None:
        its followers are stored rows)."""
        if snapshot_id not in self._files:
            return None
        return scan_planned(self._files[snapshot_id], self._plans[snapshot_id], columns)

    def in_place_source(self, snapshot_id: int) -> tuple[str, dict[str, str]] | None:
        """The file a snapshot is read from in place (its resolved path) and how its columns read
        (``parquet_columns``); None for stored rows."""
        if snapshot_id not in self._files:
            return None
        return self._files[snapshot_id], self._plans[snapshot_id]

    def check_writable_rows(self, snapshot_id: int) -> None:
        """Refuse to change the rows of a snapshot read in place (they live in the user's file)."""
        if snapshot_id in self._files:
            raise StoreError(f"snapshot {snapshot_id} is read in place from {self._files[snapshot_id]}; its rows cannot change here",
                             "import the file with --copy to store its rows in the workspace")

    def cursor(self, labels: bool = True) -> duckdb.DuckDBPyConnection:
        """A cursor of its own (for another thread, or to read while writing), seeing what this
        connection sees: UTC, and the files read in place (temporary views belong to a connection).
        ``labels=False``: without the labels view (a reader of followers alone in another thread
        must not depend on label files that this connection may be replacing)."""
        cursor = self.con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        for view in (self._followers_view, self._labels_view if labels else None):
            if view:
                cursor.execute(view)
        return cursor

    def reader(self) -> Store:
        """This store on a cursor of its own (``cursor(labels=False)``), for reading followers,
        rejects and reach tables in another thread while this connection writes labels (an audit
        reads the platform's evidence so); ``close()`` closes the cursor alone. Nothing it writes or
        attaches would be seen here: use it to read."""
        twin = copy.copy(self)
        twin.con = self.cursor(labels=False)
        twin._labels_view = None
        return twin

    def delete_snapshot(self, snapshot_id: int) -> None:
        """Remove a snapshot and everything stored under it."""
        with self.transaction():
            self.delete_snapshot_rows(snapshot_id, self.SNAPSHOT_TABLES)
            self.delete_review_sample("snapshot", snapshot_id)  # the answers stay: they carry over by account
            self.con.execute("DELETE FROM snapshots WHERE snapshot_id = ?", [snapshot_id])

    # -- followers -------------------------------------------------------------------------------
    def replace_followers(self, snapshot_id: int, followers: pl.DataFrame) -> None:
        """Store ``followers`` (canonical) as the whole content of the snapshot."""
        self.check_writable_rows(snapshot_id)
        frame = conform(followers)
        with self.transaction() as con:
            con.execute(f"DELETE FROM {FOLLOWER_ROWS} WHERE snapshot_id = ?", [snapshot_id])
            self._insert_followers(con, snapshot_id, frame)

    def append_followers(self, snapshot_id: int, followers: pl.DataFrame) -> None:
        """Add rows to a snapshot; the caller runs this inside its own transaction if needed."""
        self.check_writable_rows(snapshot_id)
        self._insert_followers(self.con, snapshot_id, conform(followers))

    @staticmethod
    def _insert_followers(con: duckdb.DuckDBPyConnection, snapshot_id: int, frame: pl.DataFrame) -> None:
        arrow = frame.to_arrow()
        con.register("_incoming_followers", arrow)
        try:
            cols = ", ".join(COLUMN_NAMES)
            con.execute(
                f"INSERT INTO {FOLLOWER_ROWS} (snapshot_id, {cols}) SELECT ?, {cols} FROM _incoming_followers", [snapshot_id]
            )
        finally:
            con.unregister("_incoming_followers")

    def followers(self, snapshot_id: int, columns: list[str] | None = None) -> pl.DataFrame:
        """The canonical followers of a snapshot, in follow order (oldest first) where known."""
        cols = ", ".join(columns or COLUMN_NAMES)
        return self.query(
            f"SELECT {cols} FROM followers WHERE snapshot_id = ? ORDER BY follow_rank NULLS LAST, follower_id",
            [snapshot_id],
        )

    def iter_followers(self, snapshot_id: int, columns: list[str] | None = None, batch_rows: int = 500_000) -> Iterator[pl.DataFrame]:
        """The followers of a snapshot in batches of about ``batch_rows`` (any order; bounded memory)."""
        in_place = self.scan_follower_file(snapshot_id, columns or COLUMN_NAMES)
        if in_place is not None:  # read in place: Polars reads Parquet ~4x cheaper than DuckDB hands it over
            groups = self.parquet_footer(snapshot_id).unique("row_group").sort("row_group")["rows"].to_list()  # type: ignore[union-attr]
            return parquet_slices(in_place, batch_rows, groups)
        cols = ", ".join(columns or COLUMN_NAMES)
        return self.iter_query(f"SELECT {cols} FROM followers WHERE snapshot_id = {int(snapshot_id)}", batch_rows)

    def follower_columns(self, snapshot_id: int, columns: list[str]) -> pl.DataFrame:
        """``columns`` of every follower of a snapshot, in one frame (any order). Safe from another
        thread: a file read in place is read by Polars (~2x cheaper than through DuckDB), stored rows
        through a cursor of their own."""
        in_place = self.scan_follower_file(snapshot_id, columns)
        if in_place is not None:
            return in_place.collect()
        cursor = self.cursor(labels=False)
        try:
            return cursor.sql(f"SELECT {', '.join(columns)} FROM followers WHERE snapshot_id = ?", params=[snapshot_id]).pl()
        finally:
            cursor.close()

    def parquet_footer(self, snapshot_id: int) -> pl.DataFrame | None:
        """``parquet_file_footer`` of the file a snapshot is read from in place; None for stored rows.
        Read once per attached file (it was checked unchanged when attached): an audit asks for it
        for the null counts and again for the row groups its batches follow."""
        if snapshot_id not in self._files:
            return None
        if snapshot_id not in self._footers:
            self._footers[snapshot_id] = self.parquet_file_footer(self._files[snapshot_id])
        return self._footers[snapshot_id]

    def parquet_file_footer(self, path: str | Path) -> pl.DataFrame:
        """``row_group, rows, column, nulls, min, max`` (null count, and the least and greatest value
        as text; null when the writer left them out) of a Parquet file, from its footer alone."""
        return self.query(
            """SELECT row_group_id AS row_group, row_group_num_rows AS rows, path_in_schema AS column,
                      stats_null_count AS nulls, stats_min_value AS min, stats_max_value AS max
               FROM parquet_metadata(?)""",
            [str(path)],
        )

    def iter_labels(self, snapshot_id: int, method: str, batch_rows: int = 500_000) -> Iterator[pl.DataFrame]:
        """``follower_id, handle, label, probability, reasons`` in follow order, in batches."""
        return self.iter_query(
            f"""SELECT l.follower_id, f.handle, l.label, l.probability, l.reasons
                FROM {self.labels_full} l LEFT JOIN followers f USING (snapshot_id, follower_id)
                WHERE l.snapshot_id = {int(snapshot_id)} AND l.method = '{method.replace("'", "''")}'
                ORDER BY f.follow_rank NULLS LAST, l.follower_id""",
            batch_rows,
        )

    def iter_query(self, sql: str, batch_rows: int = 500_000) -> Iterator[pl.DataFrame]:
        """Stream a query's rows as Polars frames of about ``batch_rows``.

        Reads through its own cursor, so the caller may write (e.g. labels) while iterating.
        """
        cursor = self.cursor()
        try:
            reader = cursor.sql(sql).to_arrow_reader(batch_rows)
            pending: list[pl.DataFrame] = []
            size = 0
            for batch in reader:  # DuckDB yields small vectors; gather them into real batches
                pending.append(pl.from_arrow(batch))  # type: ignore[arg-type]
                size += batch.num_rows
                if size >= batch_rows:
                    yield pl.concat(pending, rechunk=True)
                    pending, size = [], 0
            if pending:
                yield pl.concat(pending, rechunk=True)
        finally:
            cursor.close()

    def export_parquet(self, snapshot_id: int, path: str | Path) -> int:
        """Write the canonical table of a snapshot to Parquet; returns the number of rows."""
        cols = ", ".join(COLUMN_NAMES)
        target = str(path).replace("'", "''")
        self.con.execute(
            f"COPY (SELECT {cols} FROM followers WHERE snapshot_id = {int(snapshot_id)} "
            f"ORDER BY follow_rank NULLS LAST, follower_id) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
        )
        return self.snapshot(snapshot_id).n_followers

    # -- rejects ---------------------------------------------------------------------------------
    def replace_rejects(self, snapshot_id: int, rejects: pl.DataFrame) -> None:
        """``rejects`` has columns file, line, column, reason, raw."""
        with self.transaction() as con:
            con.execute("DELETE FROM rejects WHERE snapshot_id = ?", [snapshot_id])
            self.append_rejects(snapshot_id, rejects)

    def append_rejects(self, snapshot_id: int, rejects: pl.DataFrame, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Add rows that could not be used (file, line, column, reason, raw); the caller's transaction
        (on ``con``, a cursor of this store, when given)."""
        if not rejects.height:
            return
        con = con or self.con
        con.register("_incoming_rejects", rejects.select("file", "line", "column", "reason", "raw").to_arrow())
        try:
            con.execute('INSERT INTO rejects SELECT ?, file, line, "column", reason, raw FROM _incoming_rejects', [snapshot_id])
        finally:
            con.unregister("_incoming_rejects")

    def rejects(self, snapshot_id: int) -> pl.DataFrame:
        return self.query(
            'SELECT file, line, "column", reason, raw FROM rejects WHERE snapshot_id = ? ORDER BY line', [snapshot_id]
        )

    # -- labels ----------------------------------------------------------------------------------
    # One label per follower is the largest thing an audit writes: as a zstd Parquet file it costs
    # ~0.25 CPU-s per million labels, stored as DuckDB rows (with its checkpoint) ~1.1.
    @property
    def labels_dir(self) -> Path:
        """The folder beside the workspace file that holds its label files (``NAME.duckdb.labels``)."""
        return self.path.parent / f"{self.path.name}.labels"

    def save_labels(self, snapshot_id: int, method: str, labels: pl.DataFrame) -> None:
        """Replace the labels of a snapshot for one method."""
        with self.transaction():
            self.delete_labels(snapshot_id, method)
            self.append_labels(snapshot_id, method, labels)

    def delete_labels(self, snapshot_id: int, method: str | None = None) -> None:
        """Remove a snapshot's labels of ``method`` (all methods: None), their files and added reasons."""
        where, params = ("snapshot_id = ?", [snapshot_id]) if method is None else ("snapshot_id = ? AND method = ?", [snapshot_id, method])
        files = self.query(f"SELECT file FROM label_files WHERE {where}", params)["file"].to_list()
        for table in (LABEL_ROWS, "label_files", "label_reasons"):
            self.con.execute(f"DELETE FROM {table} WHERE {where}", params)
        self._dropped_files.extend(self.labels_dir / f for f in files)
        if not self._in_transaction:
            _remove(self._dropped_files)
        if files:
            self._attach_labels()

    def append_labels(self, snapshot_id: int, method: str, labels: pl.DataFrame) -> None:
        """Add labels (follower_id, label, probability, reasons) as one more Parquet file; the caller
        owns the transaction (a rolled-back transaction removes the file)."""
        frame = labels.select(  # the snapshot and method are the file's (label_files), not columns
            pl.col("follower_id").cast(pl.Utf8),
            pl.col("label").cast(pl.Enum(LABELS)),  # written as a dictionary of the three (read back as text): ~5x cheaper
            pl.col("probability").cast(pl.Float64) if "probability" in labels.columns else pl.lit(None, pl.Float64).alias("probability"),
            pl.col("reasons").cast(pl.List(pl.Utf8)),
        )
        self.labels_dir.mkdir(exist_ok=True)
        name = f"s{snapshot_id}-{method}-{uuid.uuid4().hex[:12]}.parquet"
        path = self.labels_dir / name
        # LZ4 and no column statistics: ~25% less CPU than zstd per batch for files ~2x larger (they
        # are the workspace's own, read whole by snapshot and method; nothing prunes by statistics).
        frame.write_parquet(path, compression="lz4", statistics=False)
        if self._in_transaction:
            self._written_files.append(path)
        self.con.execute("INSERT INTO label_files VALUES (?, ?, ?, ?)", [snapshot_id, method, name, frame.height])
        self._attach_labels()

    def set_added_reasons(self, snapshot_id: int, method: str, reasons: pl.DataFrame) -> None:
        """Give stored labels these reasons (follower_id, reason) on top of their own, replacing the
        reasons added before (bursts are the only ones: a new scan replaces the last one's).

        Written in a transaction of a cursor of its own, so it is safe from another thread while this
        connection reads (an audit stores them while it reads the platform's evidence); inside a
        transaction of this connection's, as part of it."""
        if reasons["follower_id"].is_duplicated().any():
            added = reasons.group_by("follower_id").agg(pl.col("reason").unique().sort().alias("reasons"))
        else:  # a reason each (members of one burst): no grouping by 100,000s of ids (~0.15 s at 270k)
            added = reasons.select("follower_id", pl.concat_list("reason").alias("reasons"))
        if self._in_transaction:  # part of the caller's transaction, on this connection
            _replace_added_reasons(self.con, snapshot_id, method, added)
            return
        cursor = self.cursor(labels=False)
        try:
            cursor.execute("BEGIN TRANSACTION")
            _replace_added_reasons(cursor, snapshot_id, method, added)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    def label_counts(self, snapshot_id: int, cursor: duckdb.DuckDBPyConnection | None = None) -> dict[str, int]:
        """Labels stored per method for a snapshot, counted without reading them (the files' row
        counts). ``cursor``: a thread's own cursor (``Store.cursor()``)."""
        con = cursor if cursor is not None else self.con
        if self.labels_full == "labels":  # a read-only workspace from before migration 8 (see _attach_labels)
            return dict(con.execute("SELECT method, count(*) FROM labels WHERE snapshot_id = ? GROUP BY method", [snapshot_id]).fetchall())
        counts = dict(con.execute(f"SELECT method, count(*) FROM {LABEL_ROWS} WHERE snapshot_id = ? GROUP BY method", [snapshot_id]).fetchall())
        for method, rows in con.execute("SELECT method, sum(rows) FROM label_files WHERE snapshot_id = ? GROUP BY method", [snapshot_id]).fetchall():
            if (snapshot_id, method) not in self._missing_labels:
                counts[method] = counts.get(method, 0) + int(rows)
        return {m: int(n) for m, n in counts.items()}

    def _attach_labels(self) -> None:
        """(Re)define ``labels`` for this connection: the stored rows plus the label files. Labels
        whose files are missing (a workspace copied without its labels folder) are left out whole, so
        readers see them as not audited rather than as a partial audit."""
        if not self.has_table("label_files"):
            self.labels_full = "labels"  # a read-only workspace from before migration 8: its table has every reason
            return
        files = self.query("SELECT snapshot_id, method, file FROM label_files ORDER BY snapshot_id, method, file")
        self._missing_labels = missing = {(s, m) for s, m, f in files.iter_rows() if not (self.labels_dir / f).exists()}
        paths = [(s, m, str((self.labels_dir / f).resolve())) for s, m, f in files.iter_rows() if (s, m) not in missing]
        self._labels_view = (f"CREATE OR REPLACE TEMP VIEW labels AS {_labels_view_sql(paths)}; "
                             f"CREATE OR REPLACE TEMP VIEW labels_full AS {_LABELS_FULL_SQL}") if paths else None
        if self._labels_view:
            self.con.execute(self._labels_view)
        else:
            self.con.execute("DROP VIEW IF EXISTS temp.labels; DROP VIEW IF EXISTS temp.labels_full")

    def _sweep_label_files(self) -> None:
        """Remove label files no audit refers to (left by a process that was killed mid-write)."""
        if not self.labels_dir.is_dir() or not self.has_table("label_files"):
            return
        kept = set(self.query("SELECT file FROM label_files")["file"].to_list())
        _remove([p for p in self.labels_dir.glob("*.parquet") if p.name not in kept])

    def labels(self, snapshot_id: int, method: str) -> pl.DataFrame:
        return self.query(
            f"SELECT follower_id, label, probability, reasons FROM {self.labels_full} WHERE snapshot_id = ? AND method = ?",
            [snapshot_id, method],
        )


def _replace_added_reasons(con: duckdb.DuckDBPyConnection, snapshot_id: int, method: str, added: pl.DataFrame) -> None:
    con.execute("DELETE FROM label_reasons WHERE snapshot_id = ? AND method = ?", [snapshot_id, method])
    con.register("_added_reasons", added.to_arrow())
    try:
        con.execute("INSERT INTO label_reasons SELECT ?, ?, follower_id, reasons FROM _added_reasons", [snapshot_id, method])
    finally:
        con.unregister("_added_reasons")


def _remove(paths: list[Path]) -> None:
    """Delete files (already gone is fine) and empty the list."""
    for path in paths:
        path.unlink(missing_ok=True)
    paths.clear()


def open_store(path: str | Path | None = None, read_only: bool = False) -> Store:
    """Open (and migrate) the workspace at ``path`` or the default location."""
    return Store(path, read_only=read_only)
