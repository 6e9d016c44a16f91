"""Likers audit: who liked (and reposted) one post, labelled like followers.

Bluesky: ``app.bsky.feed.getLikes`` and ``app.bsky.feed.getRepostedBy`` (100 per page, opaque cursor),
then ``app.bsky.actor.getProfiles`` 25 at a time (the like list carries no counts). Mastodon:
``/api/v1/statuses/:id/favourited_by`` and ``reblogged_by`` (80 per page, ``Link`` pagination); the
Account entities already carry counts, so there is no hydration step.

Same rules as follower collection (``followaudit.collect``): every page and its cursor are written in
one transaction, so an interrupted run resumes where it stopped when the same command is run again;
a repeating cursor or page stops with ``PaginationError``; waits and retries go through the one HTTP
client; with ``--sample``/``--precision`` a seeded uniform random sample of the distinct engagers is
labelled (the whole list is still enumerated, so "does not follow" is counted over everyone).

A like is itself activity: a liker's ``last_active_at`` is at least the like's ``createdAt``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from ..classify import label_followers
from ..classify.rules import DEFAULT_INACTIVE_DAYS
from ..errors import CollectError, InputError, NotFoundError, PaginationError
from ..estimate.intervals import estimate_shares, wilson
from ..estimate.sample_design import check_sampling, draw_sample, sample_size
from ..review import likers_subject, reviewed_summary
from ..schema import SampleDesign
from ..sources import bluesky, mastodon
from ..sources.collect import NullProgress, ProgressSink
from ..sources.http import ApiClient
from ..store.workspace import Snapshot, Store

# ``audit.audit_frame``: labels a canonical frame and builds its Report (passed in by the audit
# pipeline and the CLI; this module cannot import audit.py, which imports the reach sections).
Auditor = Callable[..., Any]

LIKES_PAGE = 100
MASTODON_PAGE = 80
MASTODON_CHUNK = 5000
TOP_REASONS = 6
_BSKY_URL = re.compile(r"^https?://(?:[^/]+)/profile/(?P<actor>[^/]+)/post/(?P<rkey>[A-Za-z0-9._~:-]+)/?$")
_AT_URI = re.compile(r"^at://(?P<actor>[^/]+)/app\.bsky\.feed\.post/(?P<rkey>[A-Za-z0-9._~:-]+)$")
_STATUS_URL = re.compile(r"^https?://(?P<host>[^/\s]+)/(?:@(?P<user>[^/\s]+)|users/(?P<user2>[^/\s]+)/statuses)/(?P<id>\d+)/?$")


@dataclass
class LikersOptions:
    """What to collect. Equal options on the same post resume the same likers audit."""

    sample: int | None = None
    precision: float | None = None
    seed: int | None = None
    reposts: bool = True
    fresh: bool = False

    def check(self) -> None:
        check_sampling(self.sample, self.precision)


def parse_bluesky_post(text: str) -> tuple[str, str]:
    """``https://bsky.app/profile/<actor>/post/<rkey>`` or an at:// post URI -> (actor, rkey)."""
    value = text.strip()
    match = _BSKY_URL.match(value) or _AT_URI.match(value)
    if not match:
        raise InputError(f"{text!r} is not a Bluesky post URL", "give e.g. https://bsky.app/profile/alice.bsky.social/post/3k… or at://did:plc:…/app.bsky.feed.post/3k…")
    return match.group("actor"), match.group("rkey")


def parse_mastodon_status(text: str) -> tuple[str, str]:
    """``https://instance/@user/123`` (or ``/users/user/statuses/123``) -> (instance, status id)."""
    match = _STATUS_URL.match(text.strip())
    if not match:
        raise InputError(f"{text!r} is not a Mastodon status URL", "give e.g. https://mastodon.social/@user/110000000000000000")
    return match.group("host").lower(), match.group("id")


def _key(platform: str, target: str, api_base: str, options: LikersOptions) -> str:
    ident = {"platform": platform, "target": target, "api_base": api_base.rstrip("/"), **asdict(options)}
    ident.pop("fresh")
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def _open(store: Store, options: LikersOptions, *, platform: str, target: str, api_base: str, clock_now: datetime, **meta: Any) -> tuple[int, bool]:
    """(likers_id, already complete) — resumes an unfinished audit with the same options."""
    key = _key(platform, target, api_base, options)
    found = store.find_likers_audit(key)
    if found is not None and not (options.fresh and found["status"] == "complete"):
        return int(found["likers_id"]), found["status"] == "complete"
    settings = {k: v for k, v in asdict(options).items() if k != "fresh"}
    settings["seed"] = options.seed if options.seed is not None else secrets.randbelow(2**31)
    likers_id = store.create_likers_audit(
        platform=platform, post_uri=target, api_base=api_base, resume_key=key, phase="like",
        settings=settings, taken_at=clock_now, status="collecting", **meta,
    )
    return likers_id, False


