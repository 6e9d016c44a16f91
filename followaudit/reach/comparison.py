"""Where an account's fake share stands among accounts of similar size.

Two comparisons, both in the report's ``comparison`` section:

* **workspace** — the other accounts audited in this workspace (their latest labelled snapshot, same
  labelling method) whose follower count is within a factor of ``SIZE_FACTOR`` of this account's.
  Percentile = (accounts below + ½ · accounts equal) / accounts compared (the mid-rank convention),
  computed for the point estimate and for both ends of its interval. At least ``MIN_PEERS`` peers
  are needed.
* **reference** — the bundled table ``data/reference/fake_share_reference.csv`` of published figures
  (source, URL, date and quote per row; see its README). ``fraction_of_accounts`` rows give the
  published distribution of fake shares in a size tier, so the account's share falls in a
  percentile *range* (e.g. "below 10% fake: the lowest 47% of nano influencers"); ``median`` rows
  say above or below the published median; ``platform_prevalence`` rows give a base rate.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import polars as pl

from ..estimate.intervals import Share
from ..store.workspace import Store

SIZE_FACTOR = 10.0
MIN_PEERS = 3
REFERENCE_FILE = "fake_share_reference.csv"


@lru_cache(maxsize=1)
def reference_table() -> pl.DataFrame:
    """The bundled table of published figures."""
    data = resources.files("followaudit").joinpath("data", "reference", REFERENCE_FILE).read_bytes()
    return pl.read_csv(
        data,
        schema_overrides={"followers_min": pl.Float64, "followers_max": pl.Float64, "bucket_low": pl.Float64,
                          "bucket_high": pl.Float64, "value": pl.Float64, "published": pl.Utf8},
    )


def _band(frame: pl.DataFrame, followers: int) -> pl.DataFrame:
    return frame.filter(
        (pl.col("followers_min").is_null() | (pl.col("followers_min") <= followers))
        & (pl.col("followers_max").is_null() | (pl.col("followers_max") > followers))
    )


def percentile_range(buckets: list[tuple[float, float, float]], value: float) -> tuple[float, float] | None:
    """Percentile range of ``value`` given (low, high, fraction) buckets of a published distribution.

    Mass not covered by the buckets (e.g. only "< 10%" is published) is one implicit bucket above
    the highest published one, so the range is as wide as the published figures force it to be.
    """
    if not buckets:
        return None
    buckets = sorted(buckets)
    top = max(h for _, h, _ in buckets)
    rest = 1.0 - sum(f for _, _, f in buckets)
    if top < 1.0 and rest > 1e-9:
        buckets.append((top, 1.0 + 1e-12, rest))
    cum = 0.0
    for low, high, frac in buckets:
        if low <= value < high or (high >= 1.0 and value >= low):
            return (cum, min(1.0, cum + frac))
        cum += frac
    return None


def reference_comparison(platform: str | None, followers: int, shares: dict[str, Share]) -> dict[str, Any]:
    """Compare with the bundled published figures for this platform and size."""
    table = reference_table()
    rows = _band(table.filter(pl.col("platform") == (platform or "")), followers)
    if rows.height == 0:
        have = sorted(set(table["platform"].to_list()))
        return {
            "available": False,
            "missing": f"no bundled published figure for {platform or 'this platform'} accounts of {followers:,} followers (the table covers: {', '.join(have)}; see data/reference/README.md)",
        }
    fake = shares["fake"]
    both = {"share": fake.share + shares["inactive"].share, "low": None, "high": None}
    out = []
    for (tier, metric, compares), group in rows.group_by(["tier", "metric", "compares"], maintain_order=True):
        mine = {"share": fake.share, "low": fake.low, "high": fake.high} if compares == "fake" else both
        first = group.row(0, named=True)
        item: dict[str, Any] = {
            "tier": tier, "metric": metric, "compares": compares, "account_share": mine,
            "source": first["source"], "url": first["url"], "published": first["published"],
            "figures": [
                {"bucket_low": r["bucket_low"], "bucket_high": r["bucket_high"], "value": r["value"], "quote": r["quote"]}
                for r in group.iter_rows(named=True)
            ],
        }
        if metric == "fraction_of_accounts":
            buckets = [(r["bucket_low"], r["bucket_high"], r["value"]) for r in group.iter_rows(named=True)]
            point = percentile_range(buckets, mine["share"])
            item["percentile_range"] = list(point) if point else None
            if mine["low"] is not None:
                lo, hi = percentile_range(buckets, mine["low"]), percentile_range(buckets, mine["high"])
                item["percentile_range_interval"] = [lo[0], hi[1]] if lo and hi else None
            item["statement"] = (
                f"a fake share of {mine['share']:.1%} places the account between the {point[0]:.0%} and "
                f"{point[1]:.0%} percentiles of {tier} {platform} accounts in this source" if point else None
            )
        elif metric in ("median", "platform_prevalence"):
            ref = float(first["value"])
            item["reference_value"] = ref
            item["difference"] = mine["share"] - ref
            what = "the published median" if metric == "median" else "the platform-wide rate"
            item["statement"] = f"{mine['share']:.1%} ({compares.replace('_', ' ')}) vs {ref:.1%}, {what}"
        out.append(item)
    return {"available": True, "rows": out}


def workspace_peers(store: Store, method: str, *, exclude_account: str | None) -> pl.DataFrame:
    """Latest labelled snapshot per other account: snapshot_id, account, platform, followers, fake_share, n.

    ``fake_share`` is the headline its audit stored (``settings.headline``, the same number its report
    leads with), else the share of its labels; audits that withheld their share are left out."""
    frame = store.query(
        """WITH shares AS (
               SELECT snapshot_id, count(*) AS n, avg(CASE WHEN label = 'fake' THEN 1.0 ELSE 0.0 END) AS fake_share
               FROM labels WHERE method = ? GROUP BY snapshot_id),
           sized AS (
               SELECT s.snapshot_id, s.account, s.platform, s.taken_at, sh.n,
                      coalesce(TRY_CAST(json_extract_string(s.settings, '$.headline.' || ? || '.share') AS DOUBLE), sh.fake_share) AS fake_share,
                      json_extract_string(s.settings, '$.headline.' || ? || '.withheld') AS withheld,
                      coalesce(s.followers_reported, s.sample_population, sh.n) AS followers,
                      row_number() OVER (PARTITION BY lower(coalesce(s.account, '#' || s.snapshot_id)) ORDER BY s.taken_at DESC, s.snapshot_id DESC) AS k
               FROM snapshots s JOIN shares sh USING (snapshot_id))
           SELECT snapshot_id, account, platform, followers, fake_share, n FROM sized
           WHERE k = 1 AND withheld IS NULL AND (? IS NULL OR account IS NULL OR lower(account) <> lower(?))""",
        [method, method, method, exclude_account, exclude_account],
    )
    return frame


def mid_rank_percentile(values: list[float], x: float) -> float:
    below = sum(v < x for v in values)
    equal = sum(v == x for v in values)
    return (below + 0.5 * equal) / len(values)


def workspace_comparison(store: Store, account: str | None, followers: int, method: str, fake: Share) -> dict[str, Any]:
    peers = workspace_peers(store, method, exclude_account=account)
    similar = peers.filter((pl.col("followers") >= followers / SIZE_FACTOR) & (pl.col("followers") <= followers * SIZE_FACTOR))
    if similar.height < MIN_PEERS:
        return {
            "available": False, "peers": similar.height, "accounts_in_workspace": peers.height,
            "missing": f"at least {MIN_PEERS} other audited accounts of similar size ({followers / SIZE_FACTOR:,.0f}–{followers * SIZE_FACTOR:,.0f} followers) in this workspace; have {similar.height}",
        }
    values = similar["fake_share"].to_list()
    return {
        "available": True,
        "peers": similar.height,
        "size_band": [followers / SIZE_FACTOR, followers * SIZE_FACTOR],
        "percentile": mid_rank_percentile(values, fake.share),
        "percentile_low": mid_rank_percentile(values, fake.low),
        "percentile_high": mid_rank_percentile(values, fake.high),
        "peer_median_fake_share": float(similar["fake_share"].median()),
        "method": f"mid-rank percentile of the headline fake share among the latest labelled snapshot of each other account within ×{SIZE_FACTOR:g} of this account's size (labels: {method})",
    }


def comparison_section(store: Store, *, account: str | None, platform: str | None, followers: int, method: str, shares: dict[str, Share]) -> dict[str, Any]:
    """The report's ``comparison`` section."""
    if followers <= 0 or "fake" not in shares:
        return {"available": False, "missing": "a fake share (an audited snapshot with followers whose profiles can be judged)"}
    workspace = workspace_comparison(store, account, followers, method, shares["fake"]) if store.has_table("labels") else {"available": False, "missing": "labels table"}
    reference = reference_comparison(platform, followers, shares)
    section: dict[str, Any] = {
        "available": bool(workspace["available"] or reference["available"]),
        "followers": followers,
        "fake_share": {"share": shares["fake"].share, "low": shares["fake"].low, "high": shares["fake"].high},
        "workspace": workspace,
        "reference": reference,
    }
    if not section["available"]:
        section["missing"] = f"{workspace['missing']}; {reference['missing']}"
    return section
