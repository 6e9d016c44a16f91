"""Streaming reader for the large case: JSONL, top-level JSON arrays of user records, CSV and
Parquet (gzip too), read in blocks.

Memory stays bounded by the block size however long the file is. Each block is parsed by the same
vectorised path as a whole file (``jsonrec.decode`` + ``common.finish``); what crosses blocks is
handled here: physical line numbers, duplicate ids (a later block's repeat is rejected naming the
first line) and follow positions. ``follow_rank`` of a batch holds the row's *position* among kept
rows in file order (0 = first line); the caller turns positions into ranks once the total is known
(newest-first: ``n - 1 - position``). With order ``unknown`` ranks are null; ranks from the file
are kept as they are.
"""

from __future__ import annotations

import gzip
import json
import mmap
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import polars as pl

from ...errors import EmptyInputError, InputError, TruncatedJSONError, UnknownFormatError
from . import idlists, jsonrec, platforms, tabular
from .common import ORDERS, Detected, Observed, SourceFrame, bad_row_error, empty_rejects, finish
from .platforms import RecordSpec
from .textio import check_not_binary, to_utf8

# JSONL blocks: two are parsed at once (PARSERS) and stored in row-group batches; measured on 1M
# users at load ~2.5: 32 MB blocks 4.7 s wall, 1.2-1.3 GiB peak; one parser on 96 MB blocks 5.2 s,
# 1.4 GiB (before the row-group batches, smaller blocks cost far more to store).
BLOCK_BYTES = 32 << 20
# CSV blocks are smaller: Polars holds every cell as text, and parsing them takes ~10x the block in
# memory (measured: 96 MB blocks peaked at 1.3 GB, 32 MB at 0.54 GB, for the same CPU). With two
# blocks parsed at once and row-group batches, a 10M-row CSV peaked at 1,041 MiB with 16 MB blocks,
# 955 MiB with 8 MB (same CPU).
CSV_BLOCK_BYTES = 8 << 20
# A JSON array's block is scanned with NumPy (positions of quotes and brackets): smaller blocks keep
# those arrays small.
ARRAY_BLOCK_BYTES = 32 << 20
PARSERS = 2  # JSON blocks parsed at once (see _in_parallel)
BATCH_ROWS = 122_880  # followers per stored batch: one DuckDB row group (see _regrouped)
_PAGE_KEYS = ("followers", "profiles", "data", "accounts")
# Record shapes that can be read a block at a time: decoded row by row, or (an Instagram export)
# ranked again over the whole file at the end (``RecordSpec.ranks_by``). InstaFake's ids are
# positions in the whole file: those arrays are read in one piece.
BLOCK_SAFE = (platforms.TWITTER_V1, platforms.TWITTER_V2, platforms.BLUESKY, platforms.MASTODON,
              platforms.INSTAGRAM_EXPORT)


@dataclass
class Plan:
    """A file that can be streamed, and how.

    ``kind`` is ``jsonl`` (user records, ``spec`` known from the first lines), ``jsonarray`` (a
    top-level array of user records, ``spec`` known from its first elements), ``csv`` or ``parquet``
    (columns decided from the header / schema when the first block is read: ``iter_batches`` fills
    in ``platform``, ``layout``, ``note``, ``id_column`` and ``account`` then).
    """

    spec: RecordSpec | None
    compressed: bool
    order: str  # the order to apply (newest-first for API records unless told)
    kind: str = "jsonl"
    platform: str | None = None
    layout: str = ""
    note: str | None = None
    id_column: str = "follower_id"
    account: str | None = None
    platform_arg: str | None = None
    told_format: bool = False  # --format given: no guessing whether the file is a table
    mapping: dict[str, str] = field(default_factory=dict)

    @property
    def ranks_by(self) -> str | None:
        """The column whose order over the whole file gives the ranks (see ``RecordSpec.ranks_by``)."""
        return self.spec.ranks_by if self.spec is not None else None

    def detected(self, order: str) -> Detected:
        fmt = "json" if self.kind == "jsonarray" else self.kind
        return Detected(self.platform or "other", fmt, self.layout, order, self.compressed, self.note or "")


# One parsed block: followers (with ``line``), rejects, and when the block says it was observed.
Parsed = tuple[pl.DataFrame, pl.DataFrame, Observed | None]


