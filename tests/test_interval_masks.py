"""The interval-mask scoring pass of ``TreeModel.score``: the same leaves, scores and reasons as the
straight-line trees it replaced and as LightGBM, on rows built to sit on every edge of every split
(NaN, ±0, ±1e-35 and its neighbours, each threshold and the doubles either side of it, ±inf) and on
the real feature columns of ../shared/data, for every explain mode, one and two threads, and both
copies of the kernel (AVX2 and portable).
"""

from __future__ import annotations

import ctypes
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from followaudit.classify import model as M
from followaudit.classify import reasons as R
from followaudit.classify import trees
from followaudit.classify.model import feature_columns
from followaudit.native import build

EXPLAIN = ["none", "fake", "all"]
EDGES = [np.nan, 0.0, -0.0, 1e-35, -1e-35, np.nextafter(1e-35, 1), np.nextafter(-1e-35, -1), np.nextafter(1e-35, 0),
         5e-36, -5e-36, 5e-324, np.inf, -np.inf, 1e300, -1e300]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWAUDIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setattr(build, "_LIB", {})


def edge_rows(tm: trees.TreeModel, n: int, seed: int = 5) -> np.ndarray:
    """Rows whose every feature is drawn from its thresholds, the doubles next to them, the edges
    of the zero band, NaN, infinities and ordinary values."""
    rng = np.random.default_rng(seed)
    X = rng.normal(1.0, 3.0, size=(n, len(tm.feature_names)))
    for f in range(X.shape[1]):
        thr = tm.thr[tm.feat == f]
        pool = np.concatenate([thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf), EDGES])
        pick = rng.random(n) < 0.8
        X[pick, f] = pool[rng.integers(0, len(pool), int(pick.sum()))]
    return X


def straight_line(tm: trees.TreeModel) -> trees.TreeModel:
    """The same model scored by the straight-line trees (the pass before the interval masks)."""
    other = tm.straight_line()
    assert "leaves_of" in other.c_source() and "below_" not in other.c_source()
    return other


def interval_leaves(tm: trees.TreeModel, X: np.ndarray) -> np.ndarray:
    """Every tree's leaf from the interval masks in NumPy: one mask per feature, ANDed; exactly one bit left."""
    tables = tm._interval_masks()
    assert tables is not None
    bits = np.full((len(X), tm.n_trees), 0xFFFF, dtype=np.uint16)
    for f, cuts, masks, zero in tables:
        x = X[:, f]
        c = np.searchsorted(cuts, x, side="left")  # thresholds below x
        c[np.isnan(x)] = len(cuts) + 1
        if zero:
            c[np.abs(x) <= trees.ZERO_THRESHOLD] = len(cuts) + 2
        bits &= masks[c]
    assert np.all((bits != 0) & (bits & (bits - 1) == 0)), "one leaf per tree"
    return np.log2(bits).astype(np.int64)


def at_some_score(tm: trees.TreeModel, X: np.ndarray) -> float:
    """A threshold that some rows score exactly (explained as fake: ``raw >= threshold``)."""
    values, counts = np.unique(tm.walk(X)[0], return_counts=True)
    return float(values[counts.argmax()])


def assert_same_scores(fast: trees.TreeModel, reference: trees.TreeModel, X: Any, credit: np.ndarray, threshold: float) -> None:
    """raw (bit for bit) and top groups equal for every explain mode and one or two threads."""
    for explain in EXPLAIN:
        expected = reference.score(X, credit=credit, threshold=threshold, explain=explain, k=R.TOP_K,
                                   min_credit=R.MIN_CONTRIBUTION, threads=1)
        if explain != "none":
            assert expected[1] is not None and (expected[1] >= 0).any()
        for threads in (1, 2):
            got = fast.score(X, credit=credit, threshold=threshold, explain=explain, k=R.TOP_K,
                             min_credit=R.MIN_CONTRIBUTION, threads=threads)
            assert np.array_equal(got[0].view(np.int64), expected[0].view(np.int64)), (explain, threads)
            assert (got[1] is None) == (expected[1] is None)
            assert got[1] is None or np.array_equal(got[1], expected[1]), (explain, threads)


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_interval_leaves_equal_lightgbm_on_edge_rows(name: str) -> None:
    lgb = pytest.importorskip("lightgbm")
    m = M.load_model(name)
    X = edge_rows(m.trees, 20_000)
    booster = lgb.Booster(model_str=m.text)
    leaves = interval_leaves(m.trees, X)
    assert np.array_equal(leaves, booster.predict(X, pred_leaf=True))
    assert np.array_equal(leaves, m.trees.walk(X, leaves=True)[1])
    raw = m.trees.score(X)[0]
    assert "below_" in m.trees.c_source() and m.trees._compiled() is not None
    assert np.array_equal(raw.view(np.int64), booster.predict(X, raw_score=True).view(np.int64))


