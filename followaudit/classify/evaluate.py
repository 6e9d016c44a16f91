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

from ..estimate.corrected import (
    PROB_BINS,
    adjusted_count,
    probabilistic_count,
    probability_histogram,
)
from ..estimate.intervals import wilson
from ..estimate.quantifiers import quantify_all
from .datasets import HUMANS, VENDORS
from .lodo import lodo
from .model import AGE_FEATURES, SPECS, ModelSpec, feature_matrix
from .rules import label_rules
from .train import (
    CV_FOLDS,
    CV_SEED,
    INNER_FOLDS,
    Augmented,
    augment,
    choose_threshold,
    error_rates,
    fit,
    fit_calibration,
    folds,
    oof_raw,
    score_profile,
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


def nested_cv(spec: ModelSpec, aug: Augmented, strata: np.ndarray, *, k: int = CV_FOLDS,
              inner: int = INNER_FOLDS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out raw scores, fake flags and calibrated probabilities of every masked copy, trained as
    ``followaudit train`` trains (every missing-field pattern); each fold's threshold (set on complete
    profiles) and calibration map come from a cross-validation inside its training part."""
    n = len(aug.y)
    raw = np.full(n, np.nan)
    prob = np.full(n, np.nan)
    flag = np.zeros(n, dtype=bool)
    full = aug.mask == aug.names.index("full")
    for (tr_rows, _), (tr, te) in zip(folds(strata, k), aug.split(folds(strata, k)), strict=True):
        # inner folds over the training part's accounts, mapped to their copies
        inner_rows = [(tr_rows[a], tr_rows[b]) for a, b in folds(strata[tr_rows], inner, CV_SEED + 1)]
        inner_raw = np.full(n, np.nan)
        for a, b in aug.split(inner_rows):
            inner_raw[b] = fit(spec, aug.X[a], aug.y[a], None, aug.groups[a]).predict(aug.X[b], raw_score=True)
        sel = tr[full[tr]]
        threshold = choose_threshold(spec, inner_raw[sel], aug.y[sel])
        cx, cy = fit_calibration(inner_raw[tr], aug.y[tr])
        raw[te] = fit(spec, aug.X[tr], aug.y[tr], None, aug.groups[tr]).predict(aug.X[te], raw_score=True)
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
    lodo_protocol: bool = True,
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
        aug = augment(spec, ts)
        note(f"{name}: {folds_k}-fold cross-validation")
        raw_all, flag_all, prob_all = nested_cv(spec, aug, ts.strata, k=folds_k, inner=inner)
        full = aug.under("full")
        raw, flag, prob = raw_all[full], flag_all[full], prob_all[full]
        figures: dict[str, Any] = {"cv": {**metrics(ts.y, flag, raw), **calibration_metrics(ts.y, prob)}}
        # the same held-out accounts seen through each importer's missing fields
        figures["cv_by_mask"] = {m: metrics(ts.y, flag_all[aug.under(m)], raw_all[aug.under(m)]) for m in spec.masks}
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
        oof = oof_raw(spec, aug.X, aug.y, aug.split(splits), groups=aug.groups)[full]
        q = quantification(oof, ts.y, spec, splits, replicates=replicates)
        if name == "twitter" or (models and name == models[0] and "twitter" not in models):
            result["quantification"] = {"model": name, **q}
        result.setdefault("quantification_by_model", {})[name] = q
        if lodo_protocol:
            note(f"{name}: leave-one-domain-out")
            result.setdefault("lodo", {})[name] = lodo(name, data_dir, replicates=max(2, replicates // 8), progress=note)
    if lodo_protocol:
        result["quapy_check"] = quapy_check()
    return result


def quapy_check(seed: int = CV_SEED) -> dict[str, Any]:
    """Our PACC, EMQ and HDy against QuaPy's on the same posteriors (``pip install 'followaudit[eval]'``).

    Posteriors are drawn from two Beta distributions, binned as an audit bins them; QuaPy reads the
    same binned values. Returns the largest absolute difference per method, or why it was skipped.
    """
    try:
        import quapy.functional as qf
        from quapy.method.aggregative import EMQ, HDy
        from sklearn.linear_model import (
            LogisticRegression,  # only a fitted stand-in: QuaPy reads its classes_
        )
    except ImportError:
        return {"skipped": "quapy is not installed (pip install 'followaudit[eval]')"}
    rng = np.random.default_rng(seed)
    bins = PROB_BINS
    centres = (np.arange(bins) + 0.5) / bins
    diffs: dict[str, float] = {"pacc": 0.0, "emq": 0.0, "hdy": 0.0}
    for prev in (0.05, 0.2, 0.5, 0.8):
        fake_tr, real_tr = rng.beta(5, 2, 3000), rng.beta(2, 5, 3000)
        tr_p = np.r_[fake_tr, real_tr]
        tr_y = np.r_[np.ones(3000), np.zeros(3000)]
        prof = score_profile(tr_p, tr_y)
        k = int(prev * 4000)
        test = np.r_[rng.beta(5, 2, k), rng.beta(2, 5, 4000 - k)]
        counts, total = probability_histogram(test)
        binned = np.repeat(centres, counts)
        ours = quantify_all(counts, float(binned.sum()), prof, draws=10)
        mf, mr = prof["mean_prob"]["fake"], prof["mean_prob"]["real"]
        theirs_pacc = float(np.clip(qf.solve_adjustment_binary(binned.mean(), mf, mr), 0, 1))
        qs, _ = EMQ.EM(np.array([1 - prof["prior"], prof["prior"]]), np.c_[1 - binned, binned], epsilon=1e-8)
        h = HDy(classifier=LogisticRegression().fit([[0.0], [1.0]], [0, 1]), fit_classifier=False, val_split=None)
        nb = len(prof["prob_hist"]["fake"])
        h.bins = [nb]
        h.Pxy1_density = {nb: np.asarray(prof["prob_hist"]["fake"], float) / 3000 * nb}
        h.Pxy0_density = {nb: np.asarray(prof["prob_hist"]["real"], float) / 3000 * nb}
        theirs_hdy = float(h.aggregate(np.c_[1 - binned, binned])[1])
        diffs["pacc"] = max(diffs["pacc"], abs(ours["pacc"].share - theirs_pacc))
        diffs["emq"] = max(diffs["emq"], abs(ours["emq"].share - float(qs[1])))
        diffs["hdy"] = max(diffs["hdy"], abs(ours["hdy"].share - theirs_hdy))
    return {"max_abs_difference": diffs, "note": "QuaPy's HDy searches the prevalence on a 0.01 grid, ours on 0.001"}
