"""Browser tests: Debian's Chromium driven by Playwright against `followaudit serve` on 127.0.0.1.

Outside CI they skip when Chromium is absent; under CI (``CI`` set) they must run. Screenshots go to
``test-artifacts/`` in the repository root (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from webdb import HOSTILE, HOSTILE_ACCOUNT, add_hostile_snapshot, served

from followaudit.cli import cli
from followaudit.store import Store

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Debian's chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium not found on PATH (apt-get install -y chromium); browser tests skipped outside CI")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI is set but the playwright package is not installed")
        pytest.skip("the playwright package is not installed")
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The demo workspace (`followaudit demo`) plus one account full of hostile strings."""
    path = tmp_path_factory.mktemp("browser") / "demo.duckdb"
    result = CliRunner().invoke(cli, ["demo", "--db", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    with Store(path) as store:
        demo = int(store.resolve("demo_account"))
        hostile = add_hostile_snapshot(store)
    return path, {"demo": demo, "hostile": hostile}


@pytest.fixture(scope="module")
def server(workspace) -> Iterator[str]:
    from followaudit.web import create_app

    app = create_app(workspace[0], host="127.0.0.1")  # the Host check on, as `followaudit serve` runs it
    with served(app) as url:
        yield url
    app.state.db.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on("dialog", lambda dialog: (pg.errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield pg
    context.close()


def _shares_visible(page, report: dict) -> None:
    """The headline cards (corrected estimate when the model gives one, as Report.headline) and the
    raw shares table, each share with its interval."""
    headline = report["corrected"] or report["shares"]
    for label, share in headline.items():
        card = page.locator(f"#headline-{label}")
        assert card.is_visible()
        text = card.inner_text()
        assert f"{100 * share['share']:.1f}%" in text
        assert f"{100 * share['low']:.1f}% – {100 * share['high']:.1f}%" in text
    table = page.locator("#shares-table").inner_text()
    for share in report["shares"].values():
        assert f"{100 * share['share']:.1f}%" in table
        assert f"{100 * share['low']:.1f}% – {100 * share['high']:.1f}%" in table


def test_report_page_follower_table_and_follower(page, server, workspace) -> None:
    sid = workspace[1]["demo"]
    report = page.request.get(f"{server}/snapshots/{sid}.json").json()
    page.goto(server + "/")
    page.get_by_role("link", name=f"#{sid}").first.click()
    page.wait_for_url(f"**/snapshots/{sid}")
    _shares_visible(page, report)
    assert page.locator("#chart-shares").evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.get_by_role("heading", name="What these numbers mean and do not mean").is_visible()
    page.screenshot(path=str(ARTIFACTS / "web-report.png"), full_page=True)

    page.locator("#followers-link").click()
    page.select_option("#filter-label", "fake")
    page.locator("#apply-filters").click()
    page.wait_for_url(re.compile(r".*label=fake.*"))
    total = page.locator("#total strong").inner_text()
    assert total == f"{report['shares']['fake']['count']:,}"
    labels = page.locator("#followers-table tbody tr td:nth-child(4)").all_inner_texts()
    assert labels and all(t.startswith("fake") for t in labels)
    page.screenshot(path=str(ARTIFACTS / "web-followers-fake.png"), full_page=True)

    first = page.locator("a.follower-link").first
    handle = first.inner_text()
    first.click()
    page.wait_for_selector("#follower-label")
    assert page.locator("#follower-label").inner_text() == "fake"
    assert page.locator("#follower-handle").inner_text().startswith(handle)
    assert page.locator("#follower-reasons li").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "web-follower.png"), full_page=True)
    assert page.errors == []


def test_static_report_file_opens_offline(page, workspace, tmp_path: Path) -> None:
    path, ids = workspace
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(ids["demo"]), "--db", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = CliRunner().invoke(cli, ["report", str(ids["demo"]), "--db", str(path), "--format", "json"])
    import json

    expected = json.loads(report.output)
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    page.goto(out.as_uri())
    _shares_visible(page, expected)
    for chart in ("#chart-shares", "#chart-reasons", "#chart-follower_factory"):
        if page.locator(chart).count():
            assert page.locator(chart).evaluate("img => img.complete && img.naturalWidth > 0"), chart
    assert all(u.startswith(("file:", "data:")) for u in requested), requested
    page.screenshot(path=str(ARTIFACTS / "static-report.png"), full_page=True)
    assert page.errors == []


def test_hostile_strings_never_run(page, server, workspace, tmp_path: Path) -> None:
    path, ids = workspace
    sid = ids["hostile"]
    rows = page.request.get(f"{server}/snapshots/{sid}/followers.json?per_page=1").json()["rows"]
    out = tmp_path / "hostile.html"
    assert CliRunner().invoke(cli, ["report", str(sid), "--db", str(path), "-o", str(out)]).exit_code == 0
    urls = [
        f"{server}/", f"{server}/snapshots/{sid}", f"{server}/snapshots/{sid}/followers",
        f"{server}/snapshots/{sid}/followers/{rows[0]['follower_id']}", out.as_uri(),
    ]
    for url in urls:
        page.goto(url)
        page.wait_for_load_state("load")
        assert page.evaluate("() => window.__pwned") is None, url
        assert page.locator("script").count() == 0, url
        assert page.locator("img[onerror], svg[onload]").count() == 0, url
    # the strings are shown as text, not interpreted
    page.goto(f"{server}/snapshots/{sid}/followers/{rows[0]['follower_id']}")
    assert page.locator("#follower-handle").inner_text().startswith(HOSTILE["handle"])
    assert HOSTILE["display_name"] in page.locator("#follower-handle").inner_text()
    assert HOSTILE["bio"] in page.locator("#profile").inner_text()
    page.screenshot(path=str(ARTIFACTS / "web-hostile-follower.png"), full_page=True)
    page.goto(f"{server}/snapshots/{sid}")
    assert HOSTILE_ACCOUNT in page.locator("h1").inner_text()
    assert page.errors == []


def test_real_imported_file_report_and_page(page, shared_data: Path, tmp_path: Path) -> None:
    """A real follower list (shared data): the static report file and the served report page."""
    import uvicorn

    from followaudit.web import create_app

    sample = shared_data / "follower-analyzer-sample"
    db = tmp_path / "real.duckdb"
    runner = CliRunner()
    assert runner.invoke(cli, [
        "import", str(sample / "1632532027_network.json.gz"),
        "--profiles", str(sample / "follower_profiles_sample.jsons.gz"), "--db", str(db),
    ]).exit_code == 0
    assert runner.invoke(cli, ["audit", "1", "--db", str(db), "--format", "json"]).exit_code == 0
    out = tmp_path / "real.html"
    assert runner.invoke(cli, ["report", "1", "--db", str(db), "-o", str(out)]).exit_code == 0
    page.goto(out.as_uri())
    assert page.locator("#headline-fake").is_visible()
    page.screenshot(path=str(ARTIFACTS / "static-report-real.png"), full_page=True)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(db)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        report = page.request.get(f"http://127.0.0.1:{port}/snapshots/1.json").json()
        page.goto(f"http://127.0.0.1:{port}/snapshots/1")
        _shares_visible(page, report)
        page.screenshot(path=str(ARTIFACTS / "web-report-real.png"), full_page=True)
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        app.state.db.close()
    assert page.errors == []
