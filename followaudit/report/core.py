"""The Report: built once per audit, rendered as text, JSON, CSV, HTML and web pages.

Renderers only read a Report; nothing computes numbers twice, so outputs cannot disagree.
The JSON shape (``to_dict``) is documented in the README and versioned by ``SCHEMA_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..estimate.intervals import Share

SCHEMA_VERSION = 1
MIN_REVIEWED = 30  # reviewed followers before the prediction-powered estimate becomes the headline


@dataclass
class Report:
    account: str | None
    platform: str | None
    snapshot: int
    source: str | None
    taken_at: datetime | None
    followers_audited: int
    followers_reported: int | None
    sample_design: dict[str, Any]
    method: str
    method_detail: dict[str, Any]
    confidence_level: float
    inactive_days: int
    shares: dict[str, Share]
    top_reasons: list[tuple[str, int]]
    activity_unknown: int
    rejects: int = 0
    first_reject: dict[str, Any] | None = None
    corrected: dict[str, dict[str, Any]] | None = None
    bursts: list[dict[str, Any]] | None = None
    sections: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # What the audit knew: share of followers each field was known for, observation time, the shift
    # diagnostic, platform labels, the interval method (JSON ``evidence``).
    evidence: dict[str, Any] = field(default_factory=dict)
    # Prediction-powered estimates from a person's review of a uniform random sample (JSON ``reviewed``).
    reviewed: dict[str, Any] | None = None
    # Audience types: mass followers and the reachable audience (JSON ``audience``).
    audience: dict[str, Any] | None = None
    # Set when the followers carry too little to judge: why no fake share is given (one line).
    withheld: str | None = None

    def add_reason_count(self, reason: str, count: int, k: int = 8) -> None:
        """Put one more counted reason among ``top_reasons`` (kept sorted, at most ``k``)."""
        if count <= 0:
            return
        merged = [rc for rc in self.top_reasons if rc[0] != reason] + [(reason, count)]
        self.top_reasons = sorted(merged, key=lambda rc: (-rc[1], rc[0]))[:k]

    def headline_shares(self) -> dict[str, Share]:
        """The shares every output leads with; the one source for what-if, engagement, likers, web.

        A reviewed sample (prediction-powered, at least ``MIN_REVIEWED`` reviews) beats the
        model-corrected estimate, which beats the raw label shares. When the evidence is too thin
        (``withheld``), no share is given at all.
        """
        if self.withheld:
            return {}
        chosen: dict[str, Any] | None = None
        if self.reviewed and int(self.reviewed.get("n") or 0) >= MIN_REVIEWED:
            chosen = {k: self.reviewed.get(k) for k in self.shares}
        elif self.corrected:
            chosen = self.corrected
        if not chosen:
            return dict(self.shares)
        out = dict(self.shares)
        for label, c in chosen.items():
            raw = self.shares.get(label)
            if c and raw is not None and c.get("low") is not None and c.get("high") is not None:
                out[label] = Share(label, float(c["share"]), float(c["low"]), float(c["high"]), raw.count, raw.n, str(c.get("method") or raw.method))
        return out

    @property
    def headline(self) -> dict[str, dict[str, Any]]:
        """``headline_shares`` as plain dicts (share, low, high, method), for templates and JSON."""
        return {k: {"share": s.share, "low": s.low, "high": s.high, "method": s.method} for k, s in self.headline_shares().items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "account": self.account,
            "platform": self.platform,
            "snapshot": self.snapshot,
            "source": self.source,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "followers_audited": self.followers_audited,
            "followers_reported": self.followers_reported,
            "sample_design": self.sample_design,
            "method": self.method,
            "method_detail": self.method_detail,
            "confidence_level": self.confidence_level,
            "inactive_days": self.inactive_days,
            "shares": {
                k: {"share": s.share, "low": s.low, "high": s.high, "count": s.count, "method": s.method}
                for k, s in self.shares.items()
            },
            "corrected": self.corrected,
            "headline": self.headline,
            "withheld": self.withheld,
            "evidence": self.evidence,
            "reviewed": self.reviewed,
            "audience": self.audience,
            "top_reasons": [{"reason": r, "count": c} for r, c in self.top_reasons],
            "activity_unknown": self.activity_unknown,
            "rejects": {"count": self.rejects, "first": self.first_reject},
            "bursts": self.bursts,
            **self.sections,
            "notes": self.notes,
        }
