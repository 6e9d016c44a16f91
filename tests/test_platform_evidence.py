"""Issue 13: exact follow times, platform labels, mass followers, where tokens go — against the
fake AppView/Mastodon server (tests/servers/fake_platform.py) and in units."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from servers.fake_platform import (
    MODERATION,
    OTHER_LABELER,
    TARGET_HANDLE,
    FakePlatform,
    backdated,
    tid,
)

from followaudit.audit import audit_snapshot
from followaudit.classify import label_followers
from followaudit.classify.platform_labels import apply_platform_labels
from followaudit.cli import main
from followaudit.reach.audience import audience_types
from followaudit.schema import SampleDesign
from followaudit.sources.bluesky import label_columns, record_key, tid_from_micros, tid_times
from followaudit.sources.collect import CollectOptions, collect_bluesky
from followaudit.sources.http import FakeClock, HttpSettings, make_client
from followaudit.store import Store


# -- TIDs ------------------------------------------------------------------------------------------
def test_tid_decoding_matches_an_independent_encoder_and_rejects_junk() -> None:
    rng = np.random.default_rng(1)
    micros = rng.integers(1_500_000_000_000_000, 1_900_000_000_000_000, 5_000)
    times = [datetime.fromtimestamp(int(m) / 1e6, UTC) for m in micros[:50]]
    keys = pl.Series([tid(t, int(c)) for t, c in zip(times, micros[:50] % 1024, strict=True)])
    assert tid_times(keys).to_list() == [t.replace(microsecond=t.microsecond) for t in times]
    # the package's own encoder round-trips through the vectorised decoder
    decoded = tid_times(pl.Series([tid_from_micros(int(m), int(m) % 1024) for m in micros]))
    assert (decoded.dt.epoch("us").to_numpy() == micros).all()
    # the spec's example TID, and junk that is not a TID
    assert tid_times(pl.Series(["3jzfcijpj2z2a"])).dt.year().item() == 2023
    junk = tid_times(pl.Series(["", "short", "3jzfcijpj2z2!", "zzzzzzzzzzzzz", None, "3jzfcijpj2z2aa"]))
    assert junk.null_count() == 6
    assert record_key("at://did:plc:x/app.bsky.graph.follow/3jzfcijpj2z2a") == "3jzfcijpj2z2a"
    assert record_key(None) is None and record_key("https://x") is None


def test_labels_split_moderation_other_labelers_self_labels_and_negation() -> None:
    did = "did:plc:someone"
    profiles = [
        {"did": did, "labels": [
            {"src": MODERATION, "uri": did, "val": "spam"},
            {"src": MODERATION, "uri": did, "val": "!hide"}, {"src": MODERATION, "uri": did, "val": "!hide", "neg": True},
            {"src": OTHER_LABELER, "uri": did, "val": "spam"},
            {"src": did, "uri": f"at://{did}/app.bsky.actor.profile/self", "val": "bot"},
        ]},
        {"did": "did:plc:plain"},
    ]
    cols = label_columns(pl.Series([json.dumps(p) for p in profiles]))
    assert cols["moderation_labels"].to_list() == [["spam", f"spam@{OTHER_LABELER}"], []]
    assert cols["self_declared_bot"].to_list() == [True, False]


# -- the platform's labels after labelling -------------------------------------------------------
def test_platform_fake_labels_override_any_labeller_with_their_reason() -> None:
    followers = pl.DataFrame({
        "follower_id": ["a", "b", "c", "d", "e"],
        "moderation_labels": [["spam"], ["Inauthentic"], ["!hide"], [f"spam@{OTHER_LABELER}"], []],
        "posts_count": [500] * 5, "followers_count": [400] * 5, "following_count": [300] * 5,
        "has_avatar": [True] * 5, "display_name": ["Ann"] * 5, "bio": ["walks and maps"] * 5,
        "last_active_at": [datetime(2026, 10, 1, tzinfo=UTC)] * 5,
    })
    labels = label_followers(followers, method="model", as_of=datetime(2026, 11, 1, tzinfo=UTC), platform="bluesky")
    got = {r["follower_id"]: r for r in labels.iter_rows(named=True)}
    assert got["a"]["label"] == "fake" and got["a"]["reasons"][0] == "platform moderation label: spam"
    assert got["b"]["label"] == "fake" and got["b"]["reasons"] == ["platform moderation label: inauthentic"]
    assert got["b"]["platform_verdict"] == "real"  # what the model said on its own
    # a moderation action for any abuse, and another labeler's word, do not make a follower fake
    assert got["c"]["platform_verdict"] is None and got["d"]["platform_verdict"] is None and got["e"]["platform_verdict"] is None
    same = apply_platform_labels(labels.drop("platform_verdict"), followers)  # idempotent on reasons
    assert same.filter(pl.col("follower_id") == "a")["reasons"].item().to_list().count("platform moderation label: spam") == 1


def test_audience_types_intervals_and_missing_counts() -> None:
    full = audience_types({"audited": 1000, "known": 800, "mass": 200, "reachable": 400}, design=SampleDesign("full", 1000, 1000))
    assert full["mass_followers"]["share"] == 0.25 and full["mass_followers"]["count"] == 200
    assert full["mass_followers"]["threshold"] == 1500 and full["followers_with_following_count"] == 800
    assert full["mass_followers"]["low"] < 0.25 < full["mass_followers"]["high"]
    assert full["reachable"]["share"] == 0.5
    sample = audience_types({"audited": 1000, "known": 800, "mass": 200, "reachable": 400},
                            design=SampleDesign("uniform", 1000, 1200, 1), threshold=3000)
    # the finite-population correction narrows the interval: 800 known of ~960 in the population
    assert sample["mass_followers"]["high"] - sample["mass_followers"]["low"] < full["mass_followers"]["high"] - full["mass_followers"]["low"]
    assert "finite-population" in sample["mass_followers"]["method"] and sample["threshold"] == 3000
    assert audience_types({"audited": 10, "known": 0, "mass": 0, "reachable": 0}, design=SampleDesign()) is None


def test_audience_counted_while_labelling_equals_the_stored_join(tmp_path) -> None:
    from followaudit.reach.audience import audience_counts
    from followaudit.sources.ingest import import_file
    from followaudit.sources.synth import write_synth

    source = tmp_path / "f.jsonl"
    write_synth(3_001, source, seed=5)
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, source).snapshot_id
        report = audit_snapshot(store, sid, method="model", batch_rows=700, mass_threshold=800).report
        stored = audience_counts(store, sid, "model", 800)
    assert report.audience["mass_followers"]["count"] == stored["mass"] > 0
    assert report.audience["reachable"]["count"] == stored["reachable"] > 0
    assert report.audience["followers_with_following_count"] == stored["known"]
    assert report.audience["followers_audited"] == stored["audited"] == 3_001


# -- end to end: the stand-in AppView ---------------------------------------------------------------
def test_live_bluesky_audit_carries_labels_agreement_mass_followers_and_gone(tmp_path) -> None:
    gone = {10, 500, 700}
    with FakePlatform(1_500, gone=gone, hidden=9) as fp, Store(tmp_path / "w.duckdb") as store:
        api = make_client(fp.url, settings=HttpSettings(min_interval=0.0, timeout=5.0), clock=FakeClock())
        result = collect_bluesky(store, TARGET_HANDLE, CollectOptions(labelers=(OTHER_LABELER,)), api=api, api_base=fp.url)
        report = audit_snapshot(store, result.snapshot_id, method="model").report
    live = [i for i in range(1_500) if i not in gone]
    labels = report.evidence["platform_labels"]
    assert labels["spam"] == sum(i % 50 == 0 for i in live)
    assert labels["inauthentic"] == sum(i % 70 == 0 for i in live)
    assert labels["!hide"] == sum(i % 90 == 0 for i in live)
    assert labels[f"spam@{OTHER_LABELER}"] == sum(i % 45 == 0 for i in live)
    assert labels["bot"] == report.evidence["self_declared_bots"] == sum(i % 60 == 0 for i in live)
    agreement = report.evidence["platform_label_agreement"]
    assert agreement["n"] == sum(i % 50 == 0 or i % 70 == 0 for i in live)
    assert agreement["low"] <= agreement["sensitivity"] <= agreement["high"] and "lower bound" in agreement["explanation"]
    assert report.shares["fake"].count >= agreement["n"]  # all of them count as fake
    assert report.evidence["gone_followers"] == {"reported": 1_509, "listed": 1_500, "not_listed": 9, "vanished_before_hydration": 3}
    assert any("3 followers were listed but gone" in n for n in report.notes)
    # following counts: (i*53) % 3000, plus 5000 for every 50th
    following = {i: (i * 53) % 3000 + (5000 if i % 50 == 0 else 0) for i in live}
    mass = report.audience["mass_followers"]
    assert mass["count"] == sum(f > 1500 for f in following.values()) and mass["n"] == len(live)
    assert report.audience["reachable"]["count"] <= len(live) - mass["count"]
    times = report.evidence["follow_times"]
    assert times["known"] == len(live) and times["order_disagreements"] == sum(backdated(i) for i in live)


def test_bursts_are_dated_by_exact_follow_times(tmp_path) -> None:
    from followaudit.bursts.harness import sequence_with_bricks

    frame = sequence_with_bricks(30_000, [(15_000, 800, 200, 5)], seed=4)
    rng = np.random.default_rng(0)
    # exact follow times: increasing along the follow order, each after the follower's creation
    created = frame["created_at"].dt.epoch("us").to_numpy()
    follow = np.maximum.accumulate(created) + np.cumsum(rng.integers(1, 600_000_000, frame.height))
    frame = frame.with_columns(pl.Series("followed_at", follow).cast(pl.Datetime("us", "UTC")))
    from followaudit.bursts import scan_bursts

    scan = scan_bursts(frame)
    assert len(scan.bursts) == 1 and scan.follow_times_exact == frame.height
    burst = scan.bursts[0]
    members = frame.filter(pl.col("brick") == 1)
    assert burst.followed_exact and burst.size == 800
    assert burst.followed_from == members["followed_at"].min() and burst.followed_to == members["followed_at"].max()
    assert burst.p_value is not None and burst.expected_false_alarms <= 0.01


def test_sign_up_waves_are_not_bursts_but_bricks_still_are() -> None:
    from followaudit.bursts.harness import run_harness

    res = run_harness(3, organic=(20_000, 40_000), null_accounts=3, waves=2)
    assert res.null_false_bursts == 0 and res.false_bursts == 0
    assert res.recall > 0.95


def test_mostly_real_bursts_are_suspicious_not_bought() -> None:
    from followaudit.bursts import scan_bursts
    from followaudit.bursts.harness import sequence_with_bricks

    frame = sequence_with_bricks(20_000, [(9_000, 600, 300, 5)], seed=2)
    real = frame.with_columns(pl.lit("real").alias("label"))
    burst = scan_bursts(real).bursts[0]
    assert burst.kind == "suspicious" and "suspicious batch" in burst.reason() and burst.to_dict()["kind"] == "suspicious"
    fake = frame.with_columns(pl.when(pl.col("brick") > 0).then(pl.lit("fake")).otherwise(pl.lit("real")).alias("label"))
    assert scan_bursts(fake).bursts[0].kind == "bought"


def test_growth_and_chart_use_exact_follow_times(tmp_path) -> None:
    from followaudit.reach.growth import count_history
    from followaudit.render.charts import follower_factory_figure

    base = datetime(2024, 1, 1, tzinfo=UTC)
    n = 300
    frame = pl.DataFrame({
        "follower_id": [str(i) for i in range(n)], "follow_rank": list(range(n)),
        "created_at": [base - timedelta(days=400 - i) for i in range(n)],
        "followed_at": [base + timedelta(hours=6 * i) for i in range(n)],
    })
    with Store(tmp_path / "w.duckdb") as store:
        sid = store.create_snapshot(platform="bluesky", account="acct", source="test", taken_at=base + timedelta(days=90))
        with store.transaction() as con:
            store._insert_followers(con, sid, __import__("followaudit.schema", fromlist=["conform"]).conform(frame))
        history = count_history(store, "acct", "bluesky")
    assert history["source"][0].startswith("exact follow times of snapshot")
    assert history["followers"][-1] == n and history.height == math.ceil(n / 4)
    fig = follower_factory_figure(frame)
    assert fig.axes[0].get_xlabel() == "followed (exact follow time)"
    assert follower_factory_figure(frame.drop("followed_at")).axes[0].get_xlabel().startswith("follow rank")


@pytest.mark.parametrize("copy", [False, True], ids=["read in place", "stored rows"])
def test_follow_times_against_the_follow_order_in_any_row_order(tmp_path, copy) -> None:
    from followaudit.reach.platform_evidence import order_disagreements
    from followaudit.sources.ingest import import_file
    from followaudit.sources.synth import write_synth

    path = tmp_path / "f.parquet"
    write_synth(2_000, path)
    frame = pl.read_parquet(path).with_columns(  # every 97th follower backdated a year; rows shuffled
        pl.when(pl.col("follow_rank") % 97 == 5).then(pl.col("followed_at") - timedelta(days=365))
        .otherwise("followed_at").alias("followed_at")).sample(fraction=1.0, shuffle=True, seed=3)
    frame.write_parquet(path)
    ordered = frame.sort("follow_rank")["followed_at"].to_list()
    expected = sum(b < a for a, b in zip(ordered, ordered[1:], strict=False))
    assert expected == len(range(5, 2_000, 97))
    with Store(tmp_path / "w.duckdb") as store:
        imported = import_file(store, path, copy=copy)
        assert ("read in place" in imported.detected.describe()) != copy
        assert order_disagreements(store, imported.snapshot_id) == expected


def test_follow_time_counts_are_by_utc_day(tmp_path) -> None:
    from followaudit.reach.growth import daily_follows, follow_time_counts
    from followaudit.reach.platform_evidence import follow_times, order_disagreements
    from followaudit.schema import conform

    edges = [datetime(2024, 3, 1, tzinfo=UTC) - timedelta(microseconds=1), datetime(2024, 3, 1, tzinfo=UTC),
             datetime(1969, 12, 31, 23, 59, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC), datetime(1960, 5, 5, 12, tzinfo=UTC)]
    frame = pl.DataFrame({"follower_id": [str(i) for i in range(len(edges))], "follow_rank": list(range(len(edges))),
                          "followed_at": edges})
    with Store(tmp_path / "w.duckdb") as store:
        sid = store.create_snapshot(platform="bluesky", account="acct", source="test", taken_at=datetime(2024, 4, 1, tzinfo=UTC))
        with store.transaction() as con:
            store._insert_followers(con, sid, conform(frame))
        daily = follow_time_counts(store, "acct", "bluesky")
        # the audit counts them in Polars from the follow times it read once (growth.daily_follows)
        times = follow_times(store, sid)
        counted = follow_time_counts(store, "acct", "bluesky", (sid, daily_follows(times)))
        other = follow_time_counts(store, "acct", "bluesky", (sid + 1, daily_follows(times.head(1))))  # not this snapshot's
        assert order_disagreements(store, sid, times) == order_disagreements(store, sid) == 2
    days = sorted(t.date() for t in edges)
    assert daily["date"].to_list() == sorted(set(days))
    assert daily["followers"].to_list() == [sum(d <= day for d in days) for day in sorted(set(days))]
    assert counted.equals(daily) and other.equals(daily)


# -- tokens ---------------------------------------------------------------------------------------
def _run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_the_token_goes_only_to_its_own_instance(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("FOLLOWAUDIT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("FOLLOWAUDIT_MASTODON_TOKEN", "sekrit")
    monkeypatch.setenv("FOLLOWAUDIT_MASTODON_INSTANCE", "127.0.0.1")
    with FakePlatform(60) as fp:  # one page: its next link would name 127.0.0.1 and be refused
        port = fp.url.rsplit(":", 1)[1]
        # --api-base names another host (localhost, though it is the same server): no token
        code, out, err = _run(capsys, "collect", "mastodon", "@target@127.0.0.1", "--api-base", f"http://localhost:{port}",
                              "--db", str(tmp_path / "a.duckdb"), "--pace", "0")
        assert code == 0, err
        assert "not sent to localhost" in err
        assert fp.auth_seen and {auth for _, auth in fp.auth_seen} == {None}
        fp.auth_seen.clear()
        # its own instance: every request carries it
        code, out, err = _run(capsys, "collect", "mastodon", "@target@127.0.0.1", "--api-base", fp.url,
                              "--db", str(tmp_path / "b.duckdb"), "--pace", "0")
        assert code == 0, err
        assert {auth for _, auth in fp.auth_seen} == {"Bearer sekrit"}
        # an account on another instance never gets it
        monkeypatch.setenv("FOLLOWAUDIT_MASTODON_INSTANCE", "mastodon.social")
        fp.auth_seen.clear()
        code, out, err = _run(capsys, "collect", "mastodon", "@target@127.0.0.1", "--api-base", fp.url,
                              "--db", str(tmp_path / "c.duckdb"), "--pace", "0")
        assert code == 0, err
        assert {auth for _, auth in fp.auth_seen} == {None}
    # plain http to a host that is not loopback is refused before any request
    monkeypatch.setenv("FOLLOWAUDIT_MASTODON_INSTANCE", "example.org")
    code, out, err = _run(capsys, "collect", "mastodon", "@target@example.org", "--api-base", "http://example.org",
                          "--db", str(tmp_path / "d.duckdb"))
    assert code == 1 and "plain http" in err and len(err.strip().splitlines()) == 1 and "sekrit" not in err


def test_audience_and_agreement_reach_the_html_report(tmp_path) -> None:
    from followaudit.render.html import render_html

    with FakePlatform(400) as fp, Store(tmp_path / "w.duckdb") as store:
        api = make_client(fp.url, settings=HttpSettings(min_interval=0.0, timeout=5.0), clock=FakeClock())
        result = collect_bluesky(store, TARGET_HANDLE, CollectOptions(), api=api, api_base=fp.url)
        assert result.follow_times == 400
        report = audit_snapshot(store, result.snapshot_id, method="model").report
    page = render_html(report)
    assert 'id="audience-table"' in page and 'id="platform-agreement"' in page
    assert f"{report.audience['mass_followers']['count']:,}" in page


def test_a_bought_batch_on_the_stand_in_appview_is_dated_by_its_true_follow_times(tmp_path) -> None:
    first, size = 2_000, 300
    with FakePlatform(4_000, batch=(first, size)) as fp, Store(tmp_path / "w.duckdb") as store:
        api = make_client(fp.url, settings=HttpSettings(min_interval=0.0, timeout=5.0), clock=FakeClock())
        result = collect_bluesky(store, TARGET_HANDLE, CollectOptions(), api=api, api_base=fp.url)
        report = audit_snapshot(store, result.snapshot_id, method="model").report
        truth = [fp.followed(i) for i in range(first, first + size)]
    [burst] = report.bursts
    assert burst["followed_exact"] and burst["start_rank"] == first and burst["end_rank"] == first + size - 1
    assert burst["followed_from"] == min(truth).isoformat() and burst["followed_to"] == max(truth).isoformat()
    assert burst["kind"] == "bought" and burst["follow_rate_ratio"] > 100  # 3 s apart against 1 h
    mass = report.audience["mass_followers"]["count"]
    assert mass == size + sum(1 for i in range(4_000) if not first <= i < first + size and (i * 53) % 3000 + (5000 if i % 50 == 0 else 0) > 1500)
