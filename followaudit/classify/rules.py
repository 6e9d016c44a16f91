"""Transparent rule baselines: every rule is a named, cited reason.

Three published rule families, evaluated on profile fields only (no tweet texts are available for
followers, so the tweet-content criteria of the originals are left out and say so):

* Socialbakers "FakeFollowerCheck" (2012) criteria, as listed by Cresci et al. 2015, "Fame for sale",
  Table 2. We flag a follower fake when at least ``SB_MIN_CRITERIA`` (2) of the profile criteria fire:
  Socialbakers published the criteria but not how it combined them, and one weak criterion alone
  (e.g. a default avatar) flags too many real people.
* Camisani-Calzolari (2012) "human points", as listed by Cresci et al. 2015, Table 1: one point per
  human-like profile trait. A follower scoring below ``CC_MIN_SHARE`` of the traits that can be
  checked on its platform is flagged fake.
* Inactivity: no post for ``inactive_days`` days (default 90; StatusPeople used 100, SparkToro 120)
  or never posted at all.

Platform signals also count: a moderation label such as Bluesky's ``spam`` and a self-declared
bot flag label the follower fake.

Labels follow the precedence fake > inactive > real.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from ..config import DEFAULT_INACTIVE_DAYS
from .features import feature_exprs

# Socialbakers: "friends/followers ratio ≥ 50:1".
SB_FOLLOWING_RATIO = 50.0
# Socialbakers: "account is more than 2 months old and still has a default profile image".
SB_DEFAULT_AVATAR_MIN_AGE_DAYS = 60.0
# Socialbakers: "user did not fill in bio nor location and is following more than 100 accounts".
SB_EMPTY_PROFILE_MIN_FOLLOWING = 100
SB_MIN_CRITERIA = 2
# Socialbakers' spam phrases ("diet", "make money", "work from home"), applied to the bio because
# follower tweets are not collected; plus the follow-back vocabulary of follower-trading accounts.
SPAM_PHRASES = [
    "diet", "make money", "work from home", "earn $", "free followers", "follow back", "followback",
    "teamfollowback", "#tfb", "followtrain", "gain followers",
]

# Camisani-Calzolari human points: a follower with fewer than half of the checkable human traits is
# flagged fake (a majority rule; the original weighed human points against bot points from tweets).
CC_MIN_SHARE = 0.5
# Camisani-Calzolari: "has at least 30 followers", "has at least 50 tweets".
CC_MIN_FOLLOWERS = 30
CC_MIN_POSTS = 50


# Reason texts: stable strings (the web app filters on them) in plain words, with the source.
R_RATIO = "follows at least 50 accounts per follower (Socialbakers)"
R_DEFAULT_AVATAR = "default profile picture on an account older than 2 months (Socialbakers)"
R_EMPTY_PROFILE = "no bio and no location, yet follows more than 100 accounts (Socialbakers)"
R_NEVER_POSTED_SB = "has never posted (Socialbakers)"
R_SPAM_BIO = "spam phrase in the bio (Socialbakers)"
R_CC_LOW = "fewer than half of the human profile traits (Camisani-Calzolari)"
R_MODERATION = "platform moderation label: spam"
R_SELF_BOT = "declares itself a bot"
R_NEVER_POSTED = "has never posted"
R_NO_RECENT = "no post in the last {days} days"
R_REAL = "active, with a human-like profile"


def _flag(expr: pl.Expr) -> pl.Expr:
    """A rule that cannot be checked (null input) does not fire."""
    return expr.fill_null(False)


def rule_columns(as_of: datetime | None, inactive_days: int = DEFAULT_INACTIVE_DAYS) -> dict[str, pl.Expr]:
    """Boolean expression per rule, plus the Camisani-Calzolari score."""
    f = feature_exprs(as_of)
    followers = pl.col("followers_count")
    following = pl.col("following_count")
    posts = pl.col("posts_count")
    has_bio = pl.col("bio_length") > 0

    sb = {
        # max_horizontal skips nulls: without the guard an unknown follower count would read as 0
        "sb_ratio": _flag(followers.is_not_null() & (following >= SB_FOLLOWING_RATIO * pl.max_horizontal(followers, pl.lit(1)))),
        "sb_default_avatar": _flag(~pl.col("has_avatar") & (f["age_days"] > SB_DEFAULT_AVATAR_MIN_AGE_DAYS)),
        "sb_empty_profile": _flag(~has_bio & ~pl.col("has_location") & (following > SB_EMPTY_PROFILE_MIN_FOLLOWING)),
        "sb_never_posted": _flag(posts == 0),
        # Aho-Corasick substring search, case-insensitive: far faster than a regex over millions of bios.
        "sb_spam_bio": _flag(pl.col("bio").str.contains_any(SPAM_PHRASES, ascii_case_insensitive=True)),
    }
    sb_count = pl.sum_horizontal([e.cast(pl.Int32) for e in sb.values()])

    # Camisani-Calzolari: one point per trait; traits whose input is null are not counted at all.
    traits = [
        pl.col("display_name").str.len_chars() > 0,
        pl.col("has_avatar"),
        pl.col("has_location"),
        has_bio,
        followers >= CC_MIN_FOLLOWERS,
        pl.col("listed_count") > 0,
        posts >= CC_MIN_POSTS,
        pl.col("has_url"),
        2 * followers >= following,
    ]
    points = pl.sum_horizontal([t.cast(pl.Int32).fill_null(0) for t in traits])
    checkable = pl.sum_horizontal([t.is_not_null().cast(pl.Int32) for t in traits])
    cc_share = points.cast(pl.Float64) / checkable.cast(pl.Float64)
    cc_low = _flag((checkable >= 4) & (cc_share < CC_MIN_SHARE))

    labels = pl.col("moderation_labels").list.eval(pl.element().str.to_lowercase())
    days_idle = f["days_since_active"]
    return {
        **sb,
        "sb_fake": sb_count >= SB_MIN_CRITERIA,
        "cc_score": cc_share,
        "cc_fake": cc_low,
        "moderation_spam": _flag(labels.list.contains("spam")),
        "self_bot": _flag(pl.col("self_declared_bot")),
        "never_posted": _flag(posts == 0),
        "idle": _flag(days_idle > inactive_days),
        "activity_unknown": pl.col("last_active_at").is_null() & ~_flag(posts == 0),
    }


# Reasons in display order, each with the rule flag that adds it. A follower's reasons are encoded as
# a bitmask, and only the few distinct masks are turned into lists of text: building string lists
# per follower is the slow part of labelling millions of rows.
def _reason_flags(r: dict[str, pl.Expr], inactive_days: int) -> list[tuple[str, pl.Expr]]:
    is_fake = _is_fake(r)
    return [
        (R_RATIO, r["sb_fake"] & r["sb_ratio"]),
        (R_DEFAULT_AVATAR, r["sb_fake"] & r["sb_default_avatar"]),
        (R_EMPTY_PROFILE, r["sb_fake"] & r["sb_empty_profile"]),
        (R_NEVER_POSTED_SB, r["sb_fake"] & r["sb_never_posted"]),
        (R_SPAM_BIO, r["sb_fake"] & r["sb_spam_bio"]),
        (R_CC_LOW, r["cc_fake"]),
        (R_MODERATION, r["moderation_spam"]),
        (R_SELF_BOT, r["self_bot"]),
        (R_NEVER_POSTED, ~is_fake & r["never_posted"]),
        (R_NO_RECENT.format(days=inactive_days), ~is_fake & ~r["never_posted"] & r["idle"]),
    ]


def _is_fake(r: dict[str, pl.Expr]) -> pl.Expr:
    return r["sb_fake"] | r["cc_fake"] | r["moderation_spam"] | r["self_bot"]


def reasons_from_mask(mask: pl.Series, texts: list[str], default: str = R_REAL) -> pl.Series:
    """Map a bitmask column to lists of reason texts, building each distinct list once."""
    distinct = mask.unique().to_list()
    lists = [[t for bit, t in enumerate(texts) if m >> bit & 1] or [default] for m in distinct]
    table = pl.DataFrame({"mask": distinct, "reasons": lists}, schema={"mask": mask.dtype, "reasons": pl.List(pl.Utf8)})
    return mask.to_frame("mask").join(table, on="mask", how="left", maintain_order="left")["reasons"]


def label_rules(
    followers: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: datetime | None,
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
) -> pl.DataFrame:
    """Label every follower fake / inactive / real with the names of the rules that fired.

    Returns ``follower_id, label, probability (null), reasons (list of str), activity_unknown``.
    """
    r = rule_columns(as_of, inactive_days)
    flags = _reason_flags(r, inactive_days)
    is_fake = _is_fake(r)
    is_inactive = r["never_posted"] | r["idle"]
    mask = pl.sum_horizontal([flag.cast(pl.UInt32) * (1 << bit) for bit, (_, flag) in enumerate(flags)])
    out = (
        followers.lazy()
        .select(
            pl.col("follower_id"),
            pl.when(is_fake).then(pl.lit("fake")).when(is_inactive).then(pl.lit("inactive")).otherwise(pl.lit("real")).alias("label"),
            pl.lit(None, dtype=pl.Float64).alias("probability"),
            mask.alias("_mask"),
            r["activity_unknown"].alias("activity_unknown"),
        )
        .collect()
    )
    reasons = reasons_from_mask(out["_mask"], [text for text, _ in flags])
    return out.with_columns(reasons.alias("reasons")).select("follower_id", "label", "probability", "reasons", "activity_unknown")


def inactive_codes(
    followers: pl.DataFrame | pl.LazyFrame, *, as_of: datetime | None, inactive_days: int = DEFAULT_INACTIVE_DAYS,
) -> tuple[np.ndarray, pl.Series]:
    """The inactivity rule alone (for the model), as codes: 0 not inactive, 1 never posted, 2 no
    recent post (uint8), and ``activity_unknown``. ``inactive_texts`` names the codes; no string is written per follower."""
    r = rule_columns(as_of, inactive_days)
    out = (
        followers.lazy()
        .select(
            pl.when(r["never_posted"]).then(pl.lit(1, pl.UInt8)).when(r["idle"]).then(pl.lit(2, pl.UInt8))
            .otherwise(pl.lit(0, pl.UInt8)).alias("code"),
            r["activity_unknown"].alias("activity_unknown"),
        )
        .collect()
    )
    return out["code"].to_numpy(), out["activity_unknown"]


def inactive_texts(inactive_days: int = DEFAULT_INACTIVE_DAYS) -> list[str]:
    """The reasons of ``inactive_codes`` 1 and 2."""
    return [R_NEVER_POSTED, R_NO_RECENT.format(days=inactive_days)]
