"""Engagement on all followers vs on the estimated real followers, and the what-if of buying.

Definitions (documented in docs/engagement.md):

* engagements of a post = likes + replies + reposts (+ quotes where the platform counts them);
  a count the source does not give is treated as 0 for the sum, and a post with none of them is
  left out;
* engagement rate of a post = its engagements / the follower count **at the time of the post**
  (from the stored count history: the latest count on or before the post's day, else the first
  count after it); without a count history, today's count (the platform's, else the enumerated
  population), and the section says so. The account's rate is the mean of its posts' rates;
* engagement rate on real followers = that mean / real share, where the real share is the audit's
  headline (``Report.headline_shares``). Its interval combines both uncertainties: a percentile
  bootstrap over posts (``BOOTSTRAP_DRAWS`` resamples of the posts, seeded) times the real share
  drawn from its own interval (logit-normal matched to it); an upper bound of "unbounded" when the
  real share's interval reaches 0. It assumes the real share at each post's time equals today's.
* what-if of buying N: bought followers are fake and never engage, so followers F → F + N,
  fake share p → (F·p + N) / (F + N) (the same monotone map on both bounds), engagement rate
  E/F → E/(F + N). Reverse: without its fake followers the account would show E / (F·(1 − p)),
  interval [E / (F·(1 − lo)), E / (F·(1 − hi))].
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..errors import EmptyInputError, InputError, MissingColumnsError
from ..estimate.intervals import Share
from ..sources.formats.common import parse_dates
from ..store.workspace import Snapshot

COUNT_FIELDS = ("likes", "replies", "reposts", "quotes", "views")
POST_ALIASES: dict[str, tuple[str, ...]] = {
    "post_id": ("post_id", "id", "uri", "post_uri", "status_id", "tweet_id", "id_str", "video_id", "shortcode", "url", "post"),
    "created_at": ("created_at", "time", "timestamp", "date", "published", "published_at", "posted_at", "created", "datetime"),
    "likes": ("likes", "like_count", "likecount", "favourites_count", "favorite_count", "favourites", "favorites", "reactions", "hearts"),
    "replies": ("replies", "reply_count", "replycount", "replies_count", "comments", "comment_count", "comments_count"),
    "reposts": ("reposts", "shares", "repost_count", "repostcount", "retweets", "retweet_count", "reblogs_count", "reblogs", "share_count"),
    "quotes": ("quotes", "quote_count", "quotecount", "quotes_count"),
    "views": ("views", "view_count", "impressions", "impression_count", "plays", "play_count"),
}
TREND_MIN_POSTS = 8
PER_POST_LIMIT = 50  # posts listed one by one in the report (newest first)
ELASTICITY_FLAT = 0.5  # elasticity below which engagement "did not keep up" with follower growth
AROUND_POSTS = 10  # posts compared on each side of a follower spike ...
AROUND_DAYS = 120  # ... within this many days of it (so organic growth in between stays small)
BOOTSTRAP_DRAWS = 2000  # resamples of the posts for the rate intervals
BOOTSTRAP_SEED = 12  # fixed: the same posts always give the same interval
REAL_RATE_METHOD = (
    f"mean over posts of engagements / followers at the post's time, divided by the real share; percentile "
    f"bootstrap over posts ({BOOTSTRAP_DRAWS:,} resamples) combined with the real share drawn from its interval (logit-normal)"
)


# -- reading files ---------------------------------------------------------------------------------
def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def read_table(path: str | Path) -> pl.DataFrame:
    """A CSV, JSON (list, or an object holding one list) or JSONL file as all-text columns."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}", "check the path")
    data = path.read_bytes()
    if not data.strip():
        raise EmptyInputError(f"{path} is empty", "check the path; the file must hold a header and at least one row")
    head = data.lstrip()[:1]
    try:
        if head in (b"[", b"{"):
            text = data.decode("utf-8-sig")
            try:
                obj = json.loads(text)
                records = obj if isinstance(obj, list) else next((v for v in obj.values() if isinstance(v, list)), [obj])
            except json.JSONDecodeError:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
            frame = pl.DataFrame([{k: (None if v is None else str(v)) for k, v in r.items()} for r in records if isinstance(r, dict)])
        else:
            frame = pl.read_csv(data, infer_schema=False, truncate_ragged_lines=True)
    except (UnicodeDecodeError, json.JSONDecodeError, pl.exceptions.ComputeError) as exc:
        raise InputError(f"cannot read {path}: {str(exc).splitlines()[0]}", "give a CSV, JSON or JSONL file in UTF-8") from exc
    if frame.height == 0:
        raise EmptyInputError(f"{path} holds no rows", "check the path; the file must hold a header and at least one row")
    return frame.rename({c: _norm(c) for c in frame.columns})


