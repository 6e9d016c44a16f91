"""The workspace: one DuckDB file holding snapshots, followers, rejects and labels.

Default location: ``$FOLLOWAUDIT_DB`` if set, else ``followaudit.duckdb`` in the current directory.
Every command takes ``--db PATH``. Schema changes go through the numbered ``MIGRATIONS`` below, applied
in order inside a transaction and recorded in ``schema_migrations``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from . import __version__
from .errors import SnapshotNotFoundError, StoreError
from .schema import COLUMN_NAMES, SampleDesign, conform

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
]


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


class Store:
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
        if not read_only:
            self.migrate()

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block atomically: everything in it lands, or nothing does."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

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
        rec = self.row(
            """SELECT s.*, (SELECT count(*) FROM followers f WHERE f.snapshot_id = s.snapshot_id) AS n_followers,
                      (SELECT count(*) FROM rejects r WHERE r.snapshot_id = s.snapshot_id) AS n_rejects
               FROM snapshots s WHERE snapshot_id = ?""",
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

    def delete_snapshot_rows(self, snapshot_id: int) -> None:
        for table in ("followers", "rejects", "labels"):
            self.con.execute(f"DELETE FROM {table} WHERE snapshot_id = ?", [snapshot_id])

    def delete_snapshot(self, snapshot_id: int) -> None:
        """Remove a snapshot and everything stored under it."""
        with self.transaction():
            self.delete_snapshot_rows(snapshot_id)
            self.con.execute("DELETE FROM snapshots WHERE snapshot_id = ?", [snapshot_id])

    # -- followers -------------------------------------------------------------------------------
    def replace_followers(self, snapshot_id: int, followers: pl.DataFrame) -> None:
        """Store ``followers`` (canonical) as the whole content of the snapshot."""
        frame = conform(followers)
        with self.transaction() as con:
            con.execute("DELETE FROM followers WHERE snapshot_id = ?", [snapshot_id])
            self._insert_followers(con, snapshot_id, frame)

    def append_followers(self, snapshot_id: int, followers: pl.DataFrame) -> None:
        """Add rows to a snapshot; the caller runs this inside its own transaction if needed."""
        self._insert_followers(self.con, snapshot_id, conform(followers))

    @staticmethod
    def _insert_followers(con: duckdb.DuckDBPyConnection, snapshot_id: int, frame: pl.DataFrame) -> None:
        arrow = frame.to_arrow()
        con.register("_incoming_followers", arrow)
        try:
            cols = ", ".join(COLUMN_NAMES)
            con.execute(
                f"INSERT INTO followers (snapshot_id, {cols}) SELECT ?, {cols} FROM _incoming_followers", [snapshot_id]
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
        cols = ", ".join(columns or COLUMN_NAMES)
        return self.iter_query(f"SELECT {cols} FROM followers WHERE snapshot_id = {int(snapshot_id)}", batch_rows)

    def iter_labels(self, snapshot_id: int, method: str, batch_rows: int = 500_000) -> Iterator[pl.DataFrame]:
        """``follower_id, handle, label, probability, reasons`` in follow order, in batches."""
        return self.iter_query(
            f"""SELECT l.follower_id, f.handle, l.label, l.probability, l.reasons
                FROM labels l LEFT JOIN followers f USING (snapshot_id, follower_id)
                WHERE l.snapshot_id = {int(snapshot_id)} AND l.method = '{method.replace("'", "''")}'
                ORDER BY f.follow_rank NULLS LAST, l.follower_id""",
            batch_rows,
        )

    def iter_query(self, sql: str, batch_rows: int = 500_000) -> Iterator[pl.DataFrame]:
        """Stream a query's rows as Polars frames of about ``batch_rows``.

        Reads through its own cursor, so the caller may write (e.g. labels) while iterating.
        """
        cursor = self.con.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
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
            if rejects.height:
                con.register("_incoming_rejects", rejects.select("file", "line", "column", "reason", "raw").to_arrow())
                try:
                    con.execute(
                        'INSERT INTO rejects SELECT ?, file, line, "column", reason, raw FROM _incoming_rejects', [snapshot_id]
                    )
                finally:
                    con.unregister("_incoming_rejects")

    def rejects(self, snapshot_id: int) -> pl.DataFrame:
        return self.query(
            'SELECT file, line, "column", reason, raw FROM rejects WHERE snapshot_id = ? ORDER BY line', [snapshot_id]
        )

    # -- labels ----------------------------------------------------------------------------------
    def save_labels(self, snapshot_id: int, method: str, labels: pl.DataFrame) -> None:
        """Replace the labels of a snapshot for one method."""
        with self.transaction():
            self.delete_labels(snapshot_id, method)
            self.append_labels(snapshot_id, method, labels)

    def delete_labels(self, snapshot_id: int, method: str) -> None:
        self.con.execute("DELETE FROM labels WHERE snapshot_id = ? AND method = ?", [snapshot_id, method])

    def append_labels(self, snapshot_id: int, method: str, labels: pl.DataFrame) -> None:
        """Add labels (follower_id, label, probability, reasons); the caller owns the transaction."""
        frame = labels.select(
            pl.col("follower_id").cast(pl.Utf8),
            pl.col("label").cast(pl.Utf8),
            pl.col("probability").cast(pl.Float64) if "probability" in labels.columns else pl.lit(None, pl.Float64).alias("probability"),
            pl.col("reasons").cast(pl.List(pl.Utf8)),
        )
        self.con.register("_incoming_labels", frame.to_arrow())
        try:
            self.con.execute(
                "INSERT INTO labels SELECT ?, follower_id, ?, label, probability, reasons FROM _incoming_labels",
                [snapshot_id, method],
            )
        finally:
            self.con.unregister("_incoming_labels")

    def labels(self, snapshot_id: int, method: str) -> pl.DataFrame:
        return self.query(
            "SELECT follower_id, label, probability, reasons FROM labels WHERE snapshot_id = ? AND method = ?",
            [snapshot_id, method],
        )

    # -- collection ------------------------------------------------------------------------------
    # Live collection (followaudit.collect) checkpoints here. Every write that moves a collection
    # forward is one transaction holding both the data and the new checkpoint, so a crash at any
    # point resumes without losing or duplicating a follower.
    def find_collection(self, resume_key: str) -> dict[str, Any] | None:
        """The newest snapshot collected with this resume key: snapshot_id, status, phase."""
        return self.row(
            """SELECT c.snapshot_id, s.status, c.phase FROM collect_state c JOIN snapshots s USING (snapshot_id)
               WHERE c.resume_key = ? ORDER BY c.snapshot_id DESC LIMIT 1""",
            [resume_key],
        )

    def start_collection(self, *, resume_key: str, target_id: str, **snapshot: Any) -> int:
        """Create a 'collecting' snapshot and its checkpoint atomically."""
        with self.transaction() as con:
            snapshot_id = self.create_snapshot(status="collecting", **snapshot)
            con.execute(
                "INSERT INTO collect_state VALUES (?, ?, ?, 'enumerate', NULL, 0, 0, now())",
                [snapshot_id, resume_key, target_id],
            )
        return snapshot_id

    def collect_state(self, snapshot_id: int) -> dict[str, Any]:
        row = self.row("SELECT * FROM collect_state WHERE snapshot_id = ?", [snapshot_id])
        if row is None:
            raise StoreError(f"snapshot {snapshot_id} was not collected live")
        return row

    def collected_ids(self, snapshot_id: int) -> pl.DataFrame:
        """Enumerated followers: position (0 = newest, API order), follower_id, handle, sampled, done."""
        return self.query(
            "SELECT position, follower_id, handle, sampled, done FROM collect_ids WHERE snapshot_id = ? ORDER BY position",
            [snapshot_id],
        )

    def collected_cursors(self, snapshot_id: int) -> list[str]:
        frame = self.query(
            "SELECT cursor_out FROM collect_pages WHERE snapshot_id = ? AND cursor_out IS NOT NULL", [snapshot_id]
        )
        return frame["cursor_out"].to_list()

    def save_page(
        self, snapshot_id: int, ids: pl.DataFrame, *, cursor_in: str | None, cursor_out: str | None, last: bool
    ) -> None:
        """One enumerated page (position, follower_id, handle, observed_at, profile) and its cursor."""
        with self.transaction() as con:
            con.register("_incoming_ids", ids.select("position", "follower_id", "handle", "observed_at", "profile").to_arrow())
            try:
                con.execute(
                    """INSERT INTO collect_ids (snapshot_id, position, follower_id, handle, observed_at, profile)
                       SELECT ?, position, follower_id, handle, observed_at, profile FROM _incoming_ids""",
                    [snapshot_id],
                )
            finally:
                con.unregister("_incoming_ids")
            con.execute(
                """INSERT INTO collect_pages SELECT ?, pages, ?, ?, ?, now() FROM collect_state WHERE snapshot_id = ?""",
                [snapshot_id, cursor_in, cursor_out, ids.height, snapshot_id],
            )
            con.execute(
                """UPDATE collect_state SET cursor = ?, pages = pages + 1, enumerated = enumerated + ?,
                       phase = ?, updated_at = now() WHERE snapshot_id = ?""",
                [cursor_out, ids.height, "sample" if last else "enumerate", snapshot_id],
            )

    def save_sample(self, snapshot_id: int, positions: list[int] | None, design: SampleDesign) -> None:
        """Mark the followers to hydrate (None = all) and record the design, atomically."""
        with self.transaction() as con:
            if positions is None:
                con.execute("UPDATE collect_ids SET sampled = true WHERE snapshot_id = ?", [snapshot_id])
            else:
                con.register("_sample", pl.DataFrame({"position": positions}, schema={"position": pl.Int64}).to_arrow())
                try:
                    con.execute(
                        """UPDATE collect_ids SET sampled = true WHERE snapshot_id = ?
                           AND position IN (SELECT position FROM _sample)""",
                        [snapshot_id],
                    )
                finally:
                    con.unregister("_sample")
            self.update_snapshot(snapshot_id, design=design)
            con.execute("UPDATE collect_state SET phase = 'hydrate', updated_at = now() WHERE snapshot_id = ?", [snapshot_id])

    def save_hydrated(
        self,
        snapshot_id: int,
        followers: pl.DataFrame,
        done: list[str],
        missing: pl.DataFrame | None = None,
        activity: pl.DataFrame | None = None,
    ) -> None:
        """Hydrated follower rows, the ids they settle, rejects for ids the server no longer has, and
        (optional) follower_id, last_active_at, last_active_kind from the activity probe."""
        with self.transaction() as con:
            if activity is not None and activity.height:
                con.register("_activity", activity.select("follower_id", "last_active_at", "last_active_kind").to_arrow())
                try:
                    con.execute(
                        """UPDATE collect_ids SET last_active_at = a.last_active_at, last_active_kind = a.last_active_kind
                           FROM _activity a WHERE collect_ids.snapshot_id = ? AND collect_ids.follower_id = a.follower_id""",
                        [snapshot_id],
                    )
                finally:
                    con.unregister("_activity")
            if followers.height:
                self._insert_followers(con, snapshot_id, conform(followers))
            con.register("_done", pl.DataFrame({"follower_id": done}, schema={"follower_id": pl.Utf8}).to_arrow())
            try:
                con.execute(
                    """UPDATE collect_ids SET done = true WHERE snapshot_id = ?
                       AND follower_id IN (SELECT follower_id FROM _done)""",
                    [snapshot_id],
                )
            finally:
                con.unregister("_done")
            if missing is not None and missing.height:
                con.register("_missing", missing.select("file", "line", "column", "reason", "raw").to_arrow())
                try:
                    con.execute(
                        'INSERT INTO rejects SELECT ?, file, line, "column", reason, raw FROM _missing', [snapshot_id]
                    )
                finally:
                    con.unregister("_missing")

    def pending_hydration(self, snapshot_id: int, with_profile: bool = False, limit: int | None = None) -> pl.DataFrame:
        """Sampled followers not yet stored: position, follower_id, observed_at (and profile), in API order."""
        extra = ", profile" if with_profile else ""
        cap = f" LIMIT {int(limit)}" if limit is not None else ""
        return self.query(
            f"""SELECT position, follower_id, observed_at{extra} FROM collect_ids
                WHERE snapshot_id = ? AND sampled AND NOT done ORDER BY position{cap}""",
            [snapshot_id],
        )

    def drop_collection(self, snapshot_id: int) -> None:
        """Forget a collection that turned out to be impossible (e.g. hidden followers)."""
        with self.transaction() as con:
            for table in ("collect_ids", "collect_pages", "collect_state", "followers", "rejects", "posts", "snapshots"):
                con.execute(f"DELETE FROM {table} WHERE snapshot_id = ?", [snapshot_id])

    def set_collect_phase(self, snapshot_id: int, phase: str) -> None:
        self.con.execute("UPDATE collect_state SET phase = ?, updated_at = now() WHERE snapshot_id = ?", [phase, snapshot_id])

    def save_posts(self, snapshot_id: int, posts: pl.DataFrame) -> None:
        """The audited account's recent posts; replaces earlier ones of the snapshot; ends the posts phase."""
        cols = ["post_id", "created_at", "likes", "replies", "reposts", "quotes", "views", "raw"]
        with self.transaction() as con:
            con.execute("DELETE FROM posts WHERE snapshot_id = ?", [snapshot_id])
            if posts.height:
                con.register("_posts", posts.select(cols).to_arrow())
                try:
                    con.execute(f"INSERT INTO posts SELECT ?, {', '.join(cols)} FROM _posts", [snapshot_id])
                finally:
                    con.unregister("_posts")
            con.execute("UPDATE collect_state SET phase = 'finish', updated_at = now() WHERE snapshot_id = ?", [snapshot_id])

    def posts(self, snapshot_id: int) -> pl.DataFrame:
        """Posts of the audited account collected with a snapshot (newest first)."""
        return self.query(
            """SELECT post_id, created_at, likes, replies, reposts, quotes, views, raw FROM posts
               WHERE snapshot_id = ? ORDER BY created_at DESC NULLS LAST""",
            [snapshot_id],
        )

    def finish_collection(self, snapshot_id: int, followers: pl.DataFrame | None = None) -> None:
        """Append the last follower rows (if any), mark the snapshot complete, drop bulky checkpoint data."""
        with self.transaction() as con:
            if followers is not None and followers.height:
                self._insert_followers(con, snapshot_id, conform(followers))
            con.execute("UPDATE collect_ids SET profile = NULL WHERE snapshot_id = ?", [snapshot_id])
            con.execute(
                "UPDATE collect_state SET phase = 'done', cursor = NULL, updated_at = now() WHERE snapshot_id = ?",
                [snapshot_id],
            )
            self.update_snapshot(snapshot_id, status="complete")

    # -- engagement and growth -------------------------------------------------------------------
    # Owned by followaudit.engagement / growth / views / likers (migration 3). Count histories and
    # view items belong to an account, not to a snapshot: they outlive any one follower list.
    def has_table(self, name: str) -> bool:
        """Whether a table exists (a read-only workspace may predate a migration)."""
        row = self.row("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?", [name])
        return bool(row and row["n"])

    def save_imported_posts(self, snapshot_id: int, posts: pl.DataFrame) -> None:
        """Imported posts become the snapshot's posts (replacing earlier ones); no collection state is touched."""
        cols = ["post_id", "created_at", "likes", "replies", "reposts", "quotes", "views", "raw"]
        with self.transaction() as con:
            con.execute("DELETE FROM posts WHERE snapshot_id = ?", [snapshot_id])
            if posts.height:
                con.register("_imported_posts", posts.select(cols).to_arrow())
                try:
                    con.execute(f"INSERT INTO posts SELECT ?, {', '.join(cols)} FROM _imported_posts", [snapshot_id])
                finally:
                    con.unregister("_imported_posts")

    def save_follower_counts(self, account: str, platform: str | None, counts: pl.DataFrame, source: str) -> int:
        """Store a count history (date, followers); rows of the same account, source and date are replaced."""
        frame = counts.select(pl.col("date").cast(pl.Date), pl.col("followers").cast(pl.Int64))
        with self.transaction() as con:
            con.register("_counts", frame.to_arrow())
            try:
                con.execute(
                    "DELETE FROM follower_counts WHERE account = ? AND source = ? AND date IN (SELECT date FROM _counts)",
                    [account, source],
                )
                con.execute(
                    "INSERT INTO follower_counts SELECT ?, ?, date, followers, ? FROM _counts", [platform, account, source]
                )
            finally:
                con.unregister("_counts")
        return frame.height

    def follower_counts(self, account: str, platform: str | None = None) -> pl.DataFrame:
        """Imported count history of an account: platform, date, followers, source (oldest first)."""
        if not self.has_table("follower_counts"):
            return pl.DataFrame(schema={"platform": pl.Utf8, "date": pl.Date, "followers": pl.Int64, "source": pl.Utf8})
        return self.query(
            """SELECT platform, date, followers, source FROM follower_counts
               WHERE lower(account) = lower(?) AND (? IS NULL OR platform IS NULL OR platform = ?)
               ORDER BY date, source""",
            [account.lstrip("@"), platform, platform],
        )

    def save_view_items(self, account: str, platform: str | None, items: pl.DataFrame, source: str) -> None:
        """Per-video / per-post view data of an account; replaces the account's earlier items from ``source``."""
        cols = ["item_id", "published", "views", "likes", "comments"]
        with self.transaction() as con:
            con.execute("DELETE FROM view_items WHERE account = ? AND source = ?", [account, source])
            con.register("_views", items.select(cols).to_arrow())
            try:
                con.execute(
                    f"INSERT INTO view_items SELECT ?, ?, {', '.join(cols)}, ? FROM _views", [platform, account, source]
                )
            finally:
                con.unregister("_views")

    def view_items(self, account: str) -> pl.DataFrame:
        if not self.has_table("view_items"):
            return pl.DataFrame()
        return self.query(
            """SELECT item_id, published, views, likes, comments, source FROM view_items
               WHERE lower(account) = lower(?) ORDER BY published NULLS LAST, item_id""",
            [account.lstrip("@")],
        )

    # likers audits: enumerate (likes, then reposts) -> sample -> hydrate -> done, one transaction
    # per page / batch, exactly like follower collection.
    def create_likers_audit(self, **values: Any) -> int:
        if "settings" in values:
            values["settings"] = json.dumps(values["settings"], sort_keys=True, default=str)
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        row = self.row(f"INSERT INTO likers_audits ({names}) VALUES ({marks}) RETURNING likers_id", list(values.values()))
        return int(row["likers_id"])

    def update_likers_audit(self, likers_id: int, **values: Any) -> None:
        design = values.pop("design", None)
        if design is not None:
            values.update(sample_kind=design.kind, sample_n=design.n, sample_population=design.population, sample_seed=design.seed)
        if "settings" in values:
            values["settings"] = json.dumps(values["settings"], sort_keys=True, default=str)
        if values:
            sets = ", ".join(f"{k} = ?" for k in values)
            self.con.execute(f"UPDATE likers_audits SET {sets} WHERE likers_id = ?", [*values.values(), likers_id])

    def likers_audit(self, likers_id: int) -> dict[str, Any]:
        row = self.row("SELECT * FROM likers_audits WHERE likers_id = ?", [likers_id])
        if row is None:
            raise SnapshotNotFoundError(f"no likers audit {likers_id} in {self.path}", "run `followaudit likers ...` first")
        row["settings"] = json.loads(row["settings"] or "{}")
        return row

    def find_likers_audit(self, resume_key: str) -> dict[str, Any] | None:
        row = self.row(
            "SELECT likers_id, status FROM likers_audits WHERE resume_key = ? ORDER BY likers_id DESC LIMIT 1", [resume_key]
        )
        return row

    def likers_audits(self, account: str | None = None, platform: str | None = None) -> pl.DataFrame:
        """Completed likers audits (newest first), optionally of one account."""
        if not self.has_table("likers_audits"):
            return pl.DataFrame()
        return self.query(
            """SELECT likers_id, platform, account, post_uri, post_url, taken_at, status FROM likers_audits
               WHERE status = 'complete' AND (? IS NULL OR lower(account) = lower(?)) AND (? IS NULL OR platform = ?)
               ORDER BY taken_at DESC, likers_id DESC""",
            [account, (account or "").lstrip("@"), platform, platform],
        )

    def save_engager_page(
        self, likers_id: int, page: pl.DataFrame, *, kind: str, cursor_out: str | None, next_phase: str
    ) -> None:
        """One page of likers or reposters (position, engager_id, handle, engaged_at, profile) and the cursor."""
        with self.transaction() as con:
            if page.height:
                con.register("_engagers", page.select("position", "engager_id", "handle", "engaged_at", "profile").to_arrow())
                try:
                    con.execute(
                        """INSERT INTO engagers (likers_id, kind, position, engager_id, handle, engaged_at, profile)
                           SELECT ?, ?, position, engager_id, handle, engaged_at, profile FROM _engagers""",
                        [likers_id, kind],
                    )
                finally:
                    con.unregister("_engagers")
            con.execute(
                "UPDATE likers_audits SET cursor = ?, pages = pages + 1, phase = ? WHERE likers_id = ?",
                [cursor_out, next_phase, likers_id],
            )

    def engagers(self, likers_id: int) -> pl.DataFrame:
        """Every enumerated engager row: kind (like / repost), position, engager_id, handle, sampled, done."""
        return self.query(
            """SELECT kind, position, engager_id, handle, engaged_at, sampled, done FROM engagers
               WHERE likers_id = ? ORDER BY kind, position""",
            [likers_id],
        )

    def save_engager_sample(self, likers_id: int, ids: list[str] | None, design: Any) -> None:
        """Mark the distinct engagers to label (None = all) and record the design, atomically."""
        with self.transaction() as con:
            if ids is None:
                con.execute("UPDATE engagers SET sampled = true WHERE likers_id = ?", [likers_id])
            else:
                con.register("_sample_ids", pl.DataFrame({"engager_id": ids}, schema={"engager_id": pl.Utf8}).to_arrow())
                try:
                    con.execute(
                        "UPDATE engagers SET sampled = true WHERE likers_id = ? AND engager_id IN (SELECT engager_id FROM _sample_ids)",
                        [likers_id],
                    )
                finally:
                    con.unregister("_sample_ids")
            self.update_likers_audit(likers_id, design=design, phase="hydrate", cursor=None)

    def pending_engagers(self, likers_id: int) -> pl.DataFrame:
        """Sampled engagers not yet labelled: engager_id, first profile seen (one row per person)."""
        return self.query(
            """SELECT engager_id, any_value(profile) AS profile, min(position) AS position FROM engagers
               WHERE likers_id = ? AND sampled AND NOT done GROUP BY engager_id ORDER BY min(position), engager_id""",
            [likers_id],
        )

    def save_engager_rows(self, likers_id: int, rows: pl.DataFrame, done: list[str]) -> None:
        """Canonical rows of hydrated engagers and the ids they settle, in one transaction."""
        with self.transaction() as con:
            if rows.height:
                frame = conform(rows)
                con.register("_engager_rows", frame.to_arrow())
                try:
                    cols = ", ".join(COLUMN_NAMES)
                    con.execute(f"INSERT INTO engager_rows (likers_id, {cols}) SELECT ?, {cols} FROM _engager_rows", [likers_id])
                finally:
                    con.unregister("_engager_rows")
            con.register("_engager_done", pl.DataFrame({"engager_id": done}, schema={"engager_id": pl.Utf8}).to_arrow())
            try:
                con.execute(
                    "UPDATE engagers SET done = true WHERE likers_id = ? AND engager_id IN (SELECT engager_id FROM _engager_done)",
                    [likers_id],
                )
            finally:
                con.unregister("_engager_done")

    def engager_rows(self, likers_id: int, columns: list[str] | None = None) -> pl.DataFrame:
        cols = ", ".join(columns or COLUMN_NAMES)
        return self.query(f"SELECT {cols} FROM engager_rows WHERE likers_id = ? ORDER BY follower_id", [likers_id])

    def finish_likers_audit(self, likers_id: int) -> None:
        with self.transaction():
            self.con.execute("UPDATE engagers SET profile = NULL WHERE likers_id = ?", [likers_id])
            self.update_likers_audit(likers_id, phase="done", status="complete", cursor=None)

    def delete_likers_audit(self, likers_id: int) -> None:
        with self.transaction() as con:
            for table in ("engager_rows", "engagers", "likers_audits"):
                con.execute(f"DELETE FROM {table} WHERE likers_id = ?", [likers_id])


def open_store(path: str | Path | None = None, read_only: bool = False) -> Store:
    """Open (and migrate) the workspace at ``path`` or the default location."""
    return Store(path, read_only=read_only)
