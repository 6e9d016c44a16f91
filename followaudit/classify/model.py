"""The shipped gradient-boosted models: load, score, label, explain.

Three LightGBM models live as text files in ``followaudit/data/models`` with one model card
(``model_card.json``) that holds what scoring needs besides the trees: the feature list, the
isotonic calibration map, the decision threshold and the cross-validated sensitivity/specificity
that the prevalence correction uses. Nothing is pickled.

* ``twitter``: Cresci et al. 2015 (humans TFP/E13 vs fakes bought from INT/FSF/TWT), profile-only
  features computable from one user object;
* ``instagram``: InstaFake (Akyon & Kalfaoglu 2019);
* ``crossplatform``: features every platform has, trained on both; used for Bluesky, Mastodon and
  other imports, where its transfer is unmeasured (there is no labelled data for them).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..errors import ModelError
from ..schema import LABELS
from . import count_features, reason_lists, text_features
from .count_features import COUNT_FEATURES, count_feature_columns
from .features import add_features, feature_exprs
from .reason_lists import compiled_reason_lists
from .reasons import (
    MIN_CONTRIBUTION,
    TOP_K,
    gather_text,
    list_series,
    path_credit,
    pattern_counts,
    phrase_slots,
)
from .rules import R_REAL, inactive_codes, inactive_texts
from .text_features import TEXT_FEATURES, text_feature_columns
from .trees import TreeModel

if TYPE_CHECKING:
    import lightgbm as lgb

MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "models"
CARD_JSON = "model_card.json"
CARD_VERSION = 1

# Features that need the account's creation date (all per-day rates divide by age): removed
# together in the "no account age" evaluation, because FSF was created in three weeks.
AGE_FEATURES = frozenset({"age_days", "posts_per_day", "followers_per_day", "following_per_day", "likes_per_day"})

# Direction a feature may push the fake score, from domain knowledge (+1: more of it can only make
# "fake" more likely, -1: less likely). Monotone trees extrapolate to vendors never seen in training
# (a vendor whose fakes have no bio must not look human just because the training vendors wrote bios).
MONOTONE: dict[str, int] = {
    "log_followers": -1,
    "log_posts": -1,
    "log_likes": -1,
    "log_listed": -1,
    "following_per_follower": 1,
    "log_followers_per_following": -1,
    "bio_length": -1,
    "has_url": -1,
    "has_location": -1,
    "has_avatar": -1,
    "followers_per_day": -1,
    "posts_per_day": -1,
    "likes_per_day": -1,
    "handle_consonant_run": 1,
    "profile_emptiness": 1,
}

_TWITTER = (
    "log_followers", "log_following", "log_posts", "log_likes", "log_listed",
    "following_per_follower", "posts_per_day", "followers_per_day", "following_per_day", "likes_per_day",
    "age_days", "bio_length", "has_url", "has_location", "has_avatar",
    "handle_length", "handle_digits", "name_length", "name_words", "name_non_ascii", "handle_upper",
    "handle_underscores", "bio_mentions", "handle_consonant_run", "handle_has_first_name",
)  # fmt: skip
_INSTAGRAM = (
    "log_followers", "log_following", "log_posts", "following_per_follower", "posts_per_follower",
    "bio_length", "has_avatar", "private", "handle_length", "handle_digits", "handle_digit_share",
)  # fmt: skip
# No account age or per-day rates: on a newer network every account is young, and under the
# leave-one-domain-out protocol dropping them raised held-out specificity and cut the false-positive
# rate on Bluesky-like people from 25% to 18% (benchmarks/feature_transfer.py; model card).
_CROSS = (
    "log_followers", "log_following", "log_posts", "following_per_follower", "posts_per_follower",
    "has_avatar", "bio_length", "handle_length", "handle_digits", "handle_digit_share",
)  # fmt: skip

_BASE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    # bit-for-bit reproducible training
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "seed": 20150214,
    "verbose": -1,
}


@dataclass(frozen=True)
class ModelSpec:
    """What a model is trained on and how; the card records it, the code checks it on load."""

    name: str
    features: tuple[str, ...]
    training_data: tuple[str, ...]
    num_rounds: int
    params: dict[str, Any] = field(default_factory=dict)
    # Decision threshold policy: "specificity" puts the threshold where this share of held-out
    # real accounts score below it; "f1" maximises the F1 of the fake class on held-out scores.
    threshold_policy: str = "specificity"
    target_specificity: float = 0.99
    transfer_measured: bool = True
    # Weight rows so each group (TFP, E13; INT, FSF, TWT) counts equally within its class and both
    # classes equally: the small TWT vendor then weighs as much as INT.
    balance_groups: bool = False
    # Missing-field patterns (classify/masks.py) every training row is seen under; "full" first.
    masks: tuple[str, ...] = ("full",)

    def lgb_params(self, features: tuple[str, ...] | None = None) -> dict[str, Any]:
        feats = features or self.features
        params = {**_BASE_PARAMS, **self.params}
        params["monotone_constraints"] = [MONOTONE.get(f, 0) for f in feats]
        return params


SPECS: dict[str, ModelSpec] = {
    "twitter": ModelSpec("twitter", _TWITTER, ("cresci-2015",), num_rounds=100, target_specificity=0.985,
                         masks=("full", "bluesky", "counts", "usernames")),
    "instagram": ModelSpec("instagram", _INSTAGRAM, ("instafake",), num_rounds=100, threshold_policy="f1",
                           masks=("full", "counts", "usernames")),
    "crossplatform": ModelSpec(
        "crossplatform", _CROSS, ("cresci-2015", "instafake"), num_rounds=100, target_specificity=0.985,
        transfer_measured=False, masks=("full", "instagram", "counts", "usernames"),
    ),
}
PLATFORM_MODEL = {"twitter": "twitter", "instagram": "instagram"}
# Reason of a fake label whose contributions were not put in words (explain="none").
R_MODEL_FAKE = "the model judges the profile fake"


def model_for_platform(platform: str | None) -> str:
    """twitter -> twitter, instagram -> instagram, anything else -> crossplatform."""
    return PLATFORM_MODEL.get((platform or "").lower(), "crossplatform")


def feature_matrix(frame: pl.DataFrame | pl.LazyFrame, features: tuple[str, ...] | list[str], as_of: datetime | None = None) -> np.ndarray:
    """Float64 matrix of ``features`` (nulls become NaN, which LightGBM treats as missing)."""
    if isinstance(frame, pl.DataFrame):
        return np.asarray(FeatureColumns(feature_columns(frame, features, as_of))[:], dtype=np.float64)
    out = add_features(frame, as_of, list(features)).select([f"f_{n}" for n in features]).collect()
    return out.to_numpy(order="c").astype(np.float64, copy=False)


def feature_columns(frame: pl.DataFrame, features: tuple[str, ...] | list[str], as_of: datetime | None = None) -> list[np.ndarray]:
    """``feature_matrix``'s columns as separate float64 arrays, without building the matrix.

    The text features and the count and date features come from two compiled passes
    (``text_features.py``, ``count_features.py``: the same numbers as their Polars expressions); the
    rest are Polars expressions, handed over without a copy where Polars allows (a float column
    without nulls).
    """
    features = list(features)
    exprs = feature_exprs(as_of)
    text = [f for f in features if f in TEXT_FEATURES]
    fast = (text_feature_columns(frame, text, exprs) if text else None) or {}
    fast.update(count_feature_columns(frame, [f for f in features if f in COUNT_FEATURES], as_of) or {})
    rest = [f for f in features if f not in fast]
    values = frame.select([exprs[f].cast(pl.Float64).alias(f) for f in rest]) if rest else None
    columns = []
    for name in features:
        if name in fast:
            columns.append(fast[name])
        else:
            assert values is not None
            columns.append(np.asarray(values[name].to_numpy(), dtype=np.float64))  # nulls become NaN
    return columns


class FeatureColumns:
    """The feature matrix kept as its columns: ``X[rows]`` builds the matrix of those rows only.

    Labelling scores the columns directly; a caller that wants a sample of the matrix (the audit's
    shift profile) should not pay for copying all of it. ``np.asarray(X)`` gives the whole matrix.
    """

    def __init__(self, columns: list[np.ndarray]) -> None:
        self.columns = columns

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.columns[0]) if self.columns else 0, len(self.columns))

    def __getitem__(self, rows: Any) -> np.ndarray:
        """The matrix of ``rows``, column-major (each feature one contiguous run, as they are read)."""
        return np.stack([c[rows] for c in self.columns]).T if self.columns else np.zeros((0, 0))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        X = self[slice(None)]
        return X if dtype is None else X.astype(dtype)


@dataclass(frozen=True)
class LoadedModel:
    """One model ready to score: trees, calibration map, threshold and card entry."""

    name: str
    spec: ModelSpec
    trees: TreeModel
    calib_x: np.ndarray
    calib_y: np.ndarray
    threshold: float  # on the raw score (log-odds)
    card: dict[str, Any]
    path: Path
    text: str = ""
    _fast: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds), walked without LightGBM (``trees.py``; bit-identical to it)."""
        return self.trees.raw(X)

    @property
    def booster(self) -> lgb.Booster:
        """The LightGBM booster of the same file, loaded on first use (TreeSHAP, training, tests)."""
        if "booster" not in self._fast:
            import lightgbm as lgb  # lazily: importing LightGBM (and scikit-learn) costs seconds

            self._fast["booster"] = lgb.Booster(model_str=self.text)
        return self._fast["booster"]

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probability of "fake" (isotonic map, linear between its knots)."""
        return np.interp(raw, self.calib_x, self.calib_y)

    @property
    def threshold_probability(self) -> float:
        return float(self.calibrate(np.array([self.threshold]))[0])


def read_card(model_dir: Path | None = None) -> dict[str, Any]:
    path = (model_dir or MODEL_DIR) / CARD_JSON
    if not path.exists():
        raise ModelError(f"model card not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"model card {path} is not valid JSON ({exc})") from exc


@lru_cache(maxsize=16)
def _load_cached(name: str, model_dir: str) -> LoadedModel:
    directory = Path(model_dir)
    if name not in SPECS:
        raise ModelError(f"unknown model {name!r}", hint=f"choose one of {', '.join(SPECS)}")
    spec = SPECS[name]
    card = read_card(directory)
    entry = card.get("models", {}).get(name)
    path = directory / f"{name}.txt"
    if entry is None or not path.exists():
        raise ModelError(f"model {name!r} is missing from {directory}")
    text = path.read_text()
    trees = TreeModel.from_text(text)
    file_features = trees.feature_names
    card_features = tuple(entry.get("features", ()))
    if file_features != spec.features or card_features != spec.features:
        missing = sorted(set(spec.features) - set(file_features))
        extra = sorted(set(file_features) - set(spec.features))
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same names in another order"
        raise ModelError(
            f"the {name} model in {path} was trained on other features than this code computes ({detail})",
            hint="run `followaudit train` to rebuild the models, or use --method rules",
        )
    calib = entry["calibration"]
    return LoadedModel(
        name=name,
        spec=spec,
        trees=trees,
        calib_x=np.asarray(calib["x"], dtype=np.float64),
        calib_y=np.asarray(calib["y"], dtype=np.float64),
        threshold=float(entry["threshold"]["raw"]),
        card=entry,
        path=path,
        text=text,
    )


def load_model(name: str, model_dir: Path | None = None) -> LoadedModel:
    """The named model, loaded once per process and checked against the code's feature list."""
    return _load_cached(name, str((model_dir or MODEL_DIR).resolve()))


