"""The model's per-follower reasons: its largest contributions, in words a person understands.

Each raw score is split into one additive part per feature by path attribution (``trees.py``:
along each tree's decision path, every change of the node's expected value is credited to the
feature split on; "Saabas" / treeinterpreter), tabulated once per model and looked up per leaf, so
reasons cost about as much as a second scoring pass. LightGBM's exact TreeSHAP (``pred_contrib``)
remains available as ``method="treeshap"``; it is ~100× slower and picks the same top reason for
~98% of fake followers of the Twitter model. Related features (followers, following and their ratio; posts and posts per day; the handle's
shape) are summed into one *aspect* first, so a reason is never repeated in other words; the top
aspects that push towards the label become phrases such as "follows 2,140 accounts, followed by 3"
or "no profile picture", filled with the follower's own numbers. All of it is vectorised.
"""

from __future__ import annotations

import ctypes
from collections import Counter
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..native.arrow import arrow_column
from ..native.build import compiled
from .features import feature_exprs
from .trees import rank_credit

if TYPE_CHECKING:
    from .model import LoadedModel

TOP_K = 3
# Contributions (log-odds) below this are too small to call a reason.
MIN_CONTRIBUTION = 0.05

ASPECTS: dict[str, tuple[str, ...]] = {
    "ratio": ("log_followers", "log_following", "following_per_follower", "log_followers_per_following",
              "followers_per_day", "following_per_day"),
    "posts": ("log_posts", "posts_per_day", "posts_per_follower"),
    "likes": ("log_likes", "likes_per_day", "likes_per_post"),
    "listed": ("log_listed", "listed_per_follower"),
    "age": ("age_days",),
    "avatar": ("has_avatar", "profile_emptiness"),
    "bio": ("bio_length", "bio_words", "bio_mentions", "bio_has_link", "bio_non_ascii"),
    "url": ("has_url",),
    "location": ("has_location",),
    "handle": ("handle_length", "handle_digits", "handle_digit_share", "handle_upper", "handle_underscores",
               "handle_consonant_run", "handle_has_first_name"),
    "name": ("name_length", "name_words", "name_non_ascii", "name_digits", "name_upper_share"),
    "private": ("private",),
}  # fmt: skip
_ASPECT_OF = {f: a for a, feats in ASPECTS.items() for f in feats}


def aspect_of(feature: str) -> str:
    """The aspect a feature belongs to (features not listed are their own aspect)."""
    return _ASPECT_OF.get(feature, feature)


