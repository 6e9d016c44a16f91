"""Every follower's list of reasons in one compiled pass: the phrases, the lists and their counts.

``reasons.phrase_slots`` and ``model._reason_lists`` build the reasons column in Polars and NumPy:
per aspect a gather of the rows that name it, the phrase text, then the lists picked from one
vocabulary (~0.08 CPU-s per 500k followers). This module writes the same bytes in one C loop over
the canonical columns read in place (``native/arrow.py``): for each row its fixed reason (a view of
a constant text, no copy), then the phrases of its top aspects, straight into the Arrow list of
string views. ``reasons.phrase_exprs`` stays the definition (the tests hold the two equal on rows
that reach every branch) and ``model._reason_lists`` the route without a compiler or for columns
of other types.

The reason counts (``tally``) come from the same pass: a phrase whose pattern follows from its
numbers (a plural, a minus sign, a missing second number) is counted by that variant and one
phrase of each is blanked, once per process; a phrase that quotes the follower's own text (a
handle, a display name with quote marks) is blanked in C where the text is ASCII outside the quotes
(``reason_pattern``'s rules then need no Unicode tables), and by ``reason_pattern`` itself where not.
"""

from __future__ import annotations

import ctypes
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..native.arrow import ArrowColumn, StringColumn, arrow_column, string_column
from ..native.build import compiled
from .count_features import SCHEMA as COUNT_SCHEMA
from .count_features import count_feature_columns
from .features import feature_exprs
from .reasons import (
    EMPTY_BIO,
    NUMBER_PHRASES,
    PHRASES_HELPERS,
    YES_NO,
    _aspects,
    offsets_list_series,
    pattern_counts,
    reason_pattern,
)

if TYPE_CHECKING:
    from .model import LoadedModel

INT_COLUMNS = ("following_count", "followers_count", "posts_count", "likes_count", "listed_count", "bio_length",
               "handle_length", "handle_digits")  # fmt: skip
FLAG_COLUMNS = tuple(column for column, _, _ in YES_NO.values())
TEXT_COLUMNS = ("handle", "display_name")
# Kinds of phrase in the kernel: 0-4 the number phrases (``NUMBER_PHRASES``), then these.
YES_NO_KIND, BIO_KIND, HANDLE_KIND, NAME_KIND, LITERAL_KIND = 5, 6, 7, 8, 9
VARIANTS = 16  # variant codes per aspect (< 16)

