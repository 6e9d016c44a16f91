"""Likers audits against the local fake platform (127.0.0.1) with its fault injection."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from servers.fake_platform import TARGET_HANDLE, did_of
from servers.likes_routes import POST_URI, POST_URL, LikesPlatform

from followaudit.cli import cli
from followaudit.errors import CollectError, InputError, PaginationError
from followaudit.reach.likers import (
    LikersOptions,
    collect_likers_bluesky,
    collect_likers_mastodon,
    latest_likers_section,
    likers_section,
    parse_bluesky_post,
    parse_mastodon_status,
)
from followaudit.sources.collect import CollectOptions, collect_bluesky, collect_mastodon
from followaudit.sources.http import FakeClock, HttpSettings, make_client
from followaudit.store import Store

N = 300  # followers; likers: every 3rd follower + 20 non-followers; reposters: every 10th follower
LIKERS = len(range(0, N, 3)) + 20
REPOSTERS = len(range(0, N, 10))


def api_for(fp: LikesPlatform, **kw):
    settings = HttpSettings(**{"min_interval": 0.0, "timeout": 5.0, "max_retries": 2, **kw})
    return make_client(fp.url, settings=settings, clock=FakeClock())


@pytest.fixture
def fp():
    with LikesPlatform(N, outsiders=20) as server:
        yield server


def test_parse_post_urls() -> None:
    assert parse_bluesky_post("https://bsky.app/profile/alice.bsky.social/post/3kabc") == ("alice.bsky.social", "3kabc")
    assert parse_bluesky_post("at://did:plc:xyz/app.bsky.feed.post/3kabc") == ("did:plc:xyz", "3kabc")
    assert parse_mastodon_status("https://mastodon.social/@Gargron/110000000000000001") == ("mastodon.social", "110000000000000001")
    assert parse_mastodon_status("https://a.example/users/bob/statuses/42") == ("a.example", "42")
    for bad in ("https://bsky.app/profile/alice", "not a url"):
        with pytest.raises(InputError):
            parse_bluesky_post(bad)
    with pytest.raises(InputError):
        parse_mastodon_status("https://mastodon.social/@Gargron")


def test_bluesky_likers_labelled_with_non_followers_counted(fp, tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        follower_snap = collect_bluesky(store, TARGET_HANDLE, CollectOptions(), api=api_for(fp), api_base=fp.url).snapshot_id
        api = api_for(fp)
        likers_id = collect_likers_bluesky(store, POST_URL, LikersOptions(), api=api, api_base=fp.url)
        distinct = len(set(range(0, N, 3)) | set(range(N, N + 20)) | set(range(0, N, 10)))
        assert api.calls["/xrpc/app.bsky.feed.getLikes"] == math.ceil(LIKERS / 100)
        assert api.calls["/xrpc/app.bsky.feed.getRepostedBy"] == math.ceil(REPOSTERS / 100)
        assert api.calls["/xrpc/app.bsky.actor.getProfiles"] == math.ceil(distinct / 25)
        section = likers_section(store, likers_id)
        assert section["available"] and section["likes"] == LIKERS and section["reposts"] == REPOSTERS
        assert section["engagers"] == distinct and section["labelled"] == distinct
        assert section["likes_reported"] == LIKERS and section["post"] == POST_URI
        assert set(section["shares"]) == {"fake", "inactive", "real"}
        assert sum(s["count"] for s in section["shares"].values()) == distinct
        for s in section["shares"].values():
            assert s["low"] <= s["share"] <= s["high"] and "Wilson" in s["method"]
        nf = section["not_following"]
        assert nf["available"] and nf["followers_snapshot"] == follower_snap and nf["not_following"] == 20
        assert nf["low"] < 20 / distinct < nf["high"]
        # likers count as active: their like is recent activity, so none is "inactive" for lack of a post time
        rows = store.engager_rows(likers_id, ["follower_id", "last_active_at"])
        assert rows["last_active_at"].null_count() == distinct - len(set(range(0, N, 3)) | set(range(N, N + 20)))
        # the report of the account picks the audit up
        assert latest_likers_section(store, TARGET_HANDLE, "bluesky")["likers_id"] == likers_id


def test_bluesky_likers_resume_after_a_crash_without_duplicates(fp, tmp_path) -> None:
    fp.faults.only_paths = ("getRepostedBy",)
    fp.faults.errors_503 = 10  # more than the client's retries: the run stops after the likes
    with Store(tmp_path / "w.duckdb") as store:
        with pytest.raises(CollectError):
            collect_likers_bluesky(store, POST_URL, LikersOptions(seed=1), api=api_for(fp), api_base=fp.url)
        audit = store.row("SELECT likers_id, phase, status FROM likers_audits")
        assert audit["phase"] == "repost" and audit["status"] == "collecting"
        fp.faults.errors_503 = 0
        api = api_for(fp)
        likers_id = collect_likers_bluesky(store, POST_URL, LikersOptions(seed=1), api=api, api_base=fp.url)
        assert likers_id == audit["likers_id"]
        assert api.calls["/xrpc/app.bsky.feed.getLikes"] == 0  # already done: not fetched again
        engagers = store.engagers(likers_id)
        assert engagers.height == LIKERS + REPOSTERS
        assert engagers.select("kind", "engager_id").is_duplicated().sum() == 0
        again = api_for(fp)
        assert collect_likers_bluesky(store, POST_URL, LikersOptions(seed=1), api=again, api_base=fp.url) == likers_id
        assert sum(again.calls.values()) == 2  # profile + getPosts only: the audit is complete


def test_bluesky_likers_sample_and_repeating_cursor(fp, tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        likers_id = collect_likers_bluesky(store, POST_URL, LikersOptions(sample=40, seed=7, reposts=False), api=api_for(fp), api_base=fp.url)
        section = likers_section(store, likers_id)
        assert section["sample_design"] == {"kind": "uniform", "n": 40, "population": LIKERS, "seed": 7,
                                            "description": f"uniform random sample of 40 out of {LIKERS:,} (seed 7) engagers"}
        assert section["labelled"] == 40 and section["reposts"] == 0
        assert "finite-population" in section["shares"]["fake"]["method"]
        assert section["not_following"]["available"] is False  # no follower snapshot in this workspace
    with LikesPlatform(N, likers=list(range(N))) as many, Store(tmp_path / "w2.duckdb") as store:
        many.faults.repeat_cursor = True  # page 2 answers with the cursor it was asked with
        with pytest.raises(PaginationError):
            collect_likers_bluesky(store, POST_URL, LikersOptions(seed=8), api=api_for(many), api_base=many.url)
        assert store.engagers(1).height == 100  # the good first page is kept; the repeat is not stored


def test_mastodon_favourites_and_boosts(fp, tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        collect_mastodon(store, "@target@127.0.0.1", CollectOptions(), api=api_for(fp), api_base=fp.url)
        api = api_for(fp)
        likers_id = collect_likers_mastodon(store, fp.status_url(), LikersOptions(), api=api, api_base=fp.url)
        assert api.calls["/api/v1/statuses/112000000000000042/favourited_by"] == math.floor(LIKERS / 80) + 1
        section = likers_section(store, likers_id)
        assert section["available"] and section["likes"] == LIKERS and section["reposts"] == REPOSTERS
        assert section["account"] == "target@127.0.0.1"
        assert section["not_following"]["not_following"] == 20


def test_likers_cli_json_has_the_audit_shares_object(fp, tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    got = CliRunner().invoke(cli, ["likers", "bluesky", POST_URL, "--api-base", fp.url, "--db", str(db),
                                   "--format", "json", "--pace", "0", "--method", "rules"])
    assert got.exit_code == 0, got.output
    out = json.loads(got.stdout)
    assert set(out["shares"]) == {"fake", "inactive", "real"}
    assert set(out["shares"]["fake"]) == {"share", "low", "high", "count", "method"}
    assert out["engagers"] > 0 and did_of(0)
    text = CliRunner().invoke(cli, ["likers", "mastodon", fp.status_url(), "--api-base", fp.url, "--db", str(db), "--pace", "0", "--method", "rules"])
    assert text.exit_code == 0, text.output
    assert "distinct engagers" in text.stdout and "do not follow" in text.stdout


def test_rate_limits_on_the_like_list_are_waited_out_on_the_injected_clock(fp, tmp_path) -> None:
    fp.faults.only_paths = ("getLikes",)
    fp.faults.rate_limit = 2
    fp.faults.rate_limit_seconds = 30.0
    clock = FakeClock()
    api = make_client(fp.url, settings=HttpSettings(min_interval=0.0, timeout=5.0), clock=clock)
    with Store(tmp_path / "w.duckdb") as store:
        likers_id = collect_likers_bluesky(store, POST_URL, LikersOptions(), api=api, api_base=fp.url)
        assert likers_section(store, likers_id)["likes"] == LIKERS
    assert api.calls["/xrpc/app.bsky.feed.getLikes"] == math.ceil(LIKERS / 100) + 2
    assert len([s for s in clock.sleeps if s >= 20]) == 2  # two waits for the advertised reset, no real sleeping


@pytest.mark.parametrize("platform", ["bluesky", "mastodon"])
def test_non_followers_are_counted_against_every_listed_follower_of_a_sampled_collection(fp, tmp_path, platform) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        if platform == "bluesky":
            snap = collect_bluesky(store, TARGET_HANDLE, CollectOptions(sample=25, seed=1), api=api_for(fp), api_base=fp.url)
            likers_id = collect_likers_bluesky(store, POST_URL, LikersOptions(), api=api_for(fp), api_base=fp.url)
        else:
            snap = collect_mastodon(store, "@target@127.0.0.1", CollectOptions(sample=25, seed=1), api=api_for(fp), api_base=fp.url)
            likers_id = collect_likers_mastodon(store, fp.status_url(), LikersOptions(), api=api_for(fp), api_base=fp.url)
        assert store.snapshot(snap.snapshot_id).n_followers == 25  # only a sample was stored ...
        nf = likers_section(store, likers_id)["not_following"]
        assert nf["available"] and nf["not_following"] == 20  # ... but every listed follower is known