def pick_columns(frame: pl.DataFrame, aliases: dict[str, tuple[str, ...]], required: tuple[str, ...], path: Path) -> dict[str, str]:
    """canonical name -> column of ``frame`` (first alias present)."""
    found: dict[str, str] = {}
    for name, names in aliases.items():
        for alias in names:
            if alias in frame.columns and alias not in found.values():
                found[name] = alias
                break
    missing = [c for c in required if c not in found]
    if missing:
        raise MissingColumnsError(
            f"{path.name} has no column for {', '.join(missing)} (columns: {', '.join(frame.columns[:12])})",
            "rename the columns, e.g. " + ", ".join(f"{m} ({'/'.join(aliases[m][:3])})" for m in missing),
        )
    return found


def read_columns(
    path: str | Path, aliases: dict[str, tuple[str, ...]], required: tuple[str, ...]
) -> tuple[pl.DataFrame, dict[str, str], Path]:
    """Read a reach file and find its columns: (all-text frame, canonical name -> column, path)."""
    path = Path(path)
    frame = read_table(path)
    return frame, pick_columns(frame, aliases, required, path), path


PARSED = "__parsed_"  # prefix of helper columns; never part of a row's raw record


def with_times(frame: pl.DataFrame, column: str) -> tuple[pl.DataFrame, pl.Expr]:
    """Adds ``column`` parsed to UTC with the importers' one date parser; returns (frame, its expr).

    The parser decides a column's day/month order from its own values, never assuming US dates.
    """
    name = PARSED + column
    return frame.with_columns(parse_dates(frame[column].cast(pl.Utf8)).alias(name)), pl.col(name)


def raw_record(frame: pl.DataFrame) -> pl.Expr:
    """The row as read (JSON), without helper columns."""
    return pl.struct([c for c in frame.columns if not c.startswith(PARSED)]).struct.json_encode().alias("raw")


def count_expr(col: str) -> pl.Expr:
    """Text counts like '1,204' or '3.0' -> Int64; anything else -> null."""
    text = pl.col(col).str.strip_chars().str.replace_all(",", "").str.replace_all("_", "")
    return text.cast(pl.Float64, strict=False).round(0).cast(pl.Int64, strict=False)


@dataclass
class Loaded:
    """Rows read from a file and the rows that could not be used (file, line, column, reason, raw)."""

    rows: pl.DataFrame
    rejects: pl.DataFrame

    @property
    def first_reject(self) -> dict[str, Any] | None:
        return self.rejects.row(0, named=True) if self.rejects.height else None


def validate(
    frame: pl.DataFrame, path: Path, checks: list[tuple[str, pl.Expr, str]], keep: list[pl.Expr]
) -> Loaded:
    """Split rows into good rows and rejects. ``checks`` are (column, bad-row predicate, reason)."""
    numbered = frame.with_row_index("_line", offset=2 if path.suffix.lower() == ".csv" else 1)
    raw = raw_record(frame)
    bad = [
        numbered.filter(predicate.fill_null(True)).select(
            pl.lit(str(path.name)).alias("file"), pl.col("_line").cast(pl.Int64).alias("line"),
            pl.lit(col).alias("column"), pl.lit(reason).alias("reason"), raw,
        )
        for col, predicate, reason in checks
    ]
    rejects = pl.concat(bad).unique(subset=["line"], keep="first", maintain_order=True).sort("line")
    good = numbered.filter(~pl.col("_line").is_in(rejects["line"].implode())).select(keep)
    return Loaded(good, rejects)