def _enumerate(
    store: Store, likers_id: int, kind: str, next_phase: str, fetch: Any, progress: ProgressSink
) -> None:
    """Page one list (likes or reposts) from the stored cursor to the end; one transaction per page."""
    state = store.likers_audit(likers_id)
    if state["phase"] != kind:
        return
    known = store.engagers(likers_id).filter(pl.col("kind") == kind)
    seen = set(known["engager_id"].to_list())
    position = known.height
    cursor = state["cursor"]
    cursors: set[str] = set()
    progress.start(f"listing {'likers' if kind == 'like' else 'reposters'}", None)
    pages = 0
    while True:
        items, nxt = fetch(cursor)
        if nxt is not None and (nxt == cursor or nxt in cursors):
            raise PaginationError(f"the server returned cursor {str(nxt)[:40]!r} again: pagination does not advance")
        ids = [i[0] for i in items]
        repeated = seen.intersection(ids)
        if repeated or len(set(ids)) != len(ids):
            raise PaginationError(f"a page of {kind}s repeats engagers already listed (e.g. {next(iter(repeated), ids[0])}); stopped")
        frame = pl.DataFrame(
            {"position": list(range(position, position + len(items))), "engager_id": ids,
             "handle": [i[1] for i in items], "engaged_at": [i[2] for i in items], "profile": [i[3] for i in items]},
            schema={"position": pl.Int64, "engager_id": pl.Utf8, "handle": pl.Utf8, "engaged_at": pl.Utf8, "profile": pl.Utf8},
        ).with_columns(bluesky.ts(pl.col("engaged_at")).alias("engaged_at"))
        store.save_engager_page(likers_id, frame, kind=kind, cursor_out=nxt, next_phase=kind if nxt else next_phase)
        seen.update(ids)
        if nxt is not None:
            cursors.add(nxt)
        cursor, position, pages = nxt, position + len(items), pages + 1
        progress.update(pages, items=position)
        if nxt is None:
            return


def _sample(store: Store, likers_id: int) -> None:
    state = store.likers_audit(likers_id)
    if state["phase"] != "sample":
        return
    people = (
        store.engagers(likers_id).with_columns(pl.when(pl.col("kind") == "like").then(0).otherwise(1).alias("_k"))
        .sort(["_k", "position"]).unique("engager_id", keep="first", maintain_order=True)["engager_id"].to_list()
    )
    population = len(people)
    settings = state["settings"]
    want = settings.get("sample")
    if settings.get("precision") is not None:
        want = sample_size(float(settings["precision"]), population)
    if want is None or want >= population:
        store.save_engager_sample(likers_id, None, SampleDesign("full", population, population, None))
        return
    seed = int(settings["seed"])
    chosen = [people[i] for i in draw_sample(population, int(want), seed)]
    store.save_engager_sample(likers_id, chosen, SampleDesign("uniform", int(want), population, seed))


def _finish(store: Store, likers_id: int) -> None:
    phase = store.likers_audit(likers_id)["phase"]
    if phase != "hydrate":  # every earlier phase returns only when done; anything else is a bug
        raise CollectError(f"likers audit {likers_id} cannot finish from phase {phase!r}")
    store.finish_likers_audit(likers_id)


def _like_times(store: Store, likers_id: int) -> pl.DataFrame:
    return (
        store.engagers(likers_id).group_by("engager_id")
        .agg(pl.col("engaged_at").max().alias("liked_at"))
    )


def _with_activity(rows: pl.DataFrame, likes: pl.DataFrame) -> pl.DataFrame:
    """A like is activity: last_active_at = max(known last activity, like time)."""
    joined = rows.join(likes.rename({"engager_id": "follower_id"}), on="follower_id", how="left")
    current = joined["last_active_at"] if "last_active_at" in joined.columns else None
    latest = pl.max_horizontal(pl.col("last_active_at"), pl.col("liked_at")) if current is not None else pl.col("liked_at")
    return joined.with_columns(latest.alias("last_active_at")).drop("liked_at")


