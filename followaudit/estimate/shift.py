"""How far the audited followers sit from the training data (the shift diagnostic of every model audit).

No training row ships with the package: the model card keeps aggregates only — for each feature,
quantile bin edges of the training rows, each class's count per bin, and the central 99% range.
An audience is summarised the same way (counts per bin, addable batch by batch), and compared with
the *best mixture* of the two training classes, so an audience that is merely more or less fake
than the training data (prior shift, which the correction handles) does not read as shifted:

* ``distance``: mean Hellinger distance, over the features the audience carries, between its
  histogram and ``π·fake + (1 − π)·real`` at the π that fits best;
* ``auc``: the AUC of a naive-Bayes classifier that separates the audience from that training
  mixture, fitted on one half of the followers and measured on the other (cross-fitted, so noise
  does not read as shift), on draws from the binned marginals;
* ``outside_support``: the share of followers with more features outside the training's central
  99% range than 99% of training rows have.

The level (near / moderate / far) uses thresholds calibrated on leave-one-domain-out audits (near)
and on deliberately unfamiliar audiences (far); see the model card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

REF_BINS = 16
SUPPORT = (0.005, 0.995)
MIN_KNOWN = 0.5  # a feature enters the comparison when at least half the followers have it
GRID = np.linspace(0.0, 1.0, 101)
SIM_DRAWS = 4000
SEED = 20150214
# Calibrated in `followaudit evaluate` (LODO audits vs unfamiliar audiences); see the model card.
# The level reads the mean Hellinger distance to the best training mix and the most shifted
# feature's AUC (both steady in the audience's size); the naive-Bayes AUC, which sums small
# differences over every feature, is reported beside them but nears 1 on large audiences.
DIST_MODERATE = 0.16
DIST_FAR = 0.28
FEATURE_AUC_MODERATE = 0.72
FEATURE_AUC_FAR = 0.85
OUTSIDE_FAR = 0.25
METHOD = (
    "binned features against the best-fitting mix of the training classes (aggregates in the model card): "
    "Hellinger distance, most shifted feature's AUC, cross-fitted naive-Bayes AUC, share outside the central 99%; "
    "levels calibrated on leave-one-domain-out and unfamiliar audiences"
)


def shift_reference(X: np.ndarray, y: np.ndarray, features: tuple[str, ...], bins: int = REF_BINS) -> dict[str, Any]:
    """Aggregates of the training rows for the shift diagnostic (goes in the model card)."""
    feats: dict[str, Any] = {}
    outside = np.zeros(len(y), dtype=np.int64)
    for j, name in enumerate(features):
        col = X[:, j]
        ok = ~np.isnan(col)
        vals = col[ok]
        if vals.size == 0:
            continue
        edges = np.unique(np.quantile(vals, np.arange(1, bins) / bins))
        lo, hi = (float(v) for v in np.quantile(vals, SUPPORT))
        idx = np.searchsorted(edges, col[ok], side="right")
        nb = len(edges) + 1
        feats[name] = {
            "edges": edges.tolist(),
            "fake": np.bincount(idx[y[ok] == 1], minlength=nb).tolist(),
            "real": np.bincount(idx[y[ok] == 0], minlength=nb).tolist(),
            "known": float(ok.mean()),
            "support": [lo, hi],
        }
        outside += ok & ((col < lo) | (col > hi))
    return {
        "bins": bins,
        "features": feats,
        "outside_k": int(np.quantile(outside, 0.99)),
        "prior": float(np.mean(y)),
        "rows": int(len(y)),
    }


# The diagnostic's figures are shares and distances between histograms: past a few hundred thousand
# followers they no longer move (standard error of a share < 0.001), so a large audience is profiled
# on a systematic sample of about this many (every k-th follower in the order they are read).
PROFILE_ROWS = 250_000


def profile_stride(n_followers: int, rows: int = PROFILE_ROWS) -> int:
    """Every how many followers the shift profile reads one, for an audience of ``n_followers``."""
    return max(1, -(-n_followers // rows))


@dataclass
class AudienceProfile:
    """The audience's binned features, addable per batch: counts per bin for two halves of the rows.

    ``stride`` k > 1: the caller profiles every k-th follower (``sample_rows``).
    """

    counts: dict[str, np.ndarray] = field(default_factory=dict)  # feature -> (2, bins)
    n: int = 0
    outside: int = 0
    with_features: int = 0
    stride: int = 1
    seen: int = 0  # followers offered by sample_rows, profiled or not

    def sample_rows(self, n: int) -> slice:
        """Which of the next ``n`` followers to profile (every ``stride``-th, counted across batches)."""
        start = -self.seen % self.stride
        self.seen += n
        return slice(start, None, self.stride)

    def add(self, X: np.ndarray, features: tuple[str, ...], reference: dict[str, Any]) -> None:
        """Profile the rows of ``X`` (all of them: ``sample_rows`` says which to pass)."""
        ref = reference["features"]
        n = len(X)
        first_half = self.n % 2  # rows alternate between the halves across batches
        columns = np.ascontiguousarray(X.T)  # one pass per feature reads a contiguous row (no copy for column-major X)
        out = np.zeros(n, dtype=np.int8)
        known_any = np.zeros(n, dtype=bool)
        for j, name in enumerate(features):
            if name not in ref:
                continue
            col = columns[j]
            missing = np.isnan(col)
            known_any |= ~missing
            edges = np.asarray(ref[name]["edges"])
            nb = len(edges) + 1
            # NaN sorts past every edge, into the last bin: its count is taken out again below
            idx = np.searchsorted(edges, col, side="right")
            c = np.stack([np.bincount(idx[h::2], minlength=nb) for h in (first_half, 1 - first_half)])
            c[:, nb - 1] -= [np.count_nonzero(missing[h::2]) for h in (first_half, 1 - first_half)]
            self.counts[name] = self.counts.get(name, np.zeros((2, nb), dtype=np.int64)) + c
            lo, hi = ref[name]["support"]
            out += (col < lo) | (col > hi)  # NaN compares false: a missing value is never outside
        self.outside += int(np.count_nonzero(known_any & (out > reference["outside_k"])))
        self.with_features += int(known_any.sum())
        self.n += n


def _hellinger(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(1.0 - np.sum(np.sqrt(a * b), axis=-1), 0.0, None))


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC of scores ``pos`` over ``neg`` (ties count half), by ranks."""
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_s = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    r = ranks[: len(pos)].sum()
    return float((r - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def diagnose(profile: AudienceProfile, reference: dict[str, Any], *, seed: int = SEED) -> dict[str, Any]:
    """The shift entry of ``report.evidence``: level, auc, outside_support, distance, words, method."""
    ref = reference["features"]
    names = [f for f, c in profile.counts.items() if profile.n and c.sum() / profile.n >= MIN_KNOWN and f in ref]
    outside = profile.outside / profile.with_features if profile.with_features else None
    if not names or profile.n < 50:
        return {
            "level": "unknown", "auc": None, "distance": None, "outside_support": outside, "features_compared": names,
            "words": "Too few followers or profile fields to say how far they sit from the training data.", "method": METHOD,
        }
    # distributions per feature, padded to a common bin count: audience (both halves, each half), fake, real
    nb = max(len(ref[f]["edges"]) + 1 for f in names)

    def pad(v: np.ndarray) -> np.ndarray:
        return np.pad(np.asarray(v, dtype=np.float64), (0, nb - len(v)))

    halves = np.stack([np.stack([pad(profile.counts[f][h]) for f in names]) for h in (0, 1)])  # (2, F, B)
    fake = np.stack([pad(ref[f]["fake"]) for f in names]) + 0.5
    real = np.stack([pad(ref[f]["real"]) for f in names]) + 0.5
    valid = np.stack([pad(np.ones(len(ref[f]["edges"]) + 1)) for f in names]) > 0
    fake, real = np.where(valid, fake, 0), np.where(valid, real, 0)
    fake /= fake.sum(axis=1, keepdims=True)
    real /= real.sum(axis=1, keepdims=True)
    both = halves.sum(axis=0)
    aud = both / both.sum(axis=1, keepdims=True)
    mix = GRID[:, None, None] * fake[None] + (1 - GRID[:, None, None]) * real[None]  # (G, F, B)
    dist = _hellinger(aud[None], mix).mean(axis=1)
    g = int(np.argmin(dist))
    pi = float(GRID[g])
    per_feature = _hellinger(aud, mix[g])
    ref_mix = mix[g]
    # cross-fitted naive Bayes: log-ratios from one half, AUC on draws from the other half vs the mix
    rng = np.random.default_rng(seed)
    aucs = []
    for fit_h, test_h in ((0, 1), (1, 0)):
        fitted = halves[fit_h] + 0.5 * valid
        fitted = np.where(valid, fitted, 0)
        fitted /= fitted.sum(axis=1, keepdims=True)
        llr = np.log(np.where(valid, fitted, 1)) - np.log(np.where(valid, ref_mix, 1))
        test = halves[test_h] / np.maximum(halves[test_h].sum(axis=1, keepdims=True), 1)
        s_aud = _draw_scores(test, llr, rng)
        s_ref = _draw_scores(ref_mix, llr, rng)
        aucs.append(_auc(s_aud, s_ref))
    auc = float(np.mean(aucs))
    # per feature: AUC of the value itself (audience above the training mix), folded to >= 0.5
    below = np.cumsum(ref_mix, axis=1) - 0.5 * ref_mix
    f_auc = np.abs(np.sum(aud * below, axis=1) - 0.5) + 0.5
    level = shift_level(float(dist[g]), float(f_auc.max()), outside)
    order = np.argsort(-per_feature)[:3]
    return {
        "level": level,
        "auc": auc,
        "max_feature_auc": float(f_auc.max()),
        "distance": float(dist[g]),
        "outside_support": outside,
        "best_mix_fake_share": pi,
        "features_compared": names,
        "feature_auc": {names[i]: float(f_auc[i]) for i in range(len(names))},
        "most_shifted": [{"feature": names[i], "hellinger": float(per_feature[i])} for i in order],
        "words": shift_words(level, float(dist[g]), outside, [names[i] for i in order]),
        "method": METHOD,
    }


def _draw_scores(dist: np.ndarray, llr: np.ndarray, rng: np.random.Generator, draws: int = SIM_DRAWS) -> np.ndarray:
    """Naive-Bayes scores of ``draws`` rows drawn feature by feature from the binned marginals ``dist``."""
    cdf = np.cumsum(dist, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((draws, dist.shape[0]))
    idx = np.empty(u.shape, dtype=np.int64)
    for j in range(dist.shape[0]):  # one pass per feature (≤ 25), not per row
        idx[:, j] = np.minimum(np.searchsorted(cdf[j], u[:, j], side="right"), dist.shape[1] - 1)
    return llr[np.arange(dist.shape[0])[None, :], idx].sum(axis=1)


def shift_level(distance: float | None, feature_auc: float | None, outside: float | None) -> str:
    """near / moderate / far from the distance to the best training mix, the most shifted feature's
    AUC and the share outside the training support."""
    if distance is None or feature_auc is None:
        return "unknown"
    if distance >= DIST_FAR or feature_auc >= FEATURE_AUC_FAR or (outside or 0.0) >= OUTSIDE_FAR:
        return "far"
    if distance >= DIST_MODERATE or feature_auc >= FEATURE_AUC_MODERATE:
        return "moderate"
    return "near"


def shift_words(level: str, distance: float, outside: float | None, top: list[str]) -> str:
    """One plain sentence for the report."""
    where = ", ".join(t.replace("_", " ") for t in top)
    out = f"; {100 * outside:.0f}% of them lie outside its usual range" if outside and outside >= 0.005 else ""
    d = f"distance {distance:.2f}"
    if level == "near":
        return f"These followers look like the accounts the model was trained on ({d}; 0 = the same){out}."
    if level == "moderate":
        return (f"These followers differ somewhat from the accounts the model was trained on ({d}; most in {where}){out}, "
                "so the range is widened.")
    return (f"These followers are far from the accounts the model was trained on ({d}; most in {where}){out}: "
            "its error here is unknown, so only a wide range is given, not a point.")
