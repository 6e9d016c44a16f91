"""The report sections on reach: engagement, what-if, likers, growth, comparison, views.

``build_sections`` is the one call the audit pipeline makes; every section is a JSON-able dict with
``available`` and, when it is false, ``missing`` (what data would be needed and how to get it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from ..errors import FollowauditError
from ..estimate.intervals import Share
from ..report.core import Report
from ..sources.synth import (
    OBSERVED_AT,
    SynthSpec,
    generate_count_history,
    generate_likers,
    generate_posts,
)
from ..store.workspace import Snapshot, Store
from .comparison import comparison_section
from .engagement import engagement_section, followers_total, what_if, with_engagements
from .growth import count_history, growth_section
from .likers import Auditor, latest_likers_section, store_likers_frame
from .views import views_section

SECTION_KEYS = ("engagement", "whatif", "likers", "growth", "comparison", "views")


def _guard(name: str, build: Any) -> dict[str, Any]:
    """A section that cannot be built says why instead of failing the whole audit."""
    try:
        return build()
    except FollowauditError as exc:
        return {"available": False, "missing": f"{name}: {exc.one_line()}"}


def whatif_section(followers: int, engagement: dict[str, Any], shares: dict[str, Share]) -> dict[str, Any]:
    """Default scenario for the report: buying as many followers as the account has (doubling),
    and the rate without the fake followers it has."""
    if followers <= 0 or "fake" not in shares:
        return {"available": False, "missing": "a fake share (an audited snapshot with followers whose profiles can be judged)"}
    # the engagement section's rate (each post over the follower count at its time), so both agree
    rate = engagement.get("engagement_rate") if engagement.get("available") else None
    basis = (engagement.get("followers_at_post") or {}).get("source") if rate is not None else None
    out = what_if(followers, followers, None, shares["fake"], rate_before=rate,
                  rate_basis=f"the engagement section's rate: mean over posts of engagements / {basis}" if basis else None)
    out["available"] = True
    out["scenario"] = f"buying {followers:,} fake followers (doubling the count); run `followaudit whatif SNAPSHOT --buy N` for another N"
    return out


@dataclass
class SectionInputs:
    """What the sections read that no audit result changes: the account's follower-count history and
    the snapshot's posts (an audit reads them while its estimate is still being computed)."""

    history: pl.DataFrame | None
    posts: pl.DataFrame | None


def section_inputs(store: Store, snapshot: Snapshot, daily: pl.DataFrame | None = None) -> SectionInputs:
    """``daily``: the snapshot's ``growth.daily_follows``, when the caller counted them."""
    account, platform = snapshot.account, snapshot.platform
    known = (snapshot.snapshot_id, daily) if daily is not None else None
    return SectionInputs(count_history(store, account, platform, known) if account else None,
                         store.posts(snapshot.snapshot_id) if store.has_table("posts") else None)


def build_sections(store: Store, snapshot: Snapshot, report: Report, auditor: Auditor | None = None,
                   inputs: SectionInputs | None = None) -> dict[str, dict[str, Any]]:
    """All reach sections for ``report`` (the audit of ``snapshot``), from its headline shares.

    ``auditor`` (``audit.audit_frame``) gives the likers their own Report, so their shares are a
    headline too. ``inputs``: ``section_inputs`` read beforehand (else read here)."""
    followers = followers_total(snapshot)
    shares = report.headline_shares()  # the one headline: reviewed, else corrected, else raw
    account, platform = snapshot.account, snapshot.platform
    inputs = inputs if inputs is not None else section_inputs(store, snapshot)
    history, posts = inputs.history, inputs.posts

    growth = _guard("growth", lambda: growth_section(store, account, platform, report.bursts, history=history))

    def engagement() -> dict[str, Any]:
        if posts is None:
            return {"available": False, "missing": "posts table (workspace predates it; open it writable once)"}
        return engagement_section(with_engagements(posts), followers, shares, history, spikes=growth.get("spikes"),
                                  confidence=report.confidence_level)

    eng = _guard("engagement", engagement)
    return {
        "engagement": eng,
        "whatif": _guard("whatif", lambda: whatif_section(followers, eng, shares)),
        "likers": _guard("likers", lambda: latest_likers_section(
            store, account, platform, method=report.method, confidence=report.confidence_level,
            inactive_days=report.inactive_days, auditor=auditor)),
        "growth": growth,
        "comparison": _guard("comparison", lambda: comparison_section(
            store, account=account, platform=platform, followers=followers, method=report.method, shares=shares)),
        "views": _guard("views", lambda: views_section(store.view_items(account)) if account else
                        {"available": False, "missing": "the account name (snapshot has none)"}),
    }


def store_synthetic_reach(store: Store, snapshot_id: int, frame: Any, seed: int = 42) -> None:
    """Give a synthetic snapshot its posts, weekly count history and one likers audit (the demo).

    ``frame`` is what ``synth.generate`` / ``synth.write_synth`` returned for the snapshot's followers.
    """
    snapshot = store.snapshot(snapshot_id)
    spec = SynthSpec(n=frame.height, seed=seed, account=snapshot.account or "demo_account")
    posts = generate_posts(spec, frame)
    store.save_imported_posts(snapshot_id, posts)
    store.save_follower_counts(spec.account, snapshot.platform, generate_count_history(spec, frame), "synth")
    newest = posts.sort("created_at")["post_id"][-1]
    earlier = store.query("SELECT likers_id FROM likers_audits WHERE account = ? AND api_base = 'synth'", [spec.account])
    for likers_id in earlier["likers_id"].to_list():  # the demo starts from a clean state each run
        store.delete_likers_audit(likers_id)
    store_likers_frame(
        store, generate_likers(spec, frame), platform=snapshot.platform or "twitter", account=spec.account,
        post_uri=f"synth://{spec.account}/{newest}", taken_at=OBSERVED_AT, source="synth",
    )
