"""The canonical follower table: one row per follower per snapshot.

Every source (files, Bluesky, Mastodon, Parquet) produces exactly these columns; a field a platform
does not have is null, never invented. ``conform`` is the one function that turns a partial frame
into this shape, so no other module needs to know about missing columns or dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .config import PLATFORMS as CONFIG_PLATFORMS

UTC_TS = pl.Datetime("us", "UTC")

# name -> (dtype, meaning). Order is the column order of the stored table and of `export`.
COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "platform": (pl.Utf8(), "twitter, instagram, bluesky, mastodon, or other"),
    "account": (pl.Utf8(), "the audited (followed) account, when known"),
    "follower_id": (pl.Utf8(), "platform id of the follower (Twitter id_str, Bluesky DID, Mastodon id)"),
    "handle": (pl.Utf8(), "screen name / handle / acct"),
    "display_name": (pl.Utf8(), "display name"),
    "follow_rank": (pl.Int64(), "0 = first (oldest) follower; null when the order is unknown"),
    "followed_at": (UTC_TS, "exact time of the follow, where the source gives it (Bluesky follow-record TID, Instagram export timestamp)"),
    "created_at": (UTC_TS, "when the follower's account was created (UTC)"),
    "followers_count": (pl.Int64(), "followers of the follower"),
    "following_count": (pl.Int64(), "accounts the follower follows (Twitter friends_count)"),
    "posts_count": (pl.Int64(), "posts / statuses / media"),
    "likes_count": (pl.Int64(), "likes given (Twitter favourites_count)"),
    "listed_count": (pl.Int64(), "lists the follower is on"),
    "has_avatar": (pl.Boolean(), "a profile picture is set (not the default egg)"),
    "bio": (pl.Utf8(), "profile description text"),
    "bio_length": (pl.Int64(), "characters in the bio (given directly by anonymised datasets)"),
    "has_url": (pl.Boolean(), "a website is set"),
    "has_location": (pl.Boolean(), "a location is set"),
    "verified": (pl.Boolean(), "platform verification"),
    "private": (pl.Boolean(), "protected / locked / private account"),
    "self_declared_bot": (pl.Boolean(), "the account says it is automated (Mastodon bot flag)"),
    "moderation_labels": (pl.List(pl.Utf8()), "platform moderation labels, e.g. Bluesky 'spam'"),
    "last_active_at": (UTC_TS, "time of the follower's latest post, when known"),
    "observed_at": (UTC_TS, "when this profile was read (crawl time); null = snapshot time"),
    "handle_length": (pl.Int64(), "characters in the handle's local part"),
    "handle_digits": (pl.Int64(), "digits in the handle's local part"),
    "truth_label": (pl.Utf8(), "ground truth from a labelled dataset or synth; never used for labelling"),
    "raw": (pl.Utf8(), "the original record as JSON text, for audit (CSV and other tables: only the cells no canonical column holds, null when none; canonical Parquet: its own raw column)"),
}

COLUMN_NAMES: list[str] = list(COLUMNS)
SCHEMA: dict[str, pl.DataType] = {name: dtype for name, (dtype, _) in COLUMNS.items()}

LABELS = ("fake", "inactive", "real")  # precedence order: fake beats inactive beats real
PLATFORMS = CONFIG_PLATFORMS


def _handle_local_part() -> pl.Expr:
    # Bluesky handles carry a domain (alice.bsky.social), Mastodon acct may carry @instance:
    # the "shape" signals (length, digits) are about the part a person chose.
    return pl.col("handle").str.strip_chars_start("@").str.split("@").list.first().str.split(".").list.first()


def conform(df: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Return ``df`` with exactly the canonical columns, dtypes and order.

    Missing columns become null. ``bio_length``, ``handle_length`` and ``handle_digits`` are filled
    from ``bio`` / ``handle`` when those are present and the source did not give them.
    """
    lf = df.lazy()
    present = set(lf.collect_schema().names())
    missing = [pl.lit(None, dtype=SCHEMA[c]).alias(c) for c in COLUMN_NAMES if c not in present]
    if missing:
        lf = lf.with_columns(missing)
    casts = []
    for name, dtype in SCHEMA.items():
        casts.append(pl.col(name).cast(dtype, strict=False))
    lf = lf.with_columns(casts)
    local = _handle_local_part()
    lf = lf.with_columns(
        pl.coalesce(pl.col("bio_length"), pl.col("bio").str.len_chars().cast(pl.Int64)).alias("bio_length"),
        pl.coalesce(pl.col("handle_length"), local.str.len_chars().cast(pl.Int64)).alias("handle_length"),
        pl.coalesce(pl.col("handle_digits"), local.str.count_matches(r"\d").cast(pl.Int64)).alias("handle_digits"),
    )
    return lf.select(COLUMN_NAMES).collect()


def empty() -> pl.DataFrame:
    """An empty canonical table."""
    return pl.DataFrame(schema=SCHEMA)


def ranks_from_order(n: int, order: str) -> pl.Series:
    """``follow_rank`` for ``n`` rows in file order.

    ``newest-first`` (API order): the last row is the oldest follower, rank 0.
    ``oldest-first``: the first row is rank 0. ``unknown``: all null.
    """
    if order == "newest-first":
        return pl.int_range(n - 1, -1, -1, eager=True).cast(pl.Int64).alias("follow_rank")
    if order == "oldest-first":
        return pl.int_range(0, n, eager=True).cast(pl.Int64).alias("follow_rank")
    if order == "unknown":
        return pl.repeat(None, n, dtype=pl.Int64, eager=True).alias("follow_rank")
    raise ValueError(f"unknown order {order!r}")


@dataclass(frozen=True)
class SampleDesign:
    """How the followers in a snapshot were chosen.

    ``full``: every follower that could be enumerated (n == population).
    ``uniform``: a seeded simple random sample without replacement of n out of ``population``.
    """

    kind: str = "full"
    n: int | None = None
    population: int | None = None
    seed: int | None = None

    @property
    def fpc_population(self) -> int | None:
        """Population size for the finite-population correction, or None when not a sample."""
        if self.kind == "uniform" and self.population and self.n and self.n < self.population:
            return self.population
        return None

    def describe(self) -> str:
        if self.kind == "uniform":
            return f"uniform random sample of {self.n:,} out of {self.population:,} (seed {self.seed})"
        return "full follower list"
