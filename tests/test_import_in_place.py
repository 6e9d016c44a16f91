"""Canonical Parquet read in place: the same followers and audit as a copy, and a clear line when
the file is gone or changed; anything an import would change or reject is imported the usual way."""

from __future__ import annotations

import json
import os
import shutil

import duckdb
import polars as pl
import pytest

from followaudit.audit import audit_snapshot
from followaudit.cli import main
from followaudit.errors import StoreError
from followaudit.report.evidence import known_counts_from_footer, known_counts_sql
from followaudit.sources.formats.common import _clean
from followaudit.sources.in_place import _changed_by_import
from followaudit.sources.ingest import import_file
from followaudit.sources.synth import write_synth
from followaudit.store import Store
from followaudit.store.parquet_columns import parquet_slices, slice_spans
from followaudit.store.workspace import MIGRATIONS


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    path = tmp_path_factory.mktemp("in_place") / "followers.parquet"
    write_synth(3000, path, seed=7)
    return path


def ordered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("follower_id")


def test_in_place_reads_the_rows_a_copy_stores(tmp_path, canonical):
    with Store(tmp_path / "w.duckdb") as store:
        placed = import_file(store, canonical)
        copied = import_file(store, canonical, copy=True, account="demo_account")  # other options: its own snapshot
        assert "read in place" in placed.detected.describe() and "read in place" not in copied.detected.describe()
        assert placed.n_followers == copied.n_followers == 3000 and placed.n_rejects == 0
        assert store.row("SELECT count(*) AS n FROM follower_rows WHERE snapshot_id = ?", [placed.snapshot_id])["n"] == 0
        assert store.row("SELECT count(*) AS n FROM follower_rows WHERE snapshot_id = ?", [copied.snapshot_id])["n"] == 3000
        assert ordered(store.followers(placed.snapshot_id)).equals(ordered(store.followers(copied.snapshot_id)))
        a = store.snapshot(placed.snapshot_id)
        b = store.snapshot(copied.snapshot_id)
        assert (a.platform, a.account, a.n_followers, a.taken_at) == (b.platform, b.account, b.n_followers, b.taken_at)
        reports = [audit_snapshot(store, sid, method="model").report for sid in (placed.snapshot_id, copied.snapshot_id)]
        shares = [{k: (v.share, v.low, v.high) for k, v in r.headline_shares().items()} for r in reports]
        assert shares[0] == shares[1]
        assert reports[0].bursts == reports[1].bursts and reports[0].bursts
        assert reports[0].top_reasons == reports[1].top_reasons
        assert ordered(store.labels(placed.snapshot_id, "model")).equals(ordered(store.labels(copied.snapshot_id, "model")))
        with pytest.raises(StoreError, match="read in place"):  # its rows live in the user's file
            store.update_followers(placed.snapshot_id, pl.DataFrame({"follower_id": ["x"], "handle": ["y"]}), ["handle"])
        # the same file again replaces its snapshot, in place as before
        again = import_file(store, canonical)
        assert again.snapshot_id == placed.snapshot_id and again.reused
    with Store(tmp_path / "w.duckdb", read_only=True) as ro:  # the web app and `report` open it read-only
        assert ro.followers(placed.snapshot_id).height == 3000
        assert sum(b.height for b in ro.iter_followers(placed.snapshot_id, ["follower_id"], 1000)) == 3000
        with ro.cursor() as cur:  # a cursor of its own sees the file too
            assert cur.execute("SELECT count(*) FROM followers WHERE snapshot_id = ?", [placed.snapshot_id]).fetchone()[0] == 3000


def broken(tmp_path, canonical, change):
    frame = change(pl.read_parquet(canonical))
    target = tmp_path / "changed.parquet"
    frame.write_parquet(target)
    return target


