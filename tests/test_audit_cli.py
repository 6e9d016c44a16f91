"""`followaudit audit` and `demo` through the real entry point (exit codes, stdout vs stderr)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from followaudit.cli import main
from followaudit.store import Store


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


SHARE_KEYS = {"share", "low", "high", "count"}


def check_schema(doc):
    for key in ("account", "platform", "snapshot", "followers_audited", "method", "confidence_level", "shares", "schema_version"):
        assert key in doc
    assert set(doc["shares"]) == {"fake", "inactive", "real"}
    for share in doc["shares"].values():
        assert SHARE_KEYS <= set(share)
        assert 0.0 <= share["low"] <= share["share"] <= share["high"] <= 1.0
        assert share["method"].startswith("Wilson score 95% interval")
    assert sum(s["count"] for s in doc["shares"].values()) == doc["followers_audited"]
    assert sum(s["share"] for s in doc["shares"].values()) == pytest.approx(1.0)


def test_audit_cresci_json_schema(capsys, tmp_path, shared_data):
    code, out, err = run(capsys, "audit", str(shared_data / "cresci-2015" / "users.csv"), "--format", "json", "--db", str(tmp_path / "w.duckdb"))
    assert code == 0, err
    doc = json.loads(out)
    check_schema(doc)
    assert doc["followers_audited"] == 4458
    assert doc["platform"] == "twitter"
    assert "detected" in err.lower()


def test_demo_json_covers_truth_and_csv_streams(capsys, tmp_path):
    db = tmp_path / "demo.duckdb"
    code, out, err = run(capsys, "demo", "--db", str(db), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    check_schema(doc)
    assert doc["followers_audited"] == 4000
    # The synthetic truth: 800 bought, 800 inactive, 2,400 real (see followaudit.synth).
    truth = {"fake": 0.2, "inactive": 0.2, "real": 0.6}
    headline = doc["corrected"] or doc["shares"]
    for label, share in truth.items():
        assert headline[label]["low"] <= share <= headline[label]["high"], (label, headline[label])

    code, out, _ = run(capsys, "audit", "demo_account", "--db", str(db), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 4000
    assert set(rows[0]) >= {"follower_id", "handle", "label", "reasons", "probability"}
    assert {r["label"] for r in rows} == {"fake", "inactive", "real"}
    assert all(r["reasons"] for r in rows)


def test_audit_of_unknown_snapshot_is_one_clear_line(capsys, tmp_path):
    code, out, err = run(capsys, "audit", "nobody", "--db", str(tmp_path / "w.duckdb"))
    assert code == 1
    assert out == ""
    assert err.startswith("Error: no snapshot 'nobody' in ")
    assert err.rstrip().endswith("run `followaudit snapshots` to list what is stored")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_audit_of_a_snapshot_without_followers_is_an_error(capsys, tmp_path):
    from followaudit.store import Store

    db = tmp_path / "w.duckdb"
    with Store(db) as store:
        store.create_snapshot(platform="twitter", account="empty", source="x")
    code, out, err = run(capsys, "audit", "empty", "--db", str(db))
    assert code == 1
    assert err.strip() == "Error: snapshot 1 has no followers to audit — see `followaudit rejects 1`, then re-import with --platform/--format/--map"


MIB_CSV = Path(__file__).parent / "fixtures" / "import" / "mib.csv"


def run_as_program(args: list[str], *before: str) -> subprocess.CompletedProcess:
    """``followaudit ARGS`` run as the program (``main()`` of a fresh interpreter, as the console
    script runs it), after the lines ``before``; a line printed after ``main()`` would mean it returned."""
    code = "\n".join([
        "import sys", *before,
        "from followaudit.cli.app import main",
        f"sys.argv = ['followaudit', *{args!r}]",
        "main()",
        "print('not reached: main ends the process', file=sys.stderr)",
    ])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "not reached" not in done.stderr
    return done


def test_batch_command_run_as_a_program_leaves_quickly_but_cleanly(tmp_path):
    """Run as the program, a finished audit skips the interpreter's teardown (cli.app.leave_quickly):
    its output is whole, its exit code 0, its workspace closed, and registered clean-ups still run."""
    marker = tmp_path / "cleaned-up"
    done = run_as_program(["audit", str(MIB_CSV), "--format", "json", "--db", str(tmp_path / "w.duckdb")],
                          "import atexit, pathlib", f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')")
    assert json.loads(done.stdout)["followers_audited"] > 0
    assert marker.read_text() == "yes"
    assert not (tmp_path / "w.duckdb.wal").exists()  # closed and checkpointed, not left to a replay


def test_import_run_as_a_program_leaves_quickly_with_every_row_stored(tmp_path):
    """`import` ends the same way (cli.app.QUICK_EXIT_COMMANDS): its summary is printed, and its
    workspace holds every row, closed and checkpointed, when the process has gone."""
    db = tmp_path / "w.duckdb"
    done = run_as_program(["import", str(MIB_CSV), "--db", str(db)])
    assert "stored" in done.stdout + done.stderr
    assert not (tmp_path / "w.duckdb.wal").exists()
    with Store(db, read_only=True) as store:
        stored = store.query("SELECT count(*) AS n FROM followers")["n"][0]
        rejected = store.query("SELECT count(*) AS n FROM rejects")["n"][0]
    assert stored > 0
    assert stored + rejected == sum(1 for _ in MIB_CSV.open()) - 1  # a follower or a reject a line after the header
