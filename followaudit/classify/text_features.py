"""The model's text features (handle and display-name shape, bio mentions) in one compiled pass.

``features.py`` defines every feature as a Polars expression; seven of them scan strings with
regular expressions (the first-name test builds one matcher per row) and cost about 0.7 CPU-s per
million followers, most of the features' time. This module computes the same seven numbers in one
C loop over Polars' own Arrow string views, read in place without a copy (compiled once per
machine, like the tree walk). It is exact
where its rule is simple: ASCII text, and counts that need no Unicode tables (``[A-Z]``, ``_``,
non-ASCII code points). A row whose text needs Unicode rules (a non-ASCII display name or handle,
a ``@``/``#`` before a non-ASCII character) is flagged and that feature is computed for those rows
with the Polars expression itself, so the matrix equals ``features.py``'s bit for bit. Without a C
compiler every row takes the Polars route.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import polars as pl

from ..native.arrow import string_column
from ..native.build import compiled

# Output column of each feature in the C kernel, and the fallback bit of those that have one.
TEXT_FEATURES = (
    "name_words", "name_non_ascii", "handle_upper", "handle_underscores", "bio_mentions",
    "handle_consonant_run", "handle_has_first_name",
)  # fmt: skip
FALLBACK_BIT = {"name_words": 0, "bio_mentions": 1, "handle_consonant_run": 2, "handle_has_first_name": 3}
TEXT_COLUMNS = ("handle", "display_name", "bio")

C_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* A string column as Polars hands it over without a copy: Arrow string views (16 bytes per row: the
   length, then the text itself up to 12 bytes, else a prefix, a buffer index and an offset). */
typedef struct { const uint8_t* valid; const uint8_t* views; const uint8_t* const* bufs; int64_t shift; } strcol;

static inline int is_null(const strcol* c, int64_t i) {
    if (!c->valid) return 0;
    int64_t j = i + c->shift;
    return !((c->valid[j >> 3] >> (j & 7)) & 1);
}
static inline const uint8_t* text_at(const strcol* c, int64_t i, int64_t* len) {
    const uint8_t* v = c->views + (i + c->shift) * 16;
    int32_t n, buf, at;
    memcpy(&n, v, 4);
    *len = n;
    if (n <= 12) return v + 4;
    memcpy(&buf, v + 8, 4);
    memcpy(&at, v + 12, 4);
    return c->bufs[buf] + at;
}
/* The first '@' or '#' at or after j in t[0..len), or len. */
static inline int64_t next_mark(const uint8_t* t, int64_t j, int64_t len) {
#ifdef __SSE2__
    const __m128i at = _mm_set1_epi8('@'), hash = _mm_set1_epi8('#');
    for (; j + 16 <= len; j += 16) {
        __m128i b = _mm_loadu_si128((const __m128i*)(t + j));
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(b, at), _mm_cmpeq_epi8(b, hash)));
        if (m) return j + __builtin_ctz(m);
    }
#endif
    for (; j < len; j++) if (t[j] == '@' || t[j] == '#') return j;
    return len;
}
static inline int is_space(uint8_t b) { return b == ' ' || (b >= 9 && b <= 13); }
static inline int is_word(uint8_t b) {
    return (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || b == '_';
}
static inline int is_letter(uint8_t b) { return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z'); }
static inline uint8_t lower(uint8_t b) { return (b >= 'A' && b <= 'Z') ? b + 32 : b; }
static inline int is_consonant(uint8_t b) {
    b = lower(b);
    return b >= 'a' && b <= 'z' && b != 'a' && b != 'e' && b != 'i' && b != 'o' && b != 'u' && b != 'y';
}

/* out: 7 columns of n doubles, ld apart (NaN = null); fb: per-row bits of the features to recompute. */
void text_features(int64_t n, int64_t ld, strcol handle, strcol name, strcol bio, double* out, uint8_t* fb) {
    double* name_words = out;
    double* name_non_ascii = out + ld;
    double* handle_upper = out + 2 * ld;
    double* handle_underscores = out + 3 * ld;
    double* bio_mentions = out + 4 * ld;
    double* consonant_run = out + 5 * ld;
    double* first_name = out + 6 * ld;
    for (int64_t i = 0; i < n; i++) {
        uint8_t flags = 0;
        int h_null = is_null(&handle, i), n_null = is_null(&name, i);
        int64_t hl = 0, sl = 0;
        const uint8_t* h = h_null ? 0 : text_at(&handle, i, &hl);
        const uint8_t* s = n_null ? 0 : text_at(&name, i, &sl);
        int h_ascii = 1, n_ascii = 1;

        if (h_null) {
            handle_upper[i] = handle_underscores[i] = consonant_run[i] = NAN;
        } else {
            int64_t upper = 0, under = 0, run = 0, best = 0;
            for (int64_t j = 0; j < hl; j++) {
                uint8_t b = h[j];
                if (b >= 0x80) h_ascii = 0;
                upper += (b >= 'A' && b <= 'Z');
                under += (b == '_');
                run = is_consonant(b) ? run + 1 : 0;
                if (run > best) best = run;
            }
            handle_upper[i] = (double)upper;
            handle_underscores[i] = (double)under;
            consonant_run[i] = (double)(best < 6 ? best : 6);
            if (!h_ascii) flags |= 4;
        }
        if (n_null) {
            name_words[i] = name_non_ascii[i] = NAN;
        } else {
            int64_t words = 0, non_ascii = 0;
            int in_word = 0;
            for (int64_t j = 0; j < sl; j++) {
                uint8_t b = s[j];
                if (b >= 0xC0) non_ascii++;  /* the lead byte of each non-ASCII code point */
                if (b >= 0x80) n_ascii = 0;
                if (is_space(b)) in_word = 0;
                else if (!in_word) { in_word = 1; words++; }
            }
            name_words[i] = (double)words;
            name_non_ascii[i] = (double)non_ascii;
            if (!n_ascii) flags |= 1;
        }
        if (h_null || n_null) {
            first_name[i] = NAN;
        } else {
            /* the first run of 3+ letters of the name, lowercased, found in the lowercased handle */
            double found = 0.0;
            int64_t j = 0;
            while (j < sl) {
                if (!is_letter(s[j])) { j++; continue; }
                int64_t start = j;
                while (j < sl && is_letter(s[j])) j++;
                int64_t len = j - start;
                if (len < 3) continue;
                for (int64_t p = 0; p + len <= hl && found == 0.0; p++) {
                    int64_t q = 0;
                    while (q < len && lower(h[p + q]) == lower(s[start + q])) q++;
                    if (q == len) found = 1.0;
                }
                break;
            }
            first_name[i] = found;
            if (!h_ascii || !n_ascii) flags |= 8;
        }
        if (is_null(&bio, i)) {
            bio_mentions[i] = NAN;
        } else {
            int64_t tl;
            const uint8_t* t = text_at(&bio, i, &tl);
            int64_t mentions = 0;
            for (int64_t j = next_mark(t, 0, tl); j + 1 < tl; j = next_mark(t, j + 1, tl)) {
                if (t[j + 1] >= 0x80) flags |= 2;  /* \w of a non-ASCII character: Unicode rules */
                else if (is_word(t[j + 1])) { mentions++; j++; }
            }
            bio_mentions[i] = (double)mentions;
        }
        fb[i] = flags;
    }
}
"""


