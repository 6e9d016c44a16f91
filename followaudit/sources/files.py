"""Read a follower file of any supported kind into the canonical table, with its rejected rows.

Supported (autodetected; ``platform`` / ``fmt`` override): Twitter/X API v1.1 user objects (JSON,
JSONL, CSV with the MIB columns), Twitter/X API v2 users and response pages, Instagram (InstaFake
JSON, CSV exports), Bluesky profileView(Detailed) objects and saved getFollowers / getProfiles pages,
Mastodon Account entities and saved pages, follower id lists in follow order (+ a profiles file), the
canonical Parquet written by ``followaudit export``, any CSV through ``mapping``; gzip of all of these.

The format modules live in ``followaudit.sources.formats``; this module opens the file, checks it
is usable as a whole (empty, binary, encoding, truncated) and dispatches.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path
from typing import Any, TypedDict

import polars as pl

from ..config import FILE_FORMATS
from ..errors import (
    EmptyInputError,
    InputError,
    TruncatedJSONError,
    UnknownFormatError,
)
from ..schema import PLATFORMS, conform
from .formats import idlists, jsonrec, platforms, stream, tabular
from .formats.common import (
    ORDERS,
    Detected,
    Field,
    ParsedFile,
    SourceFrame,
    empty_rejects,
    finish,
)
from .formats.textio import check_not_binary, to_utf8

__all__ = ["Detected", "ParsedFile", "ReadOptions", "read_followers", "FORMATS", "ORDERS", "PLATFORMS"]

FORMATS = FILE_FORMATS
_PAGE_KEYS = (("followers", "bluesky", "getFollowers pages"), ("profiles", "bluesky", "getProfiles pages"),
              ("data", "twitter", "v2 response pages"), ("accounts", "mastodon", "saved pages"),
              ("relationships_followers", "instagram", "followers export"))


class ReadOptions(TypedDict, total=False):
    """How to read a follower file: the keyword arguments of ``read_followers`` (and ``import_file``)."""

    platform: str | None
    fmt: str | None
    order: str | None
    mapping: dict[str, str] | list[str] | tuple[str, ...] | None
    strict: bool
    encoding: str
    account: str | None
    profiles: str | Path | None


def read_followers(
    path: str | Path,
    *,
    platform: str | None = None,
    fmt: str | None = None,
    order: str | None = None,
    mapping: dict[str, str] | list[str] | tuple[str, ...] | None = None,
    strict: bool = False,
    encoding: str = "utf-8",
    account: str | None = None,
    profiles: str | Path | None = None,
) -> ParsedFile:
    """Parse one follower file into canonical followers and rejects.

    ``order`` is how the file is ordered (``newest-first``, ``oldest-first``, ``unknown``; default per
    format); a rank column in the file wins. ``mapping`` maps canonical fields to CSV columns.
    ``strict`` raises :class:`BadRowError` on the first bad row instead of rejecting it.
    ``profiles`` is the profile file for a follower id list.
    """
    check_options(platform, fmt, order)
    name = str(path)
    the_plan = stream.plan(path, platform=platform, fmt=fmt, order=order, mapping=mapping, profiles=profiles)
    if the_plan is not None:
        return _read_streamed(path, the_plan, name, strict=strict, encoding=encoding, account=account)
    data, compressed = load_bytes(path, encoding)
    fields_map = tabular.parse_mapping(mapping)
    src, detected_fmt = _source(data, name, platform=platform, fmt=fmt, mapping=fields_map, order=order)
    if isinstance(src, _IdList):
        return _read_id_list(src, name, detected_fmt, compressed, platform=platform, order=order, strict=strict,
                             encoding=encoding, account=account, profiles=profiles)
    rank_sources = [f.source for f in src.fields if f.target == "follow_rank" and f.source in src.frame.columns]
    has_rank = any(src.frame.get_column(c).null_count() < src.frame.height for c in rank_sources)
    use_order = "file" if has_rank else (order or src.default_order)
    followers, rejects = finish(
        src.frame, src.fields, file=name, platform=src.platform, order=use_order, account=account,
        strict=strict, extra_rejects=src.rejects,
    )
    if detected_fmt == "csv" and rejects.height:
        rejects = _original_lines(rejects, data)
    detected = Detected(src.platform, detected_fmt, src.layout, use_order, compressed, src.note)
    return ParsedFile(followers, rejects, detected, account=account or src.account, observed=src.observed)


def _original_lines(rejects: pl.DataFrame, data: bytes) -> pl.DataFrame:
    """A CSV reject's raw is the text of its physical line, as it stands in the file."""
    lines = data.split(b"\n")
    texts = [lines[n - 1].rstrip(b"\r").decode("utf-8") if 0 < n <= len(lines) else None for n in rejects["line"].to_list()]
    return rejects.with_columns(pl.Series("raw", texts, dtype=pl.Utf8))


