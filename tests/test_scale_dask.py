"""The Dask engine on a real 2-worker LocalCluster, workers as threads (the default) or as processes:
same labels as the local engine, row for row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from followaudit.classify import METHODS  # noqa: E402
from followaudit.cli import cli  # noqa: E402
from followaudit.scale import score_local, summary_path  # noqa: E402
from followaudit.scale.dask_engine import dask_client, score_dask  # noqa: E402
from followaudit.scale.synth_parquet import synth_partition  # noqa: E402

pytestmark = pytest.mark.slow
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def client():  # noqa: ANN201 - a distributed.Client
    """The default LocalCluster: scheduler on tcp://127.0.0.1, two workers in this process."""
    with dask_client(n_workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def process_client():  # noqa: ANN201 - a distributed.Client
    """``--processes``: two worker processes, each spawned by its nanny."""
    with dask_client(n_workers=2, processes=True) as c:
        yield c


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four partitions, several row groups each; some rows without observed_at, some flagged by the platform."""
    directory = tmp_path_factory.mktemp("canonical")
    offset = 0
    for i, rows in enumerate((1_200, 900, 1_500, 1_000)):
        frame = synth_partition(rows, i, offset, seed=21)
        frame = frame.with_columns(
            pl.when(pl.col("follow_rank") % 7 == 0).then(None).otherwise(pl.col("observed_at")).alias("observed_at"),
            pl.when(pl.col("follow_rank") % 50 == 1).then(pl.lit(["Spam"])).otherwise(pl.col("moderation_labels")).alias("moderation_labels"),
            (pl.col("follow_rank") % 97 == 3).alias("self_declared_bot"),
        )
        frame.write_parquet(directory / f"part-{i}.parquet", row_group_size=400)
        offset += rows
    return directory


def _tcp_cluster(client) -> dict:  # noqa: ANN001
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    return workers


def test_default_workers_are_threads_of_this_process_on_a_tcp_cluster(client) -> None:  # noqa: ANN001
    _tcp_cluster(client)
    assert set(client.run(os.getpid).values()) == {os.getpid()}
    assert all(w["nthreads"] == 1 for w in client.scheduler_info()["workers"].values())
    # The cluster's runtime ticks and samples at batch-job rates, and the profiler is off.
    import dask

    from followaudit.scale.dask_engine import LOCAL_CLUSTER_CONFIG

    for key, value in LOCAL_CLUSTER_CONFIG.items():
        assert set(client.run(lambda key=key: dask.config.get(key)).values()) == {value}


def test_process_workers_are_their_own_processes(process_client) -> None:  # noqa: ANN001
    _tcp_cluster(process_client)
    pids = set(process_client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    # Polars in each worker uses one thread, like the worker itself; the workers got the cluster's config.
    threads = process_client.run(lambda: __import__("polars").thread_pool_size())
    assert set(threads.values()) == {1}
    ticks = process_client.run(lambda: __import__("dask").config.get("distributed.admin.tick.interval"))
    profile = process_client.run(lambda: __import__("dask").config.get("distributed.worker.profile.enabled"))
    assert set(ticks.values()) == {"1s"} and set(profile.values()) == {False}


def test_results_are_taken_on_the_scoring_clients_own_loop(client, process_client, parts: Path, tmp_path: Path,  # noqa: ANN001
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With two clients in one process, the results of a run are gathered on its own client's loop:
    ``as_completed`` otherwise takes the default (newest) client's loop, whose thread then wrote to
    this client's connections (tornado asserted and the results never came; the test below hung
    once in a few full runs, and a stress run of the old call hung within 50 runs)."""
    import distributed

    from followaudit.scale import dask_engine

    assert distributed.default_client() is process_client  # the newer client is the default
    loops = []
    original = distributed.as_completed

    def recording(futures, loop=None, **kwargs):  # noqa: ANN001, ANN202 - distributed's signature
        loops.append(loop)
        return original(futures, loop=loop, **kwargs)

    monkeypatch.setattr(dask_engine.import_dask()[1], "as_completed", recording)
    result = score_dask(parts, tmp_path / "out", method="rules", as_of=AS_OF, client=client)
    assert loops == [client.loop] and client.loop is not process_client.loop
    assert sum(result.counts.values()) == 4_600


@pytest.mark.parametrize("layout", ["client", "process_client"])
def test_dask_output_equals_local_row_for_row(layout: str, request: pytest.FixtureRequest, parts: Path, tmp_path: Path) -> None:
    client = request.getfixturevalue(layout)

    def scored_on_workers() -> int:
        counts = client.run(lambda: __import__("followaudit.scale.score", fromlist=["SCORED"]).SCORED["rows"])
        # Threads of this process share one counter: count it once.
        return sum(counts.values()) if layout == "process_client" else next(iter(counts.values()))

    local = score_local(parts, tmp_path / "local.parquet", method="rules", as_of=AS_OF, batch_rows=1_000)
    # Labels of an earlier run in OUT are replaced, never counted or mixed in.
    (tmp_path / "dask").mkdir()
    (tmp_path / "dask" / "part.99.parquet").write_bytes((tmp_path / "local.parquet").read_bytes())
    before = scored_on_workers()
    dask = score_dask(parts, tmp_path / "dask", method="rules", as_of=AS_OF, client=client)
    assert len(list((tmp_path / "dask").glob("*.parquet"))) == dask.extra["partitions"] >= 2

    want = pl.read_parquet(tmp_path / "local.parquet").sort("follower_id")
    got = pl.read_parquet(tmp_path / "dask").sort("follower_id")
    assert want.height == got.height == 4_600
    assert got.columns == want.columns
    assert got.schema == want.schema
    assert got.equals(want)  # every column, every row, reasons lists included
    # pandas can open the labels of both engines (Dask's default pandas metadata would break it).
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "dask")) == len(pd.read_parquet(tmp_path / "local.parquet")) == 4_600
    assert want["label"].n_unique() == 3 and want["follower_id"].is_unique().all()

    # The counts reduction and the write run in one pass: every row scored exactly once on the workers.
    assert scored_on_workers() - before == 4_600
    assert dask.counts == local.counts and dask.activity_unknown == local.activity_unknown
    assert {k: v.to_dict() for k, v in dask.shares.items()} == {k: v.to_dict() for k, v in local.shares.items()}
    summary = json.loads(summary_path(tmp_path / "dask").read_text())
    assert summary["engine"] == "dask" and summary["workers"] == 2 and summary["rows"] == 4_600


