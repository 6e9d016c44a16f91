"""The burst scan's segment searches in C give NumPy's numbers exactly (the NumPy code runs without a compiler)."""

from __future__ import annotations

import numpy as np
import pytest

import followaudit.bursts.detect as detect
from followaudit.bursts import BurstParams, scan_bursts
from followaudit.bursts.harness import sequence_with_bricks

pytestmark = pytest.mark.skipif(detect._segments_library() is None, reason="no C compiler: only the NumPy code runs")


@pytest.fixture
def numpy_only(monkeypatch):
    def use_numpy() -> None:
        monkeypatch.setattr(detect, "_segments_library", lambda: None)
    return use_numpy


def test_max_segment_equals_numpy_on_null_draws(numpy_only):
    rng = np.random.default_rng(3)
    cases = []
    for n in (1, 2, 17, 5_000, 120_000):
        share = rng.random(n).astype(np.float32) * rng.random()
        draws = np.where(rng.random((7, n), dtype=np.float32) < share, np.float32(3.1), np.float32(-0.23))
        cases.append(draws)
    cases.append(np.full((3, 1000), np.float32(-1.0)))  # nothing positive: the best is 0
    cases.append(np.tile(np.array([1, -1], dtype=np.float32), (2, 500)))  # ties everywhere
    fast = [detect._max_segment(c) for c in cases]
    numpy_only()
    for c, f in zip(cases, fast, strict=True):
        slow = detect._max_segment(c)
        assert f.dtype == slow.dtype == np.float32 and np.array_equal(f, slow)


def test_gain_segments_equal_numpy(numpy_only):
    rng = np.random.default_rng(8)
    p = BurstParams(min_size=5, scan_llr=2.0)
    inputs = []
    for trial in range(60):
        n = int(rng.integers(0, 20_000))
        y = rng.random(n) < rng.random() * 0.3
        if trial % 4 == 0:  # bricks of members: several segments, searched left and right of each
            for start in rng.integers(0, max(n - 60, 1), 4):
                y[start : start + 50] = True
        w1, w0 = (1.0, -1.0) if trial % 3 == 0 else (2.7, -0.31)  # integers: exact ties between segments
        inputs.append((np.where(y, w1, w0), None if trial % 2 else y))
    fast = [detect._gain_segments(g, y, p) for g, y in inputs]
    assert sum(len(f) for f in fast) > 60
    numpy_only()
    assert fast == [detect._gain_segments(g, y, p) for g, y in inputs]


def test_whole_scan_equals_numpy(numpy_only):
    frame = sequence_with_bricks(60_000, [(9_000, 500, 50, 3), (40_000, 250, 20, 2)], seed=12)
    fast = scan_bursts(frame)
    assert len(fast.bursts) == 2
    numpy_only()
    assert scan_bursts(frame) == fast  # every burst, its p-value and false-alarm figures included