def _read_streamed(path: str | Path, the_plan: stream.Plan, name: str, *, strict: bool, encoding: str,
                   account: str | None) -> ParsedFile:
    batches = list(stream.iter_batches(path, the_plan, name=name, encoding=encoding, strict=strict, account=account))
    followers = pl.concat([b.followers for b in batches]) if batches else conform(pl.DataFrame()).with_columns(pl.lit(None, pl.Int64).alias("line"))
    rejects = pl.concat([b.rejects for b in batches]) if batches else empty_rejects()
    followers = followers.with_row_index("\x00row")  # lines are not unique in a one-line JSON array
    dups = stream.duplicates(followers.select("follower_id", "line", "\x00row"))
    if dups.height:  # repeats across blocks: the first line keeps the follower
        dropped = dups.join(followers.select("\x00row", "raw"), on="\x00row", how="left")
        if the_plan.kind == "csv":  # a CSV reject's raw is its line as in the file
            texts = stream.line_texts(path, dropped["line"].to_list(), encoding)
            dropped = dropped.with_columns(pl.col("line").replace_strict(texts, default=None, return_dtype=pl.Utf8).alias("raw"))
        rejects = pl.concat([rejects, stream.duplicate_rejects(dropped, name, the_plan.id_column)]).sort("line")
        followers = followers.join(dups.select("\x00row"), on="\x00row", how="anti", maintain_order="left")
    followers = followers.drop("line", "\x00row")
    file_ranks = any(b.file_ranks for b in batches)
    if file_ranks and the_plan.ranks_by:  # each block was ranked on its own: rank the whole file
        followers = followers.with_columns(platforms.ranks_by(the_plan.ranks_by))
    if not file_ranks and the_plan.order != "unknown":
        positions = pl.int_range(0, followers.height, dtype=pl.Int64, eager=True).alias("follow_rank")
        followers = followers.with_columns(positions).with_columns(
            stream.ranks_from_positions(followers.height, the_plan.order)
        )
    order = "file" if file_ranks else the_plan.order
    seen = [b.observed for b in batches if b.observed is not None]
    observed = max(seen, key=lambda o: o.at) if seen else None
    return ParsedFile(followers, rejects, the_plan.detected(order), account=account or the_plan.account, observed=observed)


def check_options(platform: str | None, fmt: str | None, order: str | None) -> None:
    """--platform, --format and --order must name known values."""
    _check_choice("--platform", platform, PLATFORMS)
    _check_choice("--format", fmt, FORMATS)
    _check_choice("--order", order, ORDERS)


def _check_choice(flag: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InputError(f"{flag} {value!r} is not one of: {', '.join(choices)}", f"use one of {', '.join(choices)}")


# -- opening ---------------------------------------------------------------------------------------
def load_bytes(path: str | Path, encoding: str = "utf-8") -> tuple[bytes, bool]:
    """The file's bytes as UTF-8 (gunzipped when gzip), or a clear whole-file error."""
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"{name} does not exist", "check the path")
    if p.is_dir():
        raise InputError(f"{name} is a directory", "give a file")
    data = p.read_bytes()
    compressed = data[:2] == b"\x1f\x8b"
    if compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{name} is a damaged gzip file ({exc})", "re-download or re-compress the file") from None
    if not data.strip():
        raise EmptyInputError(f"{name} is empty")
    if data[:4] == b"PAR1":
        return data, compressed
    check_not_binary(data[:8192], name)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return to_utf8(data, name, encoding), compressed


# -- detection -------------------------------------------------------------------------------------
class _IdList:
    def __init__(self, frame: pl.DataFrame, fields: list[Field], layout: str, account: str | None) -> None:
        self.frame, self.fields, self.layout, self.account = frame, fields, layout, account


def _source(data: bytes, name: str, *, platform: str | None, fmt: str | None, mapping: dict[str, str],
            order: str | None) -> tuple[SourceFrame | _IdList, str]:
    if data[:4] == b"PAR1" or fmt == "parquet":
        if data[:4] != b"PAR1":
            raise UnknownFormatError(f"{name} is not a Parquet file", "drop --format parquet, or give the .parquet file")
        return tabular.parquet_source(data, file=name, platform=platform, mapping=mapping), "parquet"
    first = data.lstrip()[:1]
    if fmt == "csv" or (fmt is None and first not in (b"{", b"[")):
        frame, rejects = tabular.read_csv_frame(data, name)
        found = [c for c in frame.columns if c not in ("line", "raw")]
        if fmt is None and not mapping and not _looks_tabular(found):
            raise UnknownFormatError(f"cannot tell what {name} holds (not JSON, and no known CSV header)")
        src = tabular.csv_source(frame, file=name, platform=platform, mapping=mapping, found=found)
        src.rejects = rejects
        return src, "csv"
    return _json_source(data, name, platform=platform, fmt=fmt, order=order, mapping=mapping)


