"""A small run of the injection harness must meet the issue's targets (the full run is in docs/bursts.md)."""

from __future__ import annotations

import numpy as np

from followaudit.bursts.harness import inject_bricks, organic_sequence, run_harness


def test_small_harness_meets_targets():
    res = run_harness(4, organic=(15_000, 30_000), null_accounts=2)
    assert res.injected > 0 and res.bricks >= 4
    assert res.recall >= 0.95, res.summary()
    assert res.organic_false_flag <= 0.01, res.summary()
    assert res.null_false_bursts == 0, res.summary()
    for injected, recalled in res.per_size.values():
        assert injected == 0 or recalled / injected >= 0.9, res.summary()


def test_injection_keeps_truth_and_order():
    rng = np.random.default_rng(2)
    follow, created = organic_sequence(5_000, rng)
    assert np.all(np.diff(follow) >= 0) and np.all(created < follow)
    inj = inject_bricks(follow, created, rng, bricks=2)
    frame = inj.frame
    assert frame.height == 5_000 + sum(inj.sizes)
    assert frame["follow_rank"].to_list() == list(range(frame.height))
    for b, size in enumerate(inj.sizes, start=1):
        ranks = frame.filter(frame["brick"] == b)["follow_rank"].to_numpy()
        assert ranks.size == size and ranks.max() - ranks.min() + 1 == size  # consecutive
