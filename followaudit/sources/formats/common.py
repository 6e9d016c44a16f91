"""What every importer shares: the result types, field specs, vectorised parsing and validation.

A format module turns a file into a *flat source frame*: one row per record with ``line`` (1-based
physical line), ``raw`` (the record's original text) and string columns named after the source
fields (nested JSON fields as ``a.b``). It then describes how source columns map to canonical
columns with a list of :class:`Field`. :func:`finish` does the rest for every format alike: parse
(vectorised), send bad rows to rejects with file/line/column/reason, drop duplicate ids, derive
``follow_rank`` and conform to the canonical schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from ... import schema
from ...config import FILE_ORDERS
from ...errors import BadRowError

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.Utf8(),
    "line": pl.Int64(),
    "column": pl.Utf8(),
    "reason": pl.Utf8(),
    "raw": pl.Utf8(),
}

ORDERS = FILE_ORDERS

_PLATFORM_NAMES = {
    "twitter": "Twitter",
    "instagram": "Instagram",
    "bluesky": "Bluesky",
    "mastodon": "Mastodon",
    "other": "generic",
}


@dataclass(frozen=True)
class Detected:
    """What the importer decided the file is."""

    platform: str  # twitter | instagram | bluesky | mastodon | other
    fmt: str  # csv | json | jsonl | parquet (+ "gzip " prefix in describe when compressed)
    layout: str  # e.g. "v1.1 users", "MIB columns", "getFollowers pages"
    order: str  # newest-first | oldest-first | unknown | file (ranks given by the file)
    compressed: bool = False
    note: str = ""  # e.g. "MIB columns"

    def describe(self) -> str:
        """One line for the terminal, e.g. ``detected: Twitter v1.1 users, CSV (MIB columns), order unknown``."""
        name = _PLATFORM_NAMES.get(self.platform, self.platform)
        notes = ", ".join(n for n in (self.note, "gzip" if self.compressed else "") if n)
        fmt = self.fmt.upper() + (f" ({notes})" if notes else "")
        order = "ranks from the file" if self.order == "file" else f"order {self.order}"
        return f"detected: {name} {self.layout}, {fmt}, {order}"


@dataclass(frozen=True)
class Observed:
    """When a file's profiles were observed, and what says so (``source``: record, dataset, flag, ...)."""

    at: datetime
    source: str
    detail: str = ""


@dataclass
class ParsedFile:
    """The canonical followers of one file, its rejected rows, and what it was detected as."""

    followers: pl.DataFrame
    rejects: pl.DataFrame
    detected: Detected
    account: str | None = None
    n_without_profile: int = 0  # follower-id lists: followers whose profile was not in --profiles
    observed: Observed | None = None


@dataclass(frozen=True)
class Field:
    """Map one source column to one canonical column.

    ``kind`` says how the text is parsed and validated:
    ``id`` (required, non-empty), ``str``, ``count`` (integer >= 0), ``int``, ``bool``, ``date``,
    ``epoch`` (seconds), ``present`` (non-empty text -> true), ``avatar`` (image URL -> is it a real
    picture; missing -> null), ``avatar_opt`` (missing -> false: Bluesky/Mastodon omit it when unset;
    missing in every record -> null: the file does not carry it),
    ``html`` (tags stripped), ``labels`` (list of {val}), ``truth`` (human/fake, 0/1 -> real/fake),
    ``fields_url`` (Mastodon profile fields containing a link).
    Several fields may target the same column: the first non-null value wins.
    """

    target: str
    source: str
    kind: str = "str"
    invert: bool = False


VALIDATED = {"id", "count", "int", "bool", "date", "epoch"}
# Kinds that read a missing value as "not set" (false): when the column is empty in every row the
# source did not carry the field at all, and it stays null (missing evidence is missing).
NULL_WHEN_ABSENT = ("present", "avatar_opt")

TRUE_WORDS = ("true", "1", "yes", "y", "t")
FALSE_WORDS = ("false", "0", "no", "n", "f")