def model_info(platform: str | None, model_dir: Path | None = None) -> dict[str, Any]:
    """What the report says about the model used for ``platform``."""
    name = model_for_platform(platform)
    m = load_model(name, model_dir)
    cv = m.card.get("cv", {})
    counts = m.card["error_rates"]
    return {
        "name": name,
        "file": m.path.name,
        "training_data": list(m.spec.training_data),
        "training_sha256": m.card.get("training_sha256"),
        "cv": cv,
        "sensitivity": counts["sensitivity"],
        "specificity": counts["specificity"],
        "error_counts": {k: counts[k] for k in ("tp", "fn", "tn", "fp")},
        "threshold_probability": m.threshold_probability,
        "transfer_measured": m.spec.transfer_measured and (platform or "").lower() in PLATFORM_MODEL,
        "description": _describe(name, platform),
    }


def _describe(name: str, platform: str | None) -> str:
    if name == "twitter":
        return "LightGBM trained on Cresci et al. 2015 (bought Twitter followers vs verified humans), calibrated"
    if name == "instagram":
        return "LightGBM trained on InstaFake (Akyon & Kalfaoglu 2019), calibrated"
    where = platform or "this platform"
    return (
        "cross-platform LightGBM on profile fields every platform has, trained on Twitter and Instagram data; "
        f"its transfer to {where} is unmeasured (no labelled {where} data)"
    )


