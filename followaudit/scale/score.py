"""The one batch scorer every engine uses, and the streaming single-machine engine.

``score_batch`` turns a batch of canonical follower rows (Polars or Arrow) into labels by calling
``classify.label_followers`` — labelling is never re-implemented here, so the streaming engine, the
Dask engine, ``audit`` and the web app cannot disagree. ``score_local`` streams canonical Parquet
(a file, a directory of partitions, or a glob) row group by row group through ``score_batch`` and
writes the labels incrementally, so memory is bounded by the batch size, not by the input size.
A reader thread and a writer thread overlap Parquet decoding and encoding with labelling; their
queues hold at most one batch each.
"""

from __future__ import annotations

import glob
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..classify import METHODS, UNREAD_COLUMNS, label_followers
from ..classify.features import inputs_of
from ..classify.masks import PROFILE_FIELDS, closest_mask
from ..classify.model import load_model, model_info
from ..classify.rules import DEFAULT_INACTIVE_DAYS
from ..errors import EmptyInputError, InputError, MissingColumnsError, UnknownFormatError
from ..estimate.audience import model_estimates
from ..estimate.intervals import Share, shares_from_counts
from ..schema import COLUMN_NAMES, LABELS, SCHEMA, conform

# Identifying columns copied from the input to the output next to follower_id.
PASS_THROUGH = ("platform", "account")
OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "platform": pl.Utf8(),
    "account": pl.Utf8(),
    "follower_id": pl.Utf8(),
    "label": pl.Utf8(),
    "probability": pl.Float64(),
    "reasons": pl.List(pl.Utf8()),
    "activity_unknown": pl.Boolean(),
}
OUTPUT_COLUMNS = list(OUTPUT_SCHEMA)
# Rows per batch: large enough that Polars' per-call overhead vanishes, small enough that a batch
# of canonical rows (~150 MB per million with bios) keeps the 10M-row run well under 2 GiB.
DEFAULT_BATCH_ROWS = 250_000
# Batches labelled at the same time by the local engine.
DEFAULT_LABELLERS = 2
# Batches and rows this process has scored (diagnostics: the Dask tests read it on each worker to
# check that every partition is scored exactly once per run).
SCORED = {"batches": 0, "rows": 0}


def default_method() -> str:
    return METHODS[0]


def resolve_as_of(as_of: datetime | None) -> datetime:
    """One fixed reference time for a whole run (every batch, every worker): given, else now (UTC)."""
    if as_of is None:
        return datetime.now(UTC).replace(microsecond=0)
    return as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)


class ScoreOptions(TypedDict, total=False):
    """What both engines label with (keyword arguments of ``score_local`` and ``score_dask``)."""

    method: str | None
    as_of: datetime | None
    inactive_days: int
    confidence: float


@dataclass(frozen=True)
class ScoreSettings:
    """``ScoreOptions`` with the defaults filled in once per run."""

    method: str
    as_of: datetime
    inactive_days: int
    confidence: float

    @classmethod
    def resolve(cls, options: ScoreOptions) -> ScoreSettings:
        return cls(
            method=options.get("method") or default_method(),
            as_of=resolve_as_of(options.get("as_of")),
            inactive_days=options.get("inactive_days", DEFAULT_INACTIVE_DAYS),
            confidence=options.get("confidence", 0.95),
        )

    def labelling(self) -> dict[str, Any]:
        """The arguments ``score_batch`` takes."""
        return {"method": self.method, "as_of": self.as_of, "inactive_days": self.inactive_days}

    def result(self, **fields: Any) -> ScoreResult:
        return ScoreResult(confidence=self.confidence, **self.labelling(), **fields)


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """The canonical shape ``label_followers`` wants, cheaply when the input already has it."""
    if "follower_id" not in frame.columns:
        raise MissingColumnsError(
            "the input has no follower_id column, so it is not a canonical follower table",
            hint="score canonical Parquet (`followaudit synth N -o F.parquet`, or `followaudit export`); import other files first",
        )
    present = [c for c in COLUMN_NAMES if c in frame.columns]
    missing = [c for c in COLUMN_NAMES if c not in frame.columns]
    if set(missing) <= set(UNREAD_COLUMNS) and all(frame.schema[c] == SCHEMA[c] for c in present):
        # Already canonical (apart from the unread columns): add those as nulls, skip the casts.
        return frame.with_columns([pl.lit(None, dtype=SCHEMA[c]).alias(c) for c in missing])
    return conform(frame)