def thousands(expr: pl.Expr) -> pl.Expr:
    """An integer as text with thousands separators (2140 -> "2,140"), vectorised."""
    x = expr.cast(pl.Int64)
    a = x.abs()

    def pad3(e: pl.Expr) -> pl.Expr:
        return e.cast(pl.Utf8).str.zfill(3)

    text = (
        pl.when(a >= 1_000_000_000).then(pl.format("{},{},{},{}", a // 1_000_000_000, pad3((a // 1_000_000) % 1000), pad3((a // 1000) % 1000), pad3(a % 1000)))
        .when(a >= 1_000_000).then(pl.format("{},{},{}", a // 1_000_000, pad3((a // 1000) % 1000), pad3(a % 1000)))
        .when(a >= 1000).then(pl.format("{},{}", a // 1000, pad3(a % 1000)))
        .otherwise(a.cast(pl.Utf8))
    )
    return pl.when(x < 0).then(pl.format("-{}", text)).otherwise(text)


# The model's reasons quote each follower's own numbers and names ("0 posts in 2,772 days",
# 'display name "Finn"'); counted verbatim they would scatter over thousands of strings. Reasons are
# counted and filtered by their pattern: quoted text and numbers blanked, in this order.
REASON_BLANKS = ((r'"[^"]*"', '"…"'), (r"\d[\d,.]*", "N"))


def reason_pattern(reason: pl.Expr) -> pl.Expr:
    """A reason with its follower-specific parts blanked, so reasons can be counted together."""
    for regex, blank in REASON_BLANKS:
        reason = reason.str.replace_all(regex, blank)
    return reason


def pattern_counts(reasons: pl.Series, weights: pl.Series | None = None) -> Counter:
    """How many of ``reasons`` (strings; nulls skipped) have each ``reason_pattern``; ``weights``:
    how many times each reason counts (default once). Each distinct reason is blanked once."""
    frame = pl.DataFrame({"reason": reasons, "n": weights if weights is not None else pl.repeat(1, len(reasons), dtype=pl.Int64, eager=True)})
    counted = (
        frame.lazy().drop_nulls("reason").filter(pl.col("n") > 0).group_by("reason").agg(pl.col("n").sum())
        .with_columns(reason_pattern(pl.col("reason"))).group_by("reason").agg(pl.col("n").sum()).collect()
    )
    return Counter(dict(counted.iter_rows()))


def _plural(n: pl.Expr, one: str, many: str) -> pl.Expr:
    return pl.when(n == 1).then(pl.lit(one)).otherwise(pl.lit(many))


def _yes_no(column: str, yes: str, no: str) -> pl.Expr:
    """Phrase for a boolean field: null (unknown) stays null."""
    return pl.when(pl.col(column)).then(pl.lit(yes)).when(~pl.col(column)).then(pl.lit(no))


# aspect -> (boolean column, phrase when true, phrase when false); read by the compiled reasons too
YES_NO = {
    "avatar": ("has_avatar", "has a profile picture", "no profile picture"),
    "url": ("has_url", "has a website", "no website"),
    "location": ("has_location", "has a location", "no location"),
    "private": ("private", "private account", "public account"),
}
EMPTY_BIO = "empty bio"


def phrase_exprs(as_of: datetime | None = None) -> dict[str, pl.Expr]:
    """aspect -> phrase for each row (null when the input is unknown). Canonical columns in, text out."""
    return dict(_phrase_exprs(as_of))


@lru_cache(maxsize=8)
def _phrase_exprs(as_of: datetime | None) -> tuple[tuple[str, pl.Expr], ...]:
    # Built once per reference time: building these expressions cost ~10 ms per batch.
    f = feature_exprs(as_of)
    age = f["age_days"].floor()
    following, followers = pl.col("following_count"), pl.col("followers_count")
    posts = pl.col("posts_count")
    handle = pl.col("handle")
    no_handle = handle.is_null() | (handle.str.len_chars() == 0)
    return tuple({
        "ratio": pl.when(following.is_not_null() & followers.is_not_null()).then(pl.format("follows {} {}, followed by {}", thousands(following), _plural(following, "account", "accounts"), thousands(followers))),
        "posts": pl.when(age.is_not_null())
        .then(pl.format("{} {} in {} days", thousands(posts), _plural(posts, "post", "posts"), thousands(age)))
        .otherwise(pl.format("{} {}", thousands(posts), _plural(posts, "post", "posts"))),
        "likes": pl.format("has liked {} {}", thousands(pl.col("likes_count")), _plural(pl.col("likes_count"), "post", "posts")),
        "listed": pl.format("on {} {}", thousands(pl.col("listed_count")), _plural(pl.col("listed_count"), "list", "lists")),
        "age": pl.format("account {} days old when seen", thousands(age)),
        # a field the data lacks (null) gives no phrase: a reason states only what the data says
        "avatar": _yes_no(*YES_NO["avatar"]),
        "bio": pl.when(pl.col("bio_length") == 0).then(pl.lit(EMPTY_BIO))
        .when(pl.col("bio_length") > 0).then(pl.format("bio of {} characters", pl.col("bio_length"))),
        "url": _yes_no(*YES_NO["url"]),
        "location": _yes_no(*YES_NO["location"]),
        "handle": pl.when(no_handle)
        .then(pl.format("username of {} characters with {} digits", pl.col("handle_length"), pl.col("handle_digits")))
        .otherwise(
            pl.format(
                "handle @{} ({} digits, longest run of consonants {})",
                handle,
                pl.col("handle_digits"),
                f["handle_consonant_run"].cast(pl.Int64),
            )
        ),
        "name": pl.format('display name "{}" ({} characters)', pl.col("display_name"), pl.col("display_name").str.len_chars()),
        "private": _yes_no(*YES_NO["private"]),
    }.items())


# The phrases that are numbers in words ("follows 2,140 accounts, followed by 3") are most of the
# reasons' text; in Polars each number is a when/then over every magnitude and each phrase a format.
# One compiled pass writes the same text (``number_phrases``); ``phrase_exprs`` stays the
# definition (the tests hold the two equal on counts of every size and on nulls).
PHRASES_HELPERS = r"""
#include <stdint.h>
#include <string.h>

typedef struct { const int64_t* values; const uint8_t* valid; int64_t shift; } col;

static inline int known(const col* c, int64_t i) {
    int64_t j = i + c->shift;
    return !c->valid || ((c->valid[j >> 3] >> (j & 7)) & 1);
}
static inline char* text(char* at, const char* s) { size_t n = strlen(s); memcpy(at, s, n); return at + n; }
/* thousands(): separators below the billions, the billions themselves not split */
static inline char* number(char* at, int64_t x) {
    uint64_t a = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    char buf[32];
    int len = 0, digits = 0;
    do {
        if (digits == 3 || digits == 6 || digits == 9) buf[len++] = ',';
        buf[len++] = (char)('0' + a % 10);
        a /= 10;
        digits++;
    } while (a);
    if (x < 0) buf[len++] = '-';
    while (len) *at++ = buf[--len];
    return at;
}
/* kind 0 ratio (x following, y followers), 1 posts (x posts, y age in days when has_y), 2 likes,
   3 listed, 4 age (x days): the phrase written at `at` (96 bytes at most); returns its end. */
static inline char* number_phrase(int32_t kind, char* at, int64_t x, int has_y, int64_t y) {
    if (kind == 0) {
        at = number(text(at, "follows "), x);
        return number(text(text(at, x == 1 ? " account" : " accounts"), ", followed by "), y);
    }
    if (kind == 1) {
        at = text(number(at, x), x == 1 ? " post" : " posts");
        return has_y ? text(number(text(at, " in "), y), " days") : at;
    }
    if (kind == 2) return text(number(text(at, "has liked "), x), x == 1 ? " post" : " posts");
    if (kind == 3) return text(number(text(at, "on "), x), x == 1 ? " list" : " lists");
    return text(number(text(at, "account "), x), " days old when seen");
}
/* An Arrow string view: the length, then the text when it fits in 12 bytes, else its first 4
   bytes, the buffer's index and the offset in it. */
static inline void put_view(uint8_t* view, const char* s, int32_t len, int32_t buffer, int32_t offset) {
    memset(view, 0, 16);
    memcpy(view, &len, 4);
    if (len <= 12) {
        memcpy(view + 4, s, (size_t)len);
    } else {
        memcpy(view + 4, s, 4);
        memcpy(view + 8, &buffer, 4);
        memcpy(view + 12, &offset, 4);
    }
}
"""
PHRASES_C = PHRASES_HELPERS + r"""
/* kind: as number_phrase (a, then b). Arrow string views with the texts in data (96 bytes a row
   at most) and the validity in bits; returns the bytes of data used. */
int64_t number_phrases(int32_t kind, int64_t n, const col* a, const col* b, uint8_t* views, char* data, uint8_t* bits) {
    int64_t used = 0;
    for (int64_t i = 0; i < (n + 7) / 8; i++) bits[i] = 0;
    for (int64_t i = 0; i < n; i++) {
        uint8_t* view = views + i * 16;
        memset(view, 0, 16);
        if (!known(a, i) || (kind == 0 && !known(b, i))) continue;
        char* start = data + used;
        int has_y = kind < 2 && known(b, i);
        char* at = number_phrase(kind, start, a->values[i + a->shift], has_y, has_y ? b->values[i + b->shift] : 0);
        int32_t len = (int32_t)(at - start);
        bits[i >> 3] |= (uint8_t)(1u << (i & 7));
        put_view(view, start, len, 0, (int32_t)used);
        if (len > 12) used += len;
    }
    return used;
}
"""
# aspect -> (kind in the C writer, the integers it reads)
NUMBER_PHRASES = {"ratio": 0, "posts": 1, "likes": 2, "listed": 3, "age": 4}


def _phrases_library() -> Any | None:
    return compiled("phrases", "phrases", PHRASES_C, [["-O2"]], restypes={"number_phrases": ctypes.c_int64})


@lru_cache(maxsize=8)
def _phrase_numbers(as_of: datetime | None) -> dict[str, tuple[pl.Expr, ...]]:
    """The integers of each number phrase, as ``phrase_exprs`` reads them."""
    age = feature_exprs(as_of)["age_days"].floor()
    return {"ratio": (pl.col("following_count"), pl.col("followers_count")), "posts": (pl.col("posts_count"), age),
            "likes": (pl.col("likes_count"),), "listed": (pl.col("listed_count"),), "age": (age,)}


def number_phrases(aspect: str, frame: pl.DataFrame, as_of: datetime | None = None) -> pl.Series | None:
    """``phrase_exprs()[aspect]`` of every row for the number aspects, written in one compiled pass;
    None for other aspects or without a compiler."""
    lib = _phrases_library() if aspect in NUMBER_PHRASES else None
    if lib is None:
        return None
    values = frame.select([v.cast(pl.Int64).alias(f"n{j}") for j, v in enumerate(_phrase_numbers(as_of)[aspect])]).rechunk()
    arrays = [values[c].to_arrow() for c in values.columns]
    cols = [arrow_column(array) for array in [*arrays, arrays[0]][:2]]  # a one-number phrase reads its number twice (b unused)
    n = frame.height
    views = np.empty(16 * n + 16, dtype=np.uint8)
    text = np.empty(96 * n + 1, dtype=np.uint8)
    bits = np.empty((n + 7) // 8 + 1, dtype=np.uint8)
    used = lib.number_phrases(ctypes.c_int32(NUMBER_PHRASES[aspect]), ctypes.c_int64(n), ctypes.byref(cols[0]), ctypes.byref(cols[1]),
                              ctypes.c_void_p(views.ctypes.data), ctypes.c_void_p(text.ctypes.data), ctypes.c_void_p(bits.ctypes.data))
    nulls = n - int(np.unpackbits(bits[: (n + 7) // 8], bitorder="little")[:n].sum())
    # the texts copied to their own size: the labels keep them until written (96 bytes a row is the bound)
    strings = pa.Array.from_buffers(pa.string_view(), n, [pa.py_buffer(bits) if nulls else None, pa.py_buffer(views),
                                                           pa.py_buffer(text[: used + 1].copy())], null_count=nulls)
    return pl.DataFrame(pa.Table.from_arrays([strings], names=["phrase"]))["phrase"]


def aspect_phrases(aspect: str, frame: pl.DataFrame, as_of: datetime | None = None) -> pl.Series:
    """The ``aspect`` phrase of every row of ``frame`` (``phrase_exprs``' text; null when unknown)."""
    fast = number_phrases(aspect, frame, as_of) if frame.height else None
    if fast is not None:
        return fast
    expr = dict(_phrase_exprs(as_of)).get(aspect, pl.lit(aspect))
    return frame.select(expr.cast(pl.Utf8).alias("phrase"))["phrase"]


def _aspects(features: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Aspect names in first-seen order and the features × aspects 0/1 grouping matrix."""
    aspects: list[str] = []
    for feat in features:
        if aspect_of(feat) not in aspects:
            aspects.append(aspect_of(feat))
    G = np.zeros((len(features), len(aspects)))
    for i, feat in enumerate(features):
        G[i, aspects.index(aspect_of(feat))] = 1.0
    return aspects, G


def path_credit(model: LoadedModel) -> np.ndarray:
    """Every leaf's path credit summed into aspects (``trees.TreeModel.path_credit``), once per model."""
    if "aspect_paths" not in model._fast:
        _, G = _aspects(model.spec.features)
        model._fast["aspect_paths"] = model.trees.path_credit(G)[0]
    return model._fast["aspect_paths"]


def aspect_contributions(model: LoadedModel, X: np.ndarray, *, method: str = "path") -> tuple[list[str], np.ndarray]:
    """Aspect names and the n × aspects matrix of summed contributions (log-odds).

    ``method="path"`` (default): path attribution, fast. ``"treeshap"``: LightGBM's ``pred_contrib``.
    Either way a row's contributions add up to its raw score minus a constant bias.
    """
    aspects, G = _aspects(model.spec.features)
    if method == "path":
        return aspects, model.trees.walk(X, credit=path_credit(model))[2]
    if method == "treeshap":
        contrib = model.booster.predict(X, pred_contrib=True)[:, :-1]  # last column is the bias
        return aspects, contrib @ G
    raise ValueError(f"method must be 'path' or 'treeshap', got {method!r}")


def top_aspects(model: LoadedModel, X: np.ndarray, is_fake: np.ndarray, *, k: int = TOP_K, method: str = "path") -> np.ndarray:
    """rows × k aspect indices pushing hardest towards each row's label, -1 below ``MIN_CONTRIBUTION``."""
    aspects, C = aspect_contributions(model, X, method=method)
    return rank_credit(C, is_fake, min(k, len(aspects)), MIN_CONTRIBUTION)


def list_series(name: str, counts: np.ndarray, values: pl.Series | pa.Array) -> pl.Series:
    """A list column whose row ``i`` holds the next ``counts[i]`` of ``values`` (no per-row Python)."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    items = values.to_arrow(compat_level=pl.CompatLevel.newest()) if isinstance(values, pl.Series) else values
    return offsets_list_series(name, offsets, items)


def offsets_list_series(name: str, offsets: np.ndarray, items: pa.Array) -> pl.Series:
    """A list column whose row ``i`` holds ``items[offsets[i]:offsets[i + 1]]`` (int64 offsets)."""
    # Built so that neither pandas nor pyarrow.compute is imported (~1 s of start-up, once):
    # pa.array(ndarray) imports pandas, pl.Series(arrow array) imports pyarrow.compute.
    starts = pa.Array.from_buffers(pa.int64(), len(offsets), [None, pa.py_buffer(offsets)])
    lists = pa.LargeListArray.from_arrays(starts, items)
    return pl.DataFrame(pa.Table.from_arrays([lists], names=[name]))[name]


def gather_text(values: pl.Series, pick: np.ndarray) -> pa.Array:
    """``values[pick]`` (strings, none of the picked null) as Arrow string views, sharing the texts.

    A string view is 16 bytes that point into the texts, so picking is copying 16-byte records
    (one NumPy ``take``, ~20x cheaper than Polars' gather of strings); the texts are not copied.
    """
    array = values.to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.string_view():  # another layout: Polars' own gather
        return values.gather(pl.Series(pick)).to_arrow(compat_level=pl.CompatLevel.newest())
    _, views, *texts = array.buffers()
    records = np.frombuffer(views, dtype=np.complex128)[array.offset: array.offset + len(array)]  # 16 bytes each, copied as bits
    return pa.Array.from_buffers(pa.string_view(), len(pick), [None, pa.py_buffer(records.take(pick)), *texts])


def _number_variants(aspect: str, frame: pl.DataFrame, as_of: datetime | None) -> np.ndarray:
    """For a number aspect, a code per row that fixes its phrase's ``reason_pattern``: the numbers are
    blanked, so only a plural (n == 1), a minus sign and whether the second number is there remain."""
    numbers = frame.select([v.cast(pl.Int64).alias(f"n{j}") for j, v in enumerate(_phrase_numbers(as_of)[aspect])])
    code = np.zeros(frame.height, dtype=np.int64)
    for j, name in enumerate(numbers.columns):
        values = numbers[name]
        known = values.is_not_null().to_numpy()
        x = values.fill_null(0).to_numpy()
        code |= ((x == 1) << (3 * j)) | ((x < 0) << (3 * j + 1)) | (known << (3 * j + 2))
    return code


def _phrase_pattern_counts(aspect: str, frame: pl.DataFrame, phrases: pl.Series, as_of: datetime | None) -> Counter:
    """``pattern_counts(phrases)`` for the phrases of ``aspect`` written from ``frame``'s rows (row i
    gave phrase i). A number phrase's pattern follows from its numbers' variant, and a display name's
    is one for every name without a quote mark: those are blanked once per variant, not per row."""
    if aspect in NUMBER_PHRASES:
        variant = _number_variants(aspect, frame, as_of)
    elif aspect == "name":
        quoted = pl.Series(frame["display_name"].str.contains('"', literal=True).fill_null(True))
        plain = phrases.filter(~quoted)
        return pattern_counts(phrases.filter(quoted)) + _by_variant(np.zeros(len(plain), dtype=np.int64), plain)
    else:
        return pattern_counts(phrases)
    return _by_variant(variant, phrases)


def _by_variant(variant: np.ndarray, phrases: pl.Series) -> Counter:
    """Count ``phrases`` (nulls skipped) by ``variant``, one phrase of each blanked for the pattern."""
    known = phrases.is_not_null().to_numpy()
    variant = variant[known]
    if not variant.size:
        return Counter()
    counts = np.bincount(variant)  # codes are small (< 64): no sort
    present = np.flatnonzero(counts)
    first = [int(np.argmax(variant == v)) for v in present]  # a handful of codes
    examples = phrases.filter(pl.Series(known)).gather(pl.Series(first, dtype=pl.Int64))
    patterns = examples.to_frame("r").select(reason_pattern(pl.col("r")))["r"].to_list()
    tally: Counter = Counter()
    for pattern, n in zip(patterns, counts[present].tolist(), strict=True):
        tally[pattern] += n
    return tally


def phrase_slots(
    model: LoadedModel, frame: pl.DataFrame, rows: np.ndarray, order: np.ndarray, *, as_of: datetime | None = None,
    counted: np.ndarray | None = None, tally: Counter | None = None,
) -> tuple[np.ndarray, pl.Series]:
    """The phrases of the ranked aspects ``order`` (len(rows) × k) of ``frame``'s ``rows``, by aspect.

    Returns each phrase's slot (``i * k + rank``, ``i`` indexing ``rows``) and the phrases, null
    where the field is unknown (no reason). Each aspect's phrase is written only for the rows that
    name it (k of ~10 aspects per row), from only the columns it reads (a gather of those rows of
    the whole frame: neither the bio nor the other rows are copied).

    ``tally``, when given, receives the ``pattern_counts`` of the phrases of the rows ``counted``
    (booleans over ``rows``; all when None), as the audit's reason counts need them.
    """
    aspects, _ = _aspects(model.spec.features)
    k = order.shape[1]
    flat = order.ravel()
    named = np.flatnonzero(flat >= 0)
    by_aspect = named[np.argsort(flat[named], kind="stable")]  # slots grouped by aspect, in slot order
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat[named], minlength=len(aspects)))])
    exprs = dict(_phrase_exprs(as_of))
    phrases = []
    for a, aspect in enumerate(aspects):
        slots = by_aspect[bounds[a]: bounds[a + 1]]
        if not len(slots):
            continue
        needed = sorted(set(exprs.get(aspect, pl.lit(aspect)).meta.root_names()))
        if needed:
            sub = frame.select(needed)[rows[slots // k]]
            words = aspect_phrases(aspect, sub, as_of)
        else:
            sub, words = None, pl.repeat(aspect, len(slots), eager=True, dtype=pl.Utf8).alias("phrase")
        phrases.append(words)
        if tally is not None:
            keep = None if counted is None else counted[slots // k]
            if keep is not None and not keep.all():
                mask = pl.Series(keep)
                sub, words = (sub.filter(mask) if sub is not None else None), words.filter(mask)
            tally.update(_phrase_pattern_counts(aspect, sub, words, as_of) if sub is not None else pattern_counts(words))
    if not phrases:
        return np.zeros(0, dtype=np.int64), pl.Series("phrase", [], dtype=pl.Utf8)
    return by_aspect, pl.concat(phrases)