def load_posts(path: str | Path) -> Loaded:
    """Read a posts file (CSV/JSON/JSONL: post id, time, likes, replies, reposts/shares, views...)."""
    frame, cols, path = read_columns(path, POST_ALIASES, ("post_id", "created_at"))
    counts = [c for c in COUNT_FIELDS if c in cols]
    if not any(c in cols for c in ("likes", "replies", "reposts", "quotes")):
        raise MissingColumnsError(f"{path.name} has no engagement counts (likes, replies, reposts/shares, quotes)")
    frame, when = with_times(frame, cols["created_at"])
    checks: list[tuple[str, pl.Expr, str]] = [
        (cols["post_id"], pl.col(cols["post_id"]).str.strip_chars().str.len_chars() == 0, "missing post id"),
        (cols["created_at"], when.is_null(), "unreadable time"),
    ]
    for c in counts:
        src = pl.col(cols[c])
        # an empty cell is "not given" (null); text that is not a count is a bad row
        checks.append((cols[c], src.is_not_null() & (src.str.strip_chars() != "") & (count_expr(cols[c]).is_null() | (count_expr(cols[c]) < 0)), f"{c} is not a non-negative count"))
    keep = [
        pl.col(cols["post_id"]).str.strip_chars().alias("post_id"),
        when.alias("created_at"),
        *[(count_expr(cols[c]) if c in cols else pl.lit(None, pl.Int64)).alias(c) for c in COUNT_FIELDS],
        raw_record(frame),
    ]
    # the same post twice: the first is kept, the others are rejects
    pid = pl.col(cols["post_id"]).str.strip_chars()
    checks.append((cols["post_id"], pl.int_range(pl.len()).over(pid) > 0, "duplicate post id"))
    loaded = validate(frame, path, checks, keep)
    return loaded


# -- engagement ------------------------------------------------------------------------------------
def followers_total(snapshot: Snapshot) -> int:
    """The follower count engagement is measured against: reported by the platform, else enumerated."""
    return int(snapshot.followers_reported or snapshot.design.population or snapshot.n_followers or 0)


def with_engagements(posts: pl.DataFrame) -> pl.DataFrame:
    """Adds ``engagements`` (likes + replies + reposts + quotes; null when none is known)."""
    parts = [pl.col(c) for c in ("likes", "replies", "reposts", "quotes") if c in posts.columns]
    known = pl.any_horizontal([p.is_not_null() for p in parts])
    return posts.with_columns(pl.when(known).then(pl.sum_horizontal(parts)).otherwise(None).cast(pl.Int64).alias("engagements"))


def rate_interval(engagements: float, followers: float, share: Share | dict[str, float] | None) -> dict[str, float | None]:
    """E / (F · s) with its interval from the share's bounds (decreasing map: bounds swap)."""
    if share is None or followers <= 0:
        return {"rate": None, "low": None, "high": None}
    s, lo, hi = _bounds(share)

    def div(x: float) -> float | None:
        return engagements / (followers * x) if x > 0 else None

    return {"rate": div(s), "low": div(hi), "high": div(lo)}


def _bounds(share: Share | dict[str, float]) -> tuple[float, float, float]:
    if isinstance(share, Share):
        return share.share, share.low, share.high
    return float(share["share"]), float(share["low"]), float(share["high"])


