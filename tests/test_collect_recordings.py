"""The Bluesky and Mastodon collectors against recorded responses (tests/recordings, MockTransport)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from servers.replay import Replay

from followaudit.errors import AuthRequiredError, HiddenFollowersError, NotFoundError
from followaudit.schema import COLUMN_NAMES, SCHEMA
from followaudit.sources.collect import CollectOptions, collect_bluesky, collect_mastodon
from followaudit.sources.http import FakeClock, HttpSettings, make_client
from followaudit.store import Store

BSKY = "https://public.api.bsky.app"
MASTO = "https://fosstodon.example"
DATE = datetime(2025, 11, 23, 3, 55, tzinfo=UTC).timestamp()
BSKY_FULL = ("bluesky/getProfile", "bluesky/getFollowers_page1", "bluesky/getFollowers_page2", "bluesky/getProfiles",
             "bluesky/getRelationships")
FEEDS = ("bluesky/getAuthorFeed_alice", "bluesky/getAuthorFeed_buyer", "bluesky/getAuthorFeed_carol",
         "bluesky/getAuthorFeed_erin_blocked")


def api_for(replay: Replay, base: str, clock: FakeClock | None = None, token: str | None = None, warnings=None):
    return make_client(
        base, token=token, settings=HttpSettings(min_interval=0.0), clock=clock or FakeClock(DATE),
        transport=replay.transport, on_warning=(warnings.append if warnings is not None else None),
    )


def by_handle(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["handle"]: row for row in frame.iter_rows(named=True)}


def test_bluesky_recorded_collection(tmp_path) -> None:
    replay = Replay(*BSKY_FULL, *FEEDS)
    api = api_for(replay, BSKY)
    with Store(tmp_path / "w.duckdb") as store:
        result = collect_bluesky(store, "@newsroom.example.com", CollectOptions(activity=True), api=api, api_base=BSKY)
        assert replay.all_used()
        # the short first page (2 followers, cursor present) was not taken for the end
        assert result.enumerated == 5 and result.followers_reported == 5 and result.gap == 0
        assert result.stored == 4 and result.missing == 1  # dave listed, then gone from getProfiles
        assert result.calls == {"/xrpc/app.bsky.actor.getProfile": 1, "/xrpc/app.bsky.graph.getFollowers": 2,
                                "/xrpc/app.bsky.actor.getProfiles": 1, "/xrpc/app.bsky.feed.getAuthorFeed": 4,
                                "/xrpc/app.bsky.graph.getRelationships": 1}  # ceil(4 stored / 30)
        snap = store.snapshot(result.snapshot_id)
        assert snap.status == "complete" and snap.platform == "bluesky" and snap.account == "newsroom.example.com"
        assert snap.design.kind == "full" and snap.design.fpc_population is None
        followers = store.followers(result.snapshot_id)
        assert followers.columns == COLUMN_NAMES and followers.schema == pl.Schema(SCHEMA)
        rows = by_handle(followers)
        alice, buyer, carol, erin = (rows[h] for h in ("alice.bsky.social", "buy-followers-4821.bsky.social",
                                                        "carol.example.org", "erin.bsky.social"))
        # API order is newest first: alice (position 0) is the newest of 5 -> rank 4; erin the oldest -> 0
        assert [alice["follow_rank"], buyer["follow_rank"], carol["follow_rank"], erin["follow_rank"]] == [4, 3, 2, 0]
        assert buyer["has_avatar"] is False and alice["has_avatar"] is True
        assert buyer["moderation_labels"] == ["spam"]
        # the negated spam label is dropped; the account's own label is kept apart from moderation
        assert carol["moderation_labels"] == ["self:!no-unauthenticated"]
        assert erin["moderation_labels"] == ["inauthentic"] and erin["self_declared_bot"] is True
        assert alice["self_declared_bot"] is False
        # follow times: the TID key of each follow record; carol's record is gone, erin is not found
        assert alice["followed_at"] == datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
        assert buyer["followed_at"] == datetime(2025, 2, 10, 3, 4, 5, tzinfo=UTC)
        assert carol["followed_at"] is None and erin["followed_at"] is None
        # every Bluesky request asked for Bluesky's moderation labels
        assert {r.headers.get("atproto-accept-labelers") for r in replay.requests} == {"did:plc:ar7c4by46qjdydhdevvrndac"}
        assert carol["verified"] is True and alice["verified"] is False
        assert alice["has_url"] is True and buyer["has_url"] is False
        assert buyer["followers_count"] == 0 and buyer["following_count"] == 4980 and buyer["posts_count"] == 0
        assert alice["created_at"] == datetime(2023, 5, 2, 17, 30, 11, 200000, tzinfo=UTC)
        assert erin["created_at"] == datetime(2023, 9, 9, 9, 9, 9, tzinfo=UTC)
        assert alice["bio"] == "birds, maps, tea" and alice["bio_length"] == 16
        assert alice["last_active_at"] == datetime(2025, 11, 20, 18, 44, 3, 512000, tzinfo=UTC)
        assert carol["last_active_at"] == datetime(2025, 11, 21, 7, 0, tzinfo=UTC)  # a repost counts
        assert buyer["last_active_at"] is None and erin["last_active_at"] is None
        assert alice["observed_at"] is not None and alice["raw"].startswith('{"did":"did:plc:ragtjsm2j2vknwkz3zp4oxrd"')
        kinds = store.query("SELECT handle, last_active_kind FROM collect_ids WHERE snapshot_id = ?", [result.snapshot_id])
        assert dict(kinds.iter_rows()) == {
            "alice.bsky.social": "post", "buy-followers-4821.bsky.social": "none", "carol.example.org": "repost",
            "dave.bsky.social": None, "erin.bsky.social": "unavailable",
        }
        rejects = store.rejects(result.snapshot_id)
        assert rejects["raw"].to_list() == ["did:plc:kkf4naxqmweop7dv4l2iqqf5"]
        assert "not returned" in rejects["reason"][0]


def test_bluesky_profiles_use_repeated_actor_params(tmp_path) -> None:
    replay = Replay(*BSKY_FULL)
    with Store(tmp_path / "w.duckdb") as store:
        collect_bluesky(store, "newsroom.example.com", CollectOptions(), api=api_for(replay, BSKY), api_base=BSKY)
    request = [r for r in replay.requests if r.url.path.endswith("getProfiles")][0]
    assert request.url.params.get_list("actors")[:2] == ["did:plc:ragtjsm2j2vknwkz3zp4oxrd", "did:plc:4qqizocrnriintskkh6fg6ke"]


def test_bluesky_recorded_429_waits_for_reset(tmp_path) -> None:
    replay = Replay("bluesky/getProfile", "bluesky/getFollowers_429", *BSKY_FULL[1:])
    clock = FakeClock(datetime(2025, 11, 23, 3, 59, 58, tzinfo=UTC).timestamp())
    with Store(tmp_path / "w.duckdb") as store:
        result = collect_bluesky(store, "newsroom.example.com", CollectOptions(), api=api_for(replay, BSKY, clock), api_base=BSKY)
    assert replay.all_used() and result.stored == 4
    assert clock.sleeps == [pytest.approx(32.0)]  # RateLimit-Reset 1763870430 - Date 03:59:58


def test_bluesky_not_found(tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store, pytest.raises(NotFoundError, match="Profile not found"):
        collect_bluesky(store, "nobody.invalid", CollectOptions(), api=api_for(Replay("bluesky/getProfile_notfound"), BSKY), api_base=BSKY)


def test_mastodon_recorded_collection(tmp_path) -> None:
    replay = Replay("mastodon/lookup", "mastodon/followers_page1", "mastodon/followers_page2", "mastodon/statuses")
    with Store(tmp_path / "w.duckdb") as store:
        result = collect_mastodon(store, "@ada@fosstodon.example", CollectOptions(posts=2), api=api_for(replay, MASTO), api_base=MASTO)
        assert replay.all_used()
        # Link header followed (absolute URL with max_id); no hydration calls at all
        assert result.calls == {"/api/v1/accounts/lookup": 1, "/api/v1/accounts/109302462374958571/followers": 2,
                                "/api/v1/accounts/109302462374958571/statuses": 1}
        assert result.account == "ada@fosstodon.example" and result.enumerated == 4 and result.stored == 4
        followers = store.followers(result.snapshot_id)
        assert followers.schema == pl.Schema(SCHEMA)
        rows = by_handle(followers)
        bea, promo = rows["bea@fosstodon.example"], rows["promo_4821@spam.example"]
        cyd, dee = rows["cyd@mastodon.example"], rows["dee@fosstodon.example"]
        assert [bea["follow_rank"], promo["follow_rank"], cyd["follow_rank"], dee["follow_rank"]] == [3, 2, 1, 0]
        assert bea["bio"] == "photos & walks\nBerlin" and bea["has_url"] is True and bea["has_avatar"] is True
        assert promo["has_avatar"] is False and promo["self_declared_bot"] is True and promo["last_active_at"] is None
        assert promo["following_count"] == 7000 and promo["posts_count"] == 0
        assert cyd["private"] is True and cyd["last_active_at"] == datetime(2023, 1, 15, tzinfo=UTC)
        assert dee["moderation_labels"] == ["limited"] and bea["moderation_labels"] == []
        assert promo["moderation_labels"] == ["suspended"] and cyd["moderation_labels"] == ["noindex", "moved"]
        assert promo["created_at"] == datetime(2025, 10, 1, tzinfo=UTC)
        posts = store.posts(result.snapshot_id)
        assert posts["likes"].to_list() == [21, 4] and posts["reposts"].to_list() == [7, 1]
        assert posts["quotes"].to_list() == [1, None] and posts["views"].null_count() == 2


def test_mastodon_recorded_429_then_success(tmp_path) -> None:
    replay = Replay("mastodon/lookup", "mastodon/followers_429", "mastodon/followers_page1", "mastodon/followers_page2")
    clock = FakeClock(datetime(2025, 11, 23, 3, 59, 30, tzinfo=UTC).timestamp())
    with Store(tmp_path / "w.duckdb") as store:
        result = collect_mastodon(store, "ada@fosstodon.example", CollectOptions(), api=api_for(replay, MASTO, clock), api_base=MASTO)
    assert result.stored == 4 and clock.sleeps == [pytest.approx(30.0)]


def test_mastodon_401_says_how_to_set_a_token(tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store, pytest.raises(AuthRequiredError) as info:
        collect_mastodon(store, "@ada@fosstodon.example", CollectOptions(), api=api_for(Replay("mastodon/lookup_401"), MASTO), api_base=MASTO)
    line = info.value.one_line()
    assert "fosstodon.example refused the request (401" in line
    assert "FOLLOWAUDIT_MASTODON_TOKEN" in line and "config file" in line


def test_mastodon_hidden_followers_is_an_error_not_an_empty_audit(tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        with pytest.raises(HiddenFollowersError, match="hides its follower list"):
            collect_mastodon(store, "@ada@fosstodon.example", CollectOptions(), api=api_for(Replay("mastodon/lookup_hidden"), MASTO), api_base=MASTO)
        assert store.list_snapshots().height == 0


def test_mastodon_not_found(tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store, pytest.raises(NotFoundError, match="404"):
        collect_mastodon(store, "@nobody@fosstodon.example", CollectOptions(), api=api_for(Replay("mastodon/lookup_404"), MASTO), api_base=MASTO)


def test_token_reaches_only_the_header(tmp_path) -> None:
    replay = Replay("mastodon/lookup", "mastodon/followers_page1", "mastodon/followers_page2")
    token = "tok-9f8e7d6c5b4a"
    path = tmp_path / "w.duckdb"
    with Store(path) as store:
        collect_mastodon(store, "@ada@fosstodon.example", CollectOptions(), api=api_for(replay, MASTO, token=token), api_base=MASTO)
        assert all(r.headers["Authorization"] == f"Bearer {token}" for r in replay.requests)
        for table in ("snapshots", "followers", "collect_state", "collect_pages", "collect_ids", "rejects"):
            text = str(store.query(f"SELECT * FROM {table}").rows())
            assert token not in text
    assert token.encode() not in path.read_bytes()
