"""Core commands: audit, synth, demo."""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config import DEFAULT_INACTIVE_DAYS, LABEL_METHODS
from ..errors import TooLittleEvidenceError
from .app import StepProgress, cli, db_option, format_option, say

if TYPE_CHECKING:
    from concurrent.futures import Future
    from types import ModuleType

    from ..audit import AuditResult
    from ..store.workspace import Store
from .importing import import_options

DEMO_DB = Path("followaudit-demo.duckdb")
DEMO_FOLLOWERS = 4000
DEMO_SEED = 7


def emit(result: AuditResult, fmt: str, store: Store) -> None:
    """Write an audit to stdout in the chosen format (CSV streams the stored labels)."""
    if fmt == "json":
        from ..render.jsonout import render_json

        click.echo(render_json(result.report))
    elif fmt == "csv":
        from ..render.csvout import render_csv

        batches = store.iter_labels(result.report.snapshot, result.report.method)
        for i, batch in enumerate(batches):
            sys.stdout.write(render_csv(batch, header=i == 0))
    else:
        from ..render.text import render_text

        render_text(result.report)


def _import_meanwhile(module: str, then: str | None = None) -> Future[ModuleType]:
    """``followaudit.<module>``, imported in a thread of its own while the caller goes on; ``then``:
    a function of the module to run there after (``audit.prepare``)."""
    import importlib  # here: `followaudit --help` does not need them
    from concurrent.futures import ThreadPoolExecutor

    def load() -> ModuleType:
        loaded = importlib.import_module(f"{__package__.rpartition('.')[0]}.{module}")
        if then is not None:
            getattr(loaded, then)()
        return loaded

    pool = ThreadPoolExecutor(1, thread_name_prefix="followaudit-import")
    loading = pool.submit(load)
    pool.shutdown(wait=False)  # the thread ends once the module is loaded
    return loading


def audit_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option("--method", type=click.Choice(list(LABEL_METHODS)), default=LABEL_METHODS[0], show_default=True, help="How followers are labelled."),
            click.option("--inactive-days", type=click.IntRange(1), default=DEFAULT_INACTIVE_DAYS, show_default=True, help="Days without a post after which a follower is inactive."),
            click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True, help="Confidence level of every interval."),
        ]
    ):
        func = option(func)
    return func


@cli.command()
@click.argument("target")
@db_option
@format_option("text", "json", "csv")
@audit_options
@click.option("--mass-threshold", type=click.IntRange(1), default=1500, show_default=True,
              help="Followers who follow more accounts than this are mass followers (outside the reachable audience).")
