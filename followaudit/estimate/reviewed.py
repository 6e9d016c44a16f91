"""The report's ``reviewed`` section: shares, the model's error on this audience, agreement, from reviews.

Input is plain tables (the store and ``audit.py`` gather them): the reviewed sample with each
follower's reviewer label, the model's label and the stratum it was drawn from; the model's label
counts over all audited followers; the sample design. "can't tell" answers are kept in the workspace
and counted here, but excluded from the estimate (they are treated as missing at random within their
stratum, which the method line says).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..schema import LABELS
from .ppi import (
    ShareEstimate,
    cohens_kappa,
    ppi_mean,
    reviews_to_halve,
    stratified_mean,
    weighted_rate,
)

CANT_TELL = "cant_tell"
REVIEW_LABELS = (*LABELS, CANT_TELL)


def share_estimates(
    reviewed: pl.DataFrame,
    predicted_counts: dict[str, int],
    design: dict[str, Any],
    *,
    confidence: float = 0.95,
    population: int | None = None,
) -> dict[str, ShareEstimate]:
    """One estimate per label from definite reviews (``label``, ``predicted``, ``stratum`` columns)."""
    n_all = sum(predicted_counts.values())
    y_labels = reviewed["label"].to_numpy()
    out: dict[str, ShareEstimate] = {}
    strata_sizes = {str(k): int(v) for k, v in (design.get("strata") or {}).items()}
    stratified = design.get("kind") == "stratified" and strata_sizes and reviewed["stratum"].null_count() == 0
    for label in LABELS:
        y = (y_labels == label).astype(float)
        if stratified:
            out[label] = stratified_mean(y, reviewed["stratum"].to_numpy(), strata_sizes, confidence=confidence, population=population)
            continue
        known = reviewed["predicted"].null_count() == 0 and n_all > 0
        f = (reviewed["predicted"].fill_null("").to_numpy() == label).astype(float)
        p = predicted_counts.get(label, 0) / n_all if n_all else 0.0
        out[label] = ppi_mean(
            y, f, p, p * (1 - p), max(n_all, 1), confidence=confidence, population=population,
            lam=None if known else 0.0,  # without the model's label for every reviewed follower: classical
        )
    return out


def design_weights(reviewed: pl.DataFrame, design: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """Design weights N_h / n_h per reviewed follower (1 for a uniform sample) and the strata."""
    if design.get("kind") != "stratified" or reviewed["stratum"].null_count():
        return np.ones(reviewed.height), None
    sizes = {str(k): int(v) for k, v in (design.get("strata") or {}).items()}
    counts = dict(reviewed["stratum"].value_counts().iter_rows())
    strata = reviewed["stratum"].to_numpy()
    weights = np.array([sizes.get(h, 0) / counts[h] for h in strata], dtype=float)
    return weights, strata


def model_on_audience(reviewed: pl.DataFrame, design: dict[str, Any], confidence: float = 0.95, label: str = "fake") -> dict[str, Any] | None:
    """The model's sensitivity and specificity for ``label`` measured on this audience's reviews."""
    if reviewed["predicted"].null_count() == reviewed.height:
        return None
    known = reviewed.filter(pl.col("predicted").is_not_null())
    weights, strata = design_weights(known, design)
    truth = known["label"].to_numpy() == label
    said = known["predicted"].to_numpy() == label
    return {
        "label": label,
        "sensitivity": weighted_rate(truth & said, truth, weights, strata, confidence),
        "specificity": weighted_rate(~truth & ~said, ~truth, weights, strata, confidence),
    }


def agreement(all_reviews: pl.DataFrame, confidence: float = 0.95) -> dict[str, Any] | None:
    """Cohen's kappa of the two reviewers who labelled the most followers in common (definite labels)."""
    definite = all_reviews.filter(pl.col("label") != CANT_TELL).unique(["follower_id", "reviewer"], keep="last")
    reviewers = definite["reviewer"].unique().to_list()
    if len(reviewers) < 2:
        return None
    best: tuple[int, str, str] | None = None
    for i, a in enumerate(sorted(reviewers)):
        for b in sorted(reviewers)[i + 1:]:
            common = definite.filter(pl.col("reviewer") == a).join(definite.filter(pl.col("reviewer") == b), on="follower_id").height
            if best is None or common > best[0]:
                best = (common, a, b)
    if best is None or best[0] < 2:
        return None
    _, a, b = best
    pairs = definite.filter(pl.col("reviewer") == a).join(definite.filter(pl.col("reviewer") == b), on="follower_id", suffix="_b")
    out = cohens_kappa(pairs["label"].to_list(), pairs["label_b"].to_list(), confidence)
    if out is not None:
        out["reviewers"] = [a, b]
    return out


def reviewed_section(
    reviewed: pl.DataFrame,
    predicted_counts: dict[str, int],
    design: dict[str, Any],
    *,
    confidence: float = 0.95,
    population: int | None = None,
    all_reviews: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """The Report's ``reviewed`` dict from the sample's reviews (one per follower, the primary label).

    ``reviewed``: follower_id, label (fake / inactive / real / cant_tell), predicted, stratum.
    ``all_reviews``: follower_id, reviewer, label — every reviewer's answers, for Cohen's kappa.
    """
    cant = int((reviewed["label"] == CANT_TELL).sum())
    definite = reviewed.filter(pl.col("label").is_in(list(LABELS)))
    estimates = share_estimates(definite, predicted_counts, design, confidence=confidence, population=population)
    n_all = sum(predicted_counts.values())
    out: dict[str, Any] = {
        "n": definite.height,
        "cant_tell": cant,
        "design": design,
        **{label: est.to_dict() for label, est in estimates.items()},
        "model_on_this_audience": model_on_audience(definite, design, confidence),
        "kappa": agreement(all_reviews, confidence) if all_reviews is not None else None,
        "reviews_to_halve": reviews_to_halve(estimates["fake"], n_max=n_all or None),
        "population": population,
        "note": (
            f"{cant:,} \"can't tell\" answers are kept but left out of the estimate" if cant else
            "\"can't tell\" answers would be kept but left out of the estimate"
        ),
    }
    return out
