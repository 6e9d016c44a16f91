"""Static charts of a Report as SVG or PNG, drawn with matplotlib's Agg backend (no browser, no display).

Charts: the three shares with their interval bars (and the corrected estimate beside them when the
model provides one), the reasons breakdown, growth and engagement lines. The follower-factory chart
lives in ``render/charts.py`` (it bins above ~50k points); ``report_charts`` embeds it when present.

Only matplotlib's object API is used (``Figure``, never ``pyplot``): pyplot keeps global state and is
not safe in the web server's worker threads. Text in the charts is ours (labels, rule names, dates),
never a follower's name or bio.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from ..bursts.detect import Burst  # noqa: E402
from ..errors import InputError  # noqa: E402
from ..report.core import Report  # noqa: E402
from . import charts  # noqa: E402

COLOURS = {"fake": "#c0392b", "inactive": "#b7950b", "real": "#1e8449"}
CORRECTED_COLOUR = "#34495e"
LINE_COLOURS = ["#2874a6", "#c0392b", "#1e8449", "#7d3c98", "#b7950b"]
# Deterministic SVG output: no timestamp, fixed element ids.
_SVG_META = {"Date": None, "Creator": "followaudit"}
matplotlib.rcParams["svg.hashsalt"] = "followaudit"
matplotlib.rcParams["svg.fonttype"] = "path"  # text as outlines: renders the same without fonts


def _figure(width: float = 6.4, height: float = 2.8) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_SVG_META)
    return buf.getvalue()


def to_png(fig: Figure, dpi: int = 120) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": "followaudit"})
    return buf.getvalue()


def shares_figure(report: Report) -> Figure:
    """Horizontal bars: each label's share with its interval as an error bar; corrected beside it."""
    labels = list(report.shares)
    fig = _figure(6.4, 1.0 + 0.55 * len(labels) * (2 if report.corrected else 1))
    ax = fig.add_subplot()
    rows: list[tuple[str, float, float, float, str]] = []
    for label in labels:
        s = report.shares[label]
        rows.append((f"{label} (raw)" if report.corrected else label, s.share, s.low, s.high, COLOURS.get(label, "#555")))
        c = (report.corrected or {}).get(label)
        if c and c.get("share") is not None:
            rows.append((f"{label} (corrected)", c["share"], c.get("low", c["share"]), c.get("high", c["share"]), CORRECTED_COLOUR))
    names = [r[0] for r in rows][::-1]
    pos = range(len(rows))
    values = [100 * r[1] for r in rows][::-1]
    err_low = [100 * (r[1] - r[2]) for r in rows][::-1]
    err_high = [100 * (r[3] - r[1]) for r in rows][::-1]
    ax.barh(list(pos), values, color=[r[4] for r in rows][::-1], alpha=0.85, height=0.6)
    ax.errorbar(values, list(pos), xerr=[err_low, err_high], fmt="none", ecolor="black", capsize=4, linewidth=1.2)
    ax.set_yticks(list(pos), names)
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"share of audited followers, % (bars: {report.confidence_level:.0%} interval)")
    for p, v, hi in zip(pos, values, err_high, strict=True):
        ax.text(min(v + hi + 1.5, 92), p, f"{v:.1f}%", va="center", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return fig


def reasons_figure(report: Report) -> Figure | None:
    """Horizontal bars: how many fake or inactive followers each reason applies to."""
    if not report.top_reasons:
        return None
    reasons = report.top_reasons[::-1]
    fig = _figure(7.2, 0.8 + 0.38 * len(reasons))
    ax = fig.add_subplot()
    ax.barh(range(len(reasons)), [c for _, c in reasons], color="#5d6d7e", height=0.6)
    ax.set_yticks(range(len(reasons)), [_shorten(r, 60) for r, _ in reasons], fontsize=8)
    ax.set_xlabel("followers (a follower can have several reasons)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _as_time(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def series_in(section: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Time series found in a report section: lists of records with a date/time field and numbers.

    Sections are written by other modules (growth, engagement); rather than fixing their shape here,
    any list of dicts whose first key-like field is a date or time and that carries numeric fields is
    drawable.
    """
    found: list[tuple[str, list[dict[str, Any]]]] = []
    if isinstance(section, Mapping):
        for key, value in section.items():
            if _is_series(value):
                found.append((str(key), value))
            elif isinstance(value, Mapping):
                found.extend((f"{key}.{k}", v) for k, v in series_in(value))
    elif _is_series(section):
        found.append(("series", section))
    return found


TIME_KEYS = ("date", "day", "at", "time", "t", "taken_at", "created_at", "week", "month", "bin_start")


def _time_key(record: Mapping[str, Any]) -> str | None:
    for key in TIME_KEYS:
        if key in record and isinstance(_as_time(record[key]), datetime | date):
            return key
    return None


def _is_series(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(v, Mapping) for v in value[:5])
        and _time_key(value[0]) is not None
        and any(isinstance(x, int | float) and not isinstance(x, bool) for x in value[0].values())
    )


def line_figure(records: list[dict[str, Any]], title: str, max_lines: int = 4) -> Figure:
    """A line per numeric field of ``records`` against their time field."""
    tkey = _time_key(records[0]) or "date"
    numeric = [k for k, v in records[0].items() if k != tkey and isinstance(v, int | float) and not isinstance(v, bool)]
    fig = _figure(6.4, 2.6)
    ax = fig.add_subplot()
    times = [_as_time(r.get(tkey)) for r in records]
    for i, key in enumerate(numeric[:max_lines]):
        ax.plot(times, [r.get(key) for r in records], label=key.replace("_", " "), color=LINE_COLOURS[i % len(LINE_COLOURS)], linewidth=1.4)
    ax.set_title(title.replace("_", " "), fontsize=9)
    ax.grid(alpha=0.3)
    if numeric:
        ax.legend(fontsize=7, loc="best")
    fig.autofmt_xdate()
    return fig


def section_figures(report: Report, name: str) -> list[tuple[str, Figure]]:
    """Line charts for every time series in ``report.sections[name]`` (growth, engagement)."""
    section = report.sections.get(name)
    if not section:
        return []
    return [(f"{name}-{key.replace('.', '-')}", line_figure(recs, f"{name}: {key}")) for key, recs in series_in(section)]


def _bursts_for_chart(report: Report | None) -> list[Any] | None:
    """``report.bursts`` (dicts, as in the JSON) back as ``bursts.Burst`` objects for the chart."""
    if report is None or not report.bursts:
        return None
    from dataclasses import fields


    names = {f.name for f in fields(Burst)}
    out = []
    for b in report.bursts:
        if isinstance(b, Burst):
            out.append(b)
            continue
        values = {k: _as_time(v) if k.startswith(("created_", "followed_")) else v for k, v in b.items() if k in names}
        try:
            out.append(Burst(**values))
        except TypeError:  # a burst record without the fields the chart needs: draw without outlines
            return None
    return out


def follower_factory_svg(followers: Any, report: Report | None = None) -> str | None:
    """The follower-factory chart from ``render/charts.py`` (bursts outlined), or None if unavailable.

    ``followers`` has follow_rank, created_at and optionally label.
    """
    if followers is None:
        return None
    try:
        return charts.follower_factory_svg(followers, _bursts_for_chart(report))
    except InputError:  # no follow order or no creation dates: the report says the chart is unavailable
        return None


def report_figures(report: Report) -> list[tuple[str, Figure]]:
    """Every static chart a Report supports, by name (follower factory excluded: see ``report_charts``)."""
    # a withheld audit has no shares to draw
    figures: list[tuple[str, Figure]] = [("shares", shares_figure(report))] if report.shares else []
    reasons = reasons_figure(report)
    if reasons is not None:
        figures.append(("reasons", reasons))
    for name in ("growth", "engagement"):
        figures.extend(section_figures(report, name))
    return figures


def report_charts(report: Report, followers: Any = None) -> dict[str, str]:
    """SVG text of every chart, keyed by name; ``follower_factory`` only when it can be drawn."""
    charts = {name: to_svg(fig) for name, fig in report_figures(report)}
    factory = follower_factory_svg(followers, report) if followers is not None else None
    if factory:
        charts["follower_factory"] = factory
    return charts


def write_charts(
    report: Report, directory: str | Path, formats: Iterable[str] = ("svg", "png"), followers: Any = None
) -> list[Path]:
    """Write each chart as ``<name>.svg`` / ``<name>.png`` into ``directory``; returns the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    formats = tuple(formats)
    for name, fig in report_figures(report):
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            if fmt == "svg":
                path.write_text(to_svg(fig), encoding="utf-8")
            else:
                path.write_bytes(to_png(fig))
            written.append(path)
    written.extend(_write_factory(report, out, formats, followers))
    return written


def _write_factory(report: Report, out: Path, formats: tuple[str, ...], followers: Any) -> list[Path]:
    if followers is None:
        return []
    return [charts.write_follower_factory(out / f"follower_factory.{fmt}", followers, _bursts_for_chart(report)) for fmt in formats]
