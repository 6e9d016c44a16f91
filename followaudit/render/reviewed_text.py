"""The reviewed-sample block of the terminal report (followers and likers alike)."""

from __future__ import annotations

from typing import Any

from ..schema import LABELS


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _rate(r: dict[str, Any] | None) -> str:
    if not r or r.get("share") is None:
        return "n/a"
    return f"{_pct(r['share'])} ({_pct(r['low'])} – {_pct(r['high'])}, {r['n']:,} reviewed)"


def reviewed_lines(reviewed: dict[str, Any] | None, noun: str = "followers") -> list[str]:
    """Plain lines: the reviewed shares (the headline), the model's error on this audience, kappa."""
    if not reviewed:
        return []
    n = int(reviewed.get("n") or 0)
    lines = [f"\nHeadline from {n:,} reviewed {noun} ({reviewed['design'].get('description', '')}):"]
    for label in LABELS:
        s = reviewed.get(label) or {}
        if s.get("share") is not None:
            lines.append(f"  {label:<9} {_pct(s['share']):>6}  ({_pct(s['low'])} – {_pct(s['high'])})")
    method = (reviewed.get("fake") or {}).get("method")
    if method:
        lines.append(f"  method: {method}; valid whatever the model's error")
    model = reviewed.get("model_on_this_audience")
    if model:
        lines.append(f"  the model on this audience ({model['label']}): sensitivity {_rate(model['sensitivity'])}, "
                     f"specificity {_rate(model['specificity'])}")
    kappa = reviewed.get("kappa")
    if kappa:
        interval = f" ({kappa['low']:.2f} – {kappa['high']:.2f})" if kappa.get("low") is not None else ""
        lines.append(f"  reviewers' agreement: Cohen's kappa {kappa['kappa']:.2f}{interval} on {kappa['n']:,} {noun} ({' and '.join(kappa.get('reviewers', []))})")
    if reviewed.get("reviews_to_halve") is not None:
        lines.append(f"  {reviewed['reviews_to_halve']:,} more reviews would halve the fake share's interval")
    if reviewed.get("cant_tell"):
        lines.append(f"  {reviewed['note']}")
    return lines
