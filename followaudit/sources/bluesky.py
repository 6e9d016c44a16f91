"""Bluesky public AppView client (plain httpx) and the mapping of its profiles to canonical rows.

Endpoints (see reference/platform-apis.md §1): ``app.bsky.graph.getFollowers`` (100 per page, opaque
cursor, newest follows first, a short page is NOT the end), ``app.bsky.actor.getProfiles`` (25 per
call; the follower list itself carries no counts), ``app.bsky.feed.getAuthorFeed`` (posts, activity),
``app.bsky.graph.getRelationships`` (30 per call: each follower's follow record, whose key is a TID
that dates the follow).

Labels: every profile carries ``labels`` (``com.atproto.label.defs#label``: src, uri, val, neg, cts).
The ``atproto-accept-labelers`` header names the labelers whose labels we want: Bluesky's own
moderation service always, plus any ``--labeler``. A label whose ``src`` is the profile's own DID is a
self-label (``bot``: the account declares itself automated).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..errors import CollectError, InputError, NotFoundError
from .http import ApiClient, error_text

if TYPE_CHECKING:
    import httpx

DEFAULT_API_BASE = "https://public.api.bsky.app"
PAGE_SIZE = 100
PROFILES_PER_CALL = 25
RELATIONSHIPS_PER_CALL = 30  # app.bsky.graph.getRelationships: others maxLength 30
BLUESKY_MODERATION = "did:plc:ar7c4by46qjdydhdevvrndac"  # Bluesky's moderation labeler
MAX_LABELERS = 20  # the AppView honours at most 20 in atproto-accept-labelers
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable
REPOST = "app.bsky.feed.defs#reasonRepost"

_LABELS = pl.List(pl.Struct({"src": pl.Utf8, "val": pl.Utf8, "neg": pl.Boolean}))
_TID_VALUE = np.full(256, -1, dtype=np.int64)
_TID_VALUE[np.frombuffer(TID_ALPHABET.encode(), dtype=np.uint8)] = np.arange(32)


def tid_times(rkeys: pl.Series) -> pl.Series:
    """TID record keys -> their UTC timestamps (vectorised); anything not a valid TID -> null.

    A TID is 13 base32-sortable characters for 64 bits: a zero top bit, 53 bits of microseconds
    since the Unix epoch, 10 bits of clock id. The client writes it, so it can be backdated.
    """
    text = rkeys.cast(pl.Utf8)
    valid = text.str.contains(r"^[234567a-j][234567a-z]{12}$").fill_null(False).to_numpy()
    padded = text.fill_null("").str.pad_end(13, "2").str.slice(0, 13)
    codes = np.frombuffer("".join(padded.to_list()).encode("ascii", "replace"), dtype=np.uint8).reshape(-1, 13)
    digits = _TID_VALUE[codes]
    valid &= (digits >= 0).all(axis=1)
    value = np.zeros(len(text), dtype=np.uint64)
    for column in range(13):  # 13 columns, not one step per follower
        value = (value << np.uint64(5)) | np.where(digits[:, column] >= 0, digits[:, column], 0).astype(np.uint64)
    micros = (value >> np.uint64(10)).astype(np.int64)
    out = pl.Series("followed_at", micros, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    return out.set(pl.Series(~valid), None) if (~valid).any() else out


def tid_from_micros(micros: int, clock_id: int = 0) -> str:
    """The TID for a time in microseconds since the epoch (for fixtures and the fake AppView)."""
    value = (int(micros) << 10) | (clock_id & 0x3FF)
    return "".join(TID_ALPHABET[(value >> (5 * k)) & 31] for k in range(12, -1, -1))


def record_key(uri: str | None) -> str | None:
    """The record key (last path part) of an at:// URI."""
    if not uri or not uri.startswith("at://"):
        return None
    return uri.rsplit("/", 1)[-1] or None


def labeler_header(labelers: list[str] | tuple[str, ...] = ()) -> str:
    """The ``atproto-accept-labelers`` value: Bluesky's moderation service first, then the user's."""
    wanted = list(dict.fromkeys([BLUESKY_MODERATION, *labelers]))
    for did in wanted:
        if not did.startswith("did:") or any(c in did for c in " ,;"):
            raise InputError(f"--labeler {did!r} is not a DID", "give the labeler's DID, e.g. did:plc:…")
    if len(wanted) > MAX_LABELERS:
        raise InputError(f"{len(wanted)} labelers asked for; the AppView takes at most {MAX_LABELERS}")
    return ", ".join(wanted)


def _error(response: httpx.Response) -> Exception:
    text = error_text(response)
    if response.status_code == 400 and ("not found" in text.lower() or "InvalidRequest" in text):
        return NotFoundError(f"Bluesky has no account {response.request.url.params.get('actor')!r} ({text})")
    return CollectError(
        f"Bluesky answered {response.status_code} to {response.request.url.path}: {text}",
        "check --api-base (the public AppView needs no login)",
    )


