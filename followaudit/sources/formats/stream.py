"""Streaming reader for the large case: JSONL (or gzip JSONL) of user records, read in blocks.

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
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import polars as pl

from ...errors import EmptyInputError
from . import idlists, jsonrec, platforms
from .common import ORDERS, Observed, bad_row_error, finish
from .platforms import RecordSpec
from .textio import check_not_binary, to_utf8

BLOCK_BYTES = 96 << 20
_PAGE_KEYS = ("followers", "profiles", "data", "accounts")


@dataclass
class Plan:
    """A file that can be streamed, and how."""

    spec: RecordSpec
    compressed: bool
    order: str  # the order to apply (newest-first for API records unless told)


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
    """A streaming plan when the file is JSONL of known user records; None for everything else."""
    if mapping or profiles is not None or fmt not in (None, "jsonl"):
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
    keys: set[str] = set()
    for line in lines:
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(value, dict):
            keys |= set(value)
    spec = platforms.spec_for_keys(keys, platform)
    if spec is None:
        return None
    default = "unknown" if spec is platforms.INSTAFAKE else "newest-first"
    return Plan(spec, compressed, order if order in ORDERS else default)


def iter_batches(path: str | Path, the_plan: Plan, *, name: str, encoding: str = "utf-8", strict: bool = False,
                 account: str | None = None, block_bytes: int | None = None,
                 on_progress: Callable[[int], None] | None = None) -> Iterator[Batch]:
    """Parse the file block by block (see the module doc for what a batch holds).

    ``on_progress(n)`` is called with the number of file bytes (compressed bytes for gzip) consumed
    since the previous call, for a progress bar.
    """
    block_bytes = block_bytes or BLOCK_BYTES
    reported = 0
    spec = the_plan.spec
    # Strict mode checks repeats block by block (so the first bad line is the one reported); otherwise
    # repeats across blocks are found once at the end (``duplicates``), which stays linear in size.
    seen = pl.DataFrame(schema={"follower_id": pl.Utf8, "\x00seen_line": pl.Int64})
    position = 0
    line_offset = 0
    carry = b""
    any_content = False
    fh, _ = _open(path)
    with fh:
        first_block = True
        while True:
            chunk = fh.read(block_bytes)
            if not chunk:
                block, carry = carry, b""
            else:
                cut = chunk.rfind(b"\n")
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
                batch = _parse_block(to_utf8(block, name, encoding, line_offset), line_offset, spec, the_plan.order,
                                     name, strict, account, seen, position)
                if strict:
                    seen = pl.concat([seen, batch.followers.select("follower_id", pl.col("line").alias("\x00seen_line"))])
                if not batch.file_ranks:
                    position += batch.followers.height
                yield batch
            line_offset += block.count(b"\n")
            if on_progress is not None:
                raw = getattr(fh, "fileobj", None) or fh  # gzip: position in the compressed file
                offset = raw.tell()
                on_progress(offset - reported)
                reported = offset
            if not chunk:
                break
    if not any_content:
        raise EmptyInputError(f"{name} is empty")


def _parse_block(block: bytes, line_offset: int, spec: RecordSpec, order: str, name: str, strict: bool,
                 account: str | None, seen: pl.DataFrame, position: int) -> Batch:
    lines = jsonrec.lines_frame(block).with_columns(pl.col("line") + line_offset)
    decoded, bad = jsonrec.decode(lines, spec.dtype, name, data=block)
    frame = platforms.decode_fields(decoded, spec)
    followers, rejects = finish(frame, spec.fields, file=name, platform=spec.platform, order="unknown",
                                account=account, strict=False, extra_rejects=bad, keep_line=True, trim=False)
    if seen.height:
        # A repeat of an id from an earlier block: reject it naming the first line, as within a block.
        repeats = followers.join(seen, on="follower_id", how="inner")
        if repeats.height:
            dup = repeats.select(
                pl.lit(name).alias("file"), pl.col("line"), pl.lit(spec.fields[0].source).alias("column"),
                (pl.lit("duplicate follower_id ") + pl.col("follower_id") + pl.lit(" (first seen on line ")
                 + pl.col("\x00seen_line").cast(pl.Utf8) + pl.lit(")")).alias("reason"),
                pl.col("raw"),
            )
            rejects = pl.concat([rejects, dup]).sort("line")
            followers = followers.join(seen, on="follower_id", how="anti")
    if strict and rejects.height:
        raise bad_row_error(rejects.row(0, named=True))
    file_ranks = followers.get_column("follow_rank").null_count() < followers.height
    if not file_ranks and order != "unknown":
        followers = followers.with_columns(pl.int_range(position, position + followers.height, dtype=pl.Int64).alias("follow_rank"))
    return Batch(followers, rejects, file_ranks, platforms.latest_indexed(frame))


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
    """Repeated ids among kept rows (``follower_id``, ``line`` in file order): every later occurrence,
    with ``first_line`` and ``k`` (1 = the second occurrence of that id). Empty when ids are unique."""
    schema = {"follower_id": pl.Utf8, "line": pl.Int64, "first_line": pl.Int64, "k": pl.Int64}
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


def id_column(spec: RecordSpec) -> str:
    return next(f.source for f in spec.fields if f.target == "follower_id")


def ranks_from_positions(n: int, order: str) -> pl.Expr:
    """Expression turning positions (0 = first line) into follow ranks for ``order``."""
    if order == "newest-first":
        return (pl.lit(n - 1, pl.Int64) - pl.col("follow_rank")).alias("follow_rank")
    return pl.col("follow_rank")
