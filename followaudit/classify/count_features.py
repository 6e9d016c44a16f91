"""The model's count and date features (ratios, logs, ages, flags) in one compiled pass.

``features.py`` defines them as Polars expressions; computing ~20 of them costs ~0.1 CPU-s per
million followers, one pass over the columns each. This module computes the same numbers in one C
loop over the Arrow buffers of the canonical columns (read in place). Every operation is the one
Polars performs: an integer converted to float64, IEEE division and subtraction, ``log1p`` from the
C library (the function Polars calls; small counts look it up in a table of its own values),
clipping by comparison; a null input gives NaN, as a null
feature does after ``to_numpy``. ``log1p`` is checked against Polars once per process: a mismatch
(another C library) or no C compiler sends every feature back to the Polars route.
"""

from __future__ import annotations

import ctypes
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..native.arrow import ArrowColumn, arrow_column
from ..native.build import compiled
from ..schema import SCHEMA as CANONICAL
from .features import feature_exprs

# Output column of each feature in the C kernel.
COUNT_FEATURES = (
    "age_days", "log_followers", "log_following", "log_posts", "log_likes", "log_listed", "following_per_follower",
    "posts_per_day", "following_per_day", "followers_per_day", "likes_per_day", "bio_length", "has_avatar", "has_url",
    "has_location", "handle_length", "handle_digits", "handle_digit_share", "private", "log_followers_per_following",
    "posts_per_follower", "likes_per_post", "listed_per_follower", "profile_emptiness",
)  # fmt: skip
INT_COLUMNS = ("followers_count", "following_count", "posts_count", "likes_count", "listed_count", "bio_length",
               "handle_length", "handle_digits")  # fmt: skip
TIME_COLUMNS = ("created_at", "observed_at")
BOOL_COLUMNS = ("has_avatar", "has_url", "has_location", "private")

C_SOURCE = r"""
#include <math.h>
#include <stdint.h>

/* One column: 64-bit values (integers, or datetimes in microseconds) or packed booleans, with
   the Arrow validity bitmap (0: no nulls) and the array's offset. */
typedef struct { const void* values; const uint8_t* valid; int64_t shift; } col;

static inline int known(const col* c, int64_t i) {
    int64_t j = i + c->shift;
    return !c->valid || ((c->valid[j >> 3] >> (j & 7)) & 1);
}
static inline double num(const col* c, int64_t i) {
    return known(c, i) ? (double)((const int64_t*)c->values)[i + c->shift] : NAN;
}
static inline double flag(const col* c, int64_t i) {
    int64_t j = i + c->shift;
    return known(c, i) ? (double)((((const uint8_t*)c->values)[j >> 3] >> (j & 7)) & 1) : NAN;
}
/* log1p of the small counts, from a table of log1p's own values (most counts are small; log1p was
   most of the kernel's time) */
#define TABLE 65536
static inline double log1p_count(double x, const double* table) {
    return (x >= 0.0 && x < TABLE) ? table[(int64_t)x] : log1p(x);
}
void fill_table(double* table) { for (int64_t k = 0; k < TABLE; k++) table[k] = log1p((double)k); }
static inline double clip_low(double x, double low) { return x < low ? low : x; }  /* NaN (null) stays */
static inline void put(double* const* out, int f, int64_t i, double v) { if (out[f]) out[f][i] = v; }

/* ints: followers, following, posts, likes, listed, bio_length, handle_length, handle_digits;
   times: created_at, observed_at; flags: has_avatar, has_url, has_location, private.
   as_of: used where observed_at is null (when has_as_of). out: one array per feature, or 0. */
void count_features(int64_t n, const col* ints, const col* times, const col* flags, int32_t has_as_of, int64_t as_of,
                    const double* table, double* const* out) {
    /* Polars divides by a constant as a product with its reciprocal; so does this */
    const double per_day = 1.0 / 86400000000.0;
    for (int64_t i = 0; i < n; i++) {
        double fo = num(&ints[0], i), fg = num(&ints[1], i), po = num(&ints[2], i), li = num(&ints[3], i);
        double ls = num(&ints[4], i), bl = num(&ints[5], i), hl = num(&ints[6], i), hd = num(&ints[7], i);
        double age = NAN;
        int ref_known = known(&times[1], i) || has_as_of;
        if (known(&times[0], i) && ref_known) {
            int64_t ref = known(&times[1], i) ? ((const int64_t*)times[1].values)[i + times[1].shift] : as_of;
            int64_t created = ((const int64_t*)times[0].values)[i + times[0].shift];
            age = clip_low((double)(ref - created) * per_day, 0.0);
        }
        double av = flag(&flags[0], i), url = flag(&flags[1], i), loc = flag(&flags[2], i), pr = flag(&flags[3], i);
        double lfo = log1p_count(fo, table), lfg = log1p_count(fg, table);
        put(out, 0, i, age);
        put(out, 1, i, lfo);
        put(out, 2, i, lfg);
        put(out, 3, i, log1p_count(po, table));
        put(out, 4, i, log1p_count(li, table));
        put(out, 5, i, log1p_count(ls, table));
        put(out, 6, i, (fg + 1.0) / (fo + 1.0));
        put(out, 7, i, po / (age + 1.0));
        put(out, 8, i, fg / (age + 1.0));
        put(out, 9, i, fo / (age + 1.0));
        put(out, 10, i, li / (age + 1.0));
        put(out, 11, i, bl);
        put(out, 12, i, av);
        put(out, 13, i, url);
        put(out, 14, i, loc);
        put(out, 15, i, hl);
        put(out, 16, i, hd);
        put(out, 17, i, hd / clip_low(hl, 1.0));
        put(out, 18, i, pr);
        put(out, 19, i, lfo - lfg);
        put(out, 20, i, po / (fo + 1.0));
        put(out, 21, i, li / (po + 1.0));
        put(out, 22, i, ls / (fo + 1.0));
        if (out[23]) {  /* share of no avatar, empty bio, no website, no location among the known */
            double parts[4] = {1.0 - av, bl == 0.0 ? 1.0 : 0.0, 1.0 - url, 1.0 - loc};
            int is_known[4] = {!isnan(av), !isnan(bl), !isnan(url), !isnan(loc)};
            double empty = 0.0, seen = 0.0;
            for (int p = 0; p < 4; p++) {
                empty += is_known[p] ? parts[p] : 0.0;
                seen += is_known[p] ? 1.0 : 0.0;
            }
            out[23][i] = seen > 0.0 ? empty / seen : NAN;
        }
    }
}
"""


