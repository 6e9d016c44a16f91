"""`followaudit report` and `followaudit serve` on a real imported follower list (shared data)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from followaudit.cli import cli


@pytest.mark.slow
def test_report_and_serve_on_an_imported_real_file(shared_data: Path, tmp_path: Path) -> None:
    sample = shared_data / "follower-analyzer-sample"
    db = str(tmp_path / "real.duckdb")
    runner = CliRunner()
    imported = runner.invoke(cli, [
        "import", str(sample / "1632532027_network.json.gz"),
        "--profiles", str(sample / "follower_profiles_sample.jsons.gz"), "--db", db,
    ])
    assert imported.exit_code == 0, imported.output
    assert runner.invoke(cli, ["audit", "1", "--db", db, "--format", "json"]).exit_code == 0
    out = tmp_path / "real.html"
    result = runner.invoke(cli, ["report", "1", "--db", db, "-o", str(out), "--charts", str(tmp_path / "charts")])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    report = json.loads(runner.invoke(cli, ["serve", "--db", db, "--get", "/snapshots/1.json"]).output)
    assert report["followers_audited"] > 10_000
    for share in report["shares"].values():
        assert f"{100 * share['share']:.1f}%" in html
    page = json.loads(runner.invoke(cli, ["serve", "--db", db, "--get", "/snapshots/1/followers.json?label=fake"]).output)
    assert page["total"] == report["shares"]["fake"]["count"]
    assert (tmp_path / "charts" / "follower_factory.png").exists()
