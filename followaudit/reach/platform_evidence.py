"""What the platform itself says about the followers, for the Report's ``evidence``.

* ``platform_labels``: followers per label value (Bluesky moderation and other labelers, Mastodon
  flags; ``bot`` = self-declared bots, the Bluesky self-label or the Mastodon bot flag);
* ``platform_label_agreement``: of the followers the platform's moderation labels fake-like, how many
  the labeller (model or rules) called fake on its own — the model's sensitivity on them, with a
  Wilson interval;
* ``gone_followers``: reported but never listed, and listed but gone before their profile was read;
* ``follow_times``: how many followers have an exact follow time and how many of those disagree with
  the follow order (a TID is written by the client and can be backdated).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import polars as pl

from ..classify import label_followers
from ..classify.platform_labels import FAKE_LABELS
from ..estimate.intervals import confidence_label, wilson
from ..schema import COLUMN_NAMES
from ..store.workspace import Snapshot, Store

LIVE_PLATFORMS = ("bluesky", "mastodon")
GONE_REASON = "profile was not returned"  # the collector's reject reason for a profile that vanished


def label_agreement(verdicts: Counter, method: str, confidence: float = 0.95) -> dict[str, Any]:
    """The labeller's own verdicts on platform-labelled fakes -> its sensitivity with an interval."""
    n = int(sum(verdicts.values()))
    caught = int(verdicts.get("fake", 0))
    out: dict[str, Any] = {"n": n, "caught": caught, "labels": list(FAKE_LABELS), "labeller": method}
    if n == 0:
        out.update(sensitivity=None, low=None, high=None,
                   explanation="no follower carries a fake-class platform moderation label, so agreement is not measured")
        return out
    low, high = wilson(caught, n, confidence)
    level = confidence_label(confidence)
    who = "the model" if method == "model" else "the rules"
    text = (
        f"{who[0].upper() + who[1:]} alone called {caught:,} of the {n:,} followers the platform's moderation labels "
        f"{'/'.join(FAKE_LABELS[:2])} (or similar) fake: sensitivity {caught / n:.0%} ({level} Wilson {low:.0%}–{high:.0%}). "
        "The platform only labels accounts it has caught, so read this as a lower bound on what "
        f"{who} catch{'es' if method == 'model' else ''}; these followers count as fake whatever {who} said."
    )
    if method != "model":
        text += " The rules read the spam label themselves, so for them this is not an independent check."
    out.update(sensitivity=caught / n, low=low, high=high, method=f"Wilson score {level} interval", explanation=text)
    return out


def labeller_verdicts(
    store: Store, snapshot: Snapshot, *, method: str, as_of: datetime, inactive_days: int
) -> Counter:
    """What the labeller alone says about the followers the platform labels fake-like.

    Only those followers are read and labelled again (a few per thousand), so the stored labels,
    which already carry the platform's word, never need a second column."""
    cols = ", ".join(c for c in COLUMN_NAMES if c != "raw")
    frame = store.query(
        f"""SELECT {cols} FROM followers WHERE snapshot_id = ?
            AND list_has_any(list_transform(moderation_labels, lambda x: lower(x)), ?::VARCHAR[])""",
        [snapshot.snapshot_id, list(FAKE_LABELS)],
    )
    if frame.height == 0:
        return Counter()
    labels = label_followers(frame, method=method, as_of=as_of, inactive_days=inactive_days, platform=snapshot.platform)
    return Counter(dict(labels["platform_verdict"].drop_nulls().value_counts().iter_rows()))


FOLLOW_TIME_COLUMNS = ["follow_rank", "followed_at", "self_declared_bot"]  # one read for evidence and growth


def follow_times(store: Store, snapshot_id: int) -> pl.DataFrame:
    """``FOLLOW_TIME_COLUMNS`` of every follower of a snapshot (``Store.follower_columns``): read once
    by an audit for the evidence here and the growth section's daily follows (``growth.daily_follows``)."""
    return store.follower_columns(snapshot_id, FOLLOW_TIME_COLUMNS)


