"""What an audit knew: which profile fields the followers carried, when they were observed, and
whether that is enough to give a fake share at all (``Report.evidence`` and ``Report.withheld``).

Missing evidence is missing: a field a source lacks is null, never the worst value. This module
counts, per canonical profile field, for how many followers it was known (one aggregate over the
stored followers, so it streams for any size), and decides when the followers carry too little to
judge: then the audit gives no fake share and says in one line what it needs and how to get it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

# Canonical profile fields counted as known/unknown, with the words the report uses for each.
# ``bio`` is known when the text or its length is given (anonymised datasets give only the length).
PROFILE_FIELDS: dict[str, str] = {
    "display_name": "display name",
    "created_at": "account creation date",
    "followers_count": "follower count",
    "following_count": "following count",
    "posts_count": "post count",
    "likes_count": "likes given",
    "listed_count": "lists",
    "has_avatar": "profile picture",
    "bio": "bio",
    "has_url": "website",
    "has_location": "location",
    "verified": "verification",
    "private": "private/public",
    "last_active_at": "last post time",
    "followed_at": "follow time",
    "follow_rank": "follow order",
    "observed_at": "crawl time per record",
}
# The fields any labelling method judges from (rules: Socialbakers / Camisani-Calzolari criteria and
# inactivity; the model: counts, age, profile completeness). Handles, names and follow order are kept
# but do not say whether an account is fake.
JUDGING_FIELDS = (
    "created_at", "followers_count", "following_count", "posts_count", "likes_count", "listed_count",
    "has_avatar", "bio", "has_url", "has_location", "last_active_at",
)
MIN_JUDGING_FIELDS = 3  # at least this many judging fields ...
MIN_KNOWN_SHARE = 0.5  # ... each known for at least this share of the followers ...
# ... one of them a count: every method leans on them (Socialbakers' ratio, Camisani-Calzolari's
# followers and posts, the model's strongest features); without counts the rules can barely fire
# and would report an optimistic share.
COUNT_FIELDS = ("followers_count", "following_count", "posts_count")

OBSERVED_WORDS = {
    "record": "the records' own crawl times",
    "dataset": "the crawl date the dataset documents or its own fields give",
    "flag": "given with --observed-at",
    "collection": "the time of the live collection",
    "file time (assumed)": "the file's modification time: nothing in the file says when it was read",
    "snapshot time (assumed)": "the snapshot's stored time: nothing says when the profiles were read",
}

SHIFT_WORDS = {
    "near": "the audited followers resemble the training data",
    "moderate": "the audited followers differ somewhat from the training data",
    "far": "the audited followers are far from the training data: the fake share is uncertain beyond its interval",
}


def _known_expr(field: str) -> pl.Expr:
    if field == "bio":
        return (pl.col("bio").is_not_null() | pl.col("bio_length").is_not_null()).sum()
    return pl.col(field).is_not_null().sum()


def known_counts_frame(followers: pl.DataFrame | pl.LazyFrame) -> dict[str, int]:
    """``{"n": rows, field: rows where it is known}`` of a canonical frame (vectorised)."""
    lf = followers.lazy()
    present = set(lf.collect_schema().names())
    exprs = [pl.len().alias("n")]
    for f in PROFILE_FIELDS:
        if f in present and (f != "bio" or "bio_length" in present):
            exprs.append(_known_expr(f).alias(f))
        else:
            exprs.append(pl.lit(0).alias(f))
    row = lf.select(exprs).collect().row(0, named=True)
    return {k: int(v or 0) for k, v in row.items()}


def known_counts_sql() -> str:
    """The same counts as one DuckDB aggregate over ``followers`` (parameter: snapshot_id)."""
    parts = ["count(*) AS n"]
    for f in PROFILE_FIELDS:
        parts.append("count(coalesce(bio, CAST(bio_length AS VARCHAR))) AS bio" if f == "bio" else f"count({f}) AS {f}")
    return f"SELECT {', '.join(parts)} FROM followers WHERE snapshot_id = ?"


def known_counts_from_footer(footer: pl.DataFrame) -> dict[str, int] | None:
    """``known_counts_sql``'s counts of a Parquet file read in place, from the rows and null counts its
    footer gives per row group (``Store.parquet_footer``; DuckDB and Polars trust them to skip row
    groups too), so no value is read. None when the footer cannot say: a null count left out, or bio
    and bio_length both partly null in one row group (the rows with either are then not determined)."""
    wanted = [f for f in PROFILE_FIELDS if f != "bio"] + ["bio", "bio_length"]
    if footer.height == 0 or not set(wanted) <= set(footer["column"]):
        return None
    nulls = footer.filter(pl.col("column").is_in(wanted)).pivot(on="column", index=["row_group", "rows"], values="nulls")
    if nulls.select(pl.any_horizontal(pl.col(wanted).is_null()).any()).item():
        return None
    rows = pl.col("rows")
    bio_low = pl.max_horizontal(rows - pl.col("bio"), rows - pl.col("bio_length"))  # rows with a bio, or with its length
    bio_high = pl.min_horizontal(rows, 2 * rows - pl.col("bio") - pl.col("bio_length"))
    if not nulls.select((bio_low == bio_high).all()).item():
        return None
    known = nulls.select(
        rows.sum().alias("n"), *[(rows - pl.col(f)).sum().alias(f) for f in PROFILE_FIELDS if f != "bio"], bio_low.sum().alias("bio"),
    ).row(0, named=True)
    return {k: int(known[k]) for k in ("n", *PROFILE_FIELDS)}


def fields_known(counts: dict[str, int]) -> dict[str, float]:
    """Share of followers each field was known for (0 when there are no followers)."""
    n = int(counts.get("n") or 0)
    return {f: (int(counts.get(f) or 0) / n if n else 0.0) for f in PROFILE_FIELDS}


def withheld_reason(known: dict[str, float], n: int, platform: str | None) -> str | None:
    """One line when the followers carry too little to give a fake share, else None.

    Too little = fewer than ``MIN_JUDGING_FIELDS`` of ``JUDGING_FIELDS`` known for at least
    ``MIN_KNOWN_SHARE`` of the followers, or none of them a count (usernames only, a name and one
    count, a follower page without counts).
    """
    if n == 0:
        return None
    usable = [f for f in JUDGING_FIELDS if known.get(f, 0.0) >= MIN_KNOWN_SHARE]
    if len(usable) >= MIN_JUDGING_FIELDS and any(f in usable for f in COUNT_FIELDS):
        return None
    has = ", ".join(PROFILE_FIELDS[f] for f in usable) or "no profile fields (usernames only)"
    return (
        f"too little to judge: the {n:,} followers carry {has}; a fake share needs, for most followers, "
        f"at least {MIN_JUDGING_FIELDS} of follower/following/post counts, creation date, profile picture, "
        f"bio, last post time, one of them a count — {how_to_get(platform)}"
    )


def how_to_get(platform: str | None) -> str:
    """Where a person gets follower profiles on ``platform``."""
    if platform == "bluesky":
        return "collect live with `followaudit collect bluesky HANDLE`"
    if platform == "mastodon":
        return "collect live with `followaudit collect mastodon @user@instance`"
    if platform == "instagram":
        return ("Instagram's own export lists usernames only: export the followers with their profiles "
                "(counts, picture, bio) from a tool that includes them, then import that file")
    if platform == "twitter":
        return "export the followers as user objects (API v1.1/v2), or import an id list with --profiles FILE"
    return ("import a file with the followers' profiles (counts, creation date, picture, bio), or collect "
            "live with `followaudit collect bluesky HANDLE` / `followaudit collect mastodon @user@instance`")


def observed_evidence(at: datetime | None, source: str, detail: str = "", rows_with_time: float = 0.0) -> dict[str, Any]:
    """``evidence["observed_at"]``: when ages and rates are measured, and what says so."""
    return {
        "at": at.isoformat() if at else None,
        "source": source,
        "detail": detail,
        "rows_with_own_time": rows_with_time,
        "assumed": source.endswith("(assumed)"),
    }


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def evidence_lines(evidence: dict[str, Any]) -> list[str]:
    """The whole evidence object in words (terminal, HTML report and web page say the same)."""
    lines: list[str] = []
    shift = evidence.get("shift")
    if shift:
        words = shift.get("words") or SHIFT_WORDS.get(str(shift.get("level")), "")
        auc = f", AUC {shift['auc']:.2f}" if isinstance(shift.get("auc"), int | float) else ""
        out = f", {_pct(shift['outside_support'])} outside its support" if isinstance(shift.get("outside_support"), int | float) else ""
        method = f" ({shift['method']})" if shift.get("method") else ""
        lines.append(f"Distance from the training data: {shift.get('level')}{auc}{out} — {words}{method}")
    obs = evidence.get("observed_at")
    if obs:
        when = (obs.get("at") or "unknown")[:16].replace("T", " ")
        why = OBSERVED_WORDS.get(str(obs.get("source")), str(obs.get("source")))
        detail = str(obs.get("detail") or "")
        detail = f": {detail}" if detail and detail not in why else ""
        lines.append(f"Observed at: {when} UTC ({obs.get('source')} — {why}{detail}); ages and activity are measured then")
    known = evidence.get("fields_known")
    if known:
        full = [PROFILE_FIELDS[f] for f, s in known.items() if f in PROFILE_FIELDS and s >= 0.995]
        part = [f"{PROFILE_FIELDS[f]} {_pct(s)}" for f, s in known.items() if f in PROFILE_FIELDS and 0.005 <= s < 0.995]
        none = [PROFILE_FIELDS[f] for f, s in known.items() if f in PROFILE_FIELDS and s < 0.005]
        lines.append("Fields known: " + "; ".join(
            t for t in (
                ("for all followers: " + ", ".join(full)) if full else "",
                ("for some: " + ", ".join(part)) if part else "",
                ("not in the data (never used as a reason): " + ", ".join(none)) if none else "",
            ) if t
        ))
    if evidence.get("interval_method"):
        lines.append(f"Interval method: {evidence['interval_method']}")
    labels = evidence.get("platform_labels")
    if labels:
        shown = ", ".join(f"{k} {int(v):,}" for k, v in sorted(labels.items(), key=lambda kv: (-int(kv[1]), kv[0])))
        lines.append(f"Platform labels: {shown}")
    return lines


def far_warning(evidence: dict[str, Any]) -> str | None:
    """The warning shown next to the headline when the audience is far from the training data."""
    shift = evidence.get("shift") or {}
    if shift.get("level") != "far":
        return None
    return "Warning: " + (shift.get("words") or SHIFT_WORDS["far"])
