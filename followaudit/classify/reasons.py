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

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from .features import feature_exprs

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


def _plural(n: pl.Expr, one: str, many: str) -> pl.Expr:
    return pl.when(n == 1).then(pl.lit(one)).otherwise(pl.lit(many))


def _yes_no(column: str, yes: str, no: str) -> pl.Expr:
    """Phrase for a boolean field: null (unknown) stays null."""
    return pl.when(pl.col(column)).then(pl.lit(yes)).when(~pl.col(column)).then(pl.lit(no))


def phrase_exprs(as_of: datetime | None = None) -> dict[str, pl.Expr]:
    """aspect -> phrase for each row (null when the input is unknown). Canonical columns in, text out."""
    f = feature_exprs(as_of)
    age = f["age_days"].floor()
    following, followers = pl.col("following_count"), pl.col("followers_count")
    posts = pl.col("posts_count")
    handle = pl.col("handle")
    no_handle = handle.is_null() | (handle.str.len_chars() == 0)
    return {
        "ratio": pl.when(following.is_not_null() & followers.is_not_null()).then(pl.format("follows {} {}, followed by {}", thousands(following), _plural(following, "account", "accounts"), thousands(followers))),
        "posts": pl.when(age.is_not_null())
        .then(pl.format("{} {} in {} days", thousands(posts), _plural(posts, "post", "posts"), thousands(age)))
        .otherwise(pl.format("{} {}", thousands(posts), _plural(posts, "post", "posts"))),
        "likes": pl.format("has liked {} {}", thousands(pl.col("likes_count")), _plural(pl.col("likes_count"), "post", "posts")),
        "listed": pl.format("on {} {}", thousands(pl.col("listed_count")), _plural(pl.col("listed_count"), "list", "lists")),
        "age": pl.format("account {} days old when seen", thousands(age)),
        # a field the data lacks (null) gives no phrase: a reason states only what the data says
        "avatar": _yes_no("has_avatar", "has a profile picture", "no profile picture"),
        "bio": pl.when(pl.col("bio_length") == 0).then(pl.lit("empty bio"))
        .when(pl.col("bio_length") > 0).then(pl.format("bio of {} characters", pl.col("bio_length"))),
        "url": _yes_no("has_url", "has a website", "no website"),
        "location": _yes_no("has_location", "has a location", "no location"),
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
        "private": _yes_no("private", "private account", "public account"),
    }


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


def phrase_columns(as_of: datetime | None = None) -> list[str]:
    """The canonical columns the phrases read (a frame narrowed to them explains the same)."""
    return sorted({c for e in phrase_exprs(as_of).values() for c in e.meta.root_names()})


def top_aspects(model: LoadedModel, X: np.ndarray, is_fake: np.ndarray, *, k: int = TOP_K, method: str = "path") -> np.ndarray:
    """rows × k aspect indices pushing hardest towards each row's label, -1 below ``MIN_CONTRIBUTION``."""
    aspects, C = aspect_contributions(model, X, method=method)
    toward = np.where(is_fake[:, None], C, -C)
    k = min(k, len(aspects))
    order = np.argsort(-toward, axis=1, kind="stable")[:, :k]
    strong = np.take_along_axis(toward, order, axis=1) >= MIN_CONTRIBUTION
    return np.where(strong, order, -1)


def list_series(name: str, counts: np.ndarray, values: pl.Series) -> pl.Series:
    """A list column whose row ``i`` holds the next ``counts[i]`` of ``values`` (no per-row Python)."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    items = values.to_arrow(compat_level=pl.CompatLevel.newest())
    # Built so that neither pandas nor pyarrow.compute is imported (~1 s of start-up, once):
    # pa.array(ndarray) imports pandas, pl.Series(arrow array) imports pyarrow.compute.
    starts = pa.Array.from_buffers(pa.int64(), len(offsets), [None, pa.py_buffer(offsets)])
    lists = pa.LargeListArray.from_arrays(starts, items)
    return pl.DataFrame(pa.Table.from_arrays([lists], names=[name]))[name]


def explain_flat(
    model: LoadedModel, frame: pl.DataFrame, X: np.ndarray | None, is_fake: np.ndarray, *, as_of: datetime | None = None,
    k: int = TOP_K, method: str = "path", top: np.ndarray | None = None,
) -> tuple[np.ndarray, pl.Series]:
    """``explain_rows`` flattened: phrases per row (``counts``) and all phrases in row order.

    ``X`` is read only when ``top`` is not given."""
    aspects, _ = _aspects(model.spec.features)
    if top is None:
        if X is None:
            raise ValueError("explain_flat needs X or top")
        top = top_aspects(model, X, is_fake, k=k, method=method)
    order = top[:, :k]
    k = order.shape[1]
    exprs = phrase_exprs(as_of)
    # Each aspect's phrase is written only for the rows that name it (k of ~10 aspects per row):
    # formatting every aspect for every row was the slow part of explaining a million followers.
    slots, phrases = [], []
    for a, aspect in enumerate(aspects):
        rows, rank = np.nonzero(order == a)
        if len(rows):
            expr = exprs.get(aspect, pl.lit(aspect))
            needed = sorted(set(expr.meta.root_names()))  # gather only the columns the phrase reads, not the bio
            phrase = (frame.select(needed)[rows].select(expr.cast(pl.Utf8).alias("phrase"))["phrase"] if needed
                      else pl.repeat(aspect, len(rows), eager=True).alias("phrase"))
            slots.append(rows.astype(np.int64) * k + rank)
            phrases.append(phrase)
    if not phrases:
        return np.zeros(frame.height, dtype=np.int64), pl.Series("phrase", [], dtype=pl.Utf8)
    slot = np.concatenate(slots)
    values = pl.concat(phrases)
    known = values.is_not_null().to_numpy()  # a phrase is null when its field is unknown: no reason
    slot, values = slot[known], values.filter(pl.Series(known))
    # Into (row, rank) order without a sort: every slot is taken once.
    where = np.full(frame.height * k, -1, dtype=np.int64)
    where[slot] = np.arange(len(slot))
    where = where[where >= 0]
    counts = np.bincount(slot // k, minlength=frame.height)
    return counts, values.gather(where)


def explain_rows(
    model: LoadedModel, frame: pl.DataFrame, X: np.ndarray, is_fake: np.ndarray, *, as_of: datetime | None = None, k: int = TOP_K,
    method: str = "path", top: np.ndarray | None = None,
) -> pl.Series:
    """Up to ``k`` phrases per row: the aspects that push hardest towards the row's label.

    ``method``: how contributions are computed (see :func:`aspect_contributions`). ``top``: the
    rows' ranked aspects when already known (``trees.TreeModel.score`` ranks them in the scoring
    pass; same values as :func:`top_aspects`), so ``X`` is not walked again.
    """
    if frame.height == 0:
        return pl.Series("model_reasons", [], dtype=pl.List(pl.Utf8))
    counts, values = explain_flat(model, frame, X, is_fake, as_of=as_of, k=k, method=method, top=top)
    return list_series("model_reasons", counts, values)