def order_disagreements(store: Store, snapshot_id: int, frame: pl.DataFrame | None = None) -> int:
    """Followers whose exact follow time is earlier than that of the follower before them in follow order.

    In Polars: DuckDB's window (``lag`` over the follow order) sorted every follower, though the
    follow order is usually the order they are stored in (3M followers: ~0.24 CPU-s against ~0.08).
    ``frame``: ``follow_times`` already read."""
    source = frame if frame is not None else store.follower_columns(snapshot_id, ["follow_rank", "followed_at"])
    timed = source.select("follow_rank", "followed_at").drop_nulls()
    if not timed["follow_rank"].is_sorted():
        timed = timed.sort("follow_rank", maintain_order=True)
    return int(timed.select((pl.col("followed_at") < pl.col("followed_at").shift(1)).sum()).item())


def platform_evidence(
    store: Store, snapshot: Snapshot, *, method: str, confidence: float, as_of: datetime, inactive_days: int,
    times: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """``platform_labels``, ``self_declared_bots``, ``platform_label_agreement``, ``gone_followers`` and
    ``follow_times`` (parts without data omitted; the first three always on live platforms).
    ``times``: the snapshot's ``follow_times``, when the caller read them (else counted here in SQL)."""
    sid = snapshot.snapshot_id
    counts = store.query(
        """SELECT v AS value, count(*) AS n FROM (SELECT unnest(moderation_labels) AS v FROM followers WHERE snapshot_id = ?)
           GROUP BY v ORDER BY n DESC, v""",
        [sid],
    )
    labels = {str(v): int(n) for v, n in counts.iter_rows()}
    if times is not None:
        row = times.select(pl.col("self_declared_bot").sum().alias("bots"), pl.col("followed_at").count().alias("timed"),
                           pl.len().alias("n")).row(0, named=True)
    else:
        row = store.row(
            """SELECT count(*) FILTER (WHERE self_declared_bot) AS bots, count(followed_at) AS timed, count(*) AS n
               FROM followers WHERE snapshot_id = ?""",
            [sid],
        ) or {}
    bots, timed, n = int(row.get("bots") or 0), int(row.get("timed") or 0), int(row.get("n") or 0)
    if bots:
        labels["bot"] = bots
    out: dict[str, Any] = {}
    live = snapshot.platform in LIVE_PLATFORMS
    if labels or live:
        out["platform_labels"] = labels
        out["self_declared_bots"] = bots
        verdicts = labeller_verdicts(store, snapshot, method=method, as_of=as_of, inactive_days=inactive_days)
        out["platform_label_agreement"] = label_agreement(verdicts, method, confidence)
    if live:
        vanished = store.row(
            "SELECT count(*) AS n FROM rejects WHERE snapshot_id = ? AND contains(reason, ?)", [sid, GONE_REASON]
        ) or {}
        listed = snapshot.design.population
        reported = snapshot.followers_reported
        out["gone_followers"] = {
            "reported": reported, "listed": listed,
            "not_listed": (reported - listed) if reported is not None and listed is not None else None,
            "vanished_before_hydration": int(vanished.get("n") or 0),
        }
    if timed:
        out["follow_times"] = {
            "known": timed, "share": timed / n if n else None,
            "order_disagreements": order_disagreements(store, sid, times),
            "source": "the TID key of each follow record (Bluesky getRelationships)" if snapshot.platform == "bluesky"
            else "the source's follow times",
            "check": "follow times against the platform's follow order: a follower dated before the one who followed "
                     "earlier counts as a disagreement (a TID is written by the client and can be backdated)",
        }
    return out


def evidence_notes(evidence: dict[str, Any]) -> list[str]:
    """Plain lines for the report: self-declared bots, vanished followers, follow-time disagreements."""
    notes: list[str] = []
    bots = int(evidence.get("self_declared_bots") or 0)
    if bots:
        notes.append(f"{bots:,} followers declare themselves bots (the platform's bot flag or self-label)")
    gone = evidence.get("gone_followers") or {}
    if gone.get("vanished_before_hydration"):
        notes.append(
            f"{gone['vanished_before_hydration']:,} followers were listed but gone when their profiles were read "
            "(deleted, deactivated or taken down); they are counted here, not audited"
        )
    times = evidence.get("follow_times") or {}
    if times.get("order_disagreements"):
        notes.append(
            f"{times['order_disagreements']:,} of {times['known']:,} exact follow times disagree with the follow order "
            "(follow-record TIDs are written by the client; a vendor could backdate them)"
        )
    return notes
