"""A realistic synthetic account: organic, inactive and bought followers, with ground truth.

How the followers are made (all vectorised, seeded):

* organic follow times grow over the account's life (more followers later); each organic follower's
  account was created before it followed — a share of them just before (people join and follow),
  the rest years before — so the newest followers skew to new accounts and the "follower factory"
  chart shows its crust;
* a share of organic followers is inactive (no post for months, or never posted);
* one or more bought batches: accounts created within a few days of each other by a vendor, weeks
  before the purchase, that follow the customer one after the other; thin profiles, digit handles,
  default avatars, follow many and are followed by few.

The ground truth is written as ``followaudit_truth`` (JSONL) or ``truth_label`` (Parquet), which the
labellers never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from ..schema import conform

OBSERVED_AT = datetime(2026, 11, 1, tzinfo=UTC)  # fixed, so synth output never depends on "now"
ACCOUNT_START = datetime(2014, 6, 1, tzinfo=UTC)
PLATFORM_START = datetime(2006, 7, 15, tzinfo=UTC)
TWITTER_TIME_FORMAT = "%a %b %d %H:%M:%S +0000 %Y"
DAY = 86_400.0


@dataclass(frozen=True)
class SynthSpec:
    n: int
    seed: int = 42
    fake_share: float = 0.2
    inactive_share: float = 0.2
    batches: int | None = None  # None: 1 batch per ~2,000 fakes, 1 to 6
    account: str = "demo_account"
    # 0: the easy audience (fakes follow thousands, are followed by almost no one, rarely have a
    # picture). Towards 1: lurkers (few followers, no posts, thin profiles) among the people, and
    # fakes with pictures, bios, some followers and posts, so the two overlap (``_harden``).
    difficulty: float = 0.0


def _seconds(ts: datetime) -> float:
    return ts.timestamp()


def generate(spec: SynthSpec) -> pl.DataFrame:
    """Canonical followers (oldest first, ``follow_rank`` 0..n-1) plus ``followed_at`` and truth."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n
    n_fake = int(round(n * spec.fake_share))
    n_org = n - n_fake
    t0, t1 = _seconds(ACCOUNT_START), _seconds(OBSERVED_AT)

    # Organic follows: density grows with time (u^(1/1.6) puts more mass late).
    follow_org = t0 + (t1 - t0) * rng.random(n_org) ** (1 / 1.6)
    just_joined = rng.random(n_org) < 0.18
    lead = np.where(just_joined, rng.exponential(20 * DAY, n_org), rng.lognormal(np.log(3 * 365 * DAY), 0.8, n_org))
    created_org = np.maximum(follow_org - lead, _seconds(PLATFORM_START) + rng.random(n_org) * 365 * DAY)
    created_org = np.minimum(created_org, follow_org - 60.0)
    inactive = rng.random(n_org) < spec.inactive_share / max(1e-9, 1 - spec.fake_share)

    # Bought batches: each a brick of consecutive follows of accounts created within days.
    n_batches = spec.batches or int(np.clip(round(n_fake / 2000), 1, 6)) if n_fake else 0
    sizes = rng.multinomial(n_fake, np.ones(n_batches) / n_batches) if n_batches else np.array([], dtype=int)
    follow_fake, created_fake, batch_id = [], [], []
    for b, size in enumerate(sizes):  # one iteration per batch (≤ 6), not per follower
        bought_at = t0 + (t1 - t0) * rng.uniform(0.25, 0.95)
        made_from = bought_at - rng.uniform(20, 400) * DAY
        window = rng.uniform(2, 10) * DAY
        # vendors deliver a batch within minutes to hours: ~1-5 s per follow
        follow_fake.append(bought_at + np.sort(rng.random(size)) * size * rng.uniform(1, 5))
        created_fake.append(made_from + rng.random(size) * window)
        batch_id.append(np.full(size, b + 1))
    follow_fake_a = np.concatenate(follow_fake) if follow_fake else np.array([])
    created_fake_a = np.concatenate(created_fake) if created_fake else np.array([])
    batch_a = np.concatenate(batch_id) if batch_id else np.array([], dtype=int)

    is_fake = np.concatenate([np.zeros(n_org, bool), np.ones(n_fake, bool)])
    is_inactive = np.concatenate([inactive, np.zeros(n_fake, bool)])
    follow_t = np.concatenate([follow_org, follow_fake_a])
    created_t = np.concatenate([created_org, created_fake_a])
    batch = np.concatenate([np.zeros(n_org, int), batch_a])
    age_days = (t1 - created_t) / DAY

    # Profiles. Real: a few hundred followers/following, many posts, recent activity.
    real_followers = np.round(rng.lognormal(np.log(180), 1.3, n)).astype(np.int64)
    # People who follow more tend to be followed more: log(following) leans on log(followers).
    real_following = np.round(np.exp(np.log(250) + 0.45 * (np.log1p(real_followers) - np.log(180)) + rng.normal(0, 0.8, n))).astype(np.int64)
    real_posts = np.round(rng.lognormal(np.log(900), 1.4, n) * np.clip(age_days / 1500, 0.05, 3)).astype(np.int64) + 1
    fake_followers = rng.integers(0, 25, n)
    fake_following = rng.integers(300, 3500, n)
    fake_posts = np.where(rng.random(n) < 0.55, 0, rng.integers(1, 40, n))
    followers_count = np.where(is_fake, fake_followers, real_followers)
    following_count = np.where(is_fake, fake_following, real_following)
    posts_count = np.where(is_fake, fake_posts, real_posts)
    never_posted_inactive = is_inactive & (rng.random(n) < 0.3)
    posts_count = np.where(never_posted_inactive, 0, posts_count)

    idle_days = np.where(
        is_inactive,
        rng.uniform(120, 1500, n),
        np.where(is_fake, rng.uniform(30, 900, n), rng.exponential(12, n)),
    )
    last_active = np.maximum(t1 - idle_days * DAY, created_t + DAY)
    has_last = posts_count > 0

    has_avatar = np.where(is_fake, rng.random(n) < 0.25, rng.random(n) < 0.93)
    bio_len = np.where(is_fake, np.where(rng.random(n) < 0.85, 0, rng.integers(5, 40, n)), np.where(rng.random(n) < 0.8, rng.integers(10, 160, n), 0))
    has_location = np.where(is_fake, rng.random(n) < 0.1, rng.random(n) < 0.6)
    has_url = np.where(is_fake, rng.random(n) < 0.03, rng.random(n) < 0.35)
    listed = np.where(is_fake, 0, rng.poisson(np.clip(real_followers / 150, 0, 50)))
    likes = np.where(is_fake, rng.integers(0, 10, n), np.round(rng.lognormal(np.log(500), 1.5, n)).astype(np.int64))

    if spec.difficulty > 0:
        followers_count, following_count, posts_count, has_avatar, bio_len, has_location, has_url, listed, likes, is_inactive = _harden(
            spec, is_fake, is_inactive, followers_count, following_count, posts_count, has_avatar, bio_len, has_location, has_url,
            listed, likes,
        )
        has_last = posts_count > 0

    order = np.argsort(follow_t, kind="stable")
    ids = (10_000_000_000 + rng.permutation(n * 3)[:n]).astype(np.int64)
    words = np.array(["sun", "river", "maya", "leo", "nora", "blue", "atlas", "kai", "ivy", "max", "zoe", "finn"])
    handle_word = words[rng.integers(0, len(words), n)]
    surnames = np.array(["walker", "okafor", "rossi", "nguyen", "silva", "kowalski", "haddad", "lindqvist", "moreau", "tanaka"])
    # Most people show a first and last name; vendors' accounts mostly a bare first name.
    full_name = np.where(rng.random(n) < np.where(is_fake, 0.15, 0.85), surnames[rng.integers(0, len(surnames), n)], "")
    handle_num = np.where(is_fake, rng.integers(10_000, 99_999_999, n), np.where(rng.random(n) < 0.35, rng.integers(1, 99, n), -1))
    truth = np.where(is_fake, "fake", np.where(is_inactive, "inactive", "real"))

    frame = pl.DataFrame(
        {
            "follower_id": ids.astype(str),
            "handle_word": handle_word,
            "surname": full_name,
            "handle_num": handle_num,
            "created_s": created_t,
            "followed_s": follow_t,
            "last_s": np.where(has_last, last_active, np.nan),
            "followers_count": followers_count,
            "following_count": following_count,
            "posts_count": posts_count,
            "likes_count": likes,
            "listed_count": listed,
            "has_avatar": has_avatar,
            "bio_length": bio_len,
            "has_location": has_location,
            "has_url": has_url,
            "truth_label": truth,
            "batch": batch,
        }
    )[order]
    to_ts = lambda c: (pl.col(c) * 1_000_000).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))  # noqa: E731
    # people: a word and a surname or a short number ("maya_okafor", "leo7"), a word and letters of
    # their id when they give no surname; vendors: a word and a long number
    letters = pl.col("follower_id").str.slice(-4).str.replace_all("0", "a").str.replace_all("1", "e").str.replace_all("2", "i") \
        .str.replace_all("3", "o").str.replace_all("4", "u").str.replace_all("5", "n").str.replace_all("6", "r").str.replace_all("7", "s") \
        .str.replace_all("8", "t").str.replace_all("9", "l")
    handle = (
        pl.when(pl.col("handle_num") >= 0).then(pl.col("handle_word") + pl.col("handle_num").cast(pl.Utf8))
        .when(pl.col("surname") != "").then(pl.col("handle_word") + "_" + pl.col("surname"))
        .otherwise(pl.col("handle_word") + letters)
    )
    bio = pl.when(pl.col("bio_length") > 0).then(pl.lit("x").repeat_by(pl.col("bio_length")).list.join("")).otherwise(pl.lit(""))
    return frame.with_columns(
        pl.lit("twitter").alias("platform"),
        pl.lit(spec.account).alias("account"),
        handle.alias("handle"),
        pl.when(pl.col("surname") != "")
        .then(pl.col("handle_word").str.to_titlecase() + " " + pl.col("surname").str.to_titlecase())
        .otherwise(pl.col("handle_word").str.to_titlecase())
        .alias("display_name"),
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("follow_rank"),
        to_ts("created_s").alias("created_at"),
        to_ts("followed_s").alias("followed_at"),
        pl.when(pl.col("last_s").is_not_nan()).then(to_ts("last_s")).alias("last_active_at"),
        bio.alias("bio"),
        pl.lit(False).alias("verified"),
        pl.lit(False).alias("private"),
        pl.lit(OBSERVED_AT).cast(pl.Datetime("us", "UTC")).alias("observed_at"),
    ).drop("handle_word", "surname", "handle_num", "created_s", "followed_s", "last_s")


