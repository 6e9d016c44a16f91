"""The compiled scoring pass and text features: the same numbers as LightGBM and as the Polars definitions.

``TreeModel.score`` runs each model's own trees as straight-line C and ranks path credits in the
same pass; ``text_features`` computes seven text features in C with a Polars fallback for text that
needs Unicode rules. Both must equal the reference bit for bit, on rows chosen to hit every branch.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from followaudit.classify import count_features as CF
from followaudit.classify import model as M
from followaudit.classify import reason_lists as RL
from followaudit.classify import reasons as R
from followaudit.classify import text_features as TF
from followaudit.classify.datasets import load_cresci2015, load_instafake
from followaudit.classify.features import add_features, feature_exprs
from followaudit.classify.rules import R_REAL, inactive_texts
from followaudit.native import build
from followaudit.schema import conform
from followaudit.sources.synth import OBSERVED_AT, SynthSpec, generate

AS_OF = datetime(2026, 11, 28, tzinfo=UTC)


def hard_rows(n_features: int, n: int = 6000, seed: int = 3) -> np.ndarray:
    """Values around every threshold, exact zeros, negative zeros and NaNs."""
    rng = np.random.default_rng(seed)
    X = rng.normal(1.0, 3.0, size=(n, n_features))
    X[rng.random(X.shape) < 0.15] = np.nan
    X[rng.random(X.shape) < 0.05] = 0.0
    X[rng.random(X.shape) < 0.02] = -0.0
    return X


def without_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    """No C compiler from here on: every compiled library is loaded again, as None."""
    monkeypatch.setenv("FOLLOWAUDIT_COMPILE", "0")
    monkeypatch.setattr(build, "_LIB", {})


def assert_feature_matrix_matches_polars(frame: pl.DataFrame, features: tuple[str, ...], as_of: datetime) -> None:
    """``feature_matrix`` equals the features' Polars expressions bit for bit."""
    X = M.feature_matrix(frame, features, as_of)
    ref = add_features(frame, as_of, list(features)).select([f"f_{n}" for n in features]).collect().to_numpy()
    assert np.array_equal(np.ascontiguousarray(X).view(np.int64), np.ascontiguousarray(ref).view(np.int64)), features


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWAUDIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setattr(build, "_LIB", {})


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_compiled_scores_equal_lightgbm_and_the_generic_walk(name: str) -> None:
    lgb = pytest.importorskip("lightgbm")
    m = M.load_model(name)
    X = hard_rows(len(m.spec.features))
    raw, top = m.trees.score(X)
    assert top is None and m.trees._compiled() is not None
    assert np.array_equal(raw, lgb.Booster(model_str=m.text).predict(X, raw_score=True))
    assert np.array_equal(raw, m.trees.walk(X)[0])
    # Any layout of the same numbers: C order, Fortran order, one array per feature, two threads.
    for same in (np.asfortranarray(X), [X[:, j].copy() for j in range(X.shape[1])]):
        assert np.array_equal(m.trees.score(same, threads=2)[0], raw)


@pytest.mark.parametrize("explain", ["fake", "all"])
@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_compiled_top_reasons_equal_the_numpy_ranking(name: str, explain: str) -> None:
    m = M.load_model(name)
    X = hard_rows(len(m.spec.features))
    credit = R.path_credit(m)
    raw, top = m.trees.score(X, credit=credit, threshold=m.threshold, explain=explain, k=R.TOP_K, min_credit=R.MIN_CONTRIBUTION)
    is_fake = raw >= m.threshold
    rows = is_fake if explain == "fake" else np.ones(len(X), dtype=bool)
    assert top is not None and rows.any() and (top >= 0).any()
    expected = np.full_like(top, -1)
    expected[rows] = R.top_aspects(m, X[rows], is_fake[rows])
    assert np.array_equal(top, expected)


