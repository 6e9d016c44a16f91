"""The DuckDB workspace: snapshots, followers, rejects, labels; collection state; reach tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .workspace import DEFAULT_DB_NAME, Snapshot, Store, default_db_path, open_store

__all__ = ["DEFAULT_DB_NAME", "Snapshot", "Store", "default_db_path", "open_store"]


def __getattr__(name: str) -> Any:
    """The workspace's names, loaded on first use: ``store.parquet_columns`` is read before DuckDB
    loads (an audit starts scanning a file's follow order then)."""
    if name in __all__:
        from . import workspace

        return getattr(workspace, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
