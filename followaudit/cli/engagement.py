"""Reach commands: ``whatif``, ``import-posts``, ``growth import|show``, ``views``, ``likers bluesky|mastodon``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config import DEFAULT_INACTIVE_DAYS, LABEL_METHODS
from ..errors import BadRowError, TooLittleEvidenceError
from .app import cli, db_option, format_option, say

if TYPE_CHECKING:
    from ..reach.engagement import Loaded
    from ..report.core import Report
    from ..store.workspace import Store


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _interval(d: dict[str, Any] | None, digits: int = 2) -> str:
    if not d or d.get("share", d.get("rate")) is None:
        return "n/a"
    point = d.get("share", d.get("rate"))
    return f"{_pct(point, digits)} ({_pct(d.get('low'), digits)} – {_pct(d.get('high'), digits)})"


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def _rejects(loaded: Loaded, strict: bool) -> dict[str, Any]:
    """Say how many rows were rejected and the first; with --strict a bad row is an error."""
    first = loaded.first_reject
    if first and strict:
        raise BadRowError(f"{first['file']}:{first['line']}, column {first['column']}: {first['reason']}")
    if first:
        say(f"rejected {loaded.rejects.height:,} rows (first: {first['file']}:{first['line']}, column {first['column']}: {first['reason']})")
    return {"count": loaded.rejects.height, "first": first}


def headline_report(store: Store, snapshot_id: int, method: str | None, confidence: float) -> Report:
    """The snapshot's Report, whose ``headline_shares`` every reach command quotes (one headline).

    Built from the labels an earlier audit stored (``method`` default: the first stored, in the order
    of preference) exactly as ``followaudit report`` and the web do; without stored labels, a fresh
    audit (which stores them). When the audit withholds its fake share, says so and stops.
    """
    from ..audit import audit_snapshot
    from ..web.data import build_audit, stored_methods

    have = stored_methods(store, snapshot_id)
    method = method or (have[0] if have else LABEL_METHODS[0])
    if method in have:
        report = build_audit(store, snapshot_id, method, confidence=confidence).report
    else:
        report = audit_snapshot(store, snapshot_id, method=method, confidence=confidence).report
    if report.withheld:
        raise TooLittleEvidenceError(report.withheld)
    return report


# -- what-if ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("snapshot")
@click.option("--buy", type=click.IntRange(min=0), required=True, help="Fake followers bought (N).")
@click.option("--engagements", type=click.FloatRange(min=0), default=None, help="Mean engagements per post (default: the report's engagement rate, each post over the follower count at its time).")
@click.option("--method", type=click.Choice(list(LABEL_METHODS)), default=None,
              help="Labels to use (default: the stored labels of the last audit, else the audit default).")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
@db_option
@format_option("text", "json")
def whatif(snapshot: str, buy: int, engagements: float | None, method: str | None, confidence: float, db: Path | None, fmt: str) -> None:
    """What buying N fake followers would do to SNAPSHOT's follower count, fake share and engagement rate,
    and the engagement rate it would show without its fake followers."""
    from ..reach.engagement import followers_total, what_if
    from ..store.workspace import Store

    with Store(db) as store:
        snap = store.snapshot(snapshot)
        report = headline_report(store, snap.snapshot_id, method, confidence)
        shares = report.headline_shares()
        eng = report.sections.get("engagement") or {}
        if engagements is None and eng.get("available"):  # the report's own engagement rate
            basis = (eng.get("followers_at_post") or {}).get("source")
            result = what_if(followers_total(snap), buy, None, shares["fake"], rate_before=eng["engagement_rate"],
                             rate_basis=f"the report's engagement rate: mean over posts of engagements / {basis}")
        else:
            result = what_if(followers_total(snap), buy, engagements, shares["fake"])
        per_post = result["engagements_per_post"]
    result = {"snapshot": snap.snapshot_id, "account": snap.account, **result}
    if fmt == "json":
        _json(result)
        return
    click.echo(f"What if @{snap.account or '?'} (snapshot {snap.snapshot_id}) bought {buy:,} fake followers")
    click.echo(f"  followers:        {result['followers_before']:,} → {result['followers_after']:,}")
    click.echo(f"  fake share:       {_interval(result['fake_share_before'], 1)} → {_interval(result['fake_share_after'], 1)}")
    if per_post is None:
        click.echo(f"  engagement rate:  unknown — {result['missing']}")
    else:
        click.echo(f"  engagement rate:  {_pct(result['engagement_rate_before'])} → {_pct(result['engagement_rate_after'])}  "
                   f"({per_post:,.1f} engagements per post at today's count; rate: {result['engagement_rate_basis']})")
        without = result["without_fake"]
        click.echo(f"  without its fake followers ({without['followers']['estimate']:,.0f}): engagement rate {_interval(without['engagement_rate'])}")
    click.echo(f"  interval: {result['interval_method']}; assumes {result['assumptions']}")


# -- posts ------------------------------------------------------------------------------------------
@cli.command("import-posts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--snapshot", "snapshot", required=True, help="Snapshot id or account the posts belong to.")
@click.option("--strict", is_flag=True, help="Stop at the first bad row instead of rejecting it.")
@db_option
@format_option("text", "json")
def import_posts(file: Path, snapshot: str, strict: bool, db: Path | None, fmt: str) -> None:
    """Import the account's posts (CSV/JSON/JSONL: post id, time, likes, replies, reposts/shares, views)
    for the engagement section; replaces the snapshot's earlier posts."""
    from ..reach.engagement import load_posts
    from ..store.workspace import Store

    loaded = load_posts(file)
    rejects = _rejects(loaded, strict)
    with Store(db) as store:
        snap = store.snapshot(snapshot)
        store.save_imported_posts(snap.snapshot_id, loaded.rows)
    out = {"snapshot": snap.snapshot_id, "posts": loaded.rows.height, "rejects": rejects}
    if fmt == "json":
        _json(out)
    else:
        click.echo(f"imported {loaded.rows.height:,} posts into snapshot {snap.snapshot_id} (@{snap.account}); {rejects['count']:,} rejected")


