"""Plain-text lines for the reach sections (engagement, what-if, likers, growth, comparison, views).

Each ``*_lines`` function reads one section dict (``Report.sections[...]``) and returns lines; the
terminal report prints them after the follower audit, and the reach commands print them alone.
"""

from __future__ import annotations

from typing import Any

import click

from .reviewed_text import reviewed_lines


def _pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _iv(d: dict[str, Any] | None, digits: int = 1) -> str:
    if not d:
        return "n/a"
    point = d.get("share", d.get("rate"))
    if point is None:
        return "n/a"
    high = "unbounded" if d.get("high") is None else _pct(d.get("high"), digits)
    return f"{_pct(point, digits)} ({_pct(d.get('low'), digits)} – {high})"


def _missing(title: str, section: dict[str, Any]) -> list[str]:
    return [f"{title}: not available — needs {section.get('missing', 'data')}"]


def engagement_lines(s: dict[str, Any]) -> list[str]:
    if not s.get("available"):
        return _missing("Engagement", s)
    per = s["engagements_per_post"]
    lines = [
        f"Engagement ({s['posts']:,} posts, {s['period']['from'][:10]} .. {s['period']['to'][:10]}): "
        f"{per['mean']:,.1f} engagements per post (median {per['median']:,.1f})",
        f"  rate on all followers: {_iv(s.get('engagement_rate_interval') or {'rate': s['engagement_rate']}, 2)}",
        f"  rate on the estimated real followers:  {_iv(s['engagement_rate_real'], 2)}",
    ]
    at = s.get("followers_at_post")
    if at:
        span = f"{at['min']:,.0f}" if at["min"] == at["max"] else f"{at['min']:,.0f} – {at['max']:,.0f}"
        lines.append(f"  each post divided by {at['source']}: {span} followers")
    if (s.get("engagement_rate_real") or {}).get("method"):
        lines.append(f"  interval: {s['engagement_rate_real']['method']}")
    trend = s.get("trend") or {}
    if trend.get("available"):
        el = trend.get("elasticity")
        extra = f" (elasticity {el['slope']:.2f}, 95% {el['low']:.2f} – {el['high']:.2f})" if el else ""
        lines.append(f"  with follower growth: {trend['verdict']}{extra}")
    elif trend:
        lines.append(f"  with follower growth: not available — needs {trend.get('missing')}")
    for a in s.get("around_spikes") or []:
        if a.get("engagements_before") is not None:
            lines.append(
                f"  around the spike of {a['gain']:+,} followers on {a['spike']}: followers {_pct(a['follower_change'], 0)}, "
                f"engagement per post {_pct(a['engagement_change'], 0)} ({a['engagements_before']:,.1f} → {a['engagements_after']:,.1f}), "
                f"rate {_pct(a['rate_before'], 2)} → {_pct(a['rate_after'], 2)}"
            )
    return lines


def whatif_lines(s: dict[str, Any]) -> list[str]:
    if not s.get("available"):
        return _missing("What-if", s)
    lines = [
        f"What-if: buying {s['buy']:,} fake followers → {s['followers_after']:,} followers, fake share "
        f"{_iv(s['fake_share_before'])} → {_iv(s['fake_share_after'])}",
    ]
    if s.get("engagement_rate_before") is not None:
        lines.append(f"  engagement rate {_pct(s['engagement_rate_before'], 2)} → {_pct(s['engagement_rate_after'], 2)}")
        lines.append(f"  without its fake followers the rate would be {_iv(s['without_fake']['engagement_rate'], 2)}")
    return lines


def likers_lines(s: dict[str, Any]) -> list[str]:
    if not s.get("available"):
        return _missing("Likers", s)
    lines = [
        f"Likers of {s.get('post_url') or s['post']}: {s['likes']:,} likes, {s['reposts']:,} reposts, "
        f"{s['engagers']:,} distinct engagers ({s['labelled']:,} labelled; {s['sample_design']['description']})",
    ]
    for label, sh in s["shares"].items():
        lines.append(f"  {label:<9}{_iv(sh):>30}  {sh['count']:>7,}")
    if s["shares"]:
        lines.append(f"  interval: {next(iter(s['shares'].values()))['method']}")
    nf = s.get("not_following") or {}
    if nf.get("available"):
        lines.append(f"  engagers who do not follow the account: {nf['not_following']:,} of {nf['engagers']:,} ({_iv(nf)})")
    else:
        lines.append(f"  engagers who do not follow the account: unknown — needs {nf.get('missing')}")
    return lines + [f"  {line.strip()}" if i else line for i, line in enumerate(reviewed_lines(s.get("reviewed"), "engagers"))]


