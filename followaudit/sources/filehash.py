"""A file's SHA-256, computed in a thread from the start of a command (a light module: hashlib only).

``followaudit import`` starts it before it loads Polars, DuckDB and the importers (~0.35 s on one
core), so the hash of the file (~0.6 CPU-s per GB) is taken on the other core meanwhile instead of
on the import's reading thread. The import asks for the digest when it needs it.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any


def hash_file(path: str | Path, digest: Any) -> None:
    """Feed the bytes of ``path`` to ``digest`` (a hashlib object), 8 MB at a time through one reused
    buffer: mapping the whole file would count every page it touched in the process's resident
    memory (a 10M-row CSV import peaked at 3.3 GB that way)."""
    buffer = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as fh, memoryview(buffer) as view:
        while size := fh.readinto(view):
            digest.update(view[:size])  # hashlib releases the GIL


class FileHash:
    """SHA-256 of the bytes of ``path``, started at once in a daemon thread."""

    def __init__(self, path: str | Path) -> None:
        self._digest = hashlib.sha256()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="followaudit-hash", daemon=True)
        self._thread.start()

    def _run(self, path: str | Path) -> None:
        try:
            hash_file(path, self._digest)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller by digest()
            self._error = exc

    def digest(self) -> Any:
        """A copy of the finished hashlib object (more can be fed to it); waits for the thread."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest.copy()
