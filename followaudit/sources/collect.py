"""Live collection from Bluesky and Mastodon into a resumable snapshot.

Phases, each checkpointed in the store (``collect_state.phase``):

1. **enumerate** — page the follower list; each page and its cursor land in ONE transaction
   (``Store.save_page``), so a crash at any point resumes from the last committed cursor with no
   follower lost or duplicated. A cursor that repeats, or a page that repeats followers, stops the
   loop with ``PaginationError`` instead of spinning.
2. **sample** — with ``--sample``/``--precision``, draw a seeded uniform random sample of n out of
   the M enumerated followers (never "the latest n"); the design goes into the snapshot.
3. **hydrate** — Bluesky: ``getProfiles`` 25 at a time for the sample (plus one ``getAuthorFeed``
   per follower with ``--activity``); Mastodon: the Account entities from step 1 already have
   everything. Each batch is one transaction.
3b. **follow times** (Bluesky) — ``getRelationships`` 30 at a time for the stored followers: the
   key of each follow record is a TID that dates the follow. On by default when at most
   ``FOLLOW_TIMES_DEFAULT_MAX`` followers are stored (``--follow-times/--no-follow-times``).
4. **posts** — optionally the account's N most recent posts with their counts.
5. **finish** — the snapshot becomes 'complete'; it then looks exactly like an imported one.

Requests for an account of M followers and a sample of n (no retries):
Bluesky ``1 + ceil(M/100) + ceil(n/25) [+ ceil(s/30) with follow times, s = profiles stored]
[+ n with --activity] [+ ceil(N/100)+ with --posts N]``;
Mastodon ``1 + floor(M/80) + 1 [+ ceil(N/40)+ with --posts N]`` (the server only omits the next
link after a short page, so the list ends with one short or empty page).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl

from ..errors import HiddenFollowersError, InputError, PaginationError
from ..estimate.sample_design import check_sampling, draw_sample, sample_size
from ..schema import SampleDesign
from ..store.workspace import Store
from . import bluesky, mastodon
from .http import ApiClient

PLATFORM_PAGE = {"bluesky": bluesky.PAGE_SIZE, "mastodon": mastodon.PAGE_SIZE}
MASTODON_CHUNK = 5000  # local "hydration" of stored Account JSON, rows per transaction
# Exact follow times cost ceil(n/30) more requests (+83% over hydration's ceil(n/25)); below this
# many followers that is at most 334 requests (under a minute at the default pace), so it is on.
FOLLOW_TIMES_DEFAULT_MAX = 10_000


@dataclass
class CollectOptions:
    """What to collect. Equal options on the same account resume the same snapshot."""

    sample: int | None = None
    precision: float | None = None
    seed: int | None = None
    posts: int = 0
    activity: bool = False
    fresh: bool = False
    follow_times: bool | None = None  # None: on when at most FOLLOW_TIMES_DEFAULT_MAX are stored
    labelers: tuple[str, ...] = ()  # Bluesky labelers asked for besides Bluesky's moderation

    def check(self) -> None:
        check_sampling(self.sample, self.precision)
        bluesky.labeler_header(self.labelers)  # a bad DID fails before any request
        if self.posts < 0:
            raise InputError(f"--posts {self.posts} must not be negative")


@dataclass
class CollectResult:
    snapshot_id: int
    platform: str
    account: str
    followers_reported: int | None
    enumerated: int
    stored: int
    missing: int
    design: SampleDesign
    posts: int
    calls: dict[str, int] = field(default_factory=dict)
    waited: float = 0.0
    resumed: bool = False
    already_complete: bool = False
    follow_times: int = 0  # stored followers with an exact follow time

    @property
    def gap(self) -> int | None:
        """Followers the account reports but the list did not yield (removed, hidden, taken down)."""
        if self.followers_reported is None:
            return None
        return self.followers_reported - self.enumerated


class ProgressSink(Protocol):
    """Where progress goes (the CLI draws a rich bar; the library default draws nothing)."""

    def start(self, phase: str, total: int | None, done: int = 0) -> None: ...

    def update(self, done: int, *, items: int | None = None, eta: float | None = None) -> None: ...

    def wait(self, seconds: float, reason: str) -> None: ...

    def warn(self, message: str) -> None: ...


class NullProgress:
    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        pass

    def update(self, done: int, *, items: int | None = None, eta: float | None = None) -> None:
        pass

    def wait(self, seconds: float, reason: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


def resume_key(platform: str, target_id: str, api_base: str, options: CollectOptions) -> str:
    ident = {"platform": platform, "target": target_id, "api_base": api_base.rstrip("/"), **asdict(options)}
    ident.pop("fresh")
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def _now(api: ApiClient) -> datetime:
    return datetime.fromtimestamp(api.clock.now(), UTC)


@dataclass
class _Job:
    """One collection in progress: the parts both platforms share."""

    store: Store
    api: ApiClient
    progress: ProgressSink
    snapshot_id: int
    platform: str
    account: str
    reported: int | None
    settings: dict[str, Any]

    def state(self) -> dict[str, Any]:
        return self.store.collect_state(self.snapshot_id)

    def enumerate(
        self,
        fetch: Callable[[str | None], tuple[list[dict[str, Any]], str | None]],
        ids: Callable[[list[dict[str, Any]]], tuple[list[str], list[str | None], list[str] | None]],
    ) -> None:
        """Page the follower list from the stored cursor until the server gives no next cursor."""
        state = self.state()
        if state["phase"] != "enumerate":
            return
        cursor, pages, position = state["cursor"], int(state["pages"]), int(state["enumerated"])
        # ~100 bytes per listed follower; keeps the repeat check O(page) however long the list
        seen = set(self.store.collected_ids(self.snapshot_id)["follower_id"].to_list())
        cursors = set(self.store.collected_cursors(self.snapshot_id))
        if pages and cursor is None:
            raise PaginationError(f"snapshot {self.snapshot_id} has pages but no cursor to resume from")
        page_size = PLATFORM_PAGE[self.platform]
        total = math.ceil((self.reported or 0) / page_size) or None
        self.progress.start("listing followers", total, pages)
        while True:
            items, nxt = fetch(cursor)
            observed = _now(self.api)
            follower_ids, handles, profiles = ids(items)
            repeated = seen.intersection(follower_ids)
            if repeated or len(set(follower_ids)) != len(follower_ids):
                example = next(iter(repeated)) if repeated else follower_ids[0]
                raise PaginationError(
                    f"page {pages + 1} repeats {max(len(repeated), 1)} follower(s) already listed (e.g. {example}); stopped"
                )
            if nxt is not None and (nxt == cursor or nxt in cursors):
                raise PaginationError(
                    f"the server returned cursor {nxt[:40]!r} again after page {pages + 1}: pagination does not advance"
                )
            if pages == 0 and not items and nxt is None and (self.reported or 0) > 0:
                self.store.drop_collection(self.snapshot_id)
                raise HiddenFollowersError(
                    f"{self.account} reports {self.reported:,} followers but the server lists none",
                    None if self.platform == "mastodon" else "the listed followers may all be taken down or blocked",
                )
            frame = pl.DataFrame(
                {
                    "position": list(range(position, position + len(follower_ids))),
                    "follower_id": follower_ids,
                    "handle": handles,
                    "observed_at": [observed] * len(follower_ids),
                    "profile": profiles if profiles is not None else [None] * len(follower_ids),
                },
                schema={"position": pl.Int64, "follower_id": pl.Utf8, "handle": pl.Utf8,
                        "observed_at": pl.Datetime("us", "UTC"), "profile": pl.Utf8},
            )
            self.store.save_page(self.snapshot_id, frame, cursor_in=cursor, cursor_out=nxt, last=nxt is None)
            seen.update(follower_ids)
            if nxt is not None:
                cursors.add(nxt)
            cursor, pages, position = nxt, pages + 1, position + len(follower_ids)
            remaining = max((total or pages) - pages, 0)
            self.progress.update(pages, items=position, eta=self.api.eta(remaining))
            if nxt is None:
                return

    def sample(self) -> None:
        """Fix the design once enumeration is over (one transaction)."""
        state = self.state()
        if state["phase"] != "sample":
            return
        population = int(state["enumerated"])
        want = self.settings.get("sample")
        if self.settings.get("precision") is not None:
            want = sample_size(float(self.settings["precision"]), population)
        if want is None or want >= population:
            self.store.save_sample(self.snapshot_id, None, SampleDesign("full", population, population, None))
            return
        seed = int(self.settings["seed"])
        positions = draw_sample(population, int(want), seed)
        self.store.save_sample(self.snapshot_id, positions, SampleDesign("uniform", int(want), population, seed))

    def follow_rank(self, frame: pl.DataFrame) -> pl.DataFrame:
        """API position (0 = newest) -> follow_rank (0 = oldest) within the full enumeration."""
        population = int(self.state()["enumerated"])
        return frame.with_columns((pl.lit(population - 1, pl.Int64) - pl.col("position")).alias("follow_rank"))

    def finish(self, posts: Callable[[], pl.DataFrame] | None) -> None:
        phase = self.state()["phase"]
        if phase == "posts":
            frame = posts() if posts is not None else pl.DataFrame()
            self.store.save_posts(self.snapshot_id, frame if frame.width else _empty_posts())
            phase = "finish"
        if phase == "finish":
            self.store.finish_collection(self.snapshot_id)

    def result(self, *, resumed: bool, already_complete: bool = False) -> CollectResult:
        snap = self.store.snapshot(self.snapshot_id)
        state = self.state()
        posts = self.store.row("SELECT count(*) AS n FROM posts WHERE snapshot_id = ?", [self.snapshot_id])
        timed = self.store.row("SELECT count(followed_at) AS n FROM followers WHERE snapshot_id = ?", [self.snapshot_id])
        return CollectResult(
            snapshot_id=self.snapshot_id, platform=self.platform, account=self.account,
            followers_reported=snap.followers_reported, enumerated=int(state["enumerated"]),
            stored=snap.n_followers, missing=snap.n_rejects, design=snap.design,
            posts=int(posts["n"]) if posts else 0, calls=dict(self.api.calls), waited=self.api.waited,
            resumed=resumed, already_complete=already_complete, follow_times=int(timed["n"]) if timed else 0,
        )


def _empty_posts() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"post_id": pl.Utf8, "created_at": pl.Datetime("us", "UTC"), "likes": pl.Int64, "replies": pl.Int64,
                "reposts": pl.Int64, "quotes": pl.Int64, "views": pl.Int64, "raw": pl.Utf8}
    )


def _open_job(
    store: Store, api: ApiClient, progress: ProgressSink, *, platform: str, target_id: str, account: str,
    reported: int | None, api_base: str, options: CollectOptions,
) -> tuple[_Job, bool, bool]:
    """Find the snapshot to resume (or the completed one), or start a new one."""
    key = resume_key(platform, target_id, api_base, options)
    found = store.find_collection(key)
    if found is not None and not (options.fresh and found["status"] == "complete"):
        snap = store.snapshot(int(found["snapshot_id"]))
        # keep the account name the snapshot started with, even if the handle changed since
        job = _Job(store, api, progress, snap.snapshot_id, platform, snap.account or account, snap.followers_reported,
                   snap.settings)
        return job, True, found["status"] == "complete"
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items() if k != "fresh"}
    settings["seed"] = options.seed if options.seed is not None else secrets.randbelow(2**31)
    settings["api_base"] = api_base
    settings["target_id"] = target_id
    snapshot_id = store.start_collection(
        resume_key=key, target_id=target_id, platform=platform, account=account,
        source=f"{platform} API {api_base}", settings=settings, followers_reported=reported,
        taken_at=_now(api),
    )
    return _Job(store, api, progress, snapshot_id, platform, account, reported, settings), False, False


def collect_bluesky(
    store: Store, actor: str, options: CollectOptions, *, api: ApiClient, api_base: str,
    progress: ProgressSink | None = None,
) -> CollectResult:
    """Collect (or resume) the followers of a Bluesky handle or DID into a snapshot."""
    options.check()
    progress = progress or NullProgress()
    client = bluesky.BlueskyClient(api)
    api.http.headers["atproto-accept-labelers"] = bluesky.labeler_header(options.labelers)
    subject = client.profile(bluesky.normalize_actor(actor))
    did, handle = subject["did"], subject.get("handle") or subject["did"]
    reported = subject.get("followersCount")
    job, resumed, complete = _open_job(
        store, api, progress, platform="bluesky", target_id=did, account=handle, reported=reported,
        api_base=api_base, options=options,
    )
    if complete:
        return job.result(resumed=True, already_complete=True)

    def ids(items: list[dict[str, Any]]) -> tuple[list[str], list[str | None], None]:
        return [p["did"] for p in items], [p.get("handle") for p in items], None

    job.enumerate(lambda cursor: client.followers(did, cursor), ids)
    job.sample()
    if job.state()["phase"] == "hydrate":
        _hydrate_bluesky(job, client, activity=bool(job.settings.get("activity")))
        store.set_collect_phase(job.snapshot_id, "follow_times")
    if job.state()["phase"] == "follow_times":
        if follow_times_wanted(job.settings.get("follow_times"), store.snapshot(job.snapshot_id).n_followers):
            _follow_times_bluesky(job, client, did)
        store.set_collect_phase(job.snapshot_id, "posts")
    n_posts = int(job.settings.get("posts") or 0)
    job.finish((lambda: bluesky.posts_frame(client.recent_posts(did, n_posts))) if n_posts else None)
    return job.result(resumed=resumed)


FLUSH_CALLS = 40  # hydration: commit at least every this many requests (a crash re-fetches at most these)
FLUSH_ROWS = 250


def _hydrate_bluesky(job: _Job, client: bluesky.BlueskyClient, *, activity: bool) -> None:
    """getProfiles 25 at a time for the pending sample; optional one getAuthorFeed per follower."""
    pending = job.follow_rank(job.store.pending_hydration(job.snapshot_id))
    done_before = job.store.row(
        "SELECT count(*) AS n FROM collect_ids WHERE snapshot_id = ? AND sampled AND done", [job.snapshot_id]
    )["n"]
    size = bluesky.PROFILES_PER_CALL
    batches, offset = math.ceil(pending.height / size), math.ceil(done_before / size)
    per_batch = 1 + (size if activity else 0)
    job.progress.start("hydrating profiles", batches + offset, offset)
    buffer: dict[str, list] = {"profiles": [], "observed": [], "wanted": [], "probes": []}
    calls = 0
    for i, batch in enumerate(pending.iter_slices(size)):
        wanted = batch["follower_id"].to_list()
        wanted_set = set(wanted)
        profiles = [p for p in client.profiles(wanted) if isinstance(p, dict) and p.get("did") in wanted_set]
        profiles = list({p["did"]: p for p in profiles}.values())  # one row per DID even if the server repeats
        observed = _now(job.api)
        buffer["profiles"] += profiles
        buffer["observed"] += [observed] * len(profiles)
        buffer["wanted"] += wanted
        calls += 1
        if activity:
            for profile in profiles:
                buffer["probes"].append((profile["did"], *client.latest_activity(profile["did"])))
            calls += len(profiles)
        if calls >= FLUSH_CALLS or len(buffer["wanted"]) >= FLUSH_ROWS or i == batches - 1:
            _flush_hydration(job, pending, buffer, activity)
            buffer = {"profiles": [], "observed": [], "wanted": [], "probes": []}
            calls = 0
            job.progress.update(offset + i + 1, items=done_before + min((i + 1) * size, pending.height),
                                eta=job.api.eta((batches - i - 1) * per_batch))


def follow_times_wanted(option: bool | None, stored: int) -> bool:
    """Whether to ask for exact follow times: the flag, or by default for small collections."""
    return bool(option) if option is not None else stored <= FOLLOW_TIMES_DEFAULT_MAX


def _follow_times_bluesky(job: _Job, client: bluesky.BlueskyClient, did: str) -> None:
    """getRelationships 30 at a time; each follow record's TID key dates the follow."""
    pending = job.store.pending_follow_times(job.snapshot_id)
    size = bluesky.RELATIONSHIPS_PER_CALL
    batches = math.ceil(pending.height / size)
    job.progress.start("follow times", batches)
    per_flush = FLUSH_CALLS
    for start in range(0, batches, per_flush):
        ids: list[str] = []
        uris: dict[str, str | None] = {}
        for batch in pending.slice(start * size, per_flush * size).iter_slices(size):
            wanted = batch["follower_id"].to_list()
            uris.update(client.relationships(did, wanted))
            ids += wanted
        found = [i for i in ids if uris.get(i)]
        keys = pl.Series([bluesky.record_key(uris[i]) for i in found], dtype=pl.Utf8)
        times = pl.DataFrame({"follower_id": pl.Series(found, dtype=pl.Utf8), "followed_at": bluesky.tid_times(keys)})
        # a follower without a follow record any more (unfollowed, gone) keeps followed_at null
        job.store.save_follow_times(job.snapshot_id, times.drop_nulls("followed_at"), ids)
        done = min(start + per_flush, batches)
        job.progress.update(done, items=min(done * size, pending.height), eta=job.api.eta(batches - done))


