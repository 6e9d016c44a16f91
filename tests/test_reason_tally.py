"""The audit's reason counts told by the labeller equal the counts of the reasons' text.

``label_model`` counts the fake and inactive followers' reasons by pattern from the phrases'
numbers (``reasons._phrase_pattern_counts``) instead of blanking every text; ``LabelTally.add``
takes those counts. They must be the very counts ``LabelTally`` makes from the text, on frames
made to reach every variant: counts of 1 and below zero, unknown fields, display names with quote
marks, empty handles, ages below zero, several platforms, the platform's own moderation labels,
and every ``explain`` setting.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pytest

from followaudit.audit import LabelTally
from followaudit.classify import label_followers
from followaudit.classify import model as M
from followaudit.classify.reasons import pattern_counts
from followaudit.native import build
from followaudit.schema import conform
from followaudit.sources.synth import OBSERVED_AT, SynthSpec, generate


def text_tally(labels: pl.DataFrame) -> Counter:
    tally = LabelTally()
    tally.add(labels)
    return tally.reasons


def awkward(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """``frame`` with values that change a reason's pattern: 1s, negatives, nulls, quotes, blanks."""
    rng = np.random.default_rng(seed)
    n = frame.height

    def pick(p: float) -> pl.Series:
        return pl.Series(rng.random(n) < p)

    counts = {}
    for column in ("following_count", "followers_count", "posts_count", "likes_count", "listed_count"):
        values = frame[column]
        counts[column] = (
            pl.when(pick(0.08)).then(pl.lit(1, pl.Int64))
            .when(pick(0.03)).then(pl.lit(-1, pl.Int64) * pl.Series(rng.integers(1, 5000, n)))
            .when(pick(0.05)).then(pl.lit(None, pl.Int64))
            .otherwise(values.cast(pl.Int64))
        )
    def choose(values: list[str | None]) -> pl.Series:
        return pl.Series(values, dtype=pl.Utf8).gather(pl.Series(rng.integers(0, len(values), n)))

    names = choose(['Ann "the bot" 7', 'say "hi', '"', "", "Zoë 2024", None, "plain"])
    handles = choose(["", "bot_0042", "x", None, "Anna.B"])
    created = frame["created_at"]
    future = pl.lit(OBSERVED_AT).cast(created.dtype) + pl.duration(days=30)
    return frame.with_columns(
        **counts,
        display_name=pl.when(pick(0.3)).then(names).otherwise(pl.col("display_name")),
        handle=pl.when(pick(0.2)).then(handles).otherwise(pl.col("handle")),
        created_at=pl.when(pick(0.02)).then(future).otherwise(pl.col("created_at")),
        has_avatar=pl.when(pick(0.1)).then(pl.lit(None, pl.Boolean)).otherwise(pl.col("has_avatar")),
    )


@pytest.fixture(scope="module")
def frames() -> list[pl.DataFrame]:
    out = []
    for seed, platform in enumerate(("twitter", "instagram", "bluesky")):
        spec = SynthSpec(n=4000, seed=seed, difficulty=0.5 * seed)
        frame = conform(generate(spec).with_columns(platform=pl.lit(platform)))
        out.append(frame)
        out.append(conform(awkward(frame, seed)))
    return out


def counted(frame: pl.DataFrame, **options: object) -> tuple[pl.DataFrame, Counter | None]:
    out: dict = {}
    labels = label_followers(frame, method="model", as_of=OBSERVED_AT, features_out=out, **options)  # type: ignore[arg-type]
    return labels, out.get("reason_counts")


def test_counts_from_the_numbers_equal_the_counts_of_the_text(frames: list[pl.DataFrame]) -> None:
    for frame in frames:
        labels, counts = counted(frame, platform=frame["platform"][0])
        assert counts is not None
        assert counts == text_tally(labels)
        assert sum(counts.values()) > 0


@pytest.mark.parametrize("explain", ["fake", "all", "none"])
def test_every_explain_setting(frames: list[pl.DataFrame], explain: str) -> None:
    frame = frames[1]
    tally: Counter = Counter()
    labels = M.label_model(frame, as_of=OBSERVED_AT, platform="twitter", explain=explain, tally_out=tally)
    assert tally == text_tally(labels)


def test_several_platforms_in_one_frame_add_up(frames: list[pl.DataFrame]) -> None:
    mixed = pl.concat([frames[1], frames[3], frames[5]], how="vertical_relaxed")
    tally: Counter = Counter()
    labels = M.label_model(mixed, as_of=OBSERVED_AT, tally_out=tally)
    assert tally == text_tally(labels)


def test_quoted_names_and_negative_numbers_are_their_own_patterns(frames: list[pl.DataFrame]) -> None:
    _, counts = counted(frames[1], platform="twitter")
    assert counts is not None
    patterns = set(counts)
    # the awkward frame reaches the variants a blanket rule would merge or lose
    assert any(p.startswith("display name") and p != 'display name "…" (N characters)' for p in patterns), patterns
    assert any("-N" in p for p in patterns), patterns


def test_platform_moderation_labels_leave_the_counting_to_the_text(frames: list[pl.DataFrame]) -> None:
    frame = frames[4].with_columns(
        moderation_labels=pl.when(pl.int_range(pl.len()) % 7 == 0).then(pl.lit(["spam"])).otherwise(pl.lit([], pl.List(pl.Utf8)))
    )
    labels, counts = counted(frame, platform="bluesky")
    assert counts is None  # the platform's word changed the reasons: LabelTally counts the text
    assert any(r.startswith("platform moderation label") for r in text_tally(labels))


def test_the_same_counts_without_a_compiler(frames: list[pl.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWAUDIT_COMPILE", "0")
    monkeypatch.setattr(build, "_LIB", {})
    labels, counts = counted(frames[1], platform="twitter")
    assert counts == text_tally(labels)


def test_pattern_counts_weights_and_nulls() -> None:
    reasons = pl.Series(["follows 1 account", "follows 12 accounts", None, "follows 3 accounts", 'name "a1"'])
    assert pattern_counts(reasons) == Counter({"follows N account": 1, "follows N accounts": 2, 'name "…"': 1})
    weights = pl.Series([2, 0, 5, 1, 1])
    assert pattern_counts(reasons, weights) == Counter({"follows N account": 2, "follows N accounts": 1, 'name "…"': 1})