@dataclass
class Batch:
    followers: pl.DataFrame  # canonical columns + ``line``; follow_rank = position (see module doc)
    rejects: pl.DataFrame
    file_ranks: bool
    observed: Observed | None = None  # e.g. the block's latest Bluesky indexedAt


def _open(path: str | Path) -> tuple[IO[bytes], bool]:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb"), True
    return open(path, "rb"), False


def plan(path: str | Path, *, platform: str | None, fmt: str | None, order: str | None, mapping: object,
         profiles: object) -> Plan | None:
    """A streaming plan for JSONL of known user records, CSV (also ``--map``ped) and Parquet files;
    None for everything else (JSON documents, pages, id lists, profiles files), read in one piece."""
    if profiles is not None:
        return None
    p = Path(path)
    if not p.is_file():
        return None
    try:
        fh, compressed = _open(p)
        with fh:
            head = fh.read(1 << 20)
    except (OSError, EOFError):
        return None  # let the one-shot reader report the damaged file
    use_order = order if order in ORDERS else "unknown"
    if head[:4] == b"PAR1":
        if compressed or fmt not in (None, "parquet"):
            return None
        return Plan(None, False, use_order, kind="parquet", platform_arg=platform, mapping=tabular.parse_mapping(mapping))  # type: ignore[arg-type]
    if fmt == "parquet":
        return None
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    if fmt == "csv" or (fmt is None and body.strip() and body.lstrip()[:1] not in (b"{", b"[")):
        return _csv_plan(body, compressed, use_order, platform, mapping, told_format=fmt == "csv")
    if mapping:
        return None
    if fmt in (None, "json") and body.lstrip()[:1] == b"[":
        return _array_plan(body, compressed, order, platform)
    if fmt not in (None, "jsonl"):
        return None
    lines = [ln for ln in head.split(b"\n")[:-1] if ln.strip()][:5]
    if len(lines) < 2:
        return None
    try:
        first = json.loads(lines[0])
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(first, dict) or any(isinstance(first.get(k), list) for k in _PAGE_KEYS):
        return None
    if idlists.is_network(first) or idlists.is_rank_map(first):
        return None
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
    return _records_plan(records, "jsonl", compressed, order, platform)


def _records_plan(records: list[Any], kind: str, compressed: bool, order: str | None, platform: str | None) -> Plan | None:
    """A plan for user records of a known platform shape (from the keys of the first few)."""
    keys: set[str] = set()
    for value in records:
        if isinstance(value, dict):
            keys |= set(value)
    spec = platforms.spec_for_keys(keys, platform)
    if spec is None:
        return None
    default = "unknown" if spec is platforms.INSTAFAKE else "newest-first"
    return Plan(spec, compressed, order if order in ORDERS else default, kind=kind, platform=spec.platform,
                layout=spec.layout, id_column=id_column(spec))


def _array_plan(body: bytes, compressed: bool, order: str | None, platform: str | None) -> Plan | None:
    """A top-level array whose first elements are user records of a known shape (a Mastodon or
    Bluesky array, an Instagram followers export, an array of Twitter users). Other arrays (of
    pages, of ids, of unknown records) are read in one piece, which says what is wrong with them."""
    inside = body.lstrip()[1:]
    part = jsonrec.array_part(inside)
    if part.closed and inside[part.used :].lstrip()[:1] == b"[":
        return None  # another array after it: JSONL whose lines are arrays (saved pages)
    records = []
    for start, end in zip(part.starts[:5].tolist(), part.ends[:5].tolist(), strict=True):
        try:
            records.append(json.loads(inside[start:end]))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    if not records or not all(isinstance(r, dict) for r in records):
        return None
    the_plan = _records_plan(records, "jsonarray", compressed, order, platform)
    if the_plan is None or the_plan.spec not in BLOCK_SAFE:
        return None
    return the_plan


def _csv_plan(body: bytes, compressed: bool, order: str, platform: str | None, mapping: object, *,
              told_format: bool) -> Plan | None:
    try:
        check_not_binary(body[:8192], "")
    except InputError:
        return None  # the one-shot reader names the problem
    header = body.split(b"\n", 1)[0]
    if header.count(b'"') % 2 or body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # a header spanning lines, or UTF-16: read in one piece
    return Plan(None, compressed, order, kind="csv", platform_arg=platform, told_format=told_format,
                mapping=tabular.parse_mapping(mapping))  # type: ignore[arg-type]


