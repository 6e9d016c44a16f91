"""The batch scorer and the streaming local engine of `followaudit score` (issue 9)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from followaudit.classify import label_followers
from followaudit.cli import cli, main
from followaudit.errors import (
    EmptyInputError,
    InputError,
    MissingColumnsError,
    MissingDependencyError,
    UnknownFormatError,
)
from followaudit.scale import score_batch, score_local, summary_path
from followaudit.scale.score import OUTPUT_COLUMNS, count_rows, input_files, iter_batches
from followaudit.scale.synth_parquet import synth_partition, write_partitioned
from followaudit.schema import conform

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three partitions of one synthetic account, with small row groups."""
    directory = tmp_path_factory.mktemp("canonical")
    write_partitioned(4_500, directory, partition_rows=1_500, row_group_rows=700, seed=3)
    return directory


def test_score_batch_is_label_followers_plus_ids() -> None:
    frame = synth_partition(800, 0, 0, seed=5)
    got = score_batch(frame, as_of=AS_OF, method="rules")
    # platform_verdict (the labeller's own word on platform-labelled fakes) feeds the audit's evidence only
    want = label_followers(frame, method="rules", as_of=AS_OF).drop("platform_verdict")
    assert got.columns == OUTPUT_COLUMNS
    assert got.select(want.columns).equals(want)
    assert got["platform"].to_list() == frame["platform"].to_list()
    assert got["account"].to_list() == frame["account"].to_list()
    # Arrow in, same answer; the unread columns (raw, truth_label) do not change a label.
    arrow = frame.drop("raw", "truth_label").to_arrow()
    assert score_batch(arrow, as_of=AS_OF, method="rules").equals(got)


def test_score_batch_conforms_partial_and_foreign_dtypes() -> None:
    frame = synth_partition(500, 0, 0, seed=6)
    canonical = score_batch(frame, as_of=AS_OF, method="rules")
    # ns timestamps, int32 counts and missing columns are what other tools write.
    foreign = frame.drop("handle_length", "handle_digits", "verified").with_columns(
        pl.col("created_at").cast(pl.Datetime("ns", "UTC")),
        pl.col("followers_count").cast(pl.Int32),
    )
    assert score_batch(foreign, as_of=AS_OF, method="rules").equals(canonical)


def test_as_of_fills_missing_observed_at() -> None:
    frame = synth_partition(600, 0, 0, seed=8)
    observed = frame["observed_at"][0]
    blank = frame.with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("observed_at"))
    assert score_batch(blank, as_of=observed, method="rules").equals(score_batch(frame, as_of=AS_OF, method="rules"))
    later = score_batch(blank, as_of=datetime(2030, 1, 1, tzinfo=UTC), method="rules")
    assert (later["label"] == "inactive").sum() > (score_batch(frame, as_of=AS_OF, method="rules")["label"] == "inactive").sum()