@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_interval_pass_equals_the_straight_line_trees(name: str) -> None:
    """60,000 rows, so that two threads really split them."""
    m = M.load_model(name)
    X = edge_rows(m.trees, 60_000, seed=len(name))
    credit = R.path_credit(m)
    reference = straight_line(m.trees)
    assert_same_scores(m.trees, reference, X, credit, m.threshold)
    # One array per feature, a matrix in Fortran order, a threshold some rows score exactly.
    columns = [X[:, j].copy() for j in range(X.shape[1])]
    assert_same_scores(m.trees, reference, columns, credit, m.threshold)
    exact = at_some_score(m.trees, X)
    assert_same_scores(m.trees, reference, np.asfortranarray(X), credit, exact)


@pytest.mark.parametrize("groups", [1, 6, 11, 16])
def test_the_portable_kernel_gives_the_same_numbers(groups: int) -> None:
    """The copy of the kernel for machines without AVX2 (run here by switching the AVX2 copy off)."""
    m = M.load_model("twitter")
    X = edge_rows(m.trees, 6_000, seed=groups)
    credit = np.random.default_rng(groups).normal(0.0, 0.3, size=(len(m.trees.leaf_value), groups))
    reference = straight_line(m.trees)
    width = trees.credit_width(groups)
    lib = m.trees._compiled(width)
    assert lib is not None
    switch = ctypes.c_int.in_dll(lib, "portable_only")
    try:
        switch.value = 1
        assert_same_scores(m.trees, reference, X, credit, m.threshold)
    finally:
        switch.value = 0
    assert_same_scores(m.trees, reference, X, credit, m.threshold)


@pytest.mark.parametrize("min_credit", [-np.inf, 0.0, 0.05])
def test_ties_go_to_the_lower_group_and_min_credit_cuts(min_credit: float) -> None:
    """Groups with the same credits tie (copies of one column; zeros): the lower group ranks first;
    below ``min_credit``: -1. Both kernels, against NumPy's stable ranking."""
    m = M.load_model("instagram")
    X = edge_rows(m.trees, 4_000, seed=3)
    base = np.random.default_rng(4).normal(0.0, 0.3, size=(len(m.trees.leaf_value), 3))
    credit = np.column_stack([base[:, 1], np.zeros(len(base)), base[:, 0], base[:, 1], base[:, 2], base[:, 0]])
    lib = m.trees._compiled(trees.credit_width(credit.shape[1]))
    assert lib is not None
    switch = ctypes.c_int.in_dll(lib, "portable_only")
    expected = m.trees._score_numpy(X, credit, m.threshold, 2, 4, min_credit)
    assert ((expected[1] == 0) & (np.roll(expected[1], -1, axis=1) == 3)).any()  # a tie, broken to the lower
    try:
        for portable in (1, 0):
            switch.value = portable
            got = m.trees.score(X, credit=credit, threshold=m.threshold, explain="all", k=4, min_credit=min_credit)
            assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), portable
    finally:
        switch.value = 0


def _trained(zero_as_missing: bool, num_leaves: int) -> tuple[Any, np.ndarray]:
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(4000, 5))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[rng.random(X.shape) < 0.1] = 0.0
    X[rng.random(X.shape) < 0.05] = -0.0
    X[:, 4] = np.round(X[:, 4], 1)  # few distinct values: thresholds hit exactly
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) + (X[:, 4] == 0) > 0).astype(float)
    params = {"objective": "binary", "num_leaves": num_leaves, "verbose": -1, "num_threads": 1,
              "zero_as_missing": zero_as_missing, "min_data_in_leaf": 5}
    trained = lgb.train(params, lgb.Dataset(X, y), 12)
    # Read back from its text, as a shipped model is (the text is what TreeModel reads too).
    return lgb.Booster(model_str=trained.model_to_string()), X


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_missing_types_on_a_trained_model(zero_as_missing: bool) -> None:
    """NaN-missing and zero-missing splits (the band |x| <= 1e-35 takes the default side)."""
    booster, X = _trained(zero_as_missing, 7)
    tm = trees.TreeModel.from_text(booster.model_to_string())
    tables = tm._interval_masks()
    assert tables is not None and any(zero for *_, zero in tables) == zero_as_missing
    X = np.vstack([X, edge_rows(tm, 8000)])
    leaves = interval_leaves(tm, X)
    raw = tm.score(X)[0]
    assert np.array_equal(leaves, tm.walk(X, leaves=True)[1])
    assert np.array_equal(raw.view(np.int64), tm.walk(X)[0].view(np.int64))
    # LightGBM's own predictor reads a value within float32(1e-35) = 1.0000000180025095e-35 of zero
    # as 0.0 before any split, and these trees split at ±1.0000000180025095e-35 and +inf; the walk
    # (and so the compiled passes) test |x| <= 1e-35 for zero-missing splits only: compare with
    # LightGBM where that cannot matter.
    tiny = float(np.float32(trees.ZERO_THRESHOLD))
    plain = (np.isnan(X) | (X == 0) | ((np.abs(X) > tiny) & np.isfinite(X))).all(axis=1)
    assert plain.sum() > 4300  # the 4,000 training rows and some of the edge rows
    assert np.array_equal(leaves[plain], booster.predict(X[plain], pred_leaf=True))
    assert np.array_equal(raw[plain], booster.predict(X[plain], raw_score=True))
    credit = tm.path_credit()[0]
    assert_same_scores(tm, straight_line(tm), X, credit, at_some_score(tm, X))