def _library() -> Any | None:
    return compiled("text", "textfeatures", C_SOURCE, [["-O2"]], restypes={"text_features": None})


def text_feature_columns(frame: pl.DataFrame, names: list[str], exprs: dict[str, pl.Expr]) -> dict[str, np.ndarray] | None:
    """float64 columns (NaN = null) of the ``names`` among ``TEXT_FEATURES``; None without a compiler.

    ``exprs`` are ``features.feature_exprs`` (the definitions), used for the rows the kernel flags.
    """
    lib = _library()
    if lib is None or not all(frame.schema.get(c) == pl.Utf8 for c in TEXT_COLUMNS):
        return None
    n = frame.height
    out = np.empty((len(TEXT_FEATURES), n), dtype=np.float64)
    flags = np.empty(n, dtype=np.uint8)
    start = 0
    # The frame's chunks as Arrow record batches (no copy; a Series' own to_arrow joins its chunks).
    for batch in frame.select(TEXT_COLUMNS).to_arrow(compat_level=pl.CompatLevel.newest()).to_batches():
        cols = [string_column(batch.column(c)) for c in TEXT_COLUMNS]
        if any(c is None for c in cols):
            return None
        lib.text_features(ctypes.c_int64(batch.num_rows), ctypes.c_int64(n), *[c[0] for c in cols if c is not None],
                          ctypes.c_void_p(out.ctypes.data + 8 * start), ctypes.c_void_p(flags.ctypes.data + start))
        start += batch.num_rows
    result = {}
    for name in names:
        column = out[TEXT_FEATURES.index(name)]
        if name in FALLBACK_BIT and n:
            rows = np.flatnonzero(flags & (1 << FALLBACK_BIT[name]))
            if len(rows):
                expr = exprs[name]
                needed = frame.select(sorted(set(expr.meta.root_names())))
                exact = needed[rows].select(expr.cast(pl.Float64).alias(name))[name]
                column[rows] = exact.to_numpy().astype(np.float64, copy=False)  # nulls become NaN
        result[name] = column
    return result