# -- Bluesky -----------------------------------------------------------------------------------------
def collect_likers_bluesky(
    store: Store, post_url: str, options: LikersOptions, *, api: ApiClient, api_base: str,
    progress: ProgressSink | None = None,
) -> int:
    """Collect (or resume) the likers and reposters of a Bluesky post; returns the likers audit id."""
    options.check()
    progress = progress or NullProgress()
    client = bluesky.BlueskyClient(api)
    actor, rkey = parse_bluesky_post(post_url)
    author = client.profile(bluesky.normalize_actor(actor))
    did, handle = author["did"], author.get("handle") or author["did"]
    uri = f"at://{did}/app.bsky.feed.post/{rkey}"
    now = datetime.fromtimestamp(api.clock.now(), UTC)
    reported = _bluesky_counts(api, uri)
    likers_id, complete = _open(
        store, options, platform="bluesky", target=uri, api_base=api_base, clock_now=now, account=handle,
        post_url=post_url, likes_reported=reported[0], reposts_reported=reported[1],
    )
    if complete:
        return likers_id

    def likes(cursor: str | None) -> tuple[list[tuple[str, str | None, str | None, None]], str | None]:
        params: dict[str, Any] = {"uri": uri, "limit": LIKES_PAGE}
        if cursor:
            params["cursor"] = cursor
        data = api.get("/xrpc/app.bsky.feed.getLikes", params, error=bluesky._error).data
        if not isinstance(data, dict) or not isinstance(data.get("likes"), list):
            raise CollectError("getLikes returned no 'likes' list", "check --api-base points at a Bluesky AppView")
        rows = [(lk["actor"]["did"], lk["actor"].get("handle"), lk.get("createdAt") or lk.get("indexedAt"), None) for lk in data["likes"]]
        return rows, data.get("cursor") or None

    def reposts(cursor: str | None) -> tuple[list[tuple[str, str | None, None, None]], str | None]:
        params: dict[str, Any] = {"uri": uri, "limit": LIKES_PAGE}
        if cursor:
            params["cursor"] = cursor
        data = api.get("/xrpc/app.bsky.feed.getRepostedBy", params, error=bluesky._error).data
        if not isinstance(data, dict) or not isinstance(data.get("repostedBy"), list):
            raise CollectError("getRepostedBy returned no 'repostedBy' list", "check --api-base points at a Bluesky AppView")
        return [(p["did"], p.get("handle"), None, None) for p in data["repostedBy"]], data.get("cursor") or None

    after_likes = "repost" if store.likers_audit(likers_id)["settings"].get("reposts", True) else "sample"
    _enumerate(store, likers_id, "like", after_likes, likes, progress)
    _enumerate(store, likers_id, "repost", "sample", reposts, progress)
    _sample(store, likers_id)
    if store.likers_audit(likers_id)["phase"] == "hydrate":
        liked = _like_times(store, likers_id)
        pending = store.pending_engagers(likers_id)
        batches = math.ceil(pending.height / bluesky.PROFILES_PER_CALL)
        progress.start("hydrating profiles", batches)
        for i, batch in enumerate(pending.iter_slices(bluesky.PROFILES_PER_CALL)):
            wanted = batch["engager_id"].to_list()
            profiles = [p for p in client.profiles(wanted) if isinstance(p, dict) and p.get("did") in set(wanted)]
            profiles = list({p["did"]: p for p in profiles}.values())
            rows = bluesky.followers_frame(profiles, account=handle, observed_at=datetime.fromtimestamp(api.clock.now(), UTC))
            store.save_engager_rows(likers_id, _with_activity(rows, liked), wanted)
            progress.update(i + 1, eta=api.eta(batches - i - 1))
    _finish(store, likers_id)
    return likers_id


def _bluesky_counts(api: ApiClient, uri: str) -> tuple[int | None, int | None]:
    """likeCount and repostCount from getPosts (None when the server does not answer it)."""
    reply = api.get("/xrpc/app.bsky.feed.getPosts", {"uris": [uri]}, error=bluesky._error, allow=(400, 404, 501))
    posts = (reply.data or {}).get("posts") if isinstance(reply.data, dict) else None
    if not posts:
        if reply.data is not None and isinstance(reply.data, dict) and reply.data.get("posts") == []:
            raise NotFoundError(f"Bluesky has no post {uri}", "check the post URL; deleted posts cannot be audited")
        return None, None
    return posts[0].get("likeCount"), posts[0].get("repostCount")