# Tried in order; the first format that parses the first value is tried alone first (fast path).
DATE_FORMATS = (
    "%a %b %d %H:%M:%S %z %Y",  # Twitter v1.1: Mon Nov 29 21:18:15 +0000 2010
    "%Y-%m-%dT%H:%M:%S%.f%#z",  # ISO with zone: 2013-12-14T04:35:55.000Z
    "%Y-%m-%dT%H:%M:%S%.f",  # ISO without zone (taken as UTC)
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",  # Mastodon last_status_at is a date only
    "%d-%m-%Y %H.%M",  # spreadsheet-mangled MIB crawl times: 14-02-2015 10.40
    "%b %d, %Y",  # YouTube Studio exports: Mar 4, 2025
)
SLASH_DATE = r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$"
MIN_EPOCH_SECONDS = 1e8  # 1973: smaller numbers (a bare year, a count) are not times


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def _stripped(col: str) -> pl.Expr:
    """Source text with surrounding blanks removed (``_clean`` without the empty -> null)."""
    return pl.col(col).cast(pl.Utf8).str.strip_chars()


def _clean(col: str) -> pl.Expr:
    """Source text with surrounding blanks removed; empty becomes null."""
    text = _stripped(col)
    return pl.when(text == "").then(None).otherwise(text)


def _blank_to_null(col: str) -> pl.Expr:
    text = pl.col(col).cast(pl.Utf8)
    return pl.when(text == "").then(None).otherwise(text)


def parse_dates(text: pl.Series) -> pl.Series:
    """Parse date text of any supported format to UTC (vectorised; unparseable -> null)."""
    dtype = schema.UTC_TS
    first = text.drop_nulls().head(1)
    order = list(DATE_FORMATS)
    if first.len():
        for fmt in DATE_FORMATS:
            if first.str.strptime(dtype, fmt, strict=False).null_count() == 0:
                order.remove(fmt)
                order.insert(0, fmt)
                break
    if order[0] == DATE_FORMATS[0]:
        fast = _twitter_utc(text)
        if fast.null_count() == text.null_count():  # every date in Twitter's own form: as parsed below
            return fast.alias(text.name)
    out = text.str.strptime(dtype, order[0], strict=False)
    missing = out.is_null() & text.is_not_null()
    if missing.any():
        # Mixed formats in one column: fill the gaps with the other formats (and epoch seconds).
        alternatives = [text.str.strptime(dtype, fmt, strict=False) for fmt in order[1:]]
        slash = slash_date_format(text)
        if slash:
            alternatives.append(text.str.strip_chars().str.strptime(dtype, slash, strict=False))
        alternatives.append(parse_epoch(text))
        out = pl.select(pl.coalesce([out, *alternatives])).to_series()
    return out.alias(text.name)


_WEEKDAYS = {i + 1: f"{day} " for i, day in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))}


def _twitter_utc(text: pl.Series) -> pl.Series:
    """Twitter v1.1 dates written in UTC (``Fri Nov 29 04:51:33 +0000 2024``), null for any other text.

    The same values as the first of ``DATE_FORMATS`` for these texts (the weekday checked the same
    way), at about half its CPU: the offset is matched as the literal ``+0000`` and the weekday
    compared afterwards, which Polars parses far faster than ``%z`` and ``%a``.
    """
    # No cache: account and post times are nearly all distinct, and the cache's lookups cost ~25%.
    parsed = text.str.slice(4).str.strptime(pl.Datetime("us"), "%b %d %H:%M:%S +0000 %Y", strict=False, cache=False)
    weekday = parsed.dt.weekday().replace_strict(_WEEKDAYS, return_dtype=pl.Utf8)
    return pl.select(pl.when(text.str.slice(0, 4) == weekday).then(parsed.dt.replace_time_zone("UTC"))).to_series()


def slash_date_format(text: pl.Series) -> str | None:
    """Day/month order of a column's ``a/b/yyyy`` dates, decided by the column, never assumed.

    A first number above 12 anywhere means day first; a second above 12 means month first. When no
    value tells (every part is 12 or less), or values contradict each other, the dates stay
    unreadable (null) rather than being silently read the US way.
    """
    parts = text.str.extract_groups(SLASH_DATE)
    first = parts.struct.field("1").cast(pl.Int32, strict=False)
    second = parts.struct.field("2").cast(pl.Int32, strict=False)
    day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
    if day_first == month_first:
        return None
    return "%d/%m/%Y" if day_first else "%m/%d/%Y"