@pytest.mark.parametrize("groups", [1, 5, 13])
def test_compiled_ranking_of_any_number_of_credit_groups(groups: int) -> None:
    """The credit rows are padded to a multiple of 4 (``credit_width``): any count ranks as NumPy does."""
    m = M.load_model("twitter")
    X = hard_rows(len(m.spec.features), n=3000)
    credit = np.random.default_rng(groups).normal(0.0, 0.3, size=(len(m.trees.leaf_value), groups))
    compiled = m.trees.score(X, credit=credit, threshold=m.threshold, explain="all", min_credit=0.05)
    plain = m.trees._score_numpy(X, credit, m.threshold, 2, min(3, groups), 0.05)
    assert np.array_equal(compiled[0], plain[0]) and np.array_equal(compiled[1], plain[1])
    assert (compiled[1] >= 0).any()


def test_without_a_compiler_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    m = M.load_model("twitter")
    X = hard_rows(len(m.spec.features), n=2000)
    credit = R.path_credit(m)
    compiled = m.trees.score(X, credit=credit, threshold=m.threshold, explain="fake", min_credit=R.MIN_CONTRIBUTION)
    without_compiler(monkeypatch)
    plain = m.trees.score(X, credit=credit, threshold=m.threshold, explain="fake", min_credit=R.MIN_CONTRIBUTION)
    assert np.array_equal(compiled[0], plain[0]) and np.array_equal(compiled[1], plain[1])


def test_bad_shapes_are_refused() -> None:
    m = M.load_model("twitter")
    with pytest.raises(ValueError):
        m.trees.score(np.zeros((3, 2)))
    with pytest.raises(ValueError):
        m.trees.score([np.zeros(3)] * 2)
    with pytest.raises(ValueError):
        m.trees.score(np.zeros((3, len(m.spec.features))), explain="fake")


# -- text features -------------------------------------------------------------------------------

TRICKY_TEXT = [
    None, "", " ", "a", "ab", "abc", "  Marco   Rossi  ", "\tx\ny\x0bz\x0cw\rv", "\x1cword\x1fword",
    "José García", "Ａｎｎａ", "Kelvin K", "İstanbul", "ſtraße", "emoji 😀 name", "a\u00a0b\u3000c", "a\u2003b",
    "NolascocyrAndre", "brockgcyk", "BCDFGHJKLM", "xyzzy", "___", "A_B_C", "@user #tag @ #", "@@x ##y", "@é #ü @_ok",
    "mail@example.com #1", "DROP", "andre", "Andree Nolasco", "x" * 40, "rhythm", "Tsktsk", "abc def ghi",
    "a long bio of several words, then @handle_x and #tag_y, @é and # at the very end @",
]  # fmt: skip


def _text_frame() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    n = 4000
    pick = lambda: [TRICKY_TEXT[i] for i in rng.integers(0, len(TRICKY_TEXT), n)]  # noqa: E731
    return pl.DataFrame({"handle": pick(), "display_name": pick(), "bio": pick()}, schema={c: pl.Utf8 for c in TF.TEXT_COLUMNS})


def assert_text_features_match_polars(frame: pl.DataFrame) -> None:
    """The compiled text features of ``frame`` equal their Polars definitions, bit for bit (NaN too)."""
    exprs = feature_exprs(AS_OF)
    fast = TF.text_feature_columns(frame, list(TF.TEXT_FEATURES), exprs)
    assert fast is not None
    reference = frame.select([exprs[f].cast(pl.Float64).alias(f) for f in TF.TEXT_FEATURES])
    for name in TF.TEXT_FEATURES:
        assert np.array_equal(fast[name], reference[name].to_numpy().astype(np.float64), equal_nan=True), name


def test_text_features_equal_their_polars_definitions() -> None:
    assert_text_features_match_polars(_text_frame())


def test_text_features_read_sliced_and_chunked_string_views() -> None:
    """Views with an offset (a slice), several chunks, long and inline (<= 12 bytes) texts and nulls."""
    frame = _text_frame()
    parts = pl.concat([frame[5:1700], frame[1700:3999]], rechunk=False)
    assert parts["bio"].n_chunks() == 2
    for piece in (frame[333:2500], parts, frame[:0].clear(3)):
        assert_text_features_match_polars(piece)


