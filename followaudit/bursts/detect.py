"""Bought batches in follow order: the follow-time lower bound and burst detection.

Platform APIs give the order in which followers followed, not when. Meeder et al. (WWW 2011): a
follower cannot have followed before its account existed, nor before anyone who followed earlier,
so the running maximum of creation dates along the follow order is a lower bound on every follow
time — tight wherever a brand-new account follows right after joining (the "crust" of the
follower-factory chart).

**Burst detection** (documented with its evaluation in ``docs/bursts.md``). A bought batch is a run
of consecutive followers whose accounts were made in a narrow window. We work in the coordinate
*age at follow* ``a = followed_at_lower − created_at`` (days): there the organic crust (new accounts
that follow at once) is a steady band at ``a ≈ 0`` whatever the rank, so a background estimated
along the rank follows it, while a batch stays a narrow horizontal band. Three steps, all vectorised:

1. **Candidates on a grid.** Followers are cut into rank blocks (``block`` followers, at most
   ``max_blocks`` blocks) and age bins of ``bin_days`` × each of ``scales`` (with half-bin offsets
   for the coarse scales, so a batch never straddles two bins badly). Per cell, the count expected
   from the organic followers around it is the leave-one-out share of that age bin in a window of
   ±``background_followers`` around the block, re-estimated twice with excess cells replaced by
   their expectation (so a batch does not inflate its own background). Cells whose excess is both
   ``cell_z`` Poisson standard deviations and a few followers large are linked into 8-connected
   components; a component whose total excess reaches ``min_size / 2`` is a candidate.
2. **Follower-level scan.** Within a candidate's rank extent, each follower is 1 if its age falls
   in the candidate's age range (padded by one bin), else 0. Against the background share ``p0`` the
   burst hypothesis is ``p1 = p0 + burst_density · (1 − p0)`` ("at least half of the remaining
   followers land in this window"). The segment maximising the Bernoulli log-likelihood ratio is a
   maximum-sum subarray, found with one cumulative sum and a running minimum; the search repeats on
   both sides. A segment is kept when its LLR ≥ ``scan_llr`` and it holds ≥ ``min_size`` members.
   Because the LLR drops with every non-member, the segment's ends are its first and last members.
3. **Choose the scale, refine, describe.** Of segments (from all scales) that overlap in rank and
   creation dates, the one with the highest LLR is kept; its creation window then grows to the
   whole batch and the scan reruns to place the ends (``_refine``). A burst is the rectangle
   ``[start_rank, end_rank] × [created_from, created_to]``, its members are the followers inside
   it, and it is reported when it still has ≥ ``min_size`` members, at least ``min_enrichment``
   times the members the background would put there (``expected``), and passes the null:
4. **A null measured on the account's own followers** (``_null_test``): organic sign-up waves
   (brand-new accounts following within ``crust_days``) are kept as observed, every other
   follower's age at follow is redrawn from its neighbours'; the burst's p-value comes from a Gumbel
   fit to the null's best-segment LLRs, and it is reported when p-value × rectangles tested (the
   expected number of false alarms) ≤ ``alpha``.

Exact follow times (a ``followed_at`` column, e.g. from Bluesky follow records) replace the lower
bound wherever they are known: ages at follow, burst dates (``followed_exact``) and, with exact
times across a burst, its follow rate against the account's (``follow_rate_ratio``). They also feed
a second scan, **follow-rate spikes** (``_rate_bursts``): hourly candidates against the account's own
rate around them, a Poisson scan over the gaps between follows, and the same Monte Carlo null
(``_monte_carlo_p``) with the gaps redrawn from the neighbours'; a batch found by both scans is one
burst (``found_by``).
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from ..errors import InputError, MissingColumnsError
from ..estimate.intervals import wilson
from ..native.build import compiled

DAY_US = 86_400_000_000
UTC_TS = pl.Datetime("us", "UTC")
MAX_AGE_DAYS = 60 * 365  # older "creation dates" (bad data, e.g. epoch 0) share the last bin
BURST_REASON_PREFIX = "in burst #"  # every member reason starts so (web filter, reason counts)
METHOD = (
    "runs of consecutive followers concentrated in a narrow window of account age at follow time, "
    "against the organic share around them (grid candidates + Bernoulli max-LLR segment scan), "
    "each tested against a Monte Carlo null measured on the account's own followers"
)
NULL_METHOD = (
    "Monte Carlo null on the account's own followers: follow order and follow times kept, followers who "
    "joined within crust_days of following (organic sign-up waves) kept as observed, every other follower's "
    "account age at follow redrawn from the ages of the followers around the burst; p-value from a Gumbel fit "
    "to the null's best-segment LLRs (up to null_draws draws, in rounds of 20, stopping once the p-value is 1,000× "
    "beyond alpha / tests either way or above 0.5), expected false alarms = p-value × rectangles tested"
)

RATE_METHOD = (
    "runs of followers whose exact follow times arrive far faster than the account's own follow rate around them "
    "(hourly grid candidates against a ±rate_window_hours envelope + Poisson max-LLR scan over the gaps between follows, "
    "burst hypothesis rate_ratio × the envelope)"
)
RATE_NULL_METHOD = (
    "Monte Carlo null on the account's own followers: every gap between follows, measured in units of the local "
    "envelope (which keeps organic waves that unfold over hours), redrawn from the gaps of the followers around the "
    "window (its own span left out); p-value from a Gumbel fit to the null's best-segment LLRs, expected false "
    "alarms = p-value × windows tested"
)


@dataclass(frozen=True)
class BurstParams:
    """Detection parameters; the defaults are argued for in ``docs/bursts.md``."""

    min_size: int = 100  # smallest batch reported (members)
    bin_days: int = 7  # finest age bin
    scales: tuple[int, ...] = (1, 4, 16, 64)  # age windows of 7, 28, 112 and 448 days
    block: int | None = None  # followers per rank block; None = max(min_block, n / max_blocks)
    min_block: int = 25
    max_blocks: int = 4000
    background_followers: int = 20_000  # half-width of the organic background window
    background_min_blocks: int = 10
    cell_z: float = 4.0
    burst_density: float = 0.5
    scan_llr: float = 10.0  # segments below this LLR are not worth testing against the null
    min_enrichment: float = 2.0  # members must be ≥ this × what the background puts in the rectangle
    # the measured null (see _null_test): draws, the crust kept as observed, the resampling pool
    null_draws: int = 100
    crust_days: float = 0.5  # joined at most 12 hours before following: a sign-up wave, kept in the null
    null_pool: int = 20_000
    alpha: float = 0.01  # a burst is reported when its expected number of false alarms is at most this
    null_seed: int = 0
    # follow-rate spikes (exact follow times only): see _rate_bursts
    rate_ratio: float = 50.0  # burst hypothesis: follows arrive this many times faster than the local day's mean
    rate_window_hours: int = 12  # half-width of the local follow-rate envelope (hours)
    rate_trim_hours: int = 3  # the envelope leaves out this many busiest hours of its window

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Burst:
    """One detected batch: a rectangle in (follow rank, creation date)."""

    start_rank: int
    end_rank: int
    size: int  # followers inside the rectangle
    created_from: datetime
    created_to: datetime
    followed_from: datetime | None  # follow-time lower bound at the first member
    followed_to: datetime | None  # follow-time lower bound at the last member
    fake_share: float | None  # share of labelled members labelled fake; None without labels
    score: float  # log-likelihood ratio (nats) of "burst" vs "organic background"
    burst_id: int = 0  # 1, 2, ... in follow order
    expected: float = 0.0  # members the organic background would put in the same rectangle
    fake_share_low: float | None = None  # Wilson 95% interval of fake_share
    fake_share_high: float | None = None
    p_value: float | None = None  # chance that the null (organic, waves kept) scores this high here
    expected_false_alarms: float | None = None  # p_value × rectangles tested in this account
    followed_exact: bool = False  # followed_from/to are exact follow times (else lower bounds)
    follow_rate_ratio: float | None = None  # members per hour ÷ the account's follows per hour around it
    # which scans found it: "creation_date" (a rectangle in rank × creation date), "follow_rate" (a
    # spike of exact follow times); a batch found by both is one burst
    found_by: tuple[str, ...] = ("creation_date",)
    rate_p_value: float | None = None  # the follow-rate scan's p-value (None: not found by it)
    rate_expected_false_alarms: float | None = None  # rate_p_value × time windows tested

    @property
    def kind(self) -> str:
        """'bought' unless its members are mostly labelled real: then only 'suspicious'."""
        return "suspicious" if self.fake_share is not None and self.fake_share < 0.5 else "bought"

    @property
    def span(self) -> int:
        """Followers from the first to the last member (members plus interleaved others)."""
        return self.end_rank - self.start_rank + 1

    def reason(self) -> str:
        """The label reason for a follower inside this burst."""
        what = "" if self.kind == "bought" else "a suspicious batch (mostly labelled real) of "
        if "creation_date" not in self.found_by and self.followed_from and self.followed_to:
            return (
                f"{BURST_REASON_PREFIX}{self.burst_id}: {what}{self.size:,} followers who followed within "
                f"{_duration(self.followed_to - self.followed_from)} ({self.followed_from:%Y-%m-%d %H:%M} UTC), "
                f"far faster than the account's usual rate"
            )
        return (
            f"{BURST_REASON_PREFIX}{self.burst_id}: {what}{self.size:,} followers created "
            f"{self.created_from:%Y-%m-%d}..{self.created_to:%Y-%m-%d}, followed consecutively"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            out[key] = value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, tuple) else value
        out["span"] = self.span
        out["kind"] = self.kind
        out["reason"] = self.reason()
        return out


def _duration(delta: Any) -> str:
    minutes = max(int(round(delta.total_seconds() / 60)), 1)
    return f"{minutes} minutes" if minutes < 120 else f"{minutes / 60:.1f} hours"


@dataclass
class BurstScan:
    """Bursts plus what was scanned, for reports."""

    bursts: list[Burst]
    followers_scanned: int
    followers_skipped: int  # no follow rank or no creation date: cannot be placed
    params: BurstParams = field(default_factory=BurstParams)
    follow_times_exact: int = 0  # followers placed by an exact follow time (the rest: the lower bound)
    tests: int = 0  # rectangles tested against the null (the look-elsewhere factor)
    rate_tests: int = 0  # follow-rate windows tested (exact follow times only)

    def section(self) -> dict[str, Any]:
        """What was scanned and how (the report's ``burst_detection`` section, without the bursts)."""
        out: dict[str, Any] = {
            "method": METHOD,
            "params": self.params.to_dict(),
            "followers_scanned": self.followers_scanned,
            "followers_skipped": self.followers_skipped,
            "follow_times_exact": self.follow_times_exact,
            "null": NULL_METHOD,
            "tests": self.tests,
        }
        if self.follow_times_exact:
            out.update(rate_method=RATE_METHOD, rate_null=RATE_NULL_METHOD, rate_tests=self.rate_tests)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**self.section(), "bursts": [b.to_dict() for b in self.bursts]}


