"""Canonical Parquet read in place: when a file needs nothing an import would do, it is not copied.

An import validates, trims and conforms each row, then copies it into the workspace: for
followaudit's own canonical Parquet (``followaudit export``, ``score``, ``scale.synth_parquet``)
that copy is most of an audit's cost (~2 CPU-s per million followers, against ~0.5 for DuckDB to
read the file) and doubles the bytes on disk. So a canonical file that the import would store
unchanged is read where it is: the file's footer and one Polars pass over the columns it cannot
vouch for (a million rows at a time) check exactly what the import would have changed or rejected
(types, ids, handles, platform, derived lengths); any of it, or ``--copy``, and the file is
imported the usual way, rejects and all.

What the footer says is not read again: its null counts per row group show which row groups hold
followers ranked, and that no text lacks its derived length (where ``bio_length`` has no nulls,
no bio needs one; only row groups where it cannot say are read), and its statistics the platform
and account when each row group holds one. The ids, handles and labels are read (~0.05 CPU-s per
million followers for the three, most of it zstd; ``RowCheck``); the test for text an import would
trim and the one for repeated ids run compiled over Polars' own buffers (~0.015 CPU-s per million,
where the Polars expressions cost ~0.08), or as Polars expressions without a C compiler. An audit
reads those columns anyway: it registers the file once the footer and columns pass and feeds the
check its own batches (``check_in_place(verify=False)``); if the rows fail, it imports the file.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..native.arrow import string_column
from ..native.build import compiled
from ..store.parquet_columns import ABSENT, scan_planned
from ..store.workspace import Store
from .formats.common import _stripped

CHECK_ROWS = 1_000_000  # rows per slice the check reads
TRIMMED = ("follower_id", "handle", "truth_label")  # the texts an import trims that the check reads
DERIVED = {"bio": ("bio_length",), "handle": ("handle_length", "handle_digits")}  # text -> lengths derived from it
DERIVED_COLUMNS = [*DERIVED, *(length for lengths in DERIVED.values() for length in lengths)]

C_SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const uint8_t* valid; const uint8_t* views; const uint8_t* const* bufs; int64_t shift; } strcol;

/* Whether the UTF-8 text t[0..len) starts with White_Space: what Polars' strip_chars() removes
   (Rust's char::is_whitespace): \t-\r, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
   U+2029, U+202F, U+205F, U+3000. */
static inline int space_first(const uint8_t* t, int64_t len) {
    uint8_t b = t[0];
    if (b == ' ' || (b >= 9 && b <= 13)) return 1;
    if (b < 0xC2) return 0;
    if (b == 0xC2) return len >= 2 && (t[1] == 0x85 || t[1] == 0xA0);
    if (len < 3) return 0;
    if (b == 0xE1) return t[1] == 0x9A && t[2] == 0x80;
    if (b == 0xE2) return (t[1] == 0x80 && (t[2] <= 0x8A || t[2] == 0xA8 || t[2] == 0xA9 || t[2] == 0xAF))
                          || (t[1] == 0x81 && t[2] == 0x9F);
    if (b == 0xE3) return t[1] == 0x80 && t[2] == 0x80;
    return 0;
}
/* ... ends with it: in valid UTF-8 a lead byte two (three) back starts the last character. */
static inline int space_last(const uint8_t* t, int64_t len) {
    uint8_t b = t[len - 1];
    if (b == ' ' || (b >= 9 && b <= 13)) return 1;
    if (b < 0x80) return 0;
    if (len >= 2 && t[len - 2] == 0xC2) return b == 0x85 || b == 0xA0;
    return len >= 3 && t[len - 3] >= 0xE1 && t[len - 3] <= 0xE3 && space_first(t + len - 3, 3);
}
/* Rows of a string column an import would change: empty text, or blanks around it (nulls stay). */
int64_t untrimmed(int64_t n, strcol c) {
    int64_t found = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i + c.shift;
        if (c.valid && !((c.valid[j >> 3] >> (j & 7)) & 1)) continue;
        const uint8_t* v = c.views + j * 16;
        int32_t len, buf, at;
        memcpy(&len, v, 4);
        if (len == 0) { found++; continue; }
        if (space_first(v + 4, len < 4 ? len : 4)) { found++; continue; }  /* a long text's view keeps its first 4 bytes */
        if (len > 12) {
            memcpy(&buf, v + 8, 4);
            memcpy(&at, v + 12, 4);
            found += space_last(c.bufs[buf] + at, len);
        } else {
            found += space_last(v + 4, len);
        }
    }
    return found;
}
/* 1 when the n values are all different, 0 when one repeats, -1 without memory. Mixed by an odd
   multiplier (a bijection), split by their top 8 bits into 256 parts that each fit the cache, and
   each part put in a small open-addressing table keyed by the bits below. */
int distinct(int64_t n, const uint64_t* h) {
    const uint64_t mix = 0x9E3779B97F4A7C15ULL;
    int64_t count[257] = {0}, at[256], largest = 0, size = 16;
    for (int64_t i = 0; i < n; i++) count[((h[i] * mix) >> 56) + 1]++;
    for (int b = 0; b < 256; b++) {
        if (count[b + 1] > largest) largest = count[b + 1];
        count[b + 1] += count[b];
    }
    while (size < 2 * largest) size <<= 1;
    uint64_t* parts = malloc(sizeof(uint64_t) * (n ? n : 1));
    uint64_t* table = malloc(sizeof(uint64_t) * size);
    uint8_t* used = malloc(size);
    if (!parts || !table || !used) { free(parts); free(table); free(used); return -1; }
    memcpy(at, count, sizeof(at));
    for (int64_t i = 0; i < n; i++) { uint64_t v = h[i] * mix; parts[at[v >> 56]++] = v; }
    int result = 1;
    for (int b = 0; b < 256 && result; b++) {
        int64_t m = count[b + 1] - count[b], bits = 4;
        while (((int64_t)1 << bits) < 2 * m) bits++;
        int64_t mask = ((int64_t)1 << bits) - 1;
        memset(used, 0, mask + 1);
        const uint64_t* p = parts + count[b];
        for (int64_t i = 0; i < m && result; i++) {
            uint64_t v = p[i];
            int64_t slot = (int64_t)(v >> (56 - bits)) & mask;
            for (; used[slot]; slot = (slot + 1) & mask)
                if (table[slot] == v) { result = 0; break; }
            used[slot] = 1;
            table[slot] = v;
        }
    }
    free(parts); free(table); free(used);
    return result;
}
"""


