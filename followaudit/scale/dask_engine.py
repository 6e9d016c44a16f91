"""The Dask engine: the same ``score_batch`` over Parquet partitions on a (local or real) cluster.

Local input (a path every worker can read): the client plans partitions from the Parquet footers
(row groups of one file, about ``partition_rows`` rows each) and submits one task per partition;
the task reads its row groups with Polars, labels them with ``score_batch``, writes its labels file
with pyarrow and returns only its label counts. No pandas, no Dask DataFrame graph and no second
pass over the written labels: measured on 2M rows, the DataFrame route (pandas <-> Arrow <-> Polars
per partition, then re-reading the labels to count them) cost about twice the CPU per row of the
local engine. Object-store input (s3://, gs://) still goes through ``dask.dataframe.read_parquet``,
``map_partitions`` and ``to_parquet``, which know those filesystems.

Without a scheduler address a ``LocalCluster`` is started on 127.0.0.1 with its dashboard off; its
workers are threads of this process unless ``processes=True`` (``dask_client``).
Dask is an optional extra: ``pip install 'followaudit[dask]'``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import pyarrow as pa
import pyarrow.parquet as pq

from ..classify import UNREAD_COLUMNS
from ..errors import InputError, MissingDependencyError
from ..schema import COLUMN_NAMES
from .score import (
    PARQUET_OPTIONS,
    ScoreOptions,
    ScoreResult,
    ScoreSettings,
    add_counts,
    arrow_labels,
    empty_counts,
    input_files,
    input_known,
    input_platform,
    is_remote,
    output_arrow_schema,
    read_row_groups,
    score_batch,
    summary_path,
)

if TYPE_CHECKING:
    import pandas as pd

DASK_HINT = "pip install 'followaudit[dask]'  (or use --engine local)"
DEFAULT_WORKERS = 2
# Rows per partition when files are split, the local engine's batch size. Measured on 10M rows with
# the default in-process workers: the same CPU as 500k partitions (16.9-18.2 vs 17.7-17.8 CPU-s)
# and a third less peak memory (~720 MiB against ~1,080), two partitions being labelled at once.
DEFAULT_PARTITION_ROWS = 250_000


@lru_cache(maxsize=1)
def labels_parquet_engine() -> type:
    """The Parquet engine the labels are written with (built when Dask is installed and asked for).

    Dask's own pyarrow engine stores pandas metadata naming each column's dtype; for the ``reasons``
    column that is ``large_list<item: large_string>[pyarrow]``, which ``pandas.read_parquet`` cannot
    parse back (pandas-dev/pandas#57411, apache/arrow#39914), so nobody could open the labels with
    pandas. The labels have no index to restore, so this engine writes them without pandas metadata:
    plain Parquet, the same as the local engine's. ``to_parquet(engine=...)`` accepts an engine class.
    """
    from dask.dataframe.io.parquet.arrow import ArrowDatasetEngine

    class LabelsParquetEngine(ArrowDatasetEngine):
        @classmethod
        def _pandas_to_arrow_table(cls, df: Any, preserve_index: bool = False, schema: Any = None) -> pa.Table:
            table = super()._pandas_to_arrow_table(df, preserve_index=preserve_index, schema=schema)
            metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != b"pandas"}
            return table.replace_schema_metadata(metadata or None)

    return LabelsParquetEngine


def import_dask() -> tuple[Any, Any]:
    """``(dask, distributed)``, or a MissingDependencyError saying how to install them.

    Not ``dask.dataframe``: it imports pandas and dask-expr (~0.9 CPU-s, a quarter of scoring 2M
    rows), and local input never uses it; ``import_dask_dataframe`` loads it for object stores.
    """
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise _missing(exc) from exc
    return dask, distributed


def import_dask_dataframe() -> Any:
    """``dask.dataframe`` (object-store input or output only), or a MissingDependencyError."""
    try:
        import dask.dataframe as dd
    except ImportError as exc:
        raise _missing(exc) from exc
    return dd


def _missing(exc: ImportError) -> MissingDependencyError:
    return MissingDependencyError(
        f"the Dask engine needs Dask and distributed, which are not installed ({exc.name} is missing)",
        hint=DASK_HINT,
    )


def score_partition(
    part: pd.DataFrame, *, method: str, as_of: datetime, inactive_days: int, platform: str | None = None
) -> pd.DataFrame:
    """One Dask partition through ``score_batch``: pandas (Arrow-backed) in, Arrow-backed labels out."""
    import pandas as pd

    table = pa.Table.from_pandas(part, preserve_index=False)
    labels = score_batch(table, method=method, as_of=as_of, inactive_days=inactive_days, platform=platform)
    return labels.to_arrow().cast(output_arrow_schema()).to_pandas(types_mapper=pd.ArrowDtype)


UNKNOWN = "activity_unknown"


def part_name(index: int) -> str:
    """File name of the labels of partition ``index`` (Dask's own default, named so it can be read back)."""
    return f"part.{index}.parquet"


def partition_counts(labels: pd.DataFrame) -> pd.DataFrame:
    """One row: how many followers of this partition got each label, and with unknown activity."""
    import pandas as pd

    counts = labels["label"].value_counts()
    row = {label: int(counts.get(label, 0)) for label in empty_counts()}
    row[UNKNOWN] = int(labels[UNKNOWN].fillna(False).astype(bool).sum())
    return pd.DataFrame([row], dtype="int64")


def _counts_meta() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="int64") for c in [*empty_counts(), UNKNOWN]})