def test_every_ascii_character_follows_the_polars_rules() -> None:
    """The kernel's ASCII rules (whitespace, word characters, consonants, case) for all 128 characters."""
    chars = [chr(c) for c in range(1, 128)]
    texts = [f"ab{c}cd" for c in chars] + [f"@{c}" for c in chars] + [f"b{c}c" for c in chars] + [f"{c}Abc" for c in chars]
    assert_text_features_match_polars(pl.DataFrame({"handle": texts, "display_name": texts[::-1], "bio": texts}))


def test_feature_matrix_equals_the_polars_expressions_on_synthetic_followers() -> None:
    frame = conform(generate(SynthSpec(5000, seed=4)))
    frame = frame.with_columns(  # some names and handles that need Unicode rules
        pl.when(pl.int_range(pl.len()) % 7 == 0).then(pl.lit("Zoë 😀 Kelvin")).otherwise(pl.col("display_name")).alias("display_name"),
        pl.when(pl.int_range(pl.len()) % 11 == 0).then(pl.lit("ſtraße_K")).otherwise(pl.col("handle")).alias("handle"),
    )
    for spec in M.SPECS.values():
        assert_feature_matrix_matches_polars(frame, spec.features, OBSERVED_AT)


def test_label_model_is_the_same_with_and_without_the_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    frame = conform(generate(SynthSpec(3000, seed=9)))
    compiled = M.label_model(frame, as_of=OBSERVED_AT, explain="all")
    without_compiler(monkeypatch)
    plain = M.label_model(frame, as_of=OBSERVED_AT, explain="all")
    assert compiled.equals(plain)
    assert compiled["reasons"].list.len().min() >= 1


def test_features_out_hands_over_the_feature_matrix_by_rows() -> None:
    frame = conform(generate(SynthSpec(2000, seed=5)))
    out: dict = {}
    M.label_model(frame, as_of=OBSERVED_AT, platform="twitter", features_out=out)
    m = M.load_model("twitter")
    reference = M.feature_matrix(frame, m.spec.features, OBSERVED_AT)
    rows = np.arange(3, 2000, 11)
    assert out["model"] == "twitter" and out["X"].shape == reference.shape
    assert np.array_equal(out["X"][rows], reference[rows], equal_nan=True)
    assert np.array_equal(np.asarray(out["X"]), reference, equal_nan=True)


# -- reasons in words ----------------------------------------------------------------------------

EDGE_COUNTS = [0, 1, -1, 2, 999, 1000, -1000, 9999, 123456, 999999, 1000000, -1234567, 999999999, 1000000000,
               12345678901, 1234567890123, 2**63 - 1, -(2**63) + 1, None]  # fmt: skip


def test_compiled_number_phrases_equal_their_definitions_on_counts_of_every_size() -> None:
    values = pl.Series(EDGE_COUNTS * 7, dtype=pl.Int64)
    frame = conform(generate(SynthSpec(len(values), seed=3))).with_columns(
        following_count=values, followers_count=values.shuffle(4), posts_count=values.shuffle(5), likes_count=values,
        listed_count=values.shuffle(6))
    for piece in (frame, frame[5:90]):
        reference = piece.select(**R.phrase_exprs(AS_OF))
        for aspect in R.NUMBER_PHRASES:
            fast = R.number_phrases(aspect, piece, AS_OF)
            assert fast is not None and fast.equals(reference[aspect], check_names=False, null_equal=True), aspect
    assert R.number_phrases("bio", frame, AS_OF) is None