def test_cli_score_dask_on_existing_scheduler(client, parts: Path, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "labels"
    res = CliRunner().invoke(
        cli,
        ["score", str(parts), "-o", str(out), "--engine", "dask", "--scheduler", client.scheduler.address, "--as-of", "2026-11-01", "--method", "rules"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["engine"] == "dask" and summary["rows"] == 4_600
    assert summary["scheduler"] == client.scheduler.address
    assert pl.read_parquet(out).height == 4_600


def test_cli_score_dask_starts_its_own_cluster(parts: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels"
    args = ["score", str(parts), "-o", str(out), "--engine", "dask", "--as-of", "2026-11-01", "--method", "rules", "--batch-rows", "1000"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["engine"] == "dask" and summary["rows"] == 4_600 and summary["workers"] == 2
    assert summary["scheduler"].startswith("tcp://127.0.0.1:") and summary["partitions"] >= 4
    assert pl.read_parquet(out).height == 4_600
    res = CliRunner().invoke(cli, [*args[:4], "--processes"])
    assert res.exit_code == 2 and "--engine dask" in res.output


def test_the_command_reports_progress_and_closes_its_cluster_quietly(parts: Path, tmp_path: Path) -> None:
    seen: list[float] = []
    result = score_dask(parts, tmp_path / "api", method="rules", as_of=AS_OF, partition_rows=1_000, progress=seen.append)
    assert len(seen) == result.extra["partitions"] >= 4 and seen == sorted(seen) and seen[-1] == 1.0
    # As a user runs it: the cluster starts and closes inside the command, and nothing but the
    # command's own two lines reaches stderr (a progress feed cancelled at close was logged as an error).
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "followaudit", "score", str(parts), "-o", str(out), "--engine", "dask", "--method", "rules",
         "--as-of", "2026-11-01", "--batch-rows", "1000"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 4_600
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("scoring 4,600 followers") and "4,600 followers in" in lines[1], done.stderr


@pytest.mark.skipif("model" not in METHODS, reason="the model method is not available")
def test_model_is_loaded_once_per_worker(process_client, parts: Path, tmp_path: Path) -> None:  # noqa: ANN001
    client = process_client
    local = score_local(parts, tmp_path / "local.parquet", method="model", as_of=AS_OF)
    score_dask(parts, tmp_path / "dask", method="model", as_of=AS_OF, client=client)

    def loads(dask_worker=None) -> tuple[int, int]:  # noqa: ANN001
        from followaudit.classify.model import _load_cached

        info = _load_cached.cache_info()
        return info.misses, info.hits

    per_worker = client.run(loads)
    # All rows are twitter: one model, read from disk at most once per worker process, reused after.
    assert all(misses <= 1 for misses, _ in per_worker.values())
    assert sum(misses for misses, _ in per_worker.values()) >= 1
    want = pl.read_parquet(tmp_path / "local.parquet").sort("follower_id")
    got = pl.read_parquet(tmp_path / "dask").sort("follower_id")
    assert got.equals(want) and local.rows == want.height


def test_dask_never_clears_a_directory_of_other_files(parts: Path, tmp_path: Path) -> None:
    from followaudit.errors import InputError

    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="holds other files"):
        score_dask(parts, keep, as_of=AS_OF, client=object())  # refused before any cluster work
    assert (keep / "thesis.tex").read_text() == "precious"
    with pytest.raises(InputError, match="holds the input"):
        score_dask(parts, parts, as_of=AS_OF, client=object())


def test_partitions_are_whole_row_groups_of_one_file(parts: Path) -> None:
    from followaudit.scale.dask_engine import plan_parts
    from followaudit.scale.score import input_files

    files = input_files(parts)  # 1,200 / 900 / 1,500 / 1,000 rows in row groups of 400
    big = plan_parts(files, workers=1, target_rows=10_000)
    assert [p.rows for p in big] == [1_200, 900, 1_500, 1_000]  # whole files: two partitions per worker anyway
    small = plan_parts(files, workers=2, target_rows=700)
    assert [(Path(p.file).name, p.offset, p.rows) for p in small][:4] == [
        ("part-0.parquet", 0, 800), ("part-0.parquet", 800, 400), ("part-1.parquet", 0, 800), ("part-1.parquet", 800, 100),
    ]
    assert sum(p.rows for p in small) == 4_600 and [p.index for p in small] == list(range(len(small)))


def test_object_store_output_is_the_local_engines_files(client, parts: Path, tmp_path: Path) -> None:  # noqa: ANN001
    # an fsspec URL (here the in-process memory store, shared by the threads of this cluster) goes
    # through Dask's own writer: the same rows, and the same Parquet layout as the local engine's
    import fsspec
    import pyarrow.parquet as pq

    local = score_local(parts, tmp_path / "local.parquet", method="rules", as_of=AS_OF, batch_rows=1_000)
    dask = score_dask(parts, "memory://followaudit-test/labels", method="rules", as_of=AS_OF, client=client)
    fs = fsspec.filesystem("memory")
    files = sorted(f for f in fs.find("/followaudit-test/labels") if f.endswith(".parquet"))
    assert len(files) >= 2 and dask.counts == local.counts
    with fs.open(files[0], "rb") as handle:
        written = pq.ParquetFile(handle)
        meta, local_meta = written.metadata, pq.ParquetFile(tmp_path / "local.parquet").metadata
        got = pl.concat([pl.read_parquet(fs.open(f, "rb").read()) for f in files]).sort("follower_id")
        column = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
        for name, i in column.items():
            theirs = local_meta.row_group(0).column(column[name])
            mine = meta.row_group(0).column(i)
            assert mine.compression == theirs.compression == "ZSTD", name
            assert mine.is_stats_set == theirs.is_stats_set, name  # statistics only where they serve
    assert got.equals(pl.read_parquet(tmp_path / "local.parquet").sort("follower_id"))