def prepare_kernels() -> None:
    """Load (or build, once per machine) the compiled kernels every model labelling uses, so an
    audit can do it in a thread while the file is checked; each loads once per process anyway."""
    text_features._library()
    count_features._library()
    reason_lists._library()


def label_model(
    followers: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: datetime | None,
    inactive_days: int = 90,
    platform: str | None = None,
    explain: str = "fake",
    model_dir: Path | None = None,
    features_out: dict[str, Any] | None = None,
    tally_out: Counter | None = None,
) -> pl.DataFrame:
    """Label every follower fake / inactive / real with the shipped model.

    Returns ``follower_id, label, probability, reasons, activity_unknown``. Fake (calibrated
    probability at or above the model's threshold) beats inactive (the rule in ``rules.py``)
    beats real. ``explain``: which followers get the model's top contributions in words —
    ``"fake"`` (default), ``"all"`` or ``"none"``; contributions are path attributions
    (``trees.py``), computed in the same pass as the scores.
    ``platform`` picks the model; None uses each row's ``platform`` column. ``features_out``, when
    given (single-platform frames), receives the feature matrix under ``"X"`` as ``FeatureColumns``
    (``X[rows]`` is a NumPy matrix of those rows; ``np.asarray(X)`` the whole) and the model's name
    under ``"model"``, so a caller that needs it too (the audit's shift diagnostic) does not compute
    it twice. ``tally_out``, when given (single-platform frames), receives the reasons of the fake
    and inactive followers counted by ``reason_pattern``, as ``LabelTally`` counts them from the text
    (it is told here, from the phrases' numbers, at a fraction of the cost).
    """
    frame = followers.collect() if isinstance(followers, pl.LazyFrame) else followers
    if platform is None and frame.height and frame["platform"].n_unique() > 1:
        parts = frame.with_row_index("_order").partition_by("platform", maintain_order=True)
        out = pl.concat(
            [
                label_model(p.drop("_order"), as_of=as_of, inactive_days=inactive_days, platform=p["platform"][0],
                            explain=explain, model_dir=model_dir, tally_out=tally_out).with_columns(p["_order"])
                for p in parts
            ]
        )
        return out.sort("_order").drop("_order")
    if platform is None and frame.height:
        platform = frame["platform"][0]
    model = load_model(model_for_platform(platform), model_dir)
    if explain not in ("fake", "all", "none"):
        raise ValueError(f"explain must be 'fake', 'all' or 'none', got {explain!r}")
    columns = feature_columns(frame, model.spec.features, as_of)
    # One pass of the compiled trees: scores, and the top aspects of the rows to explain. The
    # features stay separate arrays: the matrix is built only for a caller that asks for it.
    raw, top = model.trees.score(columns, credit=path_credit(model) if explain != "none" else None, threshold=model.threshold,
                                 explain=explain, k=TOP_K, min_credit=MIN_CONTRIBUTION)
    prob = model.calibrate(raw)
    if features_out is not None:
        features_out.update(X=FeatureColumns(columns), model=model.name)
    is_fake = raw >= model.threshold
    inactive, activity_unknown = inactive_codes(frame, as_of=as_of, inactive_days=inactive_days)
    n = frame.height
    is_inactive = inactive > 0
    # fake beats inactive beats real; 0/1 arithmetic on bytes (nested np.where cost ~10 ms per 500k)
    not_fake = 1 - is_fake.view(np.uint8)
    code = (not_fake * (2 - is_inactive.view(np.uint8))).astype(np.uint32)
    label = pl.Series("label", list(LABELS)).gather(pl.Series(code))  # codes index LABELS
    # The fixed reason of each row: the model's verdict for a fake, the inactivity rule's reason, or real.
    fixed_texts = [R_MODEL_FAKE, R_REAL, *inactive_texts(inactive_days)]
    fixed = (not_fake * (inactive.astype(np.uint8) + 1)).astype(np.int64)  # 0 fake, 1 real, 2.. inactive (code + 1)
    counted = code != 2  # reasons are counted for fake and inactive followers
    # One compiled pass writes the lists; phrase_slots and _reason_lists are the same text in Polars and NumPy.
    reasons = compiled_reason_lists(model, frame, columns, top, explain=explain, is_fake=is_fake, fixed=fixed,
                                    fixed_texts=fixed_texts, counted=counted, as_of=as_of, tally=tally_out)
    if reasons is None:
        want = {"fake": is_fake, "all": np.ones(n, dtype=bool), "none": np.zeros(n, dtype=bool)}[explain]
        idx = np.flatnonzero(want)
        slot, words = np.zeros(0, dtype=np.int64), pl.Series("phrase", [], dtype=pl.Utf8)
        if len(idx):
            assert top is not None
            slot, words = phrase_slots(model, frame, idx, top[idx], as_of=as_of, counted=counted[idx], tally=tally_out)
        reasons = _reason_lists(fixed, fixed_texts, is_fake, idx, top.shape[1] if top is not None else 1, slot, words,
                                counted=counted, tally=tally_out)
    return pl.DataFrame(
        [frame["follower_id"], label, pl.Series("probability", prob), reasons, activity_unknown]
    )



