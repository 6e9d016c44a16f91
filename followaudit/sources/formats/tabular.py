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
    frame = pl.read_parquet(io.BytesIO(data))
    canonical = set(frame.columns) <= set(schema.COLUMN_NAMES) and "follower_id" in frame.columns
    frame = frame.with_row_index("line", offset=1).with_columns(pl.col("line").cast(pl.Int64))
    if not canonical or mapping:
        text = frame.with_columns(pl.exclude("line").cast(pl.Utf8, strict=False))
        text = text.with_columns(pl.struct(pl.exclude("line")).struct.json_encode().alias("raw"))
        src = csv_source(text, file=file, platform=platform, mapping=mapping, found=[c for c in frame.columns if c != "line"])
        return src
    if "raw" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Utf8).alias("raw"))
    fields = [Field(c, c, "id" if c == "follower_id" else "str") for c in frame.columns if c not in ("line", "raw", "platform")]
    platforms = frame.get_column("platform").drop_nulls() if "platform" in frame.columns else pl.Series([], dtype=pl.Utf8)
    found_platform = platform or (platforms.mode().sort().first() if platforms.len() else "other")
    accounts = frame.get_column("account").drop_nulls() if "account" in frame.columns else pl.Series([], dtype=pl.Utf8)
    account = accounts.first() if accounts.len() else None
    return SourceFrame(frame, fields, str(found_platform), "followers", "unknown", account=account, note="canonical table")