@pytest.mark.parametrize(
    "change, rejects",
    [
        (lambda f: f.with_columns(pl.when(pl.col("follow_rank") == 5).then(pl.col("follower_id").filter(pl.col("follow_rank") == 4).first()).otherwise("follower_id").alias("follower_id")), 1),
        (lambda f: f.with_columns(pl.when(pl.col("follow_rank") == 5).then(pl.lit(" padded ")).otherwise("handle").alias("handle")), 0),
        (lambda f: f.with_columns(pl.when(pl.col("follow_rank") == 9).then(None).otherwise("handle_length").alias("handle_length")), 0),
        (lambda f: f.with_columns(pl.col("followers_count").cast(pl.Float64)), 0),
        (lambda f: f.with_columns(pl.lit(1).alias("extra")), 0),
    ],
    ids=["repeated id", "untrimmed handle", "underived length", "other type", "extra column"],
)
def test_what_an_import_would_change_is_imported(tmp_path, canonical, change, rejects):
    target = broken(tmp_path, canonical, change)
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, target)
        assert "read in place" not in result.detected.describe()
        assert result.n_rejects == rejects and result.n_followers == 3000 - rejects
        assert store.row("SELECT count(*) AS n FROM follower_rows")["n"] == 3000 - rejects


@pytest.mark.parametrize(
    "change, in_place",
    [
        (lambda f: f.with_columns(pl.when(pl.col("follow_rank") == 2990).then(pl.col("follower_id").filter(pl.col("follow_rank") == 4).first()).otherwise("follower_id").alias("follower_id")), False),
        (lambda f: f.with_columns(pl.when(pl.col("follow_rank") == 2995).then(pl.lit(" padded ")).otherwise("handle").alias("handle")), False),
        (lambda f: f, True),
    ],
    ids=["repeated id", "untrimmed handle", "as written"],
)
def test_the_audit_command_checks_ids_and_texts_while_it_labels(tmp_path, canonical, capsys, change, in_place):
    """`audit` reads a canonical file in place as soon as its footer and columns pass, and checks its
    ids and texts on the batches it reads (import_file(check_rows=False), audit_snapshot(row_check=)):
    when they fail, the file is imported and audited again, into the same snapshot, with exactly the
    result of `audit --copy`."""
    target = broken(tmp_path, canonical, change)
    runs = {}
    for name, extra in (("deferred", []), ("copy", ["--copy"])):
        db = tmp_path / f"{name}.duckdb"
        with pytest.raises(SystemExit) as done:
            main(["audit", str(target), "--format", "json", "--db", str(db), *extra])
        out, err = capsys.readouterr()
        assert done.value.code == 0, err
        runs[name] = (json.loads(out), err, db)
    (deferred, err, db), (copied, _, _) = runs["deferred"], runs["copy"]
    for key in ("followers_audited", "shares", "corrected", "bursts", "top_reasons"):
        assert deferred.get(key) == copied.get(key), key
    with Store(db, read_only=True) as store:
        assert store.row("SELECT count(*) AS n FROM snapshots")["n"] == 1
        files = store.row("SELECT count(*) AS n FROM follower_files")["n"]
        assert store.label_counts(1)["model"] == deferred["followers_audited"]
    assert ("imported, not read in place" not in err) == in_place and files == int(in_place)


def test_the_check_finds_exactly_the_text_an_import_trims():
    # the check compares lengths; the import keeps ``_clean``'s text: they must agree on every kind of blank
    text = ["a", "", " ", "  ", " a", "a ", "a b", "\ta", "a\n", "\u00a0a", "a\u3000", "\u2003", "é", "ab\u200b", "\u00e9 ", None]
    frame = pl.DataFrame({"t": text})
    found = frame.select(_changed_by_import("t").fill_null(False)).to_series().to_list()
    assert found == frame.select(pl.col("t").is_not_null() & _clean("t").ne_missing(pl.col("t"))).to_series().to_list()
    assert found == [t is not None and (t == "" or t.strip() != t) for t in text]