def output_meta() -> pd.DataFrame:
    """The empty frame Dask needs to know ``score_partition``'s output columns and dtypes."""
    import pandas as pd

    return output_arrow_schema().empty_table().to_pandas(types_mapper=pd.ArrowDtype)


# The LocalCluster's runtime between tasks, at rates for a batch job with no dashboard: by default
# every server ticks its event loop every 20 ms, samples the host (psutil) every 0.5 s and each worker
# its memory every 0.1 s, and each worker samples every thread's stack 100 times a second for the
# profiler. Measured idle: 0.078 CPU-s per second of a 2-worker process cluster (0.044 of it in the
# client), 0.014 with these; the profiler alone was ~10% of a scoring worker's CPU. Ticks of 1 s still
# catch a blocked event loop (warned about at 3 s); memory checked every second still pauses a worker
# near its limit. Applies to a LocalCluster only: a cluster given by --scheduler keeps its own config.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@contextmanager
def dask_client(
    scheduler: str | None = None, *, n_workers: int = DEFAULT_WORKERS, threads_per_worker: int = 1,
    processes: bool = False,
) -> Iterator[Any]:
    """A client for ``scheduler`` (tcp://HOST:PORT), or for a new LocalCluster on 127.0.0.1.

    The LocalCluster's scheduler listens on tcp://127.0.0.1 and its ``n_workers`` workers (one
    Dask thread each) connect to it over TCP, as on a real cluster. By default the workers run
    inside this process: scoring releases the GIL (Polars, Arrow, the compiled trees), so threads
    share one import of followaudit and Dask, one loaded model and one Polars thread pool, the
    same as the local engine's labelling threads. ``processes=True`` starts each worker as its own
    process (spawned by a nanny, Polars and the trees limited to its thread count so the workers
    do not oversubscribe the cores): isolated, but each worker imports Dask, Polars and followaudit
    and loads the model again (~1 CPU-s each, measured; docs/scale.md).
    """
    dask, distributed = import_dask()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"cannot connect to the Dask scheduler at {scheduler} ({exc})",
                hint="start one with `dask scheduler` and `dask worker tcp://HOST:8786`, or drop --scheduler to run locally",
            ) from exc
        with client:
            yield client
        return
    options: dict[str, Any] = {}
    if processes:
        options = {
            "env": {"POLARS_MAX_THREADS": str(threads_per_worker), "OMP_NUM_THREADS": str(threads_per_worker)},
            # Workers import the labeller as they start (with the cluster), not inside the first task.
            "preload": ["followaudit.scale.score"],
        }
    with dask.config.set(LOCAL_CLUSTER_CONFIG), distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=processes,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
        # The scheduler serves /health and /metrics even without a dashboard, by default on port
        # 8787, warning when that is taken (by another cluster): a free port on loopback instead.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        # Shutdown chatter ("worker still alive, killing") is not the user's concern; errors still show.
        silence_logs=logging.ERROR,
        **options,
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def row_groups_per_partition(files: list[str], workers: int, target_rows: int = DEFAULT_PARTITION_ROWS) -> int | str:
    """``split_row_groups`` for ``read_parquet``: whole files unless they are big or too few.

    Dask reads one file per partition by default. A file much larger than ``target_rows`` would
    make a worker hold it all at once, and fewer files than twice the workers leave workers idle:
    then partitions are made of as many row groups as come to about ``target_rows``.
    """
    if any(is_remote(f) for f in files):
        return "infer"
    metas = [pq.ParquetFile(f).metadata for f in files]
    rows = sum(m.num_rows for m in metas)
    groups = sum(m.num_row_groups for m in metas)
    if not rows or groups <= len(files):
        return "infer"
    if rows / len(files) <= 1.5 * target_rows and len(files) >= 2 * workers:
        return "infer"
    per_group = rows / groups
    return max(1, round(target_rows / per_group))