def normalize_actor(text: str) -> str:
    """A handle or DID as the API wants it: no leading @, no profile-URL wrapper."""
    actor = text.strip()
    for prefix in ("https://bsky.app/profile/", "http://bsky.app/profile/"):
        if actor.startswith(prefix):
            actor = actor[len(prefix):].split("/")[0]
    actor = actor.lstrip("@")
    if not actor or " " in actor:
        raise NotFoundError(f"{text!r} is not a Bluesky handle or DID", "give e.g. alice.bsky.social or did:plc:…")
    return actor if actor.startswith("did:") else actor.lower()


class BlueskyClient:
    """The four reads an audit needs. Returns the API's own JSON objects."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def profile(self, actor: str) -> dict[str, Any]:
        return self.api.get("/xrpc/app.bsky.actor.getProfile", {"actor": actor}, error=_error).data

    def followers(self, actor: str, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of followers (profileView, newest first) and the next cursor (None = end)."""
        params: dict[str, Any] = {"actor": actor, "limit": PAGE_SIZE}
        if cursor:
            params["cursor"] = cursor
        data = self.api.get("/xrpc/app.bsky.graph.getFollowers", params, error=_error).data
        if not isinstance(data, dict) or not isinstance(data.get("followers"), list):
            raise CollectError("getFollowers returned no 'followers' list", "check --api-base points at a Bluesky AppView")
        if not all(isinstance(p, dict) and isinstance(p.get("did"), str) for p in data["followers"]):
            raise CollectError("getFollowers returned a follower without a DID", "check --api-base points at a Bluesky AppView")
        return data["followers"], data.get("cursor") or None

    def profiles(self, actors: list[str]) -> list[dict[str, Any]]:
        """profileViewDetailed for up to 25 actors (missing ones are simply absent)."""
        if len(actors) > PROFILES_PER_CALL:
            raise ValueError("getProfiles takes at most 25 actors")
        data = self.api.get("/xrpc/app.bsky.actor.getProfiles", {"actors": actors}, error=_error).data
        return list(data.get("profiles") or [])

    def relationships(self, actor: str, others: list[str]) -> dict[str, str | None]:
        """follower DID -> the AT-URI of its follow record of ``actor`` (None: no follow, not found)."""
        if len(others) > RELATIONSHIPS_PER_CALL:
            raise ValueError("getRelationships takes at most 30 others")
        data = self.api.get("/xrpc/app.bsky.graph.getRelationships", {"actor": actor, "others": others}, error=_error).data
        items = data.get("relationships") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise CollectError("getRelationships returned no 'relationships' list", "check --api-base points at a Bluesky AppView")
        out: dict[str, str | None] = {}
        for item in items:  # #relationship {did, followedBy?} or #notFoundActor {actor, notFound}
            if isinstance(item, dict) and isinstance(item.get("did"), str):
                out[item["did"]] = item.get("followedBy") if isinstance(item.get("followedBy"), str) else None
        return out

    def author_feed(
        self, actor: str, *, limit: int, cursor: str | None = None, filter: str = "posts_with_replies"
    ) -> tuple[list[dict[str, Any]], str | None] | None:
        """A page of the actor's feed, or None when the feed is unavailable (blocked, gone)."""
        params: dict[str, Any] = {"actor": actor, "limit": limit, "filter": filter}
        if cursor:
            params["cursor"] = cursor
        reply = self.api.get("/xrpc/app.bsky.feed.getAuthorFeed", params, error=_error, allow=(400,))
        if reply.data is None:  # BlockedActor, BlockedByActor, deleted or deactivated profile
            return None
        return list(reply.data.get("feed") or []), reply.data.get("cursor") or None

    def latest_activity(self, actor: str) -> tuple[str | None, str]:
        """(time of the newest feed item, kind): kind is post, repost, none (never posted) or unavailable."""
        page = self.author_feed(actor, limit=1)
        if page is None:
            return None, "unavailable"
        feed, _ = page
        if not feed:
            return None, "none"
        item = feed[0]
        reason = item.get("reason") or {}
        if reason.get("$type") == REPOST:
            return reason.get("indexedAt"), "repost"
        post = item.get("post") or {}
        return (post.get("record") or {}).get("createdAt") or post.get("indexedAt"), "post"

    def recent_posts(self, actor: str, n: int) -> list[dict[str, Any]]:
        """The actor's own n most recent top-level posts (reposts of others skipped)."""
        posts: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str | None] = set()
        while len(posts) < n:
            page = self.author_feed(actor, limit=min(PAGE_SIZE, n), cursor=cursor, filter="posts_no_replies")
            if page is None:
                break
            feed, cursor = page
            posts.extend(item["post"] for item in feed if not item.get("reason") and item.get("post"))
            if not cursor or cursor in seen:
                break
            seen.add(cursor)
        return posts[:n]


