"""View inflation in per-video / per-post data (YouTube-style exports: id, published, views, likes, comments).

Bought views raise the view count without the likes and comments real viewers leave; bought likes
do the opposite. Each item is compared with the channel's **own** distribution:

* ratios r = (likes + ½) / views and (comments + ½) / views (the ½ keeps items with 0 likes finite),
  taken on a log scale because ratios are multiplicative and skewed;
* robust z-score z = 0.6745 · (log r − median) / MAD (Iglewicz & Hoaglin 1993; MeanAD fallback when
  MAD = 0, as in ``growth.robust_z``);
* an item is flagged when |z| > 3.5 on either ratio (Iglewicz & Hoaglin's cut-off): z < −3.5 is
  "engagement far below its views" (views look inflated), z > 3.5 "engagement far above its views"
  (likes or comments look bought). Items with no views cannot be judged and are listed as such.

At least ``MIN_ITEMS`` items are needed: a channel's "own distribution" needs a few items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..errors import MissingColumnsError
from .engagement import Loaded, count_expr, read_columns, validate, with_times
from .growth import robust_z

Z_THRESHOLD = 3.5
MIN_ITEMS = 8
FLAG_LIMIT = 50
VIEW_ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": ("video_id", "video", "content", "id", "item_id", "post_id", "url"),
    "published": ("published", "video_publish_time", "publish_time", "published_at", "date", "time", "created_at"),
    "views": ("views", "view_count", "plays", "impressions"),
    "likes": ("likes", "like_count", "likes_count"),
    "comments": ("comments", "comments_added", "comment_count", "comments_count", "replies"),
}
METHOD = (
    f"robust z-score of log((likes+½)/views) and log((comments+½)/views) against the channel's own items "
    f"(0.6745·(x−median)/MAD, Iglewicz–Hoaglin); flagged when |z| > {Z_THRESHOLD}"
)


def load_views(path: str | Path) -> Loaded:
    """Read per-item view data; rows: item_id, published, views, likes, comments."""
    frame, cols, path = read_columns(path, VIEW_ALIASES, ("item_id", "views"))
    if "likes" not in cols and "comments" not in cols:
        raise MissingColumnsError(f"{path.name} has neither likes nor comments (columns: {', '.join(frame.columns[:10])})")
    checks = [(cols["item_id"], pl.col(cols["item_id"]).str.strip_chars().str.len_chars() == 0, "missing item id")]
    for c in ("views", "likes", "comments"):
        if c in cols:
            e = count_expr(cols[c])
            checks.append((cols[c], pl.col(cols[c]).is_not_null() & (e.is_null() | (e < 0)), f"{c} is not a non-negative count"))
    published = pl.lit(None, pl.Datetime("us", "UTC"))
    if "published" in cols:
        src = pl.col(cols["published"])
        frame, published = with_times(frame, cols["published"])
        checks.append((cols["published"], src.is_not_null() & (src.str.strip_chars() != "") & published.is_null(), "unreadable publish time"))
    keep = [
        pl.col(cols["item_id"]).str.strip_chars().alias("item_id"),
        published.alias("published"),
        *[(count_expr(cols[c]) if c in cols else pl.lit(None, pl.Int64)).alias(c) for c in ("views", "likes", "comments")],
    ]
    return validate(frame, path, checks, keep)


def flag_items(items: pl.DataFrame, threshold: float = Z_THRESHOLD) -> pl.DataFrame:
    """Adds likes_per_view, comments_per_view, z_likes, z_comments, flagged, direction."""
    judged = items.filter(pl.col("views").is_not_null() & (pl.col("views") > 0))
    out = judged.with_columns(
        (pl.col("likes") / pl.col("views")).alias("likes_per_view"),
        (pl.col("comments") / pl.col("views")).alias("comments_per_view"),
    )
    for name in ("likes", "comments"):
        logr = ((pl.col(name).cast(pl.Float64) + 0.5) / pl.col("views")).log()
        vals = out.select(logr.alias("v"))["v"]
        z = np.full(out.height, np.nan)
        known = vals.is_not_null().to_numpy()
        if known.sum() >= MIN_ITEMS:
            z[known] = robust_z(vals.drop_nulls().to_numpy())
        out = out.with_columns(pl.Series(f"z_{name}", z, dtype=pl.Float64).fill_nan(None))
    low = (pl.col("z_likes") < -threshold) | (pl.col("z_comments") < -threshold)
    high = (pl.col("z_likes") > threshold) | (pl.col("z_comments") > threshold)
    return out.with_columns(
        (low.fill_null(False) | high.fill_null(False)).alias("flagged"),
        pl.when(low.fill_null(False)).then(pl.lit("engagement far below views (views look inflated)"))
        .when(high.fill_null(False)).then(pl.lit("engagement far above views (likes/comments look bought)"))
        .otherwise(None).alias("direction"),
    )


def views_section(items: pl.DataFrame) -> dict[str, Any]:
    """The report's ``views`` section."""
    if items.height == 0:
        return {"available": False, "missing": "per-video or per-post view data: `followaudit views FILE --account A` (CSV video id, published, views, likes, comments)"}
    judged = flag_items(items)
    if judged.height < MIN_ITEMS:
        return {"available": False, "items": items.height, "missing": f"at least {MIN_ITEMS} items with views (have {judged.height})"}
    flagged = judged.filter(pl.col("flagged")).sort(
        pl.max_horizontal(pl.col("z_likes").abs(), pl.col("z_comments").abs()), descending=True
    )
    return {
        "available": True,
        "items": items.height,
        "judged": judged.height,
        "unjudged_no_views": items.height - judged.height,
        "median_likes_per_view": _med(judged, "likes_per_view"),
        "median_comments_per_view": _med(judged, "comments_per_view"),
        "method": METHOD,
        "threshold_z": Z_THRESHOLD,
        "flagged_count": flagged.height,
        "flagged": [
            {"item_id": r["item_id"], "published": r["published"].isoformat() if r["published"] else None,
             "views": r["views"], "likes": r["likes"], "comments": r["comments"],
             "likes_per_view": r["likes_per_view"], "comments_per_view": r["comments_per_view"],
             "z_likes": r["z_likes"], "z_comments": r["z_comments"], "direction": r["direction"]}
            for r in flagged.head(FLAG_LIMIT).iter_rows(named=True)
        ],
    }


def _med(frame: pl.DataFrame, col: str) -> float | None:
    value = frame[col].median()
    return float(value) if value is not None else None


def views_chart(items: pl.DataFrame, path: str | Path, title: str = "") -> Path:
    """Likes and comments per view against views (log scales), flagged items in red; PNG or SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    judged = flag_items(items)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, name in zip(axes, ("likes", "comments"), strict=True):
        ratio = ((judged[name].cast(pl.Float64) + 0.5) / judged["views"]).to_list()
        outlier = (judged[f"z_{name}"].abs() > Z_THRESHOLD).fill_null(False).to_list()  # this panel's own ratio
        colors = ["#d62728" if f else "#1f77b4" for f in outlier]
        ax.scatter(judged["views"].to_list(), ratio, c=colors, s=14, alpha=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("views")
        ax.set_ylabel(f"({name} + ½) per view")
        ax.set_title(f"{name} per view (red: |robust z| > {Z_THRESHOLD})", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
