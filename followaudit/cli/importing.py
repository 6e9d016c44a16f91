"""Commands: import, export, snapshots, rejects; and the shared ``import_options`` decorator."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..config import FILE_FORMATS, FILE_ORDERS, PLATFORMS
from .app import StepProgress, cli, db_option, format_option, say

FILE = click.Path(exists=False, dir_okay=False, path_type=Path)
OBSERVED_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M"]


def _options(format_names: tuple[str, ...]) -> list[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    return [
        click.option("--platform", type=click.Choice(list(PLATFORMS)), default=None, help="What platform the file is from (default: detected)."),
        click.option(*format_names, "input_format", type=click.Choice(list(FILE_FORMATS)), default=None, help="File format (default: detected; gzip is always detected)."),
        click.option("--order", type=click.Choice(list(FILE_ORDERS)), default=None, help="How the file is ordered: API listings are newest-first (default for them); datasets unknown."),
        click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN", help="Read canonical FIELD from source COLUMN (repeatable), e.g. --map follower_id=user_id."),
        click.option("--strict", is_flag=True, help="Stop at the first bad row instead of sending it to the rejects table."),
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the file, e.g. latin-1."),
        click.option("--account", default=None, help="The audited account's name (default: from the file when it says)."),
        click.option("--profiles", type=FILE, default=None, help="Profiles file for a follower id list (JSONL of user objects)."),
        click.option("--copy", is_flag=True, help="Store a canonical Parquet file's rows in the workspace (default: "
                     "a file that needs no change is read where it is; moving or changing it then needs a new import)."),
        click.option("--observed-at", "observed_at", type=click.DateTime(OBSERVED_FORMATS), default=None,
                     help="When the profiles were read (UTC date or time, e.g. 2025-07-15): ages and activity are "
                          "measured then. Default: the file's own crawl times, else its modification time (assumed)."),
    ]


def import_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The import flags, for commands that take a file (e.g. ``audit PATH``).

    The input format is ``--input-format`` here because such commands use ``--format`` for output.
    The keyword arguments match :func:`followaudit.ingest.import_file` exactly.
    """
    for option in reversed(_options(("--input-format",))):
        func = option(func)
    return func


def _import_command_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_options(("--format", "--input-format"))):
        func = option(func)
    return func


@cli.command("import")
@click.argument("file", type=FILE)
@db_option
@_import_command_options
def import_(file: Path, db: Path | None, **options: Any) -> None:
    """Import a follower FILE into the workspace as a snapshot.

    \b
    Detected formats (gzip of any of them too):
      Twitter/X v1.1 users (JSON, JSONL, CSV with the MIB columns), v2 users and response pages
      Instagram: InstaFake JSON, CSV exports (username, followers, following, posts, ...),
        the "Download your information" followers_1.json (follow order from its timestamps)
      Bluesky profile views, saved getFollowers / getProfiles pages
      Mastodon Account entities and saved pages
      follower id lists: NETWORK.json.gz --profiles PROFILES.jsons.gz (account from the file name),
        and {id: {"rank", "timestamp"}} maps
      followaudit's own canonical Parquet (`followaudit export`)
      any CSV with --map FIELD=COLUMN
    Re-importing the same file with the same options replaces that snapshot.
    """
    from ..sources.filehash import FileHash

    # The file is hashed on the other core while the importers load (~0.35 s on this one).
    file_hash = FileHash(file) if file.is_file() else None
    from ..sources.ingest import import_file
    from ..store.workspace import Store

    size = file.stat().st_size if file.is_file() else None
    with Store(db) as store, StepProgress(f"importing {file.name} (bytes)", size) as bar:
        result = import_file(store, file, progress=bar, file_hash=file_hash, **options)
    say(result.detected.describe())
    for line in result.summary_lines():
        say(line)


@cli.command()
@click.argument("snapshot")
@click.option("-o", "--output", type=FILE, required=True, help="Parquet file to write.")
@db_option
def export(snapshot: str, output: Path, db: Path | None) -> None:
    """Write SNAPSHOT's canonical follower table to a Parquet file (re-importable)."""
    from ..store.workspace import Store

    with Store(db, read_only=True) as store:
        snapshot_id = store.resolve(snapshot)
        n = store.export_parquet(snapshot_id, output)
    say(f"wrote {n:,} followers of snapshot {snapshot_id} to {output}")


@cli.command()
@db_option
@format_option("text", "json")
def snapshots(db: Path | None, fmt: str) -> None:
    """List the snapshots stored in the workspace."""
    from ..store.workspace import Store

    with Store(db, read_only=True) as store:
        frame = store.list_snapshots()
    if fmt == "json":
        rows = frame.with_columns(frame["taken_at"].dt.to_string("%Y-%m-%dT%H:%M:%S%z")).to_dicts() if frame.height else []
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if frame.height == 0:
        say("no snapshots yet: run `followaudit import FILE`")
        return
    click.echo(f"{'id':>4}  {'platform':<9} {'account':<20} {'followers':>10} {'rejects':>8}  {'taken at (UTC)':<19}  source")
    for r in frame.iter_rows(named=True):
        taken = r["taken_at"].strftime("%Y-%m-%d %H:%M:%S") if r["taken_at"] else ""
        click.echo(
            f"{r['snapshot_id']:>4}  {(r['platform'] or ''):<9} {(r['account'] or '-'):<20} {r['followers']:>10,} "
            f"{r['rejects']:>8,}  {taken:<19}  {r['source'] or ''}"
        )


@cli.command()
@click.argument("snapshot")
@db_option
@format_option("text", "csv")
def rejects(snapshot: str, db: Path | None, fmt: str) -> None:
    """Show the rows of SNAPSHOT's source file that were rejected, with line, column and reason."""
    from ..store.workspace import Store

    with Store(db, read_only=True) as store:
        snapshot_id = store.resolve(snapshot)
        frame = store.rejects(snapshot_id)
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
        return
    if frame.height == 0:
        say(f"snapshot {snapshot_id} has no rejected rows")
        return
    for r in frame.iter_rows(named=True):
        raw = (r["raw"] or "").replace("\n", " ")
        click.echo(f"{r['file']}:{r['line']}: column {r['column']}: {r['reason']}")
        click.echo(f"    {raw[:160]}{'…' if len(raw) > 160 else ''}")
    say(f"{frame.height:,} rejected rows in snapshot {snapshot_id}")
