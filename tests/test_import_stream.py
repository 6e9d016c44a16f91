"""The streaming JSONL path (large files): blocks must not change what is read."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import polars as pl
import pytest

from followaudit.errors import BadRowError, EncodingError, InputError, TruncatedJSONError
from followaudit.sources.files import read_followers
from followaudit.sources.formats import jsonrec, stream
from followaudit.sources.ingest import import_file
from followaudit.store import Store

FIX = Path(__file__).parent / "fixtures" / "import"


def write_users(path: Path, n: int, *, extra: dict[int, str] | None = None) -> list[str]:
    """n Twitter v1.1 user lines (ids 1..n); ``extra`` replaces given 1-based lines with raw text."""
    lines = []
    for i in range(1, n + 1):
        rec = {"id_str": str(i), "screen_name": f"user{i}", "created_at": "Mon Nov 29 21:18:15 +0000 2010",
               "followers_count": i, "friends_count": 1, "statuses_count": 2}
        lines.append(json.dumps(rec))
    for lineno, raw in (extra or {}).items():
        lines[lineno - 1] = raw
    path.write_text("\n".join(lines) + "\n")
    return lines


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(stream, "BLOCK_BYTES", 1000)  # ~7 records per block
    monkeypatch.setattr(stream, "BATCH_ROWS", 1)  # and each block stored on its own


def test_blocks_give_the_same_result_as_one_block(tmp_path, small_blocks):
    target = tmp_path / "u.jsonl"
    write_users(target, 60, extra={30: '{"id_str": "5", "screen_name": "again"}', 41: "{oops", 52: '{"id_str": "52", "followers_count": "-1"}'})
    streamed = read_followers(target)
    stream.BLOCK_BYTES = 1 << 30
    whole = read_followers(target)
    assert streamed.followers.equals(whole.followers)
    assert streamed.rejects.equals(whole.rejects)
    assert streamed.rejects.select("line", "column", "reason").rows() == [
        (30, "id_str", "duplicate follower_id 5 (first seen on line 5)"),
        (41, "(record)", "invalid JSON: Expecting property name enclosed in double quotes (column 2)"),
        (52, "followers_count", "negative count: -1"),
    ]
    ranks = dict(zip(whole.followers["follower_id"], whole.followers["follow_rank"], strict=True))
    assert ranks["1"] == 56 and ranks["60"] == 0 and sorted(ranks.values()) == list(range(57))


def test_streamed_import_ranks_and_rejects_in_store(tmp_path, small_blocks):
    target = tmp_path / "u.jsonl.gz"
    plain = tmp_path / "plain.jsonl"
    write_users(plain, 40, extra={33: '{"id_str": "3"}'})
    target.write_bytes(gzip.compress(plain.read_bytes()))
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, target)
        assert result.detected.describe() == "detected: Twitter v1.1 users, JSONL (gzip), order newest-first"
        assert (result.n_followers, result.n_rejects) == (39, 1)
        assert result.first_reject["reason"] == "duplicate follower_id 3 (first seen on line 3)"
        stored = store.followers(result.snapshot_id)
        assert stored["follower_id"].head(2).to_list() == ["40", "39"]  # oldest follower = last line
        assert stored["follow_rank"].to_list() == list(range(39))
        again = import_file(store, target)
        assert again.reused and store.row("SELECT count(*) AS n FROM followers")["n"] == 39


def test_strict_failure_in_a_later_block_stores_nothing(tmp_path, small_blocks):
    target = tmp_path / "u.jsonl"
    write_users(target, 40, extra={35: '{"id_str": "35", "created_at": "soon"}'})
    with Store(tmp_path / "w.duckdb") as store:
        with pytest.raises(BadRowError, match=r"u.jsonl:35: column created_at: unparseable date: 'soon'"):
            import_file(store, target, strict=True)
        assert store.row("SELECT count(*) AS n FROM followers")["n"] == 0
        assert store.row("SELECT count(*) AS n FROM snapshots")["n"] == 0


def test_encoding_error_in_a_later_block_names_its_line(tmp_path, small_blocks):
    target = tmp_path / "u.jsonl"
    lines = write_users(target, 40)
    data = ("\n".join(lines[:36]) + "\n").encode() + b'{"id_str": "37", "screen_name": "caf\xe9"}\n'
    target.write_bytes(data)
    with pytest.raises(EncodingError, match=r"byte 0xe9 on line 37"):
        read_followers(target)
    assert read_followers(target, encoding="latin-1").followers.height == 37


def test_pages_and_small_files_are_not_streamed():
    assert stream.plan(FIX / "bluesky_followers.jsonl", platform=None, fmt=None, order=None, mapping=None, profiles=None) is None
    assert stream.plan(FIX / "twitter_v1.json", platform=None, fmt=None, order=None, mapping=None, profiles=None).kind == "jsonarray"
    assert stream.plan(FIX / "instafake.json", platform=None, fmt=None, order=None, mapping=None, profiles=None) is None
    assert stream.plan(FIX / "twitter_v1.jsonl", platform=None, fmt=None, order=None, mapping=["a=b"], profiles=None) is None
    assert stream.plan(FIX / "twitter_v1.jsonl", platform=None, fmt=None, order=None, mapping=None, profiles=None) is not None


def test_progress_reports_every_byte(tmp_path, small_blocks):
    target = tmp_path / "u.jsonl"
    write_users(target, 30)
    seen: list[int] = []
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, target, progress=seen.append)
        assert store.followers(result.snapshot_id)["follow_rank"].to_list() == list(range(30))
    assert len(seen) > 3 and sum(seen) == target.stat().st_size


def test_repeats_across_blocks_with_unknown_order(tmp_path, small_blocks):
    target = tmp_path / "u.jsonl"
    write_users(target, 40, extra={25: '{"id_str": "2"}', 38: '{"id_str": "2"}'})
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, target, order="unknown")
        assert (result.n_followers, result.n_rejects) == (38, 2)
        rejects = store.rejects(result.snapshot_id)
        assert rejects.select("line", "reason").rows() == [
            (25, "duplicate follower_id 2 (first seen on line 2)"), (38, "duplicate follower_id 2 (first seen on line 2)"),
        ]
        assert rejects["raw"].to_list() == ['{"id_str": "2"}', '{"id_str": "2"}']
        stored = store.followers(result.snapshot_id)
        assert stored["follow_rank"].null_count() == 38
        assert stored.filter(stored["follower_id"] == "2")["handle"].to_list() == ["user2"]


def test_last_line_without_newline_and_long_lines(tmp_path, small_blocks):
    target = tmp_path / "u.jsonl"
    lines = write_users(target, 20)
    long_bio = json.dumps({"id_str": "999", "screen_name": "long", "description": "x" * 5000})  # longer than a block
    target.write_text("\n".join([*lines[:10], long_bio, *lines[10:]]))  # no final newline
    parsed = read_followers(target)
    assert parsed.followers.height == 21 and parsed.rejects.height == 0
    assert parsed.followers.filter(parsed.followers["follower_id"] == "999")["bio_length"].item() == 5000
    assert parsed.followers.filter(parsed.followers["follower_id"] == "20")["follow_rank"].item() == 0


def test_interrupted_reimport_keeps_the_earlier_snapshot(tmp_path, small_blocks, monkeypatch):
    target = tmp_path / "u.jsonl"
    write_users(target, 40)
    with Store(tmp_path / "w.duckdb") as store:
        first = import_file(store, target)
        real = stream.iter_batches

        def interrupted(*args, **kwargs):
            for i, batch in enumerate(real(*args, **kwargs)):
                if i == 2:
                    raise KeyboardInterrupt
                yield batch

        monkeypatch.setattr(stream, "iter_batches", interrupted)
        with pytest.raises(KeyboardInterrupt):
            import_file(store, target)
        assert store.row("SELECT count(*) AS n FROM snapshots")["n"] == 1
        snap = store.snapshot(first.snapshot_id)
        assert (snap.n_followers, snap.status) == (40, "complete")
        assert store.row("SELECT count(*) AS n FROM followers")["n"] == 40


def test_batches_stored_two_at_a_time_keep_file_order_and_a_failed_one_stores_nothing(tmp_path, small_blocks, monkeypatch):
    from followaudit.sources import ingest

    target = tmp_path / "u.jsonl"
    write_users(target, 60, extra={20: "{oops"})
    with Store(tmp_path / "w.duckdb") as store:
        first = import_file(store, target)  # ~9 batches, two stored at once
        stored = store.query(f"SELECT follower_id, follow_rank FROM {ingest.FOLLOWER_ROWS} ORDER BY rowid")
        assert stored["follower_id"].to_list() == [str(i) for i in range(1, 61) if i != 20]  # rows in file order
        assert stored["follow_rank"].to_list() == list(range(58, -1, -1))
        assert store.rejects(first.snapshot_id)["line"].to_list() == [20]
        real = ingest._append_canonical
        calls = []

        def failing(con, snapshot_id, followers):
            calls.append(1)
            if len(calls) == 4:  # a later batch, on one of the writer's threads
                raise OSError("disk full")
            real(con, snapshot_id, followers)

        monkeypatch.setattr(ingest, "_append_canonical", failing)
        target.write_text(target.read_text() + json.dumps({"id_str": "61", "screen_name": "new"}) + "\n")
        with pytest.raises(OSError, match="disk full"):
            import_file(store, target)
        # the half import is gone; the earlier snapshot is untouched
        assert store.row("SELECT count(*) AS n FROM snapshots")["n"] == 1
        assert store.row("SELECT count(*) AS n FROM followers")["n"] == 59
        assert store.row("SELECT count(*) AS n FROM rejects")["n"] == 1


@pytest.mark.parametrize("name", ["u.jsonl", "u.jsonl.gz", "twitter_v1.json"])
def test_file_hashed_by_the_caller_is_the_same_source_hash(tmp_path, small_blocks, name):
    from followaudit.sources.filehash import FileHash

    target = tmp_path / name
    if name == "twitter_v1.json":
        target.write_bytes((FIX / name).read_bytes())  # read in one piece
    else:
        write_users(tmp_path / "plain.jsonl", 30)
        data = (tmp_path / "plain.jsonl").read_bytes()
        target.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with Store(tmp_path / "w.duckdb") as store:
        first = import_file(store, target, file_hash=FileHash(target))
        again = import_file(store, target)  # hashed here: the same file and options replace the snapshot
        assert again.reused and again.snapshot_id == first.snapshot_id
        with pytest.raises(FileNotFoundError):
            FileHash(tmp_path / "missing.jsonl").digest()


def write_array(path: Path, n: int, *, indent: int | None = 2, extra: dict[int, str] | None = None) -> list[str]:
    """A top-level JSON array of n Twitter v1.1 users (ids 1..n) whose strings hold brackets, commas,
    escaped quotes and backslashes; ``extra`` replaces given 1-based elements with raw text."""
    elements = []
    for i in range(1, n + 1):
        rec = {"id_str": str(i), "screen_name": f"user{i}", "name": 'a "quoted" [name], {x} \\' * (i % 3),
               "created_at": "Mon Nov 29 21:18:15 +0000 2010", "followers_count": i, "friends_count": 1,
               "statuses_count": 2, "status": {"created_at": "Tue Jan 05 10:00:00 +0000 2021"},
               "entities": {"url": {"urls": [{"indices": [0, 23], "x": "],}"}]}}}
        elements.append(json.dumps(rec, indent=indent, ensure_ascii=False))
    for k, raw in (extra or {}).items():
        elements[k - 1] = raw
    path.write_text("[\n" + ",\n".join(elements) + "\n]\n" if indent else "[" + ", ".join(elements) + "]")
    return elements


def one_shot(path: Path, monkeypatch) -> object:
    with monkeypatch.context() as m:
        m.setattr(stream, "plan", lambda *a, **k: None)
        return read_followers(path)


@pytest.mark.parametrize("indent", [2, None])
def test_json_array_streamed_in_blocks_reads_as_one_piece(tmp_path, small_blocks, monkeypatch, indent):
    target = tmp_path / "users.json"
    elements = write_array(target, 50, indent=indent, extra={20: '{"id_str": "3", "screen_name": "again"}',
                                                   33: '{"id_str": "33", "followers_count": "-1"}'})
    assert stream.plan(target, platform=None, fmt=None, order=None, mapping=None, profiles=None).kind == "jsonarray"
    streamed = read_followers(target)
    whole = one_shot(target, monkeypatch)
    assert streamed.detected == whole.detected and streamed.detected.fmt == "json"
    assert streamed.followers.equals(whole.followers)
    assert streamed.rejects.equals(whole.rejects)
    assert streamed.followers.height == 48
    third = 2 + sum(e.count("\n") + 1 for e in elements[:2]) if indent else 1  # where element 3 starts
    assert sorted(streamed.rejects.select("column", "reason").rows()) == [
        ("followers_count", "negative count: -1"),
        ("id_str", f"duplicate follower_id 3 (first seen on line {third})"),
    ]
    assert json.loads(streamed.followers.filter(pl.col("follower_id") == "2")["raw"].item())["name"].startswith('a "quoted"')


def test_json_array_bad_element_in_a_block_is_one_reject(tmp_path, small_blocks):
    target = tmp_path / "users.json"
    elements = write_array(target, 30, extra={12: '{"id_str": "12", oops}', 13: '"just text"'})
    parsed = read_followers(target)
    assert parsed.followers.height == 28 and "12" not in parsed.followers["follower_id"].to_list()
    start = 2 + sum(e.count("\n") + 1 for e in elements[:11])  # the line each element starts on
    assert parsed.rejects.select("line", "column", "reason").rows() == [
        (start, "(record)", "invalid JSON: Expecting property name enclosed in double quotes (column 18)"),
        (start + 1, "(record)", "not a JSON object (a str)"),
    ]
    assert parsed.rejects["raw"].to_list() == ['{"id_str": "12", oops}', '"just text"']


def test_json_array_cut_off_or_followed_by_text(tmp_path, small_blocks):
    target = tmp_path / "users.json"
    write_array(target, 20)
    text = target.read_text()
    cut = text[: len(text) // 2]
    target.write_text(cut)
    with pytest.raises(TruncatedJSONError, match=rf"ends in the middle of a JSON array \(line {cut.rstrip().count(chr(10)) + 1}\)"):
        read_followers(target)
    target.write_text(text + '{"more": 1}\n')
    with pytest.raises(InputError, match=rf"more text after the array ends \(line {text.count(chr(10)) + 1}\)"):
        read_followers(target)


def test_json_array_gzip_import_in_store(tmp_path, small_blocks):
    plain = tmp_path / "plain.json"
    write_array(plain, 40, extra={25: '{"id_str": "7"}'})
    target = tmp_path / "users.json.gz"
    target.write_bytes(gzip.compress(plain.read_bytes()))
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, target)
        assert result.detected.describe() == "detected: Twitter v1.1 users, JSON (gzip), order newest-first"
        assert (result.n_followers, result.n_rejects) == (39, 1)
        assert result.first_reject["reason"].startswith("duplicate follower_id 7 (first seen on line ")
        stored = store.followers(result.snapshot_id)
        assert stored["follower_id"].head(2).to_list() == ["40", "39"]  # the last element is the oldest follower
        assert stored["follow_rank"].to_list() == list(range(39))


@pytest.mark.parametrize("fixture", ["twitter_v1.jsonl", "twitter_v2_users.jsonl", "network_profiles.jsonl"])
def test_duckdb_decoder_reads_what_polars_reads(fixture):
    """The fast path (DuckDB's JSON reader) gives the same text leaves as Polars' NDJSON reader, but
    keeps a number as the file writes it (``1367909005.0``, where Polars writes ``1367909005``; both
    parse to the same value); a block it cannot read gives None (the caller finds the bad lines)."""
    data = (FIX / fixture).read_bytes()
    dtype = stream.plan(FIX / fixture, platform=None, fmt=None, order=None, mapping=None, profiles=None).spec.dtype
    good = b"".join(line + b"\n" for line in data.splitlines() if _polars_reads(line, dtype))
    fast = jsonrec.decode_jsonl(good, dtype)
    assert fast is not None and fast.height == good.count(b"\n") > 0
    slow = pl.read_ndjson(io.BytesIO(good), schema=dict(dtype.to_schema()))
    floats = [c for c in fast.columns if fast[c].dtype == pl.Utf8 and fast[c].str.ends_with(".0").any()]
    assert fast.drop(floats).equals(slow.drop(floats))
    for c in floats:
        assert fast[c].str.strip_suffix(".0").equals(slow[c])
    assert jsonrec.decode_jsonl(good + b"{oops\n", dtype) is None


def test_duckdb_decoder_refuses_a_record_of_the_wrong_shape():
    dtype = stream.plan(FIX / "twitter_v1.jsonl", platform=None, fmt=None, order=None, mapping=None, profiles=None).spec.dtype
    assert jsonrec.decode_jsonl(b'{"id_str": "1", "status": {"created_at": "x"}}\n', dtype).height == 1
    assert jsonrec.decode_jsonl(b'{"id_str": "1", "status": "not an object"}\n', dtype) is None


def _polars_reads(line: bytes, dtype: pl.Struct) -> bool:
    try:
        return pl.read_ndjson(io.BytesIO(line), schema=dict(dtype.to_schema())).height == 1
    except pl.exceptions.PolarsError:
        return False


def test_instagram_export_streamed_ranks_the_whole_file_by_follow_time(tmp_path, small_blocks, monkeypatch):
    """Each block ranks its own rows; the streamed file is ranked again over all of them."""
    stamps = [1_500_000_000 + (k * 7919) % 40 * 3600 for k in range(40)]  # distinct, not in file order
    export = [{"title": "", "media_list_data": [], "string_list_data": [
        {"href": f"https://www.instagram.com/user{k}", "value": f"user{k}", "timestamp": t}]} for k, t in enumerate(stamps)]
    target = tmp_path / "followers_1.json"
    target.write_text(json.dumps(export, indent=2))
    assert stream.plan(target, platform=None, fmt=None, order=None, mapping=None, profiles=None).kind == "jsonarray"
    streamed = read_followers(target)
    whole = one_shot(target, monkeypatch)
    assert streamed.detected.describe() == whole.detected.describe() == (
        "detected: Instagram followers export, JSON, ranks from the file")
    assert streamed.followers.equals(whole.followers)
    expected = {f"user{k}": sorted(stamps).index(t) for k, t in enumerate(stamps)}
    assert dict(zip(streamed.followers["follower_id"], streamed.followers["follow_rank"], strict=True)) == expected
    with Store(tmp_path / "w.duckdb") as store:
        result = import_file(store, target)
        stored = store.followers(result.snapshot_id)
        assert dict(zip(stored["follower_id"], stored["follow_rank"], strict=True)) == expected


@pytest.mark.parametrize("block_bytes", [64, 1000, 1 << 20])
def test_mapped_blocks_are_the_text_blocks(tmp_path, block_bytes):
    """The JSONL reader maps the file instead of reading it: the same blocks, line offsets and hash."""
    lines = write_users(tmp_path / "u.jsonl", 30)
    lines[3] = json.dumps({"id_str": "4", "name": "Zoë ☃ 👍🏽"}, ensure_ascii=False)
    lines[7] = json.dumps({"id_str": "8", "description": "x" * 3000})  # longer than a small block
    text = "\ufeff" + "\n".join(lines[:12]) + "\n\n   \n" + "\r\n".join(lines[12:20]) + "\r\n" + "\n".join(lines[20:])
    target = tmp_path / "mixed.jsonl"
    target.write_bytes(text.encode())  # a BOM, blank lines, CRLF lines, no final line break
    mapped_digest, read_digest = hashlib.sha256(), hashlib.sha256()
    mapped = list(stream._mapped_blocks(target, block_bytes, "mixed.jsonl", digest=mapped_digest, on_progress=None))
    with open(target, "rb") as fh:
        read = list(stream._text_blocks(stream._Hashing(fh, read_digest), block_bytes, "mixed.jsonl", "utf-8",
                                        quoted=False, on_progress=None))
    assert [(bytes(m.text), offset) for m, offset in mapped] == read
    assert mapped_digest.hexdigest() == read_digest.hexdigest() == hashlib.sha256(text.encode()).hexdigest()
    for block, _ in mapped:
        assert block.newlines.tolist() == [i for i, b in enumerate(bytes(block.text)) if b == 10]
        assert block.plain == (b"\r" not in bytes(block.text))


@pytest.mark.parametrize("data", [
    b'{"a": 1}\n{"b": 2}\n',
    b'{"a": 1}\n\n{"b": "\xc3\xa9"}',  # an empty line, no final line break
    b'{"a": 1}\r\n{"b": 2}\r\n',  # carriage returns: read by lines_frame
    b'{"a": 1}\n   \n{"b": 2}\n',  # a line of blanks: read by lines_frame
    b'\n\n{"a": 1}\n',
])
def test_line_records_are_lines_frame(data):
    expected = jsonrec.lines_frame(data).with_columns(pl.col("line") + 40)
    assert jsonrec.line_records(data, 40).equals(expected)
    assert jsonrec.line_records(memoryview(data), 40).equals(expected)


def test_twitter_dates_read_as_strptime_reads_them():
    """The fast path for Twitter's UTC dates gives strptime's value wherever it gives one, and takes
    over a column only when it read every date (a wrong weekday, another offset: strptime decides)."""
    from followaudit.sources.formats import common

    texts = ["Fri Nov 29 04:51:33 +0000 2024", "Mon Nov 29 04:51:33 +0000 2024", "fri Nov 29 04:51:33 +0000 2024",
             "Fri  Nov 29 04:51:33 +0000 2024", "Fri Nov 29 4:51:33 +0000 2024", "Fri Nov 29 04:51:33 +0100 2024",
             "Fri Nov 29 04:51:60 +0000 2024", "Sat Feb 29 00:00:00 +0000 2025", "Thu Feb 29 00:00:00 +0000 2024",
             "Friday Nov 29 04:51:33 +0000 2024", "Fri Nov 29 04:51:33 -0000 2024", "Sat Nov 9 04:51:33 +0000 2024",
             "Fri Nov 29 04:51:33 +0000 24", None, ""]
    series = pl.Series("d", texts, dtype=pl.Utf8)
    strptime = series.str.strptime(pl.Datetime("us", "UTC"), common.DATE_FORMATS[0], strict=False)
    fast = common._twitter_utc(series)
    assert fast[0] is not None and fast[1] is None  # the weekday is checked
    assert all(f is None or f == s for f, s in zip(fast, strptime, strict=True))
    mixed = common.parse_dates(series)
    assert mixed[5] == strptime[5] and mixed[2] == strptime[2]  # read by strptime, not left null
    canonical = series.filter(fast.is_not_null())
    assert common.parse_dates(canonical).equals(canonical.str.strptime(pl.Datetime("us", "UTC"), common.DATE_FORMATS[0]))


def test_the_file_hash_thread_gives_hashlib_digest_of_empty_small_and_multi_buffer_files(tmp_path) -> None:
    import hashlib

    from followaudit.sources.filehash import FileHash

    for size in (0, 5, (8 << 20) + 3):
        path = tmp_path / f"f{size}"
        path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        assert FileHash(path).digest().hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
