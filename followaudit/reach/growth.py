"""Follower-count history and spikes in daily gains.

Sources of a count history, merged per date (an imported count wins over a snapshot's on the same day):

* imported files — CSV/JSON ``date,followers`` (e.g. exported from a tracking site), stored per
  account with ``followaudit growth import FILE --account A``;
* the snapshots of the account in the workspace (the platform-reported count, else the enumerated one);
* without an imported history, exact follow times (Bluesky follow records): the newest snapshot whose
  followers nearly all have ``followed_at`` gives a daily count of its followers by follow date
  (scaled by N/n for a uniform sample). It counts the followers who were still there when the list
  was read, so unfollows and removed accounts never show as drops.

**Spike detection.** Between consecutive points the gain per day is ``Δfollowers / Δdays``. Each gain
gets a robust z-score, ``z = 0.6745 · (g − median) / MAD`` (Iglewicz & Hoaglin 1993, "How to Detect
and Handle Outliers"), with median and MAD taken over a centred window of ``WINDOW`` steps (the
Hampel identifier), so an account whose growth speeds up or slows down over the years is judged
against its growth at the time, not against its whole life; histories shorter than the window use
all steps. When a window's MAD is 0 (most steps identical) its mean absolute deviation is used,
``z = (g − median) / (1.253314 · MeanAD)``. A step is a **spike** when ``z > 3.5`` — Iglewicz and
Hoaglin's recommended cut-off for the modified z-score — and its excess is at least
``MIN_EXCESS_SHARE`` (0.5%) of the follower count before it (a handful of extra followers on a tiny
account is not a purchase). Gains are counts, so the scale is never taken below Poisson noise,
``√(local median × Δdays) / Δdays`` per day, and a rise must also pass the same cut-off on the
square-root scale, ``2(√gain − √expected)`` (Anscombe's variance-stabilising transform, ≈ N(0, 1)
for Poisson counts): on a small account a week with 12 new followers instead of 4 is chance; a **drop** (e.g. a platform purge of fake accounts) when ``z < −3.5``.
The spike's *size* is its excess over the local typical step:
``Δfollowers − local median gain/day × Δdays``. At least ``MIN_STEPS`` steps are needed.

**Beside the bursts.** A burst found from follow order covers follow ranks [start, end]; the account
had ``start + 1`` followers when its first member followed. The date the count history first reached
that count (and ``end + 1``) dates the burst independently of the follow-time lower bound; a spike
matches a burst when their date ranges overlap (unfollows shift ranks, so the dating is approximate).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..store.workspace import Store
from .engagement import Loaded, count_expr, read_columns, validate, with_times

Z_THRESHOLD = 3.5
MIN_STEPS = 8
WINDOW = 31  # steps in the local (Hampel) window: a month of daily counts, ~7 months of weekly ones
MIN_EXCESS_SHARE = 0.005
MAD_SCALE = 0.6745  # Φ⁻¹(0.75): makes MAD comparable to a standard deviation
MEANAD_SCALE = 1.253314  # √(π/2): mean absolute deviation → standard deviation (normal data)
MAX_SERIES_POINTS = 400  # points of the count series kept in the report (evenly thinned)
COUNT_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "day", "time", "timestamp", "datetime", "as_of"),
    "followers": ("followers", "follower_count", "followers_count", "count", "subscribers", "total_followers", "fans", "followers_total"),
}
METHOD = (
    f"robust z-score of gain per day against a centred {WINDOW}-step window (0.6745·(g−median)/MAD, "
    f"Iglewicz–Hoaglin / Hampel), spike when z > {Z_THRESHOLD} and the excess ≥ {MIN_EXCESS_SHARE:.1%} of followers"
)


def load_count_history(path: str | Path) -> Loaded:
    """Read ``date,followers`` rows; unreadable dates or counts become rejects. Rows: date, followers."""
    frame, cols, path = read_columns(path, COUNT_ALIASES, ("date", "followers"))
    frame, when = with_times(frame, cols["date"])
    count = count_expr(cols["followers"])
    checks = [
        (cols["date"], when.is_null(), "unreadable date"),
        (cols["followers"], count.is_null() | (count < 0), "followers is not a non-negative count"),
        (cols["date"], pl.int_range(pl.len()).over(when.dt.date()) > 0, "duplicate date"),
    ]
    return validate(frame, path, checks, [when.dt.date().alias("date"), count.alias("followers")])


def import_count_history(store: Store, path: str | Path, *, account: str, platform: str | None = None) -> tuple[int, Loaded]:
    """Load a count-history file and store it for ``account``; returns (rows stored, loaded)."""
    loaded = load_count_history(path)
    source = f"import:{Path(path).name}"
    n = store.save_follower_counts(account.lstrip("@"), platform, loaded.rows, source) if loaded.rows.height else 0
    return n, loaded


def snapshot_counts(store: Store, account: str, platform: str | None = None) -> pl.DataFrame:
    """One point per complete snapshot of the account: date, followers, source."""
    frame = store.query(
        """SELECT CAST(s.taken_at AS DATE) AS date, s.snapshot_id, s.followers_reported, s.sample_population
           FROM snapshots s WHERE lower(s.account) = lower(?) AND (? IS NULL OR s.platform = ?)
             AND coalesce(s.status, 'complete') = 'complete' AND s.taken_at IS NOT NULL
           ORDER BY s.taken_at""",
        [account.lstrip("@"), platform, platform],
    )
    if frame.height == 0:
        return _empty()
    # an account has a few snapshots: each counted by its id
    frame = frame.with_columns(pl.Series("n", [store.follower_count(sid) for sid in frame["snapshot_id"]], dtype=pl.Int64))
    return frame.select(
        pl.col("date"),
        pl.coalesce("followers_reported", "sample_population", "n").cast(pl.Int64).alias("followers"),
        (pl.lit("snapshot ") + pl.col("snapshot_id").cast(pl.Utf8)).alias("source"),
    ).filter(pl.col("followers") > 0)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"date": pl.Date, "followers": pl.Int64, "source": pl.Utf8})


FOLLOW_TIMES_COVERAGE = 0.9  # share of a snapshot's followers that must have an exact follow time


DAY_US = 86_400_000_000


def daily_follows(times: pl.DataFrame) -> pl.DataFrame:
    """``date, n``: followers by the UTC day of their exact follow time, from a snapshot's follow times
    (``platform_evidence.follow_times``), as ``follow_time_counts`` counts them in SQL."""
    return (times.select((pl.col("followed_at").dt.epoch("us").drop_nulls() // DAY_US).cast(pl.Int32).cast(pl.Date).alias("date"))
            .group_by("date").agg(pl.len().cast(pl.Int64).alias("n")).sort("date"))


def follow_time_counts(store: Store, account: str, platform: str | None = None,
                       counted: tuple[int, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Followers by follow date from exact follow times (date, followers, source), or empty.
    ``counted``: ``(snapshot id, daily_follows)`` already counted, used when that is the account's latest snapshot."""
    snap = store.row(
        """SELECT s.snapshot_id, s.sample_kind, s.sample_n, s.sample_population
           FROM snapshots s WHERE lower(s.account) = lower(?) AND (? IS NULL OR s.platform = ?)
             AND coalesce(s.status, 'complete') = 'complete'
           ORDER BY s.taken_at DESC NULLS LAST, s.snapshot_id DESC LIMIT 1""",
        [account.lstrip("@"), platform, platform],
    )
    if not snap:
        return _empty()
    if counted is not None and counted[0] == snap["snapshot_id"]:
        daily = counted[1]
    else:  # the UTC day from the epoch: casting the TIMESTAMPTZ itself goes through the time-zone library (3x the CPU)
        daily = store.query(
            """SELECT CAST(make_timestamp(epoch_us(followed_at)) AS DATE) AS date, count(*) AS n FROM followers
               WHERE snapshot_id = ? AND followed_at IS NOT NULL GROUP BY 1 ORDER BY 1""",
            [snap["snapshot_id"]],
        )
    timed = int(daily["n"].sum()) if daily.height else 0  # the followers with a follow time, counted once
    if not timed or timed < FOLLOW_TIMES_COVERAGE * store.follower_count(snap["snapshot_id"]):
        return _empty()
    scale = 1.0
    if snap["sample_kind"] == "uniform" and snap["sample_n"] and snap["sample_population"]:
        scale = snap["sample_population"] / snap["sample_n"]
    what = "exact follow times" + (" (sample, scaled)" if scale != 1.0 else "")
    return daily.select(
        pl.col("date"),
        (pl.col("n").cum_sum() * scale).round().cast(pl.Int64).alias("followers"),
        pl.lit(f"{what} of snapshot {snap['snapshot_id']}").alias("source"),
    )