def test_local_engine_streams_rows_in_order(parts: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.parquet"
    seen: list[int] = []
    result = score_local(parts, out, as_of=AS_OF, method="rules", batch_rows=1_000, progress=seen.append)
    whole = pl.read_parquet(parts)
    want = score_batch(whole, as_of=AS_OF, method="rules")
    got = pl.read_parquet(out)
    assert got.equals(want)  # same rows, same order, same labels and reasons as one big batch
    assert sum(seen) == whole.height == result.rows
    assert max(seen) <= 1_000 and len(seen) >= 5  # bounded batches
    counts = dict(want["label"].value_counts().iter_rows())
    assert result.counts == {k: counts.get(k, 0) for k in ("fake", "inactive", "real")}
    summary = json.loads(summary_path(out).read_text())
    assert summary["rows"] == whole.height
    for share in summary["shares"].values():
        assert share["low"] <= share["share"] <= share["high"]
        assert share["method"].startswith("Wilson score 95%")


def test_iter_batches_merges_small_and_slices_large_row_groups(tmp_path: Path) -> None:
    frame = synth_partition(5_000, 0, 0, seed=9)
    path = tmp_path / "one.parquet"
    frame.write_parquet(path, row_group_size=3_000)  # groups of 3,000 and 2,000
    sizes = [t.height for t in iter_batches([str(path)], 1_000)]
    assert sizes == [1_000] * 5
    sizes = [t.height for t in iter_batches([str(path)], 5_000)]
    assert sizes == [5_000]
    small = tmp_path / "small.parquet"
    frame.write_parquet(small, row_group_size=400)
    groups = pq.ParquetFile(small).num_row_groups
    sizes = [t.height for t in iter_batches([str(small)], 1_000)]
    assert sum(sizes) == 5_000 and max(sizes) <= 1_000 and len(sizes) < groups  # groups read together
    assert pl.concat(iter_batches([str(small)], 1_000))["follower_id"].to_list() == frame["follower_id"].to_list()


def test_inputs_file_directory_glob(parts: Path) -> None:
    files = input_files(parts)
    assert [Path(f).name for f in files] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert input_files(str(parts / "part-0000[01].parquet")) == files[:2]
    assert input_files(files[0]) == files[:1]
    assert count_rows(files) == 4_500


def test_bad_inputs_raise_specific_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        input_files(tmp_path / "nope.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyInputError):
        input_files(tmp_path / "empty")
    text = tmp_path / "followers.parquet"
    text.write_text("id,name\n1,a\n")
    with pytest.raises(UnknownFormatError, match="not a readable Parquet"):
        score_local(text, tmp_path / "o.parquet", as_of=AS_OF, method="rules")
    no_id = tmp_path / "no_id.parquet"
    pl.DataFrame({"handle": ["a"]}).write_parquet(no_id)
    with pytest.raises(MissingColumnsError):
        score_local(no_id, tmp_path / "o.parquet", as_of=AS_OF, method="rules")
    with pytest.raises(MissingColumnsError):
        score_batch(pl.DataFrame({"handle": ["a"]}), as_of=AS_OF, method="rules")
    with pytest.raises(InputError, match="local files only"):
        score_local("s3://bucket/followers/", tmp_path / "o.parquet", as_of=AS_OF, method="rules")
    with pytest.raises(InputError, match="is a directory"):
        score_local(no_id, tmp_path, as_of=AS_OF, method="rules")
    with pytest.raises(InputError, match="also an input"):
        score_local(no_id, no_id, as_of=AS_OF, method="rules")


def test_failure_midway_leaves_no_partial_output(parts: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for f in input_files(parts):
        (mixed / Path(f).name).write_bytes(Path(f).read_bytes())
    (mixed / "part-99999.parquet").write_bytes(b"PAR1 this is not parquet")
    out = tmp_path / "labels.parquet"
    with pytest.raises(UnknownFormatError):
        score_local(mixed, out, as_of=AS_OF, method="rules", batch_rows=1_000)
    assert not out.exists() and not summary_path(out).exists()


def test_cli_score_local(parts: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.parquet"
    res = CliRunner().invoke(cli, ["score", str(parts), "-o", str(out), "--as-of", "2026-11-01", "--method", "rules"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["engine"] == "local" and summary["rows"] == 4_500
    assert summary["as_of"] == "2026-11-01T00:00:00+00:00"
    assert pl.read_parquet(out).height == 4_500
    assert json.loads(summary_path(out).read_text())["shares"] == summary["shares"]


def test_cli_rejects_bad_options(parts: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["score", str(parts), "-o", str(tmp_path / "o.parquet"), "--scheduler", "tcp://127.0.0.1:1"])
    assert res.exit_code == 2 and "--engine dask" in res.output
    res = runner.invoke(cli, ["score", str(parts), "-o", str(tmp_path / "o.parquet"), "--as-of", "yesterday"])
    assert res.exit_code == 2 and "ISO 8601" in res.output


def test_missing_dask_says_how_to_install(parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from followaudit.scale.dask_engine import import_dask

    monkeypatch.setitem(sys.modules, "dask", None)  # makes `import dask` raise ImportError
    with pytest.raises(MissingDependencyError) as info:
        import_dask()
    assert "followaudit[dask]" in info.value.hint
    with pytest.raises(SystemExit) as exited:
        main(["score", str(parts), "-o", str(tmp_path / "o"), "--engine", "dask", "--method", "rules"])
    assert exited.value.code == 1
    assert "pip install 'followaudit[dask]'" in capsys.readouterr().err


def test_canonical_parquet_from_conform_round_trips(tmp_path: Path) -> None:
    frame = conform(synth_partition(300, 0, 0, seed=11))
    path = tmp_path / "c.parquet"
    frame.write_parquet(path)
    table = pq.read_table(path)
    assert score_batch(table, as_of=AS_OF, method="rules").equals(score_batch(frame, as_of=AS_OF, method="rules"))


def test_score_labels_what_audit_labels(tmp_path: Path) -> None:
    """`score` over an exported snapshot gives `audit`'s labels: one scoring function for both."""
    from followaudit.audit import as_of_time, audit_snapshot
    from followaudit.sources.ingest import import_file
    from followaudit.sources.synth import write_synth
    from followaudit.store import Store

    source = tmp_path / "followers.jsonl"
    write_synth(1_500, source, seed=4)
    with Store(tmp_path / "w.duckdb") as store:
        snap = import_file(store, source, platform="twitter", order="newest-first", account="acct").snapshot_id
        audit_snapshot(store, snap, method="rules")
        audited = store.labels(snap, "rules")
        store.export_parquet(snap, tmp_path / "canonical.parquet")
        as_of = as_of_time(store.snapshot(snap))
    result = score_local(tmp_path / "canonical.parquet", tmp_path / "labels.parquet", method="rules", as_of=as_of)
    scored = pl.read_parquet(tmp_path / "labels.parquet").select("follower_id", "label", "probability", "reasons")
    both = scored.join(audited, on="follower_id", suffix="_audit")
    assert both.height == 1_500 == result.rows and result.as_of == as_of
    assert (both["label"] == both["label_audit"]).all()
    assert both["probability"].equals(both["probability_audit"], check_names=False)
    # The audit appends account-level reasons (bought batches found in the follow order) after the
    # labeller's own; per-follower reasons are the same.
    same = both.select((pl.col("reasons_audit").list.head(pl.col("reasons").list.len()) == pl.col("reasons")).all())
    assert same.item()


def test_labelling_error_stops_the_stream_and_removes_output(parts: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.parquet"
    with pytest.raises(ValueError, match="unknown labelling method"):
        score_local(parts, out, method="astrology", as_of=AS_OF, batch_rows=1_000, labellers=3)
    assert not out.exists()


def test_parallel_labellers_keep_input_order(parts: Path, tmp_path: Path) -> None:
    one = score_local(parts, tmp_path / "one.parquet", method="rules", as_of=AS_OF, batch_rows=700, labellers=1)
    three = score_local(parts, tmp_path / "three.parquet", method="rules", as_of=AS_OF, batch_rows=700, labellers=3)
    assert pl.read_parquet(tmp_path / "three.parquet").equals(pl.read_parquet(tmp_path / "one.parquet"))
    assert one.counts == three.counts


def test_model_summary_carries_the_corrected_shares(tmp_path):
    """`score --method model` reports the shares corrected for the model's error, as `audit` does."""
    from followaudit.scale.score import score_local
    from followaudit.sources.synth import OBSERVED_AT, write_synth

    src = tmp_path / "in.parquet"
    write_synth(3000, src, seed=3)
    result = score_local(src, tmp_path / "out.parquet", method="model", as_of=OBSERVED_AT)
    assert result.platform == "twitter"
    doc = result.to_dict()
    fake = doc["corrected"]["fake"]
    assert fake["low"] <= fake["share"] <= fake["high"]
    assert "Rogan" in fake["method"]
    assert set(doc["corrected"]) == {"fake", "inactive", "real"}
    assert score_local(src, tmp_path / "rules.parquet", method="rules", as_of=OBSERVED_AT).to_dict()["corrected"] is None


def test_score_summary_uses_the_audit_estimator_and_the_fields_the_input_carries(tmp_path: Path) -> None:
    """One estimator: `score` corrects the fake share as `audit` does (transfer-aware, pattern of
    known fields from the Parquet footers); it does not bin features, so the shift is unknown and
    the interval is the moderate one, never the narrow near one."""
    from followaudit.classify.model import load_model
    from followaudit.estimate.audience import model_estimates

    frame = synth_partition(5000, 0, 0).with_columns(pl.lit(None, dtype=pl.Boolean).alias("has_avatar"))
    src = tmp_path / "in.parquet"
    frame.write_parquet(src)
    result = score_local(src, tmp_path / "out.parquet", method="model", as_of=datetime(2026, 11, 1, tzinfo=UTC))
    assert result.known is not None and result.known["rows"] == 5000
    assert result.known["known"]["has_avatar"] == 0 and result.known["known"]["followers_count"] == 5000
    evidence = result.evidence
    assert evidence["shift"]["level"] == "unknown" and evidence["fields_known"]["has_avatar"] == 0.0
    assert evidence["model_fields"]["pattern"] != "full"  # the picture is unknown: a pattern that hides it
    model = load_model("twitter")
    expected, _ = model_estimates(result.counts, model.card, mask=evidence["model_fields"]["pattern"], profile=None,
                                  probabilities=None, confidence=0.95)
    assert result.corrected["fake"]["share"] == expected["fake"]["share"]
    assert (result.corrected["fake"]["low"], result.corrected["fake"]["high"]) == (expected["fake"]["low"], expected["fake"]["high"])
    summary = json.loads(summary_path(tmp_path / "out.parquet").read_text())
    assert summary["evidence"]["interval_method"] == summary["corrected"]["fake"]["method"]


def test_score_command_imports_no_pandas_nor_pyarrow_compute(parts: Path, tmp_path: Path) -> None:
    """Each costs start-up on every run (~0.7 s and ~0.3 s); `score` needs neither."""
    out = tmp_path / "l.parquet"
    code = "\n".join([
        "import sys",
        "from followaudit.cli.app import main",
        "try:",  # given its arguments, main returns (run as the program, it leaves without tearing down)
        f"    main(['score', {str(parts)!r}, '-o', {str(out)!r}])",
        "except SystemExit:",
        "    pass",
        "print(sorted(m for m in ('pandas', 'pyarrow.compute', 'lightgbm', 'sklearn', 'scipy') if m in sys.modules), file=sys.stderr)",
    ])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr[-2000:]
    assert pl.read_parquet(out).height == 4_500
