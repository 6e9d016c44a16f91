"""Canonical Parquet read in place: when a file needs nothing an import would do, it is not copied.

An import validates, trims and conforms each row, then copies it into the workspace: for
followaudit's own canonical Parquet (``followaudit export``, ``score``, ``scale.synth_parquet``)
that copy is most of an audit's cost (~2 CPU-s per million followers, against ~0.5 for DuckDB to
read the file) and doubles the bytes on disk. So a canonical file that the import would store
unchanged is read where it is: one DuckDB pass over the file checks exactly what the import would
have changed or rejected (types, ids, handles, platform, derived lengths); any of it, or
``--copy``, and the file is imported the usual way, rejects and all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..schema import COLUMN_NAMES
from ..store.workspace import FOLLOWER_ROWS, Store

_BLANKS = "' \t\n\r\x0b\x0c'"  # what the import trims from ids and handles (ASCII whitespace)


@dataclass
class InPlace:
    """What a canonical Parquet file holds, once checked: it can be read as it is."""

    n: int
    platform: str
    account: str | None
    ranked: bool  # follow_rank given (else the order is unknown)


def _trimmed_or_null(column: str) -> str:
    """SQL: the text column holds no value an import would trim or turn into null."""
    return f"({column} IS NULL OR ({column} <> '' AND {column} = trim({column}, {_BLANKS})))"


def check_in_place(store: Store, path: str | Path, *, platform: str | None, account: str | None,
                   order: str | None) -> InPlace | None:
    """``InPlace`` when ``path`` (a Parquet file) can be audited where it is; None to import it.

    It can when its columns are the canonical ones with the workspace's types, every follower has a
    unique id, ids and handles need no trimming, one platform (the ``--platform`` given, if any) is
    on every row, the derived lengths are filled wherever their text is, and the options ask for
    nothing the file does not say (no ``--account``; no ``--order`` for a file without ranks: numbering
    followers is the import's job).
    """
    quoted = str(path).replace("'", "''")
    source = f"read_parquet('{quoted}')"
    con = store.con
    try:
        file_types = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    except Exception:  # noqa: BLE001 — unreadable here: the import reports it in its own words
        return None
    stored = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {FOLLOWER_ROWS}").fetchall() if name != "snapshot_id"}
    if account is not None or file_types != {c: stored[c] for c in COLUMN_NAMES}:
        return None
    row = store.row(
        f"""SELECT count(*) AS n,
                   count(*) FILTER (WHERE NOT (follower_id IS NOT NULL AND {_trimmed_or_null('follower_id')})) AS bad_ids,
                   count(DISTINCT hash(follower_id)) AS distinct_ids,
                   count(*) FILTER (WHERE NOT ({_trimmed_or_null('handle')} AND {_trimmed_or_null('truth_label')})) AS bad_text,
                   count(platform) AS with_platform, min(platform) AS platform, count(DISTINCT platform) AS platforms,
                   min(account) AS account, count(DISTINCT account) AS accounts,
                   count(follow_rank) AS ranked,
                   count(*) FILTER (WHERE (bio IS NOT NULL AND bio_length IS NULL)
                                       OR (handle IS NOT NULL AND (handle_length IS NULL OR handle_digits IS NULL))) AS underived
            FROM {source}"""
    )
    if row is None or not row["n"]:
        return None
    n = int(row["n"])
    one_platform = row["with_platform"] == n and row["platforms"] == 1 and (platform is None or row["platform"] == platform)
    # Equal id hashes may be a repeated id (or, rarely, a collision): the import decides which.
    clean = row["bad_ids"] == 0 and row["distinct_ids"] == n and row["bad_text"] == 0 and row["underived"] == 0
    ranked = int(row["ranked"]) > 0
    if not (clean and one_platform and row["accounts"] <= 1) or (not ranked and order not in (None, "unknown")):
        return None
    return InPlace(n=n, platform=str(row["platform"]), account=row["account"], ranked=ranked)