def test_models_the_masks_cannot_express_keep_the_straight_line_trees() -> None:
    """More than 16 leaves in a tree, more leaves than 16 bits number, or a plain split inside the
    zero band of a feature that also has zero-missing splits: the straight-line trees score them,
    with the same numbers."""
    booster, X = _trained(False, 31)
    tm = trees.TreeModel.from_text(booster.model_to_string())
    assert np.diff(np.r_[tm.leaf_off, len(tm.leaf_value)]).max() > 16
    assert tm._interval_masks() is None and "leaves_of" in tm.c_source()
    assert np.array_equal(tm.score(X)[0], booster.predict(X, raw_score=True))

    # More leaves than 16 bits number: 5,000 trees of 15 leaves.
    twitter = M.load_model("twitter").trees
    copies = 50
    nodes, leaves = len(twitter.feat), len(twitter.leaf_value)
    big = trees.TreeModel(
        twitter.feature_names, np.concatenate([twitter.node_off + i * nodes for i in range(copies)]).astype(np.int32),
        np.concatenate([twitter.leaf_off + i * leaves for i in range(copies)]).astype(np.int32),
        *(np.tile(getattr(twitter, k), copies) for k in ("feat", "thr", "dtype", "left", "right", "leaf_value", "internal_value")))
    assert len(big.leaf_value) > 0xFFFF and big._interval_masks() is None and twitter._interval_masks() is not None

    booster, X = _trained(True, 7)
    tm = trees.TreeModel.from_text(booster.model_to_string())
    zero = ((tm.dtype >> 2) & 3) == trees.MISSING_ZERO
    node = int(np.flatnonzero(zero)[0])
    tm.thr[node], tm.dtype[node] = 1e-36, trees.MISSING_NAN << 2  # now a NaN-missing split inside the band
    assert tm.feat[zero].tolist().count(tm.feat[node]) > 1  # ... on a feature with zero-missing splits left
    assert tm._interval_masks() is None and "leaves_of" in tm.c_source()
    X = np.vstack([X, edge_rows(tm, 4000)])
    assert np.array_equal(tm.score(X)[0], tm.walk(X)[0])


def test_a_compiler_that_cannot_build_the_masks_gets_the_straight_line_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    m = M.load_model("crossplatform")
    tm = trees.TreeModel.from_text(m.text)
    monkeypatch.setattr(trees, "INTERVAL_DISPATCH", "\n#error this compiler has no vector extensions\n")
    assert "#error" in tm.c_source()
    X = edge_rows(tm, 3000)
    assert np.array_equal(tm.score(X)[0], tm.walk(X)[0])
    straight = "model-" + hashlib.sha256(tm._straight_source(trees.MAX_GROUPS).encode()).hexdigest()[:16]
    assert build._LIB.get(straight) is not None  # scored by the straight-line library, not NumPy


def _real_frames(shared_data: Path) -> list[tuple[str, Any]]:
    from followaudit.classify.datasets import load_cresci2015, load_instafake

    cresci, instafake = load_cresci2015(shared_data).frame, load_instafake(shared_data).frame
    return [("twitter", cresci), ("crossplatform", cresci), ("instagram", instafake), ("crossplatform", instafake)]


def test_interval_pass_on_real_feature_columns(shared_data: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    for name, frame in _real_frames(shared_data):
        m = M.load_model(name)
        columns = feature_columns(frame, m.spec.features, None)
        X = np.column_stack(columns)
        assert np.array_equal(interval_leaves(m.trees, X), lgb.Booster(model_str=m.text).predict(X, pred_leaf=True)), name
        assert_same_scores(m.trees, straight_line(m.trees), columns, R.path_credit(m), m.threshold)
