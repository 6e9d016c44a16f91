"""Command-line interface. ``app`` holds the group and error mapping; each module adds commands."""

from . import commands  # noqa: F401  (registers the core commands)
from . import collect  # noqa: F401  (collect bluesky|mastodon)
from .app import cli, main

__all__ = ["cli", "main"]
