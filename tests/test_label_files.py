"""Labels live in Parquet files beside the workspace: written, replaced, rolled back, swept, copied."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from conftest import copy_workspace

from followaudit.audit import audit_snapshot
from followaudit.store import Store
from followaudit.store.workspace import MIGRATIONS


def labels(ids: list[str], label: str = "fake") -> pl.DataFrame:
    return pl.DataFrame({"follower_id": ids, "label": [label] * len(ids), "probability": [0.9] * len(ids),
                         "reasons": [["few posts"]] * len(ids)})


def workspace(tmp_path, n: int = 40) -> tuple[Store, int]:
    store = Store(tmp_path / "w.duckdb")
    sid = store.create_snapshot(platform="twitter", account="acct", source="test")
    store.replace_followers(sid, pl.DataFrame({
        "follower_id": [f"u{i}" for i in range(n)], "handle": [f"h{i}" for i in range(n)], "follow_rank": list(range(n)),
        "platform": ["twitter"] * n, "posts_count": [i % 7 for i in range(n)], "followers_count": [30] * n,
        "following_count": [900 + i for i in range(n)], "has_avatar": [i % 2 == 0 for i in range(n)],
    }))
    return store, sid


def test_labels_are_files_that_a_replacement_removes(tmp_path) -> None:
    store, sid = workspace(tmp_path)
    with store:
        store.save_labels(sid, "rules", labels(["u1", "u2"]))
        first = sorted(store.labels_dir.glob("*.parquet"))
        assert len(first) == 1 and first[0].name.startswith(f"s{sid}-rules-")
        store.save_labels(sid, "rules", labels(["u3"], "real"))
        second = sorted(store.labels_dir.glob("*.parquet"))
        assert len(second) == 1 and second != first  # the old file went with its labels
        assert store.labels(sid, "rules").to_dicts() == [{"follower_id": "u3", "label": "real", "probability": 0.9, "reasons": ["few posts"]}]
        assert store.label_counts(sid) == {"rules": 1}
        store.delete_labels(sid)
        assert store.label_counts(sid) == {} and not list(store.labels_dir.glob("*.parquet"))
        assert store.query("SELECT count(*) AS n FROM labels")["n"][0] == 0


def test_a_rolled_back_transaction_leaves_no_file_and_keeps_the_old_labels(tmp_path) -> None:
    store, sid = workspace(tmp_path)
    with store:
        store.save_labels(sid, "rules", labels(["u1", "u2"]))
        kept = sorted(store.labels_dir.glob("*.parquet"))
        with pytest.raises(RuntimeError), store.transaction():
            store.delete_labels(sid, "rules")
            store.append_labels(sid, "rules", labels(["u9"]))
            assert store.label_counts(sid) == {"rules": 1}
            raise RuntimeError("cut short")
        assert sorted(store.labels_dir.glob("*.parquet")) == kept
        assert sorted(store.labels(sid, "rules")["follower_id"].to_list()) == ["u1", "u2"]


def test_opening_sweeps_files_no_audit_refers_to(tmp_path) -> None:
    store, sid = workspace(tmp_path)
    with store:
        store.save_labels(sid, "rules", labels(["u1"]))
        stray = store.labels_dir / f"s{sid}-rules-killedmidway.parquet"
        labels(["u2"]).write_parquet(stray)
    with Store(tmp_path / "w.duckdb") as again:
        assert not stray.exists() and again.label_counts(sid) == {"rules": 1}


def test_added_reasons_join_the_label_once_and_are_replaced(tmp_path) -> None:
    store, sid = workspace(tmp_path)
    with store:
        store.save_labels(sid, "rules", labels(["u1", "u2"]))
        store.set_added_reasons(sid, "rules", pl.DataFrame({"follower_id": ["u1", "u1", "u7"], "reason": ["in burst #1: x", "few posts", "in burst #1: x"]}))
        got = {r["follower_id"]: r["reasons"] for r in store.labels(sid, "rules").to_dicts()}
        assert got == {"u1": ["few posts", "in burst #1: x"], "u2": ["few posts"]}  # no label for u7, no duplicate
        # the plain view has the label's own reasons only (cheap for counts and joins)
        own = store.query("SELECT reasons FROM labels WHERE follower_id = 'u1'")["reasons"][0].to_list()
        assert own == ["few posts"]
        store.set_added_reasons(sid, "rules", pl.DataFrame({"follower_id": ["u2"], "reason": ["in burst #2: y"]}))
        got = {r["follower_id"]: r["reasons"] for r in store.labels(sid, "rules").to_dicts()}
        assert got == {"u1": ["few posts"], "u2": ["few posts", "in burst #2: y"]}


def test_a_workspace_copied_without_its_labels_folder_reads_as_not_audited(tmp_path) -> None:
    store, sid = workspace(tmp_path)
    with store:
        audit_snapshot(store, sid, method="rules")
        assert store.label_counts(sid) == {"rules": 40}
        audited = store.labels(sid, "rules").sort("follower_id")
    bare = tmp_path / "bare.duckdb"
    bare.write_bytes((tmp_path / "w.duckdb").read_bytes())
    with Store(bare, read_only=True) as copy:
        assert copy.label_counts(sid) == {} and copy.labels(sid, "rules").height == 0
    whole = copy_workspace(tmp_path / "w.duckdb", tmp_path / "whole.duckdb")
    with Store(whole, read_only=True) as copy:
        assert copy.labels(sid, "rules").sort("follower_id").equals(audited)
    with Store(bare) as copy:  # auditing again writes its own labels
        audit_snapshot(copy, sid, method="rules")
        assert copy.labels(sid, "rules").sort("follower_id").equals(audited)


def test_labels_stored_before_the_files_stay_readable_and_an_audit_replaces_them(tmp_path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))  # a workspace as migrations 1-7 left it, with labels in its table
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)")
    for version, name, sql in MIGRATIONS[:7]:
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    con.execute("INSERT INTO snapshots (platform, account, source) VALUES ('twitter', 'acct', 'test')")
    con.execute("INSERT INTO follower_rows (snapshot_id, follower_id, platform) VALUES (1, 'u1', 'twitter'), (1, 'u2', 'twitter')")
    con.execute("INSERT INTO labels VALUES (1, 'u1', 'rules', 'fake', NULL, ['few posts']), (1, 'u2', 'rules', 'real', NULL, NULL)")
    con.close()
    with Store(path, read_only=True) as old:  # read-only: not migrated, its table is read as it is
        assert old.label_counts(1) == {"rules": 2} and old.labels(1, "rules").height == 2
    with Store(path) as store:
        assert store.schema_version() == 8 and store.label_counts(1) == {"rules": 2}
        assert store.labels(1, "rules").sort("follower_id")["reasons"].to_list() == [["few posts"], None]
        store.save_labels(1, "rules", labels(["u1", "u2"], "real"))
        assert store.query("SELECT count(*) AS n FROM label_rows")["n"][0] == 0
        assert store.labels(1, "rules")["label"].to_list() == ["real", "real"]


def test_a_followers_reader_in_another_thread_does_not_need_the_label_files(tmp_path) -> None:
    # the audit's burst scan reads the follow order through a cursor of its own while the audit
    # replaces the snapshot's label files: that cursor must not bind the labels view
    store, sid = workspace(tmp_path)
    with store:
        store.save_labels(sid, "rules", labels(["u1", "u2"]))
        for path in store.labels_dir.glob("*.parquet"):
            path.unlink()  # gone between this connection's view and a new cursor
        order = store.follower_columns(sid, ["follow_rank", "created_at", "followed_at"])
        assert order.height == 40 and order["follow_rank"].to_list() == list(range(40))
        with pytest.raises(duckdb.IOException):
            store.cursor()  # a cursor with the labels view does read the listing


def test_a_reader_reads_from_another_thread_while_labels_are_written(tmp_path) -> None:
    """``Store.reader()``: the audit reads the platform's evidence and the reach inputs through it
    while its writer thread stores label files on the store's own connection."""
    from concurrent.futures import ThreadPoolExecutor

    store, sid = workspace(tmp_path)
    with store:
        reader = store.reader()
        with ThreadPoolExecutor(1) as pool:
            counted = pool.submit(lambda: [reader.row("SELECT count(*) AS n FROM followers WHERE snapshot_id = ?", [sid])["n"]
                                           for _ in range(20)])
            for i in range(5):
                store.save_labels(sid, "rules", labels([f"u{i}"]))
            assert counted.result() == [40] * 20
        assert reader.con is not store.con and store.label_counts(sid) == {"rules": 1}
        reader.close()  # its cursor alone
        assert store.row("SELECT count(*) AS n FROM followers")["n"] == 40