# -- Mastodon ----------------------------------------------------------------------------------------
def collect_likers_mastodon(
    store: Store, status_url: str, options: LikersOptions, *, api: ApiClient, api_base: str,
    progress: ProgressSink | None = None,
) -> int:
    """Collect (or resume) who favourited and boosted a Mastodon status; returns the likers audit id."""
    options.check()
    progress = progress or NullProgress()
    host, status_id = parse_mastodon_status(status_url)
    instance = host.split(":")[0]  # handles never carry a port
    status = api.get(f"/api/v1/statuses/{status_id}", error=mastodon._error).data
    if not isinstance(status, dict) or "account" not in status:
        raise CollectError(f"the server returned no status {status_id}", "check the status URL and --api-base")
    acct = status["account"].get("acct") or status["account"].get("username")
    account = acct if "@" in acct else f"{acct}@{instance}"
    now = datetime.fromtimestamp(api.clock.now(), UTC)
    likers_id, complete = _open(
        store, options, platform="mastodon", target=f"{instance}/statuses/{status_id}", api_base=api_base,
        clock_now=now, account=account, post_url=status_url,
        likes_reported=status.get("favourites_count"), reposts_reported=status.get("reblogs_count"),
    )
    if complete:
        return likers_id

    def pager(endpoint: str) -> Any:
        def fetch(cursor: str | None) -> tuple[list[tuple[str, str | None, None, str]], str | None]:
            if cursor is None:
                reply = api.get(f"/api/v1/statuses/{status_id}/{endpoint}", {"limit": MASTODON_PAGE}, error=mastodon._error)
            else:
                import httpx

                if httpx.URL(cursor).host != api.http.base_url.host:  # never send a token elsewhere
                    raise CollectError(f"the server's next-page link leaves {api.http.base_url.host}: {cursor}", "")
                reply = api.get(cursor, error=mastodon._error)
            if not isinstance(reply.data, list):
                raise CollectError(f"{endpoint} did not return a list", "check --api-base points at a Mastodon server")
            rows = [
                (str(a["id"]), _acct(a, instance), None, json.dumps(a, separators=(",", ":"), ensure_ascii=False))
                for a in reply.data
            ]
            return rows, reply.response.links.get("next", {}).get("url")
        return fetch

    after_likes = "repost" if store.likers_audit(likers_id)["settings"].get("reposts", True) else "sample"
    _enumerate(store, likers_id, "like", after_likes, pager("favourited_by"), progress)
    _enumerate(store, likers_id, "repost", "sample", pager("reblogged_by"), progress)
    _sample(store, likers_id)
    if store.likers_audit(likers_id)["phase"] == "hydrate":
        while True:  # no calls: the Account entities stored while listing carry everything
            pending = store.pending_engagers(likers_id)
            if not pending.height:
                break
            chunk = pending.head(MASTODON_CHUNK)
            rows = mastodon.followers_frame(chunk["profile"], account=account, instance=instance)
            store.save_engager_rows(likers_id, rows.with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("observed_at")), chunk["engager_id"].to_list())
    _finish(store, likers_id)
    return likers_id


def _acct(account: dict[str, Any], instance: str) -> str | None:
    acct = account.get("acct")
    if not acct:
        return None
    return acct if "@" in acct else f"{acct}@{instance}"


# -- the audit of a collected post ------------------------------------------------------------------
def follower_snapshot_for(store: Store, platform: str, account: str | None) -> int | None:
    """The latest complete follower snapshot of the same account and platform, if any."""
    if not account:
        return None
    row = store.row(
        """SELECT snapshot_id FROM snapshots WHERE platform = ? AND lower(account) = lower(?)
           AND coalesce(status, 'complete') = 'complete' ORDER BY taken_at DESC, snapshot_id DESC LIMIT 1""",
        [platform, account.lstrip("@")],
    )
    return int(row["snapshot_id"]) if row else None


