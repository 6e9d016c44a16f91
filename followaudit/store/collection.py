"""Workspace tables of live collection (migration 2): checkpoints, enumerated ids, posts.

Mixed into ``followaudit.store.Store``. Every write that moves a collection forward is one
transaction holding both the data and the new checkpoint, so a crash at any point resumes without
losing or duplicating a follower.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from ..errors import StoreError
from ..schema import SampleDesign, conform

if TYPE_CHECKING:
    from pathlib import Path


class CollectionStore:
    # Mixed into followaudit.store.Store, which provides these and row/query/transaction/update_snapshot.
    con: duckdb.DuckDBPyConnection
    read_only: bool
    path: Path

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
            self._flag_ids(snapshot_id, "done", done)
            if missing is not None:
                self.append_rejects(snapshot_id, missing)

    def _flag_ids(self, snapshot_id: int, flag: str, ids: list[str]) -> None:
        """Set the checkpoint ``flag`` (done, follow_checked) of these enumerated ids; caller's transaction."""
        self.con.register("_flagged", pl.DataFrame({"follower_id": ids}, schema={"follower_id": pl.Utf8}).to_arrow())
        try:
            self.con.execute(
                f"""UPDATE collect_ids SET {flag} = true WHERE snapshot_id = ?
                    AND follower_id IN (SELECT follower_id FROM _flagged)""",
                [snapshot_id],
            )
        finally:
            self.con.unregister("_flagged")

    def pending_hydration(self, snapshot_id: int, with_profile: bool = False, limit: int | None = None) -> pl.DataFrame:
        """Sampled followers not yet stored: position, follower_id, observed_at (and profile), in API order."""
        extra = ", profile" if with_profile else ""
        cap = f" LIMIT {int(limit)}" if limit is not None else ""
        return self.query(
            f"""SELECT position, follower_id, observed_at{extra} FROM collect_ids
                WHERE snapshot_id = ? AND sampled AND NOT done ORDER BY position{cap}""",
            [snapshot_id],
        )

    def pending_follow_times(self, snapshot_id: int) -> pl.DataFrame:
        """Stored followers whose follow record has not been asked for yet (follower_id), in API order."""
        return self.query(
            """SELECT c.follower_id FROM collect_ids c
               WHERE c.snapshot_id = ? AND c.sampled AND c.done AND NOT coalesce(c.follow_checked, false)
                 AND c.follower_id IN (SELECT follower_id FROM followers WHERE snapshot_id = ?)
               ORDER BY c.position""",
            [snapshot_id, snapshot_id],
        )

    def update_followers(self, snapshot_id: int, values: pl.DataFrame, columns: list[str]) -> None:
        """Set ``columns`` of stored followers from ``values`` (follower_id + columns); caller's transaction."""
        self.check_writable_rows(snapshot_id)  # type: ignore[attr-defined]
        sets = ", ".join(f'"{c}" = t."{c}"' for c in columns)
        self.con.register("_values", values.select("follower_id", *columns).to_arrow())
        try:
            self.con.execute(
                f"""UPDATE follower_rows SET {sets} FROM _values t
                    WHERE follower_rows.snapshot_id = ? AND follower_rows.follower_id = t.follower_id""",
                [snapshot_id],
            )
        finally:
            self.con.unregister("_values")

    def save_follow_times(self, snapshot_id: int, times: pl.DataFrame, checked: list[str]) -> None:
        """Exact follow times (follower_id, followed_at) and the ids they settle, in one transaction."""
        with self.transaction():
            if times.height:
                self.update_followers(snapshot_id, times, ["followed_at"])
            self._flag_ids(snapshot_id, "follow_checked", checked)

    def drop_collection(self, snapshot_id: int) -> None:
        """Forget a collection that turned out to be impossible (e.g. hidden followers)."""
        with self.transaction() as con:
            for table in ("collect_ids", "collect_pages", "collect_state", "follower_rows", "rejects", "posts", "snapshots"):
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
