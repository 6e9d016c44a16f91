"""``followaudit collect bluesky|mastodon``: live collection into a resumable snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import config
from .app import cli, db_option, say

if TYPE_CHECKING:
    from ..sources.collect import CollectResult
    from ..sources.http import HttpSettings


class RichProgress:
    """The collector's progress on stderr: pages or batches, followers, waits, ETA from the limits.

    Hidden when stderr is not a terminal; long waits and warnings are then printed as lines.
    """

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[items]}"), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
            console=self.console, disable=not self.live, transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        if self.task is not None:
            self.bar.update(self.task, status="done")
        self.task = self.bar.add_task(phase, total=total, completed=done, items="", status="")

    def update(self, done: int, *, items: int | None = None, eta: float | None = None) -> None:
        if self.task is None:
            return
        fields: dict[str, Any] = {"completed": done, "status": f"ETA ~{_duration(eta)}" if eta else ""}
        if items is not None:
            fields["items"] = f"{items:,} followers"
        self.bar.update(self.task, **fields)

    def wait(self, seconds: float, reason: str) -> None:
        if reason == "pacing":  # routine spacing between requests, not worth a message
            return
        if self.live and self.task is not None:
            self.bar.update(self.task, status=f"waiting {_duration(seconds)}: {reason}")
        elif seconds >= 5:
            say(f"waiting {_duration(seconds)}: {reason}")

    def warn(self, message: str) -> None:
        if self.live:
            self.bar.console.print(f"[yellow]warning:[/] {message}")
        else:
            say(f"warning: {message}")


def _duration(seconds: float | None) -> str:
    seconds = int(round(seconds or 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def collect_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        db_option,
        click.option("--api-base", default=None, help="API host to query (default: the platform's public host)."),
        click.option("--sample", type=click.IntRange(min=1), default=None,
                     help="Hydrate a seeded uniform random sample of N followers (the full list is still enumerated)."),
        click.option("--precision", type=float, default=None,
                     help="Choose the sample size so every share's 95%% interval half-width is at most H (e.g. 0.02)."),
        click.option("--seed", type=int, default=None, help="Seed for the sample (default: random, stored in the snapshot)."),
        click.option("--posts", type=click.IntRange(min=0), default=0, help="Also collect the account's N most recent posts."),
        click.option("--activity", is_flag=True, help="Bluesky: one extra call per sampled follower for its latest post time."),
        click.option("--fresh", is_flag=True, help="Collect again even if a complete snapshot with these options exists."),
        click.option("--pace", type=float, default=None, help="Seconds between requests (client-side pacing; default 0.15)."),
        click.option("--timeout", type=float, default=None, help="Seconds before a request times out (default 20)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(pace: float | None, timeout: float | None) -> HttpSettings:
    from ..sources.http import HttpSettings

    values = config.http_settings()
    if pace is not None:
        values["min_interval"] = pace
    if timeout is not None:
        values["timeout"] = timeout
    return HttpSettings(**values)


@cli.group()
def collect() -> None:
    """Collect an account's followers live from Bluesky or Mastodon into a snapshot.

    Interrupted runs resume: run the same command again. Twitter/X, Instagram, Facebook, YouTube
    and TikTok are import-only (their APIs are closed or paid): use `followaudit import FILE`.
    """


@collect.command("bluesky")
@click.argument("actor")
@collect_options
@click.option("--follow-times/--no-follow-times", "follow_times", default=None,
              help="Exact follow times from each follow record (ceil(n/30) requests; default: on up to "
                   "10,000 stored followers).")
@click.option("--labeler", "labelers", multiple=True, metavar="DID",
              help="Also ask this labeler's labels (repeatable); Bluesky's moderation service is always asked.")
def collect_bluesky_cmd(actor: str, db: Path | None, api_base: str | None, pace: float | None,
                        timeout: float | None, labelers: tuple[str, ...], **opts: Any) -> None:
    """Collect the followers of a Bluesky HANDLE or DID (public AppView, no login)."""
    from ..sources import bluesky
    from ..sources.collect import CollectOptions, collect_bluesky
    from ..sources.http import make_client
    from ..store.workspace import Store

    base = api_base or bluesky.DEFAULT_API_BASE
    options = CollectOptions(labelers=tuple(labelers), **opts)
    with RichProgress() as progress, Store(db) as store:
        api = make_client(base, settings=_settings(pace, timeout), on_wait=progress.wait, on_warning=progress.warn)
        try:
            result = collect_bluesky(store, actor, options, api=api, api_base=base, progress=progress)
        finally:
            api.close()
    _report(result)


@collect.command("mastodon")
@click.argument("account")
@collect_options
def collect_mastodon_cmd(account: str, db: Path | None, api_base: str | None, pace: float | None,
                         timeout: float | None, **opts: Any) -> None:
    """Collect the followers of a Mastodon ACCOUNT (@user@instance or https://instance/@user).

    Asked on the account's home instance. If the instance requires a token, set
    FOLLOWAUDIT_MASTODON_TOKEN and FOLLOWAUDIT_MASTODON_INSTANCE, or add it under [mastodon.tokens]
    in the config file; a token is sent only to its own instance.
    """
    from ..sources import mastodon
    from ..sources.collect import CollectOptions, collect_mastodon
    from ..sources.http import make_client
    from ..store.workspace import Store

    _, instance = mastodon.parse_acct(account)
    base = api_base or f"https://{instance}"
    options = CollectOptions(**opts)
    token, withheld = config.token_for(instance, base)
    if withheld:
        say(f"note: {withheld}")
    with RichProgress() as progress, Store(db) as store:
        api = make_client(base, token=token, settings=_settings(pace, timeout), on_wait=progress.wait,
                          on_warning=progress.warn)
        try:
            result = collect_mastodon(store, account, options, api=api, api_base=base, progress=progress)
        finally:
            api.close()
    _report(result)


def _report(result: CollectResult) -> None:
    if result.already_complete:
        say(f"snapshot {result.snapshot_id} with these options is already complete; pass --fresh to collect again")
    gap = result.gap
    lines = [
        f"snapshot {result.snapshot_id}: {result.platform} {result.account}",
        f"  followers reported by the platform: {_n(result.followers_reported)}",
        f"  followers enumerated: {result.enumerated:,}"
        + (f" ({gap:,} reported but not listed: removed, hidden or taken down)" if gap else ""),
        f"  design: {result.design.describe()}",
        f"  profiles stored: {result.stored:,}"
        + (f"; {result.missing:,} listed but gone when fetched (see rejects)" if result.missing else ""),
    ]
    if result.follow_times:
        lines.append(f"  exact follow times: {result.follow_times:,} (from the follow records' TIDs)")
    if result.posts:
        lines.append(f"  posts collected: {result.posts:,}")
    if not result.already_complete:
        lines.append(f"  requests: {sum(result.calls.values()):,}; waited {_duration(result.waited)}")
    lines.append(f"next: followaudit audit {result.snapshot_id}")
    click.echo("\n".join(lines))


def _n(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"
