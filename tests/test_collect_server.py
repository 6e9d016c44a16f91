"""Collectors against a real local HTTP server (127.0.0.1, port 0) with fault injection.

Call counts are exact: list calls = ceil(M/100) on Bluesky and floor(M/80)+1 on Mastodon,
hydration calls = ceil(n/25), one profile/lookup call, nothing else.
"""

from __future__ import annotations

import math
import random

import httpx
import pytest
from servers.fake_platform import MASTODON_ID, TARGET_HANDLE, FakePlatform, did_of

from followaudit.errors import (
    AuthRequiredError,
    CollectError,
    HiddenFollowersError,
    PaginationError,
)
from followaudit.estimate.sample_design import sample_size
from followaudit.sources.collect import CollectOptions, collect_bluesky, collect_mastodon
from followaudit.sources.http import FakeClock, HttpSettings, make_client
from followaudit.store import Store

FOLLOWERS = f"/api/v1/accounts/{MASTODON_ID}/followers"
GET_FOLLOWERS = "/xrpc/app.bsky.graph.getFollowers"
GET_PROFILES = "/xrpc/app.bsky.actor.getProfiles"
GET_RELATIONSHIPS = "/xrpc/app.bsky.graph.getRelationships"


@pytest.fixture(scope="module")
def big():
    with FakePlatform(20_000, hidden=37) as fp:
        yield fp


@pytest.fixture
def small():
    with FakePlatform(1_500, gone={10, 500}) as fp:
        yield fp


def api_for(fp: FakePlatform, *, clock: FakeClock | None = None, token: str | None = None, transport=None, **kw):
    settings = HttpSettings(**{"min_interval": 0.0, "timeout": 5.0, **kw})
    return make_client(fp.url, token=token, settings=settings, clock=clock or FakeClock(), transport=transport)


def bsky(store: Store, fp: FakePlatform, options: CollectOptions | None = None, **kw):
    return collect_bluesky(store, TARGET_HANDLE, options or CollectOptions(), api=api_for(fp, **kw), api_base=fp.url)


def masto(store: Store, fp: FakePlatform, options: CollectOptions | None = None, **kw):
    return collect_mastodon(store, "@target@127.0.0.1", options or CollectOptions(), api=api_for(fp, **kw), api_base=fp.url)


# -- exact call counts on a 20,000-follower account ---------------------------------------------
@pytest.mark.slow
def test_bluesky_full_collection_20k_call_counts(big, tmp_path) -> None:
    m = big.n
    with Store(tmp_path / "w.duckdb") as store:
        result = bsky(store, big)
        assert result.calls == {"/xrpc/app.bsky.actor.getProfile": 1, GET_FOLLOWERS: math.ceil(m / 100),
                                GET_PROFILES: math.ceil(m / 25)}
        assert result.enumerated == m and result.followers_reported == m + 37 and result.gap == 37
        followers = store.followers(result.snapshot_id, ["follower_id", "follow_rank", "moderation_labels", "has_avatar"])
        assert set(followers["follower_id"]) == big.bluesky_truth() and followers.height == m
        # follower i was the i-th to follow: rank i (0 = oldest), although the API lists newest first
        assert followers["follower_id"].to_list() == [did_of(i) for i in range(m)]
        assert followers["follow_rank"].to_list() == list(range(m))
        assert followers["moderation_labels"].list.contains("spam").sum() == m // 50
        assert (~followers["has_avatar"]).sum() == len(range(0, m, 7))
        assert store.snapshot(result.snapshot_id).status == "complete"


