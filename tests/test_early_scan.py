"""The burst scan an audit starts on a Parquet file while the command loads and the file is checked
(``start_early_scan``, planned from the file alone: ``parquet_columns.file_plan``).

It must find what ``scan_follow_order`` finds on the snapshot that reads the file in place, be used
for that snapshot only, and leave the audit's report unchanged.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

from followaudit.audit import audit_snapshot
from followaudit.bursts.attach import SCAN_COLUMNS, scan_follow_order, start_early_scan
from followaudit.cli import main
from followaudit.sources.ingest import import_file
from followaudit.sources.synth import write_synth
from followaudit.store import Store
from followaudit.store.parquet_columns import file_plan


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    path = tmp_path_factory.mktemp("early") / "followers.parquet"
    write_synth(12_000, path, seed=11)
    return path


def sections(scan) -> dict:
    return {"section": scan.section(), "bursts": [b.to_dict() for b in scan.bursts]}


def test_the_early_scan_is_the_snapshots_own(tmp_path, canonical):
    with Store(tmp_path / "w.duckdb") as store, ThreadPoolExecutor(1) as pool:
        early = start_early_scan(canonical, pool, max_rows=10**9)
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
        early = start_early_scan(canonical, pool, max_rows=10**9)
        assert early is not None
        elsewhere = import_file(store, other)
        copied = import_file(store, canonical, copy=True)  # stored rows: not read in place
        assert not early.applies_to(store, elsewhere.snapshot_id)
        assert not early.applies_to(store, copied.snapshot_id)
        early.result.result()


def test_too_large_or_unreadable_files_are_not_scanned_early(tmp_path, canonical):
    text = tmp_path / "not.parquet"
    text.write_text("follower_id\n1\n")
    with ThreadPoolExecutor(1) as pool:
        assert start_early_scan(canonical, pool, max_rows=11_999) is None
        assert start_early_scan(text, pool, max_rows=10**9) is None


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


VARIANTS = {
    "as written": lambda f: f,
    "narrower ranks": lambda f: f.with_columns(pl.col("follow_rank").cast(pl.Int32)),
    "nanosecond times": lambda f: f.with_columns(pl.col("created_at", "followed_at").cast(pl.Datetime("ns", "UTC"))),
    "no follow times": lambda f: f.drop("followed_at"),
    "no ranks": lambda f: f.drop("follow_rank"),
    "naive times": lambda f: f.with_columns(pl.col("created_at").dt.replace_time_zone(None)),
    "ranks as text": lambda f: f.with_columns(pl.col("follow_rank").cast(pl.Utf8)),
    "an extra column": lambda f: f.with_columns(pl.lit(1).alias("extra")),
    "no platform": lambda f: f.drop("platform"),
    "millisecond times": lambda f: f.with_columns(pl.col("created_at").cast(pl.Datetime("ms", "UTC"))),
}


# DuckDB reads millisecond times as its own (microsecond) type, so the workspace plans them as they
# are; Polars keeps them in milliseconds: the early plan leaves such a file to the audit's own scan.
CONSERVATIVE = {"millisecond times"}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_plan_from_the_file_alone_agrees_with_the_workspaces(tmp_path, canonical, variant):
    """Where the workspace's plan (DuckDB's view of the whole file) reads the file in place, the plan
    from Polars' schema of the scanned columns is its part or None (no early scan: the audit scans
    later, the same); where it does not, the early one is None or never applies (the check decides)."""
    path = tmp_path / "v.parquet"
    VARIANTS[variant](pl.read_parquet(canonical)).write_parquet(path)
    early = file_plan(path, SCAN_COLUMNS)
    with Store(tmp_path / "w.duckdb") as store:
        whole = store.parquet_plan(path)
    if variant in CONSERVATIVE:  # read in place, but with no early scan
        assert whole is not None and early is None
    elif whole is None:
        assert early is None, (variant, early)
    else:
        assert early == {c: whole[c] for c in SCAN_COLUMNS}, (variant, early, whole)


def test_the_early_scan_of_a_widened_file_applies_and_finds_the_same(tmp_path, canonical):
    path = tmp_path / "wide.parquet"
    VARIANTS["nanosecond times"](VARIANTS["narrower ranks"](pl.read_parquet(canonical))).write_parquet(path)
    with Store(tmp_path / "w.duckdb") as store, ThreadPoolExecutor(1) as pool:
        early = start_early_scan(path, pool, max_rows=10**9)
        assert early is not None and set(early.plan.values()) == {"widen", "truncate"}
        placed = import_file(store, path)
        assert early.applies_to(store, placed.snapshot_id)
        assert sections(early.result.result()) == sections(scan_follow_order(store, placed.snapshot_id))
