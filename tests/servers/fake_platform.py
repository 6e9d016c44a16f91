"""A local fake of the Bluesky AppView and a Mastodon instance, with switchable fault injection.

Serves one synthetic audited account with ``n`` followers (index 0 = oldest follow) through both
APIs' real shapes: Bluesky ``getProfile``/``getFollowers``/``getProfiles``/``getAuthorFeed`` (opaque
cursor, newest first, cursor absent on the last page), ``getRelationships`` (follow-record AT-URIs
whose TID keys date the follows; every 997th backdated by 30 days; gone followers are
``#notFoundActor``) and labels filtered by the ``atproto-accept-labelers`` header (Bluesky moderation
``spam`` every 50th, ``inauthentic`` every 70th, ``!hide`` every 90th, a self-label ``bot`` every
60th, and ``spam`` from ``OTHER_LABELER`` every 45th), and Mastodon ``accounts/lookup``,
``accounts/:id/followers`` (Link header, next link only after a full page), ``accounts/:id/statuses``.

Faults (set attributes on ``server.faults`` while it runs; counts are consumed per request):
``rate_limit`` k x 429 with reset headers, ``errors_503`` k x 503, ``slow`` k x sleep ``slow_seconds``,
``truncate`` k x JSON cut in half, ``repeat_cursor`` / ``repeat_page`` (pagination bugs),
``remaining_zero`` k x a good answer that says the budget is spent.

Reusable: ``with FakePlatform(20000) as fp: fp.url`` or ``python tests/servers/fake_platform.py``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

TARGET_HANDLE = "target.bsky.social"
TARGET_DID = "did:plc:target0000000000000000"
MASTODON_USER = "target"
MASTODON_ID = "109000000000000001"
BASE_TIME = datetime(2023, 1, 1, tzinfo=UTC)
MODERATION = "did:plc:ar7c4by46qjdydhdevvrndac"
OTHER_LABELER = "did:plc:otherlabeler000000000000"
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid(when: datetime, clock_id: int = 0) -> str:
    """A TID record key for ``when`` (written here from the spec, independently of the package)."""
    value = (int(round(when.timestamp() * 1_000_000)) << 10) | clock_id
    return "".join(TID_ALPHABET[(value >> (5 * k)) & 31] for k in range(12, -1, -1))


def created_of(i: int) -> datetime:
    return BASE_TIME - timedelta(days=400) + timedelta(hours=i)


def followed_of(i: int) -> datetime:
    """The true follow time of follower i (one hour after its account was made)."""
    return created_of(i) + timedelta(hours=1)


def backdated(i: int) -> bool:
    return i > 0 and i % 997 == 0


@dataclass
class Faults:
    rate_limit: int = 0
    rate_limit_seconds: float = 2.0
    errors_503: int = 0
    slow: int = 0
    slow_seconds: float = 1.0
    truncate: int = 0
    repeat_cursor: bool = False
    repeat_page: bool = False
    remaining_zero: int = 0
    short_pages: bool = False  # every 3rd Bluesky page holds 60 (a filtered page), but is not the last
    only_paths: tuple[str, ...] = ()  # when set, faults apply only to paths containing one of these

    def take(self, name: str) -> bool:
        value = getattr(self, name)
        if value > 0:
            setattr(self, name, value - 1)
            return True
        return False


def did_of(i: int) -> str:
    return f"did:plc:f{i:023d}"


def mastodon_id(i: int) -> str:
    return str(110000000000000000 + i)


class FakePlatform:
    """The synthetic account and its HTTP server on 127.0.0.1 (random free port)."""

    def __init__(
        self, n: int = 20000, *, hidden: int = 0, gone: frozenset[int] | set[int] = frozenset(),
        token: str | None = None, hide_collections: bool = False, posts: int = 30, announce_hidden: bool = True,
        batch: tuple[int, int] | None = None,
    ) -> None:
        self.n = n
        # (first follower, size): a bought batch of thin profiles made within ~a day two years before,
        # following one after the other 3 s apart (Bluesky only)
        self.batch = batch
        self.hidden = hidden  # reported by followersCount but never listed (taken down)
        self.gone = frozenset(gone)  # listed, but getProfiles no longer returns them
        self.token = token
        self.hide_collections = hide_collections
        self.announce_hidden = announce_hidden  # False: an older server (< 4.3) without the field
        self.n_posts = posts
        self.faults = Faults()
        self.labelers_seen: list[str | None] = []  # atproto-accept-labelers of each Bluesky request
        self.auth_seen: list[tuple[str, str | None]] = []  # (path, Authorization) of every request
        self.calls: Counter[str] = Counter()
        self.requests = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakePlatform:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the synthetic truth ----------------------------------------------------------------------
    def bluesky_truth(self) -> set[str]:
        return {did_of(i) for i in range(self.n)}

    def mastodon_truth(self) -> set[str]:
        return {mastodon_id(i) for i in range(self.n)}

    def in_batch(self, i: int) -> bool:
        return self.batch is not None and self.batch[0] <= i < self.batch[0] + self.batch[1]

    def created(self, i: int) -> datetime:
        if self.batch is not None and self.in_batch(i):
            return created_of(self.batch[0]) - timedelta(days=700) + timedelta(minutes=5 * (i - self.batch[0]))
        return created_of(i)

    def followed(self, i: int) -> datetime:
        """The true follow time of follower i."""
        if self.batch is not None and self.in_batch(i):
            return followed_of(self.batch[0] - 1) + timedelta(seconds=3 * (i - self.batch[0] + 1))
        return followed_of(i) - (timedelta(days=30) if backdated(i) else timedelta(0))

    def follow_uri(self, i: int) -> str:
        when = self.followed(i)
        return f"at://{did_of(i)}/app.bsky.graph.follow/{tid(when, i % 1024)}"

    def labels_of(self, i: int, accepted: set[str]) -> list[dict[str, Any]]:
        did = did_of(i)
        out: list[dict[str, Any]] = []

        def add(src: str, val: str) -> None:
            out.append({"ver": 1, "src": src, "uri": did, "val": val, "cts": "2024-05-01T00:00:00.000Z"})

        if MODERATION in accepted:
            for every, val in ((50, "spam"), (70, "inauthentic"), (90, "!hide")):
                if i % every == 0:
                    add(MODERATION, val)
        if OTHER_LABELER in accepted and i % 45 == 0:
            add(OTHER_LABELER, "spam")
        if i % 60 == 0:  # self-labels come whatever labelers are asked for
            add(did, "bot")
        return out

    def profile_view(self, i: int, accepted: set[str] | None = None) -> dict[str, Any]:
        created = self.created(i)
        view: dict[str, Any] = {
            "did": did_of(i),
            "handle": f"user{i}.bsky.social",
            "displayName": f"User {i}" if i % 4 else "",
            "description": f"bio of user {i}" if i % 3 else "",
            "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did_of(i)}/bafk{i}@jpeg",
            "associated": {"chat": {"allowIncoming": "following"}},
            "labels": self.labels_of(i, {MODERATION} if accepted is None else accepted),
            "createdAt": created.isoformat().replace("+00:00", "Z"),
            "indexedAt": (created + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
            "viewer": {"muted": False, "blockedBy": False},
        }
        if i % 7 == 0 or self.in_batch(i):
            del view["avatar"]  # no avatar set: the field is absent
        if self.in_batch(i):
            view.update(displayName="", description="", handle=f"x{i * 7919 % 100000}q{i}.bsky.social")
        return view

    def profile_detailed(self, i: int, accepted: set[str] | None = None) -> dict[str, Any]:
        view = self.profile_view(i, accepted)
        view.update(
            followersCount=(i * 37) % 900, followsCount=(i * 53) % 3000 + (5000 if i % 50 == 0 else 0),
            postsCount=0 if i % 5 == 0 else (i * 11) % 700,
            banner=None, associated={"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False},
        )
        if view["banner"] is None:
            del view["banner"]
        if self.in_batch(i):  # follows thousands, followed by nobody, never posted
            view.update(followersCount=i % 3, followsCount=4000 + i % 500, postsCount=0)
        return view

    def target_profile(self) -> dict[str, Any]:
        return {"did": TARGET_DID, "handle": TARGET_HANDLE, "displayName": "Target", "followersCount": self.n + self.hidden,
                "followsCount": 10, "postsCount": self.n_posts, "createdAt": "2023-01-01T00:00:00.000Z", "labels": []}

    def account(self, i: int) -> dict[str, Any]:
        created = (BASE_TIME - timedelta(days=400) + timedelta(hours=i)).date()
        last = None if i % 5 == 0 else (BASE_TIME + timedelta(days=i % 600)).date().isoformat()
        host = "127.0.0.1"
        avatar = ("https://files.example/accounts/avatars/000/001/original/a.png" if i % 7
                  else f"https://{host}/avatars/original/missing.png")
        return {
            "id": mastodon_id(i), "username": f"user{i}", "acct": f"user{i}" if i % 2 else f"user{i}@remote.example",
            "display_name": f"User {i}", "locked": i % 13 == 0, "bot": i % 17 == 0, "discoverable": True,
            "group": False, "created_at": f"{created.isoformat()}T00:00:00.000Z",
            "note": f"<p>bio of user {i} &amp; friends</p>" if i % 3 else "",
            "url": f"https://{host}/@user{i}", "uri": f"https://{host}/users/user{i}",
            "avatar": avatar, "avatar_static": avatar, "header": f"https://{host}/headers/original/missing.png",
            "header_static": f"https://{host}/headers/original/missing.png",
            "followers_count": (i * 37) % 900, "following_count": (i * 53) % 3000,
            "statuses_count": 0 if i % 5 == 0 else (i * 11) % 700, "last_status_at": last,
            "hide_collections": None, "emojis": [],
            "fields": [{"name": "web", "value": f'<a href="https://site{i}.example">site</a>', "verified_at": None}]
            if i % 6 == 0 else [],
        }

    def target_account(self) -> dict[str, Any]:
        acc = self.account(0)
        acc.update(id=MASTODON_ID, username=MASTODON_USER, acct=MASTODON_USER, followers_count=self.n + self.hidden,
                   hide_collections=self.hide_collections if self.announce_hidden else None,
                   statuses_count=self.n_posts)
        return acc


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{offset}::{offset * 7919 % 1000003}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    return int(base64.urlsafe_b64decode(padded).decode().split("::")[0])


def _handler(fp: FakePlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            with fp.lock:
                truncate = _applies(fp, self.path) and status == 200 and fp.faults.take("truncate")
                zero = _applies(fp, self.path) and status == 200 and fp.faults.take("remaining_zero")
            if truncate:
                data = data[: len(data) // 2]
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Date", formatdate(time.time(), usegmt=True))
            headers = dict(headers or {})
            if zero:
                headers.update(_limit_headers(self.path, 0, 1.0))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            url = urlparse(self.path)
            query = parse_qs(url.query)
            with fp.lock:
                fp.requests += 1
                fp.calls[url.path] += 1
                fp.auth_seen.append((url.path, self.headers.get("Authorization")))
                if url.path.startswith("/xrpc/"):
                    fp.labelers_seen.append(self.headers.get("atproto-accept-labelers"))
                faults = fp.faults if _applies(fp, self.path) else Faults()
                slow = faults.take("slow")
                limited = faults.take("rate_limit")
                broken = faults.take("errors_503")
            if slow:
                time.sleep(fp.faults.slow_seconds)
            if limited:
                body = {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
                return self.send_json(429, body, _limit_headers(self.path, 0, fp.faults.rate_limit_seconds))
            if broken:
                return self.send_json(503, {"error": "ServiceUnavailable", "message": "try again"})
            try:
                if url.path.startswith("/xrpc/"):
                    return self.bluesky(url.path[len("/xrpc/"):], query)
                if url.path.startswith("/api/v1/"):
                    return self.mastodon(url.path[len("/api/v1/"):], query)
            except (KeyError, ValueError) as exc:
                return self.send_json(400, {"error": "InvalidRequest", "message": f"bad parameter: {exc}"})
            return self.send_json(404, {"error": "MethodNotImplemented"})

        # -- Bluesky ------------------------------------------------------------------------------
        def bluesky(self, nsid: str, q: dict[str, list[str]]) -> None:
            ok = _limit_headers("/xrpc/", 2999, 300.0)
            ok["atproto-content-labelers"] = ", ".join(sorted(self.accepted()))
            if nsid == "app.bsky.actor.getProfile":
                if q["actor"][0] not in (TARGET_HANDLE, TARGET_DID):
                    return self.send_json(400, {"error": "InvalidRequest", "message": "Profile not found"})
                return self.send_json(200, fp.target_profile(), ok)
            if nsid == "app.bsky.graph.getFollowers":
                limit = min(int(q.get("limit", ["50"])[0]), 100)
                cursor = q.get("cursor", [None])[0]
                offset = _offset(cursor) if cursor else 0
                take = 60 if fp.faults.short_pages and (offset // 100) % 3 == 1 else limit
                order = range(fp.n - 1 - offset, max(fp.n - 1 - offset - take, -1), -1)  # newest first
                if fp.faults.repeat_page and cursor:
                    order = range(fp.n - 1, max(fp.n - 1 - take, -1), -1)
                body: dict[str, Any] = {"subject": fp.target_profile(),
                                        "followers": [fp.profile_view(i, self.accepted()) for i in order]}
                nxt = offset + len(order)
                if nxt < fp.n:
                    body["cursor"] = cursor if (fp.faults.repeat_cursor and cursor) else _cursor(nxt)
                return self.send_json(200, body, ok)
            if nsid == "app.bsky.graph.getRelationships":
                if q["actor"][0] not in (TARGET_HANDLE, TARGET_DID):
                    return self.send_json(400, {"error": "InvalidRequest", "message": "Profile not found"})
                others = q.get("others", [])
                if len(others) > 30:
                    return self.send_json(400, {"error": "InvalidRequest", "message": "others must not have more than 30 elements"})
                rels: list[dict[str, Any]] = []
                for other in others:
                    i = int(other[len("did:plc:f"):]) if other.startswith("did:plc:f") else -1
                    if i < 0 or i >= fp.n or i in fp.gone:
                        rels.append({"$type": "app.bsky.graph.defs#notFoundActor", "actor": other, "notFound": True})
                    else:
                        rels.append({"$type": "app.bsky.graph.defs#relationship", "did": other, "followedBy": fp.follow_uri(i)})
                return self.send_json(200, {"actor": TARGET_DID, "relationships": rels}, ok)
            if nsid == "app.bsky.actor.getProfiles":
                actors = q["actors"]
                if len(actors) > 25:
                    return self.send_json(400, {"error": "InvalidRequest", "message": "actors must not have more than 25 elements"})
                out = []
                for actor in actors:
                    if actor.startswith("did:plc:f"):
                        i = int(actor[len("did:plc:f"):])
                        if i < fp.n and i not in fp.gone:
                            out.append(fp.profile_detailed(i, self.accepted()))
                return self.send_json(200, {"profiles": out}, ok)
            if nsid == "app.bsky.feed.getAuthorFeed":
                actor = q["actor"][0]
                limit = int(q.get("limit", ["50"])[0])
                if actor in (TARGET_HANDLE, TARGET_DID):
                    return self.send_json(200, self.target_feed(limit, q.get("cursor", [None])[0]), ok)
                i = int(actor[len("did:plc:f"):])
                if i % 23 == 0:
                    return self.send_json(400, {"error": "BlockedActor", "message": "Requester has blocked actor"})
                if i % 5 == 0:
                    return self.send_json(200, {"feed": []}, ok)
                when = (BASE_TIME + timedelta(days=i % 600)).isoformat().replace("+00:00", "Z")
                post = {"uri": f"at://{did_of(i)}/app.bsky.feed.post/3k{i}", "cid": f"bafy{i}",
                        "author": fp.profile_view(i), "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": when},
                        "replyCount": 0, "repostCount": 0, "likeCount": 1, "quoteCount": 0, "indexedAt": when, "labels": []}
                item: dict[str, Any] = {"post": post}
                if i % 11 == 0:
                    item["reason"] = {"$type": "app.bsky.feed.defs#reasonRepost", "by": fp.profile_view(i), "indexedAt": when}
                return self.send_json(200, {"feed": [item][:limit], "cursor": "next"}, ok)
            return self.send_json(400, {"error": "MethodNotImplemented", "message": nsid})

        def accepted(self) -> set[str]:
            """Labelers the request asks for (the AppView's default, Bluesky moderation, without the header)."""
            header = self.headers.get("atproto-accept-labelers")
            if header is None:
                return {MODERATION}
            return {part.split(";")[0].strip() for part in header.split(",") if part.strip()}

        def target_feed(self, limit: int, cursor: str | None) -> dict[str, Any]:
            start = _offset(cursor) if cursor else 0
            feed = []
            for k in range(start, min(start + limit, fp.n_posts)):
                when = (BASE_TIME + timedelta(days=600 - k)).isoformat().replace("+00:00", "Z")
                feed.append({"post": {"uri": f"at://{TARGET_DID}/app.bsky.feed.post/p{k}", "cid": f"c{k}",
                                      "author": {"did": TARGET_DID, "handle": TARGET_HANDLE},
                                      "record": {"text": f"post {k}", "createdAt": when}, "replyCount": k % 3,
                                      "repostCount": k % 5, "likeCount": 10 + k, "quoteCount": 0, "indexedAt": when}})
            body: dict[str, Any] = {"feed": feed}
            if start + limit < fp.n_posts:
                body["cursor"] = _cursor(start + limit)
            return body

        # -- Mastodon -----------------------------------------------------------------------------
        def mastodon(self, path: str, q: dict[str, list[str]]) -> None:
            if fp.token is not None and self.headers.get("Authorization") != f"Bearer {fp.token}":
                return self.send_json(401, {"error": "This API requires an authenticated user"})
            ok = _limit_headers("/api/v1/", 299, 300.0)
            parts = path.split("/")
            if parts[:2] == ["accounts", "lookup"]:
                if q["acct"][0].split("@")[0] != MASTODON_USER:
                    return self.send_json(404, {"error": "Record not found"})
                return self.send_json(200, fp.target_account(), ok)
            if len(parts) == 3 and parts[0] == "accounts" and parts[1] == MASTODON_ID and parts[2] == "followers":
                limit = min(int(q.get("limit", ["40"])[0]), 80)
                max_id = int(q["max_id"][0]) if "max_id" in q else None
                if fp.hide_collections:
                    return self.send_json(200, [], ok)
                top = fp.n - 1 if max_id is None else min(fp.n - 1, max_id - 1000 - 1)  # follow id = i + 1000
                if fp.faults.repeat_page and max_id is not None:
                    top = fp.n - 1
                order = list(range(top, max(top - limit, -1), -1))
                headers = dict(ok)
                if len(order) == limit:  # Mastodon: records_continue? is size == limit
                    last = order[-1] + 1000
                    if fp.faults.repeat_cursor and max_id is not None:
                        last = max_id
                    base = f"{fp.url}/api/v1/accounts/{MASTODON_ID}/followers"
                    headers["Link"] = (f'<{base}?{urlencode({"limit": limit, "max_id": last})}>; rel="next", '
                                       f'<{base}?{urlencode({"limit": limit, "since_id": order[0] + 1000})}>; rel="prev"')
                return self.send_json(200, [fp.account(i) for i in order], headers)
            if len(parts) == 3 and parts[0] == "accounts" and parts[2] == "statuses":
                limit = min(int(q.get("limit", ["20"])[0]), 40)
                top = int(q["max_id"][0]) if "max_id" in q else fp.n_posts
                ks = list(range(top - 1, max(top - 1 - limit, -1), -1))
                statuses = [{"id": str(k), "created_at": (BASE_TIME + timedelta(days=k)).isoformat().replace("+00:00", ".000Z"),
                             "visibility": "public", "replies_count": k % 3, "reblogs_count": k % 5,
                             "favourites_count": 10 + k, "quotes_count": 0, "in_reply_to_id": None, "reblog": None,
                             "content": f"<p>post {k}</p>"} for k in ks]
                headers = dict(ok)
                if len(ks) == limit and ks[-1] > 0:
                    headers["Link"] = f'<{fp.url}/api/v1/accounts/{MASTODON_ID}/statuses?{urlencode({"limit": limit, "max_id": ks[-1]})}>; rel="next"'
                return self.send_json(200, statuses, headers)
            return self.send_json(404, {"error": "Record not found"})

    return Handler


def _applies(fp: FakePlatform, path: str) -> bool:
    return not fp.faults.only_paths or any(p in path for p in fp.faults.only_paths)


def _limit_headers(path: str, remaining: int, reset_in: float) -> dict[str, str]:
    reset = time.time() + reset_in
    if path.startswith("/api/v1/"):  # Mastodon: X- prefix, ISO 8601 reset
        iso = datetime.fromtimestamp(reset, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": iso}
    return {"RateLimit-Limit": "3000", "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(int(reset + 0.999)), "RateLimit-Policy": "3000;w=300"}


if __name__ == "__main__":  # python tests/servers/fake_platform.py [N]
    import sys

    with FakePlatform(int(sys.argv[1]) if len(sys.argv) > 1 else 20000) as platform:
        print(platform.url, flush=True)
        try:
            platform.thread.join()
        except KeyboardInterrupt:
            pass
