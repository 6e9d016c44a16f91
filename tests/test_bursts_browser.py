"""The standalone follower-factory page in a real Chromium: renders offline, tooltips on bursts."""

from __future__ import annotations

import os
import shutil

import polars as pl
import pytest

from followaudit.bursts import detect_bursts
from followaudit.bursts.harness import sequence_with_bricks
from followaudit.render.charts import write_follower_factory

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Debian's chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium not found on PATH; browser tests skipped outside CI")
    pytest.importorskip("playwright.sync_api")
    return path


def test_html_chart_renders_offline(tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    frame = sequence_with_bricks(5_000, [(2_000, 300, 60, 3), (3_500, 200, 400, 2)], seed=21)
    frame = frame.with_columns(pl.when(pl.col("brick") > 0).then(pl.lit("fake")).otherwise(pl.lit("real")).alias("label"))
    bursts = detect_bursts(frame)
    page_path = write_follower_factory(tmp_path / "ff.html", frame, bursts, title="offline check")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_path.as_uri())
            width = page.evaluate("document.querySelector('figure svg').getBoundingClientRect().width")
            tips = page.evaluate("Array.from(document.querySelectorAll('svg g[id^=burst-] > title')).map(t => t.textContent)")
            rows = page.locator("table.bursts tr").count()
        finally:
            browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []  # nothing from the network
    assert width > 600  # the inline SVG scales to the page
    assert len(tips) == len(bursts) == 2 and tips[0].startswith(f"Burst #1: {bursts[0].size} followers")
    assert rows == 3  # header + one row per burst