def count_history(store: Store, account: str, platform: str | None = None,
                  counted: tuple[int, pl.DataFrame] | None = None) -> pl.DataFrame:
    """The account's follower counts over time (date, followers, source), one row per date.
    ``counted``: see ``follow_time_counts``."""
    imported = store.follower_counts(account, platform).select("date", "followers", "source")
    if imported.height == 0:
        timed = follow_time_counts(store, account, platform, counted)
        if timed.height >= 2:  # one source only: mixing levels would fake spikes and drops
            return timed
    snaps = snapshot_counts(store, account, platform)
    both = pl.concat([imported.with_columns(pl.lit(0).alias("_p")), snaps.with_columns(pl.lit(1).alias("_p"))])
    return both.sort(["date", "_p"]).unique("date", keep="first", maintain_order=True).drop("_p")


def robust_z(values: np.ndarray) -> np.ndarray:
    """Modified z-scores (Iglewicz & Hoaglin); MeanAD fallback when MAD is 0; zeros when all equal."""
    x = np.asarray(values, dtype=float)
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    if mad > 0:
        return MAD_SCALE * (x - med) / mad
    mean_ad = float(np.mean(np.abs(x - med)))
    if mean_ad > 0:
        return (x - med) / (MEANAD_SCALE * mean_ad)
    return np.zeros_like(x)