def growth_lines(s: dict[str, Any]) -> list[str]:
    if not s.get("available"):
        return _missing("Growth", s)
    lines = [
        f"Growth ({s['points']:,} counts, {s['from']} .. {s['to']}): {s['followers_first']:,} → {s['followers_last']:,} followers",
    ]
    if s.get("spikes") is None:
        lines.append(f"  spikes: not available — needs {s.get('spikes_missing')}")
        return lines
    lines.append(f"  spikes in gains (robust z > {s['threshold_z']}, see docs/engagement.md): {len(s['spikes'])}")
    for sp in s["spikes"]:
        lines.append(f"    {sp['date_from']} .. {sp['date']}: +{sp['gain']:,} followers ({sp['excess']:+,.0f} above usual, z = {sp['z']:.1f})")
    for d in s.get("drops") or []:
        lines.append(f"    drop {d['date_from']} .. {d['date']}: {d['gain']:,} followers (z = {d['z']:.1f})")
    for b in s.get("bursts") or []:
        dated = b["dated_by_counts"]
        match = ", ".join(b["matching_spikes"]) or "no spike"
        lines.append(f"  burst #{b['burst']} ({b['size']:,} followers) dated by counts {dated['from']} .. {dated['to']}: {match}")
    return lines


def comparison_lines(s: dict[str, Any]) -> list[str]:
    if not s.get("available"):
        return _missing("Comparison", s)
    lines = [f"Comparison (fake share {_iv(s['fake_share'])}):"]
    w = s["workspace"]
    if w.get("available"):
        lines.append(
            f"  workspace: percentile {_pct(w['percentile'], 0)} ({_pct(w['percentile_low'], 0)} – {_pct(w['percentile_high'], 0)}) "
            f"among {w['peers']} accounts of similar size (median fake share {_pct(w['peer_median_fake_share'])})"
        )
    else:
        lines.append(f"  workspace: not available — needs {w.get('missing')}")
    r = s["reference"]
    if r.get("available"):
        for row in r["rows"]:
            lines.append(f"  {row['statement']} — {row['source']}, {row['published']} ({row['url']})")
    else:
        lines.append(f"  published figures: {r.get('missing')}")
    return lines


def views_lines(s: dict[str, Any]) -> list[str]:
    if not s.get("available"):
        return _missing("Views", s)
    lines = [
        f"Views: {s['judged']:,} items judged; median likes per view {_pct(s['median_likes_per_view'], 2)}, "
        f"comments per view {_pct(s['median_comments_per_view'], 3)}; flagged {s['flagged_count']:,} ({s['method']})",
    ]
    for f in s["flagged"][:10]:
        lines.append(f"    {f['item_id']}: {f['views']:,} views, {f['likes']} likes, {f['comments']} comments — {f['direction']}")
    return lines


RENDERERS = {
    "engagement": engagement_lines, "whatif": whatif_lines, "likers": likers_lines,
    "growth": growth_lines, "comparison": comparison_lines, "views": views_lines,
}


def reach_lines(sections: dict[str, Any]) -> list[str]:
    """Lines for every reach section present in a report (in a fixed order, blank line between)."""
    out: list[str] = []
    for key, render in RENDERERS.items():
        if key in sections and isinstance(sections[key], dict):
            out.append("")
            out.extend(render(sections[key]))
    return out


def _echo(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


def render_growth(section: dict[str, Any]) -> None:
    _echo(growth_lines(section))


def render_views(section: dict[str, Any]) -> None:
    _echo(views_lines(section))


def render_likers(section: dict[str, Any]) -> None:
    _echo(likers_lines(section))
