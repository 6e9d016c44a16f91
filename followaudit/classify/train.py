"""``followaudit train``: rebuild the shipped models from the labelled data, bit for bit.

For each model: seeded stratified 10-fold cross-validation gives out-of-fold raw scores; an
isotonic map fitted on them calibrates the probabilities (so 0.8 means 80%), the decision
threshold is set on them (the score below which 99% of held-out real accounts fall, or the F1
optimum for Instagram), and the sensitivity/specificity at that threshold — with their counts —
go to the model card for the prevalence correction. The final trees are then fitted on all rows.
LightGBM runs single-threaded with ``deterministic`` and fixed seeds, so the text files repeat
exactly. Nothing is pickled: trees are LightGBM text, everything else is JSON.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from ..estimate.shift import shift_reference
from .datasets import load_cresci2015, load_instafake
from .masks import MASKS, apply_mask
from .model import SPECS, ModelSpec, feature_matrix

CV_FOLDS = 10
CV_SEED = 20150214
INNER_FOLDS = 5


@dataclass
class TrainingSet:
    """Canonical rows with labels: ``y`` (1 = fake), ``strata`` (group × source, for stratified folds)."""

    name: str
    frame: pl.DataFrame
    y: np.ndarray
    groups: np.ndarray
    strata: np.ndarray
    sources: tuple[str, ...]
    sha256: str


def training_set(model: str, data_dir: Path | None = None) -> TrainingSet:
    """The labelled rows a model is trained on (read from ``../shared/data``)."""
    parts = []
    if "cresci-2015" in SPECS[model].training_data:
        parts.append(load_cresci2015(data_dir))
    if "instafake" in SPECS[model].training_data:
        parts.append(load_instafake(data_dir))
    frame = pl.concat([p.frame for p in parts], how="vertical")
    y = np.concatenate([p.y.to_numpy() for p in parts]).astype(np.int8)
    groups = np.concatenate([p.group.to_numpy().astype(str) for p in parts])
    strata = np.concatenate([np.char.add(f"{p.name}:", p.group.to_numpy().astype(str)) for p in parts])
    h = hashlib.sha256()
    for p in parts:
        h.update(p.sha256().encode())
    return TrainingSet(model, frame, y, groups, strata, tuple(p.name for p in parts), h.hexdigest())


@dataclass
class Augmented:
    """The training rows seen under each missing-field pattern of the spec (``masks.py``).

    Row ``i`` of the original set appears once per pattern; ``row`` maps back to it and ``mask`` says
    which pattern (index into ``names``), so folds keep all copies of an account on one side.
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    row: np.ndarray
    mask: np.ndarray
    names: tuple[str, ...]

    def split(self, splits: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Folds over original rows turned into folds over their masked copies."""
        out = []
        for tr, te in splits:
            side = np.full(int(self.row.max()) + 1, -1, dtype=np.int8)
            side[tr] = 0
            side[te] = 1
            out.append((np.flatnonzero(side[self.row] == 0), np.flatnonzero(side[self.row] == 1)))
        return out

    def under(self, name: str) -> np.ndarray:
        """Indices of the copies under pattern ``name``."""
        return np.flatnonzero(self.mask == self.names.index(name))


def augment(spec: ModelSpec, ts: TrainingSet, features: tuple[str, ...] | None = None) -> Augmented:
    """Every training row under every pattern of ``spec.masks``, as one feature matrix."""
    feats = features or spec.features
    n = len(ts.y)
    frames = [apply_mask(ts.frame, m) for m in spec.masks]
    X = feature_matrix(pl.concat(frames, how="vertical"), feats)
    k = len(spec.masks)
    return Augmented(
        X=X, y=np.tile(ts.y, k), groups=np.tile(ts.groups, k), row=np.tile(np.arange(n), k),
        mask=np.repeat(np.arange(k), n), names=tuple(spec.masks),
    )


def folds(strata: np.ndarray, k: int = CV_FOLDS, seed: int = CV_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified k-fold split (train, test) indices."""
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(strata)), strata))


