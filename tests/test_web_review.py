"""The web review page in-process: escaping, the token and origin checks, read-only refusal, the report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from webdb import HOSTILE, add_hostile_snapshot

from followaudit.store import Store
from followaudit.web import create_app


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    from click.testing import CliRunner

    from followaudit.cli import cli

    path = tmp_path_factory.mktemp("web-review") / "demo.duckdb"
    assert CliRunner().invoke(cli, ["demo", "--db", str(path), "--format", "json"]).exit_code == 0
    with Store(path) as store:
        hostile = add_hostile_snapshot(store)
    return path, hostile


def _form(text: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', text))


def test_review_page_escapes_hostile_profiles_and_hides_the_label(db) -> None:
    path, hostile = db
    app = create_app(path, review=True)
    with TestClient(app) as client:
        page = client.get(f"/snapshots/{hostile}/review?reviewer=ann&n=5")
        assert page.status_code == 200
        assert "<script>window.__pwned" not in page.text and "onerror=\"window" not in page.text
        assert HOSTILE["handle"].replace("<", "&lt;").replace(">", "&gt;") in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert 'id="model-label"' not in page.text
        data = client.get(f"/snapshots/{hostile}/review.json?reviewer=ann").json()
        assert data["ok"] and data["progress"] == {"done": 0, "total": 5, "prefix": 0} and "label" not in data["next"]
        assert client.get(f"/snapshots/{hostile}/review?reviewer=%3Cscript%3E").status_code == 400
    app.state.db.close()


def test_post_needs_the_token_and_the_same_origin(db) -> None:
    path, _ = db
    app = create_app(path, review=True)
    with TestClient(app) as client:
        form = _form(client.get("/snapshots/1/review?reviewer=ann&n=40").text)
        for bad in ({**form, "token": "0" * 64, "action": "f"}, {k: v for k, v in form.items() if k != "token"} | {"action": "f"}):
            assert client.post("/snapshots/1/review", data=bad).status_code == 403
        cross = client.post("/snapshots/1/review", data={**form, "action": "f"}, headers={"origin": "http://evil.example"})
        assert cross.status_code == 403
        done = client.post("/snapshots/1/review", data={**form, "action": "r"}, follow_redirects=False)
        assert done.status_code == 303 and "answered=" in done.headers["location"]
        shown = client.get(done.headers["location"]).text
        assert "You said <strong class=\"label-real\">real</strong>" in shown and 'id="model-label"' in shown
        # 30 answers later the report (and its JSON twin) lead with the reviewed estimate
        store = app.state.db.store  # one process cannot open the file twice with different modes
        truth = dict(store.query("SELECT follower_id, truth_label FROM followers WHERE snapshot_id = 1").iter_rows())
        for _ in range(30):
            form = _form(client.get("/snapshots/1/review?reviewer=ann").text)
            key = truth[form["follower_id"]][0]
            assert client.post("/snapshots/1/review", data={**form, "action": key}).status_code == 200
        report = client.get("/snapshots/1.json").json()
        assert report["reviewed"]["n"] == 31 and report["headline"]["fake"]["share"] == report["reviewed"]["fake"]["share"]
        assert "from 31 reviewed followers" in client.get("/snapshots/1").text
    app.state.db.close()


def test_read_only_server_shows_the_page_but_refuses_answers(db) -> None:
    path, _ = db
    app = create_app(path)
    with TestClient(app) as client:
        page = client.get("/snapshots/1/review?reviewer=ann")
        assert page.status_code == 200 and "serve --review" in page.text
        form = _form(page.text)
        refused = client.post("/snapshots/1/review", data={**form, "action": "f"})
        assert refused.status_code == 400 and "read-only" in refused.text
    app.state.db.close()
