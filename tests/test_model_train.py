"""Training reproduces the committed models bit for bit; the evaluation has the documented shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from followaudit.classify import model as M
from followaudit.classify.train import choose_threshold, error_rates, fit_calibration, train_one


def test_instagram_model_retrains_bit_for_bit(shared_data: Path, tmp_path: Path) -> None:
    entry = train_one("instagram", tmp_path, shared_data)
    assert (tmp_path / "instagram.txt").read_bytes() == (M.MODEL_DIR / "instagram.txt").read_bytes()
    card = M.read_card()["models"]["instagram"]
    assert entry["calibration"] == card["calibration"]
    assert entry["threshold"] == card["threshold"] and entry["error_rates"] == card["error_rates"]
    assert entry["training_sha256"] == card["training_sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["twitter", "crossplatform"])
def test_twitter_and_crossplatform_retrain_bit_for_bit(shared_data: Path, tmp_path: Path, name: str) -> None:
    train_one(name, tmp_path, shared_data)
    assert (tmp_path / f"{name}.txt").read_bytes() == (M.MODEL_DIR / f"{name}.txt").read_bytes()


def test_card_matches_the_code() -> None:
    card = M.read_card()
    for name, spec in M.SPECS.items():
        entry = card["models"][name]
        assert tuple(entry["features"]) == spec.features
        er = entry["error_rates"]
        assert er["sensitivity"] == pytest.approx(er["tp"] / (er["tp"] + er["fn"]))
        assert entry["params"]["deterministic"] is True and entry["params"]["num_threads"] == 1
        # calibration is monotone and a probability
        y = np.asarray(entry["calibration"]["y"])
        assert np.all(np.diff(y) >= 0) and y.min() >= 0 and y.max() <= 1


def test_threshold_policies_on_hand_made_scores() -> None:
    raw = np.array([-3.0, -2.0, -1.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    spec = M.ModelSpec("t", ("a",), (), 1, target_specificity=0.75)
    t = choose_threshold(spec, raw, y)  # at most 25% of the 4 humans (one) may score at/above it
    assert -1.0 < t <= 0.5
    er = error_rates(raw, y, t)
    assert er == {"tp": 4, "fn": 0, "tn": 3, "fp": 1, "sensitivity": 1.0, "specificity": 0.75}
    f1 = M.ModelSpec("t", ("a",), (), 1, threshold_policy="f1")
    assert choose_threshold(f1, raw, y) == 1.0  # all four fakes and no human
    cx, cy = fit_calibration(raw, y)
    assert np.interp(-3.0, cx, cy) == 0.0 and np.interp(4.0, cx, cy) == 1.0


@pytest.mark.slow
def test_evaluate_cli_reduced_run_has_the_documented_shape(shared_data: Path, tmp_path: Path) -> None:
    from followaudit.cli import cli

    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        cli, ["evaluate", "--data", str(shared_data), "--model", "instagram", "--folds", "3", "--replicates", "2",
              "--format", "json", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    cv = data["models"]["instagram"]["cv"]
    assert set(cv) >= {"accuracy", "precision", "recall", "f1", "mcc", "auc", "brier", "ece"}
    assert 0 <= cv["ece"] < 0.1
    assert 0.5 < cv["f1"] <= 1.0
    assert set(data["rules"]["instagram"]["cv"]) >= {"f1", "mcc"}
    q = data["quantification"]
    assert set(q) >= {"mae", "coverage", "by_prevalence"}
    assert [row["prevalence"] for row in q["by_prevalence"]][0] == 0.05
    assert 0 <= q["mae"] < 0.2 and 0 <= q["coverage"] <= 1


@pytest.mark.slow
def test_leave_one_vendor_out_reduced(shared_data: Path) -> None:
    from followaudit.classify.evaluate import leave_one_vendor_out
    from followaudit.classify.train import training_set

    ts = training_set("twitter", shared_data)
    spec = M.SPECS["twitter"]
    X = M.feature_matrix(ts.frame, spec.features)
    no_age = tuple(f for f in spec.features if f not in M.AGE_FEATURES)
    out = leave_one_vendor_out(spec, X, ts.y, ts.groups, features=no_age, human_folds=2, inner=2)
    assert set(out) == {"INT", "FSF", "TWT"}
    for v in out.values():
        assert set(v) >= {"recall", "specificity"}
        assert 0.5 < v["recall"] <= 1 and 0.9 < v["specificity"] <= 1


def test_balanced_weights_hand_computed() -> None:
    from followaudit.classify.train import balanced_weights

    groups = np.array(["TFP", "E13", "E13", "E13", "INT", "INT", "TWT", "FSF"])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    w = balanced_weights(groups, y)
    # humans: two groups, each a quarter of the total; fakes: three vendors, each a sixth
    total = w.sum()
    assert total == pytest.approx(len(y))
    assert w[0] / total == pytest.approx(0.25) and w[1:4].sum() / total == pytest.approx(0.25)
    assert w[4:6].sum() / total == pytest.approx(1 / 6) and w[6] / total == pytest.approx(1 / 6)