def not_following(store: Store, likers_id: int, platform: str, account: str | None, confidence: float) -> dict[str, Any]:
    """How many distinct engagers are not in the account's latest follower snapshot."""
    snap_id = follower_snapshot_for(store, platform, account)
    if snap_id is None:
        return {"available": False, "missing": f"a follower snapshot of {account} in this workspace (collect or import its followers first)"}
    snap = store.snapshot(snap_id)
    enumerated = store.has_table("collect_ids") and bool(
        (store.row("SELECT count(*) AS n FROM collect_ids WHERE snapshot_id = ?", [snap_id]) or {}).get("n")
    )
    if snap.design.kind != "full" and not enumerated:
        return {"available": False, "followers_snapshot": snap_id,
                "missing": f"snapshot {snap_id} holds only a sample of the followers; whether an engager follows cannot be told"}
    # in SQL: the follower list may hold millions of ids
    if platform == "mastodon":  # ids are per instance: compare full handles (user@instance)
        key, known = "lower(handle)", "SELECT lower(handle) AS k FROM followers WHERE snapshot_id = ? AND handle IS NOT NULL"
        params: list[Any] = [likers_id, snap_id]
        if enumerated:  # listed accounts carry acct: user (local) or user@remote
            home = (account or "").rsplit("@", 1)[-1].lower()
            known += """ UNION SELECT lower(CASE WHEN handle LIKE '%@%' THEN handle ELSE handle || '@' || ? END)
                         FROM collect_ids WHERE snapshot_id = ? AND handle IS NOT NULL"""
            params += [home, snap_id]
    else:
        key, known = "engager_id", "SELECT follower_id AS k FROM followers WHERE snapshot_id = ?"
        params = [likers_id, snap_id]
        if enumerated:
            known += " UNION SELECT follower_id FROM collect_ids WHERE snapshot_id = ?"
            params.append(snap_id)
    row = store.row(
        f"""WITH people AS (SELECT engager_id, any_value({key}) AS k FROM engagers WHERE likers_id = ? GROUP BY engager_id),
                 known AS ({known})
            SELECT count(*) AS n, count(*) FILTER (WHERE k IS NULL OR k NOT IN (SELECT k FROM known)) AS outside FROM people""",
        params,
    ) or {"n": 0, "outside": 0}
    n, k = int(row["n"]), int(row["outside"])
    low, high = wilson(k, n, confidence) if n else (0.0, 1.0)
    return {"available": True, "followers_snapshot": snap_id, "engagers": n, "not_following": k,
            "share": k / n if n else None, "low": low, "high": high, "method": "Wilson score interval"}


def likers_section(
    store: Store, likers_id: int, *, method: str = "rules", confidence: float = 0.95,
    inactive_days: int = DEFAULT_INACTIVE_DAYS, auditor: Auditor | None = None,
) -> dict[str, Any]:
    """Label the engagers of a collected post and summarise: shares with intervals, non-followers.

    With ``auditor`` (``audit.audit_frame``) the engagers get a Report of their own and the shares
    are its headline (corrected for the model's error, or withheld when the profiles carry too
    little), the same function every other output takes its shares from. Without it, the raw label
    shares.
    """
    audit = store.likers_audit(likers_id)
    if audit["status"] != "complete":
        return {"available": False, "likers_id": likers_id, "missing": "the likers collection is unfinished: run the same `followaudit likers` command again to resume"}
    engagers = store.engagers(likers_id)
    rows = store.engager_rows(likers_id, [c for c in store.engager_rows(likers_id).columns if c != "raw"])
    design = SampleDesign(audit["sample_kind"] or "full", audit["sample_n"], audit["sample_population"], audit["sample_seed"])
    base: dict[str, Any] = {
        "likers_id": likers_id, "platform": audit["platform"], "account": audit["account"],
        "post": audit["post_uri"], "post_url": audit["post_url"],
        "taken_at": audit["taken_at"].isoformat() if audit["taken_at"] else None,
        "likes": int((engagers["kind"] == "like").sum()), "reposts": int((engagers["kind"] == "repost").sum()),
        "likes_reported": audit["likes_reported"], "reposts_reported": audit["reposts_reported"],
        "engagers": engagers["engager_id"].n_unique(),
        "sample_design": {"kind": design.kind, "n": design.n, "population": design.population, "seed": design.seed,
                          "description": "all engagers" if design.kind == "full" else design.describe() + " engagers"},
    }
    if rows.height == 0:
        return {"available": False, **base, "missing": "no engager could be labelled (the post has no likes or reposts, or their profiles are gone)"}
    extra: dict[str, Any] = {}
    if auditor is not None:
        snap = Snapshot(
            snapshot_id=0, platform=audit["platform"], account=audit["account"], source=audit["post_uri"], source_hash=None,
            taken_at=audit["taken_at"], tool_version=None, design=design, n_followers=rows.height,
            settings={"observed": {"source": "collection", "detail": "when the engagers were collected"}},
        )
        result = auditor(rows, snap, method=method, inactive_days=inactive_days, confidence=confidence)
        report = result.report
        if report.withheld:
            return {"available": False, **base, "missing": report.withheld, "evidence": report.evidence}
        labels, shares = result.labels, report.headline_shares()
        extra = {"evidence": report.evidence, "raw_shares": {
            k: {"share": s.share, "low": s.low, "high": s.high, "count": s.count, "method": s.method} for k, s in report.shares.items()}}
    else:
        labels = label_followers(rows, method=method, as_of=audit["taken_at"], inactive_days=inactive_days, platform=audit["platform"])
        shares = estimate_shares(labels, confidence, design)
    reasons = (
        labels.filter(pl.col("label") != "real").select(pl.col("reasons").explode()).drop_nulls()
        .group_by("reasons").len().sort(["len", "reasons"], descending=[True, False]).head(TOP_REASONS)
    )
    sampled = int(engagers.filter(pl.col("sampled"))["engager_id"].n_unique())
    # A person's review of a random sample of the engagers (`followaudit review LIKERS_ID --likers`)
    reviewed, _ = reviewed_summary(
        store, likers_subject(store, likers_id), {k: s.count for k, s in shares.items()}, method=method,
        confidence=confidence, predicted=labels.select("follower_id", pl.col("label").alias("predicted")),
    )
    return {
        "available": True, **base,
        "reviewed": reviewed,
        "labelled": labels.height,
        "profiles_missing": sampled - rows.height,
        "method": method,
        "shares": {k: {"share": s.share, "low": s.low, "high": s.high, "count": s.count, "method": s.method} for k, s in shares.items()},
        "top_reasons": [{"reason": r, "count": int(c)} for r, c in reasons.iter_rows()],
        "not_following": not_following(store, likers_id, audit["platform"], audit["account"], confidence),
        "note": "a like is activity: likers count as active at least since their like",
        **extra,
    }


