"""``followaudit score``: label canonical Parquet of any size, on this machine or on a Dask cluster."""

from __future__ import annotations

import gc
import os
import sys
from datetime import UTC, datetime
from typing import Any

import click

from ..config import DEFAULT_INACTIVE_DAYS, LABEL_METHODS
from .app import cli, say


class _AsOf(click.ParamType):
    name = "DATETIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or time (e.g. 2026-11-01 or 2026-11-01T12:00:00Z)", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class RowsProgress:
    """A rich bar on stderr with rows done, rows/s and time left; silent when stderr is not a terminal."""

    def __init__(self, description: str, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.started = datetime.now(UTC)
        self.bar: Any = None
        if not sys.stderr.isatty():  # nothing is drawn: rich (~0.1 s to import) is not loaded
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=True, disable=not console.is_terminal,
        )
        self.task = self.bar.add_task(description, total=total, rate="")

    def __enter__(self) -> RowsProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _show(self, done: int) -> None:
        self.done = done
        if self.bar is not None:
            self.bar.update(self.task, completed=done, rate=self._rate(done))

    def _rate(self, done: float) -> str:
        seconds = (datetime.now(UTC) - self.started).total_seconds()
        return f"{done / seconds:,.0f} rows/s" if seconds > 0 else ""

    def advance(self, rows: int) -> None:
        """Local engine: ``rows`` more rows are written."""
        self._show(self.done + rows)

    def fraction(self, frac: float) -> None:
        """Dask engine: this fraction of the cluster's tasks is done (rows shown are estimated)."""
        self._show(round((self.total or 0) * frac))


@cli.command()
@click.argument("source", metavar="IN")
@click.option("-o", "--output", "output", required=True, metavar="OUT",
              help="Labels Parquet: one file (local engine) or a directory of part files (Dask).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: stream on this machine in bounded memory; dask: run on a Dask cluster.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
              help="Dask scheduler to connect to (default: start a LocalCluster on 127.0.0.1).")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Workers of the LocalCluster started when --scheduler is not given.")
@click.option("--processes", is_flag=True, default=False,
              help="LocalCluster workers as separate processes (default: threads of this process, which share one "
                   "import and one loaded model; scoring releases the GIL).")
@click.option("--method", type=click.Choice(list(LABEL_METHODS)), default=LABEL_METHODS[0], show_default=True, help="How followers are labelled.")
@click.option("--as-of", "as_of", type=_AsOf(), default=None,
              help="Reference time for rows without observed_at (ISO 8601; default: now, UTC).")
@click.option("--inactive-days", type=click.IntRange(1), default=DEFAULT_INACTIVE_DAYS, show_default=True,
              help="Days without a post after which a follower is inactive.")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True,
              help="Confidence level of every interval.")
@click.option("--batch-rows", type=click.IntRange(1000), default=None,
              help="Rows per batch (local) or per partition of large files (Dask); memory grows with it. [default: 250000]")
def score(source: str, output: str, engine: str, scheduler: str | None, workers: int, processes: bool, method: str,
          as_of: datetime | None, inactive_days: int, confidence: float, batch_rows: int | None) -> None:
    """Label canonical follower Parquet IN (a file, a directory of partitions, or a glob) into OUT.

    Writes the labels (follower_id, label, probability, reasons, ...) to OUT and the shares of
    fake / inactive / real with their intervals to OUT's .summary.json, also printed to stdout.
    """
    # Polars' allocator (jemalloc) returns freed pages to the system within half a second; batches
    # of the same size then fault fresh pages in again (~15% of the command's CPU). Keeping them 10 s
    # costs ~100 MB of resident memory. Read when Polars loads, so set before the import below;
    # a value the user set wins.
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:0")
    from ..scale.score import (
        DEFAULT_BATCH_ROWS,
        count_rows,
        input_files,
        is_remote,
        resolve_as_of,
        score_local,
        summary_path,
    )

    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler needs --engine dask")
    if processes and (engine != "dask" or scheduler):
        raise click.UsageError("--processes is for the LocalCluster of --engine dask (without --scheduler)")
    as_of = resolve_as_of(as_of)
    files = input_files(source)
    total = count_rows(files) if not is_remote(source) else None
    say(f"scoring {total:,} followers from {len(files):,} file(s) with the {engine} engine" if total is not None
        else f"scoring {source} with the {engine} engine")
    common: dict[str, Any] = {"method": method, "as_of": as_of, "inactive_days": inactive_days, "confidence": confidence}
    # Everything imported so far lives until the process ends: the garbage collector need not walk
    # it again on every collection while the batches stream through.
    gc.freeze()
    with RowsProgress("labelling", total) as bar:
        if engine == "dask":
            from ..scale.dask_engine import DEFAULT_PARTITION_ROWS, score_dask

            result = score_dask(source, output, scheduler=scheduler, n_workers=workers, processes=processes,
                                progress=bar.fraction,
                                partition_rows=batch_rows or DEFAULT_PARTITION_ROWS, **common)
        else:
            result = score_local(source, output, batch_rows=batch_rows or DEFAULT_BATCH_ROWS, progress=bar.advance, **common)
    click.echo(result.to_json())
    where = "stdout only" if is_remote(result.output) else str(summary_path(result.output))
    say(f"{result.rows:,} followers in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s); "
        f"labels: {result.output}; summary: {where}")
