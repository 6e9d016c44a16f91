"""The in-place check decides as it did before it read the footer and ran compiled: the same
``InPlace`` or None on files that must be refused for each reason and on files that must be
accepted, with the C kernels and with their Polars fallbacks; and the kernels count exactly what
the Polars expressions count, for every blank Polars strips."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from followaudit.sources import in_place
from followaudit.sources.in_place import (
    TRIMMED,
    InPlace,
    RowCheck,
    _changed_by_import,
    all_distinct,
    check_in_place,
    untrimmed_rows,
)
from followaudit.sources.synth import write_synth
from followaudit.store import Store
from followaudit.store.parquet_columns import parquet_slices, scan_planned

N = 3000
# what Polars' strip_chars() removes (Rust's char::is_whitespace, Unicode White_Space); not U+001C-U+001F
# (Python's str.strip() removes those), nor U+200B or U+FEFF
WHITE_SPACE = [0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]


def reference_check(store: Store, path, *, platform, account, order) -> InPlace | None:
    """The check as it was before (one Polars pass over ten columns), kept to compare decisions."""
    plan = store.parquet_plan(path)
    if account is not None or plan is None:
        return None
    counts = dict.fromkeys(("n", "missing_ids", "untrimmed", "without_platform", "ranked", "underived"), 0)
    platforms: set[str] = set()
    accounts: set[str] = set()
    id_hashes = []
    needed = ["follower_id", "handle", "truth_label", "platform", "account", "follow_rank", "bio", "bio_length",
              "handle_length", "handle_digits"]
    for part in parquet_slices(scan_planned(path, plan, needed), 1_000_000):
        found = part.select(
            pl.len().alias("n"),
            pl.col("follower_id").is_null().sum().alias("missing_ids"),
            (_changed_by_import("follower_id") | _changed_by_import("handle") | _changed_by_import("truth_label")).sum().alias("untrimmed"),
            pl.col("platform").null_count().alias("without_platform"),
            pl.col("follow_rank").count().alias("ranked"),
            ((pl.col("bio").is_not_null() & pl.col("bio_length").is_null())
             | (pl.col("handle").is_not_null() & (pl.col("handle_length").is_null() | pl.col("handle_digits").is_null()))).sum().alias("underived"),
        ).row(0, named=True)
        for key in counts:
            counts[key] += int(found[key])
        platforms.update(part.get_column("platform").drop_nulls().unique().to_list())
        accounts.update(part.get_column("account").drop_nulls().unique().to_list())
        id_hashes.append(part.get_column("follower_id").hash())
    n = counts["n"]
    if not n:
        return None
    one_platform = counts["without_platform"] == 0 and len(platforms) == 1 and (platform is None or platform in platforms)
    distinct_ids = pl.concat(id_hashes).n_unique()
    clean = counts["missing_ids"] == 0 and distinct_ids == n and counts["untrimmed"] == 0 and counts["underived"] == 0
    ranked = counts["ranked"] > 0
    if not (clean and one_platform and len(accounts) <= 1) or (not ranked and order not in (None, "unknown")):
        return None
    return InPlace(n=n, platform=platforms.pop(), account=accounts.pop() if accounts else None, ranked=ranked)


@pytest.fixture(scope="module")
def followers(tmp_path_factory) -> pl.DataFrame:
    path = tmp_path_factory.mktemp("check") / "followers.parquet"
    write_synth(N, path, seed=11)
    return pl.read_parquet(path)


def at(rank: int, column: str, value) -> pl.Expr:
    """``column`` with ``value`` (None: null) on the follower of ``rank``."""
    return pl.when(pl.col("follow_rank") == rank).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)


def in_group(first: int, last: int, column: str) -> pl.Expr:
    """``column`` null for ranks ``first``..``last`` (one row group of 500 rows when aligned)."""
    return pl.when(pl.col("follow_rank").is_between(first, last)).then(None).otherwise(pl.col(column)).alias(column)


LONG = "x" * 14  # longer than a string view keeps inline (12 bytes)
REFUSED = {
    "id with a trailing space": lambda f: f.with_columns(at(7, "follower_id", "12345 ")),
    "id with a leading tab": lambda f: f.with_columns(at(7, "follower_id", "\t12345")),
    "id with a non-breaking space": lambda f: f.with_columns(at(2999, "follower_id", "\u00a012345")),
    "long id ending with an ideographic space": lambda f: f.with_columns(at(1500, "follower_id", LONG + "\u3000")),
    "long id ending with U+0085": lambda f: f.with_columns(at(1500, "follower_id", LONG + "\u0085")),
    "long id starting with an em space": lambda f: f.with_columns(at(1500, "follower_id", "\u2003" + LONG)),
    "empty id": lambda f: f.with_columns(at(3, "follower_id", "")),
    "missing id": lambda f: f.with_columns(at(3, "follower_id", None)),
    "repeated id": lambda f: f.with_columns(at(2500, "follower_id", f["follower_id"][10])),
    "empty handle": lambda f: f.with_columns(at(600, "handle", "")),
    "handle of blanks": lambda f: f.with_columns(at(600, "handle", " \u205f ")),
    "long handle ending with a line separator": lambda f: f.with_columns(at(600, "handle", LONG + "é\u2028")),
    "label with a blank": lambda f: f.with_columns(at(1, "truth_label", "fake\n")),
    "empty label": lambda f: f.with_columns(at(1, "truth_label", "")),
    "a second platform": lambda f: f.with_columns(at(2001, "platform", "bluesky")),
    "a missing platform": lambda f: f.with_columns(at(2001, "platform", None)),
    "two accounts": lambda f: f.with_columns(at(2001, "account", "someone_else")),
    "bio without bio_length in one row group": lambda f: f.with_columns(at(1234, "bio_length", None)),
    "handle without handle_length": lambda f: f.with_columns(at(2222, "handle_length", None)),
    "handle without handle_digits": lambda f: f.with_columns(at(17, "handle_digits", None)),
}
ACCEPTED = {
    "as written": lambda f: f,
    "text Python strips and Polars keeps": lambda f: f.with_columns(at(7, "follower_id", "12345\x1c"), at(8, "handle", "\u200bzed\ufeff")),
    "non-ASCII ends": lambda f: f.with_columns(at(7, "follower_id", "ñ" + LONG + "語"), at(8, "handle", "ünï"), at(9, "truth_label", "réal")),
    "long ids": lambda f: f.with_columns(("1234567890" + pl.col("follower_id")).alias("follower_id")),
    "bio and bio_length missing together": lambda f: f.with_columns(in_group(500, 999, "bio"), in_group(500, 999, "bio_length")),
    "bio_length without a bio": lambda f: f.with_columns(in_group(0, 1700, "bio")),
    "missing handles and their lengths": lambda f: f.with_columns(
        in_group(1000, 1100, "handle"), in_group(1000, 1100, "handle_length"), in_group(1000, 1049, "handle_digits")),
    "no account": lambda f: f.with_columns(pl.lit(None, pl.Utf8).alias("account")),
    "ranks in some row groups": lambda f: f.with_columns(in_group(0, 1499, "follow_rank")),
    "no ranks": lambda f: f.with_columns(pl.lit(None, pl.Int64).alias("follow_rank")),
    "without optional columns": lambda f: f.drop("truth_label", "account", "follow_rank", "raw"),
    "without bio": lambda f: f.drop("bio", "bio_length"),
    "narrower integers": lambda f: f.with_columns(pl.col("bio_length", "handle_length", "follow_rank").cast(pl.Int32)),
}


def decisions(store: Store, path, monkeypatch, **options) -> tuple:
    """The reference's decision, the check's, the check's with the Polars fallbacks and slices that
    do not line up with the row groups, and the audit's: the footer and columns first, then the rows
    checked on the batches it reads (``RowCheck`` fed uneven slices)."""
    reference = reference_check(store, path, **options)
    native = check_in_place(store, path, **options)
    with monkeypatch.context() as patched:
        patched.setattr(in_place, "_library", lambda: None)
        patched.setattr(in_place, "CHECK_ROWS", 700)
        fallback = check_in_place(store, path, **options)
    deferred = check_in_place(store, path, verify=False, **options)
    if deferred is not None:
        rows = RowCheck(path, deferred)
        for part in parquet_slices(scan_planned(path, deferred.plan, list(TRIMMED)), 900):
            rows.add(part)
        deferred = deferred if rows.passed() else None
    return reference, native, fallback, deferred


LAYOUTS = {"row groups of 500": dict(row_group_size=500), "no statistics": dict(row_group_size=500, statistics=False),
           "one row group": dict(row_group_size=N)}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("change", list(REFUSED) + list(ACCEPTED))
def test_the_check_decides_as_before(tmp_path, monkeypatch, followers, change, layout):
    frame = (REFUSED.get(change) or ACCEPTED[change])(followers)
    assert frame.height == N and (frame.schema != followers.schema or not frame.equals(followers)) or change == "as written"
    path = tmp_path / "f.parquet"
    frame.write_parquet(path, **LAYOUTS[layout])
    options = dict(platform=None, account=None, order=None)
    with Store(tmp_path / "w.duckdb") as store:
        reference, native, fallback, deferred = decisions(store, path, monkeypatch, **options)
        assert native == fallback == deferred == reference
        assert (reference is None) == (change in REFUSED)
        if change in ACCEPTED and "platform" in frame.columns:
            assert reference.platform == "twitter" and reference.n == N


@pytest.mark.parametrize("statistics", [True, False])
@pytest.mark.parametrize("options", [
    dict(platform="twitter", account=None, order=None), dict(platform="bluesky", account=None, order=None),
    dict(platform=None, account="demo_account", order=None), dict(platform=None, account=None, order="file"),
    dict(platform=None, account=None, order="unknown"),
], ids=["its platform", "another platform", "an account", "an order", "no order"])
@pytest.mark.parametrize("ranks", ["ranked", "no ranks", "ranks in one row group"])
def test_options_decide_as_before(tmp_path, monkeypatch, followers, statistics, options, ranks):
    frame = {"ranked": followers, "no ranks": followers.with_columns(pl.lit(None, pl.Int64).alias("follow_rank")),
             "ranks in one row group": followers.with_columns(
                 pl.when(pl.int_range(pl.len()) < 500).then(pl.col("follow_rank")).alias("follow_rank"))}[ranks]
    path = tmp_path / "f.parquet"
    frame.write_parquet(path, row_group_size=500, statistics=statistics)
    with Store(tmp_path / "w.duckdb") as store:
        reference, native, fallback, deferred = decisions(store, path, monkeypatch, **options)
    assert native == fallback == deferred == reference
    refused = options["account"] is not None or options["platform"] == "bluesky" or (ranks == "no ranks" and options["order"] == "file")
    assert (reference is None) == refused


def test_an_empty_file_is_imported(tmp_path, monkeypatch, followers):
    path = tmp_path / "f.parquet"
    followers.head(0).write_parquet(path)
    with Store(tmp_path / "w.duckdb") as store:
        assert decisions(store, path, monkeypatch, platform=None, account=None, order=None) == (None, None, None, None)


needs_compiler = pytest.mark.skipif(in_place._library() is None, reason="no C compiler: the Polars fallback is the check")


@needs_compiler
def test_the_trim_kernel_counts_what_polars_strips():
    every = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    padded = pl.Series([f"a{chr(c)}" for c in every])
    assert np.asarray(every)[(padded.str.strip_chars() != padded).to_numpy()].tolist() == WHITE_SPACE
    # every code point whose UTF-8 starts with a byte some blank starts with (C2, E1-E3), and a few more
    every = [*range(0x100), *range(0x1000, 0x4000), 0xFEFF, 0xFFFF, 0x10000, 0x10FFFF]
    shapes = [lambda c: chr(c), lambda c: chr(c) + "a", lambda c: "a" + chr(c), lambda c: LONG + chr(c),
              lambda c: chr(c) + LONG, lambda c: "x" * 11 + chr(c), lambda c: "é" + chr(c) + "é"]
    for shape in shapes:
        frame = pl.DataFrame({"t": [shape(c) for c in every] + ["", None, " ", "abc", None, "\u3000" * 5]})
        changed = frame.select(_changed_by_import("t").fill_null(False)).to_series()
        # row by row: every changed text counted, no other (a count alone could hide a miss behind a false find)
        assert untrimmed_rows(frame.filter(changed), ["t"]) == changed.sum() and untrimmed_rows(frame.filter(~changed), ["t"]) == 0
        for part in (frame, frame.slice(5, 7_000), frame.slice(10_000)):  # offsets into the buffers
            assert untrimmed_rows(part, ["t"]) == untrimmed_rows(part, ["t"], native=False) == int(
                part.select(_changed_by_import("t").sum()).item())
    assert untrimmed_rows(pl.DataFrame({"t": [None, None]}, schema={"t": pl.Utf8}), ["t"]) == 0
    several = pl.concat([pl.DataFrame({"a": ["x", " y"], "b": ["", "z"]})] * 3, rechunk=False)  # chunks
    assert untrimmed_rows(several, ["a", "b"]) == untrimmed_rows(several, ["a", "b"], native=False) == 6


@needs_compiler
def test_the_distinct_kernel_finds_every_repeat():
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 17, 5000, 200_000):
        values = rng.integers(0, 2**64, n, dtype=np.uint64)
        # well spread, crowded in the low or the high bits, and few distinct values
        for case in (values, values >> np.uint64(44), values << np.uint64(44), values % np.uint64(7)):
            for series in (pl.Series(case), pl.Series(np.concatenate([case, case[n // 2: n // 2 + 1]]))):
                assert all_distinct(series) == all_distinct(series, native=False) == (series.n_unique() == len(series))
    ids = pl.Series([f"id{i}" for i in range(100_000)]).hash()
    assert all_distinct(ids) and not all_distinct(pl.concat([ids, ids.slice(99_999)]))


def test_a_row_check_fed_part_of_the_rows_reads_the_rest_itself(tmp_path, followers):
    """An audit with too little to judge reads no batches: ``RowCheck.passed`` then reads the file."""
    path = tmp_path / "f.parquet"
    followers.with_columns(at(2900, "handle", " padded")).write_parquet(path, row_group_size=500)
    with Store(tmp_path / "w.duckdb") as store:
        checked = check_in_place(store, path, platform=None, account=None, order=None, verify=False)
    assert checked is not None
    assert not RowCheck(path, checked).passed()
    fed = RowCheck(path, checked)
    fed.add(scan_planned(path, checked.plan, list(TRIMMED)).head(1000).collect())  # the first 1,000 rows are clean
    assert not fed.passed()


def test_the_footer_states_a_columns_values_only_when_every_row_group_holds_one(tmp_path, followers):
    from followaudit.sources.in_place import STATED_MAX, stated_values

    def stated(frame: pl.DataFrame, column: str, **options):
        path = tmp_path / "s.parquet"
        frame.write_parquet(path, row_group_size=500, **options)
        with Store(tmp_path / "w.duckdb") as store:
            return stated_values(store.parquet_file_footer(path), column)

    assert stated(followers, "platform") == ({"twitter"}, 0)
    assert stated(followers.with_columns(at(7, "account", None)), "account") == ({"demo_account"}, 1)
    assert stated(followers.with_columns(in_group(0, 499, "account")), "account") == ({"demo_account"}, 500)
    assert stated(followers.with_columns(at(2001, "platform", "bluesky")), "platform") is None  # two in one row group
    assert stated(followers, "platform", statistics=False) is None
    long = "x" * STATED_MAX
    assert stated(followers.with_columns(pl.lit(long).alias("account")), "account") is None  # might be truncated