def _reason_lists(fixed: np.ndarray, fixed_texts: list[str], is_fake: np.ndarray, idx: np.ndarray, k: int,
                  slot: np.ndarray, words: pl.Series, *, counted: np.ndarray | None = None,
                  tally: Counter | None = None) -> pl.Series:
    """Each row's reasons: the model's words for the rows ``idx`` (``phrase_slots``: ``words[j]`` is
    rank ``slot[j] % k`` of row ``idx[slot[j] // k]``; null words are no reason), after the row's
    fixed reason ``fixed_texts[fixed]``. A fake row's reasons are its words alone, its fixed reason
    (the model's verdict) when it has none.

    No list is built per row: every reason is picked from one vocabulary (the few fixed texts, then
    the words as they come) and the result is cut into lists by the counts (building string lists
    row by row, or joining them in, was the slow part of labelling millions of followers).
    ``tally`` receives the ``pattern_counts`` of the fixed reasons of the rows ``counted``.
    """
    n = len(fixed)
    is_known = words.is_not_null().to_numpy()
    known = slot[is_known]
    present = np.zeros((len(idx), k), dtype=np.int8)
    present.ravel()[known] = 1
    before = np.zeros_like(present)  # known words at lower ranks of the same row
    for rank in range(1, k):  # k <= 3: column by column (cumsum along a short axis is slow)
        before[:, rank] = before[:, rank - 1] + present[:, rank - 1]
    within = before.ravel()[known]
    words_per_row = np.zeros(n, dtype=np.int64)
    words_per_row[idx] = before[:, -1] + present[:, -1] if k else 0
    has_fixed = (words_per_row == 0) | ~is_fake
    if tally is not None:
        times = np.bincount(fixed[has_fixed & counted] if counted is not None else fixed[has_fixed], minlength=len(fixed_texts))
        tally.update(pattern_counts(pl.Series(fixed_texts, dtype=pl.Utf8), pl.Series(times, dtype=pl.Int64)))
    per_row = has_fixed.astype(np.int64) + words_per_row
    start = np.zeros(n, dtype=np.int64)
    np.cumsum(per_row[:-1], out=start[1:])
    pick = np.empty(int(per_row.sum()), dtype=np.int64)
    pick[start[has_fixed]] = fixed[has_fixed]
    row = idx[known // k]
    pick[start[row] + has_fixed[row] + within] = len(fixed_texts) + np.flatnonzero(is_known)
    vocabulary = pl.concat([pl.Series("phrase", fixed_texts, dtype=pl.Utf8), words.alias("phrase")])
    return list_series("reasons", per_row, gather_text(vocabulary, pick))
