"""User configuration: ``$FOLLOWAUDIT_CONFIG`` or ``~/.config/followaudit/config.toml``.

    [mastodon.tokens]               # a token belongs to ONE instance
    "mastodon.social" = "…"
    [http]
    min_interval = 0.2              # seconds between requests (client-side pacing)
    timeout = 20
    max_retries = 5

Tokens are read here and handed to the HTTP client's Authorization header only: they never reach
the database, the snapshot settings, logs or reports. A token belongs to one instance: the
environment token needs ``FOLLOWAUDIT_MASTODON_INSTANCE`` beside it, a global config token is
refused, and ``token_for`` sends a token only to its own instance over https (or http on loopback).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError

# Defaults and choices the CLI shows in --help, kept here (no heavy imports) so that `followaudit
# --help` starts fast; the modules that use them import them from here.
LABEL_METHODS = ("model", "rules")  # the first is the CLI default
DEFAULT_INACTIVE_DAYS = 90  # days without a post after which a follower is inactive
MASS_THRESHOLD = 1_500  # following more accounts than this makes a "mass follower" (HypeAuditor, Traackr)
PLATFORMS = ("twitter", "instagram", "bluesky", "mastodon", "other")
FILE_FORMATS = ("csv", "json", "jsonl", "parquet")
FILE_ORDERS = ("newest-first", "oldest-first", "unknown")

TOKEN_ENV = "FOLLOWAUDIT_MASTODON_TOKEN"
INSTANCE_ENV = "FOLLOWAUDIT_MASTODON_INSTANCE"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
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


def _host(text: str) -> str:
    """An instance name or URL as a bare lower-case host (no scheme, port or path)."""
    value = text.strip().lower()
    value = value.split("://", 1)[-1].split("/", 1)[0]
    if value.startswith("["):  # [::1]:8080
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def mastodon_token(instance: str, config: dict[str, Any] | None = None) -> str | None:
    """The token that belongs to ``instance``, or None.

    ``FOLLOWAUDIT_MASTODON_TOKEN`` applies only to the instance named in
    ``FOLLOWAUDIT_MASTODON_INSTANCE`` (a token without it is an error); otherwise the
    ``[mastodon.tokens]`` entry for the instance. A global config token is refused.
    """
    env = (os.environ.get(TOKEN_ENV) or "").strip()
    if env:
        owner = (os.environ.get(INSTANCE_ENV) or "").strip()
        if not owner:
            raise InputError(
                f"{TOKEN_ENV} is set but {INSTANCE_ENV} is not: a token belongs to one instance",
                f"export {INSTANCE_ENV}=<the instance that issued the token>, e.g. mastodon.social",
            )
        if _host(owner) == _host(instance):
            return env
    config = load_config() if config is None else config
    section = config.get("mastodon") or {}
    if config.get("mastodon_token") or section.get("token"):
        raise InputError(
            f"the config file {config_path()} sets a global Mastodon token: a token belongs to one instance",
            'move it under [mastodon.tokens] as "<instance>" = "<token>"',
        )
    per_instance = {_host(str(k)): v for k, v in (section.get("tokens") or {}).items()}
    token = per_instance.get(_host(instance))
    return str(token).strip() if token else None


def token_for(instance: str, api_base: str, config: dict[str, Any] | None = None) -> tuple[str | None, str | None]:
    """(token to send to ``api_base``, a note when one exists but is withheld).

    A token goes only to its own instance, and over plain http only to a loopback address.
    """
    token = mastodon_token(instance, config)
    if token is None:
        return None, None
    base = api_base.strip().lower()
    host = _host(base)
    if host != _host(instance):
        return None, f"the token for {_host(instance)} is not sent to {host} (--api-base is another host)"
    if not base.startswith("https://") and host not in LOOPBACK:
        raise InputError(
            f"refusing to send the {_host(instance)} token over plain http ({api_base})",
            "use an https:// --api-base (plain http is allowed only on loopback)",
        )
    return token, None


def http_settings(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``[http]`` table, limited to the known knobs."""
    config = load_config() if config is None else config
    section = config.get("http") or {}
    known = {"timeout", "min_interval", "max_retries", "max_rate_limit_retries", "backoff_base", "backoff_max", "max_wait"}
    return {k: v for k, v in section.items() if k in known}
