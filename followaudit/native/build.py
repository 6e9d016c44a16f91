"""C kernels compiled on the user's machine: built once with the system's compiler, cached, loaded once.

Every hot loop that NumPy or Polars cannot do in one vectorised pass (the model's trees, the text
and count features, the number phrases, the burst scan's segment searches, the in-place check)
is a small C source in its own module, built here. Without a compiler (or with
``FOLLOWAUDIT_COMPILE=0``) each caller runs the same computation in NumPy or Polars and gets the
same numbers, only slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """``$FOLLOWAUDIT_CACHE`` or ``~/.cache/followaudit``: where compiled kernels are kept."""
    base = os.environ.get("FOLLOWAUDIT_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "followaudit"


def compile_enabled() -> bool:
    """``FOLLOWAUDIT_COMPILE=0`` keeps the NumPy walk (same numbers, slower)."""
    return os.environ.get("FOLLOWAUDIT_COMPILE", "1") not in ("0", "false", "no")


_LIB_LOCK = threading.Lock()
_LIB: dict[str, Any] = {}


def compiled(key: str, prefix: str, source: str, flag_sets: list[list[str]], *, restypes: dict[str, Any] | None = None,
             setup: Callable[[Any], bool] | None = None) -> Any | None:
    """``source`` compiled into a shared library, cached as ``<cache>/compiled/<prefix>-<hash>.so``.

    ``flag_sets`` are tried in order (e.g. with OpenMP, then without). Loaded once per process under
    ``key``; None when compiling is disabled or no C compiler works (callers then run the same
    computation in NumPy). No ``-ffast-math``: every sum stays in the order the source writes it.
    When loaded, its functions get their ``restypes`` and ``setup(lib)`` runs once (under the lock:
    it must not load a library itself); False from it makes the library None here too.
    """
    with _LIB_LOCK:
        if key in _LIB:
            return _LIB[key]
        lib = None
        if compile_enabled():
            digest = hashlib.sha256(source.encode()).hexdigest()[:16]
            target = cache_dir() / "compiled" / f"{prefix}-{digest}.so"
            try:
                if not target.exists():
                    _build(target, source, flag_sets)
                lib = ctypes.CDLL(str(target))
            except (OSError, RuntimeError, subprocess.SubprocessError):
                lib = None  # no compiler: the NumPy walk gives the same numbers
        if lib is not None:
            for name, restype in (restypes or {}).items():
                getattr(lib, name).restype = restype
            if setup is not None and not setup(lib):
                lib = None
        _LIB[key] = lib
        return lib


def _build(target: Path, source_text: str, flag_sets: list[list[str]]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = target.with_suffix(f".{os.getpid()}.c")
    tmp = target.with_suffix(f".{os.getpid()}.tmp.so")
    source.write_text(source_text)
    try:
        for flags in flag_sets:
            done = subprocess.run(
                [os.environ.get("CC", "gcc"), "-shared", "-fPIC", *flags, str(source), "-o", str(tmp), "-lm"],
                capture_output=True, text=True, timeout=300, check=False,
            )
            if done.returncode == 0:
                os.replace(tmp, target)
                return
        raise RuntimeError(done.stderr.strip()[-300:])
    finally:
        source.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
