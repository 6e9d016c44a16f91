"""``followaudit chart``: the follower-factory picture of a stored snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import FollowauditError, InputError
from .app import cli, db_option, say

if TYPE_CHECKING:
    import polars as pl

    from ..store.workspace import Store

CHART_KINDS = ("follower-factory",)
METHOD_PREFERENCE = ("model", "rules")


def snapshot_labels(store: Store, snapshot_id: int, method: str | None) -> tuple[pl.DataFrame | None, str]:
    """Stored labels of a snapshot (``method`` or the best stored one), else fresh rule labels.

    Returns (follower_id, label) or None when no labeller is available, plus where they came from.
    """
    stored = sorted(store.label_counts(snapshot_id))
    if method is None:
        method = next((m for m in METHOD_PREFERENCE if m in stored), stored[0] if stored else None)
    if method is not None and method in stored:
        return store.labels(snapshot_id, method).select("follower_id", "label"), f"stored {method} labels"
    try:
        from ..classify import label_followers
    except ImportError:
        return None, "unlabelled (no labeller available)"
    snapshot = store.snapshot(snapshot_id)
    cols = [c for c in store.query("SELECT * FROM followers LIMIT 0").columns if c not in ("snapshot_id", "raw")]
    followers = store.followers(snapshot_id, cols)
    try:
        labels = label_followers(followers, method=method or "rules", as_of=snapshot.taken_at, platform=snapshot.platform)
    except FollowauditError as exc:
        say(f"cannot label followers for colour ({exc.one_line()}); drawing them unlabelled")
        return None, "unlabelled"
    return labels.select("follower_id", "label"), f"{method or 'rules'} labels (computed now, not stored)"


@cli.command()
@click.argument("snapshot")
@click.option("--kind", type=click.Choice(CHART_KINDS), default="follower-factory", show_default=True, help="Which chart.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="FILE.png, FILE.svg or FILE.html (offline, self-contained).")
@click.option("--method", default=None, help="Labels to colour by (default: stored model labels, else stored rules labels, else rules computed now).")
@click.option("--min-size", type=click.IntRange(10), default=None, help="Smallest burst to outline (default 100 followers).")
@click.option("--max-points", type=click.IntRange(1), default=50_000, show_default=True, help="Above this many followers draw a binned density instead of points.")
@db_option
def chart(snapshot: str, kind: str, output: Path, method: str | None, min_size: int | None, max_points: int, db: Path | None) -> None:
    """Draw a chart of SNAPSHOT (id or account name).

    follower-factory: followers in follow order (x) against account creation date (y), coloured by
    label, with bought-batch bursts outlined and numbered (NYT "The Follower Factory", 2018).
    """
    from ..bursts.detect import BurstParams, scan_bursts
    from ..render.charts import write_follower_factory
    from ..store.workspace import Store

    with Store(db, read_only=True) as store:
        snap = store.snapshot(snapshot)
        frame = store.followers(snap.snapshot_id, ["follower_id", "follow_rank", "created_at", "followed_at"])
        if frame.height == 0:
            raise InputError(f"snapshot {snap.snapshot_id} has no followers", "import or collect followers first")
        if frame["follow_rank"].null_count() == frame.height:
            raise InputError(
                f"snapshot {snap.snapshot_id} has no follow order, so there is no follower-factory chart",
                "import the follower list in its API order (newest first) or collect it live",
            )
        labels, origin = snapshot_labels(store, snap.snapshot_id, method)
    if labels is not None:
        frame = frame.join(labels, on="follower_id", how="left")
    params = BurstParams() if min_size is None else BurstParams(min_size=min_size)
    scan = scan_bursts(frame, params)
    name = f"@{snap.account}" if snap.account else f"snapshot {snap.snapshot_id}"
    title = f"{name} ({snap.platform or 'unknown platform'})"
    path = write_follower_factory(output, frame, scan.bursts, title=title, max_points=max_points)
    say(f"colour: {origin}; {scan.followers_scanned:,} followers placed, {scan.followers_skipped:,} without rank or creation date")
    for burst in scan.bursts:
        say(f"  #{burst.burst_id}: ranks {burst.start_rank:,}-{burst.end_rank:,}, " + burst.reason().split(": ", 1)[1])
    say(f"wrote {path} ({len(scan.bursts)} burst{'s' if len(scan.bursts) != 1 else ''})")
