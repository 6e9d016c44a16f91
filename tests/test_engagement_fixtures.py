"""Every reach command on the hand-made fixtures in tests/fixtures/reach, ending in one audit report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from followaudit.cli import cli
from followaudit.sources.synth import SynthSpec, generate
from followaudit.store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reach"


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "w.duckdb"
    with Store(path) as store:
        sid = store.create_snapshot(platform="instagram", account="acme", source="test", followers_reported=3_200)
        store.replace_followers(sid, generate(SynthSpec(n=400, seed=2, account="acme")).drop("followed_at", "batch"))
    return path


def run(*args: str) -> dict:
    got = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert got.exit_code == 0, got.output
    return json.loads(got.stdout)


def test_reach_commands_on_fixtures_feed_the_audit_report(db, tmp_path) -> None:
    posts = run("import-posts", str(FIXTURES / "posts.csv"), "--snapshot", "acme", "--db", str(db))
    assert posts["posts"] == 10 and posts["rejects"]["count"] == 1 and posts["rejects"]["first"]["line"] == 12
    counts = run("growth", "import", str(FIXTURES / "counts.csv"), "--account", "acme", "--platform", "instagram", "--db", str(db))
    assert counts["points"] == 12
    views = run("views", str(FIXTURES / "videos.csv"), "--account", "acme", "--db", str(db), "--chart", str(tmp_path / "v.png"))
    assert sorted(f["item_id"] for f in views["flagged"]) == ["vid09", "vid17"] and views["rejects"]["count"] == 1
    growth = run("growth", "show", "acme", "--db", str(db))
    assert [s["date"] for s in growth["spikes"]] == ["2025-03-26"] and growth["spikes"][0]["gain"] == 2_020

    report = run("audit", "acme", "--db", str(db), "--method", "rules")
    eng = report["engagement"]
    assert eng["available"] and eng["posts"] == 10 and eng["followers"] == 3_200
    assert eng["engagements_per_post"]["mean"] == pytest.approx(476 / 10)  # likes+replies+shares: 46+46+49+49+47+49+47+49+47+47
    # each post over the count on or before its day (counts.csv), not today's 3,200
    per_post = [46, 46, 49, 49, 47, 49, 47, 49, 47, 47]
    then = [1_000, 1_020, 1_041, 1_060, 1_082, 1_100, 3_120, 3_141, 3_160, 3_181]
    assert eng["engagement_rate"] == pytest.approx(sum(e / f for e, f in zip(per_post, then, strict=True)) / 10)
    assert "count history" in eng["followers_at_post"]["source"]
    around = eng["around_spikes"][0]
    assert around["follower_change"] == pytest.approx(3_120 / 1_100 - 1) and abs(around["engagement_change"]) < 0.1
    assert report["growth"]["spikes"][0]["date"] == "2025-03-26"
    assert report["views"]["flagged_count"] == 2
    assert report["whatif"]["followers_after"] == 6_400
    assert report["likers"]["available"] is False and "likers bluesky" in report["likers"]["missing"]
    nano = report["comparison"]["reference"]["rows"][0]  # 3,200 Instagram followers: Heepsy's nano tier
    assert nano["tier"].startswith("nano") and nano["percentile_range"] in ([0.0, 0.47], [0.47, 1.0])
    assert report["comparison"]["workspace"]["available"] is False

    whatif = run("whatif", "acme", "--buy", "10000", "--db", str(db))
    # the what-if starts from the report's engagement rate (posts over the count at their time)
    assert whatif["engagement_rate_before"] == pytest.approx(eng["engagement_rate"])
    assert report["whatif"]["engagement_rate_before"] == pytest.approx(eng["engagement_rate"])
    assert whatif["engagement_rate_after"] == pytest.approx(eng["engagement_rate"] * 3_200 / 13_200)
    fixed = run("whatif", "acme", "--buy", "10000", "--engagements", "47.6", "--db", str(db))
    assert fixed["engagement_rate_before"] == pytest.approx(47.6 / 3_200)
    assert fixed["engagement_rate_after"] == pytest.approx(47.6 / 13_200)


def test_posts_collected_live_feed_the_engagement_section(tmp_path) -> None:
    from servers.fake_platform import TARGET_HANDLE, FakePlatform

    from followaudit.audit import audit_snapshot
    from followaudit.sources.collect import CollectOptions, collect_bluesky
    from followaudit.sources.http import FakeClock, HttpSettings, make_client

    with FakePlatform(300, posts=30) as fp, Store(tmp_path / "w.duckdb") as store:
        api = make_client(fp.url, settings=HttpSettings(min_interval=0.0, timeout=5.0), clock=FakeClock())
        sid = collect_bluesky(store, TARGET_HANDLE, CollectOptions(posts=30), api=api, api_base=fp.url).snapshot_id
        eng = audit_snapshot(store, sid).report.sections["engagement"]
    # the fake server's post k has 10 + k likes, k % 3 replies, k % 5 reposts, 0 quotes
    expected = sum(10 + k + k % 3 + k % 5 for k in range(30)) / 30
    assert eng["available"] and eng["posts"] == 30 and eng["followers"] == 300
    assert eng["engagements_per_post"]["mean"] == pytest.approx(expected)
    assert eng["engagement_rate"] == pytest.approx(expected / 300)