def test_every_aspect_phrase_equals_its_polars_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    frame = conform(generate(SynthSpec(3000, seed=5)))
    n = frame.height
    counts = pl.Series([EDGE_COUNTS[i] for i in rng.integers(0, len(EDGE_COUNTS), n)], dtype=pl.Int64)
    frame = frame.with_columns(
        following_count=counts, likes_count=counts.shuffle(1), listed_count=counts.shuffle(2),
        posts_count=pl.when(pl.Series(rng.random(n) < 0.3)).then(counts.shuffle(3)).otherwise(pl.col("posts_count")),
        created_at=pl.when(pl.Series(rng.random(n) < 0.1)).then(None).otherwise(pl.col("created_at")),
        observed_at=pl.when(pl.Series(rng.random(n) < 0.1)).then(None).otherwise(pl.col("observed_at")),
    )
    for as_of in (AS_OF, None):
        reference = frame.select(**R.phrase_exprs(as_of))
        for aspect in reference.columns:
            assert R.aspect_phrases(aspect, frame, as_of).equals(reference[aspect], check_names=False, null_equal=True), aspect
    without_compiler(monkeypatch)
    assert R.number_phrases("ratio", frame, AS_OF) is None
    assert R.aspect_phrases("ratio", frame, AS_OF).equals(frame.select(R.phrase_exprs(AS_OF)["ratio"]).to_series(),
                                                          check_names=False, null_equal=True)


# -- count and date features ---------------------------------------------------------------------


def test_count_features_equal_their_polars_definitions_with_nulls() -> None:
    rng = np.random.default_rng(12)
    frame = conform(generate(SynthSpec(4000, seed=6)))
    n = frame.height
    frame = frame.with_columns(
        [pl.when(pl.Series(rng.random(n) < 0.15)).then(None).otherwise(pl.col(c)).alias(c)
         for c in (*CF.INT_COLUMNS, *CF.TIME_COLUMNS, *CF.BOOL_COLUMNS)]
    ).with_columns(followers_count=pl.when(pl.int_range(pl.len()) % 9 == 0).then(pl.lit(70_000_123_456)).otherwise(pl.col("followers_count")))
    chunked = pl.concat([frame[7:1500], frame[1500:]], rechunk=False)  # read batch by batch, no copy
    assert chunked.n_chunks() > 1
    for as_of, piece in ((AS_OF, frame[7:]), (None, frame[7:]), (AS_OF, chunked), (AS_OF, frame[:0])):
        fast = CF.count_feature_columns(piece, list(CF.COUNT_FEATURES), as_of)
        assert fast is not None
        exprs = feature_exprs(as_of)
        reference = piece.select([exprs[f].cast(pl.Float64).alias(f) for f in CF.COUNT_FEATURES])
        for name in CF.COUNT_FEATURES:
            assert np.array_equal(fast[name].view(np.int64), reference[name].to_numpy().view(np.int64)), name


def test_count_features_fall_back_to_polars_when_the_check_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = conform(generate(SynthSpec(500, seed=2)))
    monkeypatch.setattr(CF, "_same_as_polars", lambda lib: False)  # a fresh build._LIB: checked again
    assert CF.count_feature_columns(frame, ["log_followers"], AS_OF) is None
    assert_feature_matrix_matches_polars(frame, M.SPECS["twitter"].features, AS_OF)


# -- the reasons column in one compiled pass (reason_lists.py) -----------------------------------

NAMES = [None, "", "Ann", 'Ann "the bot" 7', 'say "hi', '"', '""', "Zoë 2024", "e\u0301\u0301 combining", "🙂🚀 fans", "名前 ٣٤",
         "x" * 5000, "a\nb\tc", "12,345.6 twelve", "exactly12chr", "Kelvin K ſ"]  # fmt: skip
HANDLES = [None, "", "bot_0042", "x", "Anna.B", "ünï", 'abc"def"12', 'q"1', "٣user", "ſtrong", "K1", "🙂", "a" * 300,
           "bcdfghjklm99", "1,2.3x"]  # fmt: skip
SMALL = [None, 0, 1, -2, 15, 12345]