REASONS_C = PHRASES_HELPERS + f"""
enum {{ YES_NO_KIND = {YES_NO_KIND}, BIO_KIND = {BIO_KIND}, HANDLE_KIND = {HANDLE_KIND}, NAME_KIND = {NAME_KIND} }};
""" + r"""
typedef struct { const uint8_t* valid; const uint8_t* views; const uint8_t* const* bufs; int64_t shift; } strcol;

static inline int str_known(const strcol* c, int64_t i) {
    int64_t j = i + c->shift;
    return !c->valid || ((c->valid[j >> 3] >> (j & 7)) & 1);
}
static inline const char* str_at(const strcol* c, int64_t i, int32_t* len) {
    const uint8_t* v = c->views + (i + c->shift) * 16;
    int32_t buf, at;
    memcpy(len, v, 4);
    if (*len <= 12) return (const char*)v + 4;
    memcpy(&buf, v + 8, 4);
    memcpy(&at, v + 12, 4);
    return (const char*)c->bufs[buf] + at;
}
static inline int flag(const col* c, int64_t i) {
    int64_t j = i + c->shift;
    return (((const uint8_t*)c->values)[j >> 3] >> (j & 7)) & 1;
}
static inline int64_t value(const col* c, int64_t i) { return c->values[i + c->shift]; }
/* an integer as Polars formats one ("{}"): no separators */
static inline char* plain(char* at, int64_t x) {
    uint64_t a = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    char buf[24];
    int len = 0;
    do { buf[len++] = (char)('0' + a % 10); a /= 10; } while (a);
    if (x < 0) *at++ = '-';
    while (len) *at++ = buf[--len];
    return at;
}
static inline char* bytes(char* at, const char* s, int32_t n) { memcpy(at, s, (size_t)n); return at + n; }
/* reason_pattern(): quoted text, then runs of digits, blanked; -1 when a non-ASCII byte is left
   outside quotes (a Unicode digit would need Unicode tables: reason_pattern decides those) */
static int64_t blank(const char* s, int64_t n, char* out) {
    int64_t o = 0;
    for (int64_t j = 0; j < n;) {
        unsigned char b = (unsigned char)s[j];
        if (b == '"') {
            const char* close = memchr(s + j + 1, '"', (size_t)(n - j - 1));
            if (close) { memcpy(out + o, "\"\xe2\x80\xa6\"", 5); o += 5; j = close - s + 1; continue; }
            out[o++] = '"';
            j++;
        } else if (b >= '0' && b <= '9') {
            out[o++] = 'N';
            while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == ',' || s[j] == '.')) j++;
        } else if (b >= 0x80) {
            return -1;
        } else {
            out[o++] = (char)b;
            j++;
        }
    }
    return o;
}

typedef struct { int64_t items, used, patterns, frees; } cursor;
typedef struct {
    const col* ints;      /* following, followers, posts, likes, listed, bio_length, handle_length, handle_digits */
    const col* flags;     /* has_avatar, has_url, has_location, private */
    const strcol* texts;  /* handle, display_name */
    const double* age;    /* the whole frame's age in days (NaN: unknown), from row `start` */
    const double* run;    /* longest run of consonants of the handle (NaN: unknown), likewise */
} inputs;
typedef struct {
    const int8_t* top; int32_t k; int32_t mode;  /* mode 0 none, 1 fake rows, 2 every row */
    const uint8_t* fake; const int64_t* fixed; const uint8_t* counted;
    const int32_t* kind; const int32_t* arg; const int32_t* first;  /* per aspect: arg the flag column,
                                                                       first its first constant text */
    const char* consts; const int32_t* const_at;  /* constant texts (fixed reasons, yes/no, ...): buffer 1 */
} plan;
typedef struct {
    int64_t* offsets; uint8_t* views; int64_t view_cap; char* data; int64_t data_cap;
    char* pattern; int64_t pattern_cap; int64_t* free_item; int64_t* free_at; int64_t* free_len;
    int64_t* fixed_counts; int64_t* variant_counts; int64_t* variant_example;
} outputs;

static inline void put_const(uint8_t* view, const plan* p, int32_t c) {
    int32_t at = p->const_at[c];
    put_view(view, p->consts + at, p->const_at[c + 1] - at, 1, at);
}

/* Row i of the batch (g of the frame), aspect a: the phrase written at `at` (its end returned), a
   constant (*c >= 0, nothing written) or none (0 returned: the field is unknown). *variant: the
   code fixing its pattern, or -1 when the pattern depends on the text. */
static char* phrase(const inputs* in, const plan* p, int32_t a, int64_t i, int64_t g, char* at, int32_t* c, int32_t* variant) {
    int32_t kind = p->kind[a], arg = p->arg[a];
    *c = -1;
    *variant = 0;
    if (kind <= 4) {
        int64_t x, y = 0;
        int has_y = 0;
        if (kind == 0) {
            if (!known(&in->ints[0], i) || !known(&in->ints[1], i)) return 0;
            x = value(&in->ints[0], i), y = value(&in->ints[1], i), has_y = 1;
        } else if (kind == 4) {
            if (in->age[g] != in->age[g]) return 0;
            x = (int64_t)__builtin_floor(in->age[g]);
        } else {
            const col* n = &in->ints[kind + 1];  /* posts, likes, listed */
            if (!known(n, i)) return 0;
            x = value(n, i);
            if (kind == 1 && in->age[g] == in->age[g]) y = (int64_t)__builtin_floor(in->age[g]), has_y = 1;
        }
        *variant = (x == 1) | (x < 0) << 1 | has_y << 2 | (y < 0) << 3;
        return number_phrase(kind, at, x, has_y, y);
    }
    if (kind == YES_NO_KIND) {
        if (!known(&in->flags[arg], i)) return 0;
        *variant = !flag(&in->flags[arg], i);
        *c = p->first[a] + *variant;  /* the "yes" text, then the "no" */
        return at;
    }
    if (kind == BIO_KIND) {
        if (!known(&in->ints[5], i)) return 0;
        int64_t b = value(&in->ints[5], i);
        if (b < 0) return 0;
        if (b == 0) { *c = p->first[a]; return at; }
        *variant = 1;
        return text(plain(text(at, "bio of "), b), " characters");
    }
    if (kind == HANDLE_KIND) {
        int32_t len = 0;
        const char* h = str_known(&in->texts[0], i) ? str_at(&in->texts[0], i, &len) : 0;
        if (!h || !len) {
            if (!known(&in->ints[6], i) || !known(&in->ints[7], i)) return 0;
            int64_t hl = value(&in->ints[6], i), hd = value(&in->ints[7], i);
            *variant = (hl < 0) | (hd < 0) << 1;
            at = plain(text(at, "username of "), hl);
            return text(plain(text(at, " characters with "), hd), " digits");
        }
        if (!known(&in->ints[7], i) || in->run[g] != in->run[g]) return 0;
        *variant = -1;
        at = plain(text(bytes(text(at, "handle @"), h, len), " ("), value(&in->ints[7], i));
        return text(plain(text(at, " digits, longest run of consonants "), (int64_t)in->run[g]), ")");
    }
    if (kind == NAME_KIND) {
        int32_t len = 0;
        if (!str_known(&in->texts[1], i)) return 0;
        const char* s = str_at(&in->texts[1], i, &len);
        int64_t chars = 0;
        for (int32_t j = 0; j < len; j++) chars += ((unsigned char)s[j] & 0xC0) != 0x80;
        if (memchr(s, '"', (size_t)len)) *variant = -1;
        at = bytes(text(at, "display name \""), s, len);
        return text(plain(text(at, "\" ("), chars), " characters)");
    }
    *c = p->first[a];  /* a literal: the aspect's own name */
    return at;
}

/* Rows start..start+n-1 of the frame (0..n-1 of these columns): each row's reasons appended to the
   list of string views (offsets[g + 1] = its end), data as buffer 0, the constants as buffer 1.
   Returns 0, or -1 when a buffer is too small. */
int32_t reason_lists(int64_t n, int64_t start, const inputs* in_, const plan* p_, const outputs* out_, cursor* cur_) {
    /* local copies: the bytes written through char pointers could otherwise alias every field */
    col ints[8], flags[4];
    strcol texts[2];
    memcpy(ints, in_->ints, sizeof ints);
    memcpy(flags, in_->flags, sizeof flags);
    memcpy(texts, in_->texts, sizeof texts);
    const inputs local_in = {ints, flags, texts, in_->age, in_->run};
    const plan local_plan = *p_;
    const outputs local_out = *out_;
    cursor local_cur = *cur_;
    const inputs* in = &local_in;
    const plan* p = &local_plan;
    const outputs* out = &local_out;
    cursor* cur = &local_cur;
    for (int64_t i = 0; i < n; i++) {
        int64_t g = start + i;
        int32_t k = p->k, aspect[8], variant[8], words = 0;
        int64_t used[8], len[8];
        if (cur->items + 1 + k > out->view_cap) return -1;
        uint8_t* slots = out->views + (cur->items + 1) * 16;  /* the first kept for the fixed reason */
        if (p->mode == 2 || (p->mode == 1 && p->fake[g])) {
            for (int32_t r = 0; r < k; r++) {
                int32_t a = p->top[g * k + r], c;
                if (a < 0) continue;
                int32_t tlen = 0;
                if (p->kind[a] == HANDLE_KIND && str_known(&in->texts[0], i)) str_at(&in->texts[0], i, &tlen);
                if (p->kind[a] == NAME_KIND && str_known(&in->texts[1], i)) str_at(&in->texts[1], i, &tlen);
                if (cur->used + 160 + tlen > out->data_cap) return -1;
                char* begin = out->data + cur->used;
                char* end = phrase(in, p, a, i, g, begin, &c, &variant[words]);
                if (!end) continue;
                uint8_t* view = slots + words * 16;
                if (c >= 0) {
                    put_const(view, p, c);
                    len[words] = -1;
                } else {
                    int32_t l = (int32_t)(end - begin);
                    put_view(view, begin, l, 0, (int32_t)cur->used);
                    used[words] = cur->used;
                    len[words] = l;
                    if (l > 12) cur->used += l;
                }
                aspect[words++] = a;
            }
        }
        int has_fixed = !words || !p->fake[g];
        if (has_fixed) put_const(out->views + cur->items * 16, p, p->fixed[g]);
        else memmove(out->views + cur->items * 16, slots, (size_t)words * 16);
        int64_t item = cur->items + has_fixed;
        if (p->counted[g]) {
            if (has_fixed) out->fixed_counts[p->fixed[g]]++;
            for (int32_t w = 0; w < words; w++) {
                if (variant[w] >= 0) {
                    int64_t v = aspect[w] * 16 + variant[w];
                    if (!out->variant_counts[v]++) out->variant_example[v] = item + w;
                    continue;
                }
                /* the text quoted: blanked here when it can be */
                const char* s = len[w] > 12 ? out->data + used[w] : (const char*)out->views + (item + w) * 16 + 4;
                int64_t m = -1;  /* no room left: reason_pattern blanks it */
                if (cur->patterns + 3 * len[w] + 8 <= out->pattern_cap) m = blank(s, len[w], out->pattern + cur->patterns);
                out->free_item[cur->frees] = item + w;
                out->free_at[cur->frees] = cur->patterns;
                out->free_len[cur->frees++] = m;
                if (m > 0) cur->patterns += m;
            }
        }
        cur->items = item + words;
        out->offsets[g + 1] = cur->items;
    }
    *cur_ = local_cur;
    return 0;
}
"""


