"""How a canonical Parquet file read in place maps onto the workspace's follower columns.

Files written by other tools (pandas, Polars, Spark) rarely match the table's types exactly; some
differences are ones an import would undo without judging anything, so the file is still read in
place and each reader sees what the import would have stored:

* a column the file lacks (other than the id, the platform and a length derived from a text it has)
  reads as null, as the import stores it;
* a narrower integer reads as BIGINT;
* a time zone-aware timestamp in nanoseconds reads in microseconds, truncated as Polars' cast (the
  import's) truncates.

Anything else (another type, a naive timestamp, an extra column, which the import would keep in
``raw``) means the file is imported instead. The same plan gives DuckDB's view and Polars' reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from ..schema import COLUMN_NAMES, SCHEMA

SAME, ABSENT, WIDEN, TRUNCATE = "same", "absent", "widen", "truncate"
_NARROW_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT", "UINTEGER"}
_NANOSECOND_UTC = "TIMESTAMPTZ_NS"
_REQUIRED = ("follower_id", "platform")
_DERIVED_FROM = {"bio_length": "bio", "handle_length": "handle", "handle_digits": "handle"}  # schema.conform fills these


def column_plan(file_types: dict[str, str], table_types: dict[str, str]) -> dict[str, str] | None:
    """Per canonical column, how it reads from a file whose columns have ``file_types`` (DuckDB's
    type names): ``same``, ``absent``, ``widen`` or ``truncate``; None when the file cannot be read
    as an import would store it. ``table_types``: the follower table's types."""
    return _plan(file_types, table_types, COLUMN_NAMES, _DUCKDB_TYPES)


def file_plan(path: str | Path, columns: list[str]) -> dict[str, str] | None:
    """``column_plan`` of ``columns`` alone, from the file's schema as Polars reads it: no workspace
    is needed, so an audit starts reading a file's follow order before it has opened one. None when
    the file cannot be read in place or one of ``columns`` would not read so (``column_plan``, over
    the whole file once the workspace is open, decides: a plan from here stands only if it agrees)."""
    try:
        found = pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError):
        return None
    return _plan(dict(found), SCHEMA, columns, _POLARS_TYPES)


# The widenings an import does, in each reader's names of types: (64-bit integer, the narrower
# integers, UTC microseconds, UTC nanoseconds).
_DUCKDB_TYPES: tuple[Any, Any, Any, Any] = ("BIGINT", _NARROW_INTEGERS, "TIMESTAMP WITH TIME ZONE", _NANOSECOND_UTC)
_POLARS_TYPES: tuple[Any, Any, Any, Any] = (pl.Int64, (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32),
                                            pl.Datetime("us", "UTC"), pl.Datetime("ns", "UTC"))


def _plan(found: dict[str, Any], wanted: Mapping[str, Any], columns: Iterable[str],
          types: tuple[Any, Any, Any, Any]) -> dict[str, str] | None:
    """``column_plan`` of ``columns`` for a file whose columns have the types ``found``, against the
    table's ``wanted``, both in one reader's names (``types``)."""
    integer, narrow, microseconds, nanoseconds = types
    if set(found) - set(COLUMN_NAMES) or any(c not in found for c in _REQUIRED):
        return None
    plan: dict[str, str] = {}
    for column in columns:
        kind, target = found.get(column), wanted[column]
        if kind is None:
            source = _DERIVED_FROM.get(column)
            if source is not None and source in found:
                return None  # the import would derive it from the text
            plan[column] = ABSENT
        elif kind == target:
            plan[column] = SAME
        elif target == integer and kind in narrow:
            plan[column] = WIDEN
        elif target == microseconds and kind == nanoseconds:
            plan[column] = TRUNCATE
        else:
            return None
    return plan


def is_identity(plan: dict[str, str]) -> bool:
    return all(kind == SAME for kind in plan.values())


def sql_columns(plan: dict[str, str], table_types: dict[str, str]) -> str:
    """The select list that reads a planned file as the table's columns, in canonical order."""
    out = []
    for column in COLUMN_NAMES:
        kind, wanted, quoted = plan[column], table_types[column], f'"{column}"'
        if kind == ABSENT:
            out.append(f"NULL::{wanted} AS {quoted}")
        elif kind == WIDEN:
            out.append(f"CAST({quoted} AS BIGINT) AS {quoted}")
        elif kind == TRUNCATE:  # floor to microseconds (DuckDB's own cast rounds)
            ns = f"epoch_ns({quoted})"
            out.append(f"make_timestamp(({ns} - ((({ns} % 1000) + 1000) % 1000)) // 1000)::TIMESTAMPTZ AS {quoted}")
        else:
            out.append(quoted)
    return ", ".join(out)


def polars_columns(plan: dict[str, str], columns: list[str]) -> tuple[list[str], list[pl.Expr]]:
    """The file columns to read for ``columns``, and the expressions that give them the table's types."""
    read = [c for c in columns if plan[c] != ABSENT]
    exprs = [pl.lit(None, SCHEMA[c]).alias(c) if plan[c] == ABSENT else
             pl.col(c) if plan[c] == SAME else pl.col(c).cast(SCHEMA[c]) for c in columns]
    return read, exprs


def scan_planned(path: str | Path, plan: dict[str, str], columns: list[str]) -> pl.LazyFrame:
    """``columns`` of a planned file as Polars reads them with the table's types."""
    read, exprs = polars_columns(plan, columns)
    frame = pl.scan_parquet(path).select(read)
    return frame if is_identity(plan) else frame.select(exprs)


def parquet_slices(frame: pl.LazyFrame, rows: int, groups: list[int] | None = None) -> Iterator[pl.DataFrame]:
    """``frame`` (a Parquet scan) collected ``rows`` at a time: memory bounded by a slice.

    ``groups``: the rows of each of the file's row groups, in order; the slices then follow them
    (``slice_spans``). The first slice is a quarter of the others: a pipeline that reads the next
    slice while it works on this one waits for the first alone, so a small one starts the work
    ~0.1 s sooner (500k rows)."""
    total = frame.select(pl.len()).collect().item()
    if groups is not None and sum(groups) == total:
        for start, size in slice_spans(groups, rows):
            yield frame.slice(start, size).collect()
        return
    start, size = 0, max(1, rows // 4)
    while start < total:
        yield frame.slice(start, size).collect()
        start, size = start + size, rows


def slice_spans(groups: list[int], rows: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of slices of about ``rows`` that follow row groups of ``groups`` rows:
    whole groups together while they fit in ``rows``, a group of 1.5x ``rows`` or more cut in equal
    pieces, and the first slice a quarter of ``rows``, then the rest of its span. A slice across a
    group's boundary decodes pages of both (the 3M benchmark file's 250k-row groups read in 250k
    slices that started a quarter late took ~50% more CPU than slices on the groups)."""
    spans: list[tuple[int, int]] = []
    start = pending_start = pending = 0
    for size in groups:
        if pending and pending + size > rows:
            spans.append((pending_start, pending))
            pending = 0
        pieces = max(1, round(size / rows))  # a group up to ~1.5x ``rows`` is read whole
        if pieces > 1:
            cuts = [start + size * i // pieces for i in range(pieces + 1)]
            spans.extend((a, b - a) for a, b in zip(cuts, cuts[1:], strict=False))
        elif size:
            if not pending:
                pending_start = start
            pending += size
        start += size
    if pending:
        spans.append((pending_start, pending))
    quarter = rows // 4
    if spans and 0 < quarter < spans[0][1]:
        offset, size = spans[0]
        spans[0:1] = [(offset, quarter), (offset + quarter, size - quarter)]
    return spans
