"""The web app in-process through httpx.ASGITransport: every route, its .json twin, errors and safety."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from webdb import BURST_REASON, HOSTILE, HOSTILE_ACCOUNT, build_demo_db

from followaudit.bursts.attach import BURSTS_REASON
from followaudit.cli import cli
from followaudit.render.jsonout import render_json
from followaudit.report import SCHEMA_VERSION
from followaudit.store import Store
from followaudit.web import create_app
from followaudit.web.data import build_audit, newcombe_difference


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], httpx.AsyncClient]:
    path = tmp_path_factory.mktemp("web") / "web.duckdb"
    ids = build_demo_db(path)
    app = create_app(path)
    yield path, ids, app
    app.state.db.close()


def get(app, path: str, params: dict | None = None) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path, params=params)

    return asyncio.run(run())


def test_every_page_and_its_json_twin(web) -> None:
    _, ids, app = web
    a, b = ids["a"], ids["b"]
    follower = get(app, f"/snapshots/{a}/followers.json?per_page=1").json()["rows"][0]["follower_id"]
    pairs = [
        ("/", "/index.json"),
        (f"/snapshots/{a}", f"/snapshots/{a}.json"),
        (f"/snapshots/{a}/followers", f"/snapshots/{a}/followers.json"),
        (f"/snapshots/{a}/followers/{follower}", f"/snapshots/{a}/followers/{follower}.json"),
        (f"/compare/{a}/{b}", f"/compare/{a}/{b}.json"),
    ]
    for page, twin in pairs:
        html, data = get(app, page), get(app, twin)
        assert html.status_code == 200, page
        assert html.headers["content-type"].startswith("text/html")
        assert "<script" not in html.text
        assert data.status_code == 200, twin
        assert data.headers["content-type"].startswith("application/json")
        body = data.json()
        assert body.get("ok", True) is True
        # every page links its twin
        assert twin.split("?")[0] in html.text.replace("&amp;", "&")


def test_report_twin_is_the_report_schema(web) -> None:
    path, ids, app = web
    body = get(app, f"/snapshots/{ids['a']}.json").json()
    with Store(path, read_only=True) as store:
        expected = json.loads(render_json(build_audit(store, ids["a"]).report))
    assert body == expected
    assert body["schema_version"] == SCHEMA_VERSION
    assert set(body["shares"]) == {"fake", "inactive", "real"}
    for share in body["shares"].values():
        assert share["low"] <= share["share"] <= share["high"] and share["method"]


def test_report_page_shows_shares_with_intervals(web) -> None:
    _, ids, app = web
    report = get(app, f"/snapshots/{ids['a']}.json").json()
    html = get(app, f"/snapshots/{ids['a']}").text
    for share in report["shares"].values():
        assert f"{100 * share['share']:.1f}%" in html
        assert f"{100 * share['low']:.1f}% – {100 * share['high']:.1f}%" in html
    assert "What these numbers mean and do not mean" in html
    # charts are served by URL and are SVG
    for src in re.findall(r'src="(/snapshots/[^"]+\.svg)"', html):
        chart = get(app, src)
        assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in chart.text
    assert get(app, f"/snapshots/{ids['a']}/charts/nope.svg").status_code == 404


def test_report_file_download_is_self_contained(web) -> None:
    _, ids, app = web
    response = get(app, f"/snapshots/{ids['a']}/report.html")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    assert "<script" not in response.text
    assert not re.search(r'(src|href)="(https?:)?//', response.text)
    assert "data:image/svg+xml;base64," in response.text


def test_follower_table_filters_agree_with_the_report(web) -> None:
    _, ids, app = web
    a = ids["a"]
    report = get(app, f"/snapshots/{a}.json").json()
    for label in ("fake", "inactive", "real"):
        page = get(app, f"/snapshots/{a}/followers.json?label={label}&per_page=500").json()
        assert page["total"] == report["shares"][label]["count"]
        assert page["rows"] and {r["label"] for r in page["rows"]} == {label}
    reason, count = report["top_reasons"][0]["reason"], report["top_reasons"][0]["count"]
    page = get(app, f"/snapshots/{a}/followers.json?" + str(httpx.QueryParams({"reason": reason, "per_page": 500}))).json()
    assert page["total"] >= count  # top_reasons counts fake and inactive followers only
    assert all(reason in r["reasons"] for r in page["rows"])


def test_follower_table_sorts_and_pages(web) -> None:
    _, ids, app = web
    a = ids["a"]
    rows = get(app, f"/snapshots/{a}/followers.json?sort=followers_count&order=desc&per_page=100").json()["rows"]
    counts = [r["followers_count"] for r in rows]
    assert counts == sorted(counts, reverse=True)
    p1 = get(app, f"/snapshots/{a}/followers.json?per_page=20&page=1").json()
    p2 = get(app, f"/snapshots/{a}/followers.json?per_page=20&page=2").json()
    assert [r["follow_rank"] for r in p1["rows"]] == list(range(20))
    assert [r["follow_rank"] for r in p2["rows"]] == list(range(20, 40))
    assert p1["pages"] == -(-p1["total"] // 20)
    handle = p1["rows"][3]["handle"]
    found = get(app, f"/snapshots/{a}/followers.json?q={handle}").json()["rows"]
    assert handle in [r["handle"] for r in found]
    html = get(app, f"/snapshots/{a}/followers?label=fake&page=2").text
    assert "page 2 of" in html and 'id="next-page"' in html


def test_burst_filter_uses_burst_reasons(web) -> None:
    _, ids, app = web
    b = ids["b"]
    page = get(app, f"/snapshots/{b}/followers.json?burst=7&per_page=500").json()
    assert page["total"] == 100
    assert all(BURST_REASON in r["reasons"] for r in page["rows"])
    in_any = app.state.db.query(
        """SELECT count(*) AS n FROM labels WHERE snapshot_id = ? AND method = 'rules'
           AND len(list_filter(reasons, lambda r: starts_with(r, 'in burst #'))) > 0""",
        [b],
    )["n"][0]
    page = get(app, f"/snapshots/{b}/followers.json?burst=any&per_page=500").json()
    assert page["total"] == in_any >= 100
    assert all(any(r.startswith("in burst #") for r in row["reasons"]) for row in page["rows"])
    assert get(app, f"/snapshots/{b}/followers.json?burst=70").json()["total"] == 0  # #70 is not #7
    # the report's one line for every burst member, as a reason filter, is the burst=any filter
    by_reason = get(app, f"/snapshots/{b}/followers.json", {"reason": BURSTS_REASON, "per_page": 500}).json()
    assert by_reason["total"] == in_any and by_reason["filters"] == {"reason": BURSTS_REASON, "burst": "any"}
    assert [r["follower_id"] for r in by_reason["rows"]] == [r["follower_id"] for r in page["rows"]]


def test_follower_page_shows_profile_label_and_reasons(web) -> None:
    _, ids, app = web
    row = get(app, f"/snapshots/{ids['a']}/followers.json?label=fake&per_page=1").json()["rows"][0]
    data = get(app, f"/snapshots/{ids['a']}/followers/{row['follower_id']}.json").json()
    assert data["label"] == "fake" and data["reasons"] == row["reasons"]
    assert data["profile"]["handle"] == row["handle"]
    html = get(app, f"/snapshots/{ids['a']}/followers/{row['follower_id']}").text
    assert row["handle"] in html and row["reasons"][0] in html


def test_compare_two_snapshots(web) -> None:
    _, ids, app = web
    data = get(app, f"/compare/{ids['a']}/{ids['b']}.json").json()
    assert data["joined"]["count"] == 50 and data["left"]["count"] == 100
    assert all(r["follower_id"].startswith("new") for r in data["joined"]["rows"])
    ra = get(app, f"/snapshots/{ids['a']}.json").json()["shares"]
    rb = get(app, f"/snapshots/{ids['b']}.json").json()["shares"]
    for label, change in data["shares"].items():
        d = change["difference"]
        assert d["change"] == pytest.approx(rb[label]["share"] - ra[label]["share"])
        assert d["low"] <= d["change"] <= d["high"]
    html = get(app, f"/compare/{ids['a']}/{ids['b']}").text
    assert "Who joined: 50" in html and "Who left: 100" in html
    assert get(app, f"/compare?a={ids['a']}&b={ids['b']}").status_code in (200, 303)
    other = get(app, f"/compare/{ids['a']}/{ids['hostile']}.json")
    assert other.status_code == 400 and other.json()["ok"] is False


def test_newcombe_difference_interval() -> None:
    # Newcombe (1998) table II example 1: 56/70 vs 48/80, difference 0.2000, 95% CI 0.0524 to 0.3339.
    from followaudit.estimate import wilson

    la, ua = wilson(48, 80)
    lb, ub = wilson(56, 70)
    d, lo, hi = newcombe_difference((48 / 80, la, ua), (56 / 70, lb, ub))
    assert d == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)


def test_unlabelled_snapshot_is_labelled_in_memory_without_writing(web) -> None:
    path, ids, app = web
    u = ids["unlabelled"]
    report = get(app, f"/snapshots/{u}.json?method=rules").json()
    assert report["followers_audited"] == 300 and report["method"] == "rules"
    page = get(app, f"/snapshots/{u}/followers.json?label=fake&method=rules").json()
    assert page["total"] == report["shares"]["fake"]["count"]
    assert "labels computed on the fly" in get(app, f"/snapshots/{u}?method=rules").text
    assert app.state.db.store.read_only
    rows = app.state.db.query("SELECT count(*) AS n FROM labels WHERE snapshot_id = ?", [u])
    assert rows["n"][0] == 0


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/snapshots/999", 404),
        ("/snapshots/1/followers?sort=evil;drop", 400),
        ("/snapshots/1/followers?page=zero", 400),
        ("/snapshots/1/followers?label=robot", 400),
        ("/snapshots/1/followers?per_page=100000", 400),
        ("/snapshots/1/followers/nobody", 404),
        ("/no/such/page", 404),
        ("/snapshots/1?method=crystal-ball", 400),
    ],
)
def test_errors_render_as_page_or_json(web, path: str, status: int) -> None:
    _, _, app = web
    html = get(app, path)
    assert html.status_code == status
    assert html.headers["content-type"].startswith("text/html") and "Error" in html.text
    base, _, query = path.partition("?")
    twin = get(app, base + ".json" + (f"?{query}" if query else ""))
    assert twin.status_code == status
    body = twin.json()
    assert body["ok"] is False and body["error"] and body["status"] == status


def test_security_headers_on_every_response(web) -> None:
    _, ids, app = web
    for path in ("/", "/index.json", f"/snapshots/{ids['a']}", "/snapshots/999.json", "/nope"):
        response = get(app, path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp  # no script source at all
        assert response.headers["x-content-type-options"] == "nosniff"


def test_hostile_strings_are_escaped(web) -> None:
    _, ids, app = web
    h = ids["hostile"]
    row = get(app, f"/snapshots/{h}/followers.json?sort=follow_rank&per_page=1").json()["rows"][0]
    assert row["handle"] == HOSTILE["handle"]  # JSON keeps the data as it is
    pages = [
        "/", f"/snapshots/{h}", f"/snapshots/{h}/followers", f"/snapshots/{h}/report.html",
        f"/snapshots/{h}/followers/{row['follower_id']}",
    ]
    for path in pages:
        text = get(app, path).text
        for value in (*HOSTILE.values(), HOSTILE_ACCOUNT):
            assert value not in text, (path, value)
        assert "<script" not in text and "onerror=" not in text.replace("onerror=&#34;", "")
    follower = get(app, f"/snapshots/{h}/followers/{row['follower_id']}").text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in follower
    assert "&lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt;" in follower


def test_serve_get_and_help(web) -> None:
    path, ids, _ = web
    runner = CliRunner()
    ok = runner.invoke(cli, ["serve", "--db", str(path), "--get", f"/snapshots/{ids['a']}.json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["snapshot"] == ids["a"]
    missing = runner.invoke(cli, ["serve", "--db", str(path), "--get", "/snapshots/999.json"])
    assert missing.exit_code == 1 and json.loads(missing.output)["ok"] is False
    help_text = " ".join(runner.invoke(cli, ["serve", "--help"]).output.split())
    assert "127.0.0.1" in help_text and "0.0.0.0" in help_text and "any machine" in help_text


def test_web_report_matches_the_cli_audit(web) -> None:
    """The same snapshot and method give the same Report through `followaudit audit` (audit_snapshot)
    and through the web (stored labels)."""
    from followaudit.audit import audit_snapshot

    path, ids, app = web
    with Store(path, read_only=True) as store:
        cli_doc = json.loads(render_json(audit_snapshot(store, ids["a"], method="rules", save=False).report))
    web_doc = get(app, f"/snapshots/{ids['a']}.json").json()
    assert web_doc["bursts"]  # the fixture has a bought batch, so burst reasons are in play
    assert any(r["reason"].startswith("member of a bought batch") for r in web_doc["top_reasons"])
    assert web_doc == cli_doc  # shares, corrected, reasons, bursts, sections, notes: all equal


def test_empty_and_missing_workspaces(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    Store(empty).close()
    app = create_app(empty)
    try:
        assert "holds no snapshot yet" in get(app, "/").text
        assert get(app, "/index.json").json()["snapshots"] == []
    finally:
        app.state.db.close()
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "missing.duckdb"), "--get", "/"])
    assert result.exit_code != 0 and "no workspace" in str(result.exception)


def test_every_top_reason_links_to_exactly_its_followers(web) -> None:
    """Reasons are counted by pattern in the report; the follower filter matches the same way."""
    path, ids, app = web
    doc = get(app, f"/snapshots/{ids['a']}.json").json()
    assert doc["top_reasons"]
    for item in doc["top_reasons"]:
        page = get(app, f"/snapshots/{ids['a']}/followers.json", params={"reason": item["reason"]}).json()
        assert page["total"] >= item["count"] > 0, item  # the report counts fake and inactive only
        fake_or_inactive = sum(
            get(app, f"/snapshots/{ids['a']}/followers.json", params={"reason": item["reason"], "label": label}).json()["total"]
            for label in ("fake", "inactive")
        )
        assert fake_or_inactive == item["count"], item


def test_cache_keeps_one_copy_and_evicts_least_recently_used(web) -> None:
    from followaudit.web.data import FollowerQuery, ReadDB, cache_budget

    path, ids, _ = web
    db = ReadDB(path, cache_bytes=1)  # smaller than any audit: only the latest one is kept
    try:
        first = db.audit(ids["a"])
        assert first.result.labels is None  # the labels live in the one table, not twice
        assert db.cached_bytes == first.nbytes > 0
        page = db.followers_page(ids["a"], FollowerQuery(label="fake", sort="followers_count", order="desc"))
        second = db.audit(ids["b"])
        assert db.cached_bytes == second.nbytes  # a evicted
        assert db.audit(ids["b"]) is second
        again = db.audit(ids["a"])  # rebuilt after eviction, same answers
        assert again is not first
        assert db.followers_page(ids["a"], FollowerQuery(label="fake", sort="followers_count", order="desc")) == page
    finally:
        db.close()
    roomy = ReadDB(path, cache_bytes=1 << 30)
    try:
        a, b = roomy.audit(ids["a"]), roomy.audit(ids["b"])
        assert roomy.audit(ids["a"]) is a and roomy.cached_bytes == a.nbytes + b.nbytes
    finally:
        roomy.close()
    assert cache_budget(2) == 2 << 20
