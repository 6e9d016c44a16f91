"""JSON text -> one row per record (``line``, ``raw``), and vectorised decoding of those rows.

The fast path (JSONL of user objects) never calls ``json.loads`` per row: lines are read by Polars'
CSV reader (JSON text cannot contain a raw NUL, so NUL is a safe "never splits" separator) and the
records are decoded by DuckDB's JSON reader against an explicit schema (every leaf as text). If any
line fails it, the lines are decoded with ``str.json_decode`` in parallel chunks, and only a chunk
that fails is bisected down to its bad lines, which are diagnosed one by one for exact rejects.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import polars as pl

from ...errors import InputError, TruncatedJSONError
from .common import empty_rejects, reject_frame

CHUNK_ROWS = 131_072
_WS = re.compile(r"[ \t\r\n]*")


def lines_frame(data: bytes) -> pl.DataFrame:
    """Every non-blank physical line as (line, raw); line is 1-based."""
    if not data:
        return pl.DataFrame(schema={"line": pl.Int64, "raw": pl.Utf8})
    frame = pl.read_csv(
        data, has_header=False, separator="\x00", quote_char=None, new_columns=["raw"],
        schema={"raw": pl.Utf8}, truncate_ragged_lines=True, raise_if_empty=False,
    )
    frame = frame.with_row_index("line", offset=1).with_columns(pl.col("line").cast(pl.Int64))
    return frame.filter(pl.col("raw").str.strip_chars().str.len_bytes() > 0)


def first_line(text: str) -> str:
    stripped = text.lstrip()
    end = stripped.find("\n")
    return stripped if end < 0 else stripped[:end]


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def load_document(text: str, name: str) -> Any:
    """Parse a whole JSON document (not JSONL), with clear errors for cut-off and broken files."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise document_error(text, exc, name) from None


def document_error(text: str, exc: json.JSONDecodeError, name: str) -> InputError:
    body = text.rstrip()
    if exc.pos >= len(body) - 1 or exc.msg.startswith("Unterminated string"):
        kind = "array" if body.lstrip().startswith("[") else "object"
        return TruncatedJSONError(f"{name} ends in the middle of a JSON {kind} (line {_line_of(text, len(body))})")
    return InputError(
        f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
        "fix the file there, or convert it to JSONL so that a bad record becomes one reject",
    )


def array_elements(text: str, name: str, start: int | None = None) -> pl.DataFrame:
    """The elements of a top-level JSON array as (line, raw), line = where each element starts."""
    decoder = json.JSONDecoder()
    pos = text.index("[") if start is None else start
    pos = _WS.match(text, pos + 1).end()
    lines: list[int] = []
    raws: list[str] = []
    line, counted = 1, 0
    if pos < len(text) and text[pos] == "]":
        return pl.DataFrame({"line": lines, "raw": raws}, schema={"line": pl.Int64, "raw": pl.Utf8})
    while True:
        try:
            _, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise document_error(text, exc, name) from None
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        raws.append(text[pos:end])
        pos = _WS.match(text, end).end()
        if pos >= len(text):
            raise TruncatedJSONError(f"{name} ends in the middle of a JSON array (line {_line_of(text, len(text))})")
        if text[pos] == "]":
            break
        if text[pos] != ",":
            raise InputError(
                f"{name} is not valid JSON: expected ',' or ']' at line {_line_of(text, pos)}",
                "fix the file there, or convert it to JSONL so that a bad record becomes one reject",
            )
        pos = _WS.match(text, pos + 1).end()
    return pl.DataFrame({"line": lines, "raw": raws}, schema={"line": pl.Int64, "raw": pl.Utf8})


def records_frame(records: list[Any], line: int | list[int]) -> pl.DataFrame:
    """Python records (from a page) as (line, raw) with raw re-serialised compactly."""
    lines = line if isinstance(line, list) else [line] * len(records)
    raws = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records]
    return pl.DataFrame({"line": lines, "raw": raws}, schema={"line": pl.Int64, "raw": pl.Utf8})


def explode_pages(pages: pl.DataFrame, key: str | None, file: str) -> tuple[pl.DataFrame, pl.DataFrame, list[Any]]:
    """Saved API pages, one per row -> one row per record under ``key`` (or the page itself if a list).

    Returns (records, rejects, page heads); a page that is not valid JSON becomes one reject.
    """
    out_lines: list[int] = []
    out_records: list[Any] = []
    heads: list[Any] = []
    bad: list[tuple[int, str, str, str]] = []
    for line, raw in pages.iter_rows():
        try:
            page = json.loads(raw)
        except json.JSONDecodeError as exc:
            bad.append((line, "(page)", f"invalid JSON: {exc.msg} (column {exc.colno})", raw))
            continue
        items = page if key is None else (page.get(key) if isinstance(page, dict) else None)
        if not isinstance(items, list):
            bad.append((line, key or "(page)", f"page has no {key!r} list" if key else "page is not a JSON list", raw))
            continue
        heads.append(page)
        out_records.extend(items)
        out_lines.extend([line] * len(items))
    return records_frame(out_records, out_lines), reject_frame(file, bad), heads


