"""``followaudit evaluate``: how well the models label followers and estimate fake shares.

Everything is measured on held-out rows, with thresholds chosen without them:

* stratified 10-fold cross-validation (seeded) of each model; inside each training part a 5-fold
  cross-validation sets the decision threshold, so no test row ever tunes it. The rule baselines
  are scored on the same rows;
* leave-one-vendor-out on Cresci-15: train on the humans and two vendors, test on the third
  vendor's fakes and held-out humans (5 folds over the humans) — bought followers from a vendor
  never seen in training are the real-world case — with and without the account-age features
  (FSF's accounts were all created within three weeks, which inflates anything using dates);
* quantification: audits of n = 1,000 followers drawn from held-out scores at fake prevalences
  5%…95%, for each estimator the mean absolute error of the fake share and how often its 95%
  interval holds the truth. The threshold, Se/Sp and calibration used for an audit come from the
  other half of the folds than the audit's followers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold

from ..estimate.corrected import adjusted_count, probabilistic_count
from ..estimate.intervals import wilson
from .datasets import HUMANS, VENDORS
from .model import AGE_FEATURES, SPECS, ModelSpec, feature_matrix
from .rules import label_rules
from .train import (
    CV_FOLDS,
    CV_SEED,
    INNER_FOLDS,
    choose_threshold,
    error_rates,
    fit,
    fit_calibration,
    folds,
    oof_raw,
    training_set,
)

PREVALENCES = (0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 0.95)
AUDIT_N = 1000
REPLICATES = 50
DEFAULT_ESTIMATOR = "adjusted"


def metrics(y: np.ndarray, pred: np.ndarray, score: np.ndarray | None = None) -> dict[str, float]:
    """accuracy, precision, recall, f1, mcc (fake = positive class) and AUC of ``score``."""
    pred = pred.astype(int)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "mcc": float(matthews_corrcoef(y, pred)),
        "auc": float(roc_auc_score(y, pred if score is None else score)),
        "n": int(len(y)),
        "fakes": int(np.sum(y)),
    }
    return out


def _inner_threshold(spec: ModelSpec, X: np.ndarray, y: np.ndarray, strata: np.ndarray, features: tuple[str, ...] | None, k: int,
                     groups: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Threshold from a cross-validation inside the training part only; also its raw OOF scores."""
    inner = folds(strata, k, CV_SEED + 1)
    raw = oof_raw(spec, X, y, inner, features, groups)
    return choose_threshold(spec, raw, y), raw