@pytest.mark.parametrize("statistics", [True, False])
def test_known_fields_from_the_footer_are_the_counted_ones(tmp_path, canonical, statistics):
    rank = pl.col("follow_rank")
    frame = pl.read_parquet(canonical).with_columns(  # nulls spread unevenly over the row groups
        pl.when(rank % 7 == 0).then(None).otherwise("posts_count").alias("posts_count"),
        pl.when(rank > 2500).then(None).otherwise("last_active_at").alias("last_active_at"),
        pl.when((rank < 1250) | (rank >= 2000)).then(None).otherwise("bio").alias("bio"),  # a row group with bio partly null
        pl.when(rank >= 2000).then(None).otherwise("bio_length").alias("bio_length"),
    )
    target = tmp_path / "nulls.parquet"
    frame.write_parquet(target, row_group_size=500, statistics=statistics)
    with Store(tmp_path / "w.duckdb") as store:
        sid = import_file(store, target).snapshot_id
        counted = {k: int(v) for k, v in store.row(known_counts_sql(), [sid]).items()}
        assert counted["posts_count"] < 3000 and counted["last_active_at"] < 3000 and counted["bio"] == 2000 and counted["n"] == 3000
        footer = known_counts_from_footer(store.parquet_footer(sid))
        assert footer == (counted if statistics else None)
        # a row group where bio and bio_length are both partly null does not say how many have either
        mixed = store.parquet_footer(sid).with_columns(
            pl.when(pl.col("column").is_in(["bio", "bio_length"]) & (pl.col("row_group") == 0)).then(1).otherwise("nulls").alias("nulls"))
        assert known_counts_from_footer(mixed) is None or not statistics
        assert store.parquet_footer(sid) is not None and known_counts_from_footer(store.parquet_footer(sid).head(0)) is None


def test_options_the_file_cannot_honour_copy_it(tmp_path, canonical):
    with Store(tmp_path / "w.duckdb") as store:
        assert "read in place" not in import_file(store, canonical, account="someone").detected.describe()
        assert "read in place" not in import_file(store, canonical, platform="bluesky").detected.describe()
        assert "read in place" in import_file(store, canonical, platform="twitter").detected.describe()