def latest_likers_section(store: Store, account: str | None, platform: str | None, **kwargs: Any) -> dict[str, Any]:
    """The report's ``likers`` section: the newest complete likers audit of the account."""
    audits = store.likers_audits(account, platform) if account else pl.DataFrame()
    if audits.height == 0:
        return {"available": False, "missing": "a likers audit of one of the account's posts: `followaudit likers bluesky POST_URL` or `followaudit likers mastodon STATUS_URL`"}
    section = likers_section(store, int(audits["likers_id"][0]), **kwargs)
    section["audits_of_account"] = audits.height
    return section


def store_likers_frame(
    store: Store, engagers: pl.DataFrame, *, platform: str, account: str, post_uri: str,
    taken_at: datetime, source: str = "offline",
) -> int:
    """Store an already-known list of engagers (canonical columns + ``kind``, ``engaged_at``) as a
    complete likers audit (used by the demo, and for engagers exported from elsewhere)."""
    people = engagers.unique("follower_id", keep="first", maintain_order=True)
    likers_id = store.create_likers_audit(
        platform=platform, account=account, post_uri=post_uri, post_url=None, api_base=source, resume_key=None,
        phase="hydrate", settings={"source": source}, taken_at=taken_at, status="collecting",
        sample_kind="full", sample_n=people.height, sample_population=people.height,
        likes_reported=int((engagers["kind"] == "like").sum()), reposts_reported=int((engagers["kind"] == "repost").sum()),
    )
    for kind in ("like", "repost"):
        part = engagers.filter(pl.col("kind") == kind)
        page = part.select(
            pl.int_range(0, pl.len(), dtype=pl.Int64).alias("position"), pl.col("follower_id").alias("engager_id"),
            "handle", pl.col("engaged_at").cast(pl.Datetime("us", "UTC")), pl.lit(None, pl.Utf8).alias("profile"),
        )
        store.save_engager_page(likers_id, page, kind=kind, cursor_out=None, next_phase="hydrate")
    store.save_engager_sample(likers_id, None, SampleDesign("full", people.height, people.height, None))
    likes = engagers.group_by("follower_id").agg(pl.col("engaged_at").max().alias("liked_at")).rename({"follower_id": "engager_id"})
    rows = _with_activity(people.drop("kind", "engaged_at"), likes)
    store.save_engager_rows(likers_id, rows, people["follower_id"].to_list())
    store.finish_likers_audit(likers_id)
    return likers_id
