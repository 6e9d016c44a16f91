"""Per-platform record shapes: the JSON schema to decode with, and the source -> canonical fields.

Every leaf is decoded as text (JSON numbers and booleans become their text), so that one parser in
``common.finish`` validates them all the same way and a bad value becomes a reject, not a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from .common import Field, Observed, parse_dates

S = pl.Utf8()


def _struct(*names: str, **nested: pl.DataType) -> pl.Struct:
    return pl.Struct({**{n: S for n in names}, **nested})


@dataclass(frozen=True)
class RecordSpec:
    """How to read one kind of JSON user record."""

    platform: str
    layout: str
    dtype: pl.Struct
    fields: list[Field]
    prepare: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    # The canonical column whose order over the whole file gives ``follow_rank`` (``prepare`` ranks
    # the rows it is given; a streamed file is ranked again once all its rows are read).
    ranks_by: str | None = None


def flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested struct columns -> ``parent.child`` columns (recursively)."""
    while True:
        structs = [c for c, t in frame.schema.items() if isinstance(t, pl.Struct)]
        if not structs:
            return frame
        exprs = []
        for c in structs:
            dtype = frame.schema[c]
            assert isinstance(dtype, pl.Struct)
            exprs.extend(pl.col(c).struct.field(f.name).alias(f"{c}.{f.name}") for f in dtype.fields)
        frame = frame.with_columns(exprs).drop(structs)


_COUNTS_V1 = [
    Field("followers_count", "followers_count", "count"),
    Field("following_count", "friends_count", "count"),
    Field("posts_count", "statuses_count", "count"),
    Field("likes_count", "favourites_count", "count"),
    Field("listed_count", "listed_count", "count"),
]

TWITTER_V1_FIELDS = [
    Field("follower_id", "id_str", "id"),
    Field("follower_id", "id", "id"),
    Field("handle", "screen_name"),
    Field("display_name", "name"),
    Field("created_at", "created_at", "date"),
    Field("created_at", "timestamp", "epoch"),  # FollowerAnalyzer profiles: creation time in epoch seconds
    *_COUNTS_V1,
    Field("has_avatar", "default_profile_image", "bool", invert=True),
    Field("has_avatar", "profile_image_url_https", "avatar"),
    Field("has_avatar", "profile_image_url", "avatar"),
    Field("bio", "description"),
    Field("has_url", "url", "present"),
    Field("has_location", "location", "present"),
    Field("verified", "verified", "bool"),
    Field("private", "protected", "bool"),
    Field("last_active_at", "status.created_at", "date"),
    Field("observed_at", "updated", "date"),  # MIB: the crawl time
    Field("follow_rank", "follow_rank", "int"),
    Field("truth_label", "label", "truth"),
    Field("truth_label", "followaudit_truth", "truth"),  # written by `followaudit synth`
]

TWITTER_V1 = RecordSpec(
    "twitter",
    "v1.1 users",
    _struct(
        "id", "id_str", "screen_name", "name", "created_at", "timestamp", "followers_count", "friends_count",
        "statuses_count", "favourites_count", "listed_count", "default_profile_image", "profile_image_url_https",
        "profile_image_url", "description", "url", "location", "verified", "protected", "updated", "label",
        "follow_rank", "followaudit_truth", status=_struct("created_at"),
    ),
    TWITTER_V1_FIELDS,
)

TWITTER_V2 = RecordSpec(
    "twitter",
    "v2 users",
    _struct(
        "id", "username", "name", "created_at", "description", "location", "url", "verified", "protected",
        "profile_image_url",
        public_metrics=_struct("followers_count", "following_count", "tweet_count", "listed_count", "like_count"),
    ),
    [
        Field("follower_id", "id", "id"),
        Field("handle", "username"),
        Field("display_name", "name"),
        Field("created_at", "created_at", "date"),
        Field("followers_count", "public_metrics.followers_count", "count"),
        Field("following_count", "public_metrics.following_count", "count"),
        Field("posts_count", "public_metrics.tweet_count", "count"),
        Field("listed_count", "public_metrics.listed_count", "count"),
        Field("likes_count", "public_metrics.like_count", "count"),
        Field("has_avatar", "profile_image_url", "avatar"),
        Field("bio", "description"),
        Field("has_url", "url", "present"),
        Field("has_location", "location", "present"),
        Field("verified", "verified", "bool"),
        Field("private", "protected", "bool"),
    ],
)