def local_robust_z(values: np.ndarray, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """(z, local median): modified z-scores against a centred window (Hampel identifier)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n <= window:
        return robust_z(x), np.full(n, float(np.median(x)) if n else 0.0)
    windows = np.lib.stride_tricks.sliding_window_view(x, window)
    med_w = np.median(windows, axis=1)
    dev = np.abs(windows - med_w[:, None])
    mad_w = np.median(dev, axis=1)
    mean_w = dev.mean(axis=1)
    idx = np.clip(np.arange(n) - window // 2, 0, n - window)
    med, mad, mean_ad = med_w[idx], mad_w[idx], mean_w[idx]
    scale = np.where(mad > 0, mad / MAD_SCALE, MEANAD_SCALE * mean_ad)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (x - med) / scale, 0.0)
    return z, med


def gains(history: pl.DataFrame) -> pl.DataFrame:
    """Steps between consecutive points: date_from, date, days, delta, per_day, z, local_median."""
    h = history.select(pl.col("date").cast(pl.Date), pl.col("followers").cast(pl.Int64)).sort("date")
    steps = h.select(
        pl.col("date").shift(1).alias("date_from"),
        pl.col("date"),
        (pl.col("date") - pl.col("date").shift(1)).dt.total_days().alias("days"),
        (pl.col("followers") - pl.col("followers").shift(1)).alias("delta"),
        pl.col("followers"),
    ).drop_nulls(["date_from"]).filter(pl.col("days") > 0)
    steps = steps.with_columns((pl.col("delta") / pl.col("days")).alias("per_day"))
    if not steps.height:
        return steps.with_columns(pl.lit(None, pl.Float64).alias("z"), pl.lit(None, pl.Float64).alias("local_median"))
    per_day = steps["per_day"].to_numpy()
    days = steps["days"].to_numpy().astype(float)
    z, med = local_robust_z(per_day)
    # follower gains are counts: a step's noise is at least Poisson, sd = √(expected count) / days
    poisson_sd = np.sqrt(np.maximum(med * days, 1.0)) / days
    with np.errstate(divide="ignore", invalid="ignore"):
        robust_sd = np.where(z != 0, (per_day - med) / z, np.inf)
    z = (per_day - med) / np.maximum(np.abs(robust_sd), poisson_sd)
    # and a rise must also beat Poisson noise on the square-root scale (Anscombe: 2(√x − √λ) ≈ N(0, 1)),
    # which is what the skewed tail of small counts needs
    anscombe = 2.0 * (np.sqrt(np.maximum(per_day * days, 0.0)) - np.sqrt(np.maximum(med * days, 0.0)))
    z = np.where(z > 0, np.minimum(z, anscombe), z)
    return steps.with_columns(pl.Series("z", z, dtype=pl.Float64), pl.Series("local_median", med, dtype=pl.Float64))


def detect_spikes(history: pl.DataFrame, threshold: float = Z_THRESHOLD) -> dict[str, Any]:
    """Spikes and drops in the gain per day (see module doc)."""
    steps = gains(history)
    if steps.height < MIN_STEPS:
        return {"available": False, "steps": steps, "spikes": [], "drops": [],
                "missing": f"at least {MIN_STEPS + 1} dated follower counts (have {history.height})"}
    median = float(steps["per_day"].median())
    marked = steps.with_columns((pl.col("delta") - pl.col("local_median") * pl.col("days")).alias("excess"))

    def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
        return [
            {"date_from": r["date_from"].isoformat(), "date": r["date"].isoformat(), "days": int(r["days"]),
             "gain": int(r["delta"]), "per_day": float(r["per_day"]), "excess": float(r["excess"]),
             "z": float(r["z"]), "followers_after": int(r["followers"])}
            for r in frame.iter_rows(named=True)
        ]

    before = pl.col("followers") - pl.col("delta")
    spikes = marked.filter(
        (pl.col("z") > threshold) & (pl.col("excess") > 0) & (pl.col("excess") >= MIN_EXCESS_SHARE * before)
    ).sort("date")
    drops = marked.filter((pl.col("z") < -threshold) & (pl.col("delta") < 0)).sort("date")
    return {"available": True, "steps": marked, "median_gain_per_day": median,
            "spikes": rows(spikes), "drops": rows(drops)}


def date_of_count(history: pl.DataFrame, count: int) -> tuple[date | None, date | None]:
    """The step (previous point, first point) in which the history first reached ``count`` followers."""
    h = history.sort("date")
    reached = h.with_row_index("_i").filter(pl.col("followers") >= count)
    if reached.height == 0:
        return None, None
    i = int(reached["_i"][0])
    first = h["date"][i]
    prev = h["date"][i - 1] if i > 0 else None
    return prev, first


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        return None


def bursts_beside_spikes(bursts: list[dict[str, Any]] | None, spikes: list[dict[str, Any]], history: pl.DataFrame) -> list[dict[str, Any]]:
    """For each follow-order burst: its dating from the count history and the spikes that overlap it."""
    out = []
    for i, b in enumerate(bursts or [], 1):
        start, end = int(b.get("start_rank", 0)), int(b.get("end_rank", 0))
        lo, _ = date_of_count(history, start + 1)
        _, hi = date_of_count(history, end + 1)
        lb_from, lb_to = _as_date(b.get("followed_from")), _as_date(b.get("followed_to"))
        window_from = lo or lb_from
        window_to = hi or (lb_to + timedelta(days=1) if lb_to else None)
        matched = []
        if window_from is not None or window_to is not None:
            for s in spikes:
                s_from, s_to = date.fromisoformat(s["date_from"]), date.fromisoformat(s["date"])
                if (window_to is None or s_from <= window_to) and (window_from is None or s_to >= window_from):
                    matched.append(s["date"])
        out.append({
            "burst": b.get("burst_id") or i, "size": b.get("size"), "start_rank": start, "end_rank": end,
            "dated_by_counts": {"from": lo.isoformat() if lo else None, "to": hi.isoformat() if hi else None},
            "follow_time_lower_bound": {"from": lb_from.isoformat() if lb_from else None, "to": lb_to.isoformat() if lb_to else None},
            "matching_spikes": matched,
        })
    return out


def thin(history: pl.DataFrame, points: int = MAX_SERIES_POINTS) -> pl.DataFrame:
    """At most ``points`` rows, evenly spaced, always keeping the first and last."""
    if history.height <= points:
        return history
    idx = np.unique(np.linspace(0, history.height - 1, points).round().astype(int))
    return history[idx.tolist()]


def growth_section(
    store: Store, account: str | None, platform: str | None = None, bursts: list[dict[str, Any]] | None = None,
    history: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """The report's ``growth`` section (``history``: ``count_history`` when the caller has it)."""
    if not account:
        return {"available": False, "missing": "the account name (snapshot has none)"}
    history = history if history is not None else count_history(store, account, platform)
    if history.height < 2:
        return {
            "available": False, "points": history.height,
            "missing": "a follower-count history: `followaudit growth import FILE --account A` (CSV date,followers, e.g. from a tracking site) or several snapshots over time",
        }
    found = detect_spikes(history)
    section: dict[str, Any] = {
        "available": True,
        "points": history.height,
        "from": history["date"].min().isoformat(),
        "to": history["date"].max().isoformat(),
        "followers_first": int(history["followers"][0]),
        "followers_last": int(history["followers"][-1]),
        "sources": sorted(set(history["source"].to_list())),
        "method": METHOD,
        "threshold_z": Z_THRESHOLD,
        "series": [{"date": d.isoformat(), "followers": int(f)} for d, f in thin(history).select("date", "followers").iter_rows()],
    }
    if not found["available"]:
        section.update(spikes=None, drops=None, spikes_missing=found["missing"])
        return section
    section.update(median_gain_per_day=found["median_gain_per_day"], spikes=found["spikes"], drops=found["drops"])
    if bursts:
        section["bursts"] = bursts_beside_spikes(bursts, found["spikes"], history)
    else:
        section["bursts"] = None
        section["bursts_missing"] = "bursts from follow order (need followers in follow order with creation dates)"
    return section


def growth_chart(history: pl.DataFrame, path: str | Path, title: str = "") -> Path:
    """Follower count (top) and gain per day with spikes marked (bottom), as PNG or SVG by suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    found = detect_spikes(history) if history.height > 1 else {"steps": gains(history), "spikes": [], "available": False}
    steps = found["steps"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=[2, 1])
    h = history.sort("date")
    top.plot(h["date"].to_list(), h["followers"].to_list(), color="#1f77b4", lw=1.2)
    top.set_ylabel("followers")
    top.set_title(title or "Follower count")
    if steps.height:
        bottom.plot(steps["date"].to_list(), steps["per_day"].to_list(), color="#555555", lw=0.8)
        spike_dates = [date.fromisoformat(x["date"]) for x in found.get("spikes") or []]
        spiky = steps.filter(pl.col("date").is_in(spike_dates)) if spike_dates else steps.head(0)
        if spiky.height:
            bottom.scatter(spiky["date"].to_list(), spiky["per_day"].to_list(), color="#d62728", zorder=3, label=f"spike (robust z > {Z_THRESHOLD})")
            for d in spiky["date"].to_list():
                top.axvline(d, color="#d62728", alpha=0.3, lw=1)
            bottom.legend(loc="upper left", fontsize=8)
    bottom.set_ylabel("gain per day")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