def _flush_hydration(job: _Job, pending: pl.DataFrame, buffer: dict[str, list], activity: bool) -> None:
    """Write hydrated profiles, rejects for the missing, and activity in one transaction."""
    frame = bluesky.followers_frame(buffer["profiles"], account=job.account, observed_at=buffer["observed"])
    frame = frame.join(pending.select("follower_id", "follow_rank"), on="follower_id", how="left")
    act = None
    if activity:
        act = pl.DataFrame(
            buffer["probes"], schema={"follower_id": pl.Utf8, "when": pl.Utf8, "last_active_kind": pl.Utf8}, orient="row"
        ).with_columns(bluesky.ts(pl.col("when")).alias("last_active_at"))
        frame = frame.join(act.select("follower_id", "last_active_at"), on="follower_id", how="left")
    missing = pending.filter(
        pl.col("follower_id").is_in(buffer["wanted"]) & ~pl.col("follower_id").is_in(frame["follower_id"].implode())
    ).select(
        pl.lit("app.bsky.actor.getProfiles").alias("file"),
        pl.col("position").alias("line"),
        pl.lit("follower_id").alias("column"),
        pl.lit("follower listed but its profile was not returned (deleted, deactivated or taken down)").alias("reason"),
        pl.col("follower_id").alias("raw"),
    )
    job.store.save_hydrated(job.snapshot_id, frame, buffer["wanted"], missing, act)