def ts(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 text (with Z, offsets, any fraction, or a bare date) to UTC timestamps; junk -> null."""
    text = expr.str.replace(r"^(\d{4}-\d\d-\d\d)$", "${1}T00:00:00Z").str.replace(r"Z$", "+00:00")
    return text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", time_unit="us", strict=False)


def label_columns(raw: pl.Series) -> pl.DataFrame:
    """``moderation_labels`` and ``self_declared_bot`` from profile JSON texts, one row per profile.

    A label negated (``neg``) by its own source is dropped. Labels from Bluesky's moderation service
    keep their bare value (``spam``); another labeler's carry its DID (``spam@did:plc:…``), so only
    the platform's own moderation can make a follower fake. Self-labels (src = the profile's DID)
    are not moderation: ``bot`` sets ``self_declared_bot``; others are kept as ``self:VALUE``.
    """
    frame = pl.DataFrame({"raw": raw}).with_row_index("_row").select(
        "_row",
        pl.col("raw").str.json_path_match("$.did").alias("did"),
        pl.col("raw").str.json_path_match("$.labels").str.json_decode(_LABELS).alias("label"),
    )
    items = (
        frame.explode("label").drop_nulls("label").unnest("label").drop_nulls("val")
        .group_by("_row", "did", "src", "val").agg(pl.col("neg").fill_null(False).any().alias("negated"))
        .filter(~pl.col("negated"))
        .with_columns(
            pl.when(pl.col("src") == pl.col("did")).then(pl.lit("self:") + pl.col("val"))
            .when(pl.col("src").is_null() | (pl.col("src") == BLUESKY_MODERATION)).then(pl.col("val"))
            .otherwise(pl.col("val") + "@" + pl.col("src")).alias("label")
        )
    )
    per_row = items.group_by("_row").agg(
        pl.col("label").filter(pl.col("label") != "self:bot").unique().sort().alias("moderation_labels"),
        (pl.col("label") == "self:bot").any().alias("self_declared_bot"),
    )
    return frame.select("_row").join(per_row, on="_row", how="left", maintain_order="left").select(
        pl.col("moderation_labels").fill_null(pl.lit([], pl.List(pl.Utf8))),
        pl.col("self_declared_bot").fill_null(False),
    )


def followers_frame(
    profiles: list[dict[str, Any]], *, account: str, observed_at: datetime | list[datetime]
) -> pl.DataFrame:
    """profileViewDetailed objects -> canonical columns (no follow_rank, no last_active_at).

    ``observed_at`` is one time for all, or one per profile (when each was fetched)."""
    raw = pl.Series("raw", [json.dumps(p, separators=(",", ":"), ensure_ascii=False) for p in profiles], pl.Utf8)

    def field(path: str) -> pl.Expr:
        return pl.col("raw").str.json_path_match(path)

    labels = label_columns(raw)
    frame = pl.DataFrame({"raw": raw}).with_columns(
        pl.lit("bluesky").alias("platform"),
        pl.lit(account).alias("account"),
        field("$.did").alias("follower_id"),
        field("$.handle").alias("handle"),
        field("$.displayName").alias("display_name"),
        ts(field("$.createdAt")).alias("created_at"),
        field("$.followersCount").cast(pl.Int64, strict=False).alias("followers_count"),
        field("$.followsCount").cast(pl.Int64, strict=False).alias("following_count"),
        field("$.postsCount").cast(pl.Int64, strict=False).alias("posts_count"),
        field("$.avatar").is_not_null().alias("has_avatar"),  # absent = the default avatar
        field("$.description").alias("bio"),
        field("$.website").is_not_null().alias("has_url"),
        (field("$.verification.verifiedStatus") == "valid").fill_null(False).alias("verified"),
        labels["moderation_labels"],
        labels["self_declared_bot"],
        (pl.Series(observed_at, dtype=pl.Datetime("us", "UTC")) if isinstance(observed_at, list)
         else pl.lit(observed_at).cast(pl.Datetime("us", "UTC"))).alias("observed_at"),
    )
    return frame


def posts_frame(posts: list[dict[str, Any]]) -> pl.DataFrame:
    """postView objects -> the posts table columns."""
    raw = pl.Series("raw", [json.dumps(p, separators=(",", ":"), ensure_ascii=False) for p in posts], pl.Utf8)
    frame = pl.DataFrame({"raw": raw})

    def field(path: str) -> pl.Expr:
        return pl.col("raw").str.json_path_match(path)

    return frame.select(
        field("$.uri").alias("post_id"),
        pl.coalesce(ts(field("$.record.createdAt")), ts(field("$.indexedAt"))).alias("created_at"),
        field("$.likeCount").cast(pl.Int64, strict=False).alias("likes"),
        field("$.replyCount").cast(pl.Int64, strict=False).alias("replies"),
        field("$.repostCount").cast(pl.Int64, strict=False).alias("reposts"),
        field("$.quoteCount").cast(pl.Int64, strict=False).alias("quotes"),
        pl.lit(None, pl.Int64).alias("views"),
        pl.col("raw"),
    )
