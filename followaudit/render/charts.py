"""Static charts without a browser: the "follower factory" picture (NYT, 2018).

x = follow rank (oldest follower left), y = the follower's account creation date, colour = label.
Organic growth is a cloud under a crust (new accounts that follow at once); a bought batch is a
brick or a horizontal band. Bursts from :mod:`followaudit.bursts` are outlined and numbered.

With exact follow times (``followed_at`` known for at least half the followers, e.g. Bluesky
follow records) the x axis is the real follow time instead of the rank, and the black line is the
diagonal "created when it followed" that no follower can cross.

Up to ``max_points`` followers are drawn as a scatter; above that the picture is a binned density
(each pixel coloured by the label mix of the followers in it, opacity by log count), so 10M
followers draw in seconds and the file stays small. Point clouds and density images are rasterized
inside the SVG while axes, text and burst outlines stay vector, so the SVG can be embedded in the
HTML report. Matplotlib is used through ``Figure`` directly (no pyplot, no global backend state).
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib import dates as mdates
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter

from ..bursts.detect import DAY_US, Burst, estimate_follow_times
from ..errors import InputError

MAX_POINTS = 50_000
LABEL_COLOURS = {"fake": "#d62728", "inactive": "#f0a202", "real": "#1f77b4", "unlabelled": "#7f7f7f"}
LABEL_ORDER = ("real", "inactive", "fake", "unlabelled")  # fake drawn late so it sits on top
FORMATS = {".png": "png", ".svg": "svg", ".html": "html", ".htm": "html"}


def _days(us: np.ndarray) -> np.ndarray:
    """Epoch microseconds -> Matplotlib date numbers (days since 1970-01-01)."""
    return us.astype(np.float64) / DAY_US


def _arrays(frame: pl.DataFrame) -> dict[str, Any]:
    if "follow_rank" not in frame.columns or "created_at" not in frame.columns:
        raise InputError("the follower-factory chart needs follow_rank and created_at", "audit a snapshot that has a follow order")
    if "followed_at_lower" not in frame.columns:
        frame = estimate_follow_times(frame)
    label = pl.col("label").fill_null("unlabelled") if "label" in frame.columns else pl.lit("unlabelled")
    exact = "followed_at" in frame.columns and frame["followed_at"].null_count() <= frame.height / 2
    followed = pl.col("followed_at") if exact else pl.lit(None, pl.Datetime("us", "UTC"))
    used = frame.select(
        pl.col("follow_rank").cast(pl.Int64),
        pl.col("created_at").dt.epoch("us").alias("created"),
        pl.col("followed_at_lower").dt.epoch("us").alias("lower"),
        pl.coalesce(followed, pl.col("followed_at_lower")).dt.epoch("us").alias("followed"),
        label.cast(pl.Utf8).alias("label"),
    ).filter(pl.col("follow_rank").is_not_null() & pl.col("created").is_not_null())
    if used.height == 0:
        raise InputError("no follower has both a follow rank and a creation date", "the chart needs follow order and account creation dates")
    if not used["follow_rank"].is_sorted():
        used = used.sort("follow_rank")
    return {
        "rank": used["follow_rank"].to_numpy(),
        "created": _days(used["created"].to_numpy()),
        "lower": _days(used["lower"].to_numpy()),
        "followed": _days(used["followed"].to_numpy()) if exact else None,
        "label": used["label"],
    }


def _label_codes(labels: pl.Series) -> tuple[np.ndarray, list[str]]:
    present = [lab for lab in LABEL_ORDER if lab in set(labels.unique().to_list())]
    present += sorted(set(labels.unique().to_list()) - set(present))
    mapping = {lab: i for i, lab in enumerate(present)}
    codes = labels.replace_strict(mapping, return_dtype=pl.Int64).to_numpy()
    return codes, present


def _colour(label: str) -> str:
    return LABEL_COLOURS.get(label, "#555555")


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) / 255.0 for i in (1, 3, 5)])


def follower_factory_figure(
    frame: pl.DataFrame,
    bursts: list[Burst] | None = None,
    *,
    title: str | None = None,
    max_points: int = MAX_POINTS,
    size: tuple[float, float] = (10.0, 5.4),
) -> Figure:
    """The follower-factory chart as a Matplotlib ``Figure``.

    ``frame`` has follow_rank, created_at and optionally label, followed_at_lower and followed_at.
    """
    data = _arrays(frame)
    created, lower = data["created"], data["lower"]
    timed = data["followed"] is not None
    rank = data["followed"] if timed else data["rank"]  # x: the real follow time where it is known
    codes, names = _label_codes(data["label"])
    n = rank.size
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()

    # Bad creation dates (e.g. epoch 0) would squash the picture: show the 99.9% range and say so.
    y_low = float(np.quantile(created, 0.001)) if n > 1000 else float(created.min())
    y_high = float(max(created.max(), lower.max()))
    if timed:  # a very old follow time would squash the picture the same way
        x_low = float(np.quantile(rank, 0.001)) if n > 1000 else float(rank.min())
    pad = max((y_high - y_low) * 0.03, 5.0)
    y0, y1 = y_low - pad, y_high + pad
    hidden = int((created < y0).sum())
    x0, x1 = float(rank.min()) - 0.5, float(rank.max()) + 0.5
    if timed:
        x0 = x_low - max((float(rank.max()) - x_low) * 0.02, 1.0)

    handles = []
    if n <= max_points:
        dot = float(np.clip(30_000 / max(n, 1), 0.6, 6.0))
        for code, name in enumerate(names):
            sel = codes == code
            ax.scatter(rank[sel], created[sel], s=dot, c=_colour(name), alpha=0.65, linewidths=0, rasterized=True)
            handles.append(Line2D([], [], ls="", marker="o", color=_colour(name), label=f"{name} ({int(sel.sum()):,})"))
        mode = "scatter"
    else:
        nx, ny = 900, 420
        ix = np.clip(((rank - x0) / (x1 - x0) * nx).astype(np.int64), 0, nx - 1)
        iy = np.clip(((created - y0) / (y1 - y0) * ny).astype(np.int64), 0, ny - 1)
        cell = iy * nx + ix
        rgb = np.zeros((ny * nx, 3))
        total = np.zeros(ny * nx)
        for code, name in enumerate(names):
            sel = codes == code
            counts = np.bincount(cell[sel], minlength=ny * nx).astype(np.float64)
            rgb += counts[:, None] * _rgb(_colour(name))
            total += counts
            handles.append(Line2D([], [], ls="", marker="s", color=_colour(name), label=f"{name} ({int(sel.sum()):,})"))
        filled = total > 0
        rgb[filled] /= total[filled, None]
        alpha = np.zeros(ny * nx)
        alpha[filled] = 0.25 + 0.75 * np.log1p(total[filled]) / np.log1p(total.max())
        image = np.concatenate([rgb, alpha[:, None]], axis=1).reshape(ny, nx, 4)
        ax.imshow(image, origin="lower", extent=(x0, x1, y0, y1), aspect="auto", interpolation="nearest", rasterized=True)
        mode = "density"

    if timed:
        ax.plot([x0, x1], [x0, x1], color="black", lw=0.7, alpha=0.8)
        handles.append(Line2D([], [], color="black", lw=0.8, label="created when it followed"))
    else:
        step = max(1, n // 4000)
        ax.plot(rank[::step], lower[::step], color="black", lw=0.7, alpha=0.8, drawstyle="steps-post")
        handles.append(Line2D([], [], color="black", lw=0.8, label="follow-time lower bound"))

    min_w, min_h = (x1 - x0) * 0.004, (y1 - y0) * 0.008
    for burst in bursts or []:
        c_from = burst.created_from.timestamp() / 86_400
        c_to = burst.created_to.timestamp() / 86_400
        if timed and burst.followed_from and burst.followed_to:
            start, extent = burst.followed_from.timestamp() / 86_400, (burst.followed_to - burst.followed_from).total_seconds() / 86_400
        else:
            start, extent = burst.start_rank - 0.5, float(burst.span)
        width, height = max(extent, min_w), max(c_to - c_from, min_h)
        left, bottom = start - (width - extent) / 2, c_from - (height - (c_to - c_from)) / 2
        rect = Rectangle((left, bottom), width, height, fill=False, edgecolor="black", lw=1.3, zorder=5)
        rect.set_gid(f"burst-{burst.burst_id}")
        ax.add_patch(rect)
        ax.annotate(
            f"#{burst.burst_id}", (left + width / 2, bottom + height), xytext=(0, 2), textcoords="offset points",
            ha="center", va="bottom", fontsize=8, fontweight="bold", zorder=6,
        )
    if bursts:
        handles.append(Rectangle((0, 0), 1, 1, fill=False, edgecolor="black", lw=1.3, label=f"burst ({len(bursts)})"))

    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if timed:
        ax.xaxis.set_major_locator(mdates.AutoDateLocator())
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
        ax.set_xlabel("followed (exact follow time)")
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))  # no "1e7" offset
        ax.set_xlabel("follow rank (oldest follower left)")
    ax.yaxis.set_major_locator(mdates.AutoDateLocator())
    ax.yaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.yaxis.get_major_locator()))
    ax.set_ylabel("account created")
    heading = title or "Follower factory"
    ax.set_title(f"{heading} — {n:,} followers ({mode})", fontsize=11)
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.85, markerscale=1.5)
    ax.grid(True, lw=0.3, alpha=0.4)
    if hidden:
        when = datetime.fromtimestamp(y0 * 86_400, tz=UTC)
        ax.text(0.99, 0.01, f"{hidden:,} follower{'s' if hidden != 1 else ''} created before {when:%Y-%m-%d} not shown", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="#555555")
    return fig


def _burst_title(burst: Burst) -> str:
    fake = "" if burst.fake_share is None else f"; {burst.fake_share:.0%} labelled fake"
    followed = f"{burst.followed_from:%Y-%m-%d}" if burst.followed_from else "?"
    when = (f"followed {burst.followed_from:%Y-%m-%d %H:%M}..{burst.followed_to:%Y-%m-%d %H:%M}"
            if burst.followed_exact and burst.followed_to else f"followed no earlier than {followed}")
    return (
        f"Burst #{burst.burst_id}: {burst.size:,} followers created {burst.created_from:%Y-%m-%d}..{burst.created_to:%Y-%m-%d}, "
        f"ranks {burst.start_rank:,}-{burst.end_rank:,}, {when}{fake}"
    )


def _svg_text(fig: Figure, bursts: list[Burst] | None) -> str:
    buf = io.StringIO()
    # real <text> elements: smaller, selectable and searchable when embedded in the HTML report
    with rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE so the SVG can be inlined
    # scale with its container; the viewBox keeps the aspect ratio
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 width="100%"', svg, count=1)
    for burst in bursts or []:  # native tooltips on the outlines
        tip = html.escape(_burst_title(burst))
        svg = svg.replace(f'<g id="burst-{burst.burst_id}">', f'<g id="burst-{burst.burst_id}">\n   <title>{tip}</title>', 1)
    return svg


def follower_factory_svg(
    frame: pl.DataFrame, bursts: list[Burst] | None = None, *, title: str | None = None, max_points: int = MAX_POINTS
) -> str:
    """The chart as an inline-ready ``<svg>`` string (no XML prolog, width 100%)."""
    return _svg_text(follower_factory_figure(frame, bursts, title=title, max_points=max_points), bursts)


FOUND_BY = {"creation_date": "creation dates", "follow_rate": "follow rate"}  # Burst.found_by, in words


def bursts_table_html(bursts: list[Burst]) -> str:
    """An HTML table of bursts (for the standalone page and the HTML report)."""
    if not bursts:
        return "<p>No bursts found.</p>"
    rows = []
    for b in bursts:
        fake = "—" if b.fake_share is None else f"{b.fake_share:.0%} ({b.fake_share_low:.0%}–{b.fake_share_high:.0%})"
        followed = ("" if b.followed_exact else "≥ ") + (f"{b.followed_from:%Y-%m-%d}" if b.followed_from else "—")
        rows.append(
            f"<tr><td>#{b.burst_id}</td><td>{b.start_rank:,}–{b.end_rank:,}</td><td>{b.size:,}</td><td>{b.expected:,.1f}</td>"
            f"<td>{b.created_from:%Y-%m-%d} … {b.created_to:%Y-%m-%d}</td><td>{followed}</td><td>{fake}</td><td>{b.score:,.0f}</td>"
            f"<td>{' and '.join(FOUND_BY.get(k, k) for k in b.found_by)}</td></tr>"
        )
    head = (
        "<tr><th>burst</th><th>follow ranks</th><th>followers</th><th>expected if organic</th><th>accounts created</th>"
        "<th>followed</th><th>labelled fake (Wilson 95%)</th><th>LLR</th><th>found by</th></tr>"
    )
    return f'<table class="bursts">{head}{"".join(rows)}</table>'


def follower_factory_html(
    frame: pl.DataFrame, bursts: list[Burst] | None = None, *, title: str | None = None, max_points: int = MAX_POINTS
) -> str:
    """A self-contained page: inline SVG chart plus the burst table; no script, no external file."""
    svg = follower_factory_svg(frame, bursts, title=title, max_points=max_points)
    heading = html.escape(title or "Follower factory")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }}
table.bursts {{ border-collapse: collapse; font-size: 0.9rem; margin-top: 1rem; }}
table.bursts th, table.bursts td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }}
table.bursts td {{ white-space: nowrap; }}
table.bursts th {{ background: #f4f4f4; }}
p.note {{ color: #555; font-size: 0.9rem; }}
</style></head>
<body>
<h1>{heading}</h1>
<p class="note">Followers in the order they followed (x, oldest left) against the date each follower's account was created (y).
Organic growth is a cloud under a crust of brand-new accounts; a bought batch shows as a brick or a horizontal band.
Outlined and numbered: bursts, runs of consecutive followers created in a narrow window far more often than the organic
followers around them. Hover an outline for details. The black line is the earliest each follower can have followed
(Meeder et al. 2011).</p>
<figure>{svg}</figure>
{bursts_table_html(bursts or [])}
</body></html>
"""


def write_follower_factory(
    path: str | Path,
    frame: pl.DataFrame,
    bursts: list[Burst] | None = None,
    *,
    title: str | None = None,
    max_points: int = MAX_POINTS,
    dpi: int = 100,
) -> Path:
    """Write the chart as PNG, SVG or a standalone offline HTML page, chosen by the file suffix."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"cannot write a chart to {path.name}", "use a .png, .svg or .html file name")
    if kind == "html":
        path.write_text(follower_factory_html(frame, bursts, title=title, max_points=max_points), encoding="utf-8")
    elif kind == "svg":
        path.write_text(follower_factory_svg(frame, bursts, title=title, max_points=max_points), encoding="utf-8")
    else:
        follower_factory_figure(frame, bursts, title=title, max_points=max_points).savefig(path, dpi=dpi)
    return path