def decode(frame: pl.DataFrame, dtype: pl.Struct, file: str, data: bytes | bytearray | memoryview | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode the ``raw`` JSON of each row against ``dtype``; unnest; bad rows become rejects.

    ``data``: the JSONL bytes ``frame`` was read from. When given, DuckDB's JSON reader decodes them
    first (about half the CPU of Polars' NDJSON reader, which was itself ~2x ``str.json_decode``);
    if any line fails it, the per-chunk path below finds the bad lines.
    """
    if data is not None and frame.height:
        fast = decode_jsonl(data, dtype)
        if fast is not None and fast.height == frame.height:  # same records, same order
            return pl.concat([frame, fast], how="horizontal"), empty_rejects()
    if frame.height == 0:
        empty = frame.with_columns(pl.lit(None, dtype).alias("\x00rec")).unnest("\x00rec")
        return empty, empty_rejects()
    chunks = [frame.slice(i, CHUNK_ROWS) for i in range(0, frame.height, CHUNK_ROWS)]
    expr = pl.col("raw").str.json_decode(dtype).alias("\x00rec")
    try:
        done = pl.collect_all([c.lazy().with_columns(expr) for c in chunks])
        bad: list[tuple[int, str, str, str]] = []
    except pl.exceptions.PolarsError:
        done, bad = [], []
        for chunk in chunks:
            done.extend(_bisect(chunk, expr, dtype, bad))
    good = pl.concat(done) if done else frame.clear().with_columns(pl.lit(None, dtype).alias("\x00rec"))
    return good.unnest("\x00rec"), reject_frame(file, bad)


def _bisect(chunk: pl.DataFrame, expr: pl.Expr, dtype: pl.Struct, bad: list) -> list[pl.DataFrame]:
    try:
        return [chunk.with_columns(expr)]
    except pl.exceptions.PolarsError:
        if chunk.height == 1:
            line, raw = chunk.row(0)
            column, reason = diagnose(raw, dtype)
            bad.append((line, column, reason, raw))
            return []
        half = chunk.height // 2
        return _bisect(chunk.slice(0, half), expr, dtype, bad) + _bisect(chunk.slice(half), expr, dtype, bad)


def diagnose(raw: str, dtype: pl.Struct) -> tuple[str, str]:
    """(column, reason) for one record the vectorised decoder refused."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return "(record)", f"invalid JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(value, dict):
        return "(record)", f"not a JSON object (a {type(value).__name__})"
    found = _mismatch(value, dtype, "")
    return found or ("(record)", "record does not fit the expected structure")


def _mismatch(value: dict, dtype: pl.Struct, prefix: str) -> tuple[str, str] | None:
    for fld in dtype.fields:
        if fld.name not in value or value[fld.name] is None:
            continue
        item, name = value[fld.name], prefix + fld.name
        if isinstance(fld.dtype, pl.Struct):
            if not isinstance(item, dict):
                return name, f"expected an object, found {type(item).__name__}"
            inner = _mismatch(item, fld.dtype, name + ".")
            if inner:
                return inner
        elif isinstance(fld.dtype, pl.List):
            if not isinstance(item, list):
                return name, f"expected a list, found {type(item).__name__}"
        elif isinstance(item, dict | list):
            return name, f"expected a value, found {'an object' if isinstance(item, dict) else 'a list'}"
    return None


_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB (dates in UTC, one thread: the blocks are the parallelism)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(config={"threads": 1})
        con.execute("SET TimeZone = 'UTC'")
    return con


def _duck_type(dtype: pl.DataType) -> str:
    """The DuckDB type of a (nested) Polars schema whose leaves are text."""
    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_duck_type(f.dtype)}' for f in dtype.fields) + ")"
    if isinstance(dtype, pl.List):
        return _duck_type(dtype.inner) + "[]"
    return "VARCHAR"


def _read_json_sql(path: str, dtype: pl.Struct) -> str:
    columns = ", ".join("'" + f.name.replace("'", "''") + "': '" + _duck_type(f.dtype).replace("'", "''") + "'"
                        for f in dtype.fields)
    return "read_json('" + path.replace("'", "''") + "', format = 'newline_delimited', columns = {" + columns + "})"


def decode_jsonl(data: bytes | bytearray | memoryview, dtype: pl.Struct) -> pl.DataFrame | None:
    """Every record of JSONL ``data`` decoded against ``dtype`` (one column per top-level field,
    leaves as text, in line order, blank lines skipped) by DuckDB's JSON reader; None when any line
    is not JSON or does not fit (the caller then finds the bad lines).

    DuckDB's JSON reader takes a file: ``data`` goes to a temporary file (a memory copy into the
    page cache, deleted right away)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix="followaudit-", suffix=".jsonl")
    except OSError:
        return None  # no writable temporary folder: the slower path needs none
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        decoded = pl.from_arrow(_connection().sql(f"SELECT * FROM {_read_json_sql(tmp, dtype)}").to_arrow_table())
        assert isinstance(decoded, pl.DataFrame)
        return decoded.cast(dict(dtype.to_schema()))  # type: ignore[arg-type]
    except (duckdb.Error, OSError):
        return None
    finally:
        os.unlink(tmp)


def newline_positions(data: np.ndarray) -> np.ndarray:
    """Positions of the line breaks in ``data`` (bytes as uint8), a megabyte at a time: the
    comparison's temporary stays small and reused (a whole block's took ~1.7x the CPU, mostly page faults)."""
    step = 1 << 20
    parts = [np.flatnonzero(data[i : i + step] == 10) + i for i in range(0, data.size, step)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def line_records(data: bytes | memoryview, line_offset: int = 0, *, newlines: np.ndarray | None = None,
                 plain: bool | None = None) -> pl.DataFrame:
    """``lines_frame`` of a JSONL block (``line`` counted after ``line_offset`` lines) without copying
    its text: ``raw`` is Arrow string views into ``data``, which they keep alive.

    Taken only when it is plainly the same: no carriage return or NUL byte (``plain``, when the
    caller knows), and every line either empty or the start of a JSON object; otherwise
    ``lines_frame`` decides (its blanks are whitespace of any kind). ``newlines``: the positions of
    the line breaks in ``data``, when the caller has them.
    """
    if plain is None:
        plain = isinstance(data, bytes) and b"\r" not in data and b"\x00" not in data
    if not plain or not len(data):
        return lines_frame(bytes(data)).with_columns(pl.col("line") + line_offset)
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = newline_positions(buf) if newlines is None else newlines
    if ends.size == 0 or ends[-1] != buf.size - 1:
        ends = np.append(ends, buf.size)  # a last line without its line break
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    filled = ends > starts
    if not (buf[starts[filled]] == ord("{")).all():
        return lines_frame(bytes(data)).with_columns(pl.col("line") + line_offset)
    kept = np.flatnonzero(filled)
    frame = pl.DataFrame({"line": kept.astype(np.int64) + (1 + line_offset)}, schema={"line": pl.Int64})
    return frame.with_columns(string_views(data, starts[kept], ends[kept]))


# -- top-level arrays, a block at a time --------------------------------------------------------------
_OPEN, _CLOSE = (ord("{"), ord("[")), (ord("}"), ord("]"))
_COMMA, _QUOTE, _BACKSLASH, _END = ord(","), ord('"'), ord("\\"), ord("]")
# bytes.translate keeps the bytes that matter and zeroes the rest: one pass finds them all.
_MARKS = bytes(c if chr(c) in '{}[],"\\\n\r' else 0 for c in range(256))


@dataclass
class ArrayPart:
    """The complete elements at the start of some text inside a top-level JSON array.

    ``starts``/``ends``: byte spans of each element (surrounding blanks removed); ``ndjson``: the
    same elements one per line (a line break inside valid JSON is only ever a blank, so it becomes a
    space); ``used``: bytes consumed (the rest begins an element not yet complete); ``closed``: the
    array's closing bracket was found at ``used - 1``.
    """

    starts: np.ndarray
    ends: np.ndarray
    ndjson: bytearray
    used: int
    closed: bool
    breaks: np.ndarray  # positions of the line breaks before ``used``


def array_part(text: bytes) -> ArrayPart:
    """Split ``text`` (which starts between two elements of a top-level array, i.e. just after its
    ``[`` or a ``,``) into its complete elements, vectorised: quotes not escaped by an odd run of
    backslashes toggle strings, brackets outside strings give the depth, and the commas at depth 0
    separate elements."""
    b = np.frombuffer(text, dtype=np.uint8)
    found = np.frombuffer(text.translate(_MARKS), dtype=np.uint8)
    pos = np.flatnonzero(found)
    kinds = found[pos]
    blank = (kinds == 10) | (kinds == 13)
    breaks, returns = pos[kinds == 10], pos[kinds == 13]
    if blank.any():
        pos, kinds = pos[~blank], kinds[~blank]
    quote = kinds == _QUOTE
    escaped = _escaped(b, pos[quote], pos[kinds == _BACKSLASH])
    if escaped is not None:
        quote[np.flatnonzero(quote)[escaped]] = False
    outside = (np.cumsum(quote, dtype=np.uint8) & 1) == 0  # an even number of quotes before: not in a string
    keep = outside & ~quote & (kinds != _BACKSLASH)
    marks, kinds = pos[keep], kinds[keep]
    step = (kinds == _OPEN[0]).astype(np.int64) + (kinds == _OPEN[1]) - (kinds == _CLOSE[0]) - (kinds == _CLOSE[1])
    depth = np.cumsum(step)
    level = depth - step  # depth just before each mark
    below = np.flatnonzero(depth < 0)
    closed = bool(below.size)
    if closed:  # the array's closing bracket: what follows it is not part of the array
        marks, kinds, depth, level = (x[: below[0] + 1] for x in (marks, kinds, depth, level))
    seps = marks[(level == 0) & ((kinds == _COMMA) | (depth < 0))]  # commas at depth 0, and the closing ]
    bounds = np.concatenate(([-1], seps))
    starts, ends = _trim(b, bounds[:-1] + 1, bounds[1:])
    if closed and starts.size and starts[-1] == ends[-1]:  # "[]", or a trailing comma: no last element
        starts, ends = starts[:-1], ends[:-1]
    used = int(seps[-1]) + 1 if seps.size else 0
    # One element a line: line breaks (only ever blanks in valid JSON) become spaces, separators breaks.
    conv = bytearray(memoryview(text)[:used])
    view = np.frombuffer(conv, dtype=np.uint8)
    breaks = breaks[breaks < used]
    view[breaks] = 32
    view[returns[returns < used]] = 32
    view[seps] = 10
    return ArrayPart(starts, ends, conv, used, closed, breaks)


def _escaped(b: np.ndarray, quotes: np.ndarray, slashes: np.ndarray) -> np.ndarray | None:
    """Which ``quotes`` are escaped (preceded by an odd run of backslashes, whose positions are
    ``slashes``); None when none can be."""
    if not slashes.size:
        return None
    after_backslash = (quotes > 0) & (b[np.maximum(quotes - 1, 0)] == _BACKSLASH)
    if not after_backslash.any():
        return None
    run_start = np.ones(slashes.size, dtype=bool)
    run_start[1:] = slashes[1:] != slashes[:-1] + 1
    first = slashes[np.maximum.accumulate(np.where(run_start, np.arange(slashes.size), 0))]
    at = quotes[after_backslash]
    escaped = np.zeros(quotes.size, dtype=bool)
    escaped[after_backslash] = (at - first[np.searchsorted(slashes, at - 1)]) % 2 == 1
    return escaped


def _trim(b: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spans without their leading and trailing blanks (vectorised over the few bytes they have)."""
    blank = np.zeros(256, dtype=bool)
    blank[[9, 10, 13, 32]] = True
    starts, ends = starts.copy(), ends.copy()
    for _ in range(64):  # indentation is short; a longer run is finished below
        move = (starts < ends) & blank[b[np.minimum(starts, b.size - 1)]]
        if not move.any():
            break
        starts += move
    for _ in range(64):
        move = (ends > starts) & blank[b[np.maximum(ends - 1, 0)]]
        if not move.any():
            break
        ends -= move
    for i in np.flatnonzero((starts < ends) & (blank[b[np.minimum(starts, b.size - 1)]] | blank[b[np.maximum(ends - 1, 0)]])):
        chunk = bytes(b[starts[i]:ends[i]])
        stripped = chunk.strip()
        starts[i] += len(chunk) - len(chunk.lstrip())
        ends[i] = starts[i] + len(stripped)
    return starts, ends


def string_views(data: bytes | bytearray | memoryview, starts: np.ndarray, ends: np.ndarray) -> pl.Series:
    """The byte spans of ``data`` as a Polars string column, without copying the long ones (Arrow
    string views point into ``data``; spans of 12 bytes or less are stored inline, as Arrow says)."""
    import pyarrow as pa  # heavy; only the streamed array reader needs it here

    buf = np.frombuffer(data, dtype=np.uint8)
    n = len(starts)
    lengths = (ends - starts).astype(np.int32)
    views = np.zeros((n, 4), dtype=np.int32)
    views[:, 0] = lengths
    long = lengths > 12
    if long.any():
        at = starts[long]
        views[long, 1] = buf[at[:, None] + np.arange(4)].copy().view(np.int32)[:, 0]
        views[long, 3] = at.astype(np.int32)
    short = np.flatnonzero(~long)
    if short.size:
        inline = views.view(np.uint8).reshape(n, 16)
        idx = starts[short][:, None] + np.arange(12)
        keep = np.arange(12) < lengths[short][:, None]
        inline[short, 4:] = np.where(keep, buf[np.minimum(idx, max(buf.size - 1, 0))] if buf.size else 0, 0)
    array = pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views), pa.py_buffer(data)])
    # through a table: pl.Series(arrow array) imports pyarrow.compute (~40 ms on the first block's path)
    return pl.DataFrame(pa.Table.from_arrays([array], names=["raw"]))["raw"]