SCHEMA = {c: CANONICAL[c] for c in (*INT_COLUMNS, *TIME_COLUMNS, *BOOL_COLUMNS)}  # the types the kernel reads


_TABLE = np.empty(65536, dtype=np.float64)  # log1p(0 .. 65535), filled once by the kernel's own log1p


def _library() -> Any | None:
    """The kernel, once its table is filled and it gives Polars' numbers here (else None)."""
    return compiled("counts", "countfeatures", C_SOURCE, [["-O2"]], restypes={"count_features": None, "fill_table": None},
                    setup=_prepared)


def _prepared(lib: Any) -> bool:
    lib.fill_table(ctypes.c_void_p(_TABLE.ctypes.data))
    return _same_as_polars(lib)


def _same_as_polars(lib: Any) -> bool:
    """Whether the kernel gives Polars' numbers here: checked once per process on every feature, with
    counts of every size, dates, flags and nulls (another C library's ``log1p``, or a Polars that
    divides otherwise, sends the features back to Polars)."""
    rng = np.random.default_rng(20150214)
    n = 6000
    counts = np.concatenate([np.arange(0, 3000), np.geomspace(1, 2e12, n - 3000).astype(np.int64)])
    frame = pl.DataFrame({c: pl.Series(rng.permutation(counts), dtype=pl.Int64) for c in INT_COLUMNS})
    times = {c: pl.Series(rng.integers(10**15, 2 * 10**15, n)).cast(pl.Datetime("us", "UTC")) for c in TIME_COLUMNS}
    frame = frame.with_columns(**times, **{c: pl.Series(rng.random(n) < 0.5) for c in BOOL_COLUMNS})
    frame = frame.with_columns(pl.when(pl.Series(rng.random(n) < 0.1)).then(None).otherwise(pl.col(c)).alias(c) for c in frame.columns)
    as_of = datetime(2026, 11, 28, 12, 0, 1)
    exprs = feature_exprs(as_of)
    expected = frame.select([exprs[f].cast(pl.Float64).alias(f) for f in COUNT_FEATURES])
    got = _compute(lib, frame, list(COUNT_FEATURES), as_of)
    return all(np.array_equal(expected[f].to_numpy().view(np.int64), got[f].view(np.int64)) for f in COUNT_FEATURES)


def _records(batch: pa.RecordBatch, names: tuple[str, ...]) -> Any:
    """ctypes records of the ``names`` columns of ``batch`` (its buffers, read in place)."""
    records = (ArrowColumn * len(names))()
    for j, name in enumerate(names):
        records[j] = arrow_column(batch.column(name))
    return records


def _compute(lib: Any, frame: pl.DataFrame, names: list[str], as_of: datetime | None) -> dict[str, np.ndarray]:
    n = frame.height
    result = {name: np.empty(n, dtype=np.float64) for name in names}
    # as_of in microseconds exactly as the expressions read it (a literal of the column's type)
    reference = 0 if as_of is None else pl.select(pl.lit(as_of, dtype=pl.Datetime("us", "UTC")).dt.epoch("us")).item()
    # The frame's chunks as Arrow record batches (no copy; a Series' own to_arrow joins its chunks).
    start = 0
    for batch in frame.select(*INT_COLUMNS, *TIME_COLUMNS, *BOOL_COLUMNS).to_arrow().to_batches():
        out = (ctypes.c_void_p * len(COUNT_FEATURES))(
            *[result[f].ctypes.data + 8 * start if f in result else None for f in COUNT_FEATURES])
        lib.count_features(ctypes.c_int64(batch.num_rows), _records(batch, INT_COLUMNS), _records(batch, TIME_COLUMNS),
                           _records(batch, BOOL_COLUMNS), ctypes.c_int32(as_of is not None), ctypes.c_int64(reference),
                           ctypes.c_void_p(_TABLE.ctypes.data), out)
        start += batch.num_rows
    return result


def count_feature_columns(frame: pl.DataFrame, names: list[str], as_of: datetime | None) -> dict[str, np.ndarray] | None:
    """float64 columns (NaN = null) of the ``names`` among ``COUNT_FEATURES``; None when the
    columns have other types than canonical ones, or without a compiler (the Polars route then)."""
    if not names or any(frame.schema.get(c) != t for c, t in SCHEMA.items()):
        return None
    lib = _library()
    if lib is None:
        return None
    return _compute(lib, frame, names, as_of)
