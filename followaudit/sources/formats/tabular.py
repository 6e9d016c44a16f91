"""CSV (MIB / Twitter v1.1 columns, Instagram exports, anything via ``--map``) and Parquet tables."""

from __future__ import annotations

import csv
import io
import re

import polars as pl

from ... import schema
from ...errors import InputError, MissingColumnsError
from .common import Field, Observed, SourceFrame, parse_dates, reject_frame
from .platforms import TWITTER_V1_FIELDS

KIND_OF: dict[str, str] = {
    "follower_id": "id", "follow_rank": "int", "created_at": "date", "last_active_at": "date", "observed_at": "date",
    "followers_count": "count", "following_count": "count", "posts_count": "count", "likes_count": "count",
    "listed_count": "count", "bio_length": "count", "handle_length": "count", "handle_digits": "count",
    "has_avatar": "bool", "has_url": "bool", "has_location": "bool", "verified": "bool", "private": "bool",
    "self_declared_bot": "bool", "truth_label": "truth", "moderation_labels": "labels_text",
}

# Header synonyms (normalised: lower case, non-alphanumerics -> "_"), with the kind they are read as.
SYNONYMS: dict[str, list[tuple[str, str | None]]] = {
    "follower_id": [(n, None) for n in ("follower_id", "id", "user_id", "userid", "id_str", "pk", "did", "account_id", "uid")],
    "handle": [(n, "str") for n in ("handle", "username", "screen_name", "user_name", "acct", "login", "user")],
    "display_name": [(n, "str") for n in ("display_name", "full_name", "fullname", "name", "displayname")],
    "created_at": [(n, None) for n in ("created_at", "created", "joined", "join_date", "joined_at", "account_created", "creation_date", "createdat")],
    "followers_count": [(n, None) for n in ("followers_count", "follower_count", "followers", "userfollowercount", "num_followers", "edge_followed_by")],
    "following_count": [(n, None) for n in ("following_count", "following", "friends_count", "follows_count", "followings", "userfollowingcount", "num_following", "edge_follow")],
    "posts_count": [(n, None) for n in ("posts_count", "posts", "post_count", "media_count", "usermediacount", "statuses_count", "tweet_count", "num_posts", "statuses")],
    "likes_count": [(n, None) for n in ("likes_count", "favourites_count", "like_count", "likes")],
    "listed_count": [(n, None) for n in ("listed_count",)],
    "bio": [(n, "str") for n in ("bio", "biography", "description", "note")],
    "bio_length": [(n, None) for n in ("bio_length", "userbiographylength", "description_length", "biography_length")],
    "has_avatar": [
        *((n, None) for n in ("has_avatar", "has_profile_pic", "has_profile_picture", "userhasprofilpic")),
        *((n, "avatar") for n in ("profile_pic_url", "profile_pic_url_hd", "profile_image_url_https", "profile_image_url", "avatar")),
    ],
    "has_url": [*((n, None) for n in ("has_url",)), *((n, "present") for n in ("external_url", "url", "website"))],
    "has_location": [*((n, None) for n in ("has_location",)), ("location", "present")],
    "verified": [(n, None) for n in ("verified", "is_verified")],
    "private": [(n, None) for n in ("private", "is_private", "protected", "locked", "userisprivate")],
    "self_declared_bot": [(n, None) for n in ("self_declared_bot", "bot", "is_bot")],
    "last_active_at": [(n, None) for n in ("last_active_at", "last_post_at", "last_status_at", "last_tweet_at", "last_active")],
    "observed_at": [(n, None) for n in ("observed_at", "crawled_at", "updated")],
    "follow_rank": [(n, None) for n in ("follow_rank", "rank")],
    "truth_label": [(n, None) for n in ("truth_label", "label", "is_fake", "isfake", "fake")],
    "handle_length": [(n, None) for n in ("handle_length", "usernamelength", "username_length")],
    "handle_digits": [(n, None) for n in ("handle_digits", "usernamedigitcount", "username_digit_count")],
    "moderation_labels": [(n, None) for n in ("moderation_labels", "labels")],
}