def score_batch(
    batch: pl.DataFrame | pa.Table | pa.RecordBatch,
    *,
    method: str | None = None,
    as_of: datetime | None,
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    platform: str | None = None,
) -> pl.DataFrame:
    """Label a batch of canonical follower rows with ``classify.label_followers``.

    Returns ``platform, account, follower_id, label, probability, reasons, activity_unknown`` in
    the batch's row order (``platform``/``account`` are passed through, null when absent).
    ``as_of`` is used for rows whose ``observed_at`` is null; pass one fixed value to every batch.
    """
    frame = pl.from_arrow(batch) if isinstance(batch, pa.Table | pa.RecordBatch) else batch
    assert isinstance(frame, pl.DataFrame)
    frame = _canonical(frame)
    labels = label_followers(
        frame, method=method or default_method(), as_of=as_of, inactive_days=inactive_days, platform=platform
    )
    if labels.height != frame.height:  # labelling is row-wise; anything else would misalign ids
        raise RuntimeError(f"label_followers returned {labels.height} rows for {frame.height}")
    SCORED["batches"] += 1
    SCORED["rows"] += frame.height
    out = labels.with_columns(frame.select(PASS_THROUGH))
    if "activity_unknown" not in out.columns:
        out = out.with_columns(pl.lit(None, dtype=pl.Boolean).alias("activity_unknown"))
    return out.select([pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items()])


# How the labels are written, by both engines. Dictionary pages and min/max statistics only where
# they serve: follower ids and probabilities are nearly all distinct (a dictionary is built, then
# dropped), and the min/max of reason lists is of no use to a reader.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "store_schema": False,  # plain Parquet strings, readable by tools that predate Arrow string views
    "use_dictionary": ["platform", "account", "label", "reasons.list.element"],
    "write_statistics": ["platform", "account", "follower_id", "label", "probability", "activity_unknown"],
}


def output_arrow_schema(views: bool = False) -> pa.Schema:
    """The Arrow schema of every output batch (fixed, so partitions and engines agree).

    ``views``: strings as Arrow string views, Polars' own layout, which converts without copying
    (the default large strings cost a copy of every reason text); Parquet stores both alike.
    """
    level = pl.CompatLevel.newest() if views else pl.CompatLevel.oldest()
    return pl.DataFrame(schema=OUTPUT_SCHEMA).to_arrow(compat_level=level).schema