def run(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_a_moved_or_changed_file_is_one_line_and_the_rest_stays_readable(tmp_path, canonical, capsys):
    target = tmp_path / "mine.parquet"
    shutil.copy(canonical, target)
    db = tmp_path / "w.duckdb"
    assert run(capsys, "audit", target, "--db", db, "--format", "json")[0] == 0
    assert run(capsys, "import", canonical, "--db", db, "--copy", "--account", "other")[0] == 0
    moved = tmp_path / "elsewhere.parquet"
    target.rename(moved)
    code, out, err = run(capsys, "audit", "1", "--db", db)
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.startswith(f"Error: snapshot 1 reads its followers from {target.resolve()}, which is missing")
    code, out, _ = run(capsys, "snapshots", "--db", db, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2
    assert run(capsys, "audit", "2", "--db", db, "--format", "json")[0] == 0
    moved.rename(target)
    assert run(capsys, "audit", "1", "--db", db, "--format", "json")[0] == 0
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    code, _, err = run(capsys, "audit", "1", "--db", db)
    assert code == 1 and "which changed after it was imported" in err and "Traceback" not in err
    with Store(db) as store:
        with pytest.raises(StoreError, match="changed after"):
            store.snapshot(1)
        store.delete_snapshot(1)
        assert not store.file_problems


def test_workspaces_from_before_keep_their_followers(tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)")
    for version, name, sql in MIGRATIONS:
        if version < 7:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    con.execute("INSERT INTO snapshots (platform, account) VALUES ('twitter', 'old')")
    con.execute("INSERT INTO followers (snapshot_id, follower_id, handle) VALUES (1, '42', 'kept')")
    con.close()
    with Store(db) as store:
        assert store.schema_version() >= 7
        assert store.followers(1)["handle"].to_list() == ["kept"]


# Files from other tools: what an import would only widen is read in place, as the import stores it.
WIDENED = {
    "without optional columns": lambda df: df.drop("raw", "truth_label", "likes_count", "listed_count"),
    "narrower integers": lambda df: df.with_columns(pl.col("followers_count", "posts_count").cast(pl.Int32)),
    "nanosecond times": lambda df: df.with_columns(
        pl.col("created_at").dt.cast_time_unit("ns") + pl.duration(nanoseconds=999),  # truncated, not rounded
        pl.col("last_active_at").dt.cast_time_unit("ns")),
}
NOT_IN_PLACE = {
    "naive times": lambda df: df.with_columns(pl.col("created_at").dt.replace_time_zone(None)),
    "a length the import derives": lambda df: df.drop("handle_length"),
    "no platform column": lambda df: df.drop("platform"),
}


@pytest.mark.parametrize("change", list(WIDENED) + list(NOT_IN_PLACE))
def test_files_from_other_tools_read_in_place_when_an_import_would_only_widen_them(tmp_path, canonical, change):
    path = tmp_path / "other.parquet"
    (WIDENED.get(change) or NOT_IN_PLACE[change])(pl.read_parquet(canonical)).write_parquet(path)
    with Store(tmp_path / "w.duckdb") as store:
        placed = import_file(store, path, platform="twitter")
        copied = import_file(store, path, copy=True, platform="twitter", account="demo_account")
        assert ("read in place" in placed.detected.describe()) == (change in WIDENED)
        assert ordered(store.followers(placed.snapshot_id)).equals(ordered(store.followers(copied.snapshot_id)))
        batches = pl.concat(store.iter_followers(placed.snapshot_id, batch_rows=1000))  # Polars reads the file itself
        assert ordered(batches).equals(ordered(store.followers(copied.snapshot_id)))
        reports = [audit_snapshot(store, sid, method="model").report for sid in (placed.snapshot_id, copied.snapshot_id)]
        assert [r.headline_shares()["fake"].share for r in reports][0] == reports[1].headline_shares()["fake"].share
        # read in place, the known fields come from the footer and the follow order from Polars
        assert reports[0].evidence == reports[1].evidence and reports[0].bursts == reports[1].bursts
        assert ordered(store.labels(placed.snapshot_id, "model")).equals(ordered(store.labels(copied.snapshot_id, "model")))


@pytest.mark.parametrize("groups", [[250_000] * 12, [1_000_000] * 3, [262_144] * 5 + [10], [122_880] * 10, [7] * 30,
                                    [1, 300, 2, 600], [0, 0, 3], []])
def test_slices_cover_the_file_in_order_and_start_on_its_row_groups(groups: list[int]) -> None:
    rows = 250_000 if sum(groups) > 10_000 else 250
    spans = slice_spans(groups, rows)
    assert [s for s in spans if s[1] <= 0] == []
    assert sum(size for _, size in spans) == sum(groups)
    assert all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:], strict=False))
    if spans:
        assert spans[0] == (0, min(rows // 4, spans[0][1]))
    # past the first, every slice starts on a group boundary unless it cuts a group of 1.5x rows or more
    boundaries = {sum(groups[:i]) for i in range(len(groups) + 1)}
    big = [(sum(groups[:i]), sum(groups[: i + 1])) for i, g in enumerate(groups) if round(g / rows) > 1]
    for start, _ in spans[2:]:
        assert start in boundaries or any(lo < start < hi for lo, hi in big)
    assert max((size for _, size in spans), default=0) <= max(rows * 3 // 2, max(groups, default=0))


def test_slices_of_a_file_are_its_rows(tmp_path) -> None:
    path = tmp_path / "groups.parquet"
    frame = pl.DataFrame({"x": list(range(1_000))})
    frame.write_parquet(path, row_group_size=300)
    read = pl.concat(parquet_slices(pl.scan_parquet(path), 200, [300, 300, 300, 100]))
    assert read.equals(frame)
    assert pl.concat(parquet_slices(pl.scan_parquet(path), 200, [5])).equals(frame)  # wrong groups: plain slices
