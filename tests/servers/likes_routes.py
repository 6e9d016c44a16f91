"""Likes and reposts routes on top of the fake platform (``fake_platform.FakePlatform``).

``LikesPlatform(n, likers=..., outsiders=..., reposters=...)`` serves one post of the target account:

* Bluesky ``app.bsky.feed.getLikes`` / ``getRepostedBy`` / ``getPosts`` (opaque cursor, newest first,
  cursor absent on the last page) for ``at://<TARGET_DID>/app.bsky.feed.post/likedpost``;
* Mastodon ``statuses/:id``, ``statuses/:id/favourited_by`` and ``reblogged_by`` (Link header; the
  next link only after a full page) for status ``STATUS_ID``.

Likers are follower indices (``likers``) plus non-followers (indices ``n .. n+outsiders-1``, whose
profiles ``getProfiles`` also returns). The base server's fault injection applies to these routes too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from servers.fake_platform import (
    BASE_TIME,
    MASTODON_ID,
    TARGET_DID,
    TARGET_HANDLE,
    FakePlatform,
    _cursor,
    _offset,
    did_of,
)

RKEY = "likedpost"
POST_URI = f"at://{TARGET_DID}/app.bsky.feed.post/{RKEY}"
POST_URL = f"https://bsky.app/profile/{TARGET_HANDLE}/post/{RKEY}"
STATUS_ID = "112000000000000042"


class LikesPlatform(FakePlatform):
    def __init__(self, n: int = 500, *, likers: list[int] | None = None, outsiders: int = 0,
                 reposters: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(n, **kwargs)
        self.likers = list(likers if likers is not None else range(0, n, 3)) + list(range(n, n + outsiders))
        self.reposters = list(reposters if reposters is not None else range(0, n, 10))
        self.server.RequestHandlerClass = _likes_handler(self, self.server.RequestHandlerClass)

    def status_url(self) -> str:
        return f"{self.url}/@target/{STATUS_ID}"


def _likes_handler(fp: LikesPlatform, base: type) -> type:
    class Handler(base):  # type: ignore[misc, valid-type]
        def bluesky(self, nsid: str, q: dict[str, list[str]]) -> None:
            if nsid in ("app.bsky.feed.getLikes", "app.bsky.feed.getRepostedBy"):
                if q["uri"][0] != POST_URI:
                    return self.send_json(400, {"error": "InvalidRequest", "message": "post not found"})
                people = fp.likers if nsid.endswith("getLikes") else fp.reposters
                limit = min(int(q.get("limit", ["50"])[0]), 100)
                cursor = q.get("cursor", [None])[0]
                offset = _offset(cursor) if cursor else 0
                if fp.faults.repeat_page and cursor:
                    offset = 0
                page = list(reversed(people))[offset: offset + limit]  # newest first
                if nsid.endswith("getLikes"):
                    body: dict[str, Any] = {"uri": POST_URI, "likes": [
                        {"actor": fp.profile_view(i), "createdAt": _iso(i), "indexedAt": _iso(i)} for i in page]}
                else:
                    body = {"uri": POST_URI, "repostedBy": [fp.profile_view(i) for i in page]}
                if offset + limit < len(people):
                    body["cursor"] = cursor if (fp.faults.repeat_cursor and cursor) else _cursor(offset + limit)
                return self.send_json(200, body)
            if nsid == "app.bsky.feed.getPosts":
                posts = [{"uri": POST_URI, "likeCount": len(fp.likers), "repostCount": len(fp.reposters)}] if POST_URI in q["uris"] else []
                return self.send_json(200, {"posts": posts})
            if nsid == "app.bsky.actor.getProfiles":  # also the non-followers who liked
                actors = q["actors"]
                if len(actors) > 25:
                    return self.send_json(400, {"error": "InvalidRequest", "message": "actors must not have more than 25 elements"})
                out = []
                for actor in actors:
                    if actor.startswith("did:plc:f"):
                        i = int(actor[len("did:plc:f"):])
                        if i < fp.n + len(fp.likers) and i not in fp.gone and actor == did_of(i):
                            out.append(fp.profile_detailed(i))
                return self.send_json(200, {"profiles": out})
            return super().bluesky(nsid, q)

        def mastodon(self, path: str, q: dict[str, list[str]]) -> None:
            parts = path.split("/")
            if parts[0] == "statuses" and len(parts) >= 2:
                if fp.token is not None and self.headers.get("Authorization") != f"Bearer {fp.token}":
                    return self.send_json(401, {"error": "This API requires an authenticated user"})
                if parts[1] != STATUS_ID:
                    return self.send_json(404, {"error": "Record not found"})
                if len(parts) == 2:
                    return self.send_json(200, {"id": STATUS_ID, "account": fp.target_account(),
                                                "favourites_count": len(fp.likers), "reblogs_count": len(fp.reposters)})
                people = fp.likers if parts[2] == "favourited_by" else fp.reposters
                limit = min(int(q.get("limit", ["40"])[0]), 80)
                offset = int(q.get("max_id", ["0"])[0])
                page = list(reversed(people))[offset: offset + limit]
                headers = {}
                if len(page) == limit:
                    nxt = offset + limit if not (fp.faults.repeat_cursor and offset) else offset
                    headers["Link"] = f'<{fp.url}/api/v1/statuses/{STATUS_ID}/{parts[2]}?{urlencode({"limit": limit, "max_id": nxt})}>; rel="next"'
                return self.send_json(200, [fp.account(i) for i in page], headers)
            return super().mastodon(path, q)

    return Handler


def _iso(i: int) -> str:
    return (BASE_TIME + timedelta(days=600, minutes=i)).isoformat().replace("+00:00", "Z")


__all__ = ["LikesPlatform", "POST_URI", "POST_URL", "STATUS_ID", "MASTODON_ID"]