def _looks_tabular(columns: list[str]) -> bool:
    return tabular.looks_tabular(columns)


def _try_json(text: bytes) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _NOT_JSON


_NOT_JSON = object()


def _json_source(data: bytes, name: str, *, platform: str | None, fmt: str | None,
                 order: str | None, mapping: dict[str, str]) -> tuple[SourceFrame | _IdList, str]:
    body = data.strip()
    multi_line = b"\n" in body
    heads = [ln for ln in body[:1_048_576].split(b"\n")[:6] if ln.strip()][:5]
    parsed = [_try_json(h) for h in heads]
    if fmt == "jsonl" or (fmt is None and multi_line and parsed[0] is not _NOT_JSON):
        return _jsonl(data, parsed, name, platform=platform, order=order, mapping=mapping), "jsonl"
    text = data.decode("utf-8")
    try:
        if body[:1] == b"[":
            return _from_array(text, name, platform=platform, mapping=mapping), "json"
        doc = parsed[0] if not multi_line and parsed[0] is not _NOT_JSON else jsonrec.load_document(text, name)
    except TruncatedJSONError:
        raise
    except InputError:
        # Not one JSON document; if later lines are JSON on their own, it is JSONL with a bad first line.
        if fmt is None and any(p is not _NOT_JSON for p in parsed[1:]):
            return _jsonl(data, parsed, name, platform=platform, order=order, mapping=mapping), "jsonl"
        raise
    return _from_document(doc, text, name, platform=platform, order=order, mapping=mapping), "json"


def _jsonl(data: bytes, parsed: list[Any], name: str, *, platform: str | None, order: str | None,
           mapping: dict[str, str]) -> SourceFrame | _IdList:
    lines = jsonrec.lines_frame(data)
    sample = next((p for p in parsed if p is not _NOT_JSON), None)
    return _from_values(lines, sample, name, platform=platform, order=order, mapping=mapping)


def _from_values(lines: pl.DataFrame, sample: Any, name: str, *, platform: str | None, order: str | None,
                 mapping: dict[str, str]) -> SourceFrame | _IdList:
    """JSONL: each line is a record, a page, or an array of records."""
    if isinstance(sample, list):
        records, rejects, _ = jsonrec.explode_pages(lines, None, name)
        return _records(records, name, platform=platform, rejects=rejects, layout_suffix=" (pages)", api=True, mapping=mapping)
    if isinstance(sample, dict):
        page = _page_key(sample)
        if page:
            key, plat, layout = page
            records, rejects, heads = jsonrec.explode_pages(lines, key, name)
            src = _records(records, name, platform=platform or plat, rejects=rejects, api=True, layout=layout, mapping=mapping)
            src.account = _subject(heads)
            return src
        if idlists.is_network(sample) or idlists.is_rank_map(sample):
            return _from_document(sample, None, name, platform=platform, order=order, mapping=mapping)
    return _records(lines, name, platform=platform, rejects=empty_rejects(), api=True, mapping=mapping)


def _page_key(doc: dict) -> tuple[str, str, str] | None:
    for key, plat, layout in _PAGE_KEYS:
        items = doc.get(key)
        if isinstance(items, list) and (not items or isinstance(items[0], dict)):
            return key, plat, layout
    return None


def _subject(heads: list[Any]) -> str | None:
    for head in heads:
        subject = head.get("subject") if isinstance(head, dict) else None
        if isinstance(subject, dict) and subject.get("handle"):
            return str(subject["handle"])
    return None


def _from_array(text: str, name: str, *, platform: str | None, mapping: dict[str, str]) -> SourceFrame:
    elements = jsonrec.array_elements(text, name)
    return _records(elements, name, platform=platform, rejects=empty_rejects(), api=True, mapping=mapping)


def _from_document(doc: Any, text: str | None, name: str, *, platform: str | None, order: str | None,
                 mapping: dict[str, str]) -> SourceFrame | _IdList:
    if isinstance(doc, list):
        return _from_array(text or json.dumps(doc), name, platform=platform, mapping=mapping)
    if not isinstance(doc, dict):
        raise UnknownFormatError(f"cannot tell what {name} holds (a JSON {type(doc).__name__})")
    page = _page_key(doc)
    if page:
        key, plat, layout = page
        start = re.search(rf'"{key}"\s*:\s*\[', text) if text else None
        if start is not None:
            records = jsonrec.array_elements(text, name, start=start.end() - 1)  # type: ignore[arg-type]
        else:
            records = jsonrec.records_frame(doc[key], 1)
        src = _records(records, name, platform=platform or plat, rejects=empty_rejects(), api=True,
                       layout=layout.replace(" pages", " page"), mapping=mapping)
        src.account = _subject([doc])
        return src
    if isinstance(doc.get("data"), dict) and len(doc) <= 3:  # Twitter v2 single-user lookup response
        return _records(jsonrec.records_frame([doc["data"]], 1), name, platform=platform, rejects=empty_rejects(),
                        api=True, mapping=mapping)
    if idlists.is_network(doc):
        frame = idlists.network_frame(doc, name)
        return _IdList(frame, idlists.ID_FIELDS, "follower id list", None)
    if idlists.is_rank_map(doc):
        return _IdList(idlists.rank_map_frame(doc, name), idlists.RANK_MAP_FIELDS, "ranked follower ids", None)
    records = jsonrec.records_frame([doc], 1)
    return _records(records, name, platform=platform, rejects=empty_rejects(), api=True, mapping=mapping)


