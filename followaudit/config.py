"""User configuration: ``$FOLLOWAUDIT_CONFIG`` or ``~/.config/followaudit/config.toml``.

    mastodon_token = "…"            # used for every instance, or per instance:
    [mastodon.tokens]
    "mastodon.social" = "…"
    [http]
    min_interval = 0.2              # seconds between requests (client-side pacing)
    timeout = 20
    max_retries = 5

Tokens are read here and handed to the HTTP client's Authorization header only: they never reach
the database, the snapshot settings, logs or reports.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError

TOKEN_ENV = "FOLLOWAUDIT_MASTODON_TOKEN"
CONFIG_ENV = "FOLLOWAUDIT_CONFIG"


def config_path() -> Path:
    """Where the config file is looked for."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "followaudit" / "config.toml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The parsed config, or {} when there is no file."""
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read config file {path}: {exc}", "fix the TOML syntax or remove the file") from None


def mastodon_token(instance: str, config: dict[str, Any] | None = None) -> str | None:
    """Token for ``instance``: the environment wins, then a per-instance entry, then the global one."""
    env = os.environ.get(TOKEN_ENV)
    if env and env.strip():
        return env.strip()
    config = load_config() if config is None else config
    section = config.get("mastodon") or {}
    per_instance = section.get("tokens") or {}
    token = per_instance.get(instance) or section.get("token") or config.get("mastodon_token")
    return str(token).strip() if token else None


def http_settings(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``[http]`` table, limited to the known knobs."""
    config = load_config() if config is None else config
    section = config.get("http") or {}
    known = {"timeout", "min_interval", "max_retries", "max_rate_limit_retries", "backoff_base", "backoff_max", "max_wait"}
    return {k: v for k, v in section.items() if k in known}