def _harden(spec: SynthSpec, is_fake: np.ndarray, is_inactive: np.ndarray, *cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """Overlapping profiles for ``difficulty`` > 0, from their own random stream (difficulty 0 is untouched).

    A share ``0.35·d`` of the people are lurkers: a dozen followers, a hundred followed, no posts,
    half without a picture or bio (they count as inactive, never as fake). A share ``0.6·d`` of the
    fakes are "aged" vendor accounts: a picture and a bio, tens of followers, a few hundred
    followed, some posts — inside the people's ranges.
    """
    followers, following, posts, avatar, bio, location, url, listed, likes = (np.array(c) for c in cols)
    d = float(np.clip(spec.difficulty, 0.0, 1.0))
    rng = np.random.default_rng([spec.seed, 20150214])
    n = len(is_fake)
    lurker = ~is_fake & (rng.random(n) < 0.35 * d)
    followers = np.where(lurker, np.round(rng.lognormal(np.log(12), 0.9, n)), followers)
    following = np.where(lurker, np.round(rng.lognormal(np.log(110), 0.8, n)), following)
    posts = np.where(lurker, 0, posts)
    avatar = np.where(lurker, rng.random(n) < 0.5, avatar)
    bio = np.where(lurker, np.where(rng.random(n) < 0.5, 0, rng.integers(5, 80, n)), bio)
    location = np.where(lurker, rng.random(n) < 0.3, location)
    url = np.where(lurker, rng.random(n) < 0.05, url)
    listed = np.where(lurker, 0, listed)
    likes = np.where(lurker, rng.integers(0, 200, n), likes)
    aged = is_fake & (rng.random(n) < 0.6 * d)
    followers = np.where(aged, np.round(rng.lognormal(np.log(45), 0.8, n)), followers)
    following = np.where(aged, np.round(rng.lognormal(np.log(350), 0.7, n)), following)
    posts = np.where(aged, rng.integers(5, 300, n), posts)
    avatar = np.where(aged, rng.random(n) < 0.9, avatar)
    bio = np.where(aged, rng.integers(15, 120, n), bio)
    location = np.where(aged, rng.random(n) < 0.4, location)
    likes = np.where(aged, rng.integers(0, 300, n), likes)
    return (followers.astype(np.int64), following.astype(np.int64), posts.astype(np.int64), avatar.astype(bool), bio.astype(np.int64),
            location.astype(bool), url.astype(bool), listed.astype(np.int64), likes.astype(np.int64), is_inactive | lurker)


def to_twitter_v1_jsonl(frame: pl.DataFrame, path: str | Path) -> None:
    """Write Twitter API v1.1 user objects, newest follower first (API order), one per line."""
    fmt = TWITTER_TIME_FORMAT
    out = frame.sort("follow_rank", descending=True).select(
        pl.col("follower_id").cast(pl.Int64).alias("id"),
        pl.col("follower_id").alias("id_str"),
        pl.col("display_name").alias("name"),
        pl.col("handle").alias("screen_name"),
        pl.col("created_at").dt.strftime(fmt).alias("created_at"),
        pl.col("followers_count"),
        pl.col("following_count").alias("friends_count"),
        pl.col("posts_count").alias("statuses_count"),
        pl.col("likes_count").alias("favourites_count"),
        pl.col("listed_count"),
        (~pl.col("has_avatar")).alias("default_profile_image"),
        pl.col("bio").alias("description"),
        pl.when(pl.col("has_location")).then(pl.lit("Somewhere")).otherwise(pl.lit("")).alias("location"),
        pl.when(pl.col("has_url")).then(pl.lit("https://t.co/x")).otherwise(pl.lit(None, pl.Utf8)).alias("url"),
        pl.col("verified"),
        pl.col("private").alias("protected"),
        pl.when(pl.col("last_active_at").is_not_null())
        .then(pl.struct(pl.col("last_active_at").dt.strftime(fmt).alias("created_at")))
        .alias("status"),
        pl.col("truth_label").alias("followaudit_truth"),
    )
    out.write_ndjson(str(path))


def write_synth(n: int, path: str | Path, seed: int = 42, **kwargs: object) -> pl.DataFrame:
    """Generate ``n`` followers and write them: ``.parquet`` canonical, otherwise Twitter v1.1 JSONL."""
    frame = generate(SynthSpec(n=n, seed=seed, **kwargs))  # type: ignore[arg-type]
    path = Path(path)
    if path.suffix == ".parquet":
        conform(frame).write_parquet(path, compression="zstd", row_group_size=1_000_000)
    else:
        to_twitter_v1_jsonl(frame, path)
    return frame


# -- reach: posts, count history and likers for the demo (followaudit.engagement / growth / likers) --
POSTS_START = datetime(2016, 1, 1, tzinfo=UTC)


def generate_posts(spec: SynthSpec, frame: pl.DataFrame, n_posts: int = 400) -> pl.DataFrame:
    """The account's posts over its life, with counts driven by the *real* audience at post time.

    Engagement per post ~ Poisson(rate × real followers at the time) with lognormal noise: bought
    followers add to the count but never engage, so the engagement rate falls after each batch.
    Columns are the ``posts`` table's (post_id, created_at, likes, replies, reposts, quotes, views, raw).
    """
    rng = np.random.default_rng(spec.seed + 101)
    t0, t1 = _seconds(POSTS_START), _seconds(OBSERVED_AT)
    times = np.sort(t0 + (t1 - t0) * rng.random(n_posts))
    followed = frame.select((pl.col("followed_at").dt.epoch("us") / 1e6).alias("t"), "truth_label")
    real_t = np.sort(followed.filter(pl.col("truth_label") == "real")["t"].to_numpy())
    all_t = np.sort(followed["t"].to_numpy())
    audience = np.searchsorted(real_t, times).astype(float)
    reach = audience * rng.lognormal(0.0, 0.35, n_posts)
    created = (times * 1_000_000).astype(np.int64)
    return pl.DataFrame(
        {
            "post_id": [f"synth-post-{i:04d}" for i in range(n_posts)],
            "created_at": pl.Series(created).cast(pl.Datetime("us", "UTC")),
            "likes": rng.poisson(0.08 * reach),
            "replies": rng.poisson(0.006 * reach),
            "reposts": rng.poisson(0.012 * reach),
            "quotes": rng.poisson(0.002 * reach),
            "views": rng.poisson(1.6 * reach + 0.02 * np.searchsorted(all_t, times)),
        }
    ).with_columns(pl.lit(None, pl.Utf8).alias("raw"))


def generate_count_history(spec: SynthSpec, frame: pl.DataFrame, every_days: int = 7) -> pl.DataFrame:
    """Follower counts (date, followers) every ``every_days`` days, from the synthetic follow times.

    Like a tracking site's export: counts of the followers who still follow at the end, so the bought
    batches show as steps. Weekly by default (daily counts of a small account are mostly noise).
    """
    from datetime import timedelta

    start = ACCOUNT_START.date()
    days = (OBSERVED_AT.date() - start).days
    dates = [start + timedelta(days=d) for d in range(every_days, days + 1, every_days)]
    ends = np.array([_seconds(datetime(d.year, d.month, d.day, tzinfo=UTC)) for d in dates])
    follow_t = np.sort((frame["followed_at"].dt.epoch("us") / 1e6).to_numpy())
    return pl.DataFrame({"date": dates, "followers": np.searchsorted(follow_t, ends).astype(np.int64)}).filter(pl.col("followers") > 0)


def generate_likers(spec: SynthSpec, frame: pl.DataFrame, n_likes: int = 240, n_reposts: int = 40) -> pl.DataFrame:
    """Engagers of one recent post: mostly real active followers, some non-followers, a few fakes.

    Canonical columns plus ``kind`` (like / repost) and ``engaged_at``; non-followers get fresh ids.
    """
    rng = np.random.default_rng(spec.seed + 202)
    real = frame.filter(pl.col("truth_label") == "real")
    fake = frame.filter(pl.col("truth_label") == "fake")
    n_outside = max(1, int(0.25 * n_likes))
    n_fake = min(fake.height, max(1, int(0.04 * n_likes)))
    n_real = min(real.height, n_likes - n_outside - n_fake)
    outsiders = generate(SynthSpec(n=n_outside * 4, seed=spec.seed + 303, fake_share=0.1, inactive_share=0.0, batches=1))
    outsiders = outsiders.filter(pl.col("truth_label") == "real").head(n_outside).with_columns(
        ("9" + pl.col("follower_id")).alias("follower_id")
    )
    likers = pl.concat([
        real.sample(n_real, seed=spec.seed + 1, shuffle=True),
        fake.sample(n_fake, seed=spec.seed + 2, shuffle=True),
        outsiders,
    ], how="diagonal_relaxed")
    liked = (_seconds(OBSERVED_AT) - rng.exponential(2 * DAY, likers.height)) * 1_000_000
    likers = likers.with_columns(
        pl.lit("like").alias("kind"),
        pl.Series("engaged_at", liked.astype(np.int64)).cast(pl.Datetime("us", "UTC")),
    )
    reposters = likers.sample(min(n_reposts, likers.height), seed=spec.seed + 3).with_columns(
        pl.lit("repost").alias("kind"), pl.lit(None, pl.Datetime("us", "UTC")).alias("engaged_at")
    )
    return pl.concat([likers, reposters]).drop("followed_at", "batch", strict=False)


# -- platform evidence for the demo: exact follow times are in ``generate``'s followed_at --------
SPAM_LABELLED_SHARE = 0.25  # bought followers the platform's moderation has already caught
SELF_BOT_SHARE = 0.005  # real followers that declare themselves bots (news feeds, utilities)


def with_platform_labels(frame: pl.DataFrame, seed: int = 42) -> pl.DataFrame:
    """``frame`` with platform labels: moderation ``spam`` on a quarter of the bought followers and a
    self-declared bot flag on a few real ones (seeded, vectorised)."""
    u = np.random.default_rng(seed + 7).random(frame.height)
    fake = (frame["truth_label"] == "fake").to_numpy()
    spam = fake & (u < SPAM_LABELLED_SHARE)
    labels = pl.List(pl.Utf8)
    return frame.with_columns(
        pl.when(pl.Series(spam)).then(pl.lit(["spam"], labels)).otherwise(pl.lit([], labels)).alias("moderation_labels"),
        pl.Series("self_declared_bot", (frame["truth_label"] == "real").to_numpy() & (u > 1 - SELF_BOT_SHARE)),
    )
