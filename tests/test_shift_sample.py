"""The shift profile of a large audience reads a systematic sample: every k-th follower across batches."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from followaudit.audit import LabelTally
from followaudit.classify.model import feature_matrix, load_model, model_for_platform
from followaudit.estimate.shift import AudienceProfile, diagnose, profile_stride
from followaudit.schema import conform
from followaudit.sources.synth import SynthSpec, generate


def test_stride_over_batches_profiles_every_kth_follower():
    followers = conform(generate(SynthSpec(n=2_003, seed=3)))
    model = load_model(model_for_platform("twitter"))
    reference = model.card["shift_reference"]
    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    X = feature_matrix(followers, model.spec.features, as_of)
    whole = AudienceProfile()
    whole.add(X[::3], model.spec.features, reference)
    tally = LabelTally()
    for start, stop in ((0, 500), (500, 1_001), (1_001, 2_003)):  # batches not multiples of the stride
        batch = followers[start:stop]
        # half the batches come with the labelling's feature matrix, half without
        given = X[start:stop] if start else None
        tally.add_profiles(batch, "twitter", as_of, given, model.name if given is not None else None, stride=3)
    sampled = tally.profile
    assert sampled.seen == 2_003 and sampled.n == whole.n == len(range(0, 2_003, 3))
    assert (sampled.outside, sampled.with_features) == (whole.outside, whole.with_features)
    assert all(np.array_equal(sampled.counts[f], whole.counts[f]) for f in whole.counts)
    assert diagnose(sampled, reference) == diagnose(whole, reference)


def test_stride_reads_about_a_quarter_million():
    assert profile_stride(100) == 1
    assert profile_stride(250_000) == 1
    assert profile_stride(250_001) == 2
    assert profile_stride(10_000_000) == 40
    assert pl.DataFrame({"a": range(10)})[slice(1, None, 4)]["a"].to_list() == [1, 5, 9]