@dataclass
class InPlace:
    """What a canonical Parquet file holds, once checked: it can be read as it is."""

    n: int
    platform: str
    account: str | None
    ranked: bool  # follow_rank given (else the order is unknown)
    plan: dict[str, str] = field(default_factory=dict, compare=False)  # the file's columns (``store.parquet_plan``)


def _library() -> Any | None:
    return compiled("in_place", "inplace", C_SOURCE, [["-O2"]], restypes={"untrimmed": ctypes.c_int64, "distinct": ctypes.c_int})


def _changed_by_import(column: str) -> pl.Expr:
    """Rows whose ``column`` an import would change (``formats.common._clean``): text with blanks
    around it, or empty (it becomes null). The stripped text is a part of the text, so it is the
    same text exactly when it is as long: comparing lengths costs half of comparing the strings."""
    length = pl.col(column).str.len_bytes()
    return (_stripped(column).str.len_bytes() != length) | (length == 0)


def untrimmed_rows(frame: pl.DataFrame, columns: list[str], *, native: bool = True) -> int:
    """How many texts of ``frame``'s string ``columns`` an import would change (``_changed_by_import``,
    counted per column): compiled over Polars' Arrow string views, else (or ``native=False``) in Polars."""
    lib = _library() if native and frame.height else None
    found, in_polars = 0, list(columns)
    if lib is not None:
        table = frame.select(columns).to_arrow(compat_level=pl.CompatLevel.newest())  # no copy
        in_polars = []
        for name in columns:
            chunks = table.column(name).chunks
            views = [string_column(chunk) for chunk in chunks]
            if any(v is None for v in views):  # another layout
                in_polars.append(name)
                continue
            found += sum(lib.untrimmed(ctypes.c_int64(len(chunk)), v[0]) for chunk, v in zip(chunks, views, strict=True) if v)
    if in_polars:
        found += int(frame.select(pl.sum_horizontal(_changed_by_import(c).sum() for c in in_polars)).item())
    return found


