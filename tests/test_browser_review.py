"""Browser test: review 20 followers in the web app with the keyboard alone (Chromium + Playwright)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_browser_web import ARTIFACTS, CHROMIUM_ARGS, _chromium
from webdb import served

from followaudit.cli import cli

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from followaudit.web import create_app

    path = tmp_path_factory.mktemp("browser-review") / "demo.duckdb"
    result = CliRunner().invoke(cli, ["demo", "--db", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    app = create_app(path, review=True)
    with served(app) as url:
        yield url, path
    app.state.db.close()


def test_review_twenty_followers_with_the_keyboard(server) -> None:
    base, _ = server
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    keys = "frirfcrrifrrfirrcfri"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(f"{msg.text} {msg.location.get('url')}")
                if msg.type == "error" and "favicon" not in str(msg.location.get("url")) else None)
        page.goto(f"{base}/snapshots/1/review?reviewer=kbd&n=30")
        assert "0 of 30" in page.locator("#progress").inner_text()
        assert page.locator("#model-label").count() == 0  # nothing about the model before an answer
        for i, key in enumerate(keys):
            handle = page.locator("#review-handle").inner_text()
            with page.expect_navigation():
                page.keyboard.press(key)
            assert f"{i + 1} of 30" in page.locator("#progress").inner_text()
            revealed = page.locator("#revealed").inner_text()
            expected = {"f": "fake", "i": "inactive", "r": "real", "c": "can't tell"}[key]
            assert f"You said {expected}" in revealed and "The model said" in revealed
            assert page.locator("#review-handle").inner_text() != handle  # the next follower
        page.screenshot(path=str(ARTIFACTS / "web-review.png"), full_page=True)
        with page.expect_navigation():
            page.keyboard.press("u")  # undo the 20th, then answer it again
        assert "19 of 30" in page.locator("#progress").inner_text()
        assert "undone" in page.locator("#undone").inner_text()
        with page.expect_navigation():
            page.keyboard.press("i")
        state = page.request.get(f"{base}/snapshots/1/review.json?reviewer=kbd").json()
        assert state["progress"]["done"] == 20 and state["progress"]["total"] == 30
        assert state["next"] is not None and "label" not in state["next"]
        assert not errors, errors  # no CSP violation, no script error
        # a POST from another origin is refused even with the page's token
        token = re.search(r'name="token" value="([0-9a-f]+)"', page.content()).group(1)
        refused = page.request.post(f"{base}/snapshots/1/review", form={"token": token, "action": "f", "follower_id": "x"},
                                    headers={"Origin": "http://evil.example"})
        assert refused.status == 403
        browser.close()
