"""Injection harness for burst detection: organic follower sequences with bought bricks injected.

Organic accounts (all vectorised, seeded):

* the account was created between 2009 and 2016 and is observed on 2023-01-01; follow times grow
  over its life (``u ** (1/γ)``, γ in [1, 2.5]) plus 0–3 viral spikes (2–6% of followers each,
  within days);
* each organic follower either joined just before following (the crust: a per-account share of
  8–35%, age at follow exponential with a mean of 5–40 days) or is an older account whose creation
  date is drawn from the platform's sign-up curve (rising from 2006 to 2013, then flat) up to the
  follow time.

Clustered organic waves (``waves`` > 0): a viral day brings 2,000–6,000 brand-new accounts (at most
15% of the followers), each created within hours of following (follow times spread over ~a day
after the event, creation ~2 hours before its follow). They are organic: a detector must not call
them bought. ``run_harness(waves=k)`` adds k per account.

Bricks: 1–4 per account, 200–5,000 followers each, inserted at random positions as consecutive
followers (``interleave`` > 0 mixes that share of organic followers into the delivery). Their
accounts were made within a 1–60 day window (``window_days``) that ends either right before the purchase (20%: fresh
accounts at the crust) or 2 weeks to 5 years before it (aged accounts); half of the vendors follow
in creation order, half at random.

Exact follow times (``follow_times``): the detector also gets ``followed_at``; each brick is then
delivered over 5 minutes to 3 hours (log-uniform) instead of at once, organic follows falling in
between, and ``instant`` is the share of bricks made of accounts created within hours of their own
follow (created ~2 hours before, like a viral day's sign-ups: by creation date a sign-up wave).

``run_harness`` reports the recall of injected followers (inside a detected burst) and the share
of organic followers wrongly inside a burst, pooled over seeds, plus per-size recall.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from .detect import burst_membership, detect_bursts

DAY = 86_400.0
PLATFORM_START = datetime(2006, 7, 15, tzinfo=UTC).timestamp()
OBSERVED = datetime(2023, 1, 1, tzinfo=UTC).timestamp()
SIZE_CLASSES = ((200, 500), (500, 2000), (2000, 5001))
DELIVERY_HOURS = (5 / 60, 3.0)  # a vendor's delivery of a brick, with exact follow times: 5 minutes to 3 hours


def _signup_cdf() -> tuple[np.ndarray, np.ndarray]:
    """Platform sign-ups per day: rising 2006–2013, then flat (a Twitter-like curve)."""
    days = np.arange(PLATFORM_START, OBSERVED, DAY)
    years = (days - PLATFORM_START) / (365.25 * DAY)
    rate = np.minimum(years / 6.5, 1.0) ** 1.5 + 0.02
    cdf = np.cumsum(rate)
    return days, cdf / cdf[-1]


_DAYS, _CDF = _signup_cdf()


def organic_sequence(n: int, rng: np.random.Generator, waves: int = 0, wave_hours: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Follow times and creation times (epoch seconds) of ``n`` organic followers, in follow order.

    ``waves`` viral days each add thousands of brand-new accounts (so more than ``n`` come back)."""
    start = rng.uniform(datetime(2009, 1, 1, tzinfo=UTC).timestamp(), datetime(2016, 1, 1, tzinfo=UTC).timestamp())
    gamma = rng.uniform(1.0, 2.5)
    follow = start + (OBSERVED - start) * rng.random(n) ** (1.0 / gamma)
    for _ in range(int(rng.integers(0, 4))):  # viral spikes: a few % of followers within days
        k = int(n * rng.uniform(0.02, 0.06))
        at = rng.uniform(start + 30 * DAY, OBSERVED - 30 * DAY)
        idx = rng.choice(n, size=k, replace=False)
        follow[idx] = at + rng.exponential(rng.uniform(1, 5) * DAY, k)
    follow = np.sort(np.minimum(follow, OBSERVED - 1.0))
    new_share = rng.uniform(0.08, 0.35)
    joined = rng.random(n) < new_share
    fresh = follow - rng.exponential(rng.uniform(5, 40) * DAY, n)
    # older accounts: inverse-CDF draw from the sign-up curve, truncated at the follow time
    upto = np.interp(follow - DAY, _DAYS, _CDF)
    older = np.interp(rng.random(n) * upto, _CDF, _DAYS)
    created = np.where(joined, np.maximum(fresh, PLATFORM_START), older)
    created = np.minimum(created, follow - 60.0)
    if waves:
        follow, created = _add_waves(follow, created, rng, waves, n, wave_hours)
    return follow, created