# -- input -----------------------------------------------------------------------------------------
def _require(frame: pl.DataFrame, names: tuple[str, ...]) -> None:
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"burst analysis needs columns {', '.join(missing)}",
            "it needs follower_id, follow_rank (follow order) and created_at (account creation date)",
        )


def _created_utc(frame: pl.DataFrame) -> pl.Expr:
    dtype = frame.schema["created_at"]
    col = pl.col("created_at")
    if isinstance(dtype, pl.Datetime):
        col = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col.dt.convert_time_zone("UTC")
    return col.cast(UTC_TS)


def _to_dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def estimate_follow_times(frame: pl.DataFrame, *, account_created_at: datetime | None = None) -> pl.DataFrame:
    """``frame`` with ``followed_at_lower``: the running maximum of ``created_at`` in rank order.

    Rows keep their order. A follower without a creation date still gets the bound set by those
    before it; a follower without a rank gets null. ``account_created_at`` (the followed account's
    own creation) is a further lower bound for everyone.
    """
    _require(frame, ("follow_rank", "created_at"))
    lower = _created_utc(frame).cum_max().forward_fill()
    if account_created_at is not None:
        lower = pl.max_horizontal(lower, pl.lit(account_created_at, dtype=UTC_TS))
    lower = pl.when(pl.col("follow_rank").is_not_null()).then(lower).alias("followed_at_lower")
    ranks = frame["follow_rank"]
    if ranks.null_count() == 0 and ranks.is_sorted():
        return frame.with_columns(lower)
    return (
        frame.with_row_index("__row")
        .sort("follow_rank", nulls_last=True, maintain_order=True)
        .with_columns(lower)
        .sort("__row")
        .drop("__row")
    )


@dataclass
class _Prepared:
    rank: np.ndarray  # int64, ascending
    created: np.ndarray  # int64 microseconds
    lower: np.ndarray  # int64 microseconds: the exact follow time where known, else the running max
    age: np.ndarray  # float64 days, lower - created (>= 0)
    is_fake: np.ndarray | None
    has_label: np.ndarray | None
    skipped: int
    exact: np.ndarray | None = None  # bool: lower is an exact follow time
    exact_count: int = 0


def _prepare(frame: pl.DataFrame, account_created_at: datetime | None) -> _Prepared:
    _require(frame, ("follow_rank", "created_at"))
    cols = [pl.col("follow_rank").cast(pl.Int64), _created_utc(frame).dt.epoch("us").alias("created_us")]
    labelled = "label" in frame.columns
    timed = "followed_at" in frame.columns and frame["followed_at"].null_count() < frame.height
    if timed:
        cols.append(pl.col("followed_at").cast(UTC_TS).dt.epoch("us").alias("followed_us"))
    if labelled:
        cols += [(pl.col("label") == "fake").fill_null(False).alias("is_fake"), pl.col("label").is_not_null().alias("has_label")]
    used = frame.select(cols).filter(pl.col("follow_rank").is_not_null() & pl.col("created_us").is_not_null())
    if not used["follow_rank"].is_sorted():
        used = used.sort("follow_rank", maintain_order=True)
    rank = used["follow_rank"].to_numpy()
    created = used["created_us"].to_numpy()
    exact = None
    if timed and used["followed_us"].null_count() == 0:  # every time exact: no bound needed
        # (a client-written TID may predate the account's creation: clip)
        lower = np.maximum(used["followed_us"].to_numpy(), created)
        exact = np.ones(created.size, dtype=bool)
    else:
        lower = np.maximum.accumulate(created) if created.size else created
        if account_created_at is not None and created.size:
            lower = np.maximum(lower, int(account_created_at.timestamp() * 1_000_000))
        if timed:  # an exact follow time replaces the bound where known
            followed = used["followed_us"].to_numpy()
            exact = ~used["followed_us"].is_null().to_numpy()
            lower = np.where(exact, np.maximum(np.nan_to_num(followed, nan=0).astype(np.int64), created), lower)
    age = np.subtract(lower, created).astype(np.float64)
    age /= DAY_US
    np.minimum(age, MAX_AGE_DAYS, out=age)
    return _Prepared(
        rank=rank, created=created, lower=lower, age=age,
        is_fake=used["is_fake"].to_numpy() if labelled else None,
        has_label=used["has_label"].to_numpy() if labelled else None,
        skipped=frame.height - used.height, exact=exact, exact_count=int(exact.sum()) if exact is not None else 0,
    )


# -- step 1: grid candidates -----------------------------------------------------------------------
WIDE_ROWS = 256  # grids at least this wide are summed row by row (see _window_sums)


