"""Derived per-follower features as Polars expressions over the canonical columns.

Every feature is one named expression, computed vectorised; rules, the model and reports all read
features from here so a ratio or an age is defined exactly once. Missing inputs give null features
(LightGBM handles nulls natively; rules treat a null as "rule cannot fire").
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import polars as pl

DAY_US = 86_400 * 1_000_000


def reference_time(as_of: datetime | None) -> pl.Expr:
    """When the profile was observed: the row's ``observed_at``, else ``as_of`` (snapshot time)."""
    if as_of is None:
        return pl.col("observed_at")
    return pl.coalesce(pl.col("observed_at"), pl.lit(as_of, dtype=pl.Datetime("us", "UTC")))


def _days_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    return (later - earlier).dt.total_microseconds().cast(pl.Float64) / DAY_US


def feature_exprs(as_of: datetime | None = None) -> dict[str, pl.Expr]:
    """name -> expression. ``as_of`` is the snapshot time used when a row has no ``observed_at``."""
    return dict(_feature_exprs(as_of))


@lru_cache(maxsize=8)
def _feature_exprs(as_of: datetime | None) -> tuple[tuple[str, pl.Expr], ...]:
    # Built once per reference time (expressions are immutable): building them cost ~5 ms a call,
    # and labelling a batch asked for them several times.
    ref = reference_time(as_of)
    followers = pl.col("followers_count").cast(pl.Float64)
    following = pl.col("following_count").cast(pl.Float64)
    posts = pl.col("posts_count").cast(pl.Float64)
    age = _days_between(ref, pl.col("created_at")).clip(lower_bound=0.0)
    return tuple({
        "age_days": age,
        "days_since_active": _days_between(ref, pl.col("last_active_at")).clip(lower_bound=0.0),
        "log_followers": followers.log1p(),
        "log_following": following.log1p(),
        "log_posts": posts.log1p(),
        "log_likes": pl.col("likes_count").cast(pl.Float64).log1p(),
        "log_listed": pl.col("listed_count").cast(pl.Float64).log1p(),
        # following:followers, with +1 so a follower-less account has a finite ratio
        "following_per_follower": (following + 1.0) / (followers + 1.0),
        "posts_per_day": posts / (age + 1.0),
        "following_per_day": following / (age + 1.0),
        "followers_per_day": followers / (age + 1.0),
        "bio_length": pl.col("bio_length").cast(pl.Float64),
        "has_avatar": pl.col("has_avatar").cast(pl.Float64),
        "has_url": pl.col("has_url").cast(pl.Float64),
        "has_location": pl.col("has_location").cast(pl.Float64),
        "handle_length": pl.col("handle_length").cast(pl.Float64),
        "handle_digits": pl.col("handle_digits").cast(pl.Float64),
        "handle_digit_share": pl.col("handle_digits").cast(pl.Float64) / pl.col("handle_length").cast(pl.Float64).clip(lower_bound=1.0),
        "name_length": pl.col("display_name").str.len_chars().cast(pl.Float64),
        "private": pl.col("private").cast(pl.Float64),
        # --- added for the model (classify/model.py); profile-only, from one user object ---
        "log_followers_per_following": followers.log1p() - following.log1p(),
        "posts_per_follower": posts / (followers + 1.0),
        "likes_per_post": pl.col("likes_count").cast(pl.Float64) / (posts + 1.0),
        "likes_per_day": pl.col("likes_count").cast(pl.Float64) / (age + 1.0),
        "listed_per_follower": pl.col("listed_count").cast(pl.Float64) / (followers + 1.0),
        "name_words": pl.col("display_name").str.strip_chars().str.count_matches(r"\S+").cast(pl.Float64),
        "name_digits": pl.col("display_name").str.count_matches(r"\d").cast(pl.Float64),
        "name_non_ascii": pl.col("display_name").str.count_matches(r"[^\x00-\x7F]").cast(pl.Float64),
        "name_upper_share": pl.col("display_name").str.count_matches(r"[A-Z]").cast(pl.Float64)
        / pl.col("display_name").str.len_chars().cast(pl.Float64).clip(lower_bound=1.0),
        "handle_upper": pl.col("handle").str.count_matches(r"[A-Z]").cast(pl.Float64),
        "handle_underscores": pl.col("handle").str.count_matches("_").cast(pl.Float64),
        "bio_words": pl.col("bio").str.count_matches(r"\S+").cast(pl.Float64),
        "bio_has_link": pl.col("bio").str.contains(r"https?://|www\.").cast(pl.Float64),
        "bio_mentions": pl.col("bio").str.count_matches(r"[@#]\w").cast(pl.Float64),
        "bio_non_ascii": pl.col("bio").str.count_matches(r"[^\x00-\x7F]").cast(pl.Float64),
        # share of the profile left empty, over the parts the source shows (no avatar, empty bio, no
        # website, no location); null when it shows none of them
        "profile_emptiness": _emptiness(),
        # generated handles: name parts glued to random letters ("NolascocyrAndre", "brockgcyk")
        "handle_consonant_run": _longest_consonant_run(),
        # the first word of the display name reappears in the handle (generated handles glue names to noise)
        "handle_has_first_name": _first_name_in_handle(),
    }.items())


