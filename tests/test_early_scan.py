"""The burst scan an audit starts on a Parquet file while the file is checked (``start_early_scan``).

It must find what ``scan_follow_order`` finds on the snapshot that reads the file in place, be used
for that snapshot only, and leave the audit's report unchanged.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

from followaudit.audit import audit_snapshot
from followaudit.bursts.attach import scan_follow_order, start_early_scan
from followaudit.cli import main
from followaudit.sources.ingest import import_file
from followaudit.sources.synth import write_synth
from followaudit.store import Store


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    path = tmp_path_factory.mktemp("early") / "followers.parquet"
    write_synth(12_000, path, seed=11)
    return path


def sections(scan) -> dict:
    return {"section": scan.section(), "bursts": [b.to_dict() for b in scan.bursts]}


def test_the_early_scan_is_the_snapshots_own(tmp_path, canonical):
    with Store(tmp_path / "w.duckdb") as store, ThreadPoolExecutor(1) as pool:
        early = start_early_scan(store, canonical, pool, max_rows=10**9)
        assert early is not None
        placed = import_file(store, canonical)
        assert early.applies_to(store, placed.snapshot_id)
        found, own = early.result.result(), scan_follow_order(store, placed.snapshot_id)
        assert found is not None and own is not None and found.bursts  # the synthetic account has bought batches
        assert sections(found) == sections(own)


def test_it_stands_for_no_other_snapshot(tmp_path, canonical):
    other = tmp_path / "other.parquet"
    pl.read_parquet(canonical).head(6000).write_parquet(other)
    with Store(tmp_path / "w.duckdb") as store, ThreadPoolExecutor(1) as pool:
        early = start_early_scan(store, canonical, pool, max_rows=10**9)
        assert early is not None
        elsewhere = import_file(store, other)
        copied = import_file(store, canonical, copy=True)  # stored rows: not read in place
        assert not early.applies_to(store, elsewhere.snapshot_id)
        assert not early.applies_to(store, copied.snapshot_id)
        early.result.result()


def test_too_large_or_unreadable_files_are_not_scanned_early(tmp_path, canonical):
    text = tmp_path / "not.parquet"
    text.write_text("follower_id\n1\n")
    with Store(tmp_path / "w.duckdb") as store, ThreadPoolExecutor(1) as pool:
        assert start_early_scan(store, canonical, pool, max_rows=11_999) is None
        assert start_early_scan(store, text, pool, max_rows=10**9) is None


def test_the_audit_with_the_early_scan_reports_the_same(tmp_path, canonical, capsys):
    assert main_exit(["audit", str(canonical), "--db", str(tmp_path / "cli.duckdb"), "--format", "json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    with Store(tmp_path / "lib.duckdb") as store:
        placed = import_file(store, canonical)
        result = audit_snapshot(store, placed.snapshot_id, method="model")
        from_library = json.loads(json.dumps(result.report.to_dict(), default=str))
    for doc in (from_cli, from_library):
        doc.pop("taken_at", None)
        doc.pop("snapshot", None)
    assert from_cli["bursts"] and from_cli["bursts"] == from_library["bursts"]
    assert from_cli["burst_detection"] == from_library["burst_detection"]
    assert from_cli["shares"] == from_library["shares"]


def main_exit(args: list[str]) -> int:
    with pytest.raises(SystemExit) as stop:
        main(args)
    return int(stop.value.code or 0)
