"""Workspace tables of engagement and growth (migration 3): count histories, view items, likers.

Mixed into ``followaudit.store.Store``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from ..errors import SnapshotNotFoundError
from ..schema import COLUMN_NAMES, conform

if TYPE_CHECKING:
    from pathlib import Path


class ReachStore:
    # Mixed into followaudit.store.Store, which provides these and row/query/transaction/update_snapshot.
    con: duckdb.DuckDBPyConnection
    read_only: bool
    path: Path

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