def _bluesky_prepare(frame: pl.DataFrame) -> pl.DataFrame:
    # Labels with neg=true retract an earlier label; keep only the asserted values.
    labels = pl.col("labels").list.eval(
        pl.element().filter(pl.element().struct.field("neg").fill_null("false") != "true").struct.field("val")
    )
    verified = pl.col("verification.verifiedStatus")
    return frame.with_columns(
        labels.alias("labels"),
        pl.when(verified.is_null()).then(None).otherwise((verified == "valid").cast(pl.Utf8)).alias("verification.verifiedStatus"),
    )


BLUESKY = RecordSpec(
    "bluesky",
    "profiles",
    _struct(
        "did", "handle", "displayName", "description", "avatar", "createdAt", "followersCount", "followsCount",
        "postsCount", "website", "indexedAt", labels=pl.List(_struct("val", "neg")), verification=_struct("verifiedStatus"),
    ),
    [
        Field("follower_id", "did", "id"),
        Field("handle", "handle"),
        Field("display_name", "displayName"),
        Field("created_at", "createdAt", "date"),
        Field("followers_count", "followersCount", "count"),
        Field("following_count", "followsCount", "count"),
        Field("posts_count", "postsCount", "count"),
        Field("has_avatar", "avatar", "avatar_opt"),
        Field("bio", "description"),
        Field("has_url", "website", "present"),
        Field("verified", "verification.verifiedStatus", "bool"),
        Field("moderation_labels", "labels", "labels"),
    ],
    _bluesky_prepare,
)


def _mastodon_prepare(frame: pl.DataFrame) -> pl.DataFrame:
    # A profile field whose value is a link counts as a website (Mastodon has no single URL field).
    has_link = pl.col("fields").list.eval(
        pl.element().struct.field("value").fill_null("").str.contains(r"(?i)https?://|<a ")
    ).list.any()
    return frame.with_columns(
        pl.when(pl.col("fields").is_null()).then(None).otherwise(has_link.cast(pl.Utf8)).alias("fields")
    )


MASTODON = RecordSpec(
    "mastodon",
    "accounts",
    _struct(
        "id", "acct", "username", "display_name", "note", "avatar", "locked", "bot", "created_at", "last_status_at",
        "statuses_count", "followers_count", "following_count", fields=pl.List(_struct("name", "value")),
    ),
    [
        Field("follower_id", "id", "id"),
        Field("handle", "acct"),
        Field("handle", "username"),
        Field("display_name", "display_name"),
        Field("created_at", "created_at", "date"),
        Field("followers_count", "followers_count", "count"),
        Field("following_count", "following_count", "count"),
        Field("posts_count", "statuses_count", "count"),
        Field("has_avatar", "avatar", "avatar_opt"),
        Field("bio", "note", "html"),
        Field("has_url", "fields", "bool"),
        Field("private", "locked", "bool"),
        Field("self_declared_bot", "bot", "bool"),
        Field("last_active_at", "last_status_at", "date"),
    ],
    _mastodon_prepare,
)

INSTAFAKE_FIELDS = [
    Field("follower_id", "row_id", "id"),
    Field("followers_count", "userFollowerCount", "count"),
    Field("following_count", "userFollowingCount", "count"),
    Field("posts_count", "userMediaCount", "count"),
    Field("bio_length", "userBiographyLength", "count"),
    Field("has_avatar", "userHasProfilPic", "bool"),
    Field("private", "userIsPrivate", "bool"),
    Field("handle_digits", "usernameDigitCount", "count"),
    Field("handle_length", "usernameLength", "count"),
    Field("truth_label", "isFake", "truth"),
]


def _instafake_prepare(frame: pl.DataFrame) -> pl.DataFrame:
    # The dataset is anonymised (no ids): a stable synthetic id from the record's position.
    return frame.with_columns((pl.lit("row-") + pl.int_range(1, frame.height + 1).cast(pl.Utf8)).alias("row_id"))


