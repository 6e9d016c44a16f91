"""Partitioned synthetic canonical Parquet, for the scale benchmarks and tests.

``followaudit.synth.generate`` builds one account in memory; for 10M or 100M followers this writes
the account partition by partition instead — each partition is a ``generate`` call with its own
seed — so memory stays at one partition whatever the total. Follower ids and follow ranks are made
unique across partitions by offsetting them with the rows written before.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from ..schema import conform
from ..sources.synth import SynthSpec, generate

DEFAULT_PARTITION_ROWS = 1_000_000
ID_BASE = 10_000_000_000  # synth ids are ID_BASE + a number below 3 * partition rows


def synth_partition(rows: int, index: int, offset: int, *, seed: int = 42, account: str = "demo_account") -> pl.DataFrame:
    """Partition ``index`` of a synthetic account: ``rows`` canonical followers after ``offset`` others."""
    frame = generate(SynthSpec(n=rows, seed=seed * 100_003 + index, account=account))
    local_id = pl.col("follower_id").cast(pl.Int64) - ID_BASE
    return conform(
        frame.with_columns(
            (local_id + ID_BASE + 3 * offset).cast(pl.Utf8).alias("follower_id"),
            (pl.col("follow_rank") + offset).alias("follow_rank"),
        )
    )


def write_partitioned(
    n: int,
    directory: str | Path,
    *,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    seed: int = 42,
    account: str = "demo_account",
    row_group_rows: int = 250_000,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write ``n`` synthetic canonical followers as ``part-00000.parquet``, ... in ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    offset, index = 0, 0
    while offset < n:
        rows = min(partition_rows, n - offset)
        path = out / f"part-{index:05d}.parquet"
        synth_partition(rows, index, offset, seed=seed, account=account).write_parquet(
            path, compression="zstd", row_group_size=row_group_rows
        )
        paths.append(path)
        if progress is not None:
            progress(rows)
        offset += rows
        index += 1
    return paths