def _emptiness() -> pl.Expr:
    parts = [pl.col("has_avatar").not_(), pl.col("bio_length") == 0, pl.col("has_url").not_(), pl.col("has_location").not_()]
    empty = pl.sum_horizontal([p.cast(pl.Float64).fill_null(0.0) for p in parts])
    known = pl.sum_horizontal([p.is_not_null().cast(pl.Float64) for p in parts])
    return pl.when(known > 0).then(empty / known)


def _first_name_word() -> pl.Expr:
    """The first run of 3+ letters in the display name, lowercase; null if there is none."""
    return pl.col("display_name").str.to_lowercase().str.extract(r"([a-z]{3,})", 1)


MAX_CONSONANT_RUN = 6


def _longest_consonant_run() -> pl.Expr:
    """Longest run of consonants in the handle, capped at 6 (one regex test per length, no lists)."""
    handle = pl.col("handle")
    run = pl.sum_horizontal(
        [handle.str.contains(f"(?i)[bcdfghjklmnpqrstvwxz]{{{k}}}").fill_null(False).cast(pl.Float64) for k in range(1, MAX_CONSONANT_RUN + 1)]
    ).cast(pl.Float64)
    return pl.when(handle.is_not_null()).then(run)  # no handle: unknown, not "no consonants"


def _first_name_in_handle() -> pl.Expr:
    """1.0 when the display name's first word occurs in the handle, else 0.0 (also when the name has
    no word); null when the handle or the display name is unknown."""
    word = _first_name_word()
    found = (word.is_not_null() & pl.col("handle").str.to_lowercase().str.contains(word, literal=True)).fill_null(False).cast(pl.Float64)
    return pl.when(pl.col("handle").is_not_null() & pl.col("display_name").is_not_null()).then(found)


# The canonical columns each feature reads: a feature is unknown when any of them is null.
FEATURE_INPUTS: dict[str, tuple[str, ...]] = {
    "age_days": ("created_at",),
    "days_since_active": ("last_active_at",),
    "log_followers": ("followers_count",),
    "log_following": ("following_count",),
    "log_posts": ("posts_count",),
    "log_likes": ("likes_count",),
    "log_listed": ("listed_count",),
    "following_per_follower": ("following_count", "followers_count"),
    "posts_per_day": ("posts_count", "created_at"),
    "following_per_day": ("following_count", "created_at"),
    "followers_per_day": ("followers_count", "created_at"),
    "bio_length": ("bio_length",),
    "has_avatar": ("has_avatar",),
    "has_url": ("has_url",),
    "has_location": ("has_location",),
    "handle_length": ("handle_length",),
    "handle_digits": ("handle_digits",),
    "handle_digit_share": ("handle_digits", "handle_length"),
    "name_length": ("display_name",),
    "private": ("private",),
    "log_followers_per_following": ("followers_count", "following_count"),
    "posts_per_follower": ("posts_count", "followers_count"),
    "likes_per_post": ("likes_count", "posts_count"),
    "likes_per_day": ("likes_count", "created_at"),
    "listed_per_follower": ("listed_count", "followers_count"),
    "name_words": ("display_name",),
    "name_digits": ("display_name",),
    "name_non_ascii": ("display_name",),
    "name_upper_share": ("display_name",),
    "handle_upper": ("handle",),
    "handle_underscores": ("handle",),
    "bio_words": ("bio",),
    "bio_has_link": ("bio",),
    "bio_mentions": ("bio",),
    "bio_non_ascii": ("bio",),
    "handle_consonant_run": ("handle",),
    "profile_emptiness": ("has_avatar", "bio_length", "has_url", "has_location"),
    "handle_has_first_name": ("handle", "display_name"),
}


def inputs_of(features: tuple[str, ...] | list[str]) -> set[str]:
    """The canonical columns a feature list reads."""
    return {c for f in features for c in FEATURE_INPUTS.get(f, ())}


def add_features(frame: pl.DataFrame | pl.LazyFrame, as_of: datetime | None = None, names: list[str] | None = None) -> pl.LazyFrame:
    """``frame`` with feature columns appended (prefixed ``f_`` so they never clash with canonical ones)."""
    exprs = feature_exprs(as_of)
    chosen = names or list(exprs)
    return frame.lazy().with_columns([exprs[n].alias(f"f_{n}") for n in chosen])
