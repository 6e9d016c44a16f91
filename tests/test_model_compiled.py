"""Compiled trees give exactly LightGBM's scores, and scoring falls back when they cannot be built."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from followaudit.classify import compiled
from followaudit.classify import model as M


@pytest.mark.slow
def test_compiled_scores_are_identical_to_lightgbm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tl2cgen")
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("FOLLOWAUDIT_CACHE", str(tmp_path))
    m = M.load_model("instagram")
    fast = compiled.CompiledPredictor.load(m.path, m.text)
    assert fast is not None
    assert list((tmp_path / "compiled").glob("*.so"))
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, len(m.spec.features))) * 3
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values take LightGBM's default branches
    assert np.array_equal(fast.raw(X), m.booster.predict(X, raw_score=True))


def test_scoring_falls_back_to_lightgbm_when_compiling_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWAUDIT_COMPILE", "0")
    m = M.load_model("instagram", M.MODEL_DIR)
    assert compiled.CompiledPredictor.load(m.path, m.text) is None
    X = np.zeros((compiled.MIN_ROWS, len(m.spec.features)))
    fresh = M.LoadedModel(m.name, m.spec, m.booster, m.calib_x, m.calib_y, m.threshold, m.card, m.path, m.text)
    assert np.array_equal(fresh.raw(X), m.booster.predict(X, raw_score=True))
    assert fresh._fast["predictor"] is None
