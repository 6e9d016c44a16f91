"""Canonical Parquet read in place: when a file needs nothing an import would do, it is not copied.

An import validates, trims and conforms each row, then copies it into the workspace: for
followaudit's own canonical Parquet (``followaudit export``, ``score``, ``scale.synth_parquet``)
that copy is most of an audit's cost (~2 CPU-s per million followers, against ~0.5 for DuckDB to
read the file) and doubles the bytes on disk. So a canonical file that the import would store
unchanged is read where it is: one Polars pass over the file (a million rows at a time) checks
exactly what the import would have changed or rejected (types, ids, handles, platform, derived
lengths); any of it, or ``--copy``, and the file is imported the usual way, rejects and all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..store.parquet_columns import parquet_slices, scan_planned
from ..store.workspace import Store
from .formats.common import _stripped

CHECK_ROWS = 1_000_000  # rows per slice the check reads


@dataclass
class InPlace:
    """What a canonical Parquet file holds, once checked: it can be read as it is."""

    n: int
    platform: str
    account: str | None
    ranked: bool  # follow_rank given (else the order is unknown)


def _changed_by_import(column: str) -> pl.Expr:
    """Rows whose ``column`` an import would change (``formats.common._clean``): text with blanks
    around it, or empty (it becomes null). The stripped text is a part of the text, so it is the
    same text exactly when it is as long: comparing lengths costs half of comparing the strings."""
    length = pl.col(column).str.len_bytes()
    return (_stripped(column).str.len_bytes() != length) | (length == 0)


def check_in_place(store: Store, path: str | Path, *, platform: str | None, account: str | None,
                   order: str | None) -> InPlace | None:
    """``InPlace`` when ``path`` (a Parquet file) can be audited where it is; None to import it.

    It can when its columns are the canonical ones with the workspace's types or types an import
    would only widen (``store.parquet_columns``: absent columns, narrower integers, nanoseconds), every follower has a
    unique id, ids and handles need no trimming, one platform (the ``--platform`` given, if any) is
    on every row, the derived lengths are filled wherever their text is, and the options ask for
    nothing the file does not say (no ``--account``; no ``--order`` for a file without ranks: numbering
    followers is the import's job).
    """
    plan = store.parquet_plan(path)
    if account is not None or plan is None:
        return None
    # Polars, slice by slice (bounded memory: a 10M-row file read whole held 1.7 GB of text), with
    # the import's own idea of blank text; ~0.3 CPU-s a million followers
    counts = dict.fromkeys(("n", "missing_ids", "untrimmed", "without_platform", "ranked", "underived"), 0)
    platforms: set[str] = set()
    accounts: set[str] = set()
    id_hashes = []
    needed = ["follower_id", "handle", "truth_label", "platform", "account", "follow_rank", "bio", "bio_length",
              "handle_length", "handle_digits"]
    for part in parquet_slices(scan_planned(path, plan, needed), CHECK_ROWS):
        found = part.select(
            pl.len().alias("n"),
            pl.col("follower_id").is_null().sum().alias("missing_ids"),
            (_changed_by_import("follower_id") | _changed_by_import("handle") | _changed_by_import("truth_label")).sum().alias("untrimmed"),
            pl.col("platform").null_count().alias("without_platform"),
            pl.col("follow_rank").count().alias("ranked"),
            ((pl.col("bio").is_not_null() & pl.col("bio_length").is_null())
             | (pl.col("handle").is_not_null() & (pl.col("handle_length").is_null() | pl.col("handle_digits").is_null()))).sum().alias("underived"),
        ).row(0, named=True)
        for key in counts:
            counts[key] += int(found[key])
        platforms.update(part.get_column("platform").drop_nulls().unique().to_list())
        accounts.update(part.get_column("account").drop_nulls().unique().to_list())
        id_hashes.append(part.get_column("follower_id").hash())
    n = counts["n"]
    if not n:
        return None
    one_platform = counts["without_platform"] == 0 and len(platforms) == 1 and (platform is None or platform in platforms)
    # Equal id hashes may be a repeated id (or, rarely, a collision): the import decides which.
    distinct_ids = pl.concat(id_hashes).n_unique()
    clean = counts["missing_ids"] == 0 and distinct_ids == n and counts["untrimmed"] == 0 and counts["underived"] == 0
    ranked = counts["ranked"] > 0
    if not (clean and one_platform and len(accounts) <= 1) or (not ranked and order not in (None, "unknown")):
        return None
    return InPlace(n=n, platform=platforms.pop(), account=accounts.pop() if accounts else None, ranked=ranked)
