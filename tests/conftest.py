"""Shared fixtures. Tests that need ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes a workspace into the checkout: the default DB lives in the test's tmp dir."""
    monkeypatch.setenv("FOLLOWAUDIT_DB", str(tmp_path / "workspace.duckdb"))
    monkeypatch.delenv("FOLLOWAUDIT_MASTODON_TOKEN", raising=False)
    monkeypatch.delenv("FOLLOWAUDIT_MASTODON_INSTANCE", raising=False)
    os.environ.setdefault("COLUMNS", "100")


def copy_workspace(source: Path, target: Path) -> Path:
    """Copy a workspace as a user would: the DuckDB file and its labels folder."""
    target.write_bytes(source.read_bytes())
    labels = source.parent / f"{source.name}.labels"
    if labels.is_dir():
        shutil.copytree(labels, target.parent / f"{target.name}.labels")
    return target
