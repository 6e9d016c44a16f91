"""Model labelling speed: canonical Parquet -> features -> LightGBM -> labels (and reasons).

    /work/venv/bin/python benchmarks/bench_model.py                   # 1M synthetic followers
    /work/venv/bin/python benchmarks/bench_model.py --rows 2000000 --parquet /tmp/f.parquet

Data: ``followaudit synth N -o FILE.parquet`` (canonical columns). Measured in this process, best
of ``--repeat`` runs, each step separately:

* read: ``pl.read_parquet`` of the canonical columns the labeller needs;
* features: ``feature_columns`` — Polars expressions, and the text features in one compiled pass;
* predict: the model's compiled trees (``TreeModel.score``, 2 threads) and the isotonic calibration;
  LightGBM's own predictor on the same matrix, for comparison;
* label: ``label_model(explain="none")`` — features, prediction, inactivity rule, labels;
* label + reasons: ``label_model()`` as ``score`` and ``audit`` run it (top reasons of the fake
  followers ranked in the scoring pass, then put in words);
* reasons: the difference between the two, per explained (fake) follower.

The load average is printed: other work on a shared 2-core machine slows every figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from followaudit.classify.model import feature_columns, feature_matrix, label_model, load_model
from followaudit.schema import COLUMN_NAMES, conform

AS_OF = datetime(2025, 1, 1, tzinfo=UTC)


CPU: dict[str, float] = {}


def best(fn, repeat: int, name: str = "") -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Best wall time of ``repeat`` runs; the CPU time (all threads) of that run goes to ``CPU[name]``."""
    times, out = [], None
    for _ in range(repeat):
        c = time.process_time()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        if times[-1] == min(times):
            CPU[name] = time.process_time() - c
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--parquet", type=Path, default=Path("/tmp/followaudit-bench-model.parquet"))
    ap.add_argument("--model", default="twitter", choices=["twitter", "instagram", "crossplatform"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.parquet.exists():
        subprocess.run([sys.executable, "-m", "followaudit", "synth", str(args.rows), "-o", str(args.parquet)], check=True)
    cols = [c for c in COLUMN_NAMES if c != "raw"]
    t_read, frame = best(lambda: pl.read_parquet(args.parquet, columns=[c for c in cols if c in pl.read_parquet_schema(args.parquet)]), 1)
    frame = conform(frame).head(args.rows)
    n = frame.height
    model = load_model(args.model)
    platform = {"twitter": "twitter", "instagram": "instagram"}.get(args.model, "bluesky")
    label_model(frame.head(1000), as_of=AS_OF, platform=platform)  # compiles the trees once (cached per machine)
    t_feat, columns = best(lambda: feature_columns(frame, model.spec.features, AS_OF), args.repeat, "features")
    t_pred, raw = best(lambda: model.calibrate(model.trees.score(columns)[0]), args.repeat, "predict")
    X = feature_matrix(frame, model.spec.features, AS_OF)
    t_lgb, _ = best(lambda: model.booster.predict(X, raw_score=True), 1, "lightgbm")
    t_label, labels = best(lambda: label_model(frame, as_of=AS_OF, platform=platform, explain="none"), args.repeat, "label")
    t_reasons, _ = best(lambda: label_model(frame, as_of=AS_OF, platform=platform), args.repeat, "reasons")
    n_fake = int((labels["label"] == "fake").sum())
    explain_rate = n_fake / max(t_reasons - t_label, 1e-9)
    load = os.getloadavg()
    print(f"model {args.model}: {len(model.spec.features)} features, {model.trees.n_trees} trees; {n:,} followers")
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print(f"read parquet          {t_read:7.3f} s")

    print(f"trees: {'compiled C' if model.trees._compiled() is not None else 'NumPy (no C compiler)'}")
    cores = os.cpu_count() or 1

    def row(name: str, wall: float, key: str) -> None:
        cpu = CPU.get(key, float("nan"))
        print(f"{name:24s}{wall:7.3f} s wall {n / wall:12,.0f} rows/s | {cpu:6.3f} CPU-s = {n / cpu * cores:12,.0f} rows/s on {cores} idle cores")

    row("features", t_feat, "features")
    row("predict+calibrate", t_pred, "predict")
    row("LightGBM predict alone", t_lgb, "lightgbm")
    wall, cpu = t_feat + t_pred, CPU["features"] + CPU["predict"]
    print(f"{'features+predict':24s}{wall:7.3f} s wall {n / wall:12,.0f} rows/s | {cpu:6.3f} CPU-s = {n / cpu * cores:12,.0f} rows/s on {cores} idle cores")
    row("label_model (labels)", t_label, "label")
    row("label_model with reasons", t_reasons, "reasons")
    print(f"reasons (path attribution + words) for {n_fake:,} fake followers: {explain_rate:,.0f} explained/s (wall)")
    shares = labels["label"].value_counts().sort("label")
    print("labels:", dict(shares.iter_rows()), "mean probability", round(float(np.mean(raw)), 4))


if __name__ == "__main__":
    main()