MIB_COLUMNS = {"id", "screen_name", "followers_count", "friends_count", "statuses_count", "created_at"}
INSTAGRAM_HINTS = {"full_name", "biography", "is_private", "media_count", "profile_pic_url", "follower_count", "is_business_account", "external_url"}


def normalise(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def parse_mapping(mapping: dict[str, str] | list[str] | tuple[str, ...] | None) -> dict[str, str]:
    """``--map FIELD=COLUMN`` values (or a dict) -> {canonical field: source column}."""
    if not mapping:
        return {}
    if isinstance(mapping, dict):
        pairs = dict(mapping)
    else:
        pairs = {}
        for item in mapping:
            field, sep, column = item.partition("=")
            if not sep or not field.strip() or not column.strip():
                raise InputError(f"--map {item!r} is not FIELD=COLUMN", "write it like --map follower_id=user_id")
            pairs[field.strip()] = column.strip()
    unknown = sorted(set(pairs) - set(schema.COLUMN_NAMES))
    if unknown:
        raise InputError(
            f"--map names unknown field(s): {', '.join(unknown)}",
            "fields are the canonical columns: " + ", ".join(c for c in schema.COLUMN_NAMES if c not in ("platform", "account", "raw")),
        )
    return pairs


def looks_tabular(columns: list[str]) -> bool:
    """A header of at least two named columns: a CSV (whether or not we know its columns); or one
    column named like a handle or id (a list of screen names)."""
    if len(columns) == 1:
        names = {n for target in ("handle", "follower_id") for n, _ in SYNONYMS[target]}
        return normalise(columns[0]) in names
    return len(columns) > 1 and all(c.strip() for c in columns)


def _sniff_separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    return max(counts, key=lambda s: counts[s]) if max(counts.values()) else ","


def read_csv_frame(data: bytes, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All cells as text plus ``line`` (physical line where each record starts) and ``raw``.

    Records with more fields than the header become rejects; blank lines are skipped.
    """
    text = data.decode("utf-8")
    header_line = text.split("\n", 1)[0]
    sep = _sniff_separator(header_line)
    # Empty cells stay "" (an empty bio is length 0); finish() turns them into nulls for other fields.
    frame = pl.read_csv(
        data, infer_schema=False, separator=sep, truncate_ragged_lines=True, raise_if_empty=False,
        empty_string_is_null=False,
    )
    # Polars gives the values fast; the csv module (C) gives physical lines and field counts.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = next(reader, [])
    starts: list[int] = []
    widths: list[int] = []
    prev_end = reader.line_num
    for row in reader:
        starts.append(prev_end + 1)
        widths.append(len(row))
        prev_end = reader.line_num
    if len(starts) != frame.height:  # the two readers disagree: fall back to record numbers
        starts = list(range(2, frame.height + 2))
        widths = [len(header)] * frame.height
    frame = frame.with_columns(
        pl.Series("line", starts, dtype=pl.Int64), pl.Series("\x00width", widths, dtype=pl.Int64)
    )
    columns = [c for c in frame.columns if c not in ("line", "\x00width")]
    frame = frame.with_columns(pl.struct(columns).struct.json_encode().alias("raw"))
    wide = frame.filter(pl.col("\x00width") > len(header))
    bad = [
        (line, "(record)", f"{width} fields where the header has {len(header)}", raw)
        for line, width, raw in wide.select("line", "\x00width", "raw").iter_rows()
    ]
    frame = frame.filter((pl.col("\x00width") > 0) & (pl.col("\x00width") <= len(header))).drop("\x00width")
    return frame, reject_frame(file, bad)


def csv_block(block: bytes, line_offset: int, names: list[str], sep: str, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One streamed block of CSV records (no header) parsed once: all cells as text plus ``line``.

    Polars reads the block under a synthetic header one column wider than the real one, so a record
    with more fields than the header fills that column and becomes a reject. A record's physical
    line follows from the line breaks inside its cells; when those do not add up to the block's
    lines (blank lines inside, stray quotes) the csv module numbers the records instead.
    """
    width = len(names)
    synthetic = sep.join(f"c{i}" for i in range(width + 1)).encode() + b"\n"
    frame = pl.read_csv(
        synthetic + block, infer_schema=False, separator=sep, truncate_ragged_lines=True, raise_if_empty=False,
        empty_string_is_null=False,
    )
    frame.columns = [*names, "\x00extra"]
    n_lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    if b'"' in block and frame.height:  # only quoted cells can hold line breaks
        breaks = pl.sum_horizontal([pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in frame.columns])
        spans = frame.select((breaks + 1).cast(pl.Int64)).to_series()
    else:
        spans = pl.repeat(1, frame.height, dtype=pl.Int64, eager=True)
    texts: list[bytes] | None = None
    if int(spans.sum() or 0) == n_lines:
        starts = (spans.cum_sum() - spans + 1 + line_offset).alias("line")
        frame = frame.with_columns(starts)
        empty = frame.filter(pl.all_horizontal([pl.col(c).fill_null("") == "" for c in names]))
        if empty.height:  # blank lines read as records of empty cells: drop them
            texts = block.split(b"\n")
            blank = [n for n in empty["line"].to_list() if not texts[n - 1 - line_offset].strip(b"\r")]
            frame = frame.filter(~pl.col("line").is_in(blank))
        wide = frame.filter(pl.col("\x00extra").fill_null("") != "").get_column("line").to_list()
    else:
        frame, wide = _numbered_by_csv_module(frame, block, line_offset, sep, width)
    bad: list[tuple[int, str, str, str]] = []
    if wide:
        texts = texts or block.split(b"\n")
        for n in wide:
            text = texts[n - 1 - line_offset].rstrip(b"\r").decode("utf-8")
            fields = next(csv.reader([text], delimiter=sep), [])
            bad.append((n, "(record)", f"{max(len(fields), width + 1)} fields where the header has {width}", text))
        frame = frame.filter(~pl.col("line").is_in(wide))
    return frame.drop("\x00extra"), reject_frame(file, bad)


def _numbered_by_csv_module(frame: pl.DataFrame, block: bytes, line_offset: int, sep: str,
                            width: int) -> tuple[pl.DataFrame, list[int]]:
    """Physical lines and field counts from the csv module (the rare block Polars' rows do not map)."""
    reader = csv.reader(io.StringIO(block.decode("utf-8"), newline=""), delimiter=sep)
    starts: list[int] = []
    widths: list[int] = []
    prev_end = 0
    for row in reader:
        starts.append(line_offset + prev_end + 1)
        widths.append(len(row))
        prev_end = reader.line_num
    if len(starts) != frame.height:  # the two readers disagree: fall back to record numbers
        starts = list(range(line_offset + 1, line_offset + frame.height + 1))
        widths = [width] * frame.height
    frame = frame.with_columns(pl.Series("line", starts, dtype=pl.Int64), pl.Series("\x00width", widths, dtype=pl.Int64))
    wide = frame.filter(pl.col("\x00width") > width).get_column("line").to_list()
    frame = frame.filter(pl.col("\x00width") > 0).drop("\x00width")
    return frame, wide


def leftover_raw(columns: list[str]) -> pl.Expr:
    """``raw`` of a tabular row: the cells no canonical field was read from, as JSON (null when every
    column was read: the canonical columns are then the whole record, stored once)."""
    if not columns:
        return pl.lit(None, pl.Utf8).alias("raw")
    return pl.struct(columns).struct.json_encode().alias("raw")


def physical_lines(rejects: pl.DataFrame, block: bytes, line_offset: int) -> pl.DataFrame:
    """A CSV reject's raw is the text of its physical line, as it stands in the file."""
    if not rejects.height:
        return rejects
    texts = block.split(b"\n")
    rows = [n - 1 - line_offset for n in rejects["line"].to_list()]
    raws = [texts[i].rstrip(b"\r").decode("utf-8") if 0 <= i < len(texts) else None for i in rows]
    return rejects.with_columns(pl.Series("raw", raws, dtype=pl.Utf8))


def csv_source(
    frame: pl.DataFrame, *, file: str, platform: str | None, mapping: dict[str, str], found: list[str]
) -> SourceFrame:
    """Decide the CSV's layout and build its fields."""
    headers = [c for c in frame.columns if c not in ("line", "raw")]
    by_norm = {}
    for h in headers:
        by_norm.setdefault(normalise(h), h)
    missing = [c for c in mapping.values() if c not in headers]
    if missing:
        raise MissingColumnsError(f"{file} has no column {', '.join(repr(m) for m in missing)} (found: {_listing(found)})")
    if MIB_COLUMNS <= set(by_norm) and not mapping and platform in (None, "twitter"):
        fields = [Field(f.target, by_norm.get(f.source, f.source), f.kind, f.invert) for f in TWITTER_V1_FIELDS]
        frame = _mib_flags(frame, [f.source for f in fields if f.kind == "bool" and f.source in headers])
        return SourceFrame(frame, fields, "twitter", "v1.1 users", "unknown", note="MIB columns")
    fields = [Field(target, column, KIND_OF.get(target, "str")) for target, column in mapping.items()]
    mapped = set(mapping)
    for target, names in SYNONYMS.items():
        if target in mapped:
            continue
        for name, kind in names:
            if name in by_norm:
                fields.append(Field(target, by_norm[name], kind or KIND_OF.get(target, "str")))
                break
    targets = {f.target for f in fields}
    if "follower_id" not in targets:
        handle = next((f for f in fields if f.target == "handle"), None)
        if handle is None:
            raise MissingColumnsError(f"{file} has no follower id column (found: {_listing(found)})")
        fields.insert(0, Field("follower_id", handle.source, "id"))  # exports without ids: the handle is the id
    observed = None
    if "observed_at" not in {f.target for f in fields}:
        frame, observed = _crawl_time_from_age(frame, by_norm, fields)
        if observed is not None:
            fields.append(Field("observed_at", DERIVED_OBSERVED, "date"))
    labels = [f for f in fields if f.kind == "labels_text"]
    for f in labels:
        frame = frame.with_columns(pl.col(f.source).str.split(";").list.eval(pl.element().str.strip_chars()).alias(f.source))
    fields = [Field(f.target, f.source, "labels") if f.kind == "labels_text" else f for f in fields]
    if platform is None:
        platform = "instagram" if INSTAGRAM_HINTS & set(by_norm) else _platform_from_handles(frame, fields)
    layout = "users" if platform != "other" else "followers"
    note = "mapped columns" if mapping else ("export columns" if platform == "instagram" else "columns by name")
    return SourceFrame(frame, fields, platform, layout, "unknown", note=note, observed=observed)


def _platform_from_handles(frame: pl.DataFrame, fields: list[Field]) -> str:
    """``bluesky`` when most handles carry a Bluesky domain (``name.bsky.social``), else ``other``."""
    handle = next((f.source for f in fields if f.target == "handle"), None)
    if handle is None or frame.height == 0:
        return "other"
    bsky = frame.get_column(handle).cast(pl.Utf8).str.strip_chars().str.to_lowercase().str.ends_with(".bsky.social")
    return "bluesky" if bsky.mean() > 0.5 else "other"  # type: ignore[operator]


# Datasets that give each account's age in days at crawl time beside its creation date
# (e.g. the jaschparmar Bluesky set): creation + age is when the record was read.
AGE_DAYS_COLUMNS = ("account_age", "account_age_days", "age_days")
DERIVED_OBSERVED = "\x00observed_from_age"


def _crawl_time_from_age(frame: pl.DataFrame, by_norm: dict[str, str], fields: list[Field]) -> tuple[pl.DataFrame, Observed | None]:
    """Per-record crawl time = created_at + account age (days), when the file gives both."""
    age_col = next((by_norm[n] for n in AGE_DAYS_COLUMNS if n in by_norm), None)
    created = next((f.source for f in fields if f.target == "created_at" and f.kind == "date"), None)
    if age_col is None or created is None:
        return frame, None
    days = frame.get_column(age_col).cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
    when = parse_dates(frame.get_column(created).cast(pl.Utf8).str.strip_chars()) + pl.Series(days * 86_400_000_000).cast(pl.Duration("us"))
    if when.null_count() == when.len():
        return frame, None
    text = when.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").alias(DERIVED_OBSERVED)
    latest = when.max()
    detail = f"crawl time from each record's {created} + {age_col} (days)"
    return frame.with_columns(text), Observed(latest, "dataset", detail)  # type: ignore[arg-type]


def _mib_flags(frame: pl.DataFrame, flags: list[str]) -> pl.DataFrame:
    """MIB writes true flags as ``1`` and false ones as empty; a flag empty in every row is unknown."""
    exprs = []
    for col in flags:
        text = pl.col(col).str.strip_chars().fill_null("")
        if frame.select((text != "").any()).item():
            exprs.append(pl.when(text == "").then(pl.lit("0")).otherwise(pl.col(col)).alias(col))
    return frame.with_columns(exprs) if exprs else frame


def _listing(found: list[str], limit: int = 12) -> str:
    shown = ", ".join(found[:limit])
    return shown + (f", … ({len(found)} in all)" if len(found) > limit else "") if found else "no columns"


def parquet_source(data: bytes, *, file: str, platform: str | None, mapping: dict[str, str]) -> SourceFrame:
    """The canonical table written by ``followaudit export`` (or any table, read like a CSV)."""
    return parquet_frame_source(pl.read_parquet(io.BytesIO(data)), file=file, platform=platform, mapping=mapping)


def parquet_frame_source(frame: pl.DataFrame, *, file: str, platform: str | None, mapping: dict[str, str],
                         line_offset: int = 0) -> SourceFrame:
    """Rows of a Parquet table (the whole file, or one streamed batch starting after ``line_offset`` rows)."""
    canonical = set(frame.columns) <= set(schema.COLUMN_NAMES) and "follower_id" in frame.columns
    frame = frame.with_row_index("line", offset=line_offset + 1).with_columns(pl.col("line").cast(pl.Int64))
    if not canonical or mapping:
        names = [c for c in frame.columns if c != "line"]
        text = frame.with_columns(pl.exclude("line").cast(pl.Utf8, strict=False))
        src = csv_source(text, file=file, platform=platform, mapping=mapping, found=names)
        used = {f.source for f in src.fields}
        src.frame = src.frame.with_columns(leftover_raw([c for c in names if c not in used]))
        return src
    if "raw" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Utf8).alias("raw"))
    fields = [Field(c, c, "id" if c == "follower_id" else "str") for c in frame.columns if c not in ("line", "raw", "platform")]
    platforms = frame.get_column("platform").drop_nulls() if "platform" in frame.columns else pl.Series([], dtype=pl.Utf8)
    found_platform = platform or (platforms.mode().sort().first() if platforms.len() else "other")
    accounts = frame.get_column("account").drop_nulls() if "account" in frame.columns else pl.Series([], dtype=pl.Utf8)
    account = accounts.first() if accounts.len() else None
    return SourceFrame(frame, fields, str(found_platform), "followers", "unknown", account=account, note="canonical table")