def _text_blocks(fh: IO[bytes], block_bytes: int, name: str, encoding: str, *, quoted: bool,
                 on_progress: Callable[[int], None] | None) -> Iterator[tuple[bytes, int]]:
    """(UTF-8 block of whole lines, number of physical lines before it), the BOM removed.

    ``quoted`` (CSV): a block ends only at a newline outside double quotes, so a quoted cell holding
    line breaks is never cut. Raises EmptyInputError when the file holds nothing but blanks.
    """
    reported = 0
    line_offset = 0
    carry = b""
    any_content = False
    first_block = True
    while True:
        chunk = fh.read(block_bytes)
        if not chunk:
            block, carry = carry, b""
        else:
            cut = chunk.rfind(b"\n")
            if cut >= 0 and quoted:
                cut = _record_end(carry, chunk, cut)
            if cut < 0:
                carry += chunk
                continue
            # One copy per block: the carried partial line + this chunk up to its last newline.
            block = b"".join((carry, memoryview(chunk)[: cut + 1])) if carry else chunk[: cut + 1]
            carry = chunk[cut + 1 :]
        if first_block:
            check_not_binary(block[:8192], name)
            if block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
            first_block = False
        if block and not block.isspace():
            any_content = True
            yield to_utf8(block, name, encoding, line_offset), line_offset
        line_offset += block.count(b"\n")
        reported = _progress(fh, on_progress, reported)
        if not chunk:
            break
    if not any_content:
        raise EmptyInputError(f"{name} is empty")


@dataclass
class MappedBlock:
    """Whole lines of an uncompressed UTF-8 file, as a view of the file mapped into memory.

    ``newlines``: positions of the line breaks in ``text``; ``plain``: it holds no carriage return
    or NUL byte (so its lines can be cut at the line breaks alone, see ``jsonrec.line_records``).
    """

    text: memoryview
    newlines: np.ndarray
    plain: bool


