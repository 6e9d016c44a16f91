"""The audit pipeline: snapshot → labels → shares with intervals → Report.

``audit_snapshot`` is what the CLI, the web app and Python users call; it returns the Report and the
per-follower labels, and stores the labels in the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from .classify import label_followers
from .classify.rules import DEFAULT_INACTIVE_DAYS
from .estimate import estimate_shares
from .report import Report
from .schema import COLUMN_NAMES
from .store import Snapshot, Store

# Columns the labellers read; ``raw`` stays in the database (it is the bulk of the bytes).
LABEL_INPUT_COLUMNS = [c for c in COLUMN_NAMES if c != "raw"]
TOP_REASONS = 8


@dataclass
class AuditResult:
    report: Report
    labels: pl.DataFrame  # follower_id, handle, label, probability, reasons


def top_reasons(labels: pl.DataFrame, k: int = TOP_REASONS) -> list[tuple[str, int]]:
    """The most frequent reasons for fake and inactive labels, with counts."""
    counted = (
        labels.lazy()
        .filter(pl.col("label") != "real")
        .select(pl.col("reasons").explode())
        .drop_nulls()
        .group_by("reasons")
        .len()
        .sort(["len", "reasons"], descending=[True, False])
        .head(k)
        .collect()
    )
    return [(r, int(c)) for r, c in counted.iter_rows()]


def audit_frame(
    followers: pl.DataFrame,
    snapshot: Snapshot,
    *,
    method: str = "rules",
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    confidence: float = 0.95,
    first_reject: dict | None = None,
    labels: pl.DataFrame | None = None,
) -> AuditResult:
    """Label ``followers`` (canonical) and build the Report for ``snapshot``.

    ``labels`` (follower_id, label, probability, reasons[, activity_unknown]) skips labelling: the
    read-only web app and ``followaudit report`` pass the labels stored by an earlier audit.
    """
    as_of = snapshot.taken_at or datetime.now(UTC)
    if labels is None:
        labels = label_followers(followers, method=method, as_of=as_of, inactive_days=inactive_days, platform=snapshot.platform)
    shares = estimate_shares(labels, confidence, snapshot.design)
    notes: list[str] = []
    unknown = int(labels["activity_unknown"].sum()) if "activity_unknown" in labels.columns else 0
    if unknown:
        notes.append(
            f"last activity is unknown for {unknown:,} followers; they count as active unless they never posted"
        )
    if snapshot.followers_reported and snapshot.followers_reported > snapshot.n_followers and snapshot.design.kind == "full":
        gap = snapshot.followers_reported - snapshot.n_followers
        notes.append(f"the platform reports {snapshot.followers_reported:,} followers but {gap:,} could not be listed (removed, suspended or hidden accounts)")
    report = Report(
        account=snapshot.account,
        platform=snapshot.platform,
        snapshot=snapshot.snapshot_id,
        source=snapshot.source,
        taken_at=snapshot.taken_at,
        followers_audited=labels.height,
        followers_reported=snapshot.followers_reported,
        sample_design={
            "kind": snapshot.design.kind,
            "n": snapshot.design.n,
            "population": snapshot.design.population,
            "seed": snapshot.design.seed,
            "description": snapshot.design.describe(),
        },
        method=method,
        method_detail={"name": "rules", "description": "Socialbakers criteria, Camisani-Calzolari human points, inactivity"},
        confidence_level=confidence,
        inactive_days=inactive_days,
        shares=shares,
        top_reasons=top_reasons(labels),
        activity_unknown=unknown,
        rejects=snapshot.n_rejects,
        first_reject=first_reject,
        notes=notes,
    )
    with_handles = followers.select("follower_id", "handle").join(labels, on="follower_id", how="right")
    return AuditResult(report=report, labels=with_handles.select("follower_id", "handle", "label", "probability", "reasons"))


def audit_snapshot(
    store: Store,
    ref: int | str,
    *,
    method: str = "rules",
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    confidence: float = 0.95,
    save: bool = True,
) -> AuditResult:
    """Audit a stored snapshot (by id or account name) and store its labels."""
    snapshot = store.snapshot(ref)
    followers = store.followers(snapshot.snapshot_id, LABEL_INPUT_COLUMNS)
    rejects = store.rejects(snapshot.snapshot_id).head(1) if snapshot.n_rejects else None
    first = rejects.to_dicts()[0] if rejects is not None and rejects.height else None
    result = audit_frame(followers, snapshot, method=method, inactive_days=inactive_days, confidence=confidence, first_reject=first)
    if save and not store.read_only:
        store.save_labels(snapshot.snapshot_id, method, result.labels)
    return result
