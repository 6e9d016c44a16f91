"""Adjusted count whose interval includes transfer error: how sensitivity and specificity move between audiences.

The classifier's cross-validated sensitivity and specificity hold for audiences like its training
data. On another audience they move: a vendor never seen, humans from another community. The
leave-one-domain-out protocol (``classify/lodo.py``) measures, for every held-out group, how far
Se and Sp land from the values measured in training. Those deviations give a
predictive distribution (random effects, normal on the rate scale, centred on the mean deviation
with the between-domain standard deviation; the small number of domains is why ``inflate`` is
calibrated on the LODO audits themselves). The interval draws Se and Sp from it, adds the sampling
error of the flagged share, and is widened further when the audience is shifted:

* ``near``: the predictive distribution as measured;
* ``moderate``: its spread doubled;
* ``far``: no point is trusted: the range spans every share consistent with the flagged share for
  any Se in [``FAR_SE_FLOOR``, 1] and Sp in [``FAR_SP_FLOOR``, 1], with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .corrected import DRAWS, SEED, Estimate, _interval, _observed_draws, rogan_gladen
from .intervals import confidence_label

# Far from the training data nothing measured holds. The range assumes only that the model still
# flags half of the fakes and passes 30% of the people: the unfamiliar audiences of
# classify/unfamiliar.py show it passing only 36-45% of lurkers, so no lower bound above 0 is safe
# unless most followers are flagged; a vendor the model cannot see at all (it catches 14% of the
# Mastodon-like spam there) can still exceed the upper bound, which the README says.
FAR_SE_FLOOR = 0.5
FAR_SP_FLOOR = 0.3
MODERATE_FACTOR = 2.0
METHOD = (
    "adjusted classify-and-count (Rogan–Gladen); {level} interval from draws of sensitivity and specificity "
    "from their between-domain predictive distribution (leave-one-domain-out{extra}), plus sampling error"
)


@dataclass(frozen=True)
class Transfer:
    """Between-domain deviations of Se and Sp from the in-training figures (mean and spread)."""

    se_shift: float = 0.0
    se_sd: float = 0.0
    sp_shift: float = 0.0
    sp_sd: float = 0.0
    # spread factors calibrated on the LODO audits (few domains make the raw spread an underestimate)
    inflate_se: float = 1.0
    inflate_sp: float = 1.0
    domains: int = 0

    @classmethod
    def from_card(cls, entry: dict[str, Any] | None) -> Transfer:
        if not entry:
            return cls()
        keys = ("se_shift", "se_sd", "sp_shift", "sp_sd", "inflate_se", "inflate_sp", "domains")
        return cls(**{k: entry[k] for k in keys if k in entry})

    @classmethod
    def from_deviations(cls, se_dev: np.ndarray, sp_dev: np.ndarray, inflate: tuple[float, float] = (1.0, 1.0)) -> Transfer:
        """Mean and spread of the held-out domains' logit deviations (the spread includes the mean's
        own uncertainty: a new domain is predicted, not the average one)."""

        def stats(d: np.ndarray) -> tuple[float, float]:
            d = np.asarray(d, dtype=np.float64)
            if d.size == 0:
                return 0.0, 0.0
            sd = float(np.std(d, ddof=1)) if d.size > 1 else abs(float(d[0]))
            return float(d.mean()), sd * float(np.sqrt(1 + 1 / d.size))

        se_m, se_s = stats(se_dev)
        sp_m, sp_s = stats(sp_dev)
        return cls(se_m, se_s, sp_m, sp_s, inflate[0], inflate[1], int(max(len(se_dev), len(sp_dev))))

    def to_dict(self) -> dict[str, Any]:
        return {"se_shift": self.se_shift, "se_sd": self.se_sd, "sp_shift": self.sp_shift, "sp_sd": self.sp_sd,
                "inflate_se": self.inflate_se, "inflate_sp": self.inflate_sp, "domains": self.domains}


def rate_draws(hits: int, misses: int, shift: float, sd: float, rng: np.random.Generator, draws: int) -> np.ndarray:
    """Draws of a rate (Se or Sp) on a new domain: Jeffreys posterior of the training counts, moved
    by a between-domain deviation ~ N(shift, sd²) on the rate itself (on the logit scale a rate of
    0.999 against 0.99 reads as a large move, which would make the draws absurdly wide)."""
    base = rng.beta(hits + 0.5, misses + 0.5, size=draws)
    return np.clip(base + shift + sd * rng.standard_normal(draws), 0.02, 1.0)


def transfer_adjusted(flagged: int, n: int, **kwargs: Any) -> Estimate:
    """Adjusted count of the fake share with an interval that carries transfer error and shift
    (arguments as :func:`transfer_draws`)."""
    return transfer_draws(flagged, n, **kwargs)[0]


def transfer_draws(
    flagged: int,
    n: int,
    *,
    counts: dict[str, int],
    transfer: Transfer,
    level: str = "near",
    confidence: float = 0.95,
    population: int | None = None,
    draws: int = DRAWS,
    seed: int = SEED,
) -> tuple[Estimate, np.ndarray]:
    """The estimate and its draws (the remainder shares are split from the draws)."""
    if n <= 0:
        raise ValueError("no followers to estimate from")
    p_obs_point = flagged / n
    tp, fn, tn, fp = (int(counts[k]) for k in ("tp", "fn", "tn", "fp"))
    rng = np.random.default_rng(seed)
    p_obs = _observed_draws(flagged, n, rng, draws, population)
    label = confidence_label(confidence)
    if level == "far":
        # any Se in [FAR_SE_FLOOR, 1], Sp in [FAR_SP_FLOOR, 1]: the extremes of p = (p_obs + Sp − 1)/(Se + Sp − 1)
        alpha = (1 - confidence) / 2
        lo_obs, hi_obs = np.quantile(p_obs, [alpha, 1 - alpha])
        low = float(rogan_gladen(lo_obs, 1.0, FAR_SP_FLOOR))
        high = float(rogan_gladen(hi_obs, FAR_SE_FLOOR, 1.0))
        point = float(np.clip((low + high) / 2, 0, 1))
        method = (f"far from the training data: every fake share consistent with the flagged share "
                  f"({100 * p_obs_point:.1f}%) for any sensitivity from {FAR_SE_FLOOR:.0%} and specificity from {FAR_SP_FLOOR:.0%} to 100%; "
                  f"the middle of the range is no estimate ({label} sampling error included)")
        return Estimate(point, low, high, method), rng.uniform(low, high, draws)
    factor = MODERATE_FACTOR if level == "moderate" else 1.0
    se = rate_draws(tp, fn, transfer.se_shift, transfer.se_sd * transfer.inflate_se * factor, rng, draws)
    sp = rate_draws(tn, fp, transfer.sp_shift, transfer.sp_sd * transfer.inflate_sp * factor, rng, draws)
    denom = se + sp - 1.0
    ok = denom > 0.05
    est = np.clip((p_obs[ok] + sp[ok] - 1.0) / denom[ok], 0.0, 1.0)
    # the point keeps the measured Se and Sp (moving it by the mean deviation raised the LODO error);
    # the interval around it is the predictive one
    point = float(rogan_gladen(p_obs_point, tp / max(tp + fn, 1), tn / max(tn + fp, 1)))
    low, high = _interval(est, point, confidence)
    extra = "; spread doubled: the audience is moderately shifted" if level == "moderate" else ""
    return Estimate(point, low, high, METHOD.format(level=label, extra=extra)), est
