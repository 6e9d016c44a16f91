"""Mastodon client (plain httpx) and the mapping of Account entities to canonical rows.

Always asked on the account's home instance (a server only knows the followers it has seen).
``accounts/lookup`` -> ``accounts/:id/followers?limit=80`` following the ``Link: rel="next"`` header;
Account entities already carry counts and ``last_status_at``, so there is no hydration step.
See reference/platform-apis.md §2.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import polars as pl

from ..errors import AuthRequiredError, CollectError, NotFoundError
from .bluesky import ts
from .http import ApiClient, error_text

if TYPE_CHECKING:
    import httpx

PAGE_SIZE = 80
MASTODON_FLAGS = ("suspended", "limited", "noindex", "memorial")
STATUSES_PAGE = 40

_FIELDS = pl.List(pl.Struct({"name": pl.Utf8, "value": pl.Utf8}))
_ACCT = re.compile(r"^@?(?P<user>[A-Za-z0-9_.\-]+)@(?P<host>[A-Za-z0-9.\-]+\.[A-Za-z]{2,}|localhost|[0-9.]+)(:\d+)?$")
_URL = re.compile(r"^https?://(?P<host>[^/@\s]+)/@(?P<user>[A-Za-z0-9_.\-]+)(@(?P<remote>[^/\s]+))?/?$")


def parse_acct(text: str) -> tuple[str, str]:
    """``@user@instance``, ``user@instance`` or ``https://instance/@user`` -> (user, home instance).

    A profile URL of a remote account (``https://a.social/@bob@b.social``) points at b.social.
    """
    value = text.strip()
    url = _URL.match(value)
    if url:
        if url.group("remote"):
            return url.group("user"), url.group("remote").lower()
        return url.group("user"), url.group("host").lower()
    acct = _ACCT.match(value)
    if acct:
        return acct.group("user"), value.rsplit("@", 1)[1].lower()
    raise NotFoundError(
        f"{text!r} is not a Mastodon account address",
        "write it as @user@instance (e.g. @Gargron@mastodon.social) or https://instance/@user",
    )


def _error(response: httpx.Response) -> Exception:
    status = response.status_code
    text = error_text(response)
    host = response.request.url.host
    if status in (401, 422):
        return AuthRequiredError(f"{host} refused the request ({status}: {text or 'unauthorized'})")
    if status in (404, 410):
        return NotFoundError(f"{host} has no such account ({status}: {text or 'not found'})")
    return CollectError(f"{host} answered {status} to {response.request.url.path}: {text}")


class MastodonClient:
    """lookup, followers (Link pagination) and statuses on one instance."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def lookup(self, user: str) -> dict[str, Any]:
        return self.api.get("/api/v1/accounts/lookup", {"acct": user}, error=_error).data

    def followers(self, account_id: str, next_url: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of followers (newest first) and the URL of the next one (None = end)."""
        if next_url is None:
            reply = self.api.get(f"/api/v1/accounts/{account_id}/followers", {"limit": PAGE_SIZE}, error=_error)
        else:
            self._same_host(next_url)
            reply = self.api.get(next_url, error=_error)
        if not isinstance(reply.data, list):
            raise CollectError("the followers endpoint did not return a list", "check --api-base points at a Mastodon server")
        if not all(isinstance(a, dict) and a.get("id") is not None for a in reply.data):
            raise CollectError("the followers endpoint returned an account without an id", "check --api-base points at a Mastodon server")
        return reply.data, reply.response.links.get("next", {}).get("url")

    def _same_host(self, url: str) -> None:
        # a Link header pointing elsewhere must not receive our token
        import httpx

        if httpx.URL(url).host != self.api.http.base_url.host:
            raise CollectError(f"the server's next-page link leaves {self.api.http.base_url.host}: {url}", "")

    def statuses(self, account_id: str, n: int) -> list[dict[str, Any]]:
        """The account's own n most recent statuses (boosts excluded)."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] | None = {"limit": min(STATUSES_PAGE, n), "exclude_reblogs": "true"}
        url = f"/api/v1/accounts/{account_id}/statuses"
        seen: set[str] = set()
        while len(out) < n:
            reply = self.api.get(url, params, error=_error)
            page = reply.data if isinstance(reply.data, list) else []
            out.extend(page)
            next_url = reply.response.links.get("next", {}).get("url")
            if not page or not next_url or next_url in seen:
                break
            self._same_host(next_url)
            seen.add(next_url)
            url, params = next_url, None
        return out[:n]


def followers_frame(raw: pl.Series, *, account: str, instance: str) -> pl.DataFrame:
    """Account JSON texts -> canonical columns (no follow_rank, no observed_at)."""
    frame = pl.DataFrame({"raw": raw.cast(pl.Utf8)})

    def field(path: str) -> pl.Expr:
        return pl.col("raw").str.json_path_match(path)

    acct = field("$.acct")
    bio = field("$.note").str.replace_all(r"<br\s*/?>|</p><p>", "\n").str.replace_all(r"<[^>]+>", "")
    bio = bio.str.replace_all("&amp;", "&").str.replace_all("&lt;", "<").str.replace_all("&gt;", ">")
    bio = bio.str.replace_all("&quot;", '"').str.replace_all("&#39;", "'")
    fields = field("$.fields").str.json_decode(_FIELDS)
    # the instance's own moderation (suspended, limited = silenced) and account states that say a
    # profile is not in use (moved, memorial) or opted out of search (noindex); `bot` is self-declared
    flags = [
        pl.when(field(f"$.{flag}") == "true").then(pl.lit(flag)).otherwise(None) for flag in MASTODON_FLAGS
    ] + [pl.when(field("$.moved").is_not_null()).then(pl.lit("moved")).otherwise(None)]
    return frame.with_columns(
        pl.lit("mastodon").alias("platform"),
        pl.lit(account).alias("account"),
        field("$.id").alias("follower_id"),
        pl.when(acct.str.contains("@")).then(acct).otherwise(acct + "@" + instance).alias("handle"),
        field("$.display_name").alias("display_name"),
        ts(field("$.created_at")).alias("created_at"),  # midnight since Mastodon 3.4
        field("$.followers_count").cast(pl.Int64, strict=False).alias("followers_count"),
        field("$.following_count").cast(pl.Int64, strict=False).alias("following_count"),
        field("$.statuses_count").cast(pl.Int64, strict=False).alias("posts_count"),
        (field("$.avatar").is_not_null() & ~field("$.avatar").str.contains("/missing.png", literal=True)).alias("has_avatar"),
        bio.alias("bio"),
        fields.list.eval(pl.element().struct.field("value").str.contains("https?://")).list.any().fill_null(False).alias("has_url"),
        (field("$.locked") == "true").alias("private"),
        (field("$.bot") == "true").alias("self_declared_bot"),
        pl.concat_list(flags).list.drop_nulls().alias("moderation_labels"),
        ts(field("$.last_status_at")).alias("last_active_at"),  # a date only; null = never posted
    )


def posts_frame(statuses: list[dict[str, Any]]) -> pl.DataFrame:
    """Status entities -> the posts table columns."""
    raw = pl.Series("raw", [json.dumps(s, separators=(",", ":"), ensure_ascii=False) for s in statuses], pl.Utf8)

    def field(path: str) -> pl.Expr:
        return pl.col("raw").str.json_path_match(path)

    return pl.DataFrame({"raw": raw}).select(
        field("$.id").alias("post_id"),
        ts(field("$.created_at")).alias("created_at"),
        field("$.favourites_count").cast(pl.Int64, strict=False).alias("likes"),
        field("$.replies_count").cast(pl.Int64, strict=False).alias("replies"),
        field("$.reblogs_count").cast(pl.Int64, strict=False).alias("reposts"),
        field("$.quotes_count").cast(pl.Int64, strict=False).alias("quotes"),
        pl.lit(None, pl.Int64).alias("views"),
        pl.col("raw"),
    )

