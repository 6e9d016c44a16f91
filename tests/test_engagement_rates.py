"""Engagement rates, the interval carried from the real share, and the what-if of buying (hand-computed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from click.testing import CliRunner

from followaudit.cli import cli
from followaudit.errors import InputError, MissingColumnsError
from followaudit.estimate import Share
from followaudit.reach.engagement import (
    engagement_section,
    engagement_trend,
    load_posts,
    rate_interval,
    what_if,
    with_engagements,
)
from followaudit.store import Store


def share(p: float, lo: float, hi: float, label: str = "fake") -> Share:
    return Share(label, p, lo, hi, 0, 100, "Wilson score 95% interval")


def test_buying_10000_followers_turns_25_percent_into_a_quarter_of_a_percent() -> None:
    # the example: 25 of 100 followers engage; buy 10,000 followers
    out = what_if(100, 10_000, 25.0, share(0.0, 0.0, 0.0))
    assert out["followers_before"] == 100 and out["followers_after"] == 10_100
    assert out["engagement_rate_before"] == pytest.approx(0.25)
    assert out["engagement_rate_after"] == pytest.approx(25 / 10_100)  # 0.2475 %
    assert round(100 * out["engagement_rate_after"], 2) == 0.25
    assert out["fake_share_after"] == pytest.approx({"share": 10_000 / 10_100, "low": 10_000 / 10_100, "high": 10_000 / 10_100})


def test_what_if_carries_the_fake_share_interval_through_both_directions() -> None:
    out = what_if(100, 10_000, 25.0, share(0.10, 0.05, 0.20))
    after = out["fake_share_after"]
    assert after["share"] == pytest.approx(10_010 / 10_100)
    assert after["low"] == pytest.approx(10_005 / 10_100)
    assert after["high"] == pytest.approx(10_020 / 10_100)
    assert after["low"] <= after["share"] <= after["high"]
    # the reverse: without its fake followers (90, between 80 and 95) the rate would be 25/90
    without = out["without_fake"]
    assert without["followers"] == pytest.approx({"estimate": 90.0, "low": 80.0, "high": 95.0})
    assert without["engagement_rate"]["rate"] == pytest.approx(25 / 90)
    assert without["engagement_rate"]["low"] == pytest.approx(25 / 95)
    assert without["engagement_rate"]["high"] == pytest.approx(25 / 80)


def test_what_if_without_engagement_says_what_is_missing_and_rejects_bad_input() -> None:
    out = what_if(100, 50, None, share(0.2, 0.1, 0.3))
    assert out["engagement_rate_after"] is None and "posts" in out["missing"]
    assert out["fake_share_after"]["share"] == pytest.approx((20 + 50) / 150)
    with pytest.raises(InputError):
        what_if(0, 10, 1.0, share(0.1, 0.0, 0.2))
    with pytest.raises(InputError):
        what_if(10, -1, 1.0, share(0.1, 0.0, 0.2))


def test_rate_on_real_followers_is_the_decreasing_map_of_the_real_share_bounds() -> None:
    got = rate_interval(25.0, 100, share(0.5, 0.4, 0.625, "real"))
    assert got == pytest.approx({"rate": 0.5, "low": 0.4, "high": 0.625})  # 25/(100·0.5), 25/62.5, 25/40
    assert rate_interval(25.0, 100, share(0.1, 0.0, 0.2, "real"))["high"] is None  # lo = 0: unbounded
    assert rate_interval(25.0, 100, None)["rate"] is None


def posts_frame(engagements: list[int], start: datetime | None = None) -> pl.DataFrame:
    start = start or datetime(2025, 1, 1, tzinfo=UTC)
    n = len(engagements)
    return pl.DataFrame({
        "post_id": [f"p{i}" for i in range(n)],
        "created_at": [start + timedelta(days=10 * i) for i in range(n)],
        "likes": engagements, "replies": [0] * n, "reposts": [0] * n,
        "quotes": [None] * n, "views": [None] * n,
    }, schema_overrides={"quotes": pl.Int64, "views": pl.Int64, "created_at": pl.Datetime("us", "UTC")})


def test_engagement_section_numbers() -> None:
    posts = posts_frame([10, 20, 30]).with_columns(pl.Series("replies", [1, 2, 3]), pl.Series("reposts", [0, 4, None], dtype=pl.Int64))
    shares = {"fake": share(0.3, 0.2, 0.4), "inactive": share(0.2, 0.1, 0.3, "inactive"), "real": share(0.5, 0.4, 0.6, "real")}
    s = engagement_section(with_engagements(posts), 200, shares)
    # engagements 11, 26, 33 -> mean 70/3
    assert s["available"] and s["posts"] == 3
    assert s["engagements_per_post"]["mean"] == pytest.approx(70 / 3)
    assert s["engagement_rate"] == pytest.approx(70 / 3 / 200)
    real = s["engagement_rate_real"]
    assert real["rate"] == pytest.approx(70 / 3 / 100)
    # post-to-post variation widens the interval beyond the real share's own [E/(F·hi), E/(F·lo)]
    assert real["low"] < 70 / 3 / 120 and real["high"] > 70 / 3 / 80
    assert "bootstrap over posts" in real["method"]
    assert "today's follower count" in s["followers_at_post"]["source"]  # no count history here
    assert [p["engagements"] for p in s["per_post"]] == [33, 26, 11]  # newest first
    assert s["trend"]["available"] is False and "history" in s["trend"]["missing"]


def test_engagement_section_says_what_is_missing() -> None:
    empty = posts_frame([]).head(0)
    assert "import-posts" in engagement_section(with_engagements(empty), 100, None)["missing"]


def history_frame(followers: list[int], start: datetime | None = None) -> pl.DataFrame:
    start = start or datetime(2025, 1, 1, tzinfo=UTC)
    return pl.DataFrame({"date": [(start + timedelta(days=10 * i)).date() for i in range(len(followers))], "followers": followers})


def test_trend_tells_flat_engagement_from_engagement_that_follows_the_count() -> None:
    counts = [1000 * 2 ** (i / 3) for i in range(12)]  # the count grows 16-fold
    hist = history_frame([int(c) for c in counts])
    flat = engagement_trend(with_engagements(posts_frame([50, 52, 49, 51, 50, 48, 53, 50, 49, 51, 50, 52])), hist)
    assert flat["available"] and flat["elasticity"]["high"] < 0.5 and "did not keep up" in flat["verdict"]
    following = engagement_trend(with_engagements(posts_frame([int(c / 20) for c in counts])), hist)
    assert following["elasticity"]["slope"] == pytest.approx(1.0, abs=0.05) and "grew" in following["verdict"]
    too_few = engagement_trend(with_engagements(posts_frame([1, 2, 3])), hist)
    assert too_few["available"] is False


def test_load_posts_aliases_and_rejects(tmp_path) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        "Post ID,Time,Likes,Replies,Shares,Views\n"
        "a,2026-01-01T10:00:00Z,\"1,204\",2,1,100\n"
        "b,2026-01-02,5,,0,\n"
        "c,yesterday,1,1,1,1\n"
        "d,2026-01-03 08:00,-4,1,1,1\n"
        "a,2026-01-04,1,1,1,1\n"
    )
    loaded = load_posts(path)
    assert loaded.rows["post_id"].to_list() == ["a", "b"]
    assert loaded.rows["likes"].to_list() == [1204, 5] and loaded.rows["reposts"].to_list() == [1, 0]
    assert loaded.rows["replies"].to_list() == [2, None]
    assert loaded.rejects.select("line", "reason").rows() == [
        (4, "unreadable time"), (5, "likes is not a non-negative count"), (6, "duplicate post id")]
    (tmp_path / "nocounts.csv").write_text("id,time\nx,2026-01-01\n")
    with pytest.raises(MissingColumnsError):
        load_posts(tmp_path / "nocounts.csv")


def test_load_posts_json_and_jsonl(tmp_path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"posts": [{"id": "1", "created_at": "2026-02-01T00:00:00Z", "likeCount": 3, "repostCount": 1}]}))
    (tmp_path / "p.jsonl").write_text('{"id": "1", "date": "2026-02-01", "favourites_count": 7}\n{"id": "2", "date": "2026-02-02", "favourites_count": 8}\n')
    assert load_posts(tmp_path / "p.json").rows.select("likes", "reposts").row(0) == (3, 1)
    assert load_posts(tmp_path / "p.jsonl").rows["likes"].to_list() == [7, 8]


@pytest.fixture
def workspace(tmp_path):
    """A 100-follower snapshot of which 10 are fake (labels stored)."""
    db = tmp_path / "w.duckdb"
    with Store(db) as store:
        sid = store.create_snapshot(platform="twitter", account="acme", source="test", followers_reported=100)
        ids = [str(i) for i in range(100)]
        # profiles with counts: a usernames-only snapshot would give no fake share at all
        store.replace_followers(sid, pl.DataFrame({"follower_id": ids, "handle": [f"u{i}" for i in ids],
                                                   "followers_count": [50] * 100, "following_count": [80] * 100,
                                                   "posts_count": [60] * 100}))
        labels = pl.DataFrame({"follower_id": ids, "label": ["fake"] * 10 + ["real"] * 90,
                               "probability": [None] * 100, "reasons": [[]] * 100},
                              schema_overrides={"probability": pl.Float64, "reasons": pl.List(pl.Utf8)})
        store.save_labels(sid, "rules", labels)
    return db, sid


def test_cli_import_posts_then_whatif_json(workspace, tmp_path) -> None:
    db, sid = workspace
    posts = tmp_path / "posts.csv"
    posts.write_text("id,time,likes,replies,reposts\na,2026-01-01,20,3,2\nb,2026-01-08,15,5,5\nc,bad,1,1,1\n")
    runner = CliRunner()
    got = runner.invoke(cli, ["import-posts", str(posts), "--snapshot", str(sid), "--db", str(db), "--format", "json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["posts"] == 2 and json.loads(got.stdout)["rejects"]["count"] == 1
    got = runner.invoke(cli, ["whatif", "acme", "--buy", "10000", "--db", str(db), "--format", "json"])
    assert got.exit_code == 0, got.output
    out = json.loads(got.stdout)
    assert out["followers_before"] == 100 and out["followers_after"] == 10_100
    assert out["engagement_rate_before"] == pytest.approx(0.25)  # (25 + 25) / 2 engagements per post
    assert out["engagement_rate_after"] == pytest.approx(25 / 10_100)
    assert set(out["fake_share_after"]) == {"share", "low", "high"}
    assert out["fake_share_after"]["share"] == pytest.approx(10_010 / 10_100)
    assert out["fake_share_after"]["low"] < out["fake_share_after"]["share"] < out["fake_share_after"]["high"]
    text = runner.invoke(cli, ["whatif", str(sid), "--buy", "100", "--engagements", "5", "--db", str(db)])
    assert text.exit_code == 0 and "100 → 200" in text.stdout and "2.50%" in text.stdout


def test_sections_use_the_corrected_shares_when_the_model_gives_them() -> None:
    from followaudit.report import Report

    raw = {"fake": share(0.3, 0.25, 0.35), "inactive": share(0.1, 0.05, 0.15, "inactive"), "real": share(0.6, 0.55, 0.65, "real")}
    report = Report(account="a", platform="twitter", snapshot=1, source=None, taken_at=None, followers_audited=100,
                    followers_reported=None, sample_design={}, method="model", method_detail={}, confidence_level=0.95,
                    inactive_days=90, shares=raw, top_reasons=[], activity_unknown=0)
    assert report.headline_shares() == raw
    report.corrected = {"fake": {"share": 0.2, "low": 0.1, "high": 0.3, "method": "Rogan-Gladen"}}
    got = report.headline_shares()
    assert (got["fake"].share, got["fake"].low, got["fake"].high, got["fake"].method) == (0.2, 0.1, 0.3, "Rogan-Gladen")
    assert got["real"] is raw["real"]


def test_reach_files_parse_dates_with_the_importers_parser() -> None:
    """One date parser for followers and reach files; slash dates follow the column, never assumed US."""
    from followaudit.sources.formats.common import parse_dates

    texts = ["Mar 4, 2025", "2025-03-04", "1700000000", "2025-03-04T05:06:07+02:00", "2025-03-04 05:06", "junk", "2025"]
    got = parse_dates(pl.Series("t", texts)).to_list()
    day = datetime(2025, 3, 4, tzinfo=UTC)
    assert got[:2] == [day, day]
    assert got[2] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert got[3] == datetime(2025, 3, 4, 3, 6, 7, tzinfo=UTC) and got[4] == datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
    assert got[5] is None and got[6] is None  # a bare year is not a time (nor epoch seconds)
    assert parse_dates(pl.Series("t", ["25/03/2025", "04/03/2025"])).to_list() == [datetime(2025, 3, 25, tzinfo=UTC), day]
    assert parse_dates(pl.Series("t", ["03/25/2025", "03/04/2025"])).to_list() == [datetime(2025, 3, 25, tzinfo=UTC), day]
    assert parse_dates(pl.Series("t", ["03/04/2025", "02/01/2025"])).to_list() == [None, None]  # ambiguous: unreadable


def test_each_post_is_divided_by_the_follower_count_at_its_time() -> None:
    # 100 followers when the first two posts went out, 1,000 when the last did; today 2,000
    posts = posts_frame([10, 30, 100])
    days = posts["created_at"].dt.date().to_list()
    history = pl.DataFrame({"date": [days[0], days[2]], "followers": [100, 1_000]})
    shares = {"fake": share(0.5, 0.5, 0.5), "inactive": share(0.0, 0.0, 0.0, "inactive"), "real": share(0.5, 0.5, 0.5, "real")}
    s = engagement_section(with_engagements(posts), 2_000, shares, history)
    assert s["engagement_rate"] == pytest.approx((10 / 100 + 30 / 100 + 100 / 1_000) / 3)  # not 140 / 3 / 2,000
    assert s["engagement_rate_real"]["rate"] == pytest.approx(s["engagement_rate"] / 0.5)
    assert {p["followers_at_post"] for p in s["per_post"]} == {100.0, 1_000.0}
    assert "count history" in s["followers_at_post"]["source"]
    # a real share known exactly leaves only the post-to-post variation in the interval
    assert s["engagement_rate_real"]["low"] < s["engagement_rate_real"]["rate"] < s["engagement_rate_real"]["high"]


def test_real_rate_interval_unbounded_when_the_real_share_may_be_zero() -> None:
    posts = posts_frame([10, 20, 30])
    shares = {"real": share(0.1, 0.0, 0.3, "real")}
    s = engagement_section(with_engagements(posts), 200, shares)
    assert s["engagement_rate_real"]["high"] is None
