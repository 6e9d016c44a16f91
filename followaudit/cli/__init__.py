"""Command-line interface. ``app`` holds the group and error mapping; each module adds commands."""

from . import (
    chart,  # noqa: F401  (chart --kind follower-factory)
    collect,  # noqa: F401  (collect bluesky|mastodon)
    commands,  # noqa: F401  (registers the core commands)
    engagement,  # noqa: F401  (whatif, import-posts, growth, views, likers)
    importing,  # noqa: F401  (import, export, snapshots, rejects)
    model,  # noqa: F401  (train, evaluate)
    review,  # noqa: F401  (review SNAPSHOT, review export|import)
    scale,  # noqa: F401  (score: streaming and Dask engines)
    web,  # noqa: F401  (report, serve)
)
from .app import cli, main

__all__ = ["cli", "main"]
