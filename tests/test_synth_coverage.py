"""The corrected interval covers the synthetic truth over seeds, sizes (4k to 100k) and difficulties."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from followaudit.audit import audit_frame
from followaudit.sources.synth import SynthSpec, generate
from followaudit.store.workspace import Snapshot

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def audit_synth(n: int, seed: int, difficulty: float, fake_share: float = 0.2) -> tuple[float, dict, str]:
    """(true fake share, corrected fake entry, shift level) of one synthetic audit."""
    followers = generate(SynthSpec(n, seed=seed, difficulty=difficulty, fake_share=fake_share))
    truth = float((followers["truth_label"] == "fake").mean())
    report = audit_frame(followers, Snapshot(1, "twitter", "demo_account", "synth", None, AS_OF, "test"), method="model").report
    return truth, report.corrected["fake"], report.evidence["shift"]["level"]


def _coverage(cases: list[tuple[int, int, float, float]]) -> tuple[float, list]:
    rows = [(c, *audit_synth(*c)) for c in cases]
    covered = [fake["low"] <= truth <= fake["high"] for _, truth, fake, _ in rows]
    return float(np.mean(covered)), rows


def test_synth_difficulty_zero_is_unchanged_and_hard_audiences_overlap() -> None:
    easy = generate(SynthSpec(3000, seed=9))
    assert easy.equals(generate(SynthSpec(3000, seed=9, difficulty=0.0)))
    hard = generate(SynthSpec(3000, seed=9, difficulty=1.0))
    fakes = hard.filter(hard["truth_label"] == "fake")
    assert fakes["has_avatar"].mean() > 0.5 and (fakes["followers_count"] > 25).mean() > 0.3  # fakes inside the people's ranges
    lurkers = hard.filter((hard["truth_label"] != "fake") & (hard["posts_count"] == 0))
    assert lurkers.height > 0.15 * hard.height and lurkers["followers_count"].median() < 30


def test_corrected_interval_covers_synth_truth_fast_subset() -> None:
    cases = [(n, seed, d, 0.2) for n in (4000, 10000) for seed in (1, 2) for d in (0.0, 1.0)]
    coverage, rows = _coverage(cases)
    assert coverage >= 0.75, rows  # 8 audits: at most two misses at a 90% target


@pytest.mark.slow
def test_corrected_interval_coverage_over_seeds_and_sizes() -> None:
    cases = [(n, seed, d, share) for n in (4000, 20000, 100000) for seed in range(3, 7) for d in (0.0, 0.5, 1.0)
             for share in (0.05, 0.3)][::2]
    coverage, rows = _coverage(cases)
    assert coverage >= 0.9, rows