@import_options
def audit(target: str, db: Path | None, fmt: str, method: str, inactive_days: int, confidence: float,
          mass_threshold: int, **import_opts: Any) -> None:
    """Label the followers of TARGET and report fake / inactive / real shares with intervals.

    TARGET is a follower file (imported first; see `followaudit import --help` for the formats),
    or a snapshot id or account name already in the workspace.

    When the followers carry too little to judge (usernames only, or fewer than 3 of counts, creation
    date, picture, bio, last post for most of them) no fake share is given: one line says what is
    needed and how to get it, and the exit code is 1; with --format json the audit is written
    without a fake share ("withheld", empty "headline" and "shares", its "evidence"), exit 0.
    The import is kept.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..sources.filehash import FileHash

    # Before the command loads DuckDB and the importers (~0.25 s on this core), the other core hashes
    # the file and, for a canonical Parquet file, scans its follow order for bursts; the audit uses
    # the scan if the file is read in place as is (it goes on beside the first batches).
    source = Path(target) if Path(target).is_file() else None
    file_hash = FileHash(source) if source is not None else None
    early = ThreadPoolExecutor(1, thread_name_prefix="followaudit-bursts")
    early_scan = None
    if source is not None and source.suffix.lower() == ".parquet" and not import_opts.get("copy") and not import_opts.get("mapping"):
        from ..bursts.attach import SCAN_ALONGSIDE_MAX, start_early_scan

        early_scan = start_early_scan(source, early, max_rows=SCAN_ALONGSIDE_MAX)
    from ..sources.formats.common import Observed
    from ..sources.ingest import OBSERVED_FLAG, import_file, set_observation_time
    from ..store.workspace import Store

    # the audit's own modules (labelling, reach) load meanwhile, beside opening the workspace and
    # checking the file (DuckDB and Polars release the GIL)
    loading = _import_meanwhile("audit", then="prepare")
    with early, Store(db) as store:
        ref: int | str = target
        row_check = None
        if Path(target).exists():
            # a canonical Parquet file is read in place once its footer and columns pass; its rows'
            # ids and texts are checked on the batches the audit reads (not in a pass of their own)
            result = import_file(store, Path(target), file_hash=file_hash, check_rows=False, **import_opts)
            say(result.detected.describe())
            ref, row_check = result.snapshot_id, result.row_check
        elif import_opts.get("observed_at") is not None:  # a stored snapshot, observed at a known time
            at = import_opts["observed_at"].replace(tzinfo=UTC)
            snap = store.snapshot(ref)
            with store.transaction():
                set_observation_time(store, snap.snapshot_id, Observed(at, OBSERVED_FLAG, "--observed-at"), fallback=at)
        audit_snapshot = loading.result().audit_snapshot

        def audit_it(scan: Any, check: Any) -> Any:
            with StepProgress("labelling followers", store.snapshot(ref).n_followers) as progress:
                return audit_snapshot(store, ref, method=method, inactive_days=inactive_days, confidence=confidence,
                                      progress=progress, mass_threshold=mass_threshold, early_scan=scan, row_check=check)

        try:
            audited = audit_it(early_scan, row_check)
        except Exception:
            if row_check is None or row_check.passed():
                raise
            audited = None  # rows read in place that an import would have changed: imported below
        if row_check is not None and not row_check.passed():
            say("the file's ids or texts need what an import does (trimming, a repeated id): imported, not read in place")
            result = import_file(store, Path(target), **{**import_opts, "copy": True})  # replaces the snapshot's rows
            say(result.detected.describe())
            ref = result.snapshot_id
            audited = audit_it(None, None)
        withheld = audited.report.withheld
        if withheld and fmt != "json":  # nothing to show: the one line, exit 1 (JSON: the audit without a share)
            raise TooLittleEvidenceError(f"{withheld} (the import is kept as snapshot {audited.report.snapshot})")
        emit(audited, fmt, store)


@cli.command()
@click.argument("n", type=click.IntRange(1))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="FILE.jsonl (Twitter v1.1 users, newest first) or FILE.parquet (canonical).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--fake-share", type=click.FloatRange(0, 0.95), default=0.2, show_default=True)
@click.option("--inactive-share", type=click.FloatRange(0, 0.95), default=0.2, show_default=True)
@click.option("--account", default="demo_account", show_default=True)
def synth(n: int, output: Path, seed: int, fake_share: float, inactive_share: float, account: str) -> None:
    """Write a realistic synthetic account of N followers with bought batches and ground truth."""
    from ..sources.synth import write_synth

    frame = write_synth(n, output, seed=seed, fake_share=fake_share, inactive_share=inactive_share, account=account)
    truth = dict(frame["truth_label"].value_counts().iter_rows())
    say(f"wrote {n:,} followers to {output} (truth: " + ", ".join(f"{k} {truth.get(k, 0):,}" for k in ("fake", "inactive", "real")) + ")")


@cli.command()
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=DEMO_DB, show_default=True, help="Where the demo workspace is written.")
@format_option("text", "json", "csv")
def demo(db: Path, fmt: str) -> None:
    """Audit a bundled synthetic account offline: synth → import → label → report."""
    from ..audit import audit_snapshot
    from ..reach.sections import store_synthetic_reach
    from ..sources.ingest import import_file
    from ..sources.synth import OBSERVED_AT, with_platform_labels, write_synth
    from ..store.workspace import Store

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "demo_followers.jsonl"
        frame = write_synth(DEMO_FOLLOWERS, source, seed=DEMO_SEED, account="demo_account")
        with Store(db) as store:
            for snap in store.list_snapshots().filter(account="demo_account")["snapshot_id"].to_list():
                store.delete_snapshot(snap)  # the demo always starts from the same clean state
            # the synthetic profiles describe the account as of synth.OBSERVED_AT, not as of today
            imported = import_file(store, source, platform="twitter", order="newest-first", account="demo_account",
                                   observed_at=OBSERVED_AT)
            # what a live platform adds: exact follow times and its own labels (sources/synth.py)
            evidence = with_platform_labels(frame, DEMO_SEED).select(
                "follower_id", "followed_at", "moderation_labels", "self_declared_bot")
            with store.transaction():
                store.update_followers(imported.snapshot_id, evidence, ["followed_at", "moderation_labels", "self_declared_bot"])
            # posts, a follower-count history and likers, so the reach sections have data too
            store_synthetic_reach(store, imported.snapshot_id, frame, seed=DEMO_SEED)
            audited = audit_snapshot(store, imported.snapshot_id, method=LABEL_METHODS[0])
            emit(audited, fmt, store)
    say(f"\nDemo workspace: {db}  (try: followaudit audit demo_account --db {db} --format json)")