def _records(records: pl.DataFrame, name: str, *, platform: str | None, rejects: pl.DataFrame, api: bool,
             layout: str | None = None, layout_suffix: str = "", mapping: dict[str, str] | None = None) -> SourceFrame:
    """Decode user records (line, raw) with the spec their keys call for."""
    sample_raw = records.get_column("raw").head(20).to_list()
    keys: set[str] = set()
    for raw in sample_raw:
        value = _try_json(raw.encode("utf-8"))
        if isinstance(value, dict):
            keys |= set(value)
    spec = platforms.spec_for_keys(keys, platform) if not mapping else None
    if spec is None:
        return _generic_records(records, name, keys, platform=platform, rejects=rejects, mapping=mapping or {})
    decoded, bad = jsonrec.decode(records, spec.dtype, name)
    frame = platforms.decode_fields(decoded, spec)
    all_rejects = pl.concat([rejects, bad]) if bad.height else rejects
    # API listings come newest first; anonymised datasets (InstaFake) have no order.
    default_order = "unknown" if spec is platforms.INSTAFAKE else ("newest-first" if api else "unknown")
    return SourceFrame(frame, spec.fields, spec.platform, (layout or spec.layout) + layout_suffix, default_order,
                       rejects=all_rejects, observed=platforms.latest_indexed(frame))



def _generic_records(records: pl.DataFrame, name: str, keys: set[str], *, platform: str | None,
                     rejects: pl.DataFrame, mapping: dict[str, str]) -> SourceFrame:
    """Flat JSON records of no known platform shape: read their scalar fields like CSV columns."""
    sample = [_try_json(r.encode("utf-8")) for r in records.get_column("raw").head(20).to_list()]
    nested = {k for v in sample if isinstance(v, dict) for k, x in v.items() if isinstance(x, dict | list)}
    scalar = sorted(keys - nested)
    known = {n for names in tabular.SYNONYMS.values() for n, _ in names}
    if not mapping and not {tabular.normalise(k) for k in scalar} & known:
        shown = ", ".join(sorted(keys)[:10]) or "none"
        raise UnknownFormatError(f"cannot tell what {name} holds (JSON records with keys: {shown})")
    decoded, bad = jsonrec.decode(records, pl.Struct({k: pl.Utf8 for k in scalar}), name)
    src = tabular.csv_source(decoded, file=name, platform=platform, mapping=mapping, found=sorted(keys))
    src.rejects = pl.concat([rejects, bad]) if bad.height else rejects
    src.note = "fields by name" if not mapping else "mapped fields"
    return src


# -- follower id lists + profiles ------------------------------------------------------------------
def _read_id_list(src: _IdList, name: str, fmt: str, compressed: bool, *, platform: str | None, order: str | None,
                  strict: bool, encoding: str, account: str | None, profiles: str | Path | None) -> ParsedFile:
    frame = src.frame
    plat = platform or "twitter"
    acct = account or idlists.account_from_name(name)
    use_order = order or ("newest-first" if src.layout == "follower id list" else "file")
    if src.layout != "follower id list":
        use_order = "file"  # a rank map's ranks win over --order
    ids, rejects = finish(frame, src.fields, file=name, platform=plat, order=use_order, account=acct, strict=strict)
    if profiles is None:
        detected = Detected(plat, fmt, src.layout + " without profiles", use_order, compressed)
        return ParsedFile(ids, rejects, detected, account=acct, n_without_profile=ids.height)
    prof = read_followers(profiles, platform=platform, strict=strict, encoding=encoding, order="unknown")
    followers, missing = idlists.join_profiles(ids, prof.followers)
    all_rejects = pl.concat([rejects, prof.rejects]).sort(["file", "line"]) if prof.rejects.height else rejects
    detected = Detected(plat, fmt, f"{src.layout} + {prof.detected.layout} profiles", use_order, compressed)
    return ParsedFile(conform(followers), all_rejects, detected, account=acct, n_without_profile=missing,
                      observed=prof.observed)