def collect_mastodon(
    store: Store, address: str, options: CollectOptions, *, api: ApiClient, api_base: str,
    progress: ProgressSink | None = None,
) -> CollectResult:
    """Collect (or resume) the followers of a Mastodon account (on its home instance)."""
    options.check()
    progress = progress or NullProgress()
    user, instance = mastodon.parse_acct(address)
    client = mastodon.MastodonClient(api)
    subject = client.lookup(user)
    account = subject.get("acct") or user
    account = account if "@" in account else f"{account}@{instance}"
    if subject.get("hide_collections"):
        raise HiddenFollowersError(f"{account} hides its follower list (hide_collections)")
    job, resumed, complete = _open_job(
        store, api, progress, platform="mastodon", target_id=str(subject["id"]), account=account,
        reported=subject.get("followers_count"), api_base=api_base, options=options,
    )
    if complete:
        return job.result(resumed=True, already_complete=True)

    def ids(items: list[dict[str, Any]]) -> tuple[list[str], list[str | None], list[str]]:
        return (
            [str(a["id"]) for a in items],
            [a.get("acct") for a in items],
            [json.dumps(a, separators=(",", ":"), ensure_ascii=False) for a in items],
        )

    job.enumerate(lambda cursor: client.followers(str(subject["id"]), cursor), ids)
    job.sample()
    if job.state()["phase"] == "hydrate":
        # no calls: the Account entities stored while listing already carry counts and last_status_at
        while True:
            pending = job.store.pending_hydration(job.snapshot_id, with_profile=True, limit=MASTODON_CHUNK)
            if not pending.height:
                break
            chunk = job.follow_rank(pending)
            frame = mastodon.followers_frame(chunk["profile"], account=account, instance=instance).with_columns(
                chunk["follow_rank"], chunk["observed_at"]
            )
            store.save_hydrated(job.snapshot_id, frame, chunk["follower_id"].to_list())
        store.set_collect_phase(job.snapshot_id, "posts")
    n_posts = int(job.settings.get("posts") or 0)
    job.finish((lambda: mastodon.posts_frame(client.statuses(str(subject["id"]), n_posts))) if n_posts else None)
    return job.result(resumed=resumed)
