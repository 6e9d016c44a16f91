"""Follower id lists in follow order, joined with a separate profiles file.

Layouts (FollowerAnalyzer): ``<account>_network.json(.gz)`` = ``{"followers": [ids newest first],
"friends": [...]}``, and ``{id: {"rank": r, "timestamp": t}}`` with rank 0 = oldest follower and
``timestamp`` the follower's account creation time. Profiles: JSONL (or any supported file) of user
records; followers without a profile keep their rank with null profile fields.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from ...errors import InputError
from .common import Field

ID_FIELDS = [Field("follower_id", "follower_id", "id"), Field("follow_rank", "follow_rank", "int")]


def account_from_name(path: str | Path) -> str | None:
    """``172048868_network.json.gz`` -> ``172048868``."""
    match = re.match(r"^(.+?)_network\.json", Path(path).name)
    return match.group(1) if match else None


def is_network(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("followers"), list) and (
        not doc["followers"] or isinstance(doc["followers"][0], str | int)
    ) and "subject" not in doc


def is_rank_map(doc: Any) -> bool:
    if not isinstance(doc, dict) or not doc:
        return False
    first = next(iter(doc.values()))
    return isinstance(first, dict) and "rank" in first


def network_frame(doc: dict, file: str) -> pl.DataFrame:
    """(line, raw, follower_id) from a network file; line = 1-based position in the list.

    Ranks are derived after duplicates are dropped, so they stay 0..n-1 without gaps.
    """
    ids = pl.Series("follower_id", [str(x) if x is not None else None for x in doc["followers"]], dtype=pl.Utf8)
    frame = pl.DataFrame({"line": pl.int_range(1, ids.len() + 1, eager=True).cast(pl.Int64), "follower_id": ids})
    return frame.with_columns((pl.lit('"') + pl.col("follower_id").fill_null("null") + pl.lit('"')).alias("raw"))


def rank_map_frame(doc: dict, file: str) -> pl.DataFrame:
    """(line, raw, follower_id, follow_rank, timestamp) from ``{id: {rank, timestamp}}``."""
    if not all(isinstance(v, dict) for v in doc.values()):
        raise InputError(f"{file}: every value of the id map must be an object with a rank", "check the file")
    ids = list(doc)
    frame = pl.DataFrame(
        {
            "follower_id": ids,
            "follow_rank": [None if doc[i].get("rank") is None else str(doc[i].get("rank")) for i in ids],
            "timestamp": [None if doc[i].get("timestamp") is None else str(doc[i].get("timestamp")) for i in ids],
        },
        schema={"follower_id": pl.Utf8, "follow_rank": pl.Utf8, "timestamp": pl.Utf8},
    )
    return frame.with_row_index("line", offset=1).with_columns(
        pl.col("line").cast(pl.Int64),
        pl.concat_str(
            pl.lit('{"'), pl.col("follower_id"), pl.lit('": {"rank": '), pl.col("follow_rank").fill_null("null"),
            pl.lit(', "timestamp": '), pl.col("timestamp").fill_null("null"), pl.lit("}}"),
        ).alias("raw"),
    )


RANK_MAP_FIELDS = [*ID_FIELDS, Field("created_at", "timestamp", "epoch")]


def join_profiles(ids: pl.DataFrame, profiles: pl.DataFrame | None) -> tuple[pl.DataFrame, int]:
    """Attach canonical profile columns to the canonical id list; returns (followers, n without profile).

    The id list decides who the followers are and their ranks; a profile only fills the other columns.
    """
    if profiles is None:
        return ids, ids.height
    keep = [c for c in profiles.columns if c not in ("platform", "account", "follower_id", "follow_rank")]
    prof = profiles.unique("follower_id", keep="first", maintain_order=True)
    joined = ids.select("platform", "account", "follower_id", "follow_rank").join(
        prof.select("follower_id", *keep), on="follower_id", how="left", maintain_order="left"
    )
    have = ids.select("follower_id").join(prof.select("follower_id"), on="follower_id", how="semi").height
    # A rank-map's own creation time (its "timestamp") fills in when the profile does not say.
    if "created_at" in ids.columns:
        joined = joined.with_columns(
            pl.coalesce(pl.col("created_at"), ids.get_column("created_at")).alias("created_at")
        )
    return joined, ids.height - have