MAX_K = 8  # ranks a row can have in the kernel
# Bytes for the quoted phrases blanked in C: fixed + per explained row (a quoted phrase blanked is
# 2.5 times its length at most; those that find no room left are blanked by reason_pattern).
PATTERN_ROOM = (1 << 20, 64)


class _Cursor(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("items", "used", "patterns", "frees")]


class _Inputs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("ints", "flags", "texts", "age", "run")]


class _Plan(ctypes.Structure):
    _fields_ = [("top", ctypes.c_void_p), ("k", ctypes.c_int32), ("mode", ctypes.c_int32),
                *[(name, ctypes.c_void_p) for name in ("fake", "fixed", "counted", "kind", "arg", "first", "consts", "const_at")]]


class _Outputs(ctypes.Structure):
    _fields_ = [("offsets", ctypes.c_void_p), ("views", ctypes.c_void_p), ("view_cap", ctypes.c_int64), ("data", ctypes.c_void_p),
                ("data_cap", ctypes.c_int64), ("pattern", ctypes.c_void_p), ("pattern_cap", ctypes.c_int64),
                *[(name, ctypes.c_void_p) for name in ("free_item", "free_at", "free_len", "fixed_counts", "variant_counts",
                                                       "variant_example")]]


def _library() -> Any | None:
    return compiled("reasons", "reasons", REASONS_C, [["-O2"]], restypes={"reason_lists": ctypes.c_int32})


