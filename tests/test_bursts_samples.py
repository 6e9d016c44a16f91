"""Bursts on the FollowerAnalyzer sample accounts (real Twitter follower lists in follow order).

No ground truth exists for these accounts; the assertions pin what docs/bursts.md reports (the
batch visible by eye in each chart), so a change in the detector that loses it fails here.
"""

from __future__ import annotations

import pytest

from followaudit.bursts import burst_membership, scan_bursts
from followaudit.sources.ingest import import_file
from followaudit.store import Store

SAMPLE = "follower-analyzer-sample"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("samples") / "w.duckdb") as s:
        yield s


def load(store, data, name, profiles=True):
    folder = data / SAMPLE
    extra = {"profiles": folder / "follower_profiles_sample.jsons.gz"} if profiles else {}
    result = import_file(store, folder / name, **extra)
    return store.followers(result.snapshot_id, ["follower_id", "follow_rank", "created_at"])


def test_account_1664461146_has_one_tight_batch(store, shared_data):
    frame = load(store, shared_data, "1664461146_network.json.gz")
    scan = scan_bursts(frame)
    assert scan.followers_scanned + scan.followers_skipped == 5_189
    [burst] = scan.bursts
    assert (burst.start_rank, burst.end_rank, burst.size) == (3_373, 3_557, 185)
    assert (burst.created_to - burst.created_from).days <= 5  # made within days of each other
    assert burst.followed_from > burst.created_to  # aged accounts, delivered later
    assert burst_membership(frame, scan.bursts).height == 185


@pytest.mark.slow
def test_account_172048868_in_both_crawls(store, shared_data):
    network = scan_bursts(load(store, shared_data, "172048868_network.json.gz")).bursts
    rank_map = scan_bursts(load(store, shared_data, "sample_follower_data.json.gz", profiles=False)).bursts
    for bursts in (network, rank_map):
        big = max(bursts, key=lambda b: b.size)
        assert big.size >= 1_500 and big.span <= 1_700
        assert f"{big.created_from:%Y-%m}" == "2013-12" and f"{big.created_to:%Y-%m}" == "2014-07"
    # the two crawls list the same batch about 96 ranks apart (the rank-map crawl has fewer followers)
    assert abs(max(network, key=lambda b: b.size).start_rank - max(rank_map, key=lambda b: b.size).start_rank) < 200


def test_twitter_export_in_api_order(tmp_path):
    """A Twitter v1.1 JSONL export (newest follower first) imported as users do it: the batches show."""
    from followaudit.sources.synth import write_synth

    path = tmp_path / "followers.jsonl"
    write_synth(3_000, path, seed=5)
    with Store(tmp_path / "w.duckdb") as s:
        result = import_file(s, path)
        frame = s.followers(result.snapshot_id, ["follower_id", "follow_rank", "created_at", "truth_label"])
    scan = scan_bursts(frame)
    assert scan.bursts
    members = burst_membership(frame, scan.bursts).join(frame, on="follower_id")
    fakes = frame.filter(frame["truth_label"] == "fake").height
    assert members.height >= 0.95 * fakes  # the synthetic account's bought batches
    assert (members["truth_label"] == "fake").mean() >= 0.95
