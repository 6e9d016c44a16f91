"""The follower table's fast paths: kept sort orders, the reason index, rows written without a
template, rendered pages kept and sent before routing — each against the slow, obvious way."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from conftest import copy_workspace
from webdb import HOSTILE, build_demo_db

from followaudit.classify.reasons import reason_pattern
from followaudit.web import create_app
from followaudit.web.data import SORTABLE, FollowerQuery, ReadDB, descending_order
from followaudit.web.pages import PageCache, rows_html


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("web-pages") / "web.duckdb"
    return path, build_demo_db(path)


def get(app, path: str, params: dict | None = None, host: str = "127.0.0.1:8000") -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return await client.get(path, params=params)

    return asyncio.run(run())


def reference_order(rows: pl.DataFrame, column: str, order: str, keep: pl.Expr | None = None) -> list[int]:
    """The obvious order: filter, then sort on (column, pos) with nulls last."""
    frame = rows.select(column, pl.int_range(pl.len(), dtype=pl.Int64).alias("pos"))
    if keep is not None:
        frame = frame.filter(rows.select(keep).to_series())
    return frame.sort([column, "pos"], descending=[order == "desc", False], nulls_last=True)["pos"].to_list()


@pytest.mark.parametrize("seed", range(6))
def test_descending_order_is_a_full_descending_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    nulls = rng.random(n) < 0.2
    ints = rng.integers(0, 7, n)
    floats = rng.choice([0.5, 1.5, np.nan, 2.5], n)
    frame = pl.DataFrame({
        "i": pl.Series(ints).scatter(np.flatnonzero(nulls), None),
        "f": pl.Series(floats).scatter(np.flatnonzero(nulls), None),
        "s": pl.Series(rng.choice(["a", "b", "B", "ab", ""], n)).scatter(np.flatnonzero(nulls), None),
        "t": pl.Series([datetime(2020, 1, 1 + int(d), tzinfo=UTC) for d in ints]),
    })
    for column in frame.columns:
        ascending = frame.select(pl.int_range(pl.len(), dtype=pl.Int32).sort_by(column, nulls_last=True, maintain_order=True)).to_series().to_numpy()
        assert ascending.tolist() == reference_order(frame, column, "asc")
        assert descending_order(frame[column], ascending).tolist() == reference_order(frame, column, "desc"), column


def test_every_sort_and_filter_matches_filtering_then_sorting(workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import followaudit.web.data

    monkeypatch.setattr(followaudit.web.data, "ORDER_STEP", 1)  # scan filtered orders in small steps here too
    path, ids = workspace
    db = ReadDB(path)
    try:
        sid = ids["a"]
        audit = db.audit(sid)
        db.warm(audit)
        assert set(audit.orders) == {(c, o) for c in SORTABLE for o in ("asc", "desc")}
        reasons = [r for r, _ in db.reason_counts(sid)]
        assert reasons and len(audit.reasons) == len(reasons)
        filters = [
            ({}, None), ({"label": "fake"}, pl.col("label") == "fake"),
            ({"reason": reasons[1]}, pl.col("reasons").list.eval(reason_pattern(pl.element()) == reasons[1]).list.any()),
            ({"label": "real", "reason": reasons[0]},
             (pl.col("label") == "real") & pl.col("reasons").list.eval(reason_pattern(pl.element()) == reasons[0]).list.any()),
        ]
        # a deep page first, then the first: the kept prefix of a filtered order grows as pages need
        expected = reference_order(audit.rows, "posts_count", "desc", filters[1][1])
        for page in (9, 1, 40):
            got = db.followers_frame(sid, FollowerQuery(label="fake", sort="posts_count", order="desc", page=page, per_page=3))[1]
            assert got["follower_id"].to_list() == audit.rows["follower_id"].gather(expected[3 * page - 3 : 3 * page]).to_list()
            kept, scanned = db._orders[(audit.table, (("label", "fake"),), "posts_count", "desc")]
            assert len(kept) < len(expected) and scanned < audit.rows.height  # a prefix only
        for column in SORTABLE:
            for order in ("asc", "desc"):
                for given, keep in filters:
                    expected = reference_order(audit.rows, column, order, keep)
                    fq = FollowerQuery(**given, sort=column, order=order, per_page=500)
                    got = [p for page in range(1, len(expected) // 500 + 2)
                           for p in db.followers_frame(sid, FollowerQuery(**given, sort=column, order=order, page=page, per_page=500))[1]["follower_id"]]
                    assert got == audit.rows["follower_id"].gather(expected).to_list(), (column, order, given)
                    assert db.followers_frame(sid, fq)[0]["total"] == len(expected)
        # the menu counts every time a reason pattern is given, as the report's reasons do
        given = audit.rows.select(reason_pattern(pl.col("reasons").explode()).alias("r")).drop_nulls()["r"].value_counts()
        assert dict(db.reason_counts(sid)) == dict(given.iter_rows())
    finally:
        db.close()


def test_rows_are_escaped_and_linked_as_the_template_did() -> None:
    rows = pl.DataFrame({
        "follow_rank": [3, None], "follower_id": ['a b"&<', "42"], "handle": [HOSTILE["handle"], None],
        "display_name": [HOSTILE["display_name"], None], "label": ["fake", "real"], "probability": [0.456, None],
        "reasons": [["<b>bold</b>", "has never posted"], None],
        "created_at": [datetime(2021, 5, 6, 23, 30, tzinfo=UTC), None], "followers_count": [1234567, None],
        "following_count": [0, 5], "posts_count": [None, 10_000], "last_active_at": [None, datetime(2022, 1, 2, tzinfo=UTC)],
    })
    html = str(rows_html(rows, 9))
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;; has never posted" in html
    assert 'href="/snapshots/9/followers/a%20b%22%26%3C"' in html  # quoted, then nothing left to escape
    assert ">42</a>" in html  # no handle: the id
    assert "(0.46)" in html and "1,234,567" in html and "2021-05-06" in html and "2022-01-02" in html
    assert html.count("—") == 5  # missing: rank, last post; created, followers count
    assert rows_html(rows.head(0), 9).count("No follower matches") == 1


def test_page_cache_is_bounded_least_recently_used_and_forgets_a_snapshot() -> None:
    pages = PageCache(200)  # bytes of body, path and query
    pages.put("/snapshots/1", b"", b"x" * 50, "text/html")
    pages.put("/snapshots/12/followers", b"page=2", b"y" * 50, "text/html")
    assert pages.get("/snapshots/1", b"") is not None  # now the most recently used
    pages.put("/snapshots/2.json", b"", b"z" * 50, "application/json")  # over 200 bytes: evicts /12
    assert pages.get("/snapshots/12/followers", b"page=2") is None and pages.nbytes <= 200
    pages.put("/big", b"", b"w" * 200, "text/html")  # larger than the whole budget: not kept
    assert pages.get("/big", b"") is None
    pages.put("/snapshots/12/followers", b"", b"v", "text/html")
    pages.forget(1)
    assert pages.get("/snapshots/1", b"") is None and pages.get("/snapshots/12/followers", b"") is not None
    assert pages.get("/snapshots/2.json", b"") is not None and pages.nbytes == sum(len(p) + len(q) + len(b[1]) for (p, q), b in pages._pages.items())


def test_kept_pages_still_check_the_host_and_carry_the_security_headers(workspace) -> None:
    path, ids = workspace
    app = create_app(path, host="127.0.0.1")
    try:
        for url in (f"/snapshots/{ids['a']}", f"/snapshots/{ids['a']}/followers?label=fake&page=2",
                    f"/snapshots/{ids['a']}/followers.json?sort=handle&order=desc"):
            first, second = get(app, url), get(app, url)
            assert first.status_code == second.status_code == 200 and first.content == second.content
            route, _, query = url.partition("?")
            assert app.state.pages.get(route, query.encode()) is not None  # the second came from here
            assert "script-src" not in second.headers["content-security-policy"]
            assert second.headers["x-frame-options"] == "DENY"
            refused = get(app, url, host="evil.example")
            assert refused.status_code == 421 and "unknown Host" in refused.text
        # errors on the direct table route keep their status and shape
        assert get(app, f"/snapshots/{ids['a']}/followers.json?sort=evil").json()["status"] == 400
        assert get(app, "/snapshots/999/followers").status_code == 404
        assert "text/html" in get(app, f"/snapshots/{ids['a']}/followers?page=zero").headers["content-type"]
    finally:
        app.state.db.close()


def test_a_recorded_review_drops_the_kept_report(workspace, tmp_path: Path) -> None:
    src, ids = workspace
    path = tmp_path / "review.duckdb"
    copy_workspace(src, path)
    app = create_app(path, review=True)
    try:
        sid = ids["a"]
        before = get(app, f"/snapshots/{sid}.json").json()
        assert get(app, f"/snapshots/{sid}/followers").status_code == 200 and len(app.state.pages) >= 3  # + its view
        form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', get(app, f"/snapshots/{sid}/review?reviewer=ann").text))

        async def post() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
                return await client.post(f"/snapshots/{sid}/review", data={**form, "action": "f"})

        assert get(app, f"/snapshots/{sid}.json").json() == before  # kept
        assert asyncio.run(post()).status_code == 303
        assert not [key for key in app.state.pages._pages if key[0].startswith(f"/snapshots/{sid}")]
        # rebuilt from the workspace (test_web_review shows 30 answers then change the report)
        assert get(app, f"/snapshots/{sid}.json").status_code == 200 and app.state.pages.get(f"/snapshots/{sid}.json", b"")
    finally:
        app.state.db.close()


def test_frozen_audits_are_still_freed_when_evicted(workspace) -> None:
    import gc
    import weakref

    from followaudit.web.data import freeze_long_lived

    path, ids = workspace
    db = ReadDB(path, cache_bytes=1)  # room for the latest audit only
    try:
        first = db.audit(ids["a"])
        db.warm(first)
        held = [weakref.ref(first), weakref.ref(first.rows), weakref.ref(first.result.report)]
        freeze_long_lived()
        del first
        db.audit(ids["b"])  # evicts the first
        assert [ref() for ref in held] == [None, None, None]
    finally:
        gc.unfreeze()
        db.close()


def test_pages_and_audits_share_the_cache_budget(workspace) -> None:
    path, ids = workspace
    app = create_app(path, cache_mb=32)
    try:
        pages, db = app.state.pages, app.state.db
        assert pages.max_bytes == (32 << 20) // 16 and pages.max_bytes + db.cache_bytes == 32 << 20
        for page in range(1, 6):
            assert get(app, f"/snapshots/{ids['a']}/followers?page={page}&per_page=5").status_code == 200
        assert 0 < pages.nbytes <= pages.max_bytes and len(pages) == 6  # five pages and their one view
    finally:
        app.state.db.close()
