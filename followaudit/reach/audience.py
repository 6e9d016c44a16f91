"""Audience types: mass followers and the reachable audience (HypeAuditor's and Traackr's terms).

A **mass follower** follows more than ``threshold`` accounts (default 1,500), real or not: its
timeline is a torrent, so it rarely sees any one account's posts. The **reachable audience** is the
real followers who are not mass followers. Both are shares of the followers whose following count
is known (a follower without one is neither: missing is missing), with Wilson intervals,
finite-population corrected when the followers are a uniform sample.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..config import MASS_THRESHOLD
from ..estimate.intervals import interval_method, wilson
from ..schema import SampleDesign
from ..store.workspace import Snapshot, Store


def _share(count: int, n: int, confidence: float, population: int | None, threshold: int, method: str) -> dict[str, Any]:
    low, high = wilson(count, n, confidence, population)
    return {"share": count / n, "low": low, "high": high, "count": count, "n": n, "threshold": threshold, "method": method}


def audience_types(
    counts: dict[str, int], *, design: SampleDesign, confidence: float = 0.95, threshold: int = MASS_THRESHOLD
) -> dict[str, Any] | None:
    """From ``known`` (followers with a following count), ``mass`` and ``reachable`` counts, the
    JSON ``audience`` block; None when no follower has a following count."""
    known, audited = int(counts.get("known") or 0), int(counts.get("audited") or 0)
    if known == 0:
        return None
    population = None
    if design.fpc_population and audited:
        # the sample's followers with a known count stand for that share of the population
        population = max(known, round(design.fpc_population * known / audited))
        scaled = SampleDesign(design.kind, known, population, design.seed)
    else:
        scaled = SampleDesign("full", known, known, None)
    method = interval_method(confidence, scaled)
    return {
        "mass_followers": _share(int(counts["mass"]), known, confidence, population, threshold, method),
        "reachable": _share(int(counts["reachable"]), known, confidence, population, threshold, method),
        "threshold": threshold,
        "followers_with_following_count": known,
        "followers_audited": audited,
        "definition": (
            f"mass followers follow more than {threshold:,} accounts (real or not) and rarely see a post; "
            "the reachable audience is the real followers who are not mass followers"
        ),
    }


def audience_counts(store: Store, snapshot_id: int, method: str, threshold: int = MASS_THRESHOLD) -> dict[str, int]:
    """audited, known, mass and reachable counts from the stored followers and labels (one query)."""
    row = store.row(
        """SELECT count(*) AS audited, count(f.following_count) AS known,
                  count(*) FILTER (WHERE f.following_count > ?) AS mass,
                  count(*) FILTER (WHERE f.following_count <= ? AND l.label = 'real') AS reachable
           FROM followers f JOIN labels l ON l.snapshot_id = f.snapshot_id AND l.follower_id = f.follower_id
           WHERE f.snapshot_id = ? AND l.method = ?""",
        [threshold, threshold, snapshot_id, method],
    )
    return {k: int(v or 0) for k, v in (row or {}).items()}


def batch_audience_counts(followers: pl.DataFrame, labels: pl.DataFrame, threshold: int = MASS_THRESHOLD) -> dict[str, int]:
    """``audience_counts`` of one labelled batch (``labels`` row for row with ``followers``), so an
    audit counts while it labels instead of joining every label to its follower afterwards."""
    following = followers.get_column("following_count")
    real = labels.get_column("label") == "real"
    return {
        "audited": followers.height,
        "known": followers.height - following.null_count(),
        "mass": int((following > threshold).sum()),
        "reachable": int(((following <= threshold) & real).sum()),
    }


def audience_section(
    store: Store, snapshot: Snapshot, *, method: str, confidence: float = 0.95, threshold: int = MASS_THRESHOLD,
    counts: dict[str, int] | None = None,
) -> dict[str, Any] | None:
    """The Report's ``audience`` for a stored, labelled snapshot (None without following counts);
    ``counts``: the labelling pass's own tally of them (else read from the workspace)."""
    counts = counts if counts is not None else audience_counts(store, snapshot.snapshot_id, method, threshold)
    return audience_types(counts, design=snapshot.design, confidence=confidence, threshold=threshold)
