"""The DuckDB workspace: snapshots, followers, rejects, labels; collection state; reach tables."""

from .workspace import DEFAULT_DB_NAME, Snapshot, Store, default_db_path, open_store

__all__ = ["DEFAULT_DB_NAME", "Snapshot", "Store", "default_db_path", "open_store"]
