"""Bursts in the audit: the Report lists them and members' stored labels carry the reason."""

from __future__ import annotations

import json
from dataclasses import replace

import polars as pl
import pytest

from followaudit.audit import audit_snapshot
from followaudit.bursts import BurstScan, burst_membership, scan_bursts
from followaudit.bursts.attach import SECTION, attach_bursts, burst_members
from followaudit.bursts.harness import sequence_with_bricks
from followaudit.store import Store


def stored(tmp_path, frame):
    store = Store(tmp_path / "w.duckdb")
    sid = store.create_snapshot(platform="twitter", account="acct", source="test")
    # profiles with counts: with only creation dates the audit would withhold its labels (too little to judge)
    store.replace_followers(sid, frame.drop("brick").with_columns(
        pl.lit("twitter").alias("platform"), pl.lit(10).alias("posts_count"),
        pl.lit(40).alias("followers_count"), pl.lit(60).alias("following_count")))
    return store, sid


def test_report_lists_bursts_and_members_carry_the_reason(tmp_path):
    frame = sequence_with_bricks(8_000, [(4_000, 300, 50, 3)], seed=9)
    store, sid = stored(tmp_path, frame)
    with store:
        result = audit_snapshot(store, sid)
        scan = attach_bursts(store, store.snapshot(sid), result.report, method="rules")
        assert scan is not None and len(scan.bursts) == 1
        doc = json.loads(json.dumps(result.report.to_dict(), default=str))
        [burst] = doc["bursts"]
        assert burst["start_rank"] == 4_000 and 4_299 <= burst["end_rank"] <= 4_310 and 300 <= burst["size"] <= 303
        # the bare profiles here look real to the rules: a suspicious batch, not shown to be bought
        assert burst["kind"] == "suspicious" and burst["fake_share"] < 0.5
        assert burst["reason"].startswith("in burst #1: a suspicious batch (mostly labelled real) of ")
        assert f"{burst['size']} followers created " in burst["reason"]
        assert doc[SECTION]["followers_scanned"] == 8_300
        labels = store.labels(sid, "rules").join(frame.select("follower_id", "brick"), on="follower_id")
        has = labels.with_columns(pl.col("reasons").list.eval(pl.element().str.starts_with("in burst #1")).list.any().alias("has"))
        assert has.filter(pl.col("brick") > 0)["has"].all()
        assert has.filter(pl.col("brick") == 0)["has"].sum() == burst["size"] - 300  # organic strays inside
        # running it again does not add the reason twice
        attach_bursts(store, store.snapshot(sid), result.report, method="rules")
        again = store.labels(sid, "rules").filter(pl.col("follower_id") == "u4000")["reasons"][0].to_list()
        assert sum(r.startswith("in burst #1") for r in again) == 1


def test_no_follow_order_is_a_note(tmp_path):
    frame = sequence_with_bricks(500, [], seed=1).with_columns(pl.lit(None, pl.Int64).alias("follow_rank"))
    store, sid = stored(tmp_path, frame)
    with store:
        result = audit_snapshot(store, sid)
        assert attach_bursts(store, store.snapshot(sid), result.report, method="rules") is None
        assert any("no follow order" in n for n in result.report.notes)
        assert not result.report.bursts


@pytest.mark.parametrize("spacing, offset", [(1, 0), (1_000_000_007, -5_000_000_000_000)], ids=["dense ranks", "sparse, negative ranks"])
def test_members_found_in_sql_are_the_rectangles_members(tmp_path, spacing, offset):
    # the members' join lists each rectangle per block of ranks: every member must still be found once
    frame = sequence_with_bricks(20_000, [(3_000, 400, 50, 3), (12_000, 300, 50, 3)], seed=4)
    frame = frame.with_columns(pl.col("follow_rank") * spacing + offset)
    scan = scan_bursts(frame)
    assert len(scan.bursts) == 2
    first = scan.bursts[0]  # a rectangle over both bursts' ranks, and one over a single rank
    wide = replace(first, end_rank=scan.bursts[1].end_rank, burst_id=3)
    single = replace(first, end_rank=first.start_rank, burst_id=4)
    rects = BurstScan([*scan.bursts, wide, single], scan.followers_scanned, scan.followers_skipped)
    store, sid = stored(tmp_path, frame)
    with store:
        found = burst_members(store, sid, rects).sort("burst_id", "follower_id")
    assert found.equals(burst_membership(frame, rects.bursts))
    assert found.filter(pl.col("burst_id") == 4).height == 1


