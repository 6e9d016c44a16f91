"""CSV rendering: one row per follower with its label and reasons."""

from __future__ import annotations

import io

import polars as pl


def render_csv(labels: pl.DataFrame, header: bool = True) -> str:
    """``follower_id, handle, label, probability, reasons`` (reasons joined with "; ")."""
    out = labels.select(
        "follower_id",
        "handle",
        "label",
        pl.col("probability").round(4),
        pl.col("reasons").list.join("; "),
    )
    buf = io.StringIO()
    out.write_csv(buf, include_header=header)
    return buf.getvalue()
