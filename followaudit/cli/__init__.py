"""Command-line interface. ``app`` holds the group and error mapping; each module adds commands."""

from . import commands  # noqa: F401  (registers the core commands)
from . import importing  # noqa: F401  (import, export, snapshots, rejects)
from . import collect  # noqa: F401  (collect bluesky|mastodon)
from . import web  # noqa: F401  (report, serve)
from . import scale  # noqa: F401  (score: streaming and Dask engines)
from . import chart  # noqa: F401  (chart --kind follower-factory)
from . import engagement  # noqa: F401  (whatif, import-posts, growth, views, likers)
from . import model  # noqa: F401  (train, evaluate)
from .app import cli, main

__all__ = ["cli", "main"]