def every_branch(rows: int, seed: int) -> pl.DataFrame:
    """Synthetic followers whose every phrase input takes each of its kinds of value: nulls, empty
    text, quotes, non-ASCII and combining characters, emoji, long texts, counts of every size."""
    rng = np.random.default_rng(seed)
    frame = conform(generate(SynthSpec(rows, seed=seed)))
    n = frame.height

    def pick(values: list) -> pl.Series:
        return pl.Series([values[i] for i in rng.integers(0, len(values), n)])

    def some(column: str, values: list, share: float = 0.5) -> pl.Expr:
        return pl.when(pl.Series(rng.random(n) < share)).then(pick(values).cast(frame.schema[column])).otherwise(pl.col(column)).alias(column)

    counts = [some(c, EDGE_COUNTS) for c in ("following_count", "followers_count", "posts_count", "likes_count", "listed_count")]
    small = [some(c, SMALL) for c in ("bio_length", "handle_length", "handle_digits")]
    flags = [some(c, [None, True, False]) for c in ("has_avatar", "has_url", "has_location", "private")]
    later = pl.col("observed_at") + pl.duration(days=40)
    frame = frame.with_columns(
        *counts, *small, *flags, some("display_name", NAMES), some("handle", HANDLES), some("observed_at", [None], 0.1),
        pl.when(pl.Series(rng.random(n) < 0.05)).then(later).otherwise(pl.col("created_at")).alias("created_at"),  # age below zero: 0
    )
    return frame.with_columns(some("created_at", [None], 0.05))


class Spec:
    def __init__(self, features: tuple[str, ...]) -> None:
        self.features = features


class Model:
    """What the reasons read of a model: its features (for the aspects)."""

    def __init__(self, features: tuple[str, ...]) -> None:
        self.spec = Spec(features)


# Every aspect, with and without the age and the consonant run among the model's features, and an
# aspect without a phrase (its name is the reason).
ALL_ASPECTS = tuple(f for feats in R.ASPECTS.values() for f in feats)
ASPECT_MODELS = [ALL_ASPECTS, (*[f for f in ALL_ASPECTS if f not in ("age_days", "handle_consonant_run")], "mystery_feature")]