def _address(array: np.ndarray | None) -> int | None:
    return None if array is None else array.ctypes.data


# The columns the kernel reads, with the types it reads them as.
_SCHEMA = {**{c: COUNT_SCHEMA[c] for c in (*INT_COLUMNS, *FLAG_COLUMNS)}, **dict.fromkeys(TEXT_COLUMNS, pl.Utf8)}


def _plan_of(aspects: list[str], fixed_texts: list[str]) -> tuple[list[int], list[int], list[int], list[str]]:
    """Each aspect's kind of phrase, its argument and first constant text; the constant texts (the
    fixed reasons first, so a fixed code is its text's index)."""
    consts = list(fixed_texts)
    kind, arg, first = [], [], []
    for aspect in aspects:
        first.append(len(consts))
        arg.append(0)
        if aspect in NUMBER_PHRASES:
            kind.append(NUMBER_PHRASES[aspect])
        elif aspect in YES_NO:
            column, yes, no = YES_NO[aspect]
            kind.append(YES_NO_KIND)
            arg[-1] = FLAG_COLUMNS.index(column)
            consts += [yes, no]
        elif aspect == "bio":
            kind.append(BIO_KIND)
            consts.append(EMPTY_BIO)
        elif aspect in ("handle", "name"):
            kind.append(HANDLE_KIND if aspect == "handle" else NAME_KIND)
        else:  # no phrase defined: the aspect's name, as phrase_exprs gives it
            kind.append(LITERAL_KIND)
            consts.append(aspect)
    return kind, arg, first, consts


_PATTERNS: dict[tuple[str, int] | str, str] = {}  # reason_pattern of constants and of number variants, once per process


def _pattern(key: tuple[str, int] | str, text: str) -> str:
    if key not in _PATTERNS:
        _PATTERNS[key] = pl.select(reason_pattern(pl.lit(text, dtype=pl.Utf8))).item()
    return _PATTERNS[key]


def _item_text(views: np.ndarray, buffers: list[Any], item: int) -> str:
    """The text of string view ``item``."""
    record = views[item * 16: item * 16 + 16]
    length, buffer, offset = (int(x) for x in record.view(np.int32)[[0, 2, 3]])
    raw = record[4: 4 + length].tobytes() if length <= 12 else bytes(memoryview(buffers[buffer])[offset: offset + length])
    return raw.decode()


