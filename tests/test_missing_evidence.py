"""Missing evidence stays missing: importers leave absent fields null, rules and reasons never state
them, ages are measured when the data was observed, too little data gives no fake share, and every
output quotes one headline."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
import pytest
from click.testing import CliRunner

from followaudit.audit import audit_snapshot
from followaudit.classify import label_followers
from followaudit.classify.features import feature_exprs
from followaudit.classify.rules import R_DEFAULT_AVATAR, label_rules
from followaudit.cli import cli
from followaudit.cli.app import main
from followaudit.render.html import render_html
from followaudit.render.text import render_text
from followaudit.report.evidence import (
    PROFILE_FIELDS,
    evidence_lines,
    fields_known,
    known_counts_frame,
    known_counts_sql,
    withheld_reason,
)
from followaudit.schema import conform
from followaudit.sources.files import read_followers
from followaudit.sources.ingest import import_file
from followaudit.sources.synth import write_synth
from followaudit.store import Store
from followaudit.web import create_app

FIELD_WORDS = set(PROFILE_FIELDS.values())


def run(capsys, *args: str | Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def instagram_export(path: Path) -> Path:
    """Instagram "Download your information" followers_1.json: usernames and follow times only."""
    rows = [("alice", 1_700_000_000), ("bob", 1_690_000_000), ("carol", 1_710_000_000)]
    path.write_text(json.dumps([
        {"title": "", "media_list_data": [], "string_list_data": [
            {"href": f"https://www.instagram.com/{name}", "value": name, "timestamp": ts}]}
        for name, ts in rows
    ]))
    return path


# -- importers ---------------------------------------------------------------------------------------
def test_instagram_export_keeps_follow_times_and_order(tmp_path) -> None:
    parsed = read_followers(instagram_export(tmp_path / "followers_1.json"))
    f = parsed.followers.sort("follow_rank")
    assert f["handle"].to_list() == ["bob", "alice", "carol"]  # oldest follow first
    assert f["followed_at"].to_list() == [datetime.fromtimestamp(t, UTC) for t in (1_690_000_000, 1_700_000_000, 1_710_000_000)]
    for column in ("has_avatar", "followers_count", "posts_count", "bio_length", "created_at"):
        assert f[column].null_count() == f.height, column  # nothing invented


def test_instagram_relationships_followers_object_keeps_follow_times(tmp_path) -> None:
    path = tmp_path / "followers.json"
    path.write_text(json.dumps({"relationships_followers": [
        {"title": "", "string_list_data": [{"href": "https://www.instagram.com/zed", "value": "zed", "timestamp": 1_650_000_000}]}]}))
    f = read_followers(path).followers
    assert f["followed_at"].to_list() == [datetime.fromtimestamp(1_650_000_000, UTC)]


def test_bluesky_file_without_avatar_fields_leaves_has_avatar_unknown(tmp_path) -> None:
    rec = {"did": "did:plc:a", "handle": "a.bsky.social", "followersCount": 3, "followsCount": 5, "postsCount": 0}
    path = tmp_path / "profiles.jsonl"
    path.write_text("\n".join(json.dumps({**rec, "did": f"did:plc:{i}"}) for i in range(3)))
    assert read_followers(path).followers["has_avatar"].null_count() == 3
    # when the file does carry avatars, a profile without one has none (the API omits it when unset)
    path.write_text(json.dumps({**rec, "avatar": "https://cdn.bsky.app/x.jpg"}) + "\n" + json.dumps({**rec, "did": "did:plc:b"}))
    assert read_followers(path).followers.sort("follower_id")["has_avatar"].to_list() == [True, False]


def test_bluesky_indexed_at_tells_the_observation_time(tmp_path) -> None:
    path = tmp_path / "profiles.jsonl"
    recs = [{"did": f"did:plc:{i}", "handle": f"u{i}.bsky.social", "followersCount": 3, "followsCount": 5, "postsCount": 1,
             "createdAt": "2024-01-01T00:00:00Z", "indexedAt": f"2025-0{i + 1}-01T00:00:00Z"} for i in range(3)]
    path.write_text("\n".join(json.dumps(r) for r in recs))
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, path).snapshot_id
        snap = store.snapshot(sid)
    assert snap.taken_at == datetime(2025, 3, 1, tzinfo=UTC)
    assert snap.settings["observed"]["source"] == "record"


def test_screen_names_csv_imports_as_a_list_of_handles(tmp_path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("screen_name\nalice\nbob99\ncarol\n")
    f = read_followers(path).followers
    assert f["handle"].to_list() == ["alice", "bob99", "carol"]
    assert f["has_avatar"].null_count() == 3 and f["posts_count"].null_count() == 3


# -- too little to judge -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["names", "instagram", "few"])
def test_too_little_to_judge_gives_one_line_and_exit_1_and_keeps_the_import(capsys, tmp_path, kind) -> None:
    if kind == "names":
        path = tmp_path / "names.csv"
        path.write_text("screen_name\n" + "\n".join(f"user{i}" for i in range(50)) + "\n")
    elif kind == "instagram":
        path = instagram_export(tmp_path / "followers_1.json")
    else:  # a handle and one count: fewer fields than any labelling method needs
        path = tmp_path / "few.csv"
        path.write_text("username,followers\n" + "\n".join(f"user{i},{i}" for i in range(50)) + "\n")
    db = tmp_path / "w.duckdb"
    code, out, err = run(capsys, "audit", path, "--db", db)
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "too little to judge" in lines[0] and "Traceback" not in err
    assert "follower/following/post counts" in lines[0] and ("collect" in lines[0] or "export" in lines[0] or "import" in lines[0])
    with Store(db, read_only=True) as store:
        assert store.list_snapshots().height == 1  # the import is kept
    code, out, _ = run(capsys, "audit", path, "--db", db, "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["withheld"].startswith("too little to judge")  # an audit without a fake share
    assert report["headline"] == {} and report["shares"] == {} and report["corrected"] is None
    assert report["top_reasons"] == []
    assert report["evidence"]["fields_known"]["has_avatar"] == 0.0


def test_withheld_report_renders_the_line_in_text_and_html(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    with Store(db) as store:
        sid = import_file(store, instagram_export(tmp_path / "followers_1.json")).snapshot_id
        report = audit_snapshot(store, sid, method="model").report
    assert report.withheld and report.headline_shares() == {}
    html = render_html(report)
    assert 'id="withheld"' in html and "too little to judge" in html and 'id="headline-fake"' not in html
    from io import StringIO

    buf = StringIO()
    render_text(report, file=buf)
    assert "No fake share: too little to judge" in buf.getvalue()
    assert report.sections["whatif"]["available"] is False


def test_withheld_rule_counts_fields_known_for_most_followers() -> None:
    known = {f: 0.0 for f in PROFILE_FIELDS}
    assert withheld_reason(known, 10, "bluesky") is not None and "collect bluesky" in withheld_reason(known, 10, "bluesky")
    known.update(followers_count=1.0, following_count=1.0, posts_count=0.4)
    assert withheld_reason(known, 10, None) is not None  # posts known for too few
    known["posts_count"] = 0.9
    assert withheld_reason(known, 10, None) is None
    # a follower page without counts (creation date, picture, bio): the rules could barely fire
    no_counts = {f: 0.0 for f in PROFILE_FIELDS} | {"created_at": 1.0, "has_avatar": 1.0, "bio": 1.0}
    assert withheld_reason(no_counts, 10, "bluesky") is not None


# -- reasons never name a field the data lacks ---------------------------------------------------------
def lacking_frame() -> pl.DataFrame:
    """Followers that look empty on the fields they carry, and carry no avatar, url, location, bio."""
    n = 40
    return conform(pl.DataFrame({
        "platform": ["bluesky"] * n, "follower_id": [f"d{i}" for i in range(n)], "handle": [f"x{i}q9z.bsky.social" for i in range(n)],
        "created_at": [datetime(2020, 1, 1, tzinfo=UTC)] * n, "followers_count": [0] * n,
        "following_count": [900 + i for i in range(n)], "posts_count": [0] * n,
    }))


@pytest.mark.parametrize("method", ["rules", "model"])
def test_no_reason_names_a_field_the_data_lacks(method) -> None:
    frame = lacking_frame()
    labels = label_followers(frame, method=method, as_of=datetime(2025, 7, 1, tzinfo=UTC), platform="bluesky")
    reasons = [r for rs in labels["reasons"].to_list() for r in rs]
    assert reasons, "the followers should get reasons from the fields they do carry"
    for banned in ("profile picture", "bio", "website", "location", "private account", "public account"):
        assert not any(banned in r for r in reasons), banned
    assert R_DEFAULT_AVATAR not in reasons


def test_rules_do_not_score_a_null_field_as_its_worst_value() -> None:
    frame = lacking_frame().with_columns(pl.lit(5_000).alias("followers_count"), pl.lit(500).alias("posts_count"),
                                         pl.lit(100).alias("following_count"))
    labels = label_rules(frame, as_of=datetime(2025, 7, 1, tzinfo=UTC))
    # an active account with a healthy ratio, no avatar/bio/location data: nothing fires
    assert set(labels["label"].to_list()) == {"real"}
    # an unknown follower count is not 0 followers: the following/followers ratio cannot fire
    from followaudit.classify.rules import rule_columns

    unknown = frame.with_columns(pl.lit(None, pl.Int64).alias("followers_count"), pl.lit(5_000).alias("following_count"))
    assert not unknown.select(rule_columns(None)["sb_ratio"]).to_series().any()


# -- observation time -------------------------------------------------------------------------------------
def test_jaschparmar_is_measured_at_its_crawl_time_with_no_invented_avatar(shared_data, tmp_path) -> None:
    path = shared_data / "bluesky-jaschparmar" / "unlabeled_4k_dataset.json.gz"
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, path).snapshot_id
        snap = store.snapshot(sid)
        followers = store.followers(sid)
        report = audit_snapshot(store, sid, method="model").report
        labels = store.labels(sid, "model")
    assert datetime(2025, 5, 1, tzinfo=UTC) < snap.taken_at < datetime(2025, 9, 1, tzinfo=UTC)  # mid-2025, not today
    assert report.evidence["observed_at"]["source"] == "dataset"
    assert snap.platform == "bluesky"  # handles name.bsky.social
    assert followers["has_avatar"].null_count() == followers.height
    assert report.evidence["fields_known"]["has_avatar"] == 0.0
    assert not any("profile picture" in r for rs in labels["reasons"].to_list() for r in rs)
    assert not any("profile picture" in r for r, _ in report.top_reasons)
    # ages at the crawl: the dataset's own account_age (days) equals the age the features measure
    raw = json.loads(gzip.decompress(path.read_bytes()))
    age = {r["handle"]: r["account_age"] for r in raw}
    measured = followers.select("handle", feature_exprs(snap.taken_at)["age_days"].alias("age")).drop_nulls()
    diffs = [abs(a - age[h]) for h, a in measured.iter_rows() if h in age and age[h] is not None]
    assert max(diffs) < 1.5


def test_observed_at_flag_sets_the_time_ages_and_activity_are_measured_at(capsys, tmp_path) -> None:
    path = tmp_path / "f.jsonl"
    rec = {"id_str": "1", "screen_name": "sam", "followers_count": 40, "friends_count": 60, "statuses_count": 80,
           "created_at": "Mon Nov 29 21:18:15 +0000 2010", "status": {"created_at": "Wed Jan 01 10:00:00 +0000 2025"}}
    path.write_text(json.dumps(rec) + "\n" + json.dumps({**rec, "id_str": "2", "screen_name": "kim"}))
    db = tmp_path / "w.duckdb"
    code, out, _ = run(capsys, "audit", path, "--db", db, "--method", "rules", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["evidence"]["observed_at"]["source"] == "file time (assumed)"
    assert report["shares"]["inactive"]["count"] == 2  # measured today: no post for far over 90 days
    assert any("--observed-at" in n for n in report["notes"])
    code, out, _ = run(capsys, "audit", "1", "--db", db, "--method", "rules", "--format", "json", "--observed-at", "2025-02-01")
    report = json.loads(out)
    assert code == 0 and report["evidence"]["observed_at"]["source"] == "flag"
    assert report["taken_at"].startswith("2025-02-01")
    assert report["shares"]["inactive"]["count"] == 0  # a month after their last post, seen then
    assert not any("--observed-at" in n for n in report["notes"])


def test_import_observed_at_option(tmp_path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("username,followers,following,posts\nann,1,2,3\n")
    runner = CliRunner()
    got = runner.invoke(cli, ["import", str(path), "--db", str(tmp_path / "w.duckdb"), "--observed-at", "2024-03-05T10:00:00"])
    assert got.exit_code == 0, got.output
    with Store(tmp_path / "w.duckdb", read_only=True) as store:
        snap = store.snapshot(1)
    assert snap.taken_at == datetime(2024, 3, 5, 10, tzinfo=UTC) and snap.settings["observed"]["source"] == "flag"


# -- fields known -------------------------------------------------------------------------------------------
def test_fields_known_in_duckdb_and_polars_agree(tmp_path) -> None:
    path = tmp_path / "s.jsonl"
    frame = write_synth(300, path, seed=3)
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, path).snapshot_id
        sql = store.row(known_counts_sql(), [sid])
        stored = store.followers(sid)
    assert {k: int(v) for k, v in sql.items()} == known_counts_frame(stored)
    known = fields_known(known_counts_frame(stored))
    assert known["followers_count"] == 1.0 and known["observed_at"] == 0.0
    assert frame.height == 300


def test_evidence_lines_say_every_part_in_words() -> None:
    evidence = {
        "fields_known": {"followers_count": 1.0, "has_avatar": 0.0, "bio": 0.5},
        "observed_at": {"at": "2025-07-15T00:00:00+00:00", "source": "dataset", "detail": "x", "rows_with_own_time": 1.0, "assumed": False},
        "shift": {"level": "far", "auc": 0.97, "outside_support": 0.4, "words": "far from the training data", "method": "classifier AUC"},
        "interval_method": "random-effects Se/Sp",
        "platform_labels": {"spam": 12, "!hide": 1},
    }
    text = "\n".join(evidence_lines(evidence))
    for part in ("follower count", "profile picture", "bio 50%", "2025-07-15", "dataset", "far", "0.97", "40%",
                 "random-effects Se/Sp", "spam 12"):
        assert part in text, part


# -- rendering: far shift warning next to the headline, escaped ---------------------------------------------
def small_audit(tmp_path: Path, method: str = "rules") -> tuple[Path, int]:
    path = tmp_path / "s.jsonl"
    write_synth(400, path, seed=5, account="acme")
    db = tmp_path / "w.duckdb"
    with Store(db) as store:
        sid = import_file(store, path, platform="twitter", order="newest-first", account="acme",
                          observed_at=datetime(2026, 11, 1, tzinfo=UTC)).snapshot_id
        audit_snapshot(store, sid, method=method)
    return db, sid


def test_html_shows_far_warning_next_to_headline_and_escapes(tmp_path) -> None:
    db, sid = small_audit(tmp_path)
    with Store(db) as store:
        report = audit_snapshot(store, sid).report
    report.evidence["shift"] = {"level": "far", "auc": 0.99, "outside_support": 0.7,
                                "words": "far from the training data <script>alert(1)</script>", "method": "AUC"}
    html = render_html(report)
    assert 'id="shift-warning"' in html and "<script>alert" not in html and "&lt;script&gt;" in html
    assert html.index('id="shift-warning"') < html.index('id="headline-fake"')
    assert 'id="evidence-lines"' in html and "Observed at: 2026-11-01" in html
    report.evidence["shift"]["level"] = "near"
    assert 'id="shift-warning"' not in render_html(report)


def get(app, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)

    return asyncio.run(go())


def test_web_page_shows_evidence_and_far_warning(tmp_path, monkeypatch) -> None:
    db, sid = small_audit(tmp_path)
    import followaudit.web.data as data

    real_finish = data.finish_report

    def far_finish(store, snapshot, report, **kw):  # what honest-model's shift diagnostic would set
        real_finish(store, snapshot, report, **kw)
        report.evidence["shift"] = {"level": "far", "auc": 0.98, "outside_support": 0.5, "words": "far <b>away</b>", "method": "AUC"}

    monkeypatch.setattr(data, "finish_report", far_finish)
    app = create_app(db)
    try:
        page = get(app, f"/snapshots/{sid}")
        twin = get(app, f"/snapshots/{sid}.json").json()
    finally:
        app.state.db.close()
    assert page.status_code == 200
    assert 'id="shift-warning"' in page.text and "far &lt;b&gt;away&lt;/b&gt;" in page.text
    assert "Fields known" in page.text and "Observed at" in page.text
    report = twin.get("report", twin)
    assert report["evidence"]["shift"]["level"] == "far" and "fields_known" in report["evidence"]
    assert report["evidence"]["observed_at"]["source"] == "flag"


# -- one headline everywhere ----------------------------------------------------------------------------------
def test_whatif_report_web_and_sections_quote_one_headline(tmp_path) -> None:
    db, sid = small_audit(tmp_path, method="model")
    runner = CliRunner()
    rep = json.loads(runner.invoke(cli, ["report", str(sid), "--db", str(db), "--format", "json"]).stdout)
    head = rep["headline"]["fake"]
    assert rep["corrected"] and head["share"] == rep["corrected"]["fake"]["share"] != rep["shares"]["fake"]["share"]
    got = runner.invoke(cli, ["whatif", "acme", "--buy", "400", "--db", str(db), "--format", "json"])
    assert got.exit_code == 0, got.output
    whatif = json.loads(got.stdout)
    assert whatif["fake_share_before"] == {k: head[k] for k in ("share", "low", "high")}
    assert rep["whatif"]["fake_share_before"] == {k: head[k] for k in ("share", "low", "high")}
    assert rep["comparison"]["fake_share"] == {k: head[k] for k in ("share", "low", "high")}
    app = create_app(db)
    try:
        web = get(app, f"/snapshots/{sid}.json").json()
    finally:
        app.state.db.close()
    assert web.get("report", web)["headline"]["fake"] == head


def test_workspace_comparison_ranks_peers_by_their_headlines(tmp_path) -> None:
    from followaudit.reach.comparison import workspace_peers

    db = tmp_path / "w.duckdb"
    heads = {}
    with Store(db) as store:
        for i in range(3):
            path = tmp_path / f"s{i}.jsonl"
            write_synth(300, path, seed=10 + i, account=f"peer{i}")
            sid = import_file(store, path, platform="twitter", account=f"peer{i}", observed_at=datetime(2026, 11, 1, tzinfo=UTC)).snapshot_id
            heads[f"peer{i}"] = audit_snapshot(store, sid, method="model").report.headline_shares()["fake"].share
        names = tmp_path / "names.csv"
        names.write_text("username\n" + "\n".join(f"n{i}" for i in range(300)) + "\n")
        withheld = import_file(store, names, account="thin").snapshot_id
        assert audit_snapshot(store, withheld, method="model").report.withheld
        peers = workspace_peers(store, "model", exclude_account=None)
    assert dict(zip(peers["account"].to_list(), peers["fake_share"].to_list(), strict=True)) == pytest.approx(heads)


def test_likers_and_engagement_quote_headlines(tmp_path) -> None:
    from followaudit.reach.sections import store_synthetic_reach

    path = tmp_path / "s.jsonl"
    frame = write_synth(600, path, seed=8, account="acme")
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, path, platform="twitter", order="newest-first", account="acme",
                          observed_at=datetime(2026, 11, 1, tzinfo=UTC)).snapshot_id
        store_synthetic_reach(store, sid, frame, seed=8)
        report = audit_snapshot(store, sid, method="model").report
    likers = report.sections["likers"]
    assert likers["available"] and likers["evidence"]["fields_known"]
    # the engagers' own headline: corrected for the model's error, not the raw label count
    assert likers["shares"]["fake"]["method"] == likers["evidence"]["interval_method"]
    assert likers["shares"]["fake"]["method"] != likers["raw_shares"]["fake"]["method"]
    eng = report.sections["engagement"]
    real = report.headline_shares()["real"]
    assert eng["engagement_rate_real"]["real_share_method"] == real.method
    assert eng["engagement_rate_real"]["rate"] == pytest.approx(eng["engagement_rate"] / real.share)
    assert "count history" in eng["followers_at_post"]["source"]