def _add_waves(follow: np.ndarray, created: np.ndarray, rng: np.random.Generator, waves: int,
               n: int, wave_hours: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Viral days: thousands of accounts made within hours of following (organic, clustered)."""
    parts_f, parts_c = [follow], [created]
    for _ in range(waves):
        k = int(min(rng.integers(2_000, 6_001), 0.15 * n))
        at = rng.uniform(follow[0] + 60 * DAY, OBSERVED - 3 * DAY)
        f = at + rng.exponential(wave_hours * 3600.0, k)  # the day after the event (mean 8 hours by default)
        parts_f.append(f)
        parts_c.append(f - 60.0 - rng.exponential(2 * 3600.0, k))
    follow, created = np.concatenate(parts_f), np.concatenate(parts_c)
    order = np.argsort(follow, kind="stable")
    return np.minimum(follow[order], OBSERVED - 1.0), created[order]


def sequence_with_bricks(n_organic: int, bricks: list[tuple[int, int, float, float]], seed: int = 0) -> pl.DataFrame:
    """Organic followers with bricks at chosen places, for tests and examples.

    ``bricks``: (organic position, size, days between the window's end and the follow, window days).
    Columns follower_id ("u0", ...), follow_rank, created_at and ``brick`` (0 = organic, 1, 2, ...).
    """
    rng = np.random.default_rng(seed)
    follow, created = organic_sequence(n_organic, rng)
    parts, truth, start = [], [], 0
    for b, (pos, size, before, width) in enumerate(sorted(bricks), start=1):
        parts += [created[start:pos], follow[pos] - before * DAY - rng.random(size) * width * DAY]
        truth += [np.zeros(pos - start, np.int64), np.full(size, b, np.int64)]
        start = pos
    parts.append(created[start:])
    truth.append(np.zeros(n_organic - start, np.int64))
    made = np.concatenate(parts)
    return pl.DataFrame(
        {
            "follower_id": "u" + pl.int_range(0, made.size, eager=True).cast(pl.Utf8),
            "follow_rank": np.arange(made.size, dtype=np.int64),
            "created_at": (made * 1_000_000).astype(np.int64),
            "brick": np.concatenate(truth),
        }
    ).with_columns(pl.col("created_at").cast(pl.Datetime("us", "UTC")))


@dataclass
class Injected:
    frame: pl.DataFrame  # follower_id, follow_rank, created_at, brick (0 = organic)
    sizes: list[int]


def inject_bricks(
    follow: np.ndarray, created: np.ndarray, rng: np.random.Generator, *, bricks: int | None = None,
    min_size: int = 200, max_size: int = 5000, interleave: float = 0.0, window_days: tuple[float, float] = (1, 60),
    times_rng: np.random.Generator | None = None, instant: float = 0.0, delivery_hours: tuple[float, float] = DELIVERY_HOURS,
) -> Injected:
    """Insert bought bricks into an organic sequence; returns the follow-ordered frame with truth.

    With ``times_rng`` the frame carries exact follow times (``followed_at``): each brick is delivered
    over ``delivery_hours`` (log-uniform) and a share ``instant`` of the bricks are accounts created
    within hours of their own follow (as a viral day's sign-ups are). Those draws come from
    ``times_rng`` alone, so the bricks' sizes, places and creation windows are the same as without.
    """
    n = follow.size
    k = int(rng.integers(1, 5)) if bricks is None else bricks
    sizes = [int(s) for s in rng.integers(min_size, max_size + 1, k)]
    positions = np.sort(rng.integers(int(0.05 * n), int(0.95 * n), k))
    keys, made, brick_of = [follow.astype(np.float64)], [created], [np.zeros(n, np.int64)]
    for b, (size, pos) in enumerate(zip(sizes, positions, strict=True), start=1):
        bought_at = follow[pos]
        width = rng.uniform(*window_days) * DAY
        if rng.random() < 0.2:  # fresh accounts, made right before the purchase
            end = bought_at - rng.uniform(0, 3) * DAY
        else:
            end = bought_at - np.exp(rng.uniform(np.log(14), np.log(5 * 365))) * DAY
        end = max(end, PLATFORM_START + width + 30 * DAY)
        c = end - rng.random(size) * width
        if rng.random() < 0.5:
            c = np.sort(c)  # vendor follows in creation order (the NYT "slope")
        brick_of.append(np.full(size, b, np.int64))
        if times_rng is not None:  # exact times: a delivery of minutes to hours; organic follows fall in between
            hours = math.exp(times_rng.uniform(math.log(delivery_hours[0]), math.log(delivery_hours[1])))
            at = bought_at + np.sort(times_rng.random(size)) * hours * 3600.0
            if times_rng.random() < instant:  # accounts made within hours of their own follow
                c = at - 60.0 - times_rng.exponential(2 * 3600.0, size)
            keys.append(at)
            made.append(np.minimum(c, at - 60.0))
            continue
        # delivery: consecutive follows right after the insertion point (tiny time steps keep order)
        span = size / max(1e-9, 1.0 - interleave)
        keys.append(bought_at + (np.arange(size) + 0.5) * (span / size) * 1e-6)
        made.append(np.minimum(c, bought_at - 60.0))
        if interleave > 0:  # pull organic followers that came just after into the delivery window
            after = slice(pos + 1, min(n, pos + 1 + int(span - size)))
            keys[0][after] = bought_at + rng.random(after.stop - after.start) * span * 1e-6
    key = np.concatenate(keys)
    order = np.argsort(key, kind="stable")
    created_all = np.concatenate(made)[order]
    frame = pl.DataFrame(
        {
            "follower_id": pl.int_range(0, key.size, eager=True).cast(pl.Utf8),
            "follow_rank": np.arange(key.size, dtype=np.int64),
            "created_at": (created_all * 1_000_000).astype(np.int64),
            "brick": np.concatenate(brick_of)[order],
        }
    ).with_columns(pl.col("created_at").cast(pl.Datetime("us", "UTC")))
    if times_rng is not None:
        frame = frame.with_columns(_timestamps(np.minimum(key[order], OBSERVED - 1.0)).alias("followed_at"))
    return Injected(frame=frame, sizes=sizes)


def _timestamps(seconds: np.ndarray) -> pl.Series:
    return pl.Series((seconds * 1_000_000).astype(np.int64)).cast(pl.Datetime("us", "UTC"))


@dataclass
class HarnessResult:
    seeds: int
    organic_per_account: tuple[int, int]
    interleave: float
    window_days: tuple[float, float]
    injected: int
    recalled: int
    organic: int
    organic_flagged: int
    bursts_found: int
    bricks: int
    bricks_found: int  # at least half of the brick inside a burst
    false_bursts: int  # bursts with no injected member at all
    per_size: dict[str, tuple[int, int]] = field(default_factory=dict)  # class -> (injected, recalled)
    null_accounts: int = 0
    null_false_bursts: int = 0
    null_organic_flagged: int = 0
    null_organic: int = 0
    seconds: float = 0.0
    waves: int = 0
    follow_times: bool = False  # exact follow times given to the detector
    instant: float = 0.0  # share of bricks made of accounts created within hours of following
    found_by: dict[str, int] = field(default_factory=dict)  # bursts by the scans that found them

    @property
    def recall(self) -> float:
        return self.recalled / max(self.injected, 1)

    @property
    def organic_false_flag(self) -> float:
        return self.organic_flagged / max(self.organic, 1)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["recall"] = self.recall
        out["organic_false_flag"] = self.organic_false_flag
        out["per_size_recall"] = {k: (r / i if i else None) for k, (i, r) in self.per_size.items()}
        return out

    def summary(self) -> str:
        lines = [
            f"seeds {self.seeds}, organic followers per account {self.organic_per_account[0]:,}-{self.organic_per_account[1]:,}, "
            f"interleave {self.interleave:.0%}, brick creation windows {self.window_days[0]:g}-{self.window_days[1]:g} days, "
            f"organic sign-up waves per account {self.waves}"
            + (", exact follow times" if self.follow_times else "")
            + (f", bricks of accounts made within hours of following: {self.instant:.0%}" if self.instant else ""),
            f"recall of injected followers: {self.recall:.4f} ({self.recalled:,} of {self.injected:,}); "
            f"bricks found {self.bricks_found}/{self.bricks}",
            f"organic followers wrongly inside a burst: {self.organic_false_flag:.4%} ({self.organic_flagged:,} of {self.organic:,})",
            f"bursts reported {self.bursts_found}, of which with no injected member {self.false_bursts}",
        ]
        if self.found_by:
            lines.append("bursts found by: " + ", ".join(f"{k} {v}" for k, v in sorted(self.found_by.items())))
        for name, (inj, rec) in self.per_size.items():
            lines.append(f"  bricks of {name}: recall {rec / inj if inj else float('nan'):.4f} ({rec:,} of {inj:,})")
        if self.null_accounts:
            lines.append(
                f"organic-only accounts: {self.null_accounts}, bursts reported {self.null_false_bursts}, "
                f"organic flagged {self.null_organic_flagged:,} of {self.null_organic:,}"
            )
        lines.append(f"time {self.seconds:.1f} s")
        return "\n".join(lines)


def _flagged(frame: pl.DataFrame, found_by: dict[str, int] | None = None, **params: Any) -> tuple[np.ndarray, int, int]:
    """Who is inside a burst, how many bursts, and how many of them hold no injected follower."""
    bursts = detect_bursts(frame, **params)
    for b in bursts if found_by is not None else []:
        key = " + ".join(b.found_by)
        found_by[key] = found_by.get(key, 0) + 1
    members = burst_membership(frame, bursts)
    rows = members["follower_id"].cast(pl.Int64).to_numpy()  # ids are the row numbers
    inside = np.zeros(frame.height, bool)
    inside[rows] = True
    false = len(bursts)
    if "brick" in frame.columns and len(bursts):
        hit_ids = members["burst_id"].to_numpy()[frame["brick"].to_numpy()[rows] > 0]
        false -= np.unique(hit_ids).size
    return inside, len(bursts), false


def run_harness(
    seeds: int = 50, *, organic: tuple[int, int] = (20_000, 100_000), interleave: float = 0.0,
    null_accounts: int = 0, first_seed: int = 0, window_days: tuple[float, float] = (1, 60), waves: int = 0,
    follow_times: bool = False, instant: float = 0.0, wave_hours: float = 8.0, **params: Any,
) -> HarnessResult:
    """Inject bricks into ``seeds`` organic accounts and score the detector (``params`` go to it).

    ``waves``: clustered organic sign-up waves per account (viral days of brand-new accounts).
    ``wave_hours``: the mean delay of a viral day's follows after its event (8 hours).
    ``follow_times``: the detector gets exact follow times (bricks delivered over 5 minutes to
    3 hours); ``instant``: the share of bricks made of accounts created within hours of following
    (with or without ``follow_times``: the same bricks, seen with or without their times)."""
    started = time.perf_counter()
    res = HarnessResult(seeds, organic, interleave, window_days, 0, 0, 0, 0, 0, 0, 0, 0, waves=waves,
                        follow_times=follow_times, instant=instant)
    per_size = {f"{lo}-{hi - 1}": [0, 0] for lo, hi in SIZE_CLASSES}
    for seed in range(first_seed, first_seed + seeds):
        rng = np.random.default_rng(seed)
        follow, created = organic_sequence(int(rng.integers(organic[0], organic[1] + 1)), rng, waves, wave_hours)
        times_rng = np.random.default_rng((seed, 13)) if follow_times or instant else None
        inj = inject_bricks(follow, created, rng, interleave=interleave, window_days=window_days, times_rng=times_rng,
                            instant=instant)
        shown = inj.frame if follow_times else inj.frame.drop("followed_at", strict=False)  # the detector's view
        inside, found, false = _flagged(shown, res.found_by, **params)
        res.false_bursts += false
        brick = inj.frame["brick"].to_numpy()
        bought = brick > 0
        res.injected += int(bought.sum())
        res.recalled += int((inside & bought).sum())
        res.organic += int((~bought).sum())
        res.organic_flagged += int((inside & ~bought).sum())
        res.bursts_found += found
        for b, size in enumerate(inj.sizes, start=1):
            got = int((inside & (brick == b)).sum())
            res.bricks += 1
            res.bricks_found += got >= size / 2
            for lo, hi in SIZE_CLASSES:
                if lo <= size < hi:
                    per_size[f"{lo}-{hi - 1}"][0] += size
                    per_size[f"{lo}-{hi - 1}"][1] += got
    res.per_size = {k: (v[0], v[1]) for k, v in per_size.items()}
    for seed in range(first_seed + 10_000, first_seed + 10_000 + null_accounts):
        rng = np.random.default_rng(seed)
        follow, created = organic_sequence(int(rng.integers(organic[0], organic[1] + 1)), rng, waves, wave_hours)
        frame = pl.DataFrame(
            {
                "follower_id": pl.int_range(0, follow.size, eager=True).cast(pl.Utf8),
                "follow_rank": np.arange(follow.size, dtype=np.int64),
                "created_at": (created * 1_000_000).astype(np.int64),
            }
        ).with_columns(pl.col("created_at").cast(pl.Datetime("us", "UTC")))
        if follow_times:
            frame = frame.with_columns(_timestamps(follow).alias("followed_at"))
        inside, found, _ = _flagged(frame, **params)
        res.null_accounts += 1
        res.null_false_bursts += found
        res.null_organic += follow.size
        res.null_organic_flagged += int(inside.sum())
    res.seconds = time.perf_counter() - started
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Burst-detection injection harness")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--min-organic", type=int, default=20_000)
    parser.add_argument("--max-organic", type=int, default=100_000)
    parser.add_argument("--interleave", type=float, default=0.0)
    parser.add_argument("--null-accounts", type=int, default=0)
    parser.add_argument("--window-days", type=float, nargs=2, default=(1, 60), metavar=("MIN", "MAX"))
    parser.add_argument("--waves", type=int, default=0, help="organic sign-up waves (viral days) per account")
    parser.add_argument("--follow-times", action="store_true", help="give the detector exact follow times")
    parser.add_argument("--wave-hours", type=float, default=8.0, help="mean delay of a viral day's follows (hours)")
    parser.add_argument("--instant", type=float, default=0.0, help="share of bricks of accounts made within hours of following")
    args = parser.parse_args(argv)
    res = run_harness(
        args.seeds, organic=(args.min_organic, args.max_organic), interleave=args.interleave,
        null_accounts=args.null_accounts, window_days=tuple(args.window_days), waves=args.waves,
        follow_times=args.follow_times, instant=args.instant, wave_hours=args.wave_hours,
    )
    print(res.summary())


if __name__ == "__main__":
    main()