def arrow_labels(labels: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    """``score_batch``'s labels as Arrow with ``schema`` (string views: no copy of the texts).

    ``Table.cast`` only when the schema differs: casting imports pyarrow.compute (~0.3 s, once).
    """
    table = labels.to_arrow(compat_level=pl.CompatLevel.newest())
    return table if table.schema == schema else table.cast(schema)


# -- input ---------------------------------------------------------------------------------------


def is_remote(path: str) -> bool:
    return "://" in path


def input_files(path: str | Path) -> list[str]:
    """The Parquet files of IN, sorted: a file, a directory (searched recursively) or a glob."""
    text = str(path)
    if is_remote(text):
        return [text]
    p = Path(text)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*.parquet") if f.is_file())
        where = f"directory {p}"
    elif any(ch in text for ch in "*?["):
        files = sorted(f for f in glob.glob(text, recursive=True) if Path(f).is_file())
        where = f"pattern {text}"
    elif p.is_file():
        files = [text]
        where = str(p)
    else:
        raise InputError(f"{text} does not exist", hint="give a Parquet file, a directory of Parquet files, or a glob")
    if not files:
        raise EmptyInputError(f"no Parquet files in {where}")
    return files


def input_platform(files: list[str]) -> str | None:
    """The one platform of the input, read from the (dictionary-encoded, cheap) platform column."""
    if not files or is_remote(files[0]):
        return None
    try:
        values = pl.scan_parquet(files).select(pl.col("platform").drop_nulls().unique().head(2)).collect()["platform"]
    except (pl.exceptions.PolarsError, OSError):
        return None
    return values[0] if values.len() == 1 else None


def input_known(files: list[str]) -> dict[str, Any] | None:
    """``{"rows": N, "known": {column: non-null rows}}`` of the input, from the Parquet footers.

    Row-group statistics hold each column's null count, so this reads no data; a column without
    statistics is counted by reading that column alone. None for remote inputs.
    """
    if not files or is_remote(files[0]):
        return None
    rows, known = 0, dict.fromkeys(PROFILE_FIELDS, 0)
    for file in files:
        meta = _open(file).metadata
        rows += meta.num_rows
        names = [meta.schema.column(j).path for j in range(meta.num_columns)]
        for column in PROFILE_FIELDS:
            if column not in names:
                continue  # a field the file lacks is unknown for all its rows
            j = names.index(column)
            nulls = [meta.row_group(g).column(j).statistics for g in range(meta.num_row_groups)]
            if all(s is not None and s.has_null_count for s in nulls):
                known[column] += meta.num_rows - sum(s.null_count for s in nulls)
            else:
                known[column] += meta.num_rows - pq.read_table(file, columns=[column]).column(column).null_count
    return {"rows": rows, "known": known}


def _open(file: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UnknownFormatError(
            f"{file} is not a readable Parquet file ({exc})",
            hint="`followaudit score` reads canonical Parquet; import CSV/JSON exports with `followaudit import` first",
        ) from exc


def count_rows(files: list[str]) -> int:
    """Total rows from the Parquet footers (no data is read)."""
    return sum(_open(f).metadata.num_rows for f in files)


def iter_batches(files: list[str], batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pl.DataFrame]:
    """Canonical columns of every file, in file and row order, at most ``batch_rows`` rows at a time.

    Whole row groups are read together up to ``batch_rows`` with Polars (a slice on row-group
    boundaries decodes only those groups, in parallel, straight into Polars' layout: ~2.5x less CPU
    than pyarrow plus conversion); a row group larger than ``batch_rows`` is streamed in slices
    with pyarrow so memory stays bounded.
    """
    for file in files:
        pf = _open(file)
        names = set(pf.schema_arrow.names)
        columns = [c for c in COLUMN_NAMES if c in names and c not in UNREAD_COLUMNS]
        if "follower_id" not in names:
            raise MissingColumnsError(f"{file} has no follower_id column, so it is not a canonical follower table")
        scan = pl.scan_parquet(file).select(columns)
        group, start, pending_rows = 0, 0, 0
        while group < pf.num_row_groups:
            rows = pf.metadata.row_group(group).num_rows
            if rows > batch_rows:
                for b in pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns):
                    yield pl.from_arrow(pa.Table.from_batches([b]))  # type: ignore[misc]
                group += 1
                start += rows
                continue
            # Small row groups are read together, so tiny groups do not cost one call each.
            pending_rows += rows
            group += 1
            nxt = pf.metadata.row_group(group).num_rows if group < pf.num_row_groups else None
            if nxt is None or pending_rows + nxt > batch_rows:
                if pending_rows:
                    yield _read_slice(scan, file, start, pending_rows)
                start += pending_rows
                pending_rows = 0


def read_row_groups(file: str, offset: int, length: int) -> pl.DataFrame:
    """Rows ``offset`` .. ``offset + length`` of one file (whole row groups: only those are decoded)."""
    names = set(_open(file).schema_arrow.names)
    if "follower_id" not in names:
        raise MissingColumnsError(f"{file} has no follower_id column, so it is not a canonical follower table")
    columns = [c for c in COLUMN_NAMES if c in names and c not in UNREAD_COLUMNS]
    return _read_slice(pl.scan_parquet(file).select(columns), file, offset, length)


def _read_slice(scan: pl.LazyFrame, file: str, offset: int, length: int) -> pl.DataFrame:
    try:
        return scan.slice(offset, length).collect()
    except pl.exceptions.PolarsError as exc:
        raise UnknownFormatError(
            f"{file} could not be read ({exc})", hint="re-export the file; it may be truncated or corrupt"
        ) from exc


# -- results -------------------------------------------------------------------------------------


@dataclass
class ScoreResult:
    """What a scoring run produced: where, how many, the shares with intervals, how fast."""

    engine: str
    input: str
    output: str
    method: str
    as_of: datetime
    inactive_days: int
    counts: dict[str, int]
    activity_unknown: int
    seconds: float
    confidence: float = 0.95
    workers: int | None = None
    platform: str | None = None  # the input's one platform, or None when mixed or unknown
    extra: dict[str, Any] = field(default_factory=dict)
    known: dict[str, Any] | None = None  # input_known(): which fields the input carries
    extra_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def shares(self) -> dict[str, Share]:
        return shares_from_counts(self.counts, self.confidence)

    @property
    def corrected(self) -> dict[str, dict[str, Any]] | None:
        """Shares corrected for the model's error with ``audit``'s estimator; None for rules."""
        estimate = self._estimate()
        return estimate[0] if estimate else None

    @property
    def evidence(self) -> dict[str, Any] | None:
        """Fields known, the interval method, and the shift (not measured by ``score``: treated as moderate)."""
        estimate = self._estimate()
        return estimate[1] if estimate else None

    def _estimate(self) -> tuple[dict[str, dict[str, Any]], dict[str, Any]] | None:
        if self.method != "model" or not self.rows:
            return None
        if "estimate" not in self.extra_cache:
            model = load_model(model_info(self.platform)["name"])
            n = (self.known or {}).get("rows") or 0
            share = {f: (self.known["known"].get(f, 0) / n) for f in PROFILE_FIELDS} if n else dict.fromkeys(PROFILE_FIELDS, 1.0)
            mask = closest_mask(share, model.spec.masks, inputs_of(model.spec.features))
            # The same estimator as `audit` (estimate/audience.py). Scoring does not bin the
            # features, so the distance from the training data is unknown: the interval is the
            # moderate-shift one, never the narrow near one.
            corrected, evidence = model_estimates(self.counts, model.card, mask=mask, profile=None, probabilities=None,
                                                  confidence=self.confidence)
            evidence["fields_known"] = share if n else None
            self.extra_cache["estimate"] = (corrected, evidence)
        return self.extra_cache["estimate"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "workers": self.workers,
            "input": self.input,
            "output": self.output,
            "rows": self.rows,
            "method": self.method,
            "as_of": self.as_of.isoformat(),
            "inactive_days": self.inactive_days,
            "confidence": self.confidence,
            "shares": {k: v.to_dict() for k, v in self.shares.items()},
            "corrected": self.corrected,
            "evidence": self.evidence,
            "platform": self.platform,
            "activity_unknown": self.activity_unknown,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            **self.extra,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


def summary_path(output: str | Path) -> Path:
    """``labels.parquet`` -> ``labels.summary.json``; ``labels/`` -> ``labels.summary.json``."""
    p = Path(str(output).rstrip("/"))
    return p.with_suffix(".summary.json") if p.suffix == ".parquet" else p.with_name(p.name + ".summary.json")


def add_counts(counts: dict[str, int], labels: pl.DataFrame) -> int:
    """Add one batch's label counts to ``counts``; returns its activity-unknown count."""
    column, seen = labels["label"], 0
    for label in LABELS:  # three comparisons of short strings: cheaper than hashing every row
        n = int((column == label).sum())
        counts[label] = counts.get(label, 0) + n
        seen += n
    if seen != labels.height:  # a label outside LABELS (not expected): counted under its own name
        others = labels.filter(~column.is_in(LABELS).fill_null(True))
        for label, n in others.group_by("label").len().iter_rows():
            counts[label] = counts.get(label, 0) + int(n)
    return int(labels["activity_unknown"].sum() or 0)


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(LABELS, 0)


# -- the streaming engine ------------------------------------------------------------------------

_DONE = object()


class _Pipeline:
    """Bounded hand-off between the reader, the labeller and the writer threads.

    Any failure in one thread stops the others: every wait polls ``stop`` and the shared error list.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def thread(self, target: Callable[[], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, re-raised there
                self.errors.append(exc)
                self.stop.set()

        t = threading.Thread(target=guarded, daemon=True)
        t.start()
        return t

    def put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: queue.Queue[Any]) -> Any:
        """The next item, or ``_DONE`` once the pipeline is stopping."""
        while not self.stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _DONE


def score_local(
    source: str | Path,
    output: str | Path,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    labellers: int = DEFAULT_LABELLERS,
    progress: Callable[[int], None] | None = None,
    write_summary: bool = True,
    **options: Unpack[ScoreOptions],
) -> ScoreResult:
    """Stream canonical Parquet at ``source`` through ``score_batch`` into one Parquet file ``output``.

    Memory is bounded by ``batch_rows`` (``labellers`` + 4 batches in flight at most), whatever
    the input size. Output
    rows are in input order (files sorted by name, then row order). ``progress`` is called with the
    number of rows of each finished batch. The summary (shares with intervals) is written to
    ``summary_path(output)`` unless ``write_summary`` is false.
    """
    settings = ScoreSettings.resolve(options)
    if is_remote(str(source)) or is_remote(str(output)):
        raise InputError(
            "the local engine reads and writes local files only",
            hint="use --engine dask for object-store URLs (s3://, gs://, ...), or copy the files here",
        )
    files = input_files(source)
    out = Path(output)
    if out.is_dir():
        raise InputError(f"{out} is a directory; the local engine writes one Parquet file", hint="give a file name such as labels.parquet")
    if any(Path(f).resolve() == out.resolve() for f in files):
        raise InputError(f"{out} is also an input file", hint="write the labels to another file")
    out.parent.mkdir(parents=True, exist_ok=True)
    schema = output_arrow_schema(views=True)
    counts, unknown = empty_counts(), 0
    pipe = _Pipeline()
    inbox: queue.Queue[Any] = queue.Queue(maxsize=1)
    outbox: queue.Queue[Any] = queue.Queue(maxsize=1)
    started = time.perf_counter()
    # The input's platform (a scan of one column, ~0.1 s per 2M rows) is found while labelling runs.
    side = ThreadPoolExecutor(max_workers=1)
    platform = side.submit(input_platform, files)
    side.shutdown(wait=False)

    def read() -> None:
        for table in iter_batches(files, batch_rows):
            if not pipe.put(inbox, table):
                return
        pipe.put(inbox, _DONE)

    def write() -> None:
        with pq.ParquetWriter(str(out), schema, **PARQUET_OPTIONS) as writer:
            while (item := pipe.get(outbox)) is not _DONE:
                writer.write_table(item, row_group_size=batch_rows)
                if progress is not None:
                    progress(item.num_rows)

    def label(table: pl.DataFrame) -> pl.DataFrame:
        return score_batch(table, **settings.labelling())

    def emit(labels: pl.DataFrame) -> None:
        nonlocal unknown
        unknown += add_counts(counts, labels)
        pipe.put(outbox, arrow_labels(labels, schema))

    reader = pipe.thread(read)
    writer = pipe.thread(write)
    try:
        # ``labellers`` batches are labelled at once (Polars releases the GIL; one batch alone
        # left the cores idle between its serial steps) and emitted in input order.
        with ThreadPoolExecutor(max_workers=labellers) as pool:
            inflight: deque[Future[pl.DataFrame]] = deque()
            while (table := pipe.get(inbox)) is not _DONE:
                inflight.append(pool.submit(label, table))
                if len(inflight) >= labellers:
                    emit(inflight.popleft().result())
            while inflight and not pipe.stop.is_set():
                emit(inflight.popleft().result())
        pipe.put(outbox, _DONE)
        writer.join()
        if pipe.errors:
            raise pipe.errors[0]
    except BaseException:
        pipe.stop.set()
        writer.join(timeout=30)
        out.unlink(missing_ok=True)  # a partial output must not pass for a complete one
        raise
    finally:
        pipe.stop.set()
        reader.join(timeout=30)
    result = settings.result(
        engine="local",
        input=str(source),
        output=str(out),
        counts=counts,
        activity_unknown=unknown,
        seconds=time.perf_counter() - started,
        platform=platform.result(),
        known=input_known(files),
        extra={"files": len(files)},
    )
    if write_summary:
        summary_path(out).write_text(result.to_json() + "\n")
    return result