def parse_epoch(text: pl.Series) -> pl.Series:
    seconds = text.cast(pl.Float64, strict=False)
    seconds = pl.select(pl.when(seconds >= MIN_EPOCH_SECONDS).then(seconds)).to_series()
    micros = (seconds * 1_000_000).round(0).cast(pl.Int64, strict=False)
    return pl.select(pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")).to_series().alias(text.name)


def parse_ints(text: pl.Series) -> pl.Series:
    """Integers; ``12.0`` (spreadsheet exports) is accepted, ``1.5`` and ``abc`` are not."""
    out = text.cast(pl.Int64, strict=False)
    missing = out.is_null() & text.is_not_null()
    if missing.any():
        as_float = text.cast(pl.Float64, strict=False)
        whole = as_float.is_finite() & (as_float == as_float.round(0)) & (as_float.abs() < 9e18)
        out = pl.select(pl.when(out.is_null() & whole).then(as_float.cast(pl.Int64, strict=False)).otherwise(out)).to_series()
    return out.alias(text.name)


def parse_bools(text: pl.Series) -> pl.Series:
    # JSON booleans decode to exactly "true"/"false": two comparisons instead of lowercasing every
    # value and two set lookups (~20x less CPU), taken only when no other word is present.
    true = text == "true"
    if int((true | (text == "false")).sum()) == text.len() - text.null_count():
        return true.alias(text.name)
    lower = text.str.to_lowercase()
    return pl.select(
        pl.when(lower.is_in(TRUE_WORDS)).then(True).when(lower.is_in(FALSE_WORDS)).then(False).otherwise(None)
    ).to_series().alias(text.name)


def _reason_for(kind: str, source: str, text: pl.Expr, parsed: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(is_bad, reason) expressions for one validated source column."""
    shown = pl.lit("'") + text.str.slice(0, 60) + pl.lit("'")
    if kind == "id":
        return text.is_null(), pl.lit("missing follower_id")
    if kind == "count":
        bad_num = text.is_not_null() & parsed.is_null()
        negative = parsed.is_not_null() & (parsed < 0)
        reason = pl.when(negative).then(pl.lit("negative count: ") + text).otherwise(pl.lit("not a number: ") + shown)
        return bad_num | negative, reason
    if kind == "int":
        return text.is_not_null() & parsed.is_null(), pl.lit("not an integer: ") + shown
    if kind == "bool":
        return text.is_not_null() & parsed.is_null(), pl.lit("not a boolean: ") + shown
    # date / epoch
    return text.is_not_null() & parsed.is_null(), pl.lit("unparseable date: ") + shown


def _parsed_name(source: str) -> str:
    return f"{source}\x00parsed"


def _parse_column(frame: pl.DataFrame, source: str, kind: str) -> pl.Series:
    text = frame.get_column(source)
    if kind in ("count", "int"):
        return parse_ints(text)
    if kind == "bool":
        return parse_bools(text)
    if kind == "date":
        return parse_dates(text)
    if kind == "epoch":
        return parse_epoch(text)
    return text


def _value(f: Field) -> pl.Expr:
    """The canonical value of one field from the cleaned/parsed source frame."""
    text = pl.col(f.source)
    parsed = pl.col(_parsed_name(f.source))
    kind = f.kind
    if kind in ("count", "int", "date", "epoch"):
        return parsed
    if kind == "bool":
        return ~parsed if f.invert else parsed
    if kind == "present":
        return text.is_not_null()
    if kind in ("avatar", "avatar_opt"):
        default = text.str.contains("default_profile_images", literal=True) | text.str.ends_with("/missing.png")
        value = pl.when(text.is_null()).then(None if kind == "avatar" else False).otherwise(~default)
        return value
    if kind == "html":
        stripped = text.str.replace_all(r"<br\s*/?>|</p>\s*<p>", "\n").str.replace_all(r"<[^>]*>", "")
        for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&apos;", "'"), ("&amp;", "&")):
            stripped = stripped.str.replace_all(entity, char, literal=True)
        return stripped
    if kind == "truth":
        lower = text.str.to_lowercase()
        return (
            pl.when(lower.is_in(["fake", "bot", "spam", "spammer", "1", "true"]))
            .then(pl.lit("fake"))
            .when(lower.is_in(["human", "real", "genuine", "0", "false"]))
            .then(pl.lit("real"))
            .when(lower.is_in(["inactive"]))
            .then(pl.lit("inactive"))
            .otherwise(None)
        )
    return text  # str, id, labels, fields_url are prepared by the format module


def finish(
    frame: pl.DataFrame,
    fields: list[Field],
    *,
    file: str,
    platform: str,
    order: str,
    account: str | None,
    strict: bool,
    extra_rejects: pl.DataFrame | None = None,
    keep_without_id: bool = False,
    keep_line: bool = False,
    trim: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate, map and conform a flat source frame. Returns (followers, rejects).

    ``frame`` has ``line`` and ``raw`` plus the source columns named in ``fields``. Source columns
    absent from the frame count as null (a CSV without a ``location`` column, say).
    """
    rejects = [extra_rejects] if extra_rejects is not None and extra_rejects.height else []
    present = set(frame.columns)
    fields = [f for f in fields if f.source in present]
    sources = list(dict.fromkeys(f.source for f in fields))
    kinds: dict[str, str] = {}
    for f in fields:
        kinds.setdefault(f.source, f.kind)
    # Text columns: strip blanks, empty -> null (lists and typed columns are left alone).
    text_sources = [s for s in sources if frame.schema[s] == pl.Utf8]
    # Values that are parsed or tested for presence are trimmed ("" -> null); free text is left as
    # it is (trimming long bios is costly, and an empty bio is a fact: length 0).
    trimmed = [s for s in text_sources if kinds[s] not in ("str", "html") or s in _id_like(fields)]
    # JSON values carry no padding: only "" -> null is needed there (trimming is ~40% of this step).
    frame = frame.with_columns([(_clean(s) if trim else _blank_to_null(s)).alias(s) for s in trimmed])
    parsed = [_parse_column(frame, s, kinds[s]).alias(_parsed_name(s)) for s in sources if kinds[s] in VALIDATED and s in text_sources]
    frame = frame.with_columns(parsed)

    # Validation: first bad column of each row gives the reject's column and reason.
    checks = []
    for s in sources:
        kind = kinds[s]
        if kind in VALIDATED and kind != "id" and s in text_sources:
            bad, reason = _reason_for(kind, s, pl.col(s), pl.col(_parsed_name(s)))
            checks.append((s, bad, reason))
    if not keep_without_id:
        # The id may come from any of several columns (id_str, id): missing only when all are empty.
        id_sources = [s for s in sources if kinds[s] == "id"]
        missing = pl.all_horizontal([pl.col(s).is_null() for s in id_sources]) if id_sources else pl.lit(True)
        checks.insert(0, (id_sources[0] if id_sources else "follower_id", missing, pl.lit("missing follower_id")))
    if checks:
        col_expr = pl.when(checks[0][1]).then(pl.lit(checks[0][0]))
        reason_expr = pl.when(checks[0][1]).then(checks[0][2])
        for s, bad, reason in checks[1:]:
            col_expr = col_expr.when(bad).then(pl.lit(s))
            reason_expr = reason_expr.when(bad).then(reason)
        frame = frame.with_columns(col_expr.otherwise(None).alias("\x00col"), reason_expr.otherwise(None).alias("\x00reason"))
        bad_rows = frame.filter(pl.col("\x00col").is_not_null())
        if bad_rows.height:
            rejects.append(
                bad_rows.select(
                    pl.lit(file).alias("file"), pl.col("line").cast(pl.Int64), pl.col("\x00col").alias("column"),
                    pl.col("\x00reason").alias("reason"), pl.col("raw").cast(pl.Utf8),
                )
            )
            frame = frame.filter(pl.col("\x00col").is_null())

    # Mapping: several fields may fill one canonical column; the first non-null wins.
    targets: dict[str, list[pl.Expr]] = {}
    unknown = {s for s in sources if kinds[s] in NULL_WHEN_ABSENT and frame.get_column(s).null_count() == frame.height}
    for f in fields:
        # A "present"/"avatar_opt" column empty in every row was not collected: unknown, not false.
        value = pl.lit(None, pl.Boolean) if f.source in unknown else _value(f)
        targets.setdefault(f.target, []).append(value)
    exprs = [(vals[0] if len(vals) == 1 else pl.coalesce(vals)).alias(t) for t, vals in targets.items()]
    out = frame.select(pl.col("line"), pl.col("raw"), *exprs)
    # n_unique: one hash pass counting, not a mask of every row (~4x less CPU on unique ids).
    if "follower_id" in out.columns and out.get_column("follower_id").n_unique() < out.height:
        # Duplicates: the first line keeps the follower, later ones are rejected naming it.
        # Rows are told apart by position, not line: the elements of a one-line JSON array share it.
        out = out.with_columns(pl.col("line").first().over("follower_id").alias("\x00first"),
                               (pl.int_range(pl.len()).over("follower_id") > 0).alias("\x00again"))
        dups = out.filter(pl.col("\x00again"))
        if dups.height:
            rejects.append(
                dups.select(
                    pl.lit(file).alias("file"), pl.col("line").cast(pl.Int64), pl.lit(_label(fields, "follower_id")).alias("column"),
                    (pl.lit("duplicate follower_id ") + pl.col("follower_id") + pl.lit(" (first seen on line ")
                     + pl.col("\x00first").cast(pl.Utf8) + pl.lit(")")).alias("reason"),
                    pl.col("raw").cast(pl.Utf8),
                )
            )
            out = out.filter(~pl.col("\x00again"))
        out = out.drop("\x00first", "\x00again")
    out = out.with_columns(pl.lit(platform).alias("platform"))
    if account is not None:
        out = out.with_columns(pl.lit(account).alias("account"))
    if "follow_rank" not in out.columns or out.get_column("follow_rank").null_count() == out.height:
        out = out.with_columns(schema.ranks_from_order(out.height, order if order in ORDERS else "unknown"))
    all_rejects = pl.concat([r.select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA) for r in rejects]) if rejects else empty_rejects()
    all_rejects = all_rejects.sort("line", maintain_order=True)
    if strict and all_rejects.height:
        raise bad_row_error(all_rejects.row(0, named=True))
    followers = schema.conform(out.drop("line"))
    if keep_line:  # streaming callers need each row's line for cross-batch duplicate checks
        followers = followers.with_columns(out.get_column("line"))
    return followers, all_rejects


def _id_like(fields: list[Field]) -> set[str]:
    """Sources of short identifying text (ids, handles) that are trimmed even though free text."""
    return {f.source for f in fields if f.target in ("follower_id", "handle", "truth_label")}


def _label(fields: list[Field], target: str) -> str:
    for f in fields:
        if f.target == target:
            return f.source
    return target


def bad_row_error(reject: dict) -> BadRowError:
    return BadRowError(f"{reject['file']}:{reject['line']}: column {reject['column']}: {reject['reason']}")


def reject_frame(file: str, rows: list[tuple[int, str, str, str]]) -> pl.DataFrame:
    """Rejects from (line, column, reason, raw) tuples (the slow path's few bad records)."""
    if not rows:
        return empty_rejects()
    lines, cols, reasons, raws = zip(*rows, strict=True)
    return pl.DataFrame(
        {"file": [file] * len(rows), "line": list(lines), "column": list(cols), "reason": list(reasons), "raw": list(raws)},
        schema=REJECT_SCHEMA,
    )


@dataclass
class SourceFrame:
    """A flat source frame plus what a format module found out about it."""

    frame: pl.DataFrame
    fields: list[Field]
    platform: str
    layout: str
    default_order: str
    account: str | None = None
    rejects: pl.DataFrame = field(default_factory=empty_rejects)
    note: str = ""
    # When the file itself says when its profiles were read (e.g. Bluesky's latest indexedAt), and how.
    observed: Observed | None = None
