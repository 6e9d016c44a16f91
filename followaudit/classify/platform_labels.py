"""The platform's own moderation as evidence: applied once, after any labeller (rules or model).

A follower that the platform's moderation labels as fake-like (``FAKE_LABELS``) is fake with that
label as its reason, whatever the labeller said. Which values count (decided here, documented in
docs/collect.md):

* fake: ``spam``, ``inauthentic``, ``engagement-farming``, ``scam``, ``impersonation`` from Bluesky's
  own moderation service (stored bare; another labeler's values carry ``@DID`` and do not count);
* counted but not fake: ``!hide`` and ``!takedown`` (moderation actions for any kind of abuse),
  Mastodon ``suspended`` and ``limited`` (an instance moderates for many reasons), ``moved``,
  ``memorial``, ``noindex``, self-labels (``self:…``), and other labelers' values.

``platform_verdict`` keeps what the labeller itself said about these followers, so the audit can
measure how often the model agrees with the platform (its sensitivity on platform-labelled fakes).
"""

from __future__ import annotations

import polars as pl

FAKE_LABELS = ("spam", "inauthentic", "engagement-farming", "scam", "impersonation")
REASON = "platform moderation label: {value}"


def platform_fake_label() -> pl.Expr:
    """The first fake-class platform label of a follower, or null."""
    labels = pl.col("moderation_labels").list.eval(pl.element().str.to_lowercase())
    hits = labels.list.set_intersection(pl.lit(list(FAKE_LABELS), dtype=pl.List(pl.Utf8)))
    return pl.when(hits.list.len() > 0).then(hits.list.sort().list.first()).otherwise(None)


def apply_platform_labels(labels: pl.DataFrame, followers: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """``labels`` with platform-labelled fakes set to fake (reason added) and ``platform_verdict``.

    ``labels`` and ``followers`` are row-aligned (labelling is row-wise). ``platform_verdict`` is the
    labeller's own label for followers with a fake-class platform label, else null.
    """
    values = followers.lazy().select(platform_fake_label().alias("_platform")).collect()["_platform"]
    if values.null_count() == values.len():
        return labels.with_columns(pl.lit(None, pl.Utf8).alias("platform_verdict"))
    hit = pl.col("_platform").is_not_null()
    reason = pl.format(REASON.replace("{value}", "{}"), pl.col("_platform"))
    reasons = pl.col("reasons").fill_null(pl.lit([], pl.List(pl.Utf8)))
    return (
        labels.with_columns(values)
        .with_columns(
            pl.when(hit).then(pl.col("label")).otherwise(None).alias("platform_verdict"),
            pl.when(hit).then(pl.lit("fake")).otherwise(pl.col("label")).alias("label"),
            # the platform's word first; a labeller that already said fake keeps its own reasons
            pl.when(hit & (pl.col("label") == "fake")).then(pl.concat_list(reason, reasons).list.unique(maintain_order=True))
            .when(hit).then(pl.concat_list(reason))
            .otherwise(pl.col("reasons")).alias("reasons"),
        )
        .drop("_platform")
    )