INSTAFAKE = RecordSpec(
    "instagram",
    "InstaFake accounts",
    _struct(
        "userFollowerCount", "userFollowingCount", "userBiographyLength", "userMediaCount", "userHasProfilPic",
        "userIsPrivate", "usernameDigitCount", "usernameLength", "isFake",
    ),
    INSTAFAKE_FIELDS,
    _instafake_prepare,
)

def _instagram_export_prepare(frame: pl.DataFrame) -> pl.DataFrame:
    # Instagram's "Download your information" lists: the username is in string_list_data[0].value
    # (newer exports: in title), with the time the person followed. That time gives the follow order.
    first = pl.col("string_list_data").list.first()
    href_name = first.struct.field("href").str.extract(r"instagram\.com/(?:_u/)?([^/?#]+)", 1)
    username = pl.coalesce(first.struct.field("value"), pl.col("title").replace("", None), href_name)
    followed = first.struct.field("timestamp").cast(pl.Float64, strict=False)
    rank = pl.when(followed.is_not_null()).then((followed.rank("ordinal") - 1).cast(pl.Int64).cast(pl.Utf8))
    # The export's timestamp is when the person followed (epoch seconds): stored as followed_at.
    return frame.with_columns(username.alias("username"), rank.alias("follow_rank"), followed.cast(pl.Utf8).alias("followed_ts"))


INSTAGRAM_EXPORT = RecordSpec(
    "instagram",
    "followers export",
    _struct("title", string_list_data=pl.List(_struct("href", "value", "timestamp"))),
    [Field("follower_id", "username", "id"), Field("handle", "username"), Field("follow_rank", "follow_rank", "int"),
     Field("followed_at", "followed_ts", "epoch")],
    _instagram_export_prepare,
    ranks_by="followed_at",
)

SPECS = {"twitter-v1": TWITTER_V1, "twitter-v2": TWITTER_V2, "bluesky": BLUESKY, "mastodon": MASTODON, "instafake": INSTAFAKE,
         "instagram-export": INSTAGRAM_EXPORT}


def spec_for_keys(keys: set[str], platform: str | None) -> RecordSpec | None:
    """Recognise a user record from its keys (``platform`` narrows the choice when given)."""
    candidates: list[RecordSpec] = []
    if "userFollowerCount" in keys or "usernameLength" in keys:
        candidates.append(INSTAFAKE)
    if "string_list_data" in keys:
        candidates.append(INSTAGRAM_EXPORT)
    if "did" in keys:
        candidates.append(BLUESKY)
    if "acct" in keys or ("note" in keys and "locked" in keys):
        candidates.append(MASTODON)
    if "public_metrics" in keys or ("username" in keys and "id" in keys and "screen_name" not in keys):
        candidates.append(TWITTER_V2)
    if keys & {"id_str", "screen_name", "friends_count", "statuses_count"}:
        candidates.append(TWITTER_V1)
    if platform:
        candidates = [c for c in candidates if c.platform == platform] or (
            [TWITTER_V1] if platform == "twitter" and keys & {"id", "id_str"} else []
        )
    return candidates[0] if candidates else None


def spec_for_platform(platform: str) -> RecordSpec | None:
    return {"twitter": TWITTER_V1, "bluesky": BLUESKY, "mastodon": MASTODON, "instagram": INSTAFAKE}.get(platform)


def ranks_by(column: str) -> pl.Expr:
    """``follow_rank`` as the order of ``column`` (ties in file order; null where it is null), as
    ``prepare`` ranks a whole file."""
    return (pl.col(column).rank("ordinal") - 1).cast(pl.Int64).alias("follow_rank")


def decode_fields(frame: pl.DataFrame, spec: RecordSpec) -> pl.DataFrame:
    """Flatten a decoded frame and apply the spec's preparation."""
    frame = flatten(frame)
    if spec.prepare is not None:
        frame = spec.prepare(frame)
    return frame


def latest_indexed(frame: pl.DataFrame) -> Observed | None:
    """Bluesky profile views carry ``indexedAt`` (when the AppView last indexed the profile): the
    latest one in a file is the nearest lower bound of when the file was saved."""
    if "indexedAt" not in frame.columns:
        return None
    latest = parse_dates(frame.get_column("indexedAt").cast(pl.Utf8)).max()
    if latest is None:
        return None
    return Observed(latest, "record", "the latest indexedAt in the file")  # type: ignore[arg-type]
