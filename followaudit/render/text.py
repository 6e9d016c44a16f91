"""Terminal rendering of a Report (rich; plain text when stdout is not a terminal)."""

from __future__ import annotations

import sys
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..report.core import Report
from ..report.evidence import evidence_lines, far_warning
from .reach_text import reach_lines
from .reviewed_text import reviewed_lines


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _burst_extra(b: dict) -> str:
    """When the batch followed (exactly, where known), how unlikely by chance, and its kind."""
    out = ""
    if b.get("followed_exact") and b.get("followed_from") and b.get("followed_to"):
        out += f", followed {str(b['followed_from'])[:16].replace('T', ' ')} .. {str(b['followed_to'])[:16].replace('T', ' ')}"
    if b.get("expected_false_alarms") is not None:
        out += f"; expected false alarms {b['expected_false_alarms']:.2g}"
    found_by = b.get("found_by") or []
    if "follow_rate" in found_by:  # only with exact follow times: other audits read as before
        out += "; found by its follow rate" + (" and creation dates" if "creation_date" in found_by else " alone")
    if b.get("kind") == "suspicious":
        out += "; mostly labelled real: a suspicious batch, not shown to be bought"
    return out


def audience_lines(report: Report) -> list[str]:
    """Mass followers, the reachable audience and the model's agreement with platform labels."""
    lines: list[str] = []
    aud = report.audience
    if aud:
        m, r = aud["mass_followers"], aud["reachable"]
        lines += [
            f"Mass followers (follow > {aud['threshold']:,}): {pct(m['share'])} ({pct(m['low'])} – {pct(m['high'])}), "
            f"{m['count']:,} of {aud['followers_with_following_count']:,} with a following count",
            f"Reachable audience (real, not mass followers): {pct(r['share'])} ({pct(r['low'])} – {pct(r['high'])}), {r['count']:,}",
        ]
    agreement = (report.evidence or {}).get("platform_label_agreement") or {}
    if agreement.get("n"):
        lines.append(str(agreement["explanation"]))
    return lines


def render_text(report: Report, file: TextIO | None = None, width: int = 100) -> None:
    console = Console(file=file or sys.stdout, width=width, highlight=False, soft_wrap=False)
    who = f"@{report.account}" if report.account else "(account unknown)"
    console.print(f"[bold]followaudit[/bold] — {who} on {report.platform or 'unknown platform'}, snapshot {report.snapshot}")
    design = report.sample_design.get("description", "full follower list")
    console.print(f"Followers audited: {report.followers_audited:,} ({design})")
    if report.followers_reported:
        console.print(f"Followers reported by the platform: {report.followers_reported:,}")
    console.print(f"Method: {report.method} — {report.method_detail.get('description', '')}")
    level = f"{report.confidence_level:.0%}"
    if report.withheld:  # too little to judge: no shares, no reasons; what it knew and what it needs
        console.print(f"No fake share: {report.withheld}", markup=False)
        for line in evidence_lines(report.evidence):
            console.print(line, markup=False)
        for note in report.notes:
            console.print(f"Note: {note}", markup=False)
        return
    warning = far_warning(report.evidence)
    if warning:
        console.print(Text(warning, style="bold red"))

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("label")
    table.add_column("share", justify="right")
    table.add_column(f"{level} interval", justify="right")
    table.add_column("followers", justify="right")
    if report.corrected:
        table.add_column("corrected", justify="right")
        table.add_column(f"{level} interval", justify="right")
    for label, share in report.shares.items():
        row = [label, pct(share.share), f"{pct(share.low)} – {pct(share.high)}", f"{share.count:,}"]
        if report.corrected:
            c = report.corrected.get(label)
            row += [pct(c["share"]), f"{pct(c['low'])} – {pct(c['high'])}"] if c else ["", ""]
        table.add_row(*row)
    console.print(table)
    console.print(f"Interval: {next(iter(report.shares.values())).method}")
    if report.corrected:
        methods = sorted({c["method"] for c in report.corrected.values() if c})
        console.print("Corrected for the model's measured error: " + "; ".join(methods))
    for line in reviewed_lines(report.reviewed):
        console.print(line, markup=False)
    head = report.headline_shares().get("fake")
    if head is not None:
        console.print(f"Headline: fake {pct(head.share)} ({level} interval {pct(head.low)} – {pct(head.high)})", markup=False)
    for line in evidence_lines(report.evidence):
        console.print(line, markup=False)

    for line in audience_lines(report):
        console.print(line, markup=False)
    if report.top_reasons:
        console.print("\nMost frequent reasons (fake and inactive followers):")
        for reason, count in report.top_reasons:
            console.print(f"  {count:>9,}  {reason}", markup=False)
    if report.bursts:
        console.print(f"\nBought batches found from follow order: {len(report.bursts)}")
        for i, b in enumerate(report.bursts, 1):
            console.print(
                f"  #{i}: {b['size']:,} followers (ranks {b['start_rank']:,}–{b['end_rank']:,}), "
                f"accounts created {str(b['created_from'])[:10]} .. {str(b['created_to'])[:10]}" + _burst_extra(b),
                markup=False,
            )
    if report.rejects:
        first = report.first_reject or {}
        console.print(
            f"\nRejected rows: {report.rejects:,} (first: {first.get('file')}:{first.get('line')}, "
            f"column {first.get('column')}: {first.get('reason')}); see `followaudit rejects {report.snapshot}`",
            markup=False,
        )
    for note in report.notes:
        console.print(f"Note: {note}", markup=False)
    # -- reach sections: engagement, what-if, likers, growth, comparison, views (render/reach_text.py) --
    for line in reach_lines(report.sections):
        console.print(line, markup=False)