def both_routes(frame: pl.DataFrame, features: tuple[str, ...], top: np.ndarray, explain: str, as_of: datetime | None,
                seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``compiled_reason_lists`` equals ``phrase_slots`` + ``_reason_lists`` without a compiler: the
    list column and the reason counts."""
    rng = np.random.default_rng(seed)
    n = frame.height
    model = Model(features)
    fixed_texts = [M.R_MODEL_FAKE, R_REAL, *inactive_texts(90)]
    is_fake = rng.random(n) < 0.6
    fixed = np.where(is_fake, 0, rng.integers(1, len(fixed_texts), n))
    counted = rng.random(n) < 0.7
    columns = M.feature_columns(frame, features[:-1] if features[-1] == "mystery_feature" else features, as_of)
    tally: Counter = Counter()
    fast = RL.compiled_reason_lists(model, frame, columns, top, explain=explain, is_fake=is_fake, fixed=fixed,  # type: ignore[arg-type]
                                    fixed_texts=fixed_texts, counted=counted, as_of=as_of, tally=tally)
    assert fast is not None
    with monkeypatch.context() as patch:
        without_compiler(patch)
        want = {"fake": is_fake, "all": np.ones(n, dtype=bool), "none": np.zeros(n, dtype=bool)}[explain]
        idx = np.flatnonzero(want)
        expected: Counter = Counter()
        slot, words = np.zeros(0, dtype=np.int64), pl.Series("phrase", [], dtype=pl.Utf8)
        if len(idx):
            slot, words = R.phrase_slots(model, frame, idx, top[idx], as_of=as_of, counted=counted[idx], tally=expected)  # type: ignore[arg-type]
        reference = M._reason_lists(fixed, fixed_texts, is_fake, idx, top.shape[1], slot, words, counted=counted, tally=expected)
    assert fast.dtype == reference.dtype and fast.len() == n
    assert fast.to_list() == reference.to_list()
    assert fast.equals(reference)
    assert tally == expected
    assert sum(tally.values()) > 0


@pytest.mark.parametrize("features", ASPECT_MODELS, ids=["with-age-and-run", "without"])
@pytest.mark.parametrize("explain", ["fake", "all", "none"])
def test_compiled_reason_lists_equal_the_polars_route_on_every_branch(features: tuple[str, ...], explain: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    frame = every_branch(4000, seed=11)
    aspects = R._aspects(features)[0]
    rng = np.random.default_rng(5)
    # each row names 3 distinct aspects (or none: -1), so every aspect meets every kind of value
    top = np.argsort(rng.random((frame.height, len(aspects))), axis=1)[:, :3].astype(np.int8)
    top[rng.random(top.shape) < 0.15] = -1
    chunked = pl.concat([frame[:1234], frame[1234:3001], frame[3001:]], rechunk=False)
    assert chunked.n_chunks() > 1
    for as_of, piece, rows in ((AS_OF, frame, slice(None)), (None, chunked, slice(None)), (AS_OF, frame[17:], slice(17, None))):
        both_routes(piece, features, np.ascontiguousarray(top[rows]), explain, as_of, seed=3, monkeypatch=monkeypatch)


@pytest.mark.parametrize("room", [(1 << 20, 64), (0, 0), (200, 0)], ids=["room", "no-room", "some-room"])
def test_compiled_reasons_quote_every_name_and_handle(room: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every display name and handle of the lists above, each a reason of its row; their patterns
    blanked in C, by reason_pattern when no room is left for them, or some of each."""
    monkeypatch.setattr(RL, "PATTERN_ROOM", room)
    texts = max(len(NAMES), len(HANDLES))
    frame = every_branch(texts * 4, seed=2).with_columns(
        display_name=pl.Series((NAMES * 4 * texts)[: texts * 4]), handle=pl.Series((HANDLES * 4 * texts)[: texts * 4]))
    aspects = R._aspects(ALL_ASPECTS)[0]
    top = np.full((frame.height, 2), -1, dtype=np.int8)
    top[:, 0], top[:, 1] = aspects.index("name"), aspects.index("handle")
    for features in ASPECT_MODELS:
        both_routes(frame, features, top, "all", AS_OF, seed=1, monkeypatch=monkeypatch)


@pytest.mark.parametrize("difficulty", [0.0, 1.0])
def test_label_model_reasons_are_the_same_bytes_without_the_compiler(difficulty: float, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = conform(generate(SynthSpec(6000, seed=21, difficulty=difficulty)))
    for platform in ("twitter", "instagram", "bluesky"):
        for explain in ("fake", "all"):
            tally: Counter = Counter()
            compiled = M.label_model(frame, as_of=OBSERVED_AT, platform=platform, explain=explain, tally_out=tally)
            with monkeypatch.context() as patch:
                without_compiler(patch)
                plain_tally: Counter = Counter()
                plain = M.label_model(frame, as_of=OBSERVED_AT, platform=platform, explain=explain, tally_out=plain_tally)
            assert compiled.equals(plain), (platform, explain)
            assert tally == plain_tally


def test_label_model_reasons_on_real_data_are_the_same_without_the_compiler(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for load, platform in ((load_cresci2015, "twitter"), (load_instafake, "instagram")):
        frame = load(shared_data).frame
        tally: Counter = Counter()
        compiled = M.label_model(frame, as_of=OBSERVED_AT, platform=platform, explain="all", tally_out=tally)
        with monkeypatch.context() as patch:
            without_compiler(patch)
            plain_tally: Counter = Counter()
            plain = M.label_model(frame, as_of=OBSERVED_AT, platform=platform, explain="all", tally_out=plain_tally)
        assert compiled["reasons"].equals(plain["reasons"]), platform
        assert tally == plain_tally and sum(tally.values()) > 0
