"""The fake share of a model audit: pick the error rates, diagnose the shift, run the chosen estimator.

What a model audit's ``corrected`` section and ``evidence`` need, from what a streamed audit keeps
(label counts, the probability histogram, the binned features and which fields were known) and the
model card's entry (per-pattern error rates and score profiles, the transfer distribution measured
leave-one-domain-out, the shift reference and the default estimator chosen by that protocol).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..schema import SampleDesign
from .corrected import SEED, corrected_from_counts
from .intervals import confidence_label
from .quantifiers import quantify_all
from .shift import AudienceProfile, diagnose
from .transfer import FAR_SE_FLOOR, FAR_SP_FLOOR, Transfer, transfer_draws

DEFAULT = "adjusted_transfer"


def model_estimates(
    counts: dict[str, int],
    entry: dict[str, Any],
    *,
    mask: str,
    profile: AudienceProfile | None,
    probabilities: tuple[np.ndarray, float] | None,
    confidence: float = 0.95,
    design: SampleDesign | None = None,
    seed: int = SEED,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``(corrected, evidence)`` for a model audit.

    ``mask`` is the missing-field pattern the audience matches (``classify.masks.closest_mask``);
    the error rates and score profile measured under it are used.
    """
    by_mask = entry.get("masks", {})
    measured = by_mask.get(mask) or {"error_rates": entry["error_rates"]}
    er = measured["error_rates"]
    errs = {k: int(er[k]) for k in ("tp", "fn", "tn", "fp")}
    reference = entry.get("shift_reference")
    if profile is not None and reference:
        shift = diagnose(profile, reference, seed=seed)
    else:
        shift = {"level": "unknown", "auc": None, "outside_support": None, "method": "no shift reference in the model card",
                 "words": "How far these followers sit from the training data was not measured."}
    level = shift["level"]
    if mask == "usernames":  # a handle alone: the model cannot judge, whatever the distance says
        level = "far"
        shift = {**shift, "level": "far",
                 "words": "These followers carry only usernames, far too little for the model to judge: only a wide range is given."}
    n = sum(int(v) for v in counts.values())
    flagged = int(counts.get("fake", 0))
    population = design.fpc_population if design is not None else None
    transfer = Transfer.from_card(entry.get("transfer"))
    # unknown shift (too few followers to tell) is treated as moderate, never as near
    est, draws = transfer_draws(flagged, n, counts=errs, transfer=transfer, level=level if level != "unknown" else "moderate",
                                confidence=confidence, population=population, seed=seed)
    corrected = corrected_from_counts(counts, errs, confidence=confidence, design=design, probabilities=probabilities, seed=seed,
                                      fake=(est, DEFAULT, draws))
    others: dict[str, Any] = {}
    if probabilities is not None and probabilities[0].sum() > 0 and "prob_hist" in measured:
        for name, e in quantify_all(*probabilities, measured, confidence=confidence, seed=seed).items():
            others[name] = {**e.to_dict(), "estimator": name}
    if others:
        corrected["fake"]["alternatives"] = others
    # far: the share is the middle of a range, not an estimate; renderers should print the range only
    corrected["fake"]["range_only"] = level == "far"
    corrected["fake"]["shift_level"] = level
    # one sentence, the same in the corrected share and in the evidence (renderers quote either)
    corrected["fake"]["method"] = interval_sentence(level, transfer, confidence)
    evidence = {
        "shift": shift,
        "interval_method": corrected["fake"]["method"],
        "model_fields": {"pattern": mask, "error_rates": {"sensitivity": er["sensitivity"], "specificity": er["specificity"]}},
    }
    return corrected, evidence


def interval_sentence(level: str, transfer: Transfer, confidence: float) -> str:
    """One sentence naming the interval method and the error it includes."""
    label = confidence_label(confidence)
    if level == "far":
        return (f"The fake share is a {label} range, not an estimate: these followers are far from the training data, so it spans "
                f"every share consistent with the flagged share for any sensitivity from {FAR_SE_FLOOR:.0%} and specificity from "
                f"{FAR_SP_FLOOR:.0%} to 100%, "
                "plus sampling error")
    widen = " doubled for a moderately shifted audience," if level in ("moderate", "unknown") else ""
    return (f"Adjusted classify-and-count (Rogan–Gladen); its {label} interval includes sampling error, the uncertainty of the model's "
            "sensitivity and specificity, and how they moved between held-out training domains "
            f"(leave-one-domain-out; spreads ×{transfer.inflate_se:g} for sensitivity and ×{transfer.inflate_sp:g} for specificity,{widen} "
            "calibrated so that held-out audits are covered at least 90% of the time)")