def _window_sums(values: np.ndarray, half: int, buf: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Sum over rows [i-half, i+half] (clipped), via one cumulative sum along axis 0.

    The cumulative sum is written into a buffer padded with its first and last values, so each
    window is one subtraction of two slices (no gathers). ``buf`` (n + 2·half + 1 rows) and ``out``
    (n rows) are reused when given: fresh pages of a 4,000-row grid cost as much as the sums.
    """
    n = values.shape[0]
    shape = (n + 2 * half + 1, *values.shape[1:])
    if buf is None or buf.shape != shape:
        buf = np.empty(shape, dtype=np.float64)
    buf[: half + 1] = 0.0
    if values.ndim == 2 and values.shape[1] >= WIDE_ROWS:
        # NumPy's cumsum down the rows of a wide C-ordered grid is strided and ~3× slower than adding
        # row to row (the same additions in the same order); the loop is over rank blocks (≤ max_blocks)
        for i in range(n):
            np.add(buf[half + i], values[i], out=buf[half + 1 + i])
    else:
        np.cumsum(values, axis=0, out=buf[half + 1 : half + 1 + n])
    buf[half + 1 + n :] = buf[half + n]
    return np.subtract(buf[2 * half + 1 :], buf[:n], out=out)


def _block_scale(m: np.ndarray, half: int) -> np.ndarray:
    """Followers in each block ÷ followers in the blocks around it (its own left out)."""
    wm = _window_sums(m[:, None], half)[:, 0] - m
    return m / np.maximum(wm, 1.0)


def _background(x: np.ndarray, m: np.ndarray, half: int, passes: int = 3) -> np.ndarray:
    """Expected count per cell from the organic followers around it (leave-one-out, reweighted).

    The NumPy reference of ``GRID_C``'s ``background`` (which runs when a C compiler works)."""
    scale = _block_scale(m, half)[:, None]
    # only cells holding at least 2 followers can ever be replaced (excess ≥ 2): the reweighting
    # reads and writes those alone, which on a fine grid are a small part of it
    cells = np.flatnonzero(x >= 2.0)
    x_cells = x.ravel()[cells]
    work = x
    buf, expected = np.empty((x.shape[0] + 2 * half + 1, *x.shape[1:])), np.empty(x.shape)
    for step in range(passes):
        _window_sums(work, half, buf, expected)  # into the reused ``expected``, updated in place below
        expected -= work
        expected *= scale
        if step == passes - 1:
            return expected
        # lenient: anything that might be batch is replaced by its expectation for the next pass
        # (clip: background shares computed by subtraction can come out at -1e-17)
        e_cells = expected.ravel()[cells]
        bar = np.maximum(3.0 * np.sqrt(np.clip(e_cells, 0.0, None)), 2.0)
        if work is x:
            work = x.copy()
        work.ravel()[cells] = np.where(x_cells - e_cells >= bar, e_cells, x_cells)
    return expected  # pragma: no cover


def _hits(x: np.ndarray, e: np.ndarray, min_cell: float, cell_z: float) -> np.ndarray:
    """Flat indices (ascending) of cells whose excess is ≥ ``cell_z`` σ and ≥ ``min_cell``; only
    cells holding ≥ ``min_cell`` followers need the test."""
    cells = np.flatnonzero(x >= min_cell)
    e_cells = e.ravel()[cells]
    return cells[(x.ravel()[cells] - e_cells) >= np.maximum(cell_z * np.sqrt(np.clip(e_cells, 0.0, None)), min_cell)]


def _coarsen(cum: np.ndarray, k: int, offset: int) -> np.ndarray:
    """Counts in bins of ``k`` fine bins shifted by ``offset``, from the fine grid's cumulative sums
    along the bins (``cum``: a leading zero column; computed once and shared by every scale)."""
    return cum[:, (edges := _coarse_edges(cum.shape[1] - 1, k, offset))[1:]] - cum[:, edges[:-1]]


def _coarse_edges(nbins: int, k: int, offset: int) -> np.ndarray:
    """Fine-bin edges of the bins of ``k`` fine bins shifted by ``offset`` (clipped to the grid)."""
    return np.clip(np.arange(-(-(offset + nbins) // k) + 1) * k - offset, 0, nbins)


# The grid's counts and organic background in C: every count is an integer (exact in float64,
# whatever the order of the additions), and the background's window sums add row after row in
# NumPy's order (cumulative sums, then one subtraction per window), so the same numbers as the
# NumPy code above, which runs when no C compiler works. The three reweighting passes run in one
# sweep down the rows (pass p trails pass p-1 by the half-window), on strips of columns whose
# cumulative sums fit in a ring of 2·half + 2 rows in cache: the grid is read once and its
# expectation written once (NumPy: ~20 passes over it, and two more to find the flagged cells).
GRID_C = r"""
#include <stdint.h>
#include <math.h>
#include <string.h>
static int64_t bin_of(double age, double bin_days, int64_t last) {
    int64_t b = (int64_t)(age / bin_days);
    return b < 0 ? 0 : (b > last ? last : b);
}
/* followers per age bin (int64, nhist bins; out-of-range ages share an end bin) */
void age_hist(const double* age, int64_t n, double bin_days, int64_t* hist, int64_t nhist) {
    for (int64_t i = 0; i < n; i++) hist[bin_of(age[i], bin_days, nhist - 1)]++;
}
/* the fine grid (rows of block followers x nbins age bins, bins above top share top) and its row sums */
void grid_fill(const double* age, int64_t n, double bin_days, int64_t top, int64_t block, int64_t nbins,
               double* fine, double* m) {
    for (int64_t i = 0; i < n; i++) {
        int64_t row = i / block;
        fine[row * nbins + bin_of(age[i], bin_days, top)] += 1.0;
        m[row] += 1.0;
    }
}
/* coarse grids: outs[g][r, c] = fine[r, edges_g[c]:edges_g[c + 1]] summed (edges of grid g follow
   those of grid g - 1 in edges, ncols[g] + 1 of them), from one prefix sum per row */
void coarsen(const double* fine, int64_t nb, int64_t nbins, int64_t ngrids, const int64_t* ncols,
             const int64_t* edges, double* const* outs, double* rowcum) {
    for (int64_t r = 0; r < nb; r++) {
        const double* f = fine + r * nbins;
        rowcum[0] = 0.0;
        for (int64_t j = 0; j < nbins; j++) rowcum[j + 1] = rowcum[j] + f[j];
        const int64_t* e = edges;
        for (int64_t g = 0; g < ngrids; g++) {
            double* o = outs[g] + r * ncols[g];
            for (int64_t c = 0; c < ncols[g]; c++) o[c] = rowcum[e[c + 1]] - rowcum[e[c]];
            e += ncols[g] + 1;
        }
    }
}
/* row kernels (restrict: the rows never overlap, so each loop is vectorised without run-time checks) */
static void add_row(double* restrict c, const double* restrict prev, const double* restrict v, int64_t sw) {
    for (int64_t j = 0; j < sw; j++) c[j] = prev[j] + v[j];
}
static void expect_row(double* restrict e, const double* restrict hi, const double* restrict lo,
                       const double* restrict v, double s, int64_t sw) {
    for (int64_t j = 0; j < sw; j++) e[j] = ((hi[j] - lo[j]) - v[j]) * s;
}
/* the lenient replacement: counts of the next pass (a cell of >= 2 followers that exceeds its
   expectation by max(3 sigma, 2) counts as its expectation) */
static void replace_row(double* restrict next, const double* restrict hi, const double* restrict lo,
                        const double* restrict v, const double* restrict xi, double s, int64_t sw) {
    for (int64_t j = 0; j < sw; j++) {
        double e = ((hi[j] - lo[j]) - v[j]) * s, xv = xi[j];
        double bar = 3.0 * sqrt(e > 0.0 ? e : 0.0);
        bar = bar > 2.0 ? bar : 2.0;
        next[j] = (xv >= 2.0) & (xv - e >= bar) ? e : xv;
    }
}
/* _background's passes on columns c0 .. c0 + sw - 1 of x (n rows of w), then the flagged cells.
   Per pass p, a ring of its cumulative sums (R rows of sw) and, after pass 0 (which reads x), a ring
   of its counts (Q rows). Row r of pass p is summed at step r + p*half; its expectation needs rows
   up to r + half, so it comes out at step r + (p + 1)*half and becomes row r of pass p + 1's counts
   at once. */
static int64_t strip(const double* x, int64_t n, int64_t w, int64_t c0, int64_t sw, const double* scale,
                     int64_t h, int64_t passes, int first_copy, double* out, double min_cell, double cell_z,
                     int64_t* hits, double* hit_e, double* hit_x, int64_t nh, double* scratch, int64_t R, int64_t Q) {
    double* sums = scratch;
    double* counts = scratch + passes * R * sw;
    double* row_e = counts + (passes - 1) * Q * sw;
    double* zero = row_e + sw;  /* the cumulative sum before the first row (NumPy subtracts its 0.0 too) */
    for (int64_t j = 0; j < sw; j++) zero[j] = 0.0;
    for (int64_t t = 0; t < n + passes * h; t++) {
        for (int64_t p = 0; p < passes; p++) {
            double* C = sums + p * R * sw;
            const double* W = p ? counts + (p - 1) * Q * sw : 0;
            int64_t r = t - p * h;
            if (r >= 0 && r < n) {
                const double* v = p ? W + (r % Q) * sw : x + r * w + c0;
                if (r > 0) {
                    add_row(C + (r % R) * sw, C + ((r - 1) % R) * sw, v, sw);
                } else {  /* np.cumsum starts from the first row, the row-by-row sum from a row of zeros */
                    add_row(C, zero, v, sw);
                    if (first_copy) for (int64_t j = 0; j < sw; j++) C[j] = v[j];
                }
            }
            int64_t i = t - (p + 1) * h;
            if (i < 0 || i >= n) continue;
            const double* hi = C + ((i + h < n ? i + h : n - 1) % R) * sw;
            const double* lo = i - h - 1 >= 0 ? C + ((i - h - 1) % R) * sw : zero;
            const double* v = p ? W + (i % Q) * sw : x + i * w + c0;
            if (p + 1 < passes) {
                replace_row(counts + p * Q * sw + (i % Q) * sw, hi, lo, v, x + i * w + c0, scale[i], sw);
                continue;
            }
            expect_row(row_e, hi, lo, v, scale[i], sw);
            const double* xi = x + i * w + c0;
            for (int64_t j = 0; j < sw; j++) {
                double xv = xi[j];
                if (!(xv >= min_cell)) continue;
                double e = row_e[j], bar = cell_z * sqrt(e > 0.0 ? e : 0.0);
                if (!(bar > min_cell)) bar = min_cell;
                if (xv - e >= bar) { hits[nh] = i * w + c0 + j; hit_e[nh] = e; hit_x[nh] = xv; nh++; }
            }
            /* row i of x is read for the last time above: out may be x itself */
            if (out) memcpy(out + i * w + c0, row_e, sw * sizeof(double));
        }
    }
    return nh;
}
/* the expectation (into out unless NULL; out may be x) and the flagged cells (hits, their
   expectations in hit_e and counts in hit_x; in strip order) of the grid x; returns how many */
int64_t background(const double* x, int64_t n, int64_t w, const double* scale, int64_t h, int64_t passes,
                   int first_copy, double* out, double min_cell, double cell_z, int64_t* hits, double* hit_e,
                   double* hit_x, double* scratch, int64_t strip_cols) {
    int64_t R = 2 * h + 2 < n ? 2 * h + 2 : n, Q = h + 1 < n ? h + 1 : n, nh = 0;
    for (int64_t c0 = 0; c0 < w; c0 += strip_cols) {
        int64_t sw = w - c0 < strip_cols ? w - c0 : strip_cols;
        nh = strip(x, n, w, c0, sw, scale, h, passes, first_copy, out, min_cell, cell_z, hits, hit_e, hit_x, nh,
                   scratch, R, Q);
    }
    return nh;
}
"""
GRID_STRIP_BYTES = 256 * 1024  # the rings of one strip of columns: within a core's L2


def _grid_library() -> Any | None:
    return compiled("grid", "grid", GRID_C, [["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"], ["-O2", "-ffp-contract=off"]],
                    restypes={"age_hist": None, "grid_fill": None, "coarsen": None, "background": ctypes.c_int64})


def _fine_grid(age: np.ndarray, nb: int, block: int, p: BurstParams) -> tuple[np.ndarray, np.ndarray]:
    """Followers per (rank block, age bin of ``bin_days``), and per block."""
    n = age.size
    age = np.ascontiguousarray(age, dtype=np.float64)
    lib = _grid_library()
    if lib is None:
        # ages are ≥ 0, so truncating the quotient is its floor (``//`` on floats costs 5× more at 10M)
        fine_bin = np.divide(age, p.bin_days).astype(np.int64)
        counts = np.bincount(fine_bin)
    else:
        counts = np.zeros(int(MAX_AGE_DAYS / p.bin_days) + 1, dtype=np.int64)
        lib.age_hist(_ptr(age), ctypes.c_int64(n), ctypes.c_double(p.bin_days), _ptr(counts), ctypes.c_int64(counts.size))
        counts = counts[: int(np.flatnonzero(counts)[-1]) + 1]
    # a handful of absurd creation dates (epoch 0) must not widen the grid: they share the top bin
    top = _quantile_of_counts(counts, 0.9999) + 2 * max(p.scales) + 1
    nbins = min(counts.size - 1, top) + 1
    if lib is None:
        np.minimum(fine_bin, top, out=fine_bin)
        fine_bin += np.repeat(np.arange(nb, dtype=np.int64) * nbins, block)[:n]  # the block's row of the grid
        fine = np.bincount(fine_bin, minlength=nb * nbins).reshape(nb, nbins).astype(np.float64)
        return fine, fine.sum(axis=1)
    fine, m = np.zeros((nb, nbins)), np.zeros(nb)
    lib.grid_fill(_ptr(age), ctypes.c_int64(n), ctypes.c_double(p.bin_days), ctypes.c_int64(top), ctypes.c_int64(block),
                  ctypes.c_int64(nbins), _ptr(fine), _ptr(m))
    return fine, m


def _coarse_grids(fine: np.ndarray, shifts: list[tuple[int, int]]) -> list[np.ndarray]:
    """The grids of ``shifts`` ((k, offset): bins of k fine bins shifted by offset) from the fine grid."""
    lib = _grid_library()
    if lib is None:
        cum = np.zeros((fine.shape[0], fine.shape[1] + 1))
        np.cumsum(fine, axis=1, out=cum[:, 1:])
        return [_coarsen(cum, k, offset) for k, offset in shifts]
    edges = [_coarse_edges(fine.shape[1], k, offset) for k, offset in shifts]
    outs = [np.empty((fine.shape[0], e.size - 1)) for e in edges]
    # (every array handed to C is held here: a pointer alone does not keep it alive)
    ncols = np.array([e.size - 1 for e in edges], dtype=np.int64)
    flat_edges = np.concatenate(edges).astype(np.int64)
    addresses = np.array([o.ctypes.data for o in outs], dtype=np.uintp)
    rowcum = np.empty(fine.shape[1] + 1)
    lib.coarsen(_ptr(fine), ctypes.c_int64(fine.shape[0]), ctypes.c_int64(fine.shape[1]), ctypes.c_int64(len(outs)),
                _ptr(ncols), _ptr(flat_edges), _ptr(addresses), _ptr(rowcum))
    return outs


def _flagged(x: np.ndarray, m: np.ndarray, half: int, min_cell: float, cell_z: float, *, keep: bool,
             passes: int = 3, in_place: bool = False) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """(the organic expectation of grid ``x`` when ``keep``, flagged cells (ascending flat indices),
    their expectations, their counts): ``_background`` then ``_hits``, fused in C when a compiler works.

    ``in_place``: the expectation may be written over ``x`` (C: a grid's pages are as dear as its sums),
    so ``x`` must not be read afterwards."""
    lib = _grid_library()
    if lib is None:
        e = _background(x, m, half, passes)
        hit = _hits(x, e, min_cell, cell_z)
        return (e if keep else None), hit, e.ravel()[hit], x.ravel()[hit]
    n, w = x.shape
    x = np.ascontiguousarray(x, dtype=np.float64)
    rings = passes * min(2 * half + 2, n) + (passes - 1) * min(half + 1, n) + 2  # + a row of e, a row of zeros
    strip = int(min(w, max(8, GRID_STRIP_BYTES // (8 * rings))))
    out = (x if in_place else np.empty((n, w))) if keep else None
    # pages are touched only where written
    hits, hit_e, hit_x = np.empty(x.size, dtype=np.int64), np.empty(x.size), np.empty(x.size)
    scale, scratch = _block_scale(m, half), np.empty(rings * strip)
    found = int(lib.background(_ptr(x), ctypes.c_int64(n), ctypes.c_int64(w), _ptr(scale),
                               ctypes.c_int64(half), ctypes.c_int64(passes), ctypes.c_int(w < WIDE_ROWS),
                               None if out is None else _ptr(out), ctypes.c_double(min_cell), ctypes.c_double(cell_z),
                               _ptr(hits), _ptr(hit_e), _ptr(hit_x), _ptr(scratch), ctypes.c_int64(strip)))
    order = np.argsort(hits[:found], kind="stable")  # strips come one after another: back to row-major order
    return out, hits[:found][order], hit_e[:found][order], hit_x[:found][order]


@dataclass
class _Grid:
    block: int
    m: np.ndarray  # followers per block
    fine_expected: np.ndarray  # organic expectation at the finest scale
    candidates: list[tuple[int, int, float, float]]  # pos_lo, pos_hi, age_lo, age_hi


def _candidates(prep: _Prepared, p: BurstParams) -> _Grid:
    n = prep.age.size
    block = p.block or max(p.min_block, -(-n // p.max_blocks))
    nb = -(-n // block)
    fine, m = _fine_grid(prep.age, nb, block, p)
    half = max(p.background_min_blocks, -(-p.background_followers // block))
    min_cell = max(3.0, min(block, p.min_size) / 4.0)
    fine_expected = None
    candidates: list[tuple[int, int, float, float]] = []
    shifts = [(k, offset) for k in p.scales for offset in sorted({0, k // 2})]
    coarse = iter(_coarse_grids(fine, [s for s in shifts if s[0] != 1]))
    for k, offset in shifts:
        x = fine if k == 1 else next(coarse)
        # a cell is flagged when its excess is ≥ cell_z σ and ≥ min_cell; the fine grid is not read
        # after its own background (the coarse grids are made), so its pages take it
        e, hit, e_hit, x_hit = _flagged(x, m, half, min_cell, p.cell_z, keep=k == 1, in_place=k == 1 and p.scales.count(1) == 1)
        if e is not None:
            fine_expected = e
        if not hit.size:
            continue
        ids, boxes = _components(hit, x.shape[1])  # sums per component over the (few) flagged cells only
        obs = np.bincount(ids, weights=x_hit, minlength=len(boxes))
        exp = np.bincount(ids, weights=e_hit, minlength=len(boxes))
        keep = ((obs - exp) >= p.min_size / 2.0) & ((obs - exp) >= p.cell_z * np.sqrt(exp))
        for i, (row0, row1, col0, col1) in enumerate(boxes):
            if not keep[i]:
                continue
            pos_lo = max(0, (row0 - 1) * block)
            pos_hi = min(n, (row1 + 1) * block)
            age_lo = ((col0 * k - offset) - 1) * p.bin_days
            age_hi = ((col1 * k - offset) + 1) * p.bin_days
            candidates.append((pos_lo, pos_hi, float(age_lo), float(age_hi)))
    if fine_expected is None:  # no scale of one bin (zeros: calloc'd, not written)
        fine_expected = np.zeros(fine.shape)
    return _Grid(block=block, m=m, fine_expected=fine_expected, candidates=candidates)


def _quantile_of_counts(counts: np.ndarray, q: float) -> int:
    """``int(np.quantile(values, q))`` from the counts of non-negative integer values (one bincount
    instead of a partition of every value; the same linear interpolation)."""
    position = q * (int(counts.sum()) - 1)
    below = int(math.floor(position))
    cum = np.cumsum(counts)
    lo, hi = (int(np.searchsorted(cum, i, side="right")) for i in (below, below + 1 if position > below else below))
    return int(lo + (position - below) * (hi - lo))


def _components(cells: np.ndarray, width: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """8-connected components of a grid's flagged cells (flat indices, ascending, rows of ``width``).

    Returns each cell's component (0, 1, ... in the order of each component's first cell, as
    ``scipy.ndimage.label`` numbers them) and each component's bounding box (row0, row1, col0, col1),
    half-open. The cells are few, so this is done on them alone: edges to the 4 neighbours that come
    later in row-major order, then minimum-label propagation with pointer jumping (a handful of
    rounds; importing SciPy for it cost 0.2 s of every audit).
    """
    rows, cols = np.divmod(cells, width)
    src, dst = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
        inside = (cols + dc >= 0) & (cols + dc < width)
        key = cells[inside] + dr * width + dc
        j = np.minimum(np.searchsorted(cells, key), cells.size - 1)
        hit = cells[j] == key
        src.append(np.flatnonzero(inside)[hit])
        dst.append(j[hit])
    a, b = np.concatenate(src), np.concatenate(dst)
    label = np.arange(cells.size)
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]  # labels are cell indices, never above their own: jump to the label's label
        if np.array_equal(new, label):
            break
        label = new
    firsts, ids = np.unique(label, return_inverse=True)  # a component's label is its first cell
    row1 = np.zeros(firsts.size, dtype=np.int64)
    col0 = np.full(firsts.size, width, dtype=np.int64)
    col1 = np.zeros(firsts.size, dtype=np.int64)
    np.maximum.at(row1, ids, rows + 1)
    np.minimum.at(col0, ids, cols)
    np.maximum.at(col1, ids, cols + 1)
    boxes = [(int(rows[f]), int(r1), int(c0), int(c1)) for f, r1, c0, c1 in zip(firsts, row1, col0, col1, strict=True)]
    return ids, boxes


def _background_share(grid: _Grid, pos_lo: int, pos_hi: int, age_lo: float, age_hi: float, bin_days: int) -> float:
    b0, b1 = pos_lo // grid.block, max(pos_lo // grid.block + 1, -(-pos_hi // grid.block))
    nbins = grid.fine_expected.shape[1]
    j0 = int(min(max(math.floor(age_lo / bin_days), 0), nbins - 1))
    j1 = int(min(max(math.ceil(age_hi / bin_days), j0 + 1), nbins))
    followers = float(grid.m[b0:b1].sum())
    share = float(grid.fine_expected[b0:b1, j0:j1].sum()) / max(followers, 1.0)
    return float(min(max(share, 0.5 / max(followers, 1.0), 1e-5), 0.95))


# -- step 2: follower-level segment scan -----------------------------------------------------------
def _weights(p0: float, density: float) -> tuple[float, float]:
    p1 = p0 + density * (1.0 - p0)
    return math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))


def _best_segments(y: np.ndarray, p0: float, p: BurstParams, limit: int = 32) -> list[tuple[int, int, float]]:
    """Disjoint segments [i, j) of maximal Bernoulli LLR ≥ ``scan_llr`` with ≥ ``min_size`` members."""
    w1, w0 = _weights(p0, p.burst_density)
    lib = _segments_library() if p.scan_llr > 0 else None
    if lib is not None:  # the gains w1 / w0 are read from y in C
        return _segments_c(lib, None, np.ascontiguousarray(y, dtype=np.bool_), (w1, w0), p, limit)
    return _gain_segments(np.where(y, w1, w0), y, p, limit)


def _gain_segments(gains: np.ndarray, y: np.ndarray | None, p: BurstParams, limit: int = 32) -> list[tuple[int, int, float]]:
    """Disjoint segments [i, j) of maximal summed ``gains`` ≥ ``scan_llr`` holding ≥ ``min_size`` members.

    Members are the rows where ``y`` is true (every row when ``y`` is None). A maximum-sum subarray
    (one cumulative sum and a running minimum), repeated on both sides of each segment found.
    """
    gains = np.ascontiguousarray(gains)
    lib = _segments_library() if gains.dtype == np.float64 and p.scan_llr > 0 else None  # the C sums are float64's
    if lib is not None:
        return _segments_c(lib, gains, None if y is None else np.ascontiguousarray(y, dtype=np.bool_), (0.0, 0.0), p, limit)
    found: list[tuple[int, int, float]] = []
    # (lo, hi, sums): a part left of a segment starts where its parent did, so its cumulative sums
    # and running minimum are the first entries of the parent's (the same additions in the same
    # order): they are kept for it instead of recomputed
    stack: list[tuple[int, int, tuple[np.ndarray, np.ndarray] | None]] = [(0, gains.size, None)]
    while stack and len(found) < limit:
        lo, hi, sums = stack.pop()
        if hi - lo < p.min_size:
            continue
        if sums is not None:
            cum, floor = (a[: hi - lo + 1] for a in sums)
        else:
            cum = np.empty(hi - lo + 1)
            cum[0] = 0.0
            np.cumsum(gains[lo:hi], out=cum[1:])
            floor = np.minimum.accumulate(cum)
        j = int(np.argmax(cum - floor))
        best = float(cum[j] - floor[j])
        if best < p.scan_llr:
            continue
        i = j - int(np.argmax(cum[j::-1] == floor[j]))  # the latest start with the same gain
        if (j - i if y is None else int(y[lo + i : lo + j].sum())) >= p.min_size:
            found.append((lo + i, lo + j, best))
        stack.extend([(lo, lo + i, (cum, floor)), (lo + j, hi, None)])
    return found


def _segments_c(lib: Any, gains: np.ndarray | None, y: np.ndarray | None, weights: tuple[float, float], p: BurstParams,
                limit: int) -> list[tuple[int, int, float]]:
    """``_gain_segments``' walk in C (``SEGMENTS_C`` ``segments``): the gains, or w1 / w0 where ``y`` is / is not."""
    n = (y if gains is None else gains).size
    ends, bests = np.empty(2 * limit, dtype=np.int64), np.empty(limit)
    k = int(lib.segments(None if gains is None else _ptr(gains), ctypes.c_int64(n), None if y is None else _ptr(y),
                         ctypes.c_double(weights[0]), ctypes.c_double(weights[1]), ctypes.c_int64(p.min_size),
                         ctypes.c_double(p.scan_llr), ctypes.c_int64(limit), _ptr(ends), _ptr(bests)))
    if k < 0:
        raise MemoryError("the segment search's stack")
    return [(int(ends[2 * s]), int(ends[2 * s + 1]), float(bests[s])) for s in range(k)]


# -- step 3: merge and describe --------------------------------------------------------------------
def _overlap(a: list[int], b: list[int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]


def _suppress(boxes: list[tuple[float, list[int]]]) -> list[tuple[float, list[int], int, int]]:
    """Keep the highest-LLR box of every group that overlaps in rank and creation dates.

    The same batch is found at several age scales; the scale that fits it best has the highest
    likelihood ratio (a tight batch wins at 7 days, a tall one at 112), so greedy non-maximum
    suppression picks the scale instead of a union that would take in stray organic followers.
    Returns (llr, box, lowest, highest creation date seen in the group) for the refinement.
    """
    kept: list[tuple[float, list[int], int, int]] = []
    for llr, box in sorted(boxes, key=lambda item: -item[0]):
        for k, (k_llr, other, lo, hi) in enumerate(kept):
            if _overlap(box, other):
                kept[k] = (k_llr, other, min(lo, box[2]), max(hi, box[3]))
                break
        else:
            kept.append((llr, box, box[2], box[3]))
    return kept


def _refine(prep: _Prepared, grid: _Grid, box: list[int], lo: int, hi: int, p: BurstParams) -> tuple[float, list[int]] | None:
    """Grow a kept box to the whole batch: its creation window, then its rank ends.

    Creation: among followers in the box's ranks whose creation dates lie in the group's range,
    extend the window outward while the next date is within ``bin_days`` and within a fifth of the
    mean spacing of the other followers' creation dates (a batch is dense in creation date;
    organic strays sit far apart). Ranks: rerun the segment scan on a slightly
    wider extent with the grown window, keeping the best segment that overlaps the box.
    """
    first, last, c_lo, c_hi = box
    segment = prep.created[first : last + 1]
    # the step must stay well below the spacing of organic creation dates in the segment, or the
    # window would walk through interleaved organic followers
    outside = segment[(segment < lo) | (segment > hi)]  # followers no scale saw as part of the batch
    spacing = (float(outside.max() - outside.min()) / outside.size) if outside.size > 1 else float("inf")
    gap = min(p.bin_days * DAY_US, 0.2 * spacing)
    # the dates in [lo, hi] below c_lo and above c_hi, in order (the batch between is never walked:
    # sorting only these gives the same steps)
    below = np.concatenate([[c_lo], np.sort(segment[(segment >= lo) & (segment < c_lo)])[::-1]])
    above = np.concatenate([[c_hi], np.sort(segment[(segment > c_hi) & (segment <= hi)])])
    steps_down, steps_up = -np.diff(below) > gap, np.diff(above) > gap
    c_lo = int(below[int(np.argmax(steps_down)) if steps_down.any() else below.size - 1])
    c_hi = int(above[int(np.argmax(steps_up)) if steps_up.any() else above.size - 1])
    pad = max(grid.block, (last - first + 1) // 4)
    ext_lo, ext_hi = max(0, first - pad), min(prep.created.size, last + 1 + pad)
    created = prep.created[ext_lo:ext_hi]
    y = (created >= c_lo) & (created <= c_hi)
    lower = prep.lower[ext_lo:ext_hi]
    age_lo, age_hi = (int(lower.min()) - c_hi) / DAY_US, (int(lower.max()) - c_lo) / DAY_US
    p0 = _background_share(grid, ext_lo, ext_hi, age_lo, age_hi, p.bin_days)
    best = None
    for i, j, llr in _best_segments(y, p0, p):
        if ext_lo + i <= last and first <= ext_lo + j - 1 and (best is None or llr > best[0]):
            best = (llr, [ext_lo + i, ext_lo + j - 1, c_lo, c_hi])
    return best


# -- the measured null ----------------------------------------------------------------------------
EULER_GAMMA = 0.5772156649015329
NULL_MAX_ROWS = 200_000  # followers around one burst that the null redraws (pad capped beyond)


# The segment searches and the null's kernels in C: NumPy's cumulative sum (sequential, in the
# array's own float type), running minimum (from the leading zero) and largest difference, so the
# same numbers as the NumPy code, which runs when no C compiler works; ~8x less CPU (the scan's null
# draws and its segment search were ~a third of it). The search for segments runs its whole walk in
# C (the Python loop cost ~2 µs per part: 0.3 CPU-s at 10M followers); the null's draws are summed
# without their gains written out, and its window shares come from galloping searches.
SEGMENTS_C = r"""
#include <stdint.h>
#include <stdlib.h>
void max_segment_f32(const float* gains, int64_t rows, int64_t n, float* out) {
    for (int64_t r = 0; r < rows; r++) {
        const float* g = gains + r * n;
        float cum = 0.0f, floor = 0.0f, best = 0.0f;
        for (int64_t t = 0; t < n; t++) {
            cum += g[t];
            if (cum < floor) floor = cum;
            float d = cum - floor;
            if (d > best) best = d;
        }
        out[r] = best;
    }
}
/* max_segment_f32 of the rows of np.where(u < share, g1, g0), without writing them; eight rows at a
   time (each row's additions in its own order: the rows only share the loop) */
void max_segment_draws_f32(const float* u, const float* share, int64_t rows, int64_t n, float g1, float g0, float* out) {
    int64_t r = 0;
    for (; r + 8 <= rows; r += 8) {
        float cum[8] = {0.0f}, floor[8] = {0.0f}, best[8] = {0.0f};
        const float* d = u + r * n;
        for (int64_t t = 0; t < n; t++) {
            float s = share[t];
            for (int k = 0; k < 8; k++) {
                float c = cum[k] + (d[k * n + t] < s ? g1 : g0);
                cum[k] = c;
                floor[k] = c < floor[k] ? c : floor[k];
                float v = c - floor[k];
                best[k] = v > best[k] ? v : best[k];
            }
        }
        for (int k = 0; k < 8; k++) out[r + k] = best[k];
    }
    for (; r < rows; r++) {
        const float* d = u + r * n;
        float cum = 0.0f, floor = 0.0f, best = 0.0f;
        for (int64_t t = 0; t < n; t++) {
            cum += d[t] < share[t] ? g1 : g0;
            if (cum < floor) floor = cum;
            float v = cum - floor;
            if (v > best) best = v;
        }
        out[r] = best;
    }
}
/* np.searchsorted(pool, (follow - c_hi) / day, "left") and (follow - c_lo) / day, "right") (pool
   sorted; each search gallops from the previous answer: follow times come nearly in order) */
static int64_t gallop(const double* pool, int64_t m, double key, int64_t at, int right) {
    /* the first index whose value is > key (right) or >= key (left) */
#define BELOW(i) (right ? pool[i] <= key : pool[i] < key)
    int64_t lo, hi, step = 1;
    if (at > 0 && !BELOW(at - 1)) {  /* the answer is left of at */
        hi = at - 1;
        lo = hi - step;
        while (lo >= 0 && !BELOW(lo)) { hi = lo; step *= 2; lo = hi - step; }
        lo = lo < 0 ? 0 : lo + 1;
    } else {  /* at or right of at */
        lo = at;
        hi = lo + step;
        while (hi < m && BELOW(hi - 1)) { lo = hi; step *= 2; hi = lo + step; }
        if (hi > m) hi = m;
    }
    while (lo < hi) {  /* the first index in [lo, hi) that is not BELOW, else hi */
        int64_t mid = lo + (hi - lo) / 2;
        if (BELOW(mid)) lo = mid + 1; else hi = mid;
    }
    return lo;
#undef BELOW
}
void window_counts(const double* pool, int64_t m, const int64_t* follow, int64_t k, int64_t c_lo, int64_t c_hi,
                   double day, int64_t* out) {
    int64_t a = 0, b = 0;
    for (int64_t i = 0; i < k; i++) {
        b = gallop(pool, m, (double)(follow[i] - c_lo) / day, b, 1);
        a = gallop(pool, m, (double)(follow[i] - c_hi) / day, a, 0);
        out[i] = b - a;
    }
}
/* _gain_segments' walk (the NumPy loop, step by step): parts [lo, hi) on a stack, the best segment
   of each, the parts left and right of it pushed. One pass per part, nothing stored: the cumulative
   sum from a leading zero and its running minimum (the NumPy code's cum and floor, the same
   additions in the same order: a left part's sums, which NumPy reuses from its parent, are the same
   numbers summed again), the first largest difference j and, as of j, the latest row where the sum
   equalled the minimum (the segment's start). Without g, the gains are w1 where y and w0 elsewhere.
   Writes [lo, hi) pairs into ends, gains into bests; returns how many (at most limit), or -1 when
   out of memory. */
int64_t segments(const double* g, int64_t n, const uint8_t* y, double w1, double w0, int64_t min_size, double scan_llr,
                 int64_t limit, int64_t* ends, double* bests) {
    int64_t cap = 64, top = 1, found = 0;
    const double wv[2] = {w0, w1};  /* np.where(y, w1, w0) */
    int64_t* stack = malloc(2 * cap * sizeof(int64_t));
    if (!stack) return -1;
    stack[0] = 0; stack[1] = n;
    while (top > 0 && found < limit) {
        top--;
        int64_t lo = stack[2 * top], hi = stack[2 * top + 1];
        if (hi - lo < min_size) continue;
        double cs = 0.0, fl = 0.0, best = 0.0;
        int64_t j = 0, i = 0, at_floor = 0;
        /* without branches (the members come at random: a branch on them is mispredicted) */
#define STEP(gain) \
            cs += (gain); \
            fl = cs < fl ? cs : fl; \
            at_floor = cs == fl ? t + 1 : at_floor;  /* the latest row at the minimum */ \
            double d = cs - fl; \
            int up = d > best; \
            best = up ? d : best; \
            j = up ? t + 1 : j; \
            i = up ? at_floor : i;
        if (g) {
            for (int64_t t = 0; t < hi - lo; t++) { STEP(g[lo + t]) }
        } else {
            for (int64_t t = 0; t < hi - lo; t++) { STEP(wv[y[lo + t]]) }
        }
#undef STEP
        if (best < scan_llr) continue;
        int64_t count = j - i;
        if (y) {
            count = 0;
            for (int64_t t = lo + i; t < lo + j; t++) count += y[t];
        }
        if (count >= min_size) {
            ends[2 * found] = lo + i;
            ends[2 * found + 1] = lo + j;
            bests[found++] = best;
        }
        if (top + 2 > cap) {
            int64_t* grown = realloc(stack, 4 * cap * sizeof(int64_t));
            if (!grown) { free(stack); return -1; }
            stack = grown;
            cap *= 2;
        }
        stack[2 * top] = lo; stack[2 * top + 1] = lo + i;
        stack[2 * top + 2] = lo + j; stack[2 * top + 3] = hi;
        top += 2;
    }
    free(stack);
    return found;
}
"""


def _segments_library() -> Any | None:
    return compiled("segments", "segments", SEGMENTS_C, [["-O2"]],
                    restypes={"max_segment_f32": None, "max_segment_draws_f32": None, "window_counts": None,
                              "segments": ctypes.c_int64})


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _max_segment(gains: np.ndarray) -> np.ndarray:
    """Best segment sum of each row of ``gains`` (max-sum subarray, vectorised over rows)."""
    lib = _segments_library() if gains.dtype == np.float32 and gains.ndim == 2 and gains.size else None
    if lib is not None:
        rows = np.ascontiguousarray(gains)
        out = np.empty(rows.shape[0], dtype=np.float32)
        lib.max_segment_f32(_ptr(rows), ctypes.c_int64(rows.shape[0]), ctypes.c_int64(rows.shape[1]), _ptr(out))
        return out
    cum = np.empty((gains.shape[0], gains.shape[1] + 1), dtype=gains.dtype)
    cum[:, 0] = 0.0
    np.cumsum(gains, axis=1, out=cum[:, 1:])
    floor = np.minimum.accumulate(cum, axis=1)
    return np.subtract(cum, floor, out=cum).max(axis=1)


def _max_segment_draws(u: np.ndarray, share: np.ndarray, g1: np.float32, g0: np.float32) -> np.ndarray:
    """``_max_segment(np.where(u < share, g1, g0))`` (float32 rows of uniforms against shares),
    without the gains in between when a compiler works."""
    lib = _segments_library() if u.size else None
    if lib is None:
        return _max_segment(np.where(u < share, g1, g0))
    u, share = np.ascontiguousarray(u, dtype=np.float32), np.ascontiguousarray(share, dtype=np.float32)
    out = np.empty(u.shape[0], dtype=np.float32)
    lib.max_segment_draws_f32(_ptr(u), _ptr(share), ctypes.c_int64(u.shape[0]), ctypes.c_int64(u.shape[1]),
                              ctypes.c_float(g1), ctypes.c_float(g0), _ptr(out))
    return out


def _window_counts(pool: np.ndarray, follow: np.ndarray, c_lo: int, c_hi: int) -> np.ndarray:
    """Per follow time, the ages in ``pool`` (sorted) that put its account in [c_lo, c_hi]."""
    lib = _segments_library() if follow.size else None
    if lib is None:
        return (np.searchsorted(pool, (follow - c_lo) / DAY_US, side="right")
                - np.searchsorted(pool, (follow - c_hi) / DAY_US, side="left"))
    pool, follow = np.ascontiguousarray(pool, dtype=np.float64), np.ascontiguousarray(follow, dtype=np.int64)
    out = np.empty(follow.size, dtype=np.int64)
    lib.window_counts(_ptr(pool), ctypes.c_int64(pool.size), _ptr(follow), ctypes.c_int64(follow.size), ctypes.c_int64(c_lo),
                      ctypes.c_int64(c_hi), ctypes.c_double(DAY_US), _ptr(out))
    return out


def _gumbel_p_value(observed: float, maxima: np.ndarray) -> float:
    """P(null maximum ≥ observed) from a Gumbel law fitted (by moments) to the null draws' maxima."""
    sd = float(maxima.std())
    if sd <= 1e-9:
        return 1.0 if observed <= maxima[0] + 1e-9 else 1.0 / (maxima.size + 1)
    beta = sd * math.sqrt(6.0) / math.pi
    mu = float(maxima.mean()) - EULER_GAMMA * beta
    z = (observed - mu) / beta
    p_value = -math.expm1(-math.exp(-z)) if z > -30 else 1.0  # 1 − exp(−e^(−z)), accurate in the tail
    return float(min(max(p_value, 1e-300), 1.0))


NULL_ROUND = 20  # draws per round of the sequential null
NULL_CLEAR = 1_000.0  # stop drawing once the p-value is this factor beyond the decision threshold


def _monte_carlo_p(observed: float, size: int, draw: Callable[[int], np.ndarray], p: BurstParams, tests: int) -> float:
    """The one Monte Carlo null of both scans: rows of per-follower gains from ``draw(k)`` (k rows of
    ``size``; or straight away their k best segments, 1-D), the p-value of ``observed`` against each
    row's best segment (Gumbel fit).

    Sequential: draws come in rounds of ``NULL_ROUND``, and drawing stops once the p-value is a factor
    ``NULL_CLEAR`` below or above the threshold ``alpha / tests``, or above 0.5 (far beyond what the
    fit's error with 20 draws can move); anything closer gets all ``null_draws``.
    """
    threshold = p.alpha / max(tests, 1)
    maxima = np.empty(p.null_draws)
    chunk = max(1, min(NULL_ROUND, 4_000_000 // max(size, 1)))
    done = 0
    while done < p.null_draws:
        k = min(chunk, p.null_draws - done)
        drawn = draw(k)
        maxima[done : done + k] = drawn if drawn.ndim == 1 else _max_segment(drawn)
        done += k
        if done >= NULL_ROUND and done < p.null_draws:
            p_value = _gumbel_p_value(observed, maxima[:done])
            if p_value * NULL_CLEAR < threshold or p_value > min(threshold * NULL_CLEAR, 0.5):
                return p_value
    return _gumbel_p_value(observed, maxima)


def _null_test(prep: _Prepared, first: int, last: int, c_lo: int, c_hi: int, w1: float, w0: float,
               p: BurstParams, rng: np.random.Generator, tests: int = 1) -> tuple[float, float]:
    """(observed best-segment LLR around the burst, p-value under the account's own null).

    The null keeps what organic audiences do in bursts of their own: the follow order and follow
    times stay, and followers who joined within ``crust_days`` of following stay as observed (a
    viral day that brings thousands of brand-new accounts is organic, and remains in every draw).
    Every other follower's account age at follow is redrawn from the ages of the non-crust
    followers within ``null_pool`` ranks of the burst (its own span left out); the creation date follows as follow time
    minus age. The statistic is the best segment LLR for the burst's creation window over the
    non-crust followers of the burst's ranks padded by its own span; its null distribution (``null_draws`` draws) is fitted
    with a Gumbel law, the extreme-value law of a maximum, so p-values below 1/draws are possible.
    """
    n = prep.created.size
    span = last - first + 1
    pad = min(max(span, 50), max(0, (NULL_MAX_ROWS - span) // 2))
    lo, hi = max(0, first - pad), min(n, last + 1 + pad)
    # the crust is organic by the null's own definition, so the statistic reads the others only:
    # a burst made of brand-new accounts (a sign-up wave) has nothing left to show
    redraw = np.flatnonzero(prep.age[lo:hi] >= p.crust_days)
    created = prep.created[lo:hi][redraw]
    observed = float(_max_segment(np.where((created >= c_lo) & (created <= c_hi), w1, w0)[None, :])[0])
    if redraw.size == 0:  # nothing outside the crust: a sign-up wave, nothing to test
        return observed, 1.0
    # the pool leaves the burst's own span out (as the grid's background leaves its cell out), so a
    # batch cannot explain itself
    pool = np.concatenate([prep.age[max(0, first - p.null_pool) : first], prep.age[last + 1 : last + 1 + p.null_pool]])
    pool = pool[pool >= p.crust_days]
    if pool.size == 0:  # every other follower around joined just before following: the null has no
        return observed, 0.0  # older account to offer, so a batch of them is beyond it
    # Redrawing an age from the pool puts a follower in the window [c_lo, c_hi] with the pool's share of
    # ages between its follow time minus c_hi and minus c_lo: draw that Bernoulli directly (the same
    # null, without gathering ages)
    pool = np.sort(pool)
    follow = prep.lower[lo:hi][redraw]
    share = _window_counts(pool, follow, c_lo, c_hi) / pool.size
    share32, g1, g0 = share.astype(np.float32), np.float32(w1), np.float32(w0)

    def draw(k: int) -> np.ndarray:  # the draws' best segments (the gains are not kept)
        return _max_segment_draws(rng.random((k, share32.size), dtype=np.float32), share32, g1, g0)

    return observed, _monte_carlo_p(observed, redraw.size, draw, p, tests)


def _follow_rate_ratio(prep: _Prepared, first: int, last: int, p: BurstParams) -> float | None:
    """Follows per hour inside the burst ÷ follows per hour around it (exact follow times only)."""
    if prep.exact is None or not prep.exact[first : last + 1].all():
        return None
    lo, hi = max(0, first - p.null_pool), min(prep.lower.size, last + 1 + p.null_pool)
    around = max(float(prep.lower[hi - 1] - prep.lower[lo]), 1.0) / (hi - lo)
    inside = max(float(prep.lower[last] - prep.lower[first]), 1.0) / max(last - first, 1)
    return round(around / inside, 2)


def _fake_share(fakes: int, labelled: int) -> tuple[float | None, float | None, float | None]:
    """Share of labelled members labelled fake, with its Wilson 95% interval (None when none is labelled)."""
    if not labelled:
        return None, None, None
    low, high = wilson(fakes, labelled, 0.95)
    return fakes / labelled, low, high


def with_label_counts(burst: Burst, fakes: int, labelled: int) -> Burst:
    """``burst`` with its fake share from label counts of its members (the audit counts them in SQL)."""
    share, low, high = _fake_share(fakes, labelled)
    return replace(burst, fake_share=share, fake_share_low=low, fake_share_high=high)


def _labelled_share(prep: _Prepared, first: int, last: int, inside: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Share of labelled members labelled fake, with its Wilson 95% interval (None without labels)."""
    if prep.is_fake is None or prep.has_label is None:
        return None, None, None
    window = slice(first, last + 1)
    return _fake_share(int((prep.is_fake[window] & inside).sum()), int((prep.has_label[window] & inside).sum()))


def _burst(prep: _Prepared, p: BurstParams, first: int, last: int, inside: np.ndarray, *, score: float,
           expected: float, p_value: float, false_alarms: float, found_by: tuple[str, ...]) -> Burst:
    """A Burst for the rectangle ranks ``prep.rank[first..last]`` × the creation dates of its members.

    ``inside`` marks the members among positions first..last (both scans report members this way,
    so the audit finds them again in SQL from the rectangle alone).
    """
    members = first + np.flatnonzero(inside)
    created = prep.created[members]
    fake_share, low, high = _labelled_share(prep, first, last, inside)
    rate = "follow_rate" in found_by
    return Burst(
        start_rank=int(prep.rank[first]), end_rank=int(prep.rank[last]), size=int(members.size),
        created_from=_to_dt(int(created.min())), created_to=_to_dt(int(created.max())),
        # first and last follow among the members (exact times need not follow the rank order)
        followed_from=_to_dt(int(prep.lower[members].min())), followed_to=_to_dt(int(prep.lower[members].max())),
        fake_share=fake_share, score=round(float(score), 2), expected=round(expected, 2),
        fake_share_low=low, fake_share_high=high, p_value=float(f"{p_value:.3g}"),
        expected_false_alarms=float(f"{false_alarms:.3g}"),
        followed_exact=prep.exact is not None and bool(prep.exact[first]) and bool(prep.exact[last]),
        follow_rate_ratio=_follow_rate_ratio(prep, first, last, p), found_by=found_by,
        rate_p_value=float(f"{p_value:.3g}") if rate else None,
        rate_expected_false_alarms=float(f"{false_alarms:.3g}") if rate else None,
    )


def _describe(prep: _Prepared, grid: _Grid, box: list[int], p: BurstParams,
              rng: np.random.Generator | None = None, tests: int = 1) -> Burst | None:
    pos_lo, pos_last, c_lo, c_hi = box
    pos_hi = pos_last + 1
    created = prep.created[pos_lo:pos_hi]
    inside = (created >= c_lo) & (created <= c_hi)
    members = np.flatnonzero(inside)
    if members.size < p.min_size:
        return None
    first, last = pos_lo + int(members[0]), pos_lo + int(members[-1])
    inside = inside[members[0] : members[-1] + 1]
    size = int(members.size)
    span = last - first + 1
    lower = prep.lower[first : last + 1]
    age_lo = (int(lower.min()) - c_hi) / DAY_US
    age_hi = (int(lower.max()) - c_lo) / DAY_US
    p0 = _background_share(grid, first, last + 1, age_lo, age_hi, p.bin_days)
    w1, w0 = _weights(p0, p.burst_density)
    score = size * w1 + (span - size) * w0
    # the enrichment guard keeps ordinary wobbles of a dense organic crust (p0 ≈ 0.3) out
    if score < p.scan_llr or size < p.min_enrichment * p0 * span:
        return None
    # members the null does not already explain as a sign-up wave must make a batch on their own
    if int((inside & (prep.age[first : last + 1] >= p.crust_days)).sum()) < p.min_size:
        return None
    _, p_value = _null_test(prep, first, last, c_lo, c_hi, w1, w0, p, rng or np.random.default_rng(p.null_seed), tests)
    false_alarms = p_value * max(tests, 1)
    if false_alarms > p.alpha:
        return None
    return _burst(prep, p, first, last, inside, score=score, expected=p0 * span, p_value=p_value,
                  false_alarms=false_alarms, found_by=("creation_date",))


# -- follow-rate spikes (exact follow times) ------------------------------------------------------
HOUR_US = 3_600_000_000
MAX_HOURS = 40 * 8_766  # exact times spread wider than 40 years (bad TIDs) share the first hour


@dataclass
class _Timeline:
    """Followers with an exact follow time, in time order, and the follow rate around each.

    At 10M followers this must stay small: when every follower has an exact time and the times
    follow the rank order (the usual case), ``pos`` is None and ``t`` is the prepared array itself;
    hours are computed for the stretches read, not stored per follower."""

    pos: np.ndarray | None  # their positions in the prepared (rank-ordered) arrays; None: the same order
    t: np.ndarray  # int64 microseconds, ascending
    start: int  # the first hour bin starts here
    counts: np.ndarray  # follows per hour bin
    envelope: np.ndarray  # follows per hour expected around each hour (see _envelope)

    def hours(self, a: int, b: int) -> np.ndarray:
        return np.clip((self.t[a:b] - self.start) // HOUR_US, 0, self.counts.size - 1)

    def positions(self, a: int, b: int) -> np.ndarray:
        return np.arange(a, b) if self.pos is None else self.pos[a:b]

    def index_at(self, hour: int) -> int:
        """The first follow at or after the start of ``hour``."""
        return 0 if hour <= 0 else int(np.searchsorted(self.t, self.start + hour * HOUR_US, side="left"))


def _timeline(prep: _Prepared, p: BurstParams) -> _Timeline | None:
    if prep.exact is None or prep.exact_count < p.min_size:
        return None
    pos: np.ndarray | None = None
    t = prep.lower
    if prep.exact_count < prep.exact.size:
        pos = np.flatnonzero(prep.exact)
        t = prep.lower[pos]
    if t.size > 1 and bool((t[1:] < t[:-1]).any()):  # the platform's order and the TIDs disagree somewhere
        order = np.argsort(t, kind="stable")
        pos, t = (order if pos is None else pos[order]), t[order]
    start = max(int(t[0]), int(t[-1]) - MAX_HOURS * HOUR_US)
    nbins = int((int(t[-1]) - start) // HOUR_US) + 1
    counts = np.zeros(nbins)
    for i in range(0, t.size, 1 << 20):  # in chunks: no per-follower hour array at 10M
        counts += np.bincount(np.clip((t[i : i + (1 << 20)] - start) // HOUR_US, 0, None), minlength=nbins)
    return _Timeline(pos=pos, t=t, start=start, counts=counts, envelope=_envelope(counts, p))


def _envelope(counts: np.ndarray, p: BurstParams) -> np.ndarray:
    """Follows per hour expected around each hour, from the hours on either side.

    Each side is the mean over ``rate_window_hours`` (the hour itself included) without its
    ``rate_trim_hours`` busiest hours, so a delivery of a few hours does not raise its own
    background; the envelope is the larger side, so a viral day, which starts at once and lasts
    longer, is its own background from its first hour; and never below the mean of the surrounding week.
    """
    half, trim = p.rate_window_hours, p.rate_trim_hours
    width = half + 1
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(counts.astype(np.float32), half, mode="symmetric"), width)
    kept = np.partition(windows, width - trim - 1, axis=1)[:, : width - trim] if trim else windows
    side = kept.sum(axis=1, dtype=np.float64) / (width - trim)  # side[s] covers counts[s - half .. s]
    before, after = side[: counts.size], side[half : half + counts.size]
    week = _window_sums(counts[:, None], 84)[:, 0] / _window_sums(np.ones((counts.size, 1)), 84)[:, 0]
    return np.maximum(np.maximum(before, after), week)


def _rate_candidates(tl: _Timeline, p: BurstParams) -> list[tuple[int, int]]:
    """Time-ordered index ranges [a, b) around runs of hours far above the local envelope."""
    x, e = tl.counts, tl.envelope
    min_cell = max(3.0, p.min_size / 20.0)
    flagged = (x >= 2.0 * e) & ((x - e) >= np.maximum(p.cell_z * np.sqrt(e), min_cell))
    hours = np.flatnonzero(flagged)
    if hours.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(hours) > 2) + 1  # a run may skip an hour
    out = []
    for run in np.split(hours, breaks):
        if float((x[run] - e[run]).sum()) < p.min_size / 2.0:
            continue
        out.append((tl.index_at(int(run[0]) - 1), tl.index_at(int(run[-1]) + 2)))
    return out


def _unit_gaps(tl: _Timeline, a: int, b: int) -> np.ndarray:
    """Gap before each follow a..b-1, in units of the local envelope's mean gap (inf for the first)."""
    t = tl.t[max(a - 1, 0) : b].astype(np.float64)
    gaps = np.diff(t) if a > 0 else np.concatenate([[np.inf], np.diff(t)])
    return gaps * (tl.envelope[tl.hours(a, b)] / HOUR_US)


def _rate_gains(unit_gaps: np.ndarray, ratio: float) -> np.ndarray:
    """Poisson log-likelihood ratio of each gap: rate ``ratio`` × the envelope against the envelope."""
    return math.log(ratio) - (ratio - 1.0) * unit_gaps


def _rate_null(tl: _Timeline, first: int, last: int, p: BurstParams, rng: np.random.Generator,
               tests: int) -> tuple[float, float]:
    """(observed best-segment LLR around the run first..last, p-value under the account's own null).

    The gaps between follows, in units of the local envelope, are redrawn from those of the
    followers within ``null_pool`` follows of the run (its own span left out). Organic waves that
    unfold over hours raise the envelope with them and stay ordinary in these units; a delivery of
    minutes does not.
    """
    n = tl.t.size
    span = last - first + 1
    pad = min(max(span, 50), max(0, (NULL_MAX_ROWS - span) // 2))
    lo, hi = max(1, first - pad), min(n, last + 1 + pad)
    observed = float(_max_segment(_rate_gains(_unit_gaps(tl, lo, hi), p.rate_ratio)[None, :])[0])
    before, after = max(1, first - p.null_pool), min(n, last + 1 + p.null_pool)
    pool = np.concatenate([_unit_gaps(tl, before, first), _unit_gaps(tl, last + 1, after)])
    if pool.size == 0:
        return observed, 0.0

    def draw(k: int) -> np.ndarray:
        return _rate_gains(pool[rng.integers(0, pool.size, size=(k, hi - lo))], p.rate_ratio)

    return observed, _monte_carlo_p(observed, hi - lo, draw, p, tests)


def _rate_bursts(prep: _Prepared, p: BurstParams, rng: np.random.Generator) -> tuple[list[Burst], int]:
    """Bursts from follow-rate spikes, and how many time windows were tested (exact times only)."""
    tl = _timeline(prep, p)
    if tl is None:
        return [], 0
    candidates = _rate_candidates(tl, p)
    tests = max(len(candidates), 1)
    bursts = []
    for a, b in candidates:
        a = max(a, 1)
        gains = _rate_gains(_unit_gaps(tl, a, b), p.rate_ratio)
        for i, j, _llr in _gain_segments(gains, None, p):
            first, last = a + i - 1, a + j - 1  # the follower before the first short gap belongs to the run
            members = tl.positions(first, last + 1)
            duration = float(tl.t[last] - tl.t[first]) / HOUR_US
            expected = float(tl.envelope[tl.hours(first, last + 1)].mean()) * max(duration, 1.0 / 60)
            if members.size < p.min_size or members.size < p.min_enrichment * expected:
                continue
            score, p_value = _rate_null(tl, first, last, p, rng, tests)
            false_alarms = p_value * tests
            if false_alarms > p.alpha:
                continue
            # as a rectangle: the members' ranks × their creation dates (found again in SQL by the audit)
            pos_lo, pos_last = int(members.min()), int(members.max())
            created = prep.created[members]
            c_lo, c_hi = int(created.min()), int(created.max())
            window = prep.created[pos_lo : pos_last + 1]
            inside = (window >= c_lo) & (window <= c_hi)
            bursts.append(_burst(prep, p, pos_lo, pos_last, inside, score=score, expected=expected,
                                 p_value=p_value, false_alarms=false_alarms, found_by=("follow_rate",)))
    return bursts, len(candidates)


def _shared(prep: _Prepared, a: Burst, b: Burst) -> int:
    """Followers inside both bursts' rectangles."""
    lo, hi = max(a.start_rank, b.start_rank), min(a.end_rank, b.end_rank)
    if lo > hi or a.created_from > b.created_to or b.created_from > a.created_to:
        return 0
    first, last = np.searchsorted(prep.rank, [lo, hi + 1])
    created = prep.created[first:last]
    c_lo = int(max(a.created_from, b.created_from).timestamp() * 1_000_000)
    c_hi = int(min(a.created_to, b.created_to).timestamp() * 1_000_000)
    return int(((created >= c_lo) & (created <= c_hi)).sum())


def _merge(prep: _Prepared, by_date: list[Burst], by_rate: list[Burst]) -> list[Burst]:
    """One burst per batch: a rate burst sharing most of its members with a creation-date burst is that burst,
    found by both (the creation-date rectangle is kept: it was refined to the batch's own creation window)."""
    out = list(by_date)
    for r in by_rate:
        for k, d in enumerate(out):
            if "creation_date" in d.found_by and _shared(prep, r, d) >= 0.5 * min(r.size, d.size):
                out[k] = replace(d, found_by=tuple(sorted({*d.found_by, "follow_rate"})), rate_p_value=r.rate_p_value,
                                 rate_expected_false_alarms=r.rate_expected_false_alarms)
                break
        else:
            out.append(r)
    return out


def scan_bursts(
    frame: pl.DataFrame, params: BurstParams | None = None, *, account_created_at: datetime | None = None
) -> BurstScan:
    """Detect bursts and say how many followers were scanned (see the module docstring)."""
    p = params or BurstParams()
    if frame.height and "follow_rank" in frame.columns and frame["follow_rank"].null_count() == frame.height:
        raise InputError(
            "this snapshot has no follow order, so bought batches cannot be located",
            "bursts need followers in follow order: import the list in API order (--order newest-first) or collect it live",
        )
    prep = _prepare(frame, account_created_at)
    n = prep.age.size
    if n < p.min_size:
        return BurstScan([], n, prep.skipped, p)
    grid = _candidates(prep, p)
    boxes: list[tuple[float, list[int]]] = []
    for pos_lo, pos_hi, age_lo, age_hi in grid.candidates:
        age = prep.age[pos_lo:pos_hi]
        y = (age >= age_lo) & (age < age_hi)
        p0 = _background_share(grid, pos_lo, pos_hi, age_lo, age_hi, p.bin_days)
        for i, j, llr in _best_segments(y, p0, p):
            member_created = prep.created[pos_lo + i : pos_lo + j][y[i:j]]
            boxes.append((llr, [pos_lo + i, pos_lo + j - 1, int(member_created.min()), int(member_created.max())]))
    refined = [_refine(prep, grid, box, lo, hi, p) for _, box, lo, hi in _suppress(boxes)]
    final = [box for _, box, _, _ in _suppress([r for r in refined if r is not None])]
    rng = np.random.default_rng(p.null_seed)
    tests = max(len(grid.candidates), 1)  # every candidate rectangle was a chance to find a burst
    bursts = [b for b in (_describe(prep, grid, box, p, rng, tests) for box in final) if b]
    by_rate, rate_tests = _rate_bursts(prep, p, rng)
    bursts = _merge(prep, bursts, by_rate)
    bursts.sort(key=lambda b: (b.start_rank, b.created_from))
    numbered = [replace(b, burst_id=i + 1) for i, b in enumerate(bursts)]
    return BurstScan(numbered, n, prep.skipped, p, prep.exact_count, tests, rate_tests)


def detect_bursts(frame: pl.DataFrame, *, account_created_at: datetime | None = None, **params: Any) -> list[Burst]:
    """Bought batches in ``frame`` (follower_id, follow_rank, created_at, optional label).

    Keyword ``params`` override :class:`BurstParams` (e.g. ``min_size=200``).
    """
    return scan_bursts(frame, BurstParams(**params), account_created_at=account_created_at).bursts


def burst_membership(frame: pl.DataFrame, bursts: list[Burst], carry: tuple[str, ...] = ()) -> pl.DataFrame:
    """``follower_id, burst_id`` for every follower inside a burst's rectangle, then ``frame``'s
    columns ``carry`` of that follower."""
    _require(frame, ("follower_id", "follow_rank", "created_at"))
    schema = {"follower_id": pl.Utf8, "burst_id": pl.Int64, **{c: frame.schema[c] for c in carry}}
    if not bursts:
        return pl.DataFrame(schema=schema)
    rects = pl.DataFrame(
        {
            "burst_id": [b.burst_id for b in bursts],
            "start_rank": [b.start_rank for b in bursts],
            "end_rank": [b.end_rank for b in bursts],
            "created_from": [b.created_from for b in bursts],
            "created_to": [b.created_to for b in bursts],
        },
        schema_overrides={"created_from": UTC_TS, "created_to": UTC_TS},
    )
    lo, hi = min(b.start_rank for b in bursts), max(b.end_rank for b in bursts)
    people = frame.lazy().select(
        pl.col("follower_id").cast(pl.Utf8), pl.col("follow_rank").cast(pl.Int64), _created_utc(frame).alias("created_at"), *carry
    ).filter(pl.col("follow_rank").is_between(lo, hi) & pl.col("created_at").is_not_null())
    return (
        people.join_where(
            rects.lazy(),
            pl.col("follow_rank") >= pl.col("start_rank"),
            pl.col("follow_rank") <= pl.col("end_rank"),
        )
        .filter(pl.col("created_at").is_between(pl.col("created_from"), pl.col("created_to")))
        .select("follower_id", pl.col("burst_id").cast(pl.Int64), *carry)
        .sort("burst_id", "follower_id")
        .collect()
    )