def _string_views(views: np.ndarray, buffers: list[Any]) -> pl.Series:
    """16-byte string view records over ``buffers`` as a Series."""
    strings = pa.Array.from_buffers(pa.string_view(), len(views) // 16, [None, pa.py_buffer(views), *buffers])
    return pl.DataFrame(pa.Table.from_arrays([strings], names=["r"]))["r"]


def compiled_reason_lists(
    model: LoadedModel, frame: pl.DataFrame, columns: list[np.ndarray], top: np.ndarray | None, *, explain: str,
    is_fake: np.ndarray, fixed: np.ndarray, fixed_texts: list[str], counted: np.ndarray, as_of: datetime | None,
    tally: Counter | None = None,
) -> pl.Series | None:
    """The reasons column ``model._reason_lists`` builds from ``phrase_slots`` (same bytes, same
    ``tally``), in one compiled pass; None without a compiler or for columns of other types.

    ``columns``: the model's feature columns (``model.feature_columns``: the age in days and the
    handle's consonant run are read from them when the model has them); ``top``: ranked aspects
    per row (``TreeModel.score``); ``fixed``: each row's index in ``fixed_texts``.
    """
    lib = _library()
    n = frame.height
    k = top.shape[1] if top is not None and explain != "none" else 0
    if lib is None or k > MAX_K or any(frame.schema.get(c) != t for c, t in _SCHEMA.items()):
        return None
    mode = {"none": 0, "fake": 1, "all": 2}[explain] if k else 0
    want = is_fake if mode == 1 else np.full(n, mode == 2)
    m = int(np.count_nonzero(want))
    aspects, _ = _aspects(model.spec.features)
    kind, arg, first, consts = _plan_of(aspects, fixed_texts)
    features = list(model.spec.features)
    age = run = None
    if m and ("posts" in aspects or "age" in aspects):
        if "age_days" in features:
            age = columns[features.index("age_days")]
        else:
            computed = count_feature_columns(frame, ["age_days"], as_of)
            if computed is None:
                return None
            age = computed["age_days"]
    if m and "handle" in aspects:
        if "handle_consonant_run" in features:
            run = columns[features.index("handle_consonant_run")]
        else:  # the feature of the rows whose handle is a reason, from its definition
            run = np.full(n, np.nan)
            rows = np.flatnonzero(want & (top == aspects.index("handle")).any(axis=1))
            if len(rows):
                exact = frame.select("handle")[rows].select(feature_exprs(as_of)["handle_consonant_run"].cast(pl.Float64))
                run[rows] = exact.to_series().to_numpy()
    age, run = (None if a is None else np.ascontiguousarray(a, dtype=np.float64) for a in (age, run))
    table = frame.select(*INT_COLUMNS, *FLAG_COLUMNS, *TEXT_COLUMNS).to_arrow(compat_level=pl.CompatLevel.newest())
    batches = []
    text_bytes = 0
    for batch in table.to_batches():
        texts = [string_column(batch.column(c)) for c in TEXT_COLUMNS]
        if any(t is None for t in texts):
            return None
        for c in TEXT_COLUMNS:  # a phrase quotes at most one handle and one name
            array = batch.column(c)
            records = np.frombuffer(array.buffers()[1], dtype=np.int32, count=4 * (array.offset + len(array)))
            lengths = records.reshape(-1, 4)[array.offset:, 0]
            text_bytes += int(lengths.sum())
        batches.append((batch, texts))
    view_cap, data_cap = n + k * m, 160 * k * m + text_bytes
    if data_cap >= 2**31:  # offsets in a string view are 32-bit
        return None
    blob = b"".join(t.encode() for t in consts)
    const_at = np.cumsum([0] + [len(t.encode()) for t in consts], dtype=np.int32)
    top8 = np.ascontiguousarray(top if k else np.zeros((n, 0)), dtype=np.int8)
    counting = counted if tally is not None else np.zeros(n, dtype=bool)
    # booleans as bytes and the codes as int64, without copies
    arrays = {"fake": np.ascontiguousarray(is_fake, dtype=bool).view(np.uint8), "fixed": np.ascontiguousarray(fixed, dtype=np.int64),
              "counted": np.ascontiguousarray(counting, dtype=bool).view(np.uint8),
              "kind": np.array(kind, dtype=np.int32), "arg": np.array(arg, dtype=np.int32), "first": np.array(first, dtype=np.int32),
              "consts": np.frombuffer(blob or b"\0", dtype=np.uint8), "const_at": const_at}
    plan = _Plan(top8.ctypes.data, k, mode, *[arrays[name].ctypes.data for name in ("fake", "fixed", "counted", "kind", "arg", "first",
                                                                                     "consts", "const_at")])
    offsets = np.zeros(n + 1, dtype=np.int64)
    views = np.empty(16 * view_cap, dtype=np.uint8)
    data = np.empty(max(data_cap, 1), dtype=np.uint8)
    pattern_cap = PATTERN_ROOM[0] + PATTERN_ROOM[1] * m
    pattern = np.empty(pattern_cap if tally is not None else 1, dtype=np.uint8)
    free = np.empty((3, view_cap if tally is not None else 1), dtype=np.int64)
    fixed_counts = np.zeros(len(fixed_texts), dtype=np.int64)
    variant_counts = np.zeros(len(aspects) * VARIANTS, dtype=np.int64)
    variant_example = np.zeros(len(aspects) * VARIANTS, dtype=np.int64)
    out = _Outputs(offsets.ctypes.data, views.ctypes.data, view_cap, data.ctypes.data, data_cap, pattern.ctypes.data,
                   pattern_cap if tally is not None else 0, *[a.ctypes.data for a in (*free, fixed_counts, variant_counts, variant_example)])
    cursor = _Cursor()
    start = 0
    for batch, texts in batches:
        ints = (ArrowColumn * len(INT_COLUMNS))(*[arrow_column(batch.column(c)) for c in INT_COLUMNS])
        flags = (ArrowColumn * len(FLAG_COLUMNS))(*[arrow_column(batch.column(c)) for c in FLAG_COLUMNS])
        strs = (StringColumn * len(TEXT_COLUMNS))(*[t[0] for t in texts if t is not None])
        inputs = _Inputs(ctypes.addressof(ints), ctypes.addressof(flags), ctypes.addressof(strs), _address(age), _address(run))
        if lib.reason_lists(ctypes.c_int64(batch.num_rows), ctypes.c_int64(start), ctypes.byref(inputs), ctypes.byref(plan),
                            ctypes.byref(out), ctypes.byref(cursor)):
            return None  # a buffer too small: cannot happen with the bounds above
        start += batch.num_rows
    views.resize(16 * cursor.items, refcheck=False)  # shrunk in place: the rest was never written
    data.resize(max(cursor.used, 1), refcheck=False)
    buffers = [pa.py_buffer(data), pa.py_buffer(blob or b"\0")]
    strings = pa.Array.from_buffers(pa.string_view(), cursor.items, [None, pa.py_buffer(views), *buffers])
    if tally is not None:
        _count(tally, fixed_texts, fixed_counts, aspects, variant_counts, variant_example, views, buffers, pattern, free, cursor)
    return offsets_list_series("reasons", offsets, strings)


def _count(tally: Counter, fixed_texts: list[str], fixed_counts: np.ndarray, aspects: list[str], variant_counts: np.ndarray,
           variant_example: np.ndarray, views: np.ndarray, buffers: list[Any], pattern: np.ndarray, free: np.ndarray,
           cursor: _Cursor) -> None:
    """Add the kernel's counts to ``tally`` by ``reason_pattern``: the fixed reasons', each number
    variant's (one phrase of it blanked), and the quoted phrases' (blanked in C, or here)."""
    for j in np.flatnonzero(fixed_counts).tolist():
        tally[_pattern(fixed_texts[j], fixed_texts[j])] += int(fixed_counts[j])
    for v in np.flatnonzero(variant_counts).tolist():
        key = (aspects[v // VARIANTS], v % VARIANTS)
        if key not in _PATTERNS:
            _pattern(key, _item_text(views, buffers, int(variant_example[v])))
        tally[_PATTERNS[key]] += int(variant_counts[v])
    items, at, length = (a[: cursor.frees] for a in free)
    blanked = length >= 0
    if blanked.any():
        offsets = np.append(at[blanked], cursor.patterns).astype(np.int64)
        texts = pa.Array.from_buffers(pa.large_string(), int(blanked.sum()), [None, pa.py_buffer(offsets),
                                                                             pa.py_buffer(pattern[: max(cursor.patterns, 1)])])
        counts = pl.DataFrame(pa.Table.from_arrays([texts], names=["r"]))["r"].value_counts()
        tally.update(dict(zip(counts["r"].to_list(), counts["count"].to_list(), strict=True)))
    if not blanked.all():  # text outside the quotes that is not ASCII: reason_pattern itself
        records = views.reshape(-1, 16)[items[~blanked]].ravel()
        tally.update(pattern_counts(_string_views(records, buffers)))
