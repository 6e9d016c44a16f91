"""Whole-file problems give one exact line through the real CLI (exit 1, no traceback); bad rows never stop
an import and are never dropped silently."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from followaudit.cli import main
from followaudit.errors import (
    BadRowError,
    BinaryInputError,
    EmptyInputError,
    EncodingError,
    MissingColumnsError,
    TruncatedJSONError,
    UnknownFormatError,
)
from followaudit.sources.files import read_followers

FIX = Path(__file__).parent / "fixtures" / "import"


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def expect_error(capsys, tmp_path: Path, target: Path, message: str, *extra: str) -> None:
    code, out, err = run(capsys, "import", target, "--db", tmp_path / "w.duckdb", *extra)
    assert code == 1
    assert err == f"Error: {message}\n"
    assert "Traceback" not in err and out == ""


def test_empty_file(capsys, tmp_path):
    target = tmp_path / "empty.csv"
    target.write_bytes(b"")
    expect_error(capsys, tmp_path, target, f"{target} is empty — check the path; the file must hold at least one follower record")


def test_blank_gzip_file_is_empty(capsys, tmp_path):
    target = tmp_path / "blank.jsonl.gz"
    target.write_bytes(gzip.compress(b"\n  \n"))
    expect_error(capsys, tmp_path, target, f"{target} is empty — check the path; the file must hold at least one follower record")


def test_binary_file(capsys, tmp_path):
    target = tmp_path / "photo.jpg"
    target.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4)
    expect_error(capsys, tmp_path, target, f"{target} is not a text file (binary content) — give a CSV, JSON, JSONL or Parquet file (gzip is fine)")


def test_wrong_encoding_then_encoding_flag(capsys, tmp_path):
    target = tmp_path / "latin.csv"
    target.write_bytes("id,screen_name,name\n1,cafe,Jos\u00e9\n2,b,B\n".encode("latin-1"))
    expect_error(
        capsys, tmp_path, target,
        f"{target} is not valid UTF-8 text: byte 0xe9 on line 2 — re-save the file as UTF-8, or pass --encoding (e.g. --encoding latin-1)",
    )
    code, _, err = run(capsys, "import", target, "--db", tmp_path / "w.duckdb", "--encoding", "latin-1")
    assert code == 0 and "stored 2 followers" in err
    assert read_followers(target, encoding="latin-1").followers["display_name"].to_list() == ["Jos\u00e9", "B"]


def test_truncated_json_array(capsys, tmp_path):
    target = tmp_path / "cut.json"
    target.write_text('[{"id_str": "1", "screen_name": "a"},\n {"id_str": "2", "scr')
    expect_error(
        capsys, tmp_path, target,
        f"{target} ends in the middle of a JSON array (line 2) — the file looks cut off; re-download or re-export it, or use JSONL so good lines are kept",
    )


def test_truncated_json_object(capsys, tmp_path):
    target = tmp_path / "cut.json"
    target.write_text('{"profiles": [{"did": "did:plc:a", "handle": "a.b"}')
    expect_error(
        capsys, tmp_path, target,
        f"{target} ends in the middle of a JSON object (line 1) — the file looks cut off; re-download or re-export it, or use JSONL so good lines are kept",
    )


def test_csv_without_needed_columns(capsys, tmp_path):
    target = tmp_path / "odd.csv"
    target.write_text("foo,bar,baz\n1,2,3\n")
    expect_error(
        capsys, tmp_path, target,
        f"{target} has no follower id column (found: foo, bar, baz) — name the columns with --map FIELD=COLUMN (e.g. --map follower_id=user_id)",
    )
    code, _, err = run(capsys, "import", target, "--db", tmp_path / "w.duckdb", "--map", "follower_id=foo", "--map", "followers_count=bar")
    assert code == 0 and "stored 1 follower as snapshot" in err


def test_map_to_absent_column(capsys, tmp_path):
    target = tmp_path / "odd.csv"
    target.write_text("foo,bar\n1,2\n")
    expect_error(
        capsys, tmp_path, target,
        f"{target} has no column 'user' (found: foo, bar) — name the columns with --map FIELD=COLUMN (e.g. --map follower_id=user_id)",
        "--map", "follower_id=user",
    )


def test_unrecognised_json_shape(capsys, tmp_path):
    target = tmp_path / "what.json"
    target.write_text('[{"x": 1, "y": 2}]')
    expect_error(
        capsys, tmp_path, target,
        f"cannot tell what {target} holds (JSON records with keys: x, y) — pass --platform and --format to say what the file is",
    )


def test_unrecognised_text(capsys, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("hello world\nthis is text\n")
    expect_error(
        capsys, tmp_path, target,
        f"cannot tell what {target} holds (not JSON, and no known CSV header) — pass --platform and --format to say what the file is",
    )


def test_missing_file(capsys, tmp_path):
    target = tmp_path / "nope.jsonl"
    expect_error(capsys, tmp_path, target, f"{target} does not exist — check the path")


def test_strict_stops_at_first_bad_row(capsys, tmp_path):
    target = FIX / "twitter_v1.jsonl"
    expect_error(
        capsys, tmp_path, target,
        f"{target}:4: column created_at: unparseable date: 'yesterday-ish' — fix the row, or drop --strict to send bad rows to the rejects table",
        "--strict",
    )
    with pytest.raises(BadRowError):
        read_followers(target, strict=True)


def test_library_raises_specific_errors(tmp_path):
    cases = {
        EmptyInputError: b"",
        BinaryInputError: b"PK\x03\x04" + bytes(300),
        EncodingError: b"id,name\n1,\xe9\n",
        TruncatedJSONError: b'[{"id_str": "1"',
        MissingColumnsError: b"a,b\n1,2\n",
        UnknownFormatError: b'{"hello": "world"}',
    }
    for error, content in cases.items():
        target = tmp_path / "f"
        target.write_bytes(content)
        with pytest.raises(error):
            read_followers(target)


def test_bad_rows_are_kept_as_rejects_and_good_rows_stored(capsys, tmp_path):
    code, _, err = run(capsys, "import", FIX / "twitter_v1.jsonl", "--db", tmp_path / "w.duckdb")
    assert code == 0
    lines = err.splitlines()
    assert lines[0] == "detected: Twitter v1.1 users, JSONL, order newest-first"
    assert lines[1] == "stored 3 followers as snapshot 1"
    assert lines[2] == (
        f"7 rows rejected; first: {FIX / 'twitter_v1.jsonl'}:4, column created_at: unparseable date: 'yesterday-ish' "
        "(see `followaudit rejects 1`)"
    )
    code, out, _ = run(capsys, "rejects", "1", "--db", tmp_path / "w.duckdb", "--format", "csv")
    assert code == 0
    assert out.splitlines()[0] == "file,line,column,reason,raw"
    assert len(out.strip().splitlines()) == 8
    code, out, _ = run(capsys, "rejects", "1", "--db", tmp_path / "w.duckdb")
    assert f"{FIX / 'twitter_v1.jsonl'}:5: column followers_count: negative count: -3" in out.splitlines()


def test_every_line_accounted_for():
    parsed = read_followers(FIX / "twitter_v1.jsonl")
    text = (FIX / "twitter_v1.jsonl").read_text().splitlines()
    non_blank = sum(1 for line in text if line.strip())
    assert parsed.followers.height + parsed.rejects.height == non_blank


def test_unknown_map_field_is_an_input_error(capsys, tmp_path):
    expect_error(
        capsys, tmp_path, FIX / "generic.csv",
        "--map names unknown field(s): fans_count — fields are the canonical columns: follower_id, handle, display_name, follow_rank, followed_at, "
        "created_at, followers_count, following_count, posts_count, likes_count, listed_count, has_avatar, bio, bio_length, has_url, "
        "has_location, verified, private, self_declared_bot, moderation_labels, last_active_at, observed_at, handle_length, "
        "handle_digits, truth_label",
        "--map", "fans_count=fans",
    )
