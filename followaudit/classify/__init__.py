"""Labelling: one entry point, ``label_followers``, for every engine (CLI, web, streaming, Dask)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import polars as pl

from ..config import LABEL_METHODS
from ..schema import COLUMN_NAMES, conform
from .model import label_model
from .platform_labels import apply_platform_labels
from .rules import DEFAULT_INACTIVE_DAYS, label_rules

METHODS = LABEL_METHODS  # the first is the CLI default
# Canonical columns labelling never reads: not decoded from Parquet by `score` and `audit` (``raw``
# can be most of a file; the follow order and the verified flag cost ~20% of decoding the rest).
UNREAD_COLUMNS = ("raw", "truth_label", "follow_rank", "followed_at", "verified")
NEEDED_COLUMNS = set(COLUMN_NAMES) - {"raw"}  # a frame without all of these is conformed first


def label_followers(
    followers: pl.DataFrame | pl.LazyFrame,
    *,
    method: str = "rules",
    as_of: datetime | None,
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    platform: str | None = None,
    features_out: dict | None = None,
) -> pl.DataFrame:
    """``follower_id, label, probability, reasons, activity_unknown, platform_verdict`` per follower.

    ``features_out`` (model method only) receives the model's feature matrix under ``"X"``, and
    under ``"reason_counts"`` the reasons of the fake and inactive followers counted by pattern
    (``LabelTally.add`` takes them instead of counting the text again).

    After either labeller, the platform's own moderation labels are applied in one place
    (``platform_labels.py``): a follower the platform labels spam or inauthentic is fake.
    """
    present = set(followers.collect_schema().names())
    if not NEEDED_COLUMNS <= present:  # partial frames (tests, synth) get the canonical shape
        followers = conform(followers)
    tally = Counter() if method == "model" and features_out is not None else None
    if method == "rules":
        labels = label_rules(followers, as_of=as_of, inactive_days=inactive_days)
    elif method == "model":
        labels = label_model(followers, as_of=as_of, inactive_days=inactive_days, platform=platform,
                             features_out=features_out, tally_out=tally)
    else:
        raise ValueError(f"unknown labelling method {method!r}; choose one of {', '.join(METHODS)}")
    labels = apply_platform_labels(labels, followers)
    # the counts hold for the labeller's reasons: a platform's moderation label changes them
    if tally is not None and features_out is not None and labels["platform_verdict"].null_count() == labels.height:
        features_out["reason_counts"] = tally
    return labels