@dataclass(frozen=True)
class Part:
    """One partition of local input: whole row groups of one file."""

    index: int
    file: str
    offset: int  # first row of the partition in its file
    rows: int


def plan_parts(files: list[str], workers: int, target_rows: int = DEFAULT_PARTITION_ROWS) -> list[Part]:
    """Partitions of about ``target_rows`` rows (whole row groups, never across files), smaller
    when that would leave fewer than two partitions per worker."""
    metas = [pq.ParquetFile(f).metadata for f in files]
    total = sum(m.num_rows for m in metas)
    target = max(1, min(target_rows, -(-total // max(1, 2 * workers))))
    parts: list[Part] = []
    for file, meta in zip(files, metas, strict=True):
        start = pending = 0
        for group in range(meta.num_row_groups):
            pending += meta.row_group(group).num_rows
            if pending >= target or group == meta.num_row_groups - 1:
                if pending:
                    parts.append(Part(len(parts), file, start, pending))
                start += pending
                pending = 0
    return parts


def score_part(part: Part, *, target: str, method: str, as_of: datetime, inactive_days: int) -> dict[str, int]:
    """On a worker: read one partition, label it, write ``part.N.parquet``; return its counts."""
    frame = read_row_groups(part.file, part.offset, part.rows)
    labels = score_batch(frame, method=method, as_of=as_of, inactive_days=inactive_days)
    table = arrow_labels(labels, output_arrow_schema(views=True))
    pq.write_table(table, f"{target}/{part_name(part.index)}", **PARQUET_OPTIONS)  # the same files as the local engine's
    counts = empty_counts()
    unknown = add_counts(counts, labels)
    return {**counts, UNKNOWN: unknown}


def _clear_labels(target: Path) -> None:
    """Remove the labels of an earlier run (``_check_output_dir`` made sure nothing else is there)."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if _OUR_FILES.fullmatch(old.name):
            old.unlink()


def score_dask(
    source: str | Path,
    output: str | Path,
    *,
    scheduler: str | None = None,
    client: Any = None,
    n_workers: int = DEFAULT_WORKERS,
    processes: bool = False,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    progress: Callable[[float], None] | None = None,
    write_summary: bool = True,
    **options: Unpack[ScoreOptions],
) -> ScoreResult:
    """Score canonical Parquet at ``source`` on Dask into the Parquet directory ``output``.

    One labels file per partition (``part.N.parquet``); a partition is a file, or about
    ``partition_rows`` rows of row groups when files are large or fewer than twice the workers.
    Uses ``client`` when given, else
    connects to ``scheduler``, else starts a LocalCluster of ``n_workers`` on 127.0.0.1 (threads of
    this process; separate processes with ``processes=True``: see ``dask_client``). Paths must
    be readable and writable by every worker (a shared filesystem or an object store URL).
    ``progress(fraction)`` is called as the cluster's tasks finish.
    """
    _, distributed = import_dask()
    settings = ScoreSettings.resolve(options)
    files = input_files(source)
    target = str(output) if is_remote(str(output)) else str(Path(output).resolve())
    if not is_remote(target):
        _check_output_dir(Path(target), files)
    opened = time.perf_counter()

    def run(cl: Any) -> ScoreResult:
        # Scoring time starts once the cluster is up; starting a LocalCluster is reported apart.
        started = time.perf_counter()
        workers = max(1, len(cl.scheduler_info().get("workers", {})))
        if is_remote(str(source)) or is_remote(target):
            tallies, n_unknown, n_parts = _run_dataframe(cl, import_dask_dataframe(), distributed, files, source, target, workers, settings,
                                                         partition_rows, progress)
        else:
            parts = plan_parts(files, workers, partition_rows)
            _clear_labels(Path(target))
            futures = cl.map(score_part, parts, pure=False, target=target, **settings.labelling())
            # Results are taken as tasks finish, which is also the progress: no progress feed on the
            # scheduler (polled every 100 ms, and cancelled mid-sleep when a quick cluster closes).
            results = []
            # On this client's loop: as_completed otherwise takes the default (newest) client's, and
            # with two clients in one process the other loop wrote to this one's connections (tornado
            # asserted, the results never came: a test hung once in a few runs).
            for _, counts in distributed.as_completed(futures, loop=cl.loop, with_results=True):
                results.append(counts)
                if progress is not None:
                    progress(len(results) / len(futures))
            tallies = {label: sum(r[label] for r in results) for label in empty_counts()}
            n_unknown, n_parts = sum(r[UNKNOWN] for r in results), len(parts)
        return settings.result(
            engine="dask",
            input=str(source),
            output=target,
            counts=tallies,
            activity_unknown=int(n_unknown),
            seconds=time.perf_counter() - started,
            workers=len(cl.scheduler_info().get("workers", {})),
            platform=input_platform(files),
            known=input_known(files),
            extra={
                "files": len(files),
                "partitions": n_parts,
                "scheduler": cl.scheduler.address,
                "cluster_start_seconds": round(started - opened, 3),
            },
        )

    if client is not None:
        result = run(client)
    else:
        with dask_client(scheduler, n_workers=n_workers, processes=processes) as cl:
            result = run(cl)
    if write_summary and not is_remote(target):
        summary_path(target).write_text(result.to_json() + "\n")
    return result


def _run_dataframe(cl: Any, dd: Any, distributed: Any, files: list[str], source: str | Path, target: str, workers: int,
                   settings: ScoreSettings, partition_rows: int,
                   progress: Callable[[float], None] | None) -> tuple[dict[str, int], int, int]:
    """Object-store input or output: Dask DataFrame reads and writes the files."""
    ddf = dd.read_parquet(
        files if not is_remote(str(source)) else str(source),
        dtype_backend="pyarrow",
        split_row_groups=row_groups_per_partition(files, workers, partition_rows),
    )
    if "follower_id" not in ddf.columns:
        raise InputError(f"{source} has no follower_id column, so it is not a canonical follower table")
    ddf = ddf[[c for c in ddf.columns if c in COLUMN_NAMES and c not in UNREAD_COLUMNS]]
    scored = ddf.map_partitions(score_partition, **settings.labelling(), meta=output_meta())
    write = scored.to_parquet(
        target, engine=labels_parquet_engine(), name_function=part_name, write_index=False, **PARQUET_OPTIONS,
        compute=False, overwrite=not is_remote(target),
    )
    # The labelled partition has one consumer, its write; the counts are a tree reduction over the
    # files this run wrote, reading two small columns.
    futures = [cl.compute(write)]
    if progress is not None:
        _report_progress(distributed, futures, progress)
    futures[0].result()
    # The optimiser may merge small input files, so the written partitions are the optimised ones.
    n_parts = scored.optimize().npartitions
    parts = [f"{target.rstrip('/')}/{part_name(i)}" for i in range(n_parts)]
    written = dd.read_parquet(parts, columns=["label", UNKNOWN], dtype_backend="pyarrow")
    totals = cl.compute(written.map_partitions(partition_counts, meta=_counts_meta()).sum()).result()
    return {label: int(totals[label]) for label in empty_counts()}, int(totals[UNKNOWN]), n_parts


_OUR_FILES = re.compile(r"part\.\d+\.parquet|_metadata|_common_metadata")


def _check_output_dir(target: Path, inputs: list[str]) -> None:
    """Dask clears OUT before writing: only ever clear a directory of earlier labels."""
    if target.is_file():
        raise InputError(f"{target} is a file; the Dask engine writes a directory of part files", hint="choose a new directory for -o")
    if any(Path(f).resolve().is_relative_to(target) for f in inputs):
        raise InputError(f"the output directory {target} holds the input", hint="write the labels to another directory")
    if target.is_dir():
        others = [p.name for p in target.iterdir() if not _OUR_FILES.fullmatch(p.name)]
        if others:
            raise InputError(
                f"{target} exists and holds other files ({', '.join(sorted(others)[:3])}), which Dask would delete",
                hint="choose a new or empty directory for -o",
            )
    target.parent.mkdir(parents=True, exist_ok=True)


def _report_progress(distributed: Any, futures: list[Any], progress: Callable[[float], None]) -> None:
    """Block until ``futures`` finish, calling ``progress(fraction of tasks done)`` as they run.

    Uses distributed's own progress plugin (the one behind ``distributed.progress``), so the
    fraction counts every read, score and write task on the scheduler.
    """
    from distributed.diagnostics.progressbar import TextProgressBar

    class _Callback(TextProgressBar):
        def _draw_bar(self, remaining: int, all: int, **kwargs: Any) -> None:  # noqa: A002 - distributed's name
            progress(1.0 - remaining / all if all else 1.0)

        def _draw_stop(self, **kwargs: Any) -> None:
            progress(1.0)

    _Callback(futures, scheduler=futures[0].client.scheduler.address)
