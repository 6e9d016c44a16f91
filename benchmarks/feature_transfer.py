"""Which features transfer: leave-one-domain-out Se/Sp and unfamiliar-audience error per feature set.

    python benchmarks/feature_transfer.py [crossplatform|twitter] > feature_transfer.json

For each candidate feature list (and its monotone constraints, from ``classify/model.py``), the model
is trained leave-one-domain-out exactly as ``followaudit evaluate`` does, and fitted on all training
rows to label the deliberately unfamiliar audiences (``classify/unfamiliar.py``): how many of their
ordinary people it calls fake (false-positive rate) and how many of their bought accounts it catches.
The figures go in the model card's "Features tried" section.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np

from followaudit.classify import lodo, model
from followaudit.classify.model import SPECS, feature_matrix
from followaudit.classify.train import augment, choose_threshold, fit, folds, oof_raw, training_set
from followaudit.classify.unfamiliar import KINDS, generate_unfamiliar

AGE = {"age_days", "posts_per_day", "followers_per_day", "following_per_day", "likes_per_day"}
ACTIVITY = {"log_followers", "log_posts", "posts_per_follower", "log_likes", "log_listed"}


def variants(base: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {
        "shipped before (baseline)": tuple(f for f in base if f != "profile_emptiness"),
        "+ profile emptiness": tuple(dict.fromkeys([*base, "profile_emptiness"])),
        "- account age and per-day rates": tuple(f for f in base if f not in AGE),
        "- follower/post counts (ratio kept)": tuple(f for f in base if f not in ACTIVITY),
        "+ emptiness, - counts": tuple(f for f in dict.fromkeys([*base, "profile_emptiness"]) if f not in ACTIVITY),
    }


def measure(name: str, feats: tuple[str, ...]) -> dict:
    spec = dataclasses.replace(SPECS[name], features=feats)
    saved = SPECS[name]
    model.SPECS[name] = spec
    try:
        fs = lodo.build_folds(name)
        dev = [f.deviations()["full"] for f in fs]
        ts = training_set(name)
        aug = augment(spec, ts)
        raw = oof_raw(spec, aug.X, aug.y, aug.split(folds(ts.strata, 5)), groups=aug.groups)
        full = aug.under("full")
        thr = choose_threshold(spec, raw[full], aug.y[full])
        booster = fit(spec, aug.X, aug.y, groups=aug.groups)
        unf = {}
        for kind in KINDS:
            frame = generate_unfamiliar(kind, 4000, 0.1, 1)
            flag = booster.predict(feature_matrix(frame, feats), raw_score=True) >= thr
            truth = (frame["truth_label"] == "fake").to_numpy()
            unf[kind] = {"fpr": float(flag[~truth].mean()), "recall": float(flag[truth].mean())}
    finally:
        model.SPECS[name] = saved
    return {
        "features": len(feats),
        "lodo_se_mean": float(np.mean([d["se_out"] for d in dev])),
        "lodo_se_min": float(np.min([d["se_out"] for d in dev])),
        "lodo_sp_mean": float(np.mean([d["sp_out"] for d in dev])),
        "lodo_sp_min": float(np.min([d["sp_out"] for d in dev])),
        "unfamiliar": unf,
    }


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "crossplatform"
    out = {label: measure(which, feats) for label, feats in variants(SPECS[which].features).items()}
    print(json.dumps({"model": which, "variants": out}, indent=1))