def engagement_trend(posts: pl.DataFrame, history: pl.DataFrame | None) -> dict[str, Any]:
    """Does engagement move with the follower count? Elasticity of engagements on followers at post time.

    ``posts`` needs created_at and engagements; ``history`` is (date, followers). The elasticity is
    the OLS slope of log(1 + engagements) on log(followers at post time) with its 95% interval:
    about 1 = engagement grew in step with followers; about 0 = the followers gained did not engage.
    """
    if history is None or history.height < 2:
        return {"available": False, "missing": "a follower-count history (`followaudit growth import FILE --account A`, or several snapshots of the account)"}
    hist = history.select(pl.col("date").cast(pl.Date), pl.col("followers").cast(pl.Float64)).sort("date").unique("date", keep="last", maintain_order=True)
    frame = (
        posts.filter(pl.col("engagements").is_not_null() & pl.col("created_at").is_not_null())
        .with_columns(pl.col("created_at").dt.date().alias("date"))
        .sort("date")
        .join_asof(hist, on="date", strategy="backward")
        .filter(pl.col("followers") > 0)
    )
    if frame.height < TREND_MIN_POSTS:
        return {"available": False, "missing": f"at least {TREND_MIN_POSTS} posts inside the follower-count history (have {frame.height})"}
    x = frame["followers"].log().to_numpy()
    y = frame["engagements"].cast(pl.Float64).log1p().to_numpy()
    growth = float(frame["followers"].max() / frame["followers"].min())
    out: dict[str, Any] = {"available": True, "posts": frame.height, "follower_growth_factor": growth}
    if growth < 1.1 or float(x.std()) == 0.0:
        out.update(elasticity=None, spearman=None, verdict="the follower count barely changed over these posts; the trend cannot be judged")
        return out
    from scipy import stats  # lazily: scipy.stats costs ~1 s at every CLI start-up

    fit = stats.linregress(x, y)
    t = float(stats.t.ppf(0.975, frame.height - 2))
    rho = stats.spearmanr(frame["followers"].to_numpy(), frame["engagements"].to_numpy()).statistic
    lo, hi = float(fit.slope - t * fit.stderr), float(fit.slope + t * fit.stderr)
    if hi < ELASTICITY_FLAT:
        verdict = "engagement did not keep up with follower growth: the followers gained do not engage (typical of bought followers)"
    elif lo > ELASTICITY_FLAT:
        verdict = "engagement grew with the follower count"
    else:
        verdict = "inconclusive: engagement neither clearly followed nor clearly ignored follower growth"
    out.update(
        elasticity={"slope": float(fit.slope), "low": lo, "high": hi, "method": "OLS slope of log(1+engagements) on log(followers at post time), 95% t interval"},
        spearman=None if math.isnan(rho) else float(rho),
        verdict=verdict,
    )
    return out


def around_spikes(posts: pl.DataFrame, spikes: list[dict[str, Any]] | None, k: int = AROUND_POSTS) -> list[dict[str, Any]]:
    """Engagement per post in the ``k`` posts before and after each follower spike (within ``AROUND_DAYS``).

    Bought followers raise the count but not the engagement: after a bought spike the followers jump
    while engagement per post stays where it was (so the rate drops). Needs ≥ 3 posts on each side.
    """
    out = []
    frame = posts.filter(pl.col("engagements").is_not_null() & pl.col("created_at").is_not_null()).sort("created_at")
    day = pl.col("created_at").dt.date()
    for spike in spikes or []:
        start, end = date.fromisoformat(spike["date_from"]), date.fromisoformat(spike["date"])
        before = frame.filter((day <= start) & (day > start - timedelta(days=AROUND_DAYS))).tail(k)
        after = frame.filter((day > end) & (day <= end + timedelta(days=AROUND_DAYS))).head(k)
        item: dict[str, Any] = {"spike": spike["date"], "gain": spike["gain"], "posts_before": before.height, "posts_after": after.height}
        if before.height >= 3 and after.height >= 3:
            e0, e1 = float(before["engagements"].mean()), float(after["engagements"].mean())
            f1 = int(spike["followers_after"])
            f0 = f1 - int(spike["gain"])
            item.update(
                engagements_before=e0, engagements_after=e1,
                engagement_change=(e1 / e0 - 1) if e0 > 0 else None,
                followers_before=f0, followers_after=f1,
                follower_change=(f1 / f0 - 1) if f0 > 0 else None,
                rate_before=e0 / f0 if f0 > 0 else None, rate_after=e1 / f1 if f1 > 0 else None,
            )
        out.append(item)
    return out


def followers_at_posts(posts: pl.DataFrame, followers: int, history: pl.DataFrame | None) -> tuple[pl.Series, str]:
    """The follower count at each post's time (``posts`` order) and where it came from.

    From ``history`` (date, followers): the latest count on or before the post's day, else (posts
    older than the history) the first count after it. Without a usable history: today's count.
    """
    today = pl.Series("followers_at_post", [float(followers)] * posts.height, dtype=pl.Float64)
    if history is None or history.height == 0 or posts.height == 0:
        return today, "today's follower count (no count history: older posts' rates are understated if the account grew)"
    hist = (history.select(pl.col("date").cast(pl.Date), pl.col("followers").cast(pl.Float64))
            .filter(pl.col("followers") > 0).sort("date").unique("date", keep="last", maintain_order=True))
    if hist.height == 0:
        return today, "today's follower count (the count history holds no positive counts)"
    days = posts.select(pl.col("created_at").dt.date().alias("date"), pl.int_range(pl.len()).alias("_i"))
    known = days.filter(pl.col("date").is_not_null()).sort("date")
    back = known.join_asof(hist, on="date", strategy="backward")
    fwd = known.join_asof(hist.rename({"followers": "_next"}), on="date", strategy="forward")
    at = back.join(fwd.select("_i", "_next"), on="_i").select("_i", pl.coalesce("followers", "_next").alias("f"))
    out = days.join(at, on="_i", how="left").sort("_i")["f"].fill_null(float(followers))
    return out.alias("followers_at_post"), "the follower count at each post's time (count history)"