def all_distinct(hashes: pl.Series, *, native: bool = True) -> bool:
    """Whether the UInt64 ``hashes`` are all different (compiled, else or with ``native=False``
    Polars' ``n_unique``)."""
    lib = _library() if native else None
    if lib is not None:
        values = np.ascontiguousarray(hashes.to_numpy(), dtype=np.uint64)
        result = lib.distinct(ctypes.c_int64(len(values)), ctypes.c_void_p(values.ctypes.data))
        if result >= 0:
            return bool(result)
    return hashes.n_unique() == len(hashes)


def row_groups(footer: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """``row_group, start, rows`` of a Parquet file and, per one of ``columns``, its null count in
    each row group (null when the footer does not say), from its footer (``Store.parquet_file_footer``)."""
    groups = footer.group_by("row_group").agg(pl.col("rows").first()).sort("row_group")
    for column in columns:
        nulls = footer.filter(pl.col("column") == column).select("row_group", pl.col("nulls").alias(column))
        groups = groups.join(nulls, on="row_group", how="left")
    return groups.with_columns((pl.col("rows").cum_sum() - pl.col("rows")).alias("start"))


STATED_MAX = 32  # longer values are not taken from statistics: a writer may truncate them


def stated_values(footer: pl.DataFrame, column: str) -> tuple[set[str], int] | None:
    """``column``'s distinct values and null count from the footer's statistics alone, when every row
    group states them and holds one value (its least equals its greatest, short enough to be whole);
    None when a row group does not say, or holds two."""
    stats = footer.filter(pl.col("column") == column)
    if stats.height == 0 or stats.select(pl.col("nulls").is_null().any()).item():
        return None
    present = stats.filter(pl.col("nulls") < pl.col("rows"))
    if present.select((pl.col("min").is_null() | (pl.col("min") != pl.col("max"))
                       | (pl.col("min").str.len_bytes() >= STATED_MAX)).any()).item():
        return None
    return set(present["min"].to_list()), int(stats["nulls"].sum())


def _underived_groups(groups: pl.DataFrame, plan: dict[str, str]) -> pl.DataFrame:
    """The row groups whose footer does not show every text with its derived lengths: where a text
    may be present (it is not null on every row) and a length may be missing (its nulls are not
    known to be 0). The lengths are in the file wherever the text is (``column_plan``)."""
    undecided = [
        (pl.col(text).is_null() | (pl.col(text) < pl.col("rows")))
        & pl.any_horizontal(pl.col(length).is_null() | (pl.col(length) > 0) for length in lengths)
        for text, lengths in DERIVED.items() if plan[text] != ABSENT
    ]
    return groups.filter(pl.any_horizontal(undecided)) if undecided else groups.clear()


def check_in_place(store: Store, path: str | Path, *, platform: str | None, account: str | None,
                   order: str | None, verify: bool = True) -> InPlace | None:
    """``InPlace`` when ``path`` (a Parquet file) can be audited where it is; None to import it.

    It can when its columns are the canonical ones with the workspace's types or types an import
    would only widen (``store.parquet_columns``: absent columns, narrower integers, nanoseconds), every follower has a
    unique id, ids and handles need no trimming, one platform (the ``--platform`` given, if any) is
    on every row, the derived lengths are filled wherever their text is, and the options ask for
    nothing the file does not say (no ``--account``; no ``--order`` for a file without ranks: numbering
    followers is the import's job).

    ``verify=False`` leaves out the rows' ids and texts (most of the check's cost: ``RowCheck``), for
    a caller that checks them on rows it reads anyway, and imports the file if they fail.
    """
    plan = store.parquet_plan(path)
    if account is not None or plan is None:
        return None
    present = [c for c in ("follow_rank", *DERIVED_COLUMNS) if plan[c] != ABSENT]
    footer = store.parquet_file_footer(path)
    groups = row_groups(footer, present)
    n = int(groups["rows"].sum())
    if not n:
        return None
    # ranks: from the footer's null counts when it gives them all
    rank_nulls = groups["follow_rank"] if plan["follow_rank"] != ABSENT else groups["rows"]
    read_ranks = rank_nulls.null_count() > 0
    ranked = bool((rank_nulls < groups["rows"]).any())
    if not read_ranks and not ranked and order not in (None, "unknown"):
        return None
    # the platform and account: from the footer's statistics where every row group states them (one
    # value each), else read (dictionary-encoded, ~0.02 s at 3M); the ranks where the footer does
    # not count them
    stated = {c: stated_values(footer, c) if plan[c] != ABSENT else (set(), n) for c in ("platform", "account")}
    if any(v is None for v in stated.values()) or read_ranks:
        values = scan_planned(path, plan, ["platform", "account", *(["follow_rank"] if read_ranks else [])]).select(
            pl.col("platform").null_count().alias("no_platform"),
            pl.col("platform").drop_nulls().unique().implode(),
            pl.col("account").drop_nulls().unique().implode(),
            *([pl.col("follow_rank").is_not_null().any().alias("ranked")] if read_ranks else []),
        ).collect().row(0, named=True)
    else:
        (places, no_platform), (names, _) = stated["platform"], stated["account"]
        values = {"no_platform": no_platform, "platform": list(places), "account": list(names)}
    platforms, accounts = set(values["platform"]), set(values["account"])
    if values["no_platform"] or len(platforms) != 1 or len(accounts) > 1:
        return None
    ranked = ranked or bool(values.get("ranked"))
    if (platform is not None and platform not in platforms) or (not ranked and order not in (None, "unknown")):
        return None
    # where the footer cannot vouch for the derived lengths, those row groups are read
    underived = scan_planned(path, plan, DERIVED_COLUMNS)
    for start, rows in _underived_groups(groups, plan).select("start", "rows").iter_rows():
        found = underived.slice(start, rows).select(pl.any_horizontal(
            pl.col(text).is_not_null() & pl.any_horizontal(pl.col(x).is_null() for x in lengths) for text, lengths in DERIVED.items()
        ).sum()).collect().item()
        if found:
            return None
    checked = InPlace(n=n, platform=platforms.pop(), account=accounts.pop() if accounts else None, ranked=ranked, plan=plan)
    return None if verify and not verify_rows(path, checked) else checked


class RowCheck:
    """Whether the ids and texts of a canonical Parquet file (``check_in_place``'s ``InPlace``) are
    as an import would leave them: every follower has an id, no id, handle or truth label needs
    trimming, and no id repeats. Fed the rows slice by slice (``add``): its own reads
    (``verify_rows``), or the batches an audit reads anyway (``audit_snapshot(row_check=)``), so the
    file is not read twice; ``passed`` reads whatever was not fed."""

    def __init__(self, path: str | Path, checked: InPlace) -> None:
        self.path, self.plan, self.n = path, checked.plan, checked.n
        self.trimmed = [c for c in TRIMMED if self.plan[c] != ABSENT]
        self.rows = 0
        self.failed = False
        self.id_hashes: list[pl.Series] = []

    def add(self, part: pl.DataFrame) -> None:
        """Check one slice of the rows (their ``TRIMMED`` columns, as ``scan_planned`` reads them)."""
        if self.failed:
            return
        ids = part.get_column("follower_id")
        if ids.null_count() or untrimmed_rows(part, self.trimmed):
            self.failed = True
            return
        self.id_hashes.append(ids.hash())
        self.rows += part.height

    def passed(self) -> bool:
        if self.failed:
            return False
        if self.rows != self.n:  # not fed every row (an audit with too little to judge reads none): all again
            self.rows, self.id_hashes = 0, []
            scan = scan_planned(self.path, self.plan, TRIMMED)
            # Polars, slice by slice (bounded memory: a 10M-row file read whole held 1.7 GB of text)
            for start in range(0, self.n, CHECK_ROWS):
                self.add(scan.slice(start, CHECK_ROWS).collect())
                if self.failed:
                    return False
        # Equal id hashes may be a repeated id (or, rarely, a collision): the import decides which.
        return all_distinct(pl.concat(self.id_hashes)) if self.id_hashes else True


def verify_rows(path: str | Path, checked: InPlace) -> bool:
    """``RowCheck`` of every row of ``path``, read here."""
    return RowCheck(path, checked).passed()