def _mapped_blocks(path: str | Path, block_bytes: int, name: str, *, digest: Any,
                   on_progress: Callable[[int], None] | None) -> Iterator[tuple[MappedBlock, int]]:
    """``_text_blocks`` of an uncompressed UTF-8 file without copying it: each block is a view of
    the file mapped into memory (the page cache itself), hashed into ``digest`` as it is mapped.

    Measured on 1M Twitter users (460 MiB): reading into fresh buffers and joining each block to the
    previous block's last partial line cost ~0.5 CPU-s, much of it page faults. A block's mapping is
    released when the last row viewing it (``raw``, see ``jsonrec.line_records``) is freed. (A file
    cut short by another program while it is imported stops the process with SIGBUS instead of
    importing a torn file.)
    """
    size = Path(path).stat().st_size
    if size == 0:
        raise EmptyInputError(f"{name} is empty")
    start = line_offset = 0
    any_content = False
    with open(path, "rb") as fh:
        while start < size:
            base = start - start % mmap.ALLOCATIONGRANULARITY
            # The same blocks as ``_text_blocks``: up to the last line break before the end of the
            # next ``block_bytes`` of the file (or of the one after, for a line longer than that);
            # a last line without a line break is a block of its own.
            limit = (-(-start // block_bytes) + 1) * block_bytes
            while True:
                length = min(size, limit) - base
                mapped = mmap.mmap(fh.fileno(), length, offset=base, access=mmap.ACCESS_READ)
                end = base + mapped.rfind(b"\n", start - base) + 1
                if end > base:
                    break
                if base + length == size:
                    end = size
                    break
                limit += block_bytes
            lo, hi = start - base, end - base
            text = memoryview(mapped)[lo:hi]
            if digest is not None:
                digest.update(text)
            if start == 0:
                head = bytes(text[:8192])
                check_not_binary(head, name)
                if head.startswith(b"\xef\xbb\xbf"):
                    text, lo = text[3:], lo + 3
            data = np.frombuffer(text, dtype=np.uint8)
            newlines = jsonrec.newline_positions(data)
            if data.size and data.max() >= 0x80:
                _check_utf8(text, newlines, name, line_offset)
            plain = mapped.find(b"\r", lo, hi) < 0 and mapped.find(b"\x00", lo, hi) < 0
            if data.size and not _blank(text):
                any_content = True
                yield MappedBlock(text, newlines, plain), line_offset
            line_offset += newlines.size
            if on_progress is not None:
                on_progress(end - start)
            start = end
    if not any_content:
        raise EmptyInputError(f"{name} is empty")


def _check_utf8(text: memoryview, newlines: np.ndarray, name: str, line_offset: int) -> None:
    """Raise naming the first line of ``text`` that is not UTF-8 (``newlines``: its line breaks).

    Decoded a megabyte of whole lines at a time (a line break is never inside a character): one
    string of the whole block took ~6x the CPU, most of it filling fresh memory."""
    step, start = 1 << 20, 0
    try:
        while start < len(text):
            k = int(np.searchsorted(newlines, start + step))
            end = int(newlines[k]) + 1 if k < newlines.size else len(text)
            str(text[start:end], "utf-8")
            start = end
    except UnicodeDecodeError:
        to_utf8(bytes(text), name, "utf-8", line_offset)  # raises, naming the line
        raise


def _blank(text: memoryview) -> bool:
    """Whether ``text`` holds only blanks (``bytes.isspace``), looking at its start first."""
    return not bytes(text[:4096]).strip() and (len(text) <= 4096 or bytes(text).isspace())


def _array_blocks(fh: IO[bytes], block_bytes: int, name: str, encoding: str,
                  on_progress: Callable[[int], None] | None) -> Iterator[tuple[pl.DataFrame, bytearray]]:
    """The elements of a top-level JSON array, a block at a time: (records frame with ``line`` =
    where each element starts and ``raw`` = its text, the same elements as JSONL).

    Memory is bounded by the block size plus the longest element. A file that ends inside the
    array raises TruncatedJSONError naming its last line; text after the closing bracket is an
    error (the file is not one JSON array).
    """
    utf8 = _utf8(encoding)
    reported = 0
    lines_before = 0  # physical lines before ``pending``
    pending = b""  # UTF-8 text from an element boundary on, not yet split into elements
    tail = b""  # bytes read but not converted yet (text is converted up to its last line break)
    first = True
    started = closed = False
    while True:
        chunk = fh.read(block_bytes)
        data = tail + chunk
        if chunk:
            cut = data.rfind(b"\n") + 1
            if not cut:  # no line break: cut after the last byte that ends a character
                cut = len(data)
                while utf8 and cut and data[cut - 1] >= 0x80:
                    cut -= 1
            text, tail = data[:cut], data[cut:]
        else:
            text, tail = data, b""
        if first and text:
            check_not_binary(text[:8192], name)
            text = text[3:] if text.startswith(b"\xef\xbb\xbf") else text
            first = False
        text = to_utf8(text, name, encoding, lines_before + pending.count(b"\n")) if text else b""
        if not started and text:
            body = text.lstrip()
            lines_before += text.count(b"\n", 0, len(text) - len(body))
            started = bool(body)
            text = body[1:]  # past the opening bracket
        pending += text
        if started and not closed and pending:
            part = jsonrec.array_part(pending)
            if part.used:
                breaks = part.breaks
                if part.starts.size:
                    records = pl.DataFrame({"line": lines_before + 1 + np.searchsorted(breaks, part.starts)},
                                           schema={"line": pl.Int64})
                    yield records.with_columns(jsonrec.string_views(pending, part.starts, part.ends)), part.ndjson
                lines_before += breaks.size
                pending, closed = pending[part.used :], part.closed
        if closed and pending.strip():
            at = lines_before + pending.count(b"\n", 0, len(pending) - len(pending.lstrip())) + 1
            raise InputError(f"{name} is not valid JSON: more text after the array ends (line {at})",
                             "fix the file there, or convert it to JSONL so that a bad record becomes one reject")
        reported = _progress(fh, on_progress, reported)
        if not chunk:
            break
    if not started:
        raise EmptyInputError(f"{name} is empty")
    if not closed:
        last = lines_before + pending.rstrip().count(b"\n") + 1
        raise TruncatedJSONError(f"{name} ends in the middle of a JSON array (line {last})")


def _progress(fh: IO[bytes], on_progress: Callable[[int], None] | None, reported: int) -> int:
    """Tell ``on_progress`` how many file bytes were read since ``reported``; the new position."""
    if on_progress is None:
        return reported
    raw = getattr(fh, "fileobj", None) or fh  # gzip: position in the compressed file
    offset = raw.tell()
    on_progress(offset - reported)
    return offset


def _record_end(carry: bytes, chunk: bytes, cut: int) -> int:
    """The last newline of ``chunk`` (at or before ``cut``) outside double quotes, counting the
    quotes of ``carry`` too; the plain last newline when quotes never balance (a stray quote)."""
    quotes = carry.count(b'"') + chunk.count(b'"', 0, cut)
    candidate = cut
    while candidate >= 0 and quotes % 2:
        previous = chunk.rfind(b"\n", 0, candidate)
        quotes -= chunk.count(b'"', previous + 1, candidate)
        candidate = previous
    if candidate >= 0:
        return candidate
    return cut if len(carry) + len(chunk) > 4 * BLOCK_BYTES else -1


def iter_batches(path: str | Path, the_plan: Plan, *, name: str, encoding: str = "utf-8", strict: bool = False,
                 account: str | None = None, block_bytes: int | None = None,
                 on_progress: Callable[[int], None] | None = None,
                 digest: Any = None) -> Iterator[Batch]:
    """Parse the file block by block (see the module doc for what a batch holds).

    ``on_progress(n)`` is called with the number of file bytes (compressed bytes for gzip) consumed
    since the previous call, for a progress bar. ``digest`` (a hashlib object), when given, is fed
    the file's bytes as they are read (uncompressed files only), so the file is read once.
    """
    block_bytes = block_bytes or {"csv": min(BLOCK_BYTES, CSV_BLOCK_BYTES),
                                  "jsonarray": min(BLOCK_BYTES, ARRAY_BLOCK_BYTES)}.get(the_plan.kind, BLOCK_BYTES)
    # Strict mode checks repeats block by block (so the first bad line is the one reported); otherwise
    # repeats across blocks are found once at the end (``duplicates``), which stays linear in size.
    seen = pl.DataFrame(schema={"follower_id": pl.Utf8, "\x00seen_line": pl.Int64})
    position = 0
    if the_plan.kind == "parquet":
        parsed: Iterator[Parsed] = _parquet_blocks(path, the_plan, name, account, on_progress, digest)
    else:
        fh, _ = _open(path)
        source: IO[bytes] = _Hashing(fh, digest) if digest is not None and not the_plan.compressed else fh
        spec = the_plan.spec
        if the_plan.kind == "jsonarray":
            assert spec is not None
            parsed = _in_parallel(lambda part: _records_block(part[0], part[1], spec, name, account),
                                  _array_blocks(source, block_bytes, name, encoding, on_progress))
        elif the_plan.kind == "csv":
            parsed = _csv_blocks(_text_blocks(source, block_bytes, name, encoding, quoted=True, on_progress=on_progress),
                                 the_plan, name, account)
        else:  # JSONL: mapped from the file when it is plain UTF-8, else decoded text blocks
            assert spec is not None
            blocks = (_mapped_blocks(path, block_bytes, name, digest=digest, on_progress=on_progress)
                      if not the_plan.compressed and _utf8(encoding) else
                      _text_blocks(source, block_bytes, name, encoding, quoted=False, on_progress=on_progress))
            parsed = _in_parallel(lambda part: _jsonl_block(part[0], part[1], spec, name, account), blocks)
    if the_plan.kind != "parquet":
        parsed = _regrouped(parsed, BATCH_ROWS)
    try:
        for followers, rejects, observed in parsed:
            batch = _batch(followers, rejects, observed, the_plan, name, strict, seen, position)
            if strict:
                seen = pl.concat([seen, batch.followers.select("follower_id", pl.col("line").alias("\x00seen_line"))])
            if not batch.file_ranks:
                position += batch.followers.height
            yield batch
    finally:
        if the_plan.kind != "parquet":
            fh.close()


def _in_parallel(parse: Callable[[Any], Parsed], blocks: Iterator[Any]) -> Iterator[Parsed]:
    """``parse`` of each block, in order, with up to ``PARSERS`` blocks parsed at once.

    DuckDB and Polars release the GIL, so two blocks parse on two cores while the store takes a
    third (measured: a lone parser left the 1M-row JSONL import's threads waiting on it). Blocks are
    read in order by the caller's thread; at most ``PARSERS`` are held beyond the one being yielded.
    """
    if PARSERS <= 1:
        yield from map(parse, blocks)
        return
    with ThreadPoolExecutor(PARSERS, thread_name_prefix="followaudit-parse") as pool:
        pending: deque[Future[Parsed]] = deque()
        try:
            for block in blocks:
                pending.append(pool.submit(parse, block))
                if len(pending) >= PARSERS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _regrouped(parsed: Iterator[Parsed], rows: int) -> Iterator[Parsed]:
    """Parsed blocks cut and joined into batches of exactly ``rows`` followers (the last holds the
    rest); a block's rejects and observation time go with the first batch that holds its rows.

    The store commits each batch, and DuckDB writes a commit of exactly one row group straight to
    the database file, compressed once. Measured on 1M JSON users: 122,880-row commits cost 2.8-3.3
    CPU-s in all (a 123 MiB file); 200,000-row commits 3.0 plus 3.4 in the closing checkpoint (230
    MiB); 61,440-row commits 5.0 (each went through the write-ahead log first).
    """
    held: list[pl.DataFrame] = []
    count = 0
    rejects: list[pl.DataFrame] = []
    seen: list[Observed] = []
    for followers, more, observed in parsed:
        held.append(followers)
        count += followers.height
        rejects.append(more)
        if observed is not None:
            seen.append(observed)
        while count >= rows:
            joined = pl.concat(held) if len(held) > 1 else held[0]
            yield joined.slice(0, rows), _joined(rejects), max(seen, key=lambda o: o.at) if seen else None
            held, count, rejects, seen = [joined.slice(rows)], count - rows, [], []
    if count or rejects:
        yield pl.concat(held) if len(held) > 1 else held[0], _joined(rejects), max(seen, key=lambda o: o.at) if seen else None


def _joined(rejects: list[pl.DataFrame]) -> pl.DataFrame:
    rejects = [r for r in rejects if r.height]
    return pl.concat(rejects) if len(rejects) > 1 else rejects[0] if rejects else empty_rejects()


class _Hashing:
    """A file object that feeds what is read to a digest (hashlib releases the GIL on large reads)."""

    def __init__(self, fh: IO[bytes], digest: Any) -> None:
        self.fh, self.digest = fh, digest

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        self.digest.update(data)
        return data

    def tell(self) -> int:
        return self.fh.tell()


def _jsonl_block(block: bytes | MappedBlock, line_offset: int, spec: RecordSpec, name: str, account: str | None) -> Parsed:
    if isinstance(block, MappedBlock):
        lines = jsonrec.line_records(block.text, line_offset, newlines=block.newlines, plain=block.plain)
        return _records_block(lines, block.text, spec, name, account)
    return _records_block(jsonrec.line_records(block, line_offset), block, spec, name, account)


def _utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def _records_block(records: pl.DataFrame, ndjson: bytes | bytearray | memoryview, spec: RecordSpec, name: str, account: str | None) -> Parsed:
    """Records (line, raw) of one block, and the same records as JSONL (decoded by DuckDB)."""
    decoded, bad = jsonrec.decode(records, spec.dtype, name, data=ndjson)
    frame = platforms.decode_fields(decoded, spec)
    followers, rejects = finish(frame, spec.fields, file=name, platform=spec.platform, order="unknown",
                                account=account, strict=False, extra_rejects=bad, keep_line=True, trim=False)
    return followers, rejects, platforms.latest_indexed(frame)


def _csv_blocks(blocks: Iterator[tuple[bytes, int]], the_plan: Plan, name: str,
                account: str | None) -> Iterator[Parsed]:
    """CSV blocks parsed once by Polars; each record's physical line from the line breaks inside
    its cells (checked against the block's line count; the csv module decides when they disagree)."""
    names: list[str] = []
    sep = ","
    for block, line_offset in blocks:
        if not names:
            header, _, block = block.partition(b"\n")
            line_offset += 1
            text = header.decode("utf-8").rstrip("\r")
            sep = tabular._sniff_separator(text)
            names = pl.read_csv(header + b"\n", infer_schema=False, separator=sep, n_rows=0).columns
            if not block.strip():
                continue
        if the_plan.platform is None and not (the_plan.told_format or the_plan.mapping) and not tabular.looks_tabular(names):
            raise UnknownFormatError(f"cannot tell what {name} holds (not JSON, and no known CSV header)")
        frame, rejects = tabular.csv_block(block, line_offset, names, sep, name)
        src = tabular.csv_source(frame, file=name, platform=the_plan.platform_arg, mapping=the_plan.mapping, found=names)
        if the_plan.platform is None:
            _describe(the_plan, src)
        used = {f.source for f in src.fields}
        frame = src.frame.with_columns(tabular.leftover_raw([c for c in names if c not in used]))
        followers, more = finish(frame, src.fields, file=name, platform=src.platform, order="unknown", account=account,
                                 strict=False, extra_rejects=rejects, keep_line=True)
        yield followers, tabular.physical_lines(more, block, line_offset), src.observed


def _describe(the_plan: Plan, src: SourceFrame) -> None:
    the_plan.platform, the_plan.layout, the_plan.note = src.platform, src.layout, src.note
    the_plan.id_column = next((f.source for f in src.fields if f.target == "follower_id"), "follower_id")
    the_plan.account = the_plan.account or src.account


PARQUET_ROWS = 100_000  # rows per streamed batch: ~0.5 GB peak while parsing, less CPU than larger batches


def _parquet_blocks(path: str | Path, the_plan: Plan, name: str, account: str | None,
                    on_progress: Callable[[int], None] | None,
                    digest: Any) -> Iterator[Parsed]:
    """Batches of whole row groups of a Parquet file (never the whole table in memory)."""
    if digest is not None:
        with open(path, "rb") as fh:
            while chunk := fh.read(8 << 20):
                digest.update(chunk)
    size, offset = Path(path).stat().st_size, 0
    for start, rows, total in _row_group_spans(path, name):
        # Polars decodes the row groups of a slice straight into its own layout (pyarrow's reader
        # kept ~0.5 GB of freed batches in its allocator over a 10M-row file).
        try:
            frame = pl.scan_parquet(path).slice(start, rows).collect()
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"{name} could not be read ({exc})", "re-export the file; it may be truncated") from None
        src = tabular.parquet_frame_source(frame, file=name, platform=the_plan.platform_arg, mapping=the_plan.mapping,
                                           line_offset=offset)
        if the_plan.platform is None:
            _describe(the_plan, src)
        offset += frame.height
        followers, rejects = finish(src.frame, src.fields, file=name, platform=src.platform, order="unknown",
                                    account=account, strict=False, extra_rejects=src.rejects, keep_line=True)
        yield followers, rejects, src.observed
        if on_progress is not None:
            on_progress(round(size * rows / max(total, 1)))


def _row_group_spans(path: str | Path, name: str) -> Iterator[tuple[int, int, int]]:
    """(first row, rows, file rows): consecutive row groups about ``PARQUET_ROWS`` rows at a time."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, ValueError) as exc:
        raise InputError(f"{name} is not a readable Parquet file ({exc})", "re-export the file") from None
    start = pending = 0
    for group in range(meta.num_row_groups):
        pending += meta.row_group(group).num_rows
        if pending >= PARQUET_ROWS or group == meta.num_row_groups - 1:
            # A large row group is read in parts (Polars decodes only the pages of a slice).
            parts = max(1, round(pending / PARQUET_ROWS))
            for k in range(parts):
                lo, hi = pending * k // parts, pending * (k + 1) // parts
                yield start + lo, hi - lo, meta.num_rows
            start += pending
            pending = 0


def _batch(followers: pl.DataFrame, rejects: pl.DataFrame, observed: Observed | None, the_plan: Plan, name: str, strict: bool,
           seen: pl.DataFrame, position: int) -> Batch:
    if seen.height:
        # A repeat of an id from an earlier block: reject it naming the first line, as within a block.
        repeats = followers.join(seen, on="follower_id", how="inner")
        if repeats.height:
            dup = repeats.select(
                pl.lit(name).alias("file"), pl.col("line"), pl.lit(the_plan.id_column).alias("column"),
                (pl.lit("duplicate follower_id ") + pl.col("follower_id") + pl.lit(" (first seen on line ")
                 + pl.col("\x00seen_line").cast(pl.Utf8) + pl.lit(")")).alias("reason"),
                pl.col("raw"),
            )
            rejects = pl.concat([rejects, dup]).sort("line")
            followers = followers.join(seen, on="follower_id", how="anti")
    if strict and rejects.height:
        raise bad_row_error(rejects.row(0, named=True))
    file_ranks = followers.get_column("follow_rank").null_count() < followers.height
    if not file_ranks and the_plan.order != "unknown":
        followers = followers.with_columns(pl.int_range(position, position + followers.height, dtype=pl.Int64).alias("follow_rank"))
    return Batch(followers, rejects, file_ranks, observed)


def prefetch(batches: Iterator[Batch], depth: int = 1) -> Iterator[Batch]:
    """Parse the next block in a background thread while the caller stores the current one.

    Polars and DuckDB both release the GIL, so parsing and inserting overlap on two cores. An error
    in the parser is re-raised in the caller; if the caller stops early the parser stops too.
    """
    done = object()
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            slots.put(exc)

    worker = threading.Thread(target=work, name="followaudit-parse", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a parser waiting on a full queue
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def duplicates(ids: pl.DataFrame) -> pl.DataFrame:
    """Repeated ids among kept rows (``follower_id``, ``line`` in file order, any other columns
    carried along): every later occurrence, with ``first_line`` and ``k`` (1 = the second occurrence
    of that id). Empty when ids are unique."""
    schema = {**ids.schema, "follower_id": pl.Utf8, "line": pl.Int64, "first_line": pl.Int64, "k": pl.Int64}
    if ids.height == 0 or ids.get_column("follower_id").is_unique().all():
        return pl.DataFrame(schema=schema)
    marked = ids.with_columns(
        pl.col("line").first().over("follower_id").alias("first_line"),
        pl.int_range(pl.len(), dtype=pl.Int64).over("follower_id").alias("k"),
    )
    return marked.filter(pl.col("k") > 0).select(list(schema))


def duplicate_rejects(dups: pl.DataFrame, name: str, column: str) -> pl.DataFrame:
    """Reject rows for ``duplicates`` joined with their ``raw`` text."""
    return dups.select(
        pl.lit(name).alias("file"), pl.col("line"), pl.lit(column).alias("column"),
        (pl.lit("duplicate follower_id ") + pl.col("follower_id") + pl.lit(" (first seen on line ")
         + pl.col("first_line").cast(pl.Utf8) + pl.lit(")")).alias("reason"),
        pl.col("raw"),
    )


def line_texts(path: str | Path, lines: list[int], encoding: str = "utf-8") -> dict[int, str]:
    """The text of some physical lines of a text file (one more pass; for the few rejects whose row
    was stored without its original text)."""
    wanted = sorted(set(lines))
    found: dict[int, str] = {}
    fh, _ = _open(path)
    with fh:
        for block, offset in _text_blocks(fh, BLOCK_BYTES, str(path), encoding, quoted=False, on_progress=None):
            count = block.count(b"\n") + 1
            inside = [n for n in wanted if offset < n <= offset + count]
            if inside:
                texts = block.split(b"\n")
                found.update({n: texts[n - 1 - offset].rstrip(b"\r").decode("utf-8") for n in inside})
    return found


def id_hash() -> pl.Expr:
    """A 64-bit hash of ``follower_id`` as ``h`` (the compact form in which streamed ids are kept)."""
    return pl.col("follower_id").hash(seed=0x5EED).alias("h")


def id_column(spec: RecordSpec) -> str:
    return next(f.source for f in spec.fields if f.target == "follower_id")


def ranks_from_positions(n: int, order: str) -> pl.Expr:
    """Expression turning positions (0 = first line) into follow ranks for ``order``."""
    if order == "newest-first":
        return (pl.lit(n - 1, pl.Int64) - pl.col("follow_rank")).alias("follow_rank")
    return pl.col("follow_rank")
