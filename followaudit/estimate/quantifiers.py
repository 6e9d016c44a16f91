"""PACC, EMQ/SLD and HDy on the audience's probability histogram, vectorised, with bootstrap intervals.

All three read only what a streamed audit keeps: the histogram of calibrated probabilities
(``corrected.probability_histogram``, 2,000 bins, addable per batch) and, from the model card, each
class's held-out mean probability and probability histogram under the audience's missing-field
pattern (``train.score_profile``). Bootstrap draws resample followers as a multinomial over the bins.

* **PACC** (probabilistic adjusted count; Bella et al. 2010): (mean p − m_real) / (m_fake − m_real);
* **EMQ / SLD** (Saerens, Latinne & Decaestecker 2002): EM that re-weights the posteriors from the
  training prior to the audience's prior until the prior is a fixed point;
* **HDy** (González-Castro, Alaiz-Rodríguez & Alegre 2013): the mixture of the classes' probability
  histograms closest to the audience's in Hellinger distance.

These intervals carry sampling error only (their coverage under shift is in the LODO table).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .corrected import SEED, Estimate, _interval
from .intervals import confidence_label

BOOT = 200
EM_ITER = 200
EM_TOL = 1e-6
HDY_GRID = np.linspace(0.0, 1.0, 1001)


def _centres(bins: int) -> np.ndarray:
    return (np.arange(bins) + 0.5) / bins


def _boot(counts: np.ndarray, draws: int, seed: int) -> np.ndarray:
    n = int(counts.sum())
    return np.random.default_rng(seed).multinomial(n, counts / n, size=draws).astype(np.float64)


def pacc_point(mean_prob: np.ndarray | float, m_fake: float, m_real: float) -> np.ndarray | float:
    """(mean p − m_real) / (m_fake − m_real), clipped to [0, 1]."""
    denom = max(m_fake - m_real, 1e-6)
    return np.clip((np.asarray(mean_prob) - m_real) / denom, 0.0, 1.0)


def emq_point(counts: np.ndarray, prior_train: float, probs: np.ndarray | None = None) -> np.ndarray:
    """SLD prior of the fake class for each row of ``counts`` (k × bins, or one histogram)."""
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    p = _centres(c.shape[1]) if probs is None else np.asarray(probs, dtype=np.float64)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    w = c / c.sum(axis=1, keepdims=True)
    q = np.full(c.shape[0], prior_train)
    for _ in range(EM_ITER):  # vectorised over bootstrap draws
        a = q[:, None] / prior_train * p[None, :]
        b = (1 - q[:, None]) / (1 - prior_train) * (1 - p[None, :])
        new = (w * a / (a + b)).sum(axis=1)
        if np.max(np.abs(new - q)) < EM_TOL:
            q = new
            break
        q = new
    return q


def rebin(counts: np.ndarray, bins: int) -> np.ndarray:
    """A fine probability histogram (k × B or B) summed into ``bins`` equal bins (B divisible by bins)."""
    c = np.atleast_2d(counts)
    return c.reshape(c.shape[0], bins, -1).sum(axis=2)


def hdy_point(counts: np.ndarray, hist_fake: np.ndarray, hist_real: np.ndarray) -> np.ndarray:
    """HDy fake share for each row of ``counts`` (already on the classes' bins)."""
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    a = c / c.sum(axis=1, keepdims=True)
    f = np.asarray(hist_fake, dtype=np.float64)
    r = np.asarray(hist_real, dtype=np.float64)
    f, r = f / f.sum(), r / r.sum()
    mix = HDY_GRID[:, None] * f[None] + (1 - HDY_GRID[:, None]) * r[None]  # G × B
    # Hellinger: minimising it maximises the Bhattacharyya coefficient
    bc = np.sqrt(a) @ np.sqrt(mix).T  # k × G
    return HDY_GRID[np.argmax(bc, axis=1)]


def quantify_all(counts: np.ndarray, total: float, profile: dict[str, Any], *, confidence: float = 0.95,
                 draws: int = BOOT, seed: int = SEED) -> dict[str, Estimate]:
    """PACC, EMQ and HDy estimates (with bootstrap intervals) from a probability histogram."""
    n = int(counts.sum())
    if n == 0:
        raise ValueError("no probabilities to estimate from")
    bins = counts.size
    centres = _centres(bins)
    binned_mean = float(counts @ centres) / n
    exact_mean = total / n
    boot = _boot(counts, draws, seed)
    boot_mean = boot @ centres / n + (exact_mean - binned_mean)
    mf, mr = profile["mean_prob"]["fake"], profile["mean_prob"]["real"]
    hf, hr = np.asarray(profile["prob_hist"]["fake"]), np.asarray(profile["prob_hist"]["real"])
    label = confidence_label(confidence)
    out: dict[str, Estimate] = {}
    pt = float(pacc_point(exact_mean, mf, mr))
    out["pacc"] = Estimate(pt, *_interval(np.asarray(pacc_point(boot_mean, mf, mr)), pt, confidence),
                           f"probabilistic adjusted count (PACC), bootstrap {label} interval (sampling error only)")
    pt = float(emq_point(counts, profile["prior"])[0])
    out["emq"] = Estimate(pt, *_interval(emq_point(boot, profile["prior"]), pt, confidence),
                          f"EMQ / SLD (Saerens, Latinne & Decaestecker 2002), bootstrap {label} interval (sampling error only)")
    coarse, boot_coarse = rebin(counts, hf.size), rebin(boot, hf.size)
    pt = float(hdy_point(coarse, hf, hr)[0])
    out["hdy"] = Estimate(pt, *_interval(hdy_point(boot_coarse, hf, hr), pt, confidence),
                          f"HDy (Hellinger distance on probability histograms), bootstrap {label} interval (sampling error only)")
    return out
