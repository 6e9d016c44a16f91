"""Reviews in the workspace (migration 5): the sample design, the review queue, and the answers.

A sample belongs to a *subject*: a follower snapshot (``scope = 'snapshot'``) or a likers audit
(``scope = 'likers'``). Its order is fixed by the seed: every follower gets the key
md5(seed:follower_id), so the order is uniform over the full list, reproducible, and the same for the
same follower in a later snapshot of the account — which is how reviews carry over. A stratified
sample orders each stratum (the model's label when it was drawn) by the key and interleaves the
strata in proportion to their sizes, two from each first. The queue keeps the first n of that
order; asking for more extends it with the next ones in the same order, so resuming continues the
same sample.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

MIGRATION_SQL = """
    CREATE TABLE review_samples (
        scope VARCHAR NOT NULL, snapshot_id BIGINT NOT NULL, design VARCHAR NOT NULL, seed BIGINT NOT NULL,
        strata VARCHAR, strata_method VARCHAR, population BIGINT, created_at TIMESTAMPTZ,
        PRIMARY KEY (scope, snapshot_id)
    );
    CREATE TABLE review_queue (
        scope VARCHAR NOT NULL, snapshot_id BIGINT NOT NULL, position BIGINT NOT NULL,
        follower_id VARCHAR NOT NULL, stratum VARCHAR
    );
    CREATE SEQUENCE IF NOT EXISTS review_ids START 1;
    CREATE TABLE reviews (
        review_id BIGINT PRIMARY KEY DEFAULT nextval('review_ids'),
        scope VARCHAR NOT NULL DEFAULT 'snapshot', snapshot_id BIGINT NOT NULL,
        platform VARCHAR, account VARCHAR, follower_id VARCHAR NOT NULL, label VARCHAR NOT NULL,
        reviewer VARCHAR NOT NULL, reviewed_at TIMESTAMPTZ NOT NULL,
        design VARCHAR, seed BIGINT, stratum VARCHAR, position BIGINT
    );