# -- growth -----------------------------------------------------------------------------------------
@cli.group()
def growth() -> None:
    """Follower-count history and spikes in daily gains."""


@growth.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", required=True, help="The account the counts belong to.")
@click.option("--platform", default=None, help="Its platform (twitter, instagram, bluesky, mastodon, ...).")
@click.option("--strict", is_flag=True, help="Stop at the first bad row instead of rejecting it.")
@db_option
@format_option("text", "json")
def growth_import(file: Path, account: str, platform: str | None, strict: bool, db: Path | None, fmt: str) -> None:
    """Import a follower-count history (CSV/JSON `date,followers`, e.g. exported from a tracking site)."""
    from ..reach.growth import load_count_history
    from ..store.workspace import Store

    loaded = load_count_history(file)
    rejects = _rejects(loaded, strict)
    with Store(db) as store:
        n = store.save_follower_counts(account.lstrip("@"), platform, loaded.rows, f"import:{file.name}") if loaded.rows.height else 0
    if fmt == "json":
        _json({"account": account.lstrip("@"), "points": n, "rejects": rejects})
    else:
        click.echo(f"stored {n:,} follower counts for {account.lstrip('@')}; {rejects['count']:,} rejected")


@growth.command("show")
@click.argument("target")
@click.option("--chart", "chart", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also draw the chart (.png or .svg).")
@db_option
@format_option("text", "json")
def growth_show(target: str, chart: Path | None, db: Path | None, fmt: str) -> None:
    """Follower counts over time and their spikes, for an ACCOUNT or a SNAPSHOT id; with a snapshot in
    follow order, the bought batches found from follow order are set beside the spikes."""
    from ..errors import SnapshotNotFoundError
    from ..reach.growth import count_history, growth_chart, growth_section
    from ..store.workspace import Store

    with Store(db) as store:
        account, platform, bursts = target.lstrip("@"), None, None
        try:
            snap = store.snapshot(target)
        except SnapshotNotFoundError:
            if target.isdigit():
                raise
            snap = None  # an account known only from an imported count history
        if snap is not None:
            account, platform = snap.account or "", snap.platform
            bursts = _bursts(store, snap.snapshot_id)
        section = growth_section(store, account, platform, bursts)
        history = count_history(store, account, platform)
    if chart is not None and history.height > 1:
        growth_chart(history, chart, title=f"@{account}")
        say(f"wrote {chart}")
    if fmt == "json":
        _json(section)
        return
    from ..render.reach_text import render_growth

    render_growth(section)


def _bursts(store: Store, snapshot_id: int) -> list[dict[str, Any]] | None:
    """Bursts from follow order for a snapshot (None when it has no follow order)."""
    from ..bursts.detect import scan_bursts

    frame = store.followers(snapshot_id, ["follower_id", "follow_rank", "created_at"])
    if frame.height == 0 or frame["follow_rank"].null_count() == frame.height:
        return None
    return [b.to_dict() for b in scan_bursts(frame).bursts]


# -- views ------------------------------------------------------------------------------------------
@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", default=None, help="Store the items for this account so its report shows them.")
@click.option("--platform", default=None, help="Platform of the account (e.g. youtube).")
@click.option("--chart", "chart", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Draw likes/comments per view (.png or .svg).")
@click.option("--strict", is_flag=True, help="Stop at the first bad row instead of rejecting it.")
@db_option
@format_option("text", "json")
def views(file: Path, account: str | None, platform: str | None, chart: Path | None, strict: bool, db: Path | None, fmt: str) -> None:
    """Flag videos/posts whose likes or comments per view sit far outside the channel's own distribution
    (YouTube-style CSV: video id, published, views, likes, comments)."""
    from ..reach.views import load_views, views_chart, views_section
    from ..store.workspace import Store

    loaded = load_views(file)
    rejects = _rejects(loaded, strict)
    if account:
        with Store(db) as store:
            store.save_view_items(account.lstrip("@"), platform, loaded.rows, f"import:{file.name}")
    section = views_section(loaded.rows)
    section["rejects"] = rejects
    if chart is not None and loaded.rows.height:
        views_chart(loaded.rows, chart, title=file.name)
        say(f"wrote {chart}")
    if fmt == "json":
        _json(section)
        return
    from ..render.reach_text import render_views

    render_views(section)


# -- likers -----------------------------------------------------------------------------------------
def likers_options(func: Any) -> Any:
    options = [
        db_option,
        format_option("text", "json"),
        click.option("--api-base", default=None, help="API host to query (default: the platform's public host / the status's instance)."),
        click.option("--sample", type=click.IntRange(min=1), default=None, help="Label a seeded uniform random sample of N engagers (all are still listed)."),
        click.option("--precision", type=float, default=None, help="Choose the sample size for a 95% interval half-width of at most H."),
        click.option("--seed", type=int, default=None, help="Seed for the sample (default: random, stored)."),
        click.option("--no-reposts", "no_reposts", is_flag=True, help="Only likes, not reposts/boosts."),
        click.option("--fresh", is_flag=True, help="Collect again even if a complete audit with these options exists."),
        click.option("--method", type=click.Choice(list(LABEL_METHODS)), default=LABEL_METHODS[0], show_default=True),
        click.option("--inactive-days", type=click.IntRange(1), default=DEFAULT_INACTIVE_DAYS, show_default=True),
        click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True),
        click.option("--pace", type=float, default=None, help="Seconds between requests (default 0.15)."),
        click.option("--timeout", type=float, default=None, help="Seconds before a request times out (default 20)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.group()
def likers() -> None:
    """Audit who liked and reposted a post: fake / inactive / real shares, and who does not follow."""


def _run_likers(platform: str, url: str, opts: dict[str, Any]) -> None:
    from ..audit import audit_frame
    from ..reach.likers import (
        LikersOptions,
        collect_likers_bluesky,
        collect_likers_mastodon,
        likers_section,
        parse_mastodon_status,
    )
    from ..sources import bluesky
    from ..sources.http import make_client
    from ..store.workspace import Store
    from .collect import RichProgress, _settings

    options = LikersOptions(sample=opts["sample"], precision=opts["precision"], seed=opts["seed"],
                            reposts=not opts["no_reposts"], fresh=opts["fresh"])
    token = None
    if platform == "bluesky":
        base = opts["api_base"] or bluesky.DEFAULT_API_BASE
    else:
        from .. import config

        instance, _ = parse_mastodon_status(url)
        base = opts["api_base"] or f"https://{instance}"
        token, withheld = config.token_for(instance, base)
        if withheld:
            say(f"note: {withheld}")
    collect = collect_likers_bluesky if platform == "bluesky" else collect_likers_mastodon
    with RichProgress() as progress, Store(opts["db"]) as store:
        api = make_client(base, token=token, settings=_settings(opts["pace"], opts["timeout"]),
                          on_wait=progress.wait, on_warning=progress.warn)
        try:
            likers_id = collect(store, url, options, api=api, api_base=base, progress=progress)
        finally:
            api.close()
        section = likers_section(store, likers_id, method=opts["method"], confidence=opts["confidence"], auditor=audit_frame,
                                 inactive_days=opts["inactive_days"])
    if opts["fmt"] == "json":
        _json(section)
        return
    from ..render.reach_text import render_likers

    render_likers(section)


@likers.command("bluesky")
@click.argument("post_url")
@likers_options
def likers_bluesky(post_url: str, **opts: Any) -> None:
    """Likers and reposters of a Bluesky post (https://bsky.app/profile/HANDLE/post/RKEY or at://...)."""
    _run_likers("bluesky", post_url, opts)


@likers.command("mastodon")
@click.argument("status_url")
@likers_options
def likers_mastodon(status_url: str, **opts: Any) -> None:
    """Favouriters and boosters of a Mastodon status (https://INSTANCE/@user/ID)."""
    _run_likers("mastodon", status_url, opts)
