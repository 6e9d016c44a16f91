"""HTML rendering of a Report: one self-contained file (no scripts, no CDN, styles and charts inline).

The same templates render the report page of the web app (``followaudit.web``), so the file and the
page cannot disagree. Jinja2 autoescapes everything: names, handles and bios are attacker-controlled.
The only markup not escaped is the ``data:`` URI of a chart, which this module builds from SVG bytes.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, Environment, PackageLoader, StrictUndefined

from .. import __version__
from ..report.core import Report
from ..report.evidence import PROFILE_FIELDS, evidence_lines, far_warning
from .static_charts import report_charts


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def num(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{int(x):,}"


def dt(x: Any) -> str:
    if isinstance(x, datetime):
        x = x.astimezone(UTC) if x.tzinfo else x
        return x.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(x, date):
        return x.isoformat()
    return "—" if x is None else str(x)


POINT_KEYS = ("share", "rate", "estimate", "value", "slope", "mean")
PERCENT_KEYS = ("share", "rate")


def _point_key(x: dict[str, Any]) -> str | None:
    return next((k for k in POINT_KEYS if k in x), None)


def is_interval(x: Any) -> bool:
    """A point with its interval, as sections write them: {share|rate|estimate|..., low, high, ...}."""
    return isinstance(x, dict) and "low" in x and "high" in x and _point_key(x) is not None


def interval(x: dict[str, Any]) -> str:
    key = _point_key(x) or "estimate"
    fmt = pct if key in PERCENT_KEYS else num
    point = x.get(key)
    if x.get("low") is None or x.get("high") is None:
        return fmt(point)
    return f"{fmt(point)} ({fmt(x['low'])} – {fmt(x['high'])})"


def _iso(text: str) -> datetime | None:
    """An ISO timestamp written as text by a section (JSON has no datetime type)."""
    if len(text) < 19 or text[4] != "-" or text[10] not in "T ":
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def day(x: Any) -> str:
    """A date for narrow table cells (UTC)."""
    return dt(x)[:10] if isinstance(x, datetime | date) else dt(x)


def plain(x: Any) -> str:
    """A scalar for a table cell: numbers grouped, times in UTC, lists joined, intervals as ranges."""
    if is_interval(x):
        return interval(x)
    if isinstance(x, dict):
        return "; ".join(f"{str(k).replace('_', ' ')}: {plain(v)}" for k, v in x.items())
    if isinstance(x, bool) or x is None:
        return "—" if x is None else ("yes" if x else "no")
    if isinstance(x, int | float):
        return num(x)
    if isinstance(x, datetime | date):
        return dt(x)
    if isinstance(x, list | tuple):
        return ", ".join(plain(v) for v in x)
    if isinstance(x, str) and (when := _iso(x)) is not None:
        return dt(when)
    return str(x)


def svg_data_uri(svg: str) -> str:
    """An ``<img src>`` for SVG text. As an image, an SVG cannot run scripts even if it held any."""
    if svg.startswith(("data:", "/")):  # already a URI (the web app serves charts by URL)
        return svg
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def environment(extra_loader: BaseLoader | None = None) -> Environment:
    """The Jinja2 environment for reports (and, with the web templates added, for the web app)."""
    loaders: list[BaseLoader] = [PackageLoader("followaudit.render", "templates")]
    if extra_loader is not None:
        loaders.insert(0, extra_loader)
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,  # always, whatever the template's extension
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, num=num, dt=dt, day=day, plain=plain, svg_data_uri=svg_data_uri)
    env.tests["interval"] = is_interval
    env.globals.update(version=__version__, evidence_lines=evidence_lines, far_warning=far_warning, field_words=PROFILE_FIELDS)
    return env


_ENV: Environment | None = None


def render_html(
    report: Report,
    charts: dict[str, str] | None = None,
    followers: Any = None,
    generated_at: datetime | None = None,
) -> str:
    """The self-contained HTML report. ``charts`` (name -> SVG) are drawn from ``report`` when omitted;
    ``followers`` (follow_rank, created_at, ...) adds the follower-factory chart when available."""
    global _ENV
    if _ENV is None:
        _ENV = environment()
    if charts is None:
        charts = report_charts(report, followers)
    return _ENV.get_template("report.html").render(
        report=report, charts=charts, links=None, generated_at=generated_at or datetime.now(UTC)
    )


def write_html(report: Report, path: str | Path, charts: dict[str, str] | None = None, followers: Any = None) -> Path:
    path = Path(path)
    path.write_text(render_html(report, charts=charts, followers=followers), encoding="utf-8")
    return path
