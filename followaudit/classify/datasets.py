"""Labelled training data from ``../shared/data``, read into the canonical follower table.

Only the columns a canonical row has are kept, so the model can never learn from a field the audit
will not have (``dataset``, ``source_file`` and the per-group crawl minute stay out). Rows are read
from the shared folder at training time and never copied into the package.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..errors import InputError
from ..schema import conform

VENDORS = ("INT", "FSF", "TWT")
HUMANS = ("TFP", "E13")


def default_data_dir() -> Path:
    """``$FOLLOWAUDIT_TRAINING_DATA`` or ``../shared/data`` next to the repository."""
    env = os.environ.get("FOLLOWAUDIT_TRAINING_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass(frozen=True)
class Labelled:
    """A labelled canonical table: ``frame`` (canonical columns), ``y`` (1 = fake), ``group``."""

    name: str
    frame: pl.DataFrame
    y: pl.Series
    group: pl.Series
    files: tuple[Path, ...]

    def sha256(self) -> str:
        """Hash of the source files' bytes, in order, for the model card."""
        h = hashlib.sha256()
        for path in self.files:
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()


def _need(path: Path) -> Path:
    if not path.exists():
        raise InputError(
            f"training data not found: {path}",
            hint="set FOLLOWAUDIT_TRAINING_DATA to the folder holding cresci-2015/ and instafake/",
        )
    return path


def _flag(col: str) -> pl.Expr:
    # MIB booleans are "1" or empty
    return pl.col(col).fill_null("").str.strip_chars().is_in(["1", "1.0", "true", "True"])


def _text_present(col: str) -> pl.Expr:
    return pl.col(col).fill_null("").str.strip_chars().str.len_chars() > 0


def load_cresci2015(data_dir: Path | None = None) -> Labelled:
    """Cresci et al. 2015 (MIB): humans TFP/E13 vs bought fakes INT/FSF/TWT, as canonical rows."""
    path = _need((data_dir or default_data_dir()) / "cresci-2015" / "users.csv")
    raw = pl.read_csv(path, infer_schema_length=0)
    parsed = raw.select(
        pl.lit("twitter").alias("platform"),
        pl.col("id").alias("follower_id"),
        pl.col("screen_name").alias("handle"),
        pl.col("name").alias("display_name"),
        pl.col("created_at").str.strptime(pl.Datetime("us", "UTC"), "%a %b %d %H:%M:%S %z %Y").alias("created_at"),
        pl.col("followers_count").cast(pl.Int64),
        pl.col("friends_count").cast(pl.Int64).alias("following_count"),
        pl.col("statuses_count").cast(pl.Int64).alias("posts_count"),
        pl.col("favourites_count").cast(pl.Int64).alias("likes_count"),
        pl.col("listed_count").cast(pl.Int64),
        (~_flag("default_profile_image")).alias("has_avatar"),
        pl.col("description").fill_null("").alias("bio"),
        _text_present("url").alias("has_url"),
        _text_present("location").alias("has_location"),
        # `updated` is the crawl time: it only enters as the reference for account age
        pl.col("updated").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S").dt.replace_time_zone("UTC").alias("observed_at"),
        pl.col("label").replace_strict({"human": "real", "fake": "fake"}).alias("truth_label"),
    )
    frame = conform(parsed)
    return Labelled(
        name="cresci-2015",
        frame=frame,
        y=(raw["label"] == "fake").cast(pl.Int8).alias("y"),
        group=raw["dataset"].alias("group"),
        files=(path,),
    )


def load_instafake(data_dir: Path | None = None) -> Labelled:
    """InstaFake fake-v1.0 (Akyon & Kalfaoglu 2019): anonymised Instagram profiles."""
    base = (data_dir or default_data_dir()) / "instafake" / "fake-v1.0"
    files = (_need(base / "fakeAccountData.json"), _need(base / "realAccountData.json"))
    raw = pl.concat([pl.read_json(f) for f in files], how="vertical_relaxed")
    parsed = raw.select(
        pl.lit("instagram").alias("platform"),
        pl.int_range(0, pl.len()).cast(pl.Utf8).alias("follower_id"),
        pl.col("userFollowerCount").cast(pl.Int64).alias("followers_count"),
        pl.col("userFollowingCount").cast(pl.Int64).alias("following_count"),
        pl.col("userMediaCount").cast(pl.Int64).alias("posts_count"),
        (pl.col("userHasProfilPic") == 1).alias("has_avatar"),
        (pl.col("userIsPrivate") == 1).alias("private"),
        pl.col("userBiographyLength").cast(pl.Int64).alias("bio_length"),
        pl.col("usernameLength").cast(pl.Int64).alias("handle_length"),
        pl.col("usernameDigitCount").cast(pl.Int64).alias("handle_digits"),
        pl.when(pl.col("isFake") == 1).then(pl.lit("fake")).otherwise(pl.lit("real")).alias("truth_label"),
    )
    frame = conform(parsed)
    y = raw["isFake"].cast(pl.Int8).alias("y")
    return Labelled(
        name="instafake",
        frame=frame,
        y=y,
        group=y.replace_strict({1: "fake", 0: "real"}, return_dtype=pl.Utf8).alias("group"),
        files=files,
    )
