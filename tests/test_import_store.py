"""import_file into a real DuckDB workspace: idempotence, metadata, Parquet round trip, CLI commands."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import click
import polars as pl
import pytest
from click.testing import CliRunner

from followaudit.cli import main
from followaudit.cli.importing import import_options
from followaudit.sources.files import read_followers
from followaudit.sources.ingest import import_file
from followaudit.store import Store

FIX = Path(__file__).parent / "fixtures" / "import"


def run(capsys, *args: object) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_import_file_stores_followers_rejects_and_metadata(tmp_path):
    source = tmp_path / "users.jsonl"
    shutil.copy(FIX / "twitter_v1.jsonl", source)
    os.utime(source, (1_600_000_000, 1_600_000_000))
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, source)
        assert (result.n_followers, result.n_rejects, result.reused) == (3, 7, False)
        assert result.first_reject == {
            "file": str(source), "line": 4, "column": "created_at", "reason": "unparseable date: 'yesterday-ish'",
            "raw": (FIX / "twitter_v1.jsonl").read_text().splitlines()[3],
        }
        snap = store.snapshot(result.snapshot_id)
        assert snap.platform == "twitter" and snap.source == str(source)
        assert snap.taken_at == datetime.fromtimestamp(1_600_000_000, UTC)
        assert snap.design.kind == "full" and snap.design.n == 3
        assert snap.settings["encoding"] == "utf-8" and snap.settings["strict"] is False
        assert snap.status == "complete" and snap.n_followers == 3 and snap.n_rejects == 7
        stored = store.followers(result.snapshot_id)
        assert stored["follower_id"].to_list() == ["9008", "9002", "9001"]  # follow order, oldest first
        assert store.rejects(result.snapshot_id)["line"].to_list() == [4, 5, 6, 7, 8, 9, 10]


def test_reimport_same_file_reuses_snapshot_without_duplicates(tmp_path):
    with Store(tmp_path / "w.duckdb") as store:
        first = import_file(store, FIX / "bluesky_followers.jsonl")
        again = import_file(store, FIX / "bluesky_followers.jsonl")
        assert again.snapshot_id == first.snapshot_id and again.reused and not first.reused
        assert store.row("SELECT count(*) AS n FROM followers")["n"] == 3
        assert store.row("SELECT count(*) AS n FROM snapshots")["n"] == 1
        other = import_file(store, FIX / "bluesky_followers.jsonl", order="oldest-first")  # other options: new snapshot
        assert other.snapshot_id != first.snapshot_id
        assert store.snapshot(first.snapshot_id).account == "brand.example.com"


def test_reimport_changed_content_is_a_new_snapshot(tmp_path):
    source = tmp_path / "m.json"
    shutil.copy(FIX / "mastodon_accounts.json", source)
    with Store(tmp_path / "w.duckdb") as store:
        first = import_file(store, source)
        data = json.loads(source.read_text())
        source.write_text(json.dumps(data[:1]))
        second = import_file(store, source)
        assert second.snapshot_id != first.snapshot_id
        assert store.snapshot(second.snapshot_id).n_followers == 1
        assert store.snapshot(first.snapshot_id).n_followers == 2


def test_export_then_import_canonical_parquet_round_trip(capsys, tmp_path):
    db = tmp_path / "w.duckdb"
    code, _, err = run(capsys, "import", FIX / "4242_network.json", "--profiles", FIX / "network_profiles.jsonl", "--db", db)
    assert code == 0
    assert err.splitlines()[:3] == [
        "detected: Twitter follower id list + v1.1 users profiles, JSON, order newest-first",
        "stored 4 followers as snapshot 1",
        "1 followers have no profile (kept with their rank, profile fields empty)",
    ]
    out_file = tmp_path / "s1.parquet"
    code, _, err = run(capsys, "export", "1", "-o", out_file, "--db", db)
    assert code == 0 and err == f"wrote 4 followers of snapshot 1 to {out_file}\n"
    code, _, err = run(capsys, "import", out_file, "--db", db)
    assert code == 0
    assert err.splitlines()[0] == "detected: Twitter followers, PARQUET (canonical table, read in place), ranks from the file"
    with Store(db, read_only=True) as store:
        before, after = store.followers(1), store.followers(2)
        assert store.snapshot(2).account == "4242"
    assert after.equals(before)


def test_parquet_missing_ids_and_duplicates_are_rejected(tmp_path):
    frame = read_followers(FIX / "twitter_v2_users.jsonl").followers
    broken = pl.concat([frame, frame.head(1), frame.head(1).with_columns(pl.lit(None, pl.Utf8).alias("follower_id"))])
    target = tmp_path / "b.parquet"
    broken.write_parquet(target)
    parsed = read_followers(target)
    assert parsed.followers.height == 2
    assert parsed.rejects.select("line", "column", "reason").rows() == [
        (3, "follower_id", "duplicate follower_id 100 (first seen on line 1)"),
        (4, "follower_id", "missing follower_id"),
    ]


def test_snapshots_command_text_and_json(capsys, tmp_path):
    db = tmp_path / "w.duckdb"
    run(capsys, "import", FIX / "mib.csv", "--db", db)
    run(capsys, "import", FIX / "bluesky_followers.jsonl", "--db", db)
    code, out, _ = run(capsys, "snapshots", "--db", db, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["snapshot_id"], r["platform"], r["account"], r["followers"], r["rejects"]) for r in rows] == [
        (1, "twitter", None, 2, 1), (2, "bluesky", "brand.example.com", 3, 0),
    ]
    code, out, _ = run(capsys, "snapshots", "--db", db)
    assert code == 0 and "brand.example.com" in out and str(FIX / "mib.csv") in out
    code, _, err = run(capsys, "rejects", "brand.example.com", "--db", db)
    assert code == 0 and err == "snapshot 2 has no rejected rows\n"


def test_rejects_unknown_snapshot(capsys, tmp_path):
    db = tmp_path / "w.duckdb"
    run(capsys, "import", FIX / "mib.csv", "--db", db)
    code, _, err = run(capsys, "rejects", "99", "--db", db)
    assert code == 1 and err == f"Error: no snapshot '99' in {db} — run `followaudit snapshots` to list what is stored\n"


def test_import_options_decorator_passes_import_file_keywords(tmp_path):
    seen = {}

    @click.command()
    @click.argument("path")
    @import_options
    def fake(path: str, **opts: object) -> None:
        seen.update(opts)
        with Store(tmp_path / "w.duckdb") as store:
            seen["result"] = import_file(store, path, **opts)

    result = CliRunner().invoke(
        fake, [str(FIX / "generic.csv"), "--input-format", "csv", "--map", "follower_id=user_ref", "--order", "oldest-first", "--account", "acme"]
    )
    assert result.exit_code == 0, result.output
    assert seen["mapping"] == ("follower_id=user_ref",) and seen["input_format"] == "csv"
    # "joined" is still found by name (a created_at synonym), so its bad date is a reject
    assert (seen["result"].n_followers, seen["result"].n_rejects, seen["result"].account) == (2, 1, "acme")