@pytest.mark.parametrize("scan_done_after", [0, 2, 99], ids=["scan done first", "scan done mid-way", "scan done last"])
def test_members_found_while_labelling_equal_the_stored_labels_join(tmp_path, scan_done_after):
    # the audit finds the bursts' members in the batches it labels; they must be exactly the members
    # and labels that the join of the stored labels gives, whenever the scan finishes
    from concurrent.futures import Future

    from followaudit.bursts.attach import MembersWhileLabelling
    from followaudit.classify import label_followers

    frame = sequence_with_bricks(30_000, [(4_000, 400, 50, 3), (20_000, 300, 50, 3)], seed=5)
    store, sid = stored(tmp_path, frame)
    varied = pl.when(pl.col("follow_rank") % 3 == 0).then(0).otherwise(pl.col("follow_rank") % 7 * 900)
    store.replace_followers(sid, store.followers(sid).with_columns(posts_count=varied, following_count=varied * 3))
    with store:
        audit_snapshot(store, sid, batch_rows=4_000)  # stores the rules' labels
        scan = scan_bursts(store.follower_columns(sid, ["follow_rank", "created_at", "followed_at"]))
        assert len(scan.bursts) == 2
        # a rectangle over both bursts, so a follower is a member twice
        scan.bursts.append(replace(scan.bursts[0], end_rank=scan.bursts[1].end_rank, burst_id=3))
        scanning: Future = Future()
        found = MembersWhileLabelling(scanning)
        snapshot = store.snapshot(sid)
        for i, batch in enumerate(store.iter_followers(sid, batch_rows=4_000)):
            if i == scan_done_after:
                scanning.set_result(scan)
            found.add(batch, label_followers(batch, method="rules", as_of=snapshot.taken_at, platform="twitter"))
        if not scanning.done():
            scanning.set_result(scan)
        mine = found.members().sort("burst_id", "follower_id")
        joined = burst_members(store, sid, scan, "rules").sort("burst_id", "follower_id")
    assert mine.height > 700 and mine.filter(pl.col("burst_id") == 3).height > 0
    assert mine["label"].n_unique() >= 2  # mixed labels among the members: a misplaced one would show
    assert mine.equals(joined)


def test_the_scan_and_evidence_after_the_last_batch_report_the_same(tmp_path, monkeypatch):
    # past SCAN_ALONGSIDE_MAX an audit scans for bursts and reads the evidence after labelling: the
    # same report, the same stored labels and reasons, for a file read in place
    import followaudit.audit as audit_module
    from followaudit.sources.ingest import import_file

    frame = sequence_with_bricks(20_000, [(6_000, 400, 50, 3)], seed=11)
    path = tmp_path / "in.parquet"
    frame.drop("brick").with_columns(
        pl.lit("twitter").alias("platform"), pl.lit("acct").alias("account"), pl.lit(10).alias("posts_count"), pl.lit(40).alias("followers_count"), pl.lit(60).alias("following_count"),
    ).write_parquet(path)

    def audited(name):
        with Store(tmp_path / f"{name}.duckdb") as store:
            sid = import_file(store, path).snapshot_id
            assert store.in_place_source(sid) is not None
            report = json.loads(json.dumps(audit_snapshot(store, sid, batch_rows=3_000).report.to_dict(), default=str))
            labels = store.labels(sid, "rules").sort("follower_id")
        for key in ("snapshot", "source", "generated_at"):
            report.pop(key, None)
        return report, labels

    alongside = audited("alongside")
    monkeypatch.setattr(audit_module, "SCAN_ALONGSIDE_MAX", 0)
    after = audited("after")
    assert alongside[0]["bursts"] and after[0] == alongside[0]
    assert after[1].equals(alongside[1])
