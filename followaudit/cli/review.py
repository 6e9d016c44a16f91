"""``followaudit review SNAPSHOT`` (one follower at a time in the terminal), ``review export`` and ``review import``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .app import cli, db_option, say

REVIEWER_ENV = "FOLLOWAUDIT_REVIEWER"


class ReviewGroup(click.Group):
    """``review SNAPSHOT ...`` runs the terminal review; ``review export|import ...`` the subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


def sample_options(func: Any) -> Any:
    for option in reversed([
        click.option("-n", "n", type=click.IntRange(1), default=None, help="Sample size (default 100, or what is already drawn)."),
        click.option("--precision", type=click.FloatRange(0.001, 0.499), default=None, help="Half-width wanted for every share; sets the sample size."),
        click.option("--design", type=click.Choice(["uniform", "stratified"]), default=None,
                     help="How the sample is drawn the first time (default uniform; stratified by the model's label needs stored labels)."),
        click.option("--seed", type=int, default=None, help="Seed of the draw (default: the account's earlier sample, else 1)."),
        click.option("--likers", is_flag=True, help="SNAPSHOT is a likers audit id: review its engagers."),
    ]):
        func = option(func)
    return func


def reviewer_option(func: Any) -> Any:
    return click.option("--reviewer", default=None, envvar=REVIEWER_ENV,
                        help=f"Who is reviewing (default ${REVIEWER_ENV} or 'reviewer'); a second reviewer gives Cohen's kappa.")(func)


@cli.group(cls=ReviewGroup)
def review() -> None:
    """Review a random sample of followers by eye; the audit then leads with the reviewed estimate.

    \b
    followaudit review SNAPSHOT [-n N | --precision H] [--reviewer NAME]
        one follower at a time: f fake, i inactive, r real, c can't tell, u undo, q quit.
        The model's label is shown only after your answer. Run it again to resume.
    followaudit review export SNAPSHOT -n N -o sample.csv   (review in a spreadsheet)
    followaudit review import SNAPSHOT sample.csv           (follower_id,label back)

    Once 30 followers are reviewed, audits and reports give prediction-powered shares (valid
    whatever the model's error) with the model's sensitivity and specificity on this audience.
    """


def _keys(stream: Any) -> Iterator[str]:
    """Single keys: from the terminal without Enter, or from piped stdin one character at a time."""
    if stream.isatty():
        while True:
            yield click.getchar()
    else:
        while True:
            ch = stream.read(1)
            if not ch:
                return
            if not ch.isspace():
                yield ch


def _show(item: dict[str, Any]) -> None:
    p = item["profile"]
    say(f"\n── {item['done'] + 1} of {item['total']} ─────────────────────────────")
    say(f"@{p.get('handle') or '?'}  {p.get('display_name') or ''}".rstrip())
    if p.get("profile_url"):
        say(f"  {p['profile_url']}")
    for key in ("bio", "created_at", "followers_count", "following_count", "posts_count", "likes_count", "last_active_at",
                "has_avatar", "verified", "private", "self_declared_bot"):
        value = p.get(key)
        if value is not None and value != "":
            say(f"  {key.replace('_', ' ')}: {value}")
    say("[f]ake  [i]nactive  [r]eal  [c]an't tell   [u]ndo  [q]uit")


@review.command("start", hidden=True)
@click.argument("snapshot")
@db_option
@sample_options
@reviewer_option
def review_start(snapshot: str, db: Path | None, n: int | None, precision: float | None, design: str | None,
                 seed: int | None, likers: bool, reviewer: str | None) -> None:
    """Review SNAPSHOT's sample in the terminal."""
    from .. import review as rv
    from ..store.workspace import Store

    who = reviewer or "reviewer"
    with Store(db) as store:
        subject = rv.subject_for(store, snapshot, likers)
        spec = rv.ensure_sample(store, subject, n=n, precision=precision, design=design, seed=seed)
        say(f"reviewing as {who!r}: {rv.design_summary(spec, subject)['description']}")
        keys = _keys(sys.stdin)
        item = rv.next_item(store, subject, who)
        while item is not None:
            _show(item)
            key = next(keys, "q").lower()
            if key == "q":
                break
            if key == "u":
                undone = rv.undo(store, subject, who)
                say("undid your last answer" if undone else "nothing to undo")
            elif key in rv.KEYS:
                done = rv.answer(store, subject, who, item["follower_id"], rv.KEYS[key])
                model = done["model"] or {}
                reasons = "; ".join(model.get("reasons") or []) or "no reasons"
                say(f"  you: {done['label']}  ·  model: {model.get('predicted', '?')} ({reasons})")
            else:
                say("  keys: f fake, i inactive, r real, c can't tell, u undo, q quit")
                continue
            item = rv.next_item(store, subject, who)
        state = rv.progress(store, subject, who)
        say(f"\n{state['done']} of {state['total']} reviewed by {who}" + (" — the sample is done" if item is None else "; run the same command to resume"))
        if item is None and state["total"] < subject.size:
            say("more reviews narrow the interval: rerun with a larger -n")


@review.command("export")
@click.argument("snapshot")
@db_option
@sample_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="FILE.csv to write.")
def review_export(snapshot: str, db: Path | None, n: int | None, precision: float | None, design: str | None,
                  seed: int | None, likers: bool, output: Path) -> None:
    """Write SNAPSHOT's review sample as CSV (follower_id, handle, profile_url, fields, empty label)."""
    from .. import review as rv
    from ..store.workspace import Store

    with Store(db) as store:
        subject = rv.subject_for(store, snapshot, likers)
        rows = rv.export_sample(store, subject, output, n=n, precision=precision, design=design, seed=seed)
    say(f"wrote {rows:,} followers to {output}: fill the label column (fake, inactive, real or cant_tell), then "
        f"`followaudit review import {snapshot} {output}`")


@review.command("import")
@click.argument("snapshot")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@reviewer_option
@click.option("--likers", is_flag=True, help="SNAPSHOT is a likers audit id.")
def review_import(snapshot: str, file: Path, db: Path | None, reviewer: str | None, likers: bool) -> None:
    """Read labels (columns follower_id,label) back from FILE; bad rows are listed with line and reason."""
    from .. import review as rv
    from ..errors import InputError
    from ..store.workspace import Store

    with Store(db) as store:
        subject = rv.subject_for(store, snapshot, likers)
        result = rv.import_labels(store, subject, file, reviewer or "reviewer")
        state = rv.progress(store, subject, reviewer or "reviewer")
    for bad in result.rejects[:20]:
        say(f"  line {bad['line']}: {bad['reason']}")
    if len(result.rejects) > 20:
        say(f"  ... and {len(result.rejects) - 20} more")
    if result.rejects and not result.kept:
        first = result.rejects[0]
        raise InputError(f"{file}: no usable label ({len(result.rejects)} rows rejected; line {first['line']}: {first['reason']})",
                         "labels are fake, inactive, real or cant_tell, for follower ids from `followaudit review export`")
    say(f"kept {result.kept:,} labels from {file}" + (f", {len(result.rejects):,} rows rejected (listed above)" if result.rejects else "")
        + (f", {result.blank:,} left blank" if result.blank else "") + f"; {state['done']} of {state['total']} of the sample reviewed")
