"""Replay recorded API exchanges (tests/recordings) through ``httpx.MockTransport``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"


def load(name: str) -> dict[str, Any]:
    """A recording by relative name, e.g. ``bluesky/getProfile``."""
    return json.loads((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))


def _params(url: httpx.URL) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in url.params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def _want(params: dict[str, Any]) -> dict[str, list[str]]:
    return {k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in params.items()}


class Replay:
    """Serves recordings in order; each is used once. Unmatched requests fail the test loudly."""

    def __init__(self, *names: str) -> None:
        self.records = [load(n) for n in names]
        self.used = [False] * len(self.records)
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        got = _params(request.url)
        for i, rec in enumerate(self.records):
            req = rec["request"]
            if self.used[i] or req["path"] != request.url.path or _want(req.get("params", {})) != got:
                continue
            self.used[i] = True
            body = rec["body"]
            content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            return httpx.Response(rec["status"], headers=rec.get("headers", {}), content=content)
        raise AssertionError(f"no recording for {request.method} {request.url}")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def all_used(self) -> bool:
        return all(self.used)
