"""What the importers really leave out: the missing-field patterns the models are trained and measured under.

A field a source lacks is null, never the worst value. The models learn that null means unknown by
seeing every training row again with the fields of each pattern set to null (LightGBM routes NaN down
a learned branch), and the card keeps the sensitivity/specificity measured under each pattern, so an
audit of a Bluesky export is corrected with the error the model makes when it cannot see likes,
lists, locations or websites.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

# Canonical columns the features read (features.py), so "what is known" is about these only.
PROFILE_FIELDS: tuple[str, ...] = (
    "handle", "display_name", "created_at", "last_active_at", "followers_count", "following_count",
    "posts_count", "likes_count", "listed_count", "has_avatar", "bio", "bio_length", "has_url",
    "has_location", "private", "handle_length", "handle_digits",
)  # fmt: skip

_ALL_BUT = lambda keep: tuple(f for f in PROFILE_FIELDS if f not in keep)  # noqa: E731

# pattern -> canonical columns that pattern leaves null
MASKS: dict[str, tuple[str, ...]] = {
    "full": (),
    # Bluesky app.bsky.actor profiles: no likes given, lists, location, website or privacy flag
    "bluesky": ("likes_count", "listed_count", "has_location", "has_url", "private", "last_active_at"),
    # Mastodon accounts: no likes-given count, lists or location
    "mastodon": ("likes_count", "listed_count", "has_location", "private"),
    # Instagram (InstaFake and scraped profiles): 8 anonymised fields
    "instagram": _ALL_BUT({"followers_count", "following_count", "posts_count", "has_avatar", "private",
                           "bio_length", "handle_length", "handle_digits"}),
    # third-party CSV exports: a handle and three counts
    "counts": _ALL_BUT({"handle", "handle_length", "handle_digits", "followers_count", "following_count", "posts_count"}),
    # a list of screen names (CSV of handles, Instagram's followers_1.json)
    "usernames": _ALL_BUT({"handle", "handle_length", "handle_digits"}),
}


def apply_mask(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """``frame`` with the columns of pattern ``name`` set to null (dtype kept)."""
    cols = [c for c in MASKS[name] if c in frame.columns]
    if not cols:
        return frame
    return frame.with_columns([pl.lit(None, dtype=frame.schema[c]).alias(c) for c in cols])


def known_counts(frame: pl.DataFrame) -> dict[str, int]:
    """Followers for which each profile field is known (non-null), one vectorised pass."""
    present = [c for c in PROFILE_FIELDS if c in frame.columns]
    row = frame.select([pl.col(c).is_not_null().sum().alias(c) for c in present]).row(0, named=True)
    return {c: int(row.get(c, 0) or 0) for c in PROFILE_FIELDS}


def closest_mask(known_share: Mapping[str, float], masks: tuple[str, ...], used: set[str] | None = None) -> str:
    """The training pattern that best matches what an audience carries.

    A field counts as unknown when fewer than half the followers have it. The pattern chosen hides
    every unknown field the model uses (so no unknown field is assumed known) and as few known
    ones as possible; if none hides them all, the one with the fewest mismatches.
    """
    fields = used or set(PROFILE_FIELDS)
    unknown = {f for f in fields if known_share.get(f, 0.0) < 0.5}

    def cost(m: str) -> tuple[int, int]:
        hidden = set(MASKS[m]) & fields
        return (len(unknown - hidden), len(hidden - unknown))

    return min(masks, key=lambda m: (cost(m), masks.index(m)))
