"""The synthetic account's reach data and the report sections built from it (the demo path)."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from followaudit.audit import audit_snapshot
from followaudit.reach.sections import SECTION_KEYS, store_synthetic_reach
from followaudit.render.jsonout import render_json
from followaudit.render.text import render_text
from followaudit.sources.ingest import import_file
from followaudit.sources.synth import (
    SynthSpec,
    generate,
    generate_count_history,
    generate_likers,
    generate_posts,
    write_synth,
)
from followaudit.store import Store


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return generate(SynthSpec(n=3000, seed=5, fake_share=0.3, batches=2))


def test_count_history_comes_from_follow_times_and_shows_the_batches(frame) -> None:
    hist = generate_count_history(SynthSpec(n=3000, seed=5), frame)
    assert hist["followers"].is_sorted() and hist["followers"][-1] == 3000
    from followaudit.reach.growth import detect_spikes

    spikes = detect_spikes(hist)["spikes"]
    batch_sizes = frame.filter(pl.col("batch") > 0).group_by("batch").len()["len"].to_list()
    # every bought follower is in a spike (a batch may straddle two weekly steps), and nothing else is
    assert sum(sp["excess"] for sp in spikes) >= 0.9 * sum(batch_sizes)
    assert len(batch_sizes) <= len(spikes) <= 2 * len(batch_sizes)


def test_posts_engage_with_the_real_audience_only(frame) -> None:
    posts = generate_posts(SynthSpec(n=3000, seed=5), frame)
    assert posts.height == 400 and posts["post_id"].n_unique() == 400
    assert (posts["likes"] >= 0).all() and posts.select(pl.col("created_at").is_sorted()).item()
    late, early = posts.tail(40)["likes"].mean(), posts.head(40)["likes"].mean()
    assert late > early  # the real audience grows over the years


def test_likers_mix_followers_non_followers_and_a_few_fakes(frame) -> None:
    likers = generate_likers(SynthSpec(n=3000, seed=5), frame)
    likes = likers.filter(pl.col("kind") == "like")
    assert likes.height == 240 and likers.filter(pl.col("kind") == "repost").height == 40
    outsiders = likes.filter(~pl.col("follower_id").is_in(frame["follower_id"].implode()))
    assert outsiders.height == 60
    assert likes["engaged_at"].null_count() == 0


def test_demo_report_has_every_reach_section(tmp_path) -> None:
    source = tmp_path / "f.jsonl"
    followers = write_synth(2500, source, seed=9, account="demo_account", fake_share=0.3)
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, source, platform="twitter", order="newest-first", account="demo_account").snapshot_id
        store_synthetic_reach(store, sid, followers, seed=9)
        store_synthetic_reach(store, sid, followers, seed=9)  # idempotent: the demo reruns cleanly
        report = audit_snapshot(store, sid).report
    sections = report.sections
    assert set(SECTION_KEYS) <= set(sections)
    for key in ("engagement", "whatif", "likers", "growth", "comparison"):
        assert sections[key]["available"], (key, sections[key].get("missing"))
    assert sections["views"]["available"] is False and "views FILE" in sections["views"]["missing"]
    assert sections["likers"]["audits_of_account"] == 1
    assert sections["likers"]["not_following"]["not_following"] == 60
    assert sections["growth"]["spikes"], "the bought batch shows as a spike"
    eng = sections["engagement"]
    assert eng["engagement_rate"] < eng["engagement_rate_real"]["rate"]
    doc = json.loads(render_json(report))
    assert doc["engagement"]["posts"] == 400 and doc["likers"]["shares"]["fake"]["method"]
    out = io.StringIO()
    render_text(report, file=out, width=120)
    text = out.getvalue()
    for heading in ("Engagement (400 posts", "What-if:", "Likers of synth://", "Growth (", "Comparison (", "Views: not available"):
        assert heading in text


def test_growth_sets_the_spikes_beside_the_bursts_from_follow_order(tmp_path) -> None:
    from followaudit.bursts.attach import attach_bursts
    from followaudit.reach.sections import build_sections

    source = tmp_path / "f.jsonl"
    followers = write_synth(3000, source, seed=4, account="demo_account", fake_share=0.25, batches=1)
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, source, platform="twitter", order="newest-first", account="demo_account").snapshot_id
        store_synthetic_reach(store, sid, followers, seed=4)
        report = audit_snapshot(store, sid).report
        snapshot = store.snapshot(sid)
        attach_bursts(store, snapshot, report, method="rules", save=False)
        assert report.bursts, "the bought batch is found from follow order"
        growth = build_sections(store, snapshot, report)["growth"]
    side = growth["bursts"]
    assert len(side) == len(report.bursts)
    assert side[0]["matching_spikes"] and side[0]["matching_spikes"][0] in {s["date"] for s in growth["spikes"]}
    assert side[0]["dated_by_counts"]["from"] <= side[0]["matching_spikes"][0]