def test_files_hold_no_constant_columns_and_older_files_with_them_stay_readable(tmp_path) -> None:
    """A label file's snapshot and method are its registration's (label_files), constants of its
    branch of the view; files written before kept them as columns, and read the same."""
    store, sid = workspace(tmp_path)
    with store:
        other = store.create_snapshot(platform="twitter", account="other", source="test")
        store.save_labels(sid, "rules", labels(["u1", "u2"]))
        new_file = next(store.labels_dir.glob("*.parquet"))
        assert pl.read_parquet_schema(new_file).names() == ["follower_id", "label", "probability", "reasons"]
        old_name = f"s{other}-model-000000000000.parquet"  # as an audit wrote it before
        pl.DataFrame({"snapshot_id": [other], "follower_id": ["u9"], "method": ["model"], "label": ["real"],
                      "probability": [0.1], "reasons": [["active"]]}).write_parquet(store.labels_dir / old_name)
        store.con.execute("INSERT INTO label_files VALUES (?, 'model', ?, 1)", [other, old_name])
        store._attach_labels()
        rows = store.query("SELECT snapshot_id, follower_id, method, label FROM labels ORDER BY snapshot_id, follower_id")
        assert rows.rows() == [(sid, "u1", "rules", "fake"), (sid, "u2", "rules", "fake"), (other, "u9", "model", "real")]
        assert store.labels(other, "model").to_dicts() == [{"follower_id": "u9", "label": "real", "probability": 0.1, "reasons": ["active"]}]
        assert store.label_counts(sid) == {"rules": 2}
