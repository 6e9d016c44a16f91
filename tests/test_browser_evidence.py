"""Browser test: a far shift is a visible warning beside the headline; the evidence is shown in words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_browser_web import CHROMIUM_ARGS, _chromium

from followaudit.audit import audit_snapshot
from followaudit.render.html import write_html
from followaudit.sources.ingest import import_file
from followaudit.sources.synth import write_synth
from followaudit.store import Store

pytestmark = pytest.mark.browser


def test_far_warning_is_visible_above_the_headline(tmp_path) -> None:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    path = tmp_path / "s.jsonl"
    write_synth(300, path, seed=4, account="acme")
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, path, platform="twitter", account="acme", observed_at=datetime(2026, 11, 1, tzinfo=UTC)).snapshot_id
        report = audit_snapshot(store, sid, method="model").report
    report.evidence["shift"] = {"level": "far", "auc": 0.97, "outside_support": 0.6, "words": "far from the training data", "method": "AUC"}
    html = write_html(report, tmp_path / "r.html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(html.as_uri())
            warning, card = page.locator("#shift-warning"), page.locator("#headline-fake")
            assert warning.is_visible() and "far from the training data" in warning.inner_text()
            w, c = warning.bounding_box(), card.bounding_box()
            assert w is not None and c is not None and w["y"] + w["height"] <= c["y"] + 1  # just above the headline
            lines = page.locator("#evidence-lines").inner_text()
            assert "Observed at: 2026-11-01" in lines and "Fields known" in lines and "Distance from the training data: far" in lines
        finally:
            browser.close()