def nested_cv(spec: ModelSpec, X: np.ndarray, y: np.ndarray, strata: np.ndarray, *, k: int = CV_FOLDS,
              inner: int = INNER_FOLDS, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out raw scores, fake flags and calibrated probabilities; each fold's threshold and
    calibration map come from a cross-validation inside its training part."""
    raw = np.full(len(y), np.nan)
    prob = np.full(len(y), np.nan)
    flag = np.zeros(len(y), dtype=bool)
    for tr, te in folds(strata, k):
        g = groups[tr] if groups is not None else None
        threshold, inner_raw = _inner_threshold(spec, X[tr], y[tr], strata[tr], None, inner, g)
        cx, cy = fit_calibration(inner_raw, y[tr])
        raw[te] = fit(spec, X[tr], y[tr], None, g).predict(X[te], raw_score=True)
        flag[te] = raw[te] >= threshold
        prob[te] = np.interp(raw[te], cx, cy)
    return raw, flag, prob


def calibration_metrics(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> dict[str, float]:
    """Brier score and expected calibration error (10 equal-width bins) of held-out probabilities."""
    edges = np.minimum((prob * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = edges == b
        if sel.any():
            ece += sel.mean() * abs(prob[sel].mean() - y[sel].mean())
    return {"brier": float(np.mean((prob - y) ** 2)), "ece": float(ece)}


def leave_one_vendor_out(spec: ModelSpec, X: np.ndarray, y: np.ndarray, groups: np.ndarray, *,
                         features: tuple[str, ...], human_folds: int = 5, inner: int = INNER_FOLDS) -> dict[str, Any]:
    """Recall on an unseen vendor's fakes and specificity on held-out humans, per vendor."""
    cols = [spec.features.index(f) for f in features]
    Xs = X[:, cols]
    humans = np.flatnonzero(np.isin(groups, HUMANS))
    skf = StratifiedKFold(n_splits=human_folds, shuffle=True, random_state=CV_SEED)
    out: dict[str, Any] = {}
    for vendor in VENDORS:
        others = np.flatnonzero(np.isin(groups, [v for v in VENDORS if v != vendor]))
        test_fakes = np.flatnonzero(groups == vendor)
        caught, seen, kept, held, scores, truth = 0, 0, 0, 0, [], []
        for h_tr, h_te in skf.split(humans, groups[humans]):
            tr = np.concatenate([humans[h_tr], others])
            threshold, _ = _inner_threshold(spec, Xs[tr], y[tr], groups[tr], features, inner, groups[tr])
            booster = fit(spec, Xs[tr], y[tr], features, groups[tr])
            rf = booster.predict(Xs[test_fakes], raw_score=True)
            rh = booster.predict(Xs[humans[h_te]], raw_score=True)
            caught += int(np.sum(rf >= threshold))
            seen += len(rf)
            kept += int(np.sum(rh < threshold))
            held += len(rh)
            scores += [rf, rh]
            truth += [np.ones(len(rf)), np.zeros(len(rh))]
        out[vendor] = {
            "recall": caught / seen,
            "specificity": kept / held,
            "auc": float(roc_auc_score(np.concatenate(truth), np.concatenate(scores))),
            "fakes": len(test_fakes),
            "humans": len(humans),
        }
    return out


def rules_cv(frame: Any, y: np.ndarray) -> dict[str, float]:
    """The rule baselines' fake flag on the same rows (rules are not trained; every row is held out)."""
    labels = label_rules(frame, as_of=None)
    return metrics(y, (labels["label"] == "fake").to_numpy())


def quantification(raw: np.ndarray, y: np.ndarray, spec: ModelSpec, splits: list[tuple[np.ndarray, np.ndarray]], *,
                   prevalences: tuple[float, ...] = PREVALENCES, n: int = AUDIT_N, replicates: int = REPLICATES,
                   seed: int = CV_SEED, confidence: float = 0.95) -> dict[str, Any]:
    """Error and interval coverage of classify-and-count, adjusted and probabilistic estimates."""
    fold_of = np.zeros(len(y), dtype=int)
    for i, (_, te) in enumerate(splits):
        fold_of[te] = i
    half = fold_of % 2
    # per half: operating point and calibration learned on the *other* half
    setup = {}
    for h in (0, 1):
        ref = half != h
        thr = choose_threshold(spec, raw[ref], y[ref])
        cx, cy = fit_calibration(raw[ref], y[ref])
        setup[h] = (thr, error_rates(raw[ref], y[ref], thr), cx, cy)
    rng = np.random.default_rng(seed)
    names = ("classify_and_count", "adjusted", "probabilistic")
    rows: list[dict[str, Any]] = []
    errs: dict[str, list[float]] = {k: [] for k in names}
    cover: dict[str, list[bool]] = {k: [] for k in names}
    for prevalence in prevalences:
        level_err: dict[str, list[float]] = {k: [] for k in names}
        level_cov: dict[str, list[bool]] = {k: [] for k in names}
        for r in range(replicates):
            h = r % 2
            thr, er, cx, cy = setup[h]
            fakes = np.flatnonzero((half == h) & (y == 1))
            reals = np.flatnonzero((half == h) & (y == 0))
            k_fake = int(round(prevalence * n))
            pick = np.concatenate([rng.choice(fakes, k_fake), rng.choice(reals, n - k_fake)])
            truth = k_fake / n
            flagged = int(np.sum(raw[pick] >= thr))
            lo, hi = wilson(flagged, n, confidence)
            acc = adjusted_count(flagged, n, tp=er["tp"], fn=er["fn"], tn=er["tn"], fp=er["fp"],
                                 confidence=confidence, draws=2000, seed=int(rng.integers(2**31)))
            pcc = probabilistic_count(np.interp(raw[pick], cx, cy), confidence=confidence, draws=1000,
                                      seed=int(rng.integers(2**31)))
            for name, (est, low, high) in {
                "classify_and_count": (flagged / n, lo, hi),
                "adjusted": (acc.share, acc.low, acc.high),
                "probabilistic": (pcc.share, pcc.low, pcc.high),
            }.items():
                level_err[name].append(abs(est - truth))
                level_cov[name].append(low <= truth <= high)
        row: dict[str, Any] = {"prevalence": prevalence}
        for name in names:
            row[name] = {"mae": float(np.mean(level_err[name])), "coverage": float(np.mean(level_cov[name]))}
            errs[name] += level_err[name]
            cover[name] += level_cov[name]
        rows.append(row)
    estimators = {name: {"mae": float(np.mean(errs[name])), "coverage": float(np.mean(cover[name]))} for name in names}
    return {
        "estimator": DEFAULT_ESTIMATOR,
        "mae": estimators[DEFAULT_ESTIMATOR]["mae"],
        "coverage": estimators[DEFAULT_ESTIMATOR]["coverage"],
        "estimators": estimators,
        "by_prevalence": [
            {"prevalence": row["prevalence"], "mae": row[DEFAULT_ESTIMATOR]["mae"], "coverage": row[DEFAULT_ESTIMATOR]["coverage"],
             "estimators": {name: row[name] for name in names}}
            for row in rows
        ],
        "n": n,
        "replicates": replicates,
        "confidence": confidence,
    }


def evaluate_all(
    data_dir: Path | None = None,
    *,
    models: tuple[str, ...] | None = None,
    folds_k: int = CV_FOLDS,
    inner: int = INNER_FOLDS,
    replicates: int = REPLICATES,
    lovo: bool = True,
    progress: Callable[[str], None] | None = None,
    card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full evaluation, as the JSON ``followaudit evaluate`` prints."""
    note = progress or (lambda _msg: None)
    result: dict[str, Any] = {"models": {}, "rules": {}, "quantification": {}, "settings": {
        "cv_folds": folds_k, "inner_folds": inner, "cv_seed": CV_SEED, "audit_n": AUDIT_N, "replicates": replicates,
        "prevalences": list(PREVALENCES),
    }}
    for name in models or tuple(SPECS):
        spec = SPECS[name]
        ts = training_set(name, data_dir)
        X = feature_matrix(ts.frame, spec.features)
        note(f"{name}: {folds_k}-fold cross-validation")
        raw, flag, prob = nested_cv(spec, X, ts.y, ts.strata, k=folds_k, inner=inner, groups=ts.groups)
        figures: dict[str, Any] = {"cv": {**metrics(ts.y, flag, raw), **calibration_metrics(ts.y, prob)}}
        if len(ts.sources) > 1:
            src = np.array([s.split(":")[0] for s in ts.strata])
            figures["cv_by_source"] = {s: metrics(ts.y[src == s], flag[src == s], raw[src == s]) for s in ts.sources}
        result["rules"][name] = {"cv": rules_cv(ts.frame, ts.y)}
        if lovo and name == "twitter":
            note("twitter: leave-one-vendor-out")
            figures["lovo"] = leave_one_vendor_out(spec, X, ts.y, ts.groups, features=spec.features)
            no_age = tuple(f for f in spec.features if f not in AGE_FEATURES)
            note("twitter: leave-one-vendor-out without account-age features")
            figures["lovo_no_age"] = leave_one_vendor_out(spec, X, ts.y, ts.groups, features=no_age)
        result["models"][name] = figures
        note(f"{name}: quantification ({len(PREVALENCES)} prevalences × {replicates} audits of {AUDIT_N:,})")
        splits = folds(ts.strata, folds_k)
        oof = oof_raw(spec, X, ts.y, splits, groups=ts.groups)
        q = quantification(oof, ts.y, spec, splits, replicates=replicates)
        if name == "twitter" or (models and name == models[0] and "twitter" not in models):
            result["quantification"] = {"model": name, **q}
        result.setdefault("quantification_by_model", {})[name] = q
    return result