def balanced_weights(groups: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row weights: every group equal within its class, both classes equal; mean weight 1."""
    w = np.zeros(len(y), dtype=np.float64)
    for cls in (0, 1):
        in_cls = y == cls
        names = np.unique(groups[in_cls])
        for g in names:
            sel = in_cls & (groups == g)
            w[sel] = 0.5 / len(names) / sel.sum()
    return w * len(y)


def fit(spec: ModelSpec, X: np.ndarray, y: np.ndarray, features: tuple[str, ...] | None = None,
        groups: np.ndarray | None = None) -> lgb.Booster:
    """Train one booster, deterministically (group-balanced weights when the spec asks and ``groups`` is given)."""
    feats = features or spec.features
    weight = balanced_weights(groups, y) if spec.balance_groups and groups is not None else None
    data = lgb.Dataset(X, label=y, weight=weight, feature_name=list(feats), params={"verbose": -1})
    return lgb.train(spec.lgb_params(feats), data, num_boost_round=spec.num_rounds)


def oof_raw(spec: ModelSpec, X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]],
            features: tuple[str, ...] | None = None, groups: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold raw scores (log-odds) over ``splits``."""
    out = np.full(len(y), np.nan)
    for tr, te in splits:
        g = groups[tr] if groups is not None else None
        out[te] = fit(spec, X[tr], y[tr], features, g).predict(X[te], raw_score=True)
    return out


def fit_calibration(raw: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic map raw score -> P(fake), as knots for ``np.interp``."""
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    iso.fit(raw, y.astype(np.float64))
    return np.asarray(iso.X_thresholds_, dtype=np.float64), np.asarray(iso.y_thresholds_, dtype=np.float64)


def choose_threshold(spec: ModelSpec, raw: np.ndarray, y: np.ndarray) -> float:
    """Raw-score threshold (fake when ``raw >= threshold``) from held-out scores."""
    if spec.threshold_policy == "specificity":
        humans = np.sort(raw[y == 0])
        # the smallest threshold that keeps at most (1 - target) of real accounts above it
        allowed = int(np.floor((1.0 - spec.target_specificity) * len(humans)))
        return float(np.nextafter(humans[len(humans) - 1 - allowed], np.inf))
    if spec.threshold_policy == "f1":
        order = np.argsort(-raw, kind="stable")
        ys = y[order]
        tp = np.cumsum(ys)
        fp = np.cumsum(1 - ys)
        f1 = 2 * tp / (tp + fp + ys.sum())
        # only cut between distinct scores
        distinct = np.r_[raw[order][1:] != raw[order][:-1], True]
        best = int(np.argmax(np.where(distinct, f1, -1.0)))
        return float(raw[order][best])
    raise ValueError(f"unknown threshold policy {spec.threshold_policy!r}")


def error_rates(raw: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float | int]:
    """Counts and rates of the fake label at ``threshold`` (what the prevalence correction needs)."""
    pred = raw >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    fp = int(np.sum(pred & (y == 0)))
    return {"tp": tp, "fn": fn, "tn": tn, "fp": fp, "sensitivity": tp / max(tp + fn, 1), "specificity": tn / max(tn + fp, 1)}


def build_date() -> str:
    """``SOURCE_DATE_EPOCH`` (reproducible builds) or today, as YYYY-MM-DD."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return when.date().isoformat()


def train_one(name: str, out_dir: Path, data_dir: Path | None = None, *, k: int = CV_FOLDS) -> dict[str, Any]:
    """Train, calibrate and write one model; return its card entry (without the evaluation)."""
    spec = SPECS[name]
    ts = training_set(name, data_dir)
    aug = augment(spec, ts)
    splits = aug.split(folds(ts.strata, k))
    raw = oof_raw(spec, aug.X, aug.y, splits, groups=aug.groups)
    op = operating_point(spec, aug, raw)
    cx, cy, threshold, full = op["cx"], op["cy"], op["threshold"], aug.under("full")
    booster = fit(spec, aug.X, aug.y, groups=aug.groups)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.txt").write_text(booster.model_to_string())
    params = spec.lgb_params()
    by_mask = op["masks"]
    return {
        "file": f"{name}.txt",
        "features": list(spec.features),
        "params": params,
        "num_rounds": spec.num_rounds,
        "sample_weights": "balanced by group within class, classes equal" if spec.balance_groups else "none",
        "training_data": list(ts.sources),
        "training_sha256": ts.sha256,
        "rows": int(len(ts.y)),
        "fakes": int(ts.y.sum()),
        "cv_folds": k,
        "cv_seed": CV_SEED,
        "calibration": {"method": "isotonic on out-of-fold raw scores", "x": cx.tolist(), "y": cy.tolist()},
        "threshold": {
            "raw": threshold,
            "probability": float(np.interp(threshold, cx, cy)),
            "policy": spec.threshold_policy,
            "target_specificity": spec.target_specificity if spec.threshold_policy == "specificity" else None,
        },
        "error_rates": error_rates(raw[full], aug.y[full], threshold),
        "masks": by_mask,
        "shift_reference": shift_reference(aug.X[full], aug.y[full], spec.features),
        "transfer_measured": spec.transfer_measured,
    }


PROFILE_BINS = 20


def operating_point(spec: ModelSpec, aug: Augmented, raw: np.ndarray) -> dict[str, Any]:
    """Calibration, threshold and per-pattern error from out-of-fold raw scores of ``aug``.

    The threshold is set on complete profiles ("full"); each pattern's error at it is measured.
    """
    cx, cy = fit_calibration(raw, aug.y)
    full = aug.under("full")
    threshold = choose_threshold(spec, raw[full], aug.y[full])
    prob = np.interp(raw, cx, cy)
    by_mask = {}
    for m in aug.names:
        sel = aug.under(m)
        by_mask[m] = {
            "hidden": list(MASKS[m]),
            "error_rates": error_rates(raw[sel], aug.y[sel], threshold),
            **score_profile(prob[sel], aug.y[sel]),
        }
    return {"cx": cx, "cy": cy, "threshold": threshold, "masks": by_mask}


def score_profile(prob: np.ndarray, y: np.ndarray, bins: int = PROFILE_BINS) -> dict[str, Any]:
    """What the quantifiers need from held-out probabilities: the training prior, each class's mean
    probability (PACC) and each class's probability histogram on ``bins`` equal bins (HDy)."""
    idx = np.minimum((np.clip(prob, 0, 1) * bins).astype(int), bins - 1)
    return {
        "prior": float(np.mean(y)),
        "mean_prob": {"fake": float(prob[y == 1].mean()), "real": float(prob[y == 0].mean())},
        "prob_hist": {
            "fake": np.bincount(idx[y == 1], minlength=bins).tolist(),
            "real": np.bincount(idx[y == 0], minlength=bins).tolist(),
        },
    }
