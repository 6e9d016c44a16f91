"""Deliberately unfamiliar audiences, with ground truth, to calibrate and test the shift diagnostic.

The training data (Cresci-15, InstaFake) is old Twitter and anonymised Instagram: humans with
hundreds of followers and thousands of posts against bought accounts that follow thousands. These
generators make what it never saw, in canonical rows:

* ``bluesky``: ordinary people on a newer network — few followers, modest posting, default-ish
  profiles, accounts one to two years old; the fakes are bought empty accounts; no likes, lists,
  location or website fields (as a Bluesky import);
* ``lurkers``: Twitter accounts of people who read and never write — no posts, few followers,
  default avatars — mixed with bought accounts that have avatars, bios and some posts;
* ``mastodon``: small-instance people with long bios, few followers, mid activity; the fakes are
  spam accounts with generated handles.

Used by ``followaudit evaluate`` (the far end of the shift calibration) and by the tests.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from ..schema import conform
from .masks import MASKS, apply_mask

SEEN_AT = datetime(2025, 6, 1, tzinfo=UTC)
KINDS = ("bluesky", "lurkers", "mastodon")
_DAY_US = 86_400_000_000


FIRST = np.array(["anna", "ben", "chloe", "david", "elif", "farid", "grace", "hiro", "ines", "jonas", "kemi", "lucas",
                  "mara", "nils", "olga", "pablo", "quinn", "rosa", "sam", "tariq", "uma", "vera", "will", "yara"])
LAST = np.array(["smith", "garcia", "muller", "rossi", "kim", "okoye", "novak", "silva", "jensen", "haddad", "wong", "dubois"])


def _names(rng: np.random.Generator, n: int, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Handles and display names of ordinary shapes: first name, often a surname, sometimes digits."""
    first, last = FIRST[rng.integers(0, len(FIRST), n)], LAST[rng.integers(0, len(LAST), n)]
    style = rng.integers(0, 3, n)
    sep = np.where(rng.random(n) < 0.3, "_", "")
    handle = np.where(style == 0, first, np.where(style == 1, np.char.add(np.char.add(first, sep), last), np.char.add(first[:, None].astype("U1")[:, 0], last)))
    handle = np.where(digits, np.char.add(handle, rng.integers(1, 10**4, n).astype(str)), handle)
    name = np.where(rng.random(n) < 0.7, np.char.add(np.char.add(np.char.capitalize(first), " "), np.char.capitalize(last)), np.char.capitalize(first))
    return handle, name


def generate_unfamiliar(kind: str, n: int, fake_share: float, seed: int = 0) -> pl.DataFrame:
    """``n`` canonical followers of ``kind`` with ``truth_label`` (fake / real) at ``fake_share``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    rng = np.random.default_rng(seed)
    n_fake = int(round(n * fake_share))
    fake = np.arange(n) < n_fake
    seen = int(SEEN_AT.timestamp() * 1e6)
    if kind == "bluesky":
        followers = np.where(fake, rng.integers(0, 4, n), np.round(rng.lognormal(np.log(35), 1.1, n)))
        following = np.where(fake, rng.integers(40, 700, n), np.round(rng.lognormal(np.log(90), 0.9, n)))
        posts = np.where(fake, 0, np.where(rng.random(n) < 0.2, 0, np.round(rng.lognormal(np.log(50), 1.4, n))))
        avatar = np.where(fake, rng.random(n) < 0.1, rng.random(n) < 0.75)
        bio = np.where(fake, 0, np.where(rng.random(n) < 0.5, rng.integers(8, 160, n), 0))
        age_days = np.where(fake, rng.uniform(20, 40, n), rng.uniform(60, 800, n))
        digits = np.where(fake, rng.random(n) < 0.5, rng.random(n) < 0.15)
        platform, mask = "bluesky", "bluesky"
    elif kind == "lurkers":
        followers = np.where(fake, rng.integers(5, 120, n), np.round(rng.lognormal(np.log(8), 1.0, n)))
        following = np.where(fake, rng.integers(150, 900, n), np.round(rng.lognormal(np.log(60), 1.0, n)))
        posts = np.where(fake, rng.integers(3, 80, n), np.where(rng.random(n) < 0.7, 0, rng.integers(1, 20, n)))
        avatar = np.where(fake, rng.random(n) < 0.9, rng.random(n) < 0.35)
        bio = np.where(fake, rng.integers(20, 120, n), np.where(rng.random(n) < 0.2, rng.integers(5, 60, n), 0))
        age_days = np.where(fake, rng.uniform(100, 900, n), rng.uniform(200, 4000, n))
        digits = np.where(fake, rng.random(n) < 0.3, rng.random(n) < 0.4)
        platform, mask = "twitter", "full"
    else:
        followers = np.where(fake, rng.integers(0, 10, n), np.round(rng.lognormal(np.log(60), 1.2, n)))
        following = np.where(fake, rng.integers(0, 40, n), np.round(rng.lognormal(np.log(70), 1.0, n)))
        posts = np.where(fake, rng.integers(1, 30, n), np.round(rng.lognormal(np.log(300), 1.5, n)))
        avatar = np.where(fake, rng.random(n) < 0.5, rng.random(n) < 0.85)
        bio = np.where(fake, rng.integers(30, 300, n), np.where(rng.random(n) < 0.8, rng.integers(20, 500, n), 0))
        age_days = np.where(fake, rng.uniform(1, 30, n), rng.uniform(100, 2500, n))
        digits = np.where(fake, rng.random(n) < 0.8, rng.random(n) < 0.1)
        platform, mask = "mastodon", "mastodon"
    handle, name = _names(rng, n, digits)
    frame = pl.DataFrame({
        "platform": [platform] * n,
        "follower_id": [f"{kind}-{seed}-{i}" for i in range(n)],
        "handle": handle,
        "display_name": name,
        "created_at": pl.Series((seen - age_days * _DAY_US).astype(np.int64)).cast(pl.Datetime("us", "UTC")),
        "followers_count": followers.astype(np.int64),
        "following_count": following.astype(np.int64),
        "posts_count": posts.astype(np.int64),
        "likes_count": np.round(posts * rng.uniform(0, 5, n)).astype(np.int64),
        "listed_count": np.zeros(n, dtype=np.int64),
        "has_avatar": avatar,
        "bio_length": bio.astype(np.int64),
        "has_url": rng.random(n) < 0.1,
        "has_location": rng.random(n) < 0.3,
        "observed_at": pl.Series([seen] * n).cast(pl.Datetime("us", "UTC")),
        "truth_label": np.where(fake, "fake", "real"),
    })
    return apply_mask(conform(frame), mask) if MASKS[mask] else conform(frame)