"""
STRATIFIED_FIRST = 2  # reviews taken from every stratum before the proportional interleave


class ReviewStore:
    # Mixed into followaudit.store.Store, which provides these and row/query/transaction.
    row: Any
    query: Any
    con: duckdb.DuckDBPyConnection
    read_only: bool
    path: Path

    def has_reviews_table(self) -> bool:
        row = self.row("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'reviews'")
        return bool(row and row["n"])

    # -- design and queue --------------------------------------------------------------------------
    def review_design(self, scope: str, subject_id: int) -> dict[str, Any] | None:
        """The stored sample design of a subject: kind, seed, strata sizes, population at the draw."""
        if not self.has_reviews_table():
            return None
        rec = self.row("SELECT * FROM review_samples WHERE scope = ? AND snapshot_id = ?", [scope, subject_id])
        if rec is None:
            return None
        return {
            "kind": rec["design"], "seed": int(rec["seed"]), "strata": json.loads(rec["strata"]) if rec["strata"] else None,
            "strata_method": rec["strata_method"], "population": rec["population"],
        }

    def save_review_design(self, scope: str, subject_id: int, design: dict[str, Any]) -> None:
        self.con.execute(
            "INSERT INTO review_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [scope, subject_id, design["kind"], design["seed"], json.dumps(design.get("strata")) if design.get("strata") else None,
             design.get("strata_method"), design.get("population"), datetime.now(UTC)],
        )

    def delete_review_sample(self, scope: str, subject_id: int) -> None:
        """Forget a subject's design and queue (its snapshot is deleted); the answers are kept."""
        for table in ("review_samples", "review_queue"):
            self.con.execute(f"DELETE FROM {table} WHERE scope = ? AND snapshot_id = ?", [scope, subject_id])

    def previous_review_seed(self, platform: str | None, account: str | None) -> int | None:
        """The seed of the account's latest sample, so a new snapshot's order matches (carry-over)."""
        if not account or not self.has_reviews_table():
            return None
        rec = self.row(
            """SELECT r.seed FROM review_samples r JOIN snapshots s ON s.snapshot_id = r.snapshot_id
               WHERE r.scope = 'snapshot' AND s.platform IS NOT DISTINCT FROM ? AND lower(s.account) = lower(?)
               ORDER BY r.created_at DESC LIMIT 1""",
            [platform, account],
        )
        return int(rec["seed"]) if rec else None

    @staticmethod
    def _population_sql(scope: str) -> str:
        """Who can be sampled: the snapshot's followers or the likers audit's labelled engagers."""
        if scope == "likers":
            return "SELECT follower_id FROM engager_rows WHERE likers_id = $sid"
        return "SELECT follower_id FROM followers WHERE snapshot_id = $sid"

    def _order_sql(self, scope: str, design: dict[str, Any]) -> str:
        keyed = f"SELECT p.follower_id, md5_number(CAST($seed AS VARCHAR) || ':' || p.follower_id) AS k FROM ({self._population_sql(scope)}) p"
        if design["kind"] != "stratified":
            return f"SELECT follower_id, NULL::VARCHAR AS stratum, k AS t, k FROM ({keyed})"
        return f"""
            WITH u AS (SELECT q.follower_id, l.label AS stratum, q.k FROM ({keyed}) q
                       JOIN labels l ON l.snapshot_id = $sid AND l.method = $method AND l.follower_id = q.follower_id),
                 r AS (SELECT *, row_number() OVER (PARTITION BY stratum ORDER BY k) - 1 AS r,
                              count(*) OVER (PARTITION BY stratum) AS nh FROM u)
            SELECT follower_id, stratum,
                   CASE WHEN r < {STRATIFIED_FIRST} THEN -10.0 + r ELSE (r + 0.5) / nh END AS t, k FROM r"""

    def review_order(self, scope: str, subject_id: int, design: dict[str, Any], limit: int, skip: int = 0) -> pl.DataFrame:
        """``position, follower_id, stratum``: places skip..skip+limit of the seeded order (not stored)."""
        params: dict[str, Any] = {"sid": subject_id, "seed": design["seed"], "skip": skip, "limit": limit}
        if design["kind"] == "stratified":
            params["method"] = design["strata_method"]
        return self.query(
            f"""SELECT row_number() OVER (ORDER BY t, k) - 1 + $skip AS position, follower_id, stratum
                FROM ({self._order_sql(scope, design)}) o ORDER BY t, k LIMIT $limit OFFSET $skip""",
            params,
        )

    def extend_review_queue(self, scope: str, subject_id: int, n: int) -> int:
        """Make the queue at least ``n`` long (the next followers in the seeded order); returns its length."""
        design = self.review_design(scope, subject_id)
        if design is None:
            raise ValueError("draw a design first")
        have = self.review_queue_length(scope, subject_id)
        if have >= n:
            return have
        more = self.review_order(scope, subject_id, design, n - have, skip=have)
        self.con.register("_incoming_queue", more.to_arrow())
        try:
            self.con.execute(
                "INSERT INTO review_queue SELECT ?, ?, position, follower_id, stratum FROM _incoming_queue", [scope, subject_id]
            )
        finally:
            self.con.unregister("_incoming_queue")
        return self.review_queue_length(scope, subject_id)

    def review_queue_length(self, scope: str, subject_id: int) -> int:
        row = self.row("SELECT count(*) AS n FROM review_queue WHERE scope = ? AND snapshot_id = ?", [scope, subject_id])
        return int(row["n"]) if row else 0

    def review_queue(self, scope: str, subject_id: int) -> pl.DataFrame:
        """``position, follower_id, stratum`` of the queue, in order."""
        return self.query(
            "SELECT position, follower_id, stratum FROM review_queue WHERE scope = ? AND snapshot_id = ? ORDER BY position",
            [scope, subject_id],
        )

    # -- answers -----------------------------------------------------------------------------------
    def add_review(self, scope: str, subject_id: int, *, follower_id: str, label: str, reviewer: str, platform: str | None,
                   account: str | None, design: dict[str, Any], stratum: str | None, position: int | None,
                   reviewed_at: datetime | None = None) -> None:
        self.con.execute(
            """INSERT INTO reviews (scope, snapshot_id, platform, account, follower_id, label, reviewer, reviewed_at,
                                    design, seed, stratum, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [scope, subject_id, platform, account, follower_id, label, reviewer, reviewed_at or datetime.now(UTC),
             design["kind"], design["seed"], stratum, position],
        )

    def undo_review(self, scope: str, subject_id: int, reviewer: str) -> str | None:
        """Delete the reviewer's latest answer on this subject; returns its follower id (None if none)."""
        rec = self.row(
            "SELECT review_id, follower_id FROM reviews WHERE scope = ? AND snapshot_id = ? AND reviewer = ? ORDER BY review_id DESC LIMIT 1",
            [scope, subject_id, reviewer],
        )
        if rec is None:
            return None
        self.con.execute("DELETE FROM reviews WHERE review_id = ?", [rec["review_id"]])
        return str(rec["follower_id"])

    def subject_reviews(self, scope: str, subject_id: int, platform: str | None = None, account: str | None = None) -> pl.DataFrame:
        """Every answer about the subject's followers: ``review_id, follower_id, label, reviewer, reviewed_at, snapshot_id``.

        For a follower snapshot this includes answers given on earlier snapshots of the same account
        about followers who are still there (reviews carry over); a reviewer's latest answer counts.
        """
        if not self.has_reviews_table():
            return pl.DataFrame(schema={"review_id": pl.Int64, "follower_id": pl.Utf8, "label": pl.Utf8, "reviewer": pl.Utf8,
                                        "reviewed_at": pl.Datetime("us", "UTC"), "snapshot_id": pl.Int64})
        same = "r.snapshot_id = $sid"
        if scope == "snapshot" and account:
            same = "(r.snapshot_id = $sid OR (r.platform IS NOT DISTINCT FROM $platform AND lower(r.account) = lower($account)))"
        return self.query(
            f"""SELECT r.review_id, r.follower_id, r.label, r.reviewer, r.reviewed_at, r.snapshot_id
                FROM reviews r WHERE r.scope = $scope AND {same}
                  AND r.follower_id IN ({self._population_sql(scope)})
                QUALIFY row_number() OVER (PARTITION BY r.follower_id, r.reviewer ORDER BY r.snapshot_id = $sid DESC, r.review_id DESC) = 1
                ORDER BY r.review_id""",
            {"scope": scope, "sid": subject_id, "platform": platform, "account": account} if scope == "snapshot" and account
            else {"scope": scope, "sid": subject_id},
        )
