"""Each supported file format: small hand-written fixtures, and the real datasets when present."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from followaudit.schema import COLUMN_NAMES, SCHEMA
from followaudit.sources.files import read_followers

FIX = Path(__file__).parent / "fixtures" / "import"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def by_id(frame: pl.DataFrame) -> dict[str, dict]:
    return {r["follower_id"]: r for r in frame.iter_rows(named=True)}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_canonical_shape_always():
    parsed = read_followers(FIX / "twitter_v1.jsonl")
    assert parsed.followers.columns == COLUMN_NAMES
    assert dict(parsed.followers.schema) == SCHEMA
    assert parsed.rejects.columns == ["file", "line", "column", "reason", "raw"]


def test_twitter_v1_jsonl_values_and_rejects():
    parsed = read_followers(FIX / "twitter_v1.jsonl")
    assert parsed.detected.describe() == "detected: Twitter v1.1 users, JSONL, order newest-first"
    rows = by_id(parsed.followers)
    assert set(rows) == {"9001", "9002", "9008"}
    ada = rows["9001"]
    assert ada["handle"] == "ada_example" and ada["display_name"] == "Ada Example"
    assert ada["created_at"] == utc(2010, 11, 29, 21, 18, 15)
    assert ada["last_active_at"] == utc(2021, 1, 5, 10)
    assert (ada["followers_count"], ada["following_count"], ada["posts_count"], ada["likes_count"], ada["listed_count"]) == (120, 80, 3400, 55, 2)
    assert ada["has_avatar"] is True and ada["has_url"] is True and ada["has_location"] is True
    assert ada["verified"] is False and ada["private"] is False
    assert json.loads(ada["raw"])["screen_name"] == "ada_example"
    bot = rows["9002"]
    assert bot["has_avatar"] is False and bot["has_url"] is False and bot["bio_length"] == 0
    assert bot["handle_digits"] == 8 and bot["last_active_at"] is None
    # newest first: the last good line is the oldest follower (rank 0)
    assert [rows[i]["follow_rank"] for i in ("9001", "9002", "9008")] == [2, 1, 0]
    rejects = parsed.rejects.select("line", "column", "reason").rows()
    assert rejects == [
        (4, "created_at", "unparseable date: 'yesterday-ish'"),
        (5, "followers_count", "negative count: -3"),
        (6, "followers_count", "not a number: 'lots'"),
        (7, "(record)", "invalid JSON: Expecting value (column 58)"),
        (8, "id_str", "missing follower_id"),
        (9, "id_str", "duplicate follower_id 9001 (first seen on line 1)"),
        (10, "status", "expected an object, found str"),
    ]
    assert parsed.rejects["file"].unique().to_list() == [str(FIX / "twitter_v1.jsonl")]
    assert parsed.rejects.filter(pl.col("line") == 7)["raw"].item().startswith('{"id_str": "9006"')


def test_twitter_v1_json_array_lines_are_element_starts():
    parsed = read_followers(FIX / "twitter_v1.json")
    assert parsed.detected.fmt == "json"
    rows = by_id(parsed.followers)
    assert rows["501"]["has_avatar"] is False  # default_profile_images URL
    assert rows["503"]["following_count"] is None
    assert parsed.rejects.select("line", "column", "reason").rows() == [(12, "friends_count", "not a number: 'many'")]


def test_twitter_v2_pages_and_users():
    pages = read_followers(FIX / "twitter_v2_pages.jsonl")
    assert pages.detected.describe() == "detected: Twitter v2 response pages, JSONL, order newest-first"
    rows = by_id(pages.followers)
    assert [rows[i]["follow_rank"] for i in ("2244994945", "783214", "12")] == [2, 1, 0]
    assert rows["2244994945"]["created_at"] == utc(2013, 12, 14, 4, 35, 55)
    assert (rows["783214"]["followers_count"], rows["783214"]["posts_count"], rows["783214"]["listed_count"]) == (1000, 15000, 90)
    assert rows["2244994945"]["likes_count"] == 5
    users = read_followers(FIX / "twitter_v2_users.jsonl")
    assert users.detected.layout == "v2 users" and users.followers.height == 2


def test_mib_csv_fixture():
    parsed = read_followers(FIX / "mib.csv")
    assert parsed.detected.describe() == "detected: Twitter v1.1 users, CSV (MIB columns), order unknown"
    rows = by_id(parsed.followers)
    human, fake = rows["111"], rows["222"]
    assert human["truth_label"] == "real" and fake["truth_label"] == "fake"
    assert human["has_avatar"] is True and fake["has_avatar"] is False
    assert human["observed_at"] == utc(2015, 2, 14, 11, 32, 57)
    assert human["bio"] == 'Likes "quotes", and commas'
    assert fake["bio_length"] == 0
    # protected / verified are empty in every row: unknown, not false
    assert human["private"] is None and human["verified"] is None
    assert human["follow_rank"] is None
    assert parsed.rejects.select("line", "column", "reason").rows() == [(4, "followers_count", "not a number: 'x12'")]
    assert parsed.rejects["raw"].item() == (FIX / "mib.csv").read_text().splitlines()[3]  # the line as in the file


def test_instagram_csv_export():
    parsed = read_followers(FIX / "instagram.csv")
    assert parsed.detected.platform == "instagram"
    rows = by_id(parsed.followers)
    anna = rows["anna.photos"]
    assert anna["handle"] == "anna.photos" and anna["display_name"] == "Anna"
    assert (anna["followers_count"], anna["following_count"], anna["posts_count"]) == (1520, 310, 245)
    assert anna["private"] is False and anna["verified"] is False and anna["has_avatar"] is True
    assert rows["user83749211"]["private"] is True
    assert parsed.rejects.select("line", "column", "reason").rows() == [(4, "Is Private", "not a boolean: 'maybe'")]


def test_instafake_json():
    parsed = read_followers(FIX / "instafake.json")
    rows = by_id(parsed.followers)
    assert set(rows) == {"row-1", "row-2"}
    assert rows["row-1"]["truth_label"] == "fake" and rows["row-2"]["truth_label"] == "real"
    assert rows["row-2"]["bio_length"] == 40 and rows["row-2"]["handle_length"] == 8 and rows["row-2"]["handle_digits"] == 2
    assert rows["row-1"]["private"] is True and rows["row-1"]["has_avatar"] is True
    assert parsed.followers["follow_rank"].null_count() == 2


def test_bluesky_getfollowers_pages():
    parsed = read_followers(FIX / "bluesky_followers.jsonl")
    assert parsed.detected.describe() == "detected: Bluesky getFollowers pages, JSONL, order newest-first"
    assert parsed.account == "brand.example.com"
    rows = by_id(parsed.followers)
    assert [rows[d]["follow_rank"] for d in ("did:plc:aaa111", "did:plc:bbb222", "did:plc:ccc333")] == [2, 1, 0]
    spam = rows["did:plc:bbb222"]
    assert spam["moderation_labels"] == ["spam"]  # the negated label is not kept
    assert spam["has_avatar"] is False and spam["followers_count"] is None
    assert rows["did:plc:aaa111"]["has_avatar"] is True
    assert rows["did:plc:ccc333"]["created_at"] == utc(2023, 4, 1, 12)


def test_bluesky_getprofiles_page_pretty_printed():
    parsed = read_followers(FIX / "bluesky_profiles.json")
    rows = by_id(parsed.followers)
    a = rows["did:plc:aaa111"]
    assert (a["followers_count"], a["following_count"], a["posts_count"]) == (12, 340, 2)
    assert a["verified"] is True
    assert parsed.rejects.select("line", "column", "reason").rows() == [(14, "followersCount", "not a number: 'n/a'")]


def test_mastodon_accounts_array():
    parsed = read_followers(FIX / "mastodon_accounts.json")
    assert parsed.detected.platform == "mastodon" and parsed.detected.fmt == "json"
    rows = by_id(parsed.followers)
    alice, bot = rows["109302"], rows["109303"]
    assert alice["handle"] == "alice@example.social" and alice["handle_length"] == 5
    assert alice["bio"] == "I write & draw\ndaily"
    assert alice["has_url"] is True and alice["has_avatar"] is True
    assert alice["last_active_at"] == utc(2024, 5, 1)
    assert bot["has_avatar"] is False and bot["private"] is True and bot["self_declared_bot"] is True
    assert bot["has_url"] is False and bot["last_active_at"] is None


def test_mastodon_pages_jsonl():
    parsed = read_followers(FIX / "mastodon_pages.jsonl")
    assert parsed.detected.layout == "accounts (pages)"
    assert by_id(parsed.followers)["2"]["last_active_at"] == utc(2024, 1, 1)
    assert parsed.rejects.select("line", "column", "reason").rows() == [(2, "last_status_at", "unparseable date: 'not a date'")]


def test_follower_id_list_with_profiles():
    parsed = read_followers(FIX / "4242_network.json", profiles=FIX / "network_profiles.jsonl")
    assert parsed.account == "4242"
    assert parsed.detected.order == "newest-first"
    assert parsed.n_without_profile == 1
    rows = by_id(parsed.followers)
    assert set(rows) == {"7000", "7001", "7002", "7003"}  # the profile of a non-follower is ignored
    assert {i: rows[i]["follow_rank"] for i in rows} == {"7003": 3, "7002": 2, "7001": 1, "7000": 0}
    assert rows["7001"]["handle"] is None and rows["7001"]["created_at"] is None
    assert rows["7002"]["handle"] == "bought00217" and rows["7002"]["has_avatar"] is False
    assert rows["7000"]["account"] == "4242"


def test_follower_id_list_oldest_first_override():
    parsed = read_followers(FIX / "4242_network.json", order="oldest-first")
    assert by_id(parsed.followers)["7003"]["follow_rank"] == 0
    assert parsed.n_without_profile == 4


def test_rank_map_ranks_win():
    parsed = read_followers(FIX / "ranks.json", order="newest-first")
    rows = by_id(parsed.followers)
    assert {i: rows[i]["follow_rank"] for i in rows} == {"7000": 0, "7001": 1, "7002": 2, "7003": 3}
    assert rows["7001"]["created_at"] == utc(2014, 5, 13, 16, 53, 20)


def test_generic_csv_with_map():
    parsed = read_followers(
        FIX / "generic.csv",
        mapping=["follower_id=user_ref", "handle=nick", "followers_count=fans", "created_at=joined", "self_declared_bot=robot"],
    )
    assert parsed.detected.describe() == "detected: generic followers, CSV (mapped columns), order unknown"
    rows = by_id(parsed.followers)
    assert rows["u-1"]["self_declared_bot"] is False and rows["u-2"]["self_declared_bot"] is True
    assert rows["u-2"]["followers_count"] is None
    assert rows["u-2"]["created_at"] == utc(2021, 3, 5, 10, 11, 12)
    assert parsed.rejects.select("line", "column", "reason").rows() == [(4, "joined", "unparseable date: 'not-a-date'")]


def test_gzip_detected_by_magic_not_name(tmp_path):
    target = tmp_path / "followers.data"  # no .gz suffix on purpose
    target.write_bytes(gzip.compress((FIX / "bluesky_followers.jsonl").read_bytes()))
    parsed = read_followers(target)
    assert parsed.detected.compressed
    assert parsed.detected.describe() == "detected: Bluesky getFollowers pages, JSONL (gzip), order newest-first"
    assert parsed.followers.height == 3


def test_order_override_and_unknown(tmp_path):
    unknown = read_followers(FIX / "twitter_v2_users.jsonl", order="unknown")
    assert unknown.followers["follow_rank"].null_count() == 2
    oldest = read_followers(FIX / "twitter_v2_users.jsonl", order="oldest-first")
    assert by_id(oldest.followers)["100"]["follow_rank"] == 0


def test_platform_override_is_honoured(tmp_path):
    target = tmp_path / "x.csv"
    shutil.copy(FIX / "generic.csv", target)
    parsed = read_followers(target, platform="mastodon", mapping={"follower_id": "user_ref"})
    assert parsed.detected.platform == "mastodon"
    assert parsed.followers["platform"].unique().to_list() == ["mastodon"]


# -- the real datasets (skipped when /work/shared/data is absent) ----------------------------------
def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"dataset not present: {path}")
    return path


def test_real_cresci_2015_users_csv():
    parsed = read_followers(need(DATA / "cresci-2015" / "users.csv"))
    f = parsed.followers
    assert f.height == 4458 and parsed.rejects.height == 0
    assert parsed.detected.describe() == "detected: Twitter v1.1 users, CSV (MIB columns), order unknown"
    assert f["truth_label"].value_counts().sort("truth_label").rows() == [("fake", 2508), ("real", 1950)]
    assert f["created_at"].null_count() == 0 and f["observed_at"].null_count() == 0
    first = by_id(f)["24503"]
    assert first["created_at"] == utc(2006, 11, 27, 6, 55, 12)
    assert first["observed_at"] == utc(2015, 2, 14, 11, 32, 57)
    assert f.filter(pl.col("has_avatar").not_())["follower_id"].len() > 0


def test_real_instafake():
    fake = read_followers(need(DATA / "instafake" / "fake-v1.0" / "fakeAccountData.json"))
    real = read_followers(need(DATA / "instafake" / "fake-v1.0" / "realAccountData.json"))
    assert (fake.followers.height, real.followers.height) == (200, 994)
    assert fake.followers["truth_label"].unique().to_list() == ["fake"]
    assert real.followers["truth_label"].unique().to_list() == ["real"]
    assert fake.rejects.height == real.rejects.height == 0


def test_real_follower_analyzer_network_with_profiles():
    base = need(DATA / "follower-analyzer-sample")
    parsed = read_followers(base / "1664461146_network.json.gz", profiles=base / "follower_profiles_sample.jsons.gz")
    f = parsed.followers
    assert parsed.account == "1664461146"
    assert f.height + parsed.rejects.filter(pl.col("file").str.contains("network")).height == 5189
    assert sorted(f["follow_rank"].to_list()) == list(range(f.height))
    assert parsed.n_without_profile == f["handle"].null_count()
    assert parsed.n_without_profile < f.height * 0.05
    assert f["created_at"].null_count() == parsed.n_without_profile


def test_real_follower_analyzer_rank_map():
    parsed = read_followers(need(DATA / "follower-analyzer-sample" / "sample_follower_data.json.gz"))
    f = parsed.followers
    assert f.height == 28854 and parsed.detected.order == "file"
    assert f["follow_rank"].min() == 0 and f["created_at"].null_count() == 0


def test_instagram_data_download_followers_export(tmp_path):
    parsed = read_followers(FIX / "instagram_followers_1.json")
    assert parsed.detected.describe() == "detected: Instagram followers export, JSON, ranks from the file"
    rows = by_id(parsed.followers)
    # the follow timestamps give the order: early_friend (2017) < newer_layout_user (2020) < recent_fan (2023)
    assert {h: rows[h]["follow_rank"] for h in rows} == {"early_friend": 0, "newer_layout_user": 1, "recent_fan": 2}
    wrapped = tmp_path / "followers.json"
    wrapped.write_text(json.dumps({"relationships_followers": json.loads((FIX / "instagram_followers_1.json").read_text())}))
    again = read_followers(wrapped)
    assert again.followers.sort("follower_id").drop("raw").equals(parsed.followers.sort("follower_id").drop("raw"))


def test_rank_column_in_csv_wins(tmp_path):
    target = tmp_path / "ranked.csv"
    target.write_text("handle,rank,followers\na,2,1\nb,0,2\nc,1,3\n")
    parsed = read_followers(target, order="newest-first")
    assert parsed.detected.order == "file"
    assert {r["follower_id"]: r["follow_rank"] for r in parsed.followers.iter_rows(named=True)} == {"a": 2, "b": 0, "c": 1}


def test_twitter_v2_single_user_response(tmp_path):
    target = tmp_path / "one.json"
    target.write_text(json.dumps({"data": {"id": "5", "username": "solo", "public_metrics": {"followers_count": 3}}}))
    parsed = read_followers(target)
    assert parsed.detected.layout == "v2 users"
    assert parsed.followers.select("follower_id", "handle", "followers_count").rows() == [("5", "solo", 3)]
