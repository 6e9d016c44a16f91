"""Streamed CSV and Parquet: blocks must not change what is read, and a file is parsed once."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest

from followaudit.sources.files import read_followers
from followaudit.sources.formats import stream, tabular
from followaudit.sources.ingest import import_file
from followaudit.store import Store


def write_csv(path, n: int, *, extra: dict[int, str] | None = None) -> dict[int, int]:
    """n canonical-ish records (ids 1..n) after a header; ``extra`` replaces record i with raw text.
    Every 7th bio holds a quoted line break. Returns each record's first physical line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["follower_id", "handle", "bio", "followers_count", "created_at"])
    starts: dict[int, int] = {}
    line = 2
    for i in range(1, n + 1):
        starts[i] = line
        if i in (extra or {}):
            out.write(extra[i] + "\n")
            line += 1
            continue
        bio = f"line one\nline two {i}" if i % 7 == 0 else f"bio, {i}"
        writer.writerow([str(i), f"user{i}", bio, str(i * 3), "2020-01-02"])
        line += 2 if i % 7 == 0 else 1
    path.write_text(out.getvalue())
    return starts


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(stream, "BLOCK_BYTES", 300)  # a few records per block
    monkeypatch.setattr(stream, "BATCH_ROWS", 1)  # and each block stored on its own


def whole(path, **kwargs):
    saved = stream.BLOCK_BYTES
    stream.BLOCK_BYTES = 1 << 30
    try:
        return read_followers(path, **kwargs)
    finally:
        stream.BLOCK_BYTES = saved


def test_csv_blocks_give_the_same_rows_lines_and_rejects(tmp_path, small_blocks):
    target = tmp_path / "f.csv"
    # line numbers count the bios' line breaks: id 7's record spans lines 8-9, so id 8 starts on 10
    at = write_csv(target, 60, extra={30: "5,again,x,1,2020-01-01", 41: "41,u,b,abc,2020-01-01", 52: "52,u,b,1,2,extra,fields"})
    assert stream.plan(target, platform=None, fmt=None, order=None, mapping=None, profiles=None).kind == "csv"
    streamed = read_followers(target)
    one = whole(target)
    assert streamed.followers.equals(one.followers)
    assert streamed.rejects.equals(one.rejects)
    text = target.read_text().split("\n")
    assert (at[5], at[30], at[41], at[52]) == (6, 35, 47, 60)
    assert streamed.rejects.select("line", "column", "reason").rows() == [
        (35, "follower_id", "duplicate follower_id 5 (first seen on line 6)"),
        (47, "followers_count", "not a number: 'abc'"),
        (60, "(record)", "7 fields where the header has 5"),
    ]
    assert streamed.rejects["raw"].to_list() == [text[34], text[46], text[59]]  # the lines as in the file
    bios = dict(zip(streamed.followers["follower_id"], streamed.followers["bio"], strict=True))
    assert bios["14"] == "line one\nline two 14" and bios["15"] == "bio, 15"
    assert streamed.detected.describe() == one.detected.describe()


def test_csv_module_numbers_blocks_with_blank_lines(tmp_path, small_blocks):
    target = tmp_path / "f.csv"
    write_csv(target, 30, extra={12: "", 20: ""})  # blank lines instead of two records
    parsed = read_followers(target)
    assert parsed.rejects.height == 0 and parsed.followers.height == 28
    frame, rejects = tabular.csv_block(b'1,a\n\n"2\n",b\n3,c,d\n', 1, ["x", "y"], ",", "f.csv")
    assert frame.select("line", "x").rows() == [(2, "1"), (4, "2\n")]
    assert rejects.select("line", "reason", "raw").rows() == [(6, "3 fields where the header has 2", "3,c,d")]


def test_canonical_csv_stores_no_copy_of_its_row_and_mapped_csv_keeps_the_rest(tmp_path, small_blocks):
    target = tmp_path / "f.csv"
    write_csv(target, 20)
    assert read_followers(target).followers["raw"].null_count() == 20  # every column is canonical
    mapped = tmp_path / "m.csv"
    mapped.write_text("uid,who,shoe_size\n" + "".join(f"{i},u{i},{40 + i}\n" for i in range(30)))
    parsed = read_followers(mapped, mapping=["follower_id=uid", "handle=who"])
    assert parsed.followers["raw"][3] == '{"shoe_size":"43"}' and parsed.followers["handle"][3] == "u3"


def test_repeats_across_csv_blocks_in_the_store_name_their_line(tmp_path, small_blocks):
    target = tmp_path / "f.csv"
    at = write_csv(target, 40, extra={38: "2,late,x,1,2020-01-01"})
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, target)
        assert (result.n_followers, result.n_rejects) == (39, 1)
        assert result.detected.describe().startswith("detected: ") and "CSV" in result.detected.describe()
        rejects = store.rejects(result.snapshot_id)
        assert rejects.select("line", "reason", "raw").rows() == [
            (at[38], "duplicate follower_id 2 (first seen on line 3)", "2,late,x,1,2020-01-01"),
        ]
        again = import_file(store, target)
        assert again.reused and again.snapshot_id == result.snapshot_id


def test_wrong_kind_of_csv_touches_nothing(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("hello world\nthis is text\n")
    with Store(tmp_path / "w.duckdb") as store:
        with pytest.raises(Exception, match="cannot tell what"):
            import_file(store, target)
        assert store.row("SELECT count(*) AS n FROM snapshots")["n"] == 0


def test_parquet_streams_by_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "PARQUET_ROWS", 7)
    frame = pl.DataFrame({"follower_id": [str(i) for i in range(50)] + ["3"], "handle": [f"u{i}" for i in range(51)],
                          "followers_count": list(range(51)), "account": ["acme"] * 51})
    target = tmp_path / "f.parquet"
    frame.write_parquet(target, row_group_size=10)
    assert stream.plan(target, platform=None, fmt=None, order=None, mapping=None, profiles=None).kind == "parquet"
    parsed = read_followers(target)
    assert parsed.followers.height == 50 and parsed.account == "acme"
    assert parsed.rejects.select("line", "reason").rows() == [(51, "duplicate follower_id 3 (first seen on line 4)")]
    seen: list[int] = []
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, target, progress=seen.append)
        assert (result.n_followers, result.n_rejects) == (50, 1)
        assert result.detected.describe() == "detected: generic followers, PARQUET (canonical table), order unknown"
        assert store.followers(result.snapshot_id)["followers_count"].sum() == sum(range(50))
    assert len(seen) == 6  # one batch per row group of 10 (batches of 7 rows asked for, groups are never split)


def test_repeats_are_exact_when_id_hashes_collide(tmp_path, small_blocks, monkeypatch):
    target = tmp_path / "f.csv"
    at = write_csv(target, 30, extra={25: "4,again,x,1,2020-01-01"})
    with Store(tmp_path / "w.duckdb") as store:
        honest = import_file(store, target)
        want = store.rejects(honest.snapshot_id).select("line", "reason").rows()
    assert want == [(at[25], "duplicate follower_id 4 (first seen on line 5)")]
    monkeypatch.setattr(stream, "id_hash", lambda: (pl.col("follower_id").str.len_bytes() * 0).cast(pl.UInt64).alias("h"))
    with Store(tmp_path / "w2.duckdb") as store:  # every id "collides": the ids are read back instead
        result = import_file(store, target)
        assert (result.n_followers, result.n_rejects) == (29, 1)
        assert store.rejects(result.snapshot_id).select("line", "reason").rows() == want
