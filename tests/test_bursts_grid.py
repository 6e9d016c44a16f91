"""The burst scan's grid in C (``GRID_C``) and its null's kernels give the NumPy code's numbers exactly.

Counts, coarse grids, the organic background of every pass, the flagged cells, the candidates, the
null's window shares and best segments, and whole scans: bit for bit (``np.array_equal``), with the
NumPy code (which runs without a compiler) as the reference.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import followaudit.bursts.detect as detect
from followaudit.bursts import BurstParams, scan_bursts
from followaudit.bursts.harness import inject_bricks, organic_sequence, sequence_with_bricks

pytestmark = pytest.mark.skipif(
    detect._grid_library() is None or detect._segments_library() is None,
    reason="no C compiler: only the NumPy code runs",
)


@pytest.fixture
def numpy_only(monkeypatch):
    def use_numpy() -> None:
        monkeypatch.setattr(detect, "_grid_library", lambda: None)
        monkeypatch.setattr(detect, "_segments_library", lambda: None)
    return use_numpy


def poisson_grid(rng: np.random.Generator, rows: int, cols: int, batches: int = 3) -> np.ndarray:
    """Counts per (block, bin) with an organic gradient and a few dense cells (batches to replace)."""
    rate = rng.gamma(0.6, 2.0, cols)[None, :] * rng.uniform(0.3, 1.5, rows)[:, None]
    x = rng.poisson(rate).astype(np.float64)
    for _ in range(batches):
        r, c = int(rng.integers(0, rows)), int(rng.integers(0, cols))
        x[r : r + int(rng.integers(1, 4)), c : c + 2] += rng.integers(20, 400)
    return x


# (rows, cols, half): narrow and wide grids (WIDE_ROWS), one block, half-windows wider than the grid
GRIDS = [(1, 5, 10), (2, 300, 10), (3, 7, 0), (40, 12, 3), (200, 255, 10), (200, 256, 10), (50, 600, 80),
         (120, 1_100, 27), (17, 40, 500), (1, 1, 1)]


def flagged_both(x: np.ndarray, m: np.ndarray, half: int, numpy_only, **kwargs) -> tuple[tuple, tuple]:
    fast = detect._flagged(x, m, half, 6.0, 4.0, keep=True, **kwargs)
    numpy_only()
    slow = detect._flagged(x, m, half, 6.0, 4.0, keep=True, **kwargs)
    return fast, slow


@pytest.mark.parametrize(("rows", "cols", "half"), GRIDS)
def test_background_and_flagged_cells_equal_numpy(rows, cols, half, numpy_only, monkeypatch):
    rng = np.random.default_rng(rows * 7919 + cols)
    x = poisson_grid(rng, rows, cols)
    m = x.sum(axis=1)
    (e, hit, e_hit, x_hit), (e_np, hit_np, e_hit_np, x_hit_np) = flagged_both(x, m, half, numpy_only)
    assert e.shape == x.shape and np.array_equal(e, e_np)
    assert np.array_equal(e_np, detect._background(x, m, half))  # the reference itself
    assert hit.dtype == hit_np.dtype and np.array_equal(hit, hit_np) and np.array_equal(e_hit, e_hit_np)
    assert np.array_equal(x_hit, x_hit_np) and np.array_equal(x_hit, x.ravel()[hit])
    monkeypatch.undo()
    # keep=False: the same cells without the grid; in place: the same grid over x's own pages
    none, hit2, e_hit2, _ = detect._flagged(x, m, half, 6.0, 4.0, keep=False)
    assert none is None and np.array_equal(hit2, hit) and np.array_equal(e_hit2, e_hit)
    own = x.copy()
    e3, hit3, _, x_hit3 = detect._flagged(own, m, half, 6.0, 4.0, keep=True, in_place=True)
    assert e3 is own and np.array_equal(own, e_np) and np.array_equal(hit3, hit) and np.array_equal(x_hit3, x_hit)


@pytest.mark.parametrize("strip_bytes", [8 * 8, 4_096, 1 << 30])
def test_strips_of_any_width_give_the_same_grid(strip_bytes, numpy_only, monkeypatch):
    rng = np.random.default_rng(5)
    x = poisson_grid(rng, 300, 700, batches=8)
    monkeypatch.setattr(detect, "GRID_STRIP_BYTES", strip_bytes)
    (e, hit, e_hit, _), (e_np, hit_np, e_hit_np, _) = flagged_both(x, x.sum(axis=1), 12, numpy_only)
    assert np.array_equal(e, e_np) and np.array_equal(hit, hit_np) and np.array_equal(e_hit, e_hit_np)
    assert hit.size > 0


@pytest.mark.parametrize("passes", [1, 2, 3, 4])
def test_every_number_of_passes_equals_numpy(passes, numpy_only):
    rng = np.random.default_rng(passes)
    x = poisson_grid(rng, 150, 300, batches=10)
    m = x.sum(axis=1)
    (e, hit, _, _), (e_np, hit_np, _, _) = flagged_both(x, m, 9, numpy_only, passes=passes)
    assert np.array_equal(e, e_np) and np.array_equal(hit, hit_np)


def test_reweighting_replaces_batches(numpy_only):
    """The lenient replacement really runs (else the pass tests above could not fail on it)."""
    x = poisson_grid(np.random.default_rng(11), 100, 300, batches=10)
    m = x.sum(axis=1)
    one = detect._flagged(x, m, 9, 6.0, 4.0, keep=True, passes=1)[0]
    three = detect._flagged(x, m, 9, 6.0, 4.0, keep=True, passes=3)[0]
    assert not np.array_equal(one, three)


def harness_frames() -> list[pl.DataFrame]:
    frames = [
        sequence_with_bricks(60_000, [(9_000, 500, 50, 3), (40_000, 250, 20, 2)], seed=12),
        sequence_with_bricks(3_000, [(1_000, 300, 0.2, 1)], seed=4),
        sequence_with_bricks(120, [], seed=2),  # fewer followers than a block
    ]
    rng = np.random.default_rng(21)
    follow, created = organic_sequence(40_000, rng, 2)
    inj = inject_bricks(follow, created, rng, bricks=2, min_size=600, max_size=1_500,
                        times_rng=np.random.default_rng((21, 1)), instant=0.5)
    frames.append(inj.frame)
    # absurd creation dates (epoch 0): the top age bin takes them
    odd = frames[0].with_columns(
        pl.when(pl.col("follow_rank") % 997 == 0).then(pl.lit(0).cast(pl.Datetime("us", "UTC"))).otherwise(pl.col("created_at"))
        .alias("created_at"))
    return [*frames, odd]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("block", [None, 25, 7_000])
def test_candidate_grid_equals_numpy(case, block, numpy_only):
    frame = harness_frames()[case]
    prep = detect._prepare(frame, None)
    p = BurstParams(block=block)
    fast = detect._candidates(prep, p)
    numpy_only()
    slow = detect._candidates(prep, p)
    assert fast.block == slow.block and np.array_equal(fast.m, slow.m)
    assert fast.fine_expected.shape == slow.fine_expected.shape and np.array_equal(fast.fine_expected, slow.fine_expected)
    assert fast.candidates == slow.candidates


def test_fine_and_coarse_grids_equal_numpy(numpy_only):
    prep = detect._prepare(harness_frames()[4], None)
    p = BurstParams()
    nb = -(-prep.age.size // 31)
    shifts = [(4, 0), (4, 2), (16, 8), (64, 0), (64, 32), (3, 1)]
    fast = [detect._fine_grid(prep.age, nb, 31, p)]
    fast.append(tuple(detect._coarse_grids(fast[0][0], shifts)))
    numpy_only()
    slow = [detect._fine_grid(prep.age, nb, 31, p)]
    slow.append(tuple(detect._coarse_grids(slow[0][0], shifts)))
    for a, b in zip([*fast[0], *fast[1]], [*slow[0], *slow[1]], strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)
    assert fast[0][0].max() == 31 and fast[0][0].shape[1] > 100  # full cells (batches) and a top bin


def test_null_kernels_equal_numpy(numpy_only):
    rng = np.random.default_rng(9)
    pool = np.sort(np.concatenate([rng.exponential(300, 5_000), np.full(50, 12.5), [0.5, 1e6]]))
    day = detect.DAY_US
    base = 1_700_000_000_000_000
    # nearly ordered follow times (the usual case), shuffled ones, and ties on pool values
    follow = base + np.cumsum(rng.integers(0, 10**9, 20_000))
    # (ages exactly on the pool's tied values: ``side="right"`` for c_lo and "left" for c_hi matter)
    follow_cases = [follow, rng.permutation(follow), np.full(300, base + int(12.5 * day))]
    windows = [(base - 40 * day, base - 2 * day), (base - 7 * day, base - 7 * day), (base + 3 * day, base - day),
               (base, base + day), (base - day, base)]
    u = rng.random((27, 3_001), dtype=np.float32)
    share = (rng.random(3_001) * 0.4).astype(np.float32)
    fast = [detect._window_counts(pool, f, lo, hi) for f in follow_cases for lo, hi in windows]
    draws = [detect._max_segment_draws(u[:k], share, np.float32(2.1), np.float32(-0.27)) for k in (27, 8, 1)]
    numpy_only()
    slow = [detect._window_counts(pool, f, lo, hi) for f in follow_cases for lo, hi in windows]
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
    assert sum(int(a.sum()) for a in fast) > 0
    for k, got in zip((27, 8, 1), draws, strict=True):
        assert got.dtype == np.float32 and np.array_equal(got, detect._max_segment_draws(u[:k], share, np.float32(2.1), np.float32(-0.27)))


def test_best_segments_from_members_equal_numpy(numpy_only):
    rng = np.random.default_rng(4)
    p = BurstParams(min_size=20, scan_llr=3.0)
    cases = []
    for _ in range(40):
        y = rng.random(int(rng.integers(0, 30_000))) < rng.random() * 0.2
        for start in rng.integers(0, max(y.size - 200, 1), 3):
            y[start : start + 150] = True
        cases.append((y, float(rng.uniform(0.01, 0.3))))
    fast = [detect._best_segments(y, p0, p) for y, p0 in cases]
    assert sum(len(f) for f in fast) > 40
    numpy_only()
    assert fast == [detect._best_segments(y, p0, p) for y, p0 in cases]


@pytest.mark.parametrize("case", range(5))
def test_whole_scan_equals_numpy(case, numpy_only):
    frame = harness_frames()[case]
    fast = scan_bursts(frame)
    numpy_only()
    slow = scan_bursts(frame)
    assert fast == slow and fast.section() == slow.section()
    assert [b.to_dict() for b in fast.bursts] == [b.to_dict() for b in slow.bursts]
    if case in (0, 3):
        assert fast.bursts  # bursts found: their p-values came through the null's kernels