@pytest.mark.slow
def test_bluesky_uniform_sample_20k_call_counts(big, tmp_path) -> None:
    m, n = big.n, 1000
    with Store(tmp_path / "w.duckdb") as store:
        result = bsky(store, big, CollectOptions(sample=n, seed=42))
        assert result.calls[GET_FOLLOWERS] == math.ceil(m / 100)
        # below 10,000 stored followers exact follow times are on by default: ceil(n/30) more
        assert result.calls[GET_PROFILES] == math.ceil(n / 25) and result.calls[GET_RELATIONSHIPS] == math.ceil(n / 30)
        assert sum(result.calls.values()) == 1 + 200 + 40 + 34
        design = store.snapshot(result.snapshot_id).design
        assert (design.kind, design.n, design.population, design.seed) == ("uniform", n, m, 42)
        assert design.fpc_population == m
        ranks = store.followers(result.snapshot_id, ["follow_rank"])["follow_rank"]
        assert ranks.n_unique() == n and ranks.min() < 200 and ranks.max() > m - 200  # spans the whole list
        assert abs(ranks.mean() - (m - 1) / 2) < 4 * m / math.sqrt(12 * n)


@pytest.mark.slow
def test_precision_sets_the_sample_size(big, tmp_path) -> None:
    n = sample_size(0.03, big.n)
    with Store(tmp_path / "w.duckdb") as store:
        result = masto(store, big, CollectOptions(precision=0.03, seed=1))
        assert result.design.n == n == result.stored
        assert result.calls == {"/api/v1/accounts/lookup": 1, FOLLOWERS: big.n // 80 + 1}


@pytest.mark.slow
def test_mastodon_full_collection_20k(big, tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        result = masto(store, big)
        assert result.calls == {"/api/v1/accounts/lookup": 1, FOLLOWERS: big.n // 80 + 1}
        followers = store.followers(result.snapshot_id, ["follower_id", "follow_rank", "last_active_at", "private"])
        assert set(followers["follower_id"]) == big.mastodon_truth() and followers.height == big.n
        assert followers["follow_rank"].to_list() == list(range(big.n))
        assert followers["last_active_at"].null_count() == big.n // 5  # last_status_at: null


def test_activity_probe_is_one_call_per_sampled_follower(small, tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        result = bsky(store, small, CollectOptions(sample=300, seed=5, activity=True, posts=25))
        stored = result.stored
        assert result.calls["/xrpc/app.bsky.feed.getAuthorFeed"] == stored + 1  # + one page of the account's posts
        kinds = store.query("SELECT last_active_kind AS k, count(*) AS n FROM collect_ids WHERE snapshot_id = ? AND done GROUP BY k",
                            [result.snapshot_id])
        assert set(kinds["k"].drop_nulls()) <= {"post", "repost", "none", "unavailable"}
        assert result.posts == 25


# -- faults ------------------------------------------------------------------------------------
def test_429_with_reset_headers_is_waited_out(small, tmp_path) -> None:
    small.faults.rate_limit = 3
    small.faults.rate_limit_seconds = 4
    clock = FakeClock()
    with Store(tmp_path / "w.duckdb") as store:
        result = collect_bluesky(store, TARGET_HANDLE, CollectOptions(), api=api_for(small, clock=clock), api_base=small.url)
    assert result.stored == small.n - 2
    assert len(clock.sleeps) == 3 and all(2.5 <= s <= 5.5 for s in clock.sleeps)


def test_mastodon_429_iso_reset(small, tmp_path) -> None:
    small.faults.rate_limit = 2
    small.faults.rate_limit_seconds = 10
    clock = FakeClock()
    with Store(tmp_path / "w.duckdb") as store:
        result = collect_mastodon(store, "@target@127.0.0.1", CollectOptions(), api=api_for(small, clock=clock), api_base=small.url)
    assert result.stored == small.n and len(clock.sleeps) == 2 and all(8.5 <= s <= 11.5 for s in clock.sleeps)


def test_503_burst_recovers_and_long_outage_stops(small, tmp_path) -> None:
    small.faults.errors_503 = 3
    with Store(tmp_path / "w.duckdb") as store:
        assert bsky(store, small).stored == small.n - 2
        small.faults.errors_503 = 1000
        with pytest.raises(CollectError, match="503"):
            bsky(store, small, CollectOptions(fresh=True), max_retries=3)
    small.faults.errors_503 = 0


def test_slow_responses_time_out_and_are_retried(tmp_path) -> None:
    with FakePlatform(300) as fp, Store(tmp_path / "w.duckdb") as store:
        fp.faults.slow, fp.faults.slow_seconds = 2, 0.6
        fp.faults.only_paths = ("getFollowers",)
        result = bsky(store, fp, timeout=0.2)
        assert result.stored == 300 and result.calls[GET_FOLLOWERS] == 3 + 2
        fp.faults.slow = 100
        with pytest.raises(CollectError, match="timed out 3 times"):
            bsky(store, fp, CollectOptions(fresh=True), timeout=0.2, max_retries=2)
        fp.faults.slow = 0


def test_truncated_json_is_retried(small, tmp_path) -> None:
    small.faults.truncate = 4
    with Store(tmp_path / "w.duckdb") as store:
        assert masto(store, small).stored == small.n


def test_remaining_zero_waits_before_next_call(small, tmp_path) -> None:
    small.faults.remaining_zero = 1
    small.faults.only_paths = ("getFollowers",)
    clock = FakeClock()
    with Store(tmp_path / "w.duckdb") as store:
        collect_bluesky(store, TARGET_HANDLE, CollectOptions(sample=10), api=api_for(small, clock=clock), api_base=small.url)
    assert len(clock.sleeps) == 1 and 0 < clock.sleeps[0] <= 2.5


@pytest.mark.parametrize("platform", ["bluesky", "mastodon"])
@pytest.mark.parametrize("fault", ["repeat_cursor", "repeat_page"])
def test_pagination_that_does_not_advance_stops(small, tmp_path, platform: str, fault: str) -> None:
    setattr(small.faults, fault, True)
    with Store(tmp_path / "w.duckdb") as store:
        with pytest.raises(PaginationError) as info:
            (bsky if platform == "bluesky" else masto)(store, small)
        assert ("again" in info.value.message) if fault == "repeat_cursor" else ("repeats" in info.value.message)
        calls = small.calls[GET_FOLLOWERS if platform == "bluesky" else FOLLOWERS]
        assert calls == 2  # stopped on the first repeat, no spinning
        assert store.list_snapshots()["status"].to_list() == ["collecting"]


def test_short_pages_are_not_the_end(small, tmp_path) -> None:
    small.faults.short_pages = True
    with Store(tmp_path / "w.duckdb") as store:
        result = bsky(store, small)
        assert result.enumerated == small.n and result.calls[GET_FOLLOWERS] > math.ceil(small.n / 100)


def test_gone_profiles_become_rejects(small, tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        result = bsky(store, small)
        assert result.missing == 2 and set(store.rejects(result.snapshot_id)["raw"]) == {did_of(10), did_of(500)}


def test_token_required_and_hidden(tmp_path) -> None:
    with FakePlatform(100, token="t0k") as fp, Store(tmp_path / "w.duckdb") as store:
        with pytest.raises(AuthRequiredError):
            masto(store, fp)
        assert masto(store, fp, token="t0k").stored == 100
    with FakePlatform(100, hide_collections=True) as fp, Store(tmp_path / "w.duckdb") as store:
        with pytest.raises(HiddenFollowersError):
            masto(store, fp)
    # an older server that does not say so: an empty list for an account reporting followers
    with FakePlatform(100, hide_collections=True, announce_hidden=False) as fp, Store(tmp_path / "x.duckdb") as store:
        with pytest.raises(HiddenFollowersError, match="reports 100 followers but the server lists none"):
            masto(store, fp)
        assert store.list_snapshots().height == 0  # no empty snapshot left behind to audit


# -- resume ------------------------------------------------------------------------------------
class Crash(KeyboardInterrupt):
    pass


class CrashingTransport(httpx.BaseTransport):
    """Real HTTP, but the process "dies" (KeyboardInterrupt) before or after request number ``at``."""

    def __init__(self, at: int, after: bool) -> None:
        self.inner = httpx.HTTPTransport()
        self.at, self.after, self.count = at, after, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        if self.count == self.at and not self.after:
            raise Crash()
        response = self.inner.handle_request(request)
        if self.count == self.at:
            response.read()
            raise Crash()
        return response


@pytest.mark.slow
@pytest.mark.parametrize("platform", ["bluesky", "mastodon"])
def test_interrupted_runs_resume_to_the_same_result(tmp_path, platform: str) -> None:
    rng = random.Random(platform)
    options = dict(sample=400, seed=9, activity=True, posts=45)
    with FakePlatform(2_000, gone={7}, posts=100) as fp:
        run = collect_bluesky if platform == "bluesky" else collect_mastodon
        who = TARGET_HANDLE if platform == "bluesky" else "@target@127.0.0.1"
        with Store(tmp_path / "ref.duckdb") as store:
            ref = run(store, who, CollectOptions(**options), api=api_for(fp), api_base=fp.url)
            truth = store.followers(ref.snapshot_id).drop("observed_at")
            ref_calls = sum(ref.calls.values())
        crashes = 0
        with Store(tmp_path / "w.duckdb") as store:
            while True:
                transport = CrashingTransport(rng.randint(1, max(2, ref_calls // 4)), rng.random() < 0.5)
                try:
                    result = run(store, who, CollectOptions(**options), api=api_for(fp, transport=transport), api_base=fp.url)
                    break
                except Crash:
                    crashes += 1
            assert crashes >= 5
            assert store.list_snapshots().height == 1 and result.resumed
            got = store.followers(result.snapshot_id).drop("observed_at")
            assert got.equals(truth)
            assert store.posts(result.snapshot_id).height == 45
            rows = store.row("SELECT count(*) AS n, count(DISTINCT follower_id) AS d FROM collect_ids WHERE snapshot_id = ?",
                             [result.snapshot_id])
            assert rows == {"n": 2000, "d": 2000}


def test_resume_identity(small, tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        first = bsky(store, small, CollectOptions(sample=50, seed=1))
        again = bsky(store, small, CollectOptions(sample=50, seed=1))
        assert again.already_complete and again.snapshot_id == first.snapshot_id
        assert again.calls == {"/xrpc/app.bsky.actor.getProfile": 1}  # nothing re-collected
        fresh = bsky(store, small, CollectOptions(sample=50, seed=1, fresh=True))
        other = bsky(store, small, CollectOptions(sample=60, seed=1))
        assert len({first.snapshot_id, fresh.snapshot_id, other.snapshot_id}) == 3
        ids = [set(store.followers(s.snapshot_id, ["follower_id"])["follower_id"]) for s in (first, fresh)]
        assert ids[0] == ids[1]  # same seed, same population: same sample


class RecordingProgress:
    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None]] = []
        self.updates: list[tuple[int, int | None, float | None]] = []
        self.waits: list[tuple[float, str]] = []

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        self.phases.append((phase, total))

    def update(self, done: int, *, items: int | None = None, eta: float | None = None) -> None:
        self.updates.append((done, items, eta))

    def wait(self, seconds: float, reason: str) -> None:
        self.waits.append((seconds, reason))

    def warn(self, message: str) -> None:
        pass


def test_progress_sees_phases_waits_and_eta(small, tmp_path) -> None:
    small.faults.rate_limit = 1
    small.faults.rate_limit_seconds = 3
    progress = RecordingProgress()
    clock = FakeClock()
    api = make_client(small.url, settings=HttpSettings(min_interval=0.5), clock=clock, on_wait=progress.wait)
    with Store(tmp_path / "w.duckdb") as store:
        collect_bluesky(store, TARGET_HANDLE, CollectOptions(sample=100, seed=1), api=api, api_base=small.url, progress=progress)
    assert progress.phases == [("listing followers", 15), ("hydrating profiles", 4), ("follow times", 4)]
    assert progress.updates[0][:2] == (1, 100) and progress.updates[14][:2] == (15, 1500)
    assert progress.updates[0][2] == pytest.approx(14 * 0.5, rel=0.5)  # 14 pages left at >= 0.5 s each
    assert progress.updates[-1][2] == 0
    reasons = [r for _, r in progress.waits]
    assert "rate limited (429); waiting for reset" in reasons and reasons.count("pacing") >= 15
    assert clock.sleeps == [s for s, _ in progress.waits]


def test_rich_progress_without_terminal_prints_long_waits(capsys) -> None:
    from followaudit.cli.collect import RichProgress

    with RichProgress() as progress:
        progress.start("listing followers", 10)
        progress.wait(0.2, "pacing")
        progress.wait(2, "rate limited (429); waiting for reset")
        progress.wait(65, "rate limited (429); waiting for reset")
        progress.warn("clock looks wrong")
    err = capsys.readouterr().err
    assert err.splitlines() == ["waiting 1m05s: rate limited (429); waiting for reset", "warning: clock looks wrong"]


# -- exact follow times and labels ----------------------------------------------------------------
def test_bluesky_follow_times_and_labels(small, tmp_path) -> None:
    from datetime import timedelta

    from servers.fake_platform import MODERATION, OTHER_LABELER, backdated, followed_of

    with Store(tmp_path / "w.duckdb") as store:
        result = bsky(store, small, CollectOptions(labelers=(OTHER_LABELER,)))
        stored = small.n - len(small.gone)
        assert result.calls == {"/xrpc/app.bsky.actor.getProfile": 1, GET_FOLLOWERS: math.ceil(small.n / 100),
                                GET_PROFILES: math.ceil(small.n / 25), GET_RELATIONSHIPS: math.ceil(stored / 30)}
        assert set(small.labelers_seen) == {f"{MODERATION}, {OTHER_LABELER}"}
        rows = store.followers(result.snapshot_id, ["follower_id", "follow_rank", "followed_at", "moderation_labels",
                                                    "self_declared_bot"])
        assert rows["followed_at"].null_count() == 0
        truth = [followed_of(i) - (timedelta(days=30) if backdated(i) else timedelta(0)) for i in rows["follow_rank"]]
        assert rows["followed_at"].to_list() == truth
        live = [i for i in range(small.n) if i not in small.gone]
        labels = rows["moderation_labels"]
        assert labels.list.contains("spam").sum() == sum(i % 50 == 0 for i in live)
        assert labels.list.contains("inauthentic").sum() == sum(i % 70 == 0 for i in live)
        assert labels.list.contains("!hide").sum() == sum(i % 90 == 0 for i in live)
        assert labels.list.contains(f"spam@{OTHER_LABELER}").sum() == sum(i % 45 == 0 for i in live)
        assert rows["self_declared_bot"].sum() == sum(i % 60 == 0 for i in live)


def test_follow_times_can_be_switched_off_and_default_off_above_the_limit(small, tmp_path, monkeypatch) -> None:
    from followaudit.sources import collect as collect_module

    with Store(tmp_path / "w.duckdb") as store:
        off = bsky(store, small, CollectOptions(follow_times=False, sample=100, seed=3))
        assert GET_RELATIONSHIPS not in off.calls
        monkeypatch.setattr(collect_module, "FOLLOW_TIMES_DEFAULT_MAX", 99)
        above = bsky(store, small, CollectOptions(sample=100, seed=4))
        assert GET_RELATIONSHIPS not in above.calls
        forced = bsky(store, small, CollectOptions(follow_times=True, sample=100, seed=5))
        assert forced.calls[GET_RELATIONSHIPS] == math.ceil(forced.stored / 30)
        assert store.followers(forced.snapshot_id, ["followed_at"])["followed_at"].null_count() == 0