def _logit(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(x, 1e-9, 1 - 1e-9)
    return np.log(x / (1 - x))


def rate_intervals(rates: np.ndarray, real: Share | dict[str, float] | None, confidence: float = 0.95) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rate on all followers, rate on real followers), each ``{rate, low, high, method}``.

    Bootstrap over posts for the mean rate; for the real-follower rate each resample is divided by
    a real share drawn from its interval (logit-normal with the interval's logit width), so the
    interval carries both the post-to-post variation and the uncertainty about who the followers are.
    """
    from scipy import stats  # lazily: scipy.stats costs ~1 s at every CLI start-up

    n = rates.size
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = np.empty(BOOTSTRAP_DRAWS)
    step = max(1, 2_000_000 // max(n, 1))  # resamples per chunk: bounded memory for long histories
    for start in range(0, BOOTSTRAP_DRAWS, step):
        k = min(step, BOOTSTRAP_DRAWS - start)
        means[start:start + k] = rates[rng.integers(0, n, size=(k, n))].mean(axis=1)
    q = ((1 - confidence) / 2, 1 - (1 - confidence) / 2)
    point = float(rates.mean())
    lo_all, hi_all = (float(v) for v in np.quantile(means, q))
    all_rate = {"rate": point, "low": lo_all, "high": hi_all,
                "method": f"mean over posts of engagements / followers at the post's time; percentile bootstrap over posts ({BOOTSTRAP_DRAWS:,} resamples)"}
    if real is None:
        return all_rate, {"rate": None, "low": None, "high": None, "method": REAL_RATE_METHOD}
    s, lo, hi = _bounds(real)
    if s <= 0:
        return all_rate, {"rate": None, "low": None, "high": None, "method": REAL_RATE_METHOD}
    z = float(stats.norm.ppf(q[1]))
    sd = max((float(_logit(hi)) - float(_logit(lo))) / (2 * z), 0.0)
    draws = 1 / (1 + np.exp(-(_logit(s) + sd * rng.standard_normal(BOOTSTRAP_DRAWS))))
    ratio = means / draws
    low, high = (float(v) for v in np.quantile(ratio, q))
    return all_rate, {"rate": point / s, "low": low, "high": None if lo <= 0 else high, "method": REAL_RATE_METHOD}


def engagement_section(
    posts: pl.DataFrame,
    followers: int,
    shares: dict[str, Share] | None,
    history: pl.DataFrame | None = None,
    *,
    spikes: list[dict[str, Any]] | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The report's ``engagement`` section from the account's posts, the follower count at each
    post's time and the audit's headline shares (see the module doc for the definitions)."""
    if posts.height == 0:
        return {"available": False, "missing": "posts with their like/reply/repost counts: collect with `--posts N` or run `followaudit import-posts FILE --snapshot S`"}
    if followers <= 0:
        return {"available": False, "missing": "the account's follower count (the snapshot has no followers)"}
    frame = with_engagements(posts).filter(pl.col("engagements").is_not_null()).sort("created_at", descending=True, nulls_last=True)
    if frame.height == 0:
        return {"available": False, "missing": "engagement counts: the posts carry no likes, replies or reposts"}
    real = shares.get("real") if shares else None
    mean_e = float(frame["engagements"].mean())
    at_post, at_source = followers_at_posts(frame, followers, history)
    frame = frame.with_columns(at_post, (pl.col("engagements") / at_post).alias("rate"))
    rate_all, rate_real = rate_intervals(frame["rate"].to_numpy(), real, confidence)
    per_post = frame.head(PER_POST_LIMIT)
    views = frame.filter(pl.col("views").is_not_null() & (pl.col("views") > 0)) if "views" in frame.columns else frame.head(0)
    section: dict[str, Any] = {
        "available": True,
        "posts": frame.height,
        "followers": followers,
        "engagements_per_post": {"mean": mean_e, "median": float(frame["engagements"].median())},
        "engagement_rate": rate_all["rate"],
        "engagement_rate_interval": rate_all,
        "engagement_rate_real": {**rate_real, "real_share_method": (real.method if real else None)},
        "followers_at_post": {"source": at_source, "min": float(frame["followers_at_post"].min()), "max": float(frame["followers_at_post"].max())},
        "definition": "engagements = likes + replies + reposts + quotes per post; a post's rate = its engagements / the follower count at its time; the account's rate = the mean over posts; on real followers: / the headline real share",
        "period": {
            "from": _iso(frame["created_at"].min()),
            "to": _iso(frame["created_at"].max()),
        },
        "per_post": [
            {
                "post_id": r["post_id"], "created_at": _iso(r["created_at"]), "engagements": r["engagements"],
                "likes": r["likes"], "replies": r["replies"], "reposts": r["reposts"], "views": r.get("views"),
                "followers_at_post": r["followers_at_post"], "rate": r["rate"],
                "rate_real": rate_interval(float(r["engagements"]), float(r["followers_at_post"]), real),
            }
            for r in per_post.iter_rows(named=True)
        ],
        "trend": engagement_trend(frame, history),
        "around_spikes": around_spikes(frame, spikes) if spikes else None,
    }
    if views.height:
        section["engagement_per_view"] = float(views["engagements"].sum() / views["views"].sum())
    if real is None:
        section["engagement_rate_real"]["missing"] = "the real-follower share (audit the snapshot first)"
    return section


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# -- what-if -----------------------------------------------------------------------------------------
def what_if(
    followers: int,
    buy: int,
    engagements_per_post: float | None,
    fake: Share | dict[str, float],
    *,
    method: str | None = None,
    rate_before: float | None = None,
    rate_basis: str | None = None,
) -> dict[str, Any]:
    """What buying ``buy`` fake followers does to the count, the fake share and the engagement rate,
    and the engagement rate the account would show without its fake followers (see module doc).

    ``rate_before``: the account's engagement rate as the engagement section measures it (each post
    over the follower count at its time); the what-if then works with the engagements per post that
    rate means at today's count, so the report's sections agree. ``rate_basis`` says how it was measured.
    """
    if rate_before is not None:
        engagements_per_post = rate_before * followers
    if followers <= 0:
        raise InputError("the snapshot has no followers to compute a what-if from")
    if buy < 0:
        raise InputError(f"--buy {buy} must not be negative")
    p, lo, hi = _bounds(fake)
    after = followers + buy

    def mix(x: float) -> float:
        return (followers * x + buy) / after

    rate_before = engagements_per_post / followers if engagements_per_post is not None else None
    rate_after = engagements_per_post / after if engagements_per_post is not None else None
    out: dict[str, Any] = {
        "followers_before": followers,
        "buy": buy,
        "followers_after": after,
        "engagements_per_post": engagements_per_post,
        "engagement_rate_basis": rate_basis or ("mean engagements per post / today's followers" if engagements_per_post is not None else None),
        "engagement_rate_before": rate_before,
        "engagement_rate_after": rate_after,
        "fake_share_before": {"share": p, "low": lo, "high": hi},
        "fake_share_after": {"share": mix(p), "low": mix(lo), "high": mix(hi)},
        "interval_method": method or (fake.method if isinstance(fake, Share) else None),
        "assumptions": "bought followers are all fake and never engage; the engagement of the existing audience is unchanged (platform ranking penalties would lower it further)",
    }
    real_n = {"estimate": followers * (1 - p), "low": followers * (1 - hi), "high": followers * (1 - lo)}
    without: dict[str, Any] = {"followers": real_n, "engagement_rate": None}
    if engagements_per_post is not None:
        without["engagement_rate"] = {
            "rate": _safe_div(engagements_per_post, real_n["estimate"]),
            "low": _safe_div(engagements_per_post, real_n["high"]),
            "high": _safe_div(engagements_per_post, real_n["low"]),
        }
    out["without_fake"] = without
    if engagements_per_post is None:
        out["missing"] = "engagement: the snapshot has no posts (collect with --posts N or `followaudit import-posts`), or pass --engagements"
    return out


def _safe_div(a: float, b: float) -> float | None:
    return a / b if b > 0 else None
