"""CPU-s of the in-place check (``sources.in_place.check_in_place``) on a canonical Parquet file.

    python benchmarks/bench_in_place.py benchmarks/out/canonical_3000000.parquet --repeat 5

Each repeat runs the check once in this process; CPU is user+sys of the whole process (every
thread) from ``getrusage``; the least of the repeats is printed with the load average beside it.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from followaudit.sources.in_place import check_in_place
from followaudit.store import Store


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "w.duckdb") as store:
        check_in_place(store, args.path, platform=None, account=None, order=None)  # warm the page cache
        runs = []
        for _ in range(args.repeat):
            c0, w0 = cpu(), time.perf_counter()
            result = check_in_place(store, args.path, platform=None, account=None, order=None)
            runs.append((cpu() - c0, time.perf_counter() - w0))
    best = min(runs)
    print(f"{args.path.name}: {result}")
    print(f"check_in_place CPU-s least of {args.repeat}: {best[0]:.3f} (wall {best[1]:.3f} s); all CPU "
          + ", ".join(f"{c:.3f}" for c, _ in runs) + f"; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
