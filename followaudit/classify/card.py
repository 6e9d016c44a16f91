"""The model card in Markdown, and the text form of ``followaudit evaluate``, from the card JSON."""

from __future__ import annotations

from typing import Any

from .model import AGE_FEATURES

TARGETS = {
    "twitter_cv_mcc": 0.98,
    "twitter_cv_f1": 0.99,
    "lovo_recall": {"FSF": 0.99, "INT": 0.95, "TWT": 0.90},
    "lovo_specificity": 0.98,
    "instagram_cv_f1": 0.93,
    "quantification_mae": 0.02,
    "quantification_coverage": 0.93,
}


LIMITS = """\
- **Twitter 10-fold CV (MCC ≥ 0.98, F1 ≥ 0.99).** The issue's plain LightGBM on 24 features measured
  MCC 0.974 / F1 0.988; this model measures about the same in CV while it more than doubles the
  recall on a vendor never seen in training (TWT 0.2–0.84 → 0.92). Tried, all within MCC 0.971–0.977 under
  the same nested protocol: 7/15 leaves, 60–200 trees, learning rate 0.05–0.15, min_data_in_leaf 10–40,
  feature fraction 0.5–1.0, the "advanced" monotone method, sample weights that make each
  vendor and human group count equally (MCC 0.974, INT recall on an unseen vendor down to 0.951), extra features (likes per post, lists per
  follower, name digits, bio words and non-ASCII share, name tokens found in the handle and the handle's
  leftover letters), and decision thresholds at 98–99.5% human specificity. The remaining errors are
  about 22 TWT fakes that look like abandoned human accounts (few followers, hundreds followed, years
  old) and about 20 E13 humans with almost no activity. What limits it: the model sees one profile
  object through the canonical table only. The Cresci paper's higher figures use timelines (tweet
  content, URLs, retweets) and the follower/friend graph, which are not in this data; Twitter-only
  profile fields (default theme, language, time zone) are not canonical columns, and language / time
  zone would separate Italian humans from foreign fakes, i.e. leak the dataset rather than detect
  fakes. The threshold is deliberately set at 98.5% human specificity because that is what keeps
  unseen-vendor recall high (the leave-one-vendor-out targets are met); a threshold of 0.5 instead measured
  MCC 0.977 in the same protocol, still short of 0.98.
- **Instagram CV F1 ≥ 0.93.** InstaFake is anonymised to 8 fields (followers, following, posts, bio
  length, avatar, private, username length and digits; no dates, names or text). Tried 4–15 leaves,
  50–300 trees, learning rates 0.03–0.1, min_data_in_leaf 5–30, with and without monotone
  constraints, an extra followers/following log-ratio, and F1-optimal vs 98–98.5%-specificity
  thresholds: F1 0.88–0.906 with AUC ≈ 0.992 throughout. With 200 fakes, one F1 point is about
  two accounts; the ranking is good (AUC 0.99) but about 15 fakes and 25 real accounts share the same
  few-field profiles. More fields (dates, captions, follower lists) would be needed.
"""


FEATURES_TRIED = """\
Measured with `python benchmarks/feature_transfer.py crossplatform` (figures kept in
`benchmarks/feature_transfer_crossplatform.json`): for each feature set, the cross-platform model under the
leave-one-domain-out protocol (held-out Se and Sp: mean / worst fold) and, fitted on all training rows, on the
deliberately unfamiliar audiences of `classify/unfamiliar.py` at a 10% fake share (false-positive rate among
their ordinary people / recall of their fakes).

| feature set | features | LODO Se mean / min | LODO Sp mean / min | Bluesky-like FPR / recall | lurkers FPR / recall | Mastodon-like FPR / recall |
|---|---|---|---|---|---|---|
| shipped before (baseline) | 14 | 0.945 / 0.900 | 0.964 / 0.938 | 0.25 / 1.00 | 0.56 / 0.68 | 0.06 / 0.27 |
| + profile emptiness | 15 | 0.940 / 0.895 | 0.957 / 0.897 | 0.25 / 1.00 | 0.57 / 0.67 | 0.06 / 0.29 |
| **- account age and per-day rates (shipped)** | 10 | 0.941 / 0.880 | 0.968 / 0.938 | 0.17 / 1.00 | 0.64 / 0.52 | 0.06 / 0.14 |
| - follower/post counts (ratio kept) | 11 | 0.928 / 0.805 | 0.967 / 0.936 | 0.26 / 1.00 | 0.37 / 0.63 | 0.07 / 0.19 |
| + emptiness, - counts | 12 | 0.920 / 0.765 | 0.964 / 0.936 | 0.24 / 1.00 | 0.35 / 0.72 | 0.07 / 0.19 |

No feature set transfers well to all three unfamiliar audiences: dropping account age (every account on a newer
network is young; FSF's accounts were all made in three weeks) keeps the held-out specificity and cuts false
positives among Bluesky-like people from 25% to 17%, so it ships; dropping the follower and post counts halves the
false positives among lurkers but loses a fifth of an unseen vendor's fakes. Profile emptiness (the share of
picture, bio, website and location left empty) added nothing the model did not already have. The monotone
constraints are kept (more followers, posts, a picture or a bio never raise the fake score). What this cannot fix is
that the training data has no ordinary low-activity people: the shift diagnostic is what protects those audits.
"""


def _f(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _metrics_row(name: str, m: dict[str, Any]) -> str:
    return (
        f"| {name} | {m['n']:,} ({m['fakes']:,} fake) | {_f(m['accuracy'])} | {_f(m['precision'])} | "
        f"{_f(m['recall'])} | {_f(m['f1'])} | {_f(m['mcc'])} | {_f(m['auc'])} |"
    )


def evaluation_text(result: dict[str, Any]) -> str:
    """The evaluation as Markdown tables (also what ``followaudit evaluate`` prints)."""
    lines = ["### Cross-validation (stratified, seeded; thresholds set inside each training part)", ""]
    lines += ["| model | rows | accuracy | precision | recall | F1 | MCC | AUC |", "|---|---|---|---|---|---|---|---|"]
    calib = []
    for name, fig in result.get("models", {}).items():
        if "cv" in fig:
            lines.append(_metrics_row(f"{name} (model)", fig["cv"]))
            if "ece" in fig["cv"]:
                calib.append(f"{name}: Brier {fig['cv']['brier']:.4f}, expected calibration error {fig['cv']['ece']:.4f}")
        for src, m in fig.get("cv_by_source", {}).items():
            lines.append(_metrics_row(f"{name} on {src}", m))
    for name, fig in result.get("rules", {}).items():
        lines.append(_metrics_row(f"{name} data, rule baselines", fig["cv"]))
    if calib:
        lines += ["", "Calibration of the held-out probabilities (isotonic map fitted inside each training part): "
                  + "; ".join(calib) + "."]
    tw = result.get("models", {}).get("twitter", {})
    for key, title in (("lovo", "with all features"), ("lovo_no_age", "without account-age features")):
        if key in tw:
            lines += ["", f"### Leave-one-vendor-out on Cresci-15, {title}", "",
                      "| unseen vendor | fake recall | human specificity | AUC |", "|---|---|---|---|"]
            for vendor, v in tw[key].items():
                lines.append(f"| {vendor} ({v['fakes']:,} fakes) | {_f(v['recall'])} | {_f(v['specificity'])} | {_f(v['auc'])} |")
    q = result.get("quantification")
    if q:
        lines += ["", f"### Fake-share estimation ({q['model']} model; audits of {q['n']:,} followers, "
                  f"{q['replicates']} per prevalence; {q['confidence']:.0%} intervals)", "",
                  "| estimator | mean absolute error | interval coverage |", "|---|---|---|"]
        for name, e in q["estimators"].items():
            star = " (default)" if name == q["estimator"] else ""
            lines.append(f"| {name.replace('_', ' ')}{star} | {100 * e['mae']:.2f} points | {_f(e['coverage'])} |")
        lines += ["", "| true fake share | " + " | ".join(n.replace("_", " ") for n in q["estimators"]) + " |",
                  "|---|" + "---|" * len(q["estimators"])]
        for row in q["by_prevalence"]:
            cells = [f"{100 * row['estimators'][n]['mae']:.2f} pt / {row['estimators'][n]['coverage']:.2f}" for n in q["estimators"]]
            lines.append(f"| {row['prevalence']:.0%} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Cells: mean absolute error / share of 95% intervals holding the true share.")
    lines += lodo_lines(result)
    return "\n".join(lines) + "\n"


QUANTIFIER_NAMES = {
    "classify_and_count": "CC", "adjusted": "ACC", "adjusted_transfer": "ACC+transfer", "probabilistic": "PCC",
    "pacc": "PACC", "emq": "EMQ", "hdy": "HDy",
}


def lodo_lines(result: dict[str, Any]) -> list[str]:
    """The leave-one-domain-out tables: per held-out pair, Se/Sp and each quantifier's error / coverage / width."""
    lines: list[str] = []
    protocol = result.get("lodo") or {}
    for name, r in protocol.items():
        t, st = r["table"], r["settings"]
        lines += ["", f"### Leave-one-domain-out: {name} model", "",
                  f"Each row holds out one human and one fake domain, trains on the rest, and audits {st['audit_n']:,} followers drawn "
                  f"from the held-out accounts only ({st['replicates']} audits per true fake share "
                  f"{', '.join(f'{p:.0%}' for p in st['prevalences'])}, per missing-field pattern). Se / Sp: held-out sensitivity and "
                  "specificity on complete profiles. Cells: mean absolute error (points) / coverage of the 95% interval / mean width (points).",
                  "", "| held out | Se | Sp | " + " | ".join(QUANTIFIER_NAMES.values()) + " |",
                  "|---|---|---|" + "---|" * len(QUANTIFIER_NAMES)]
        for fold, stats in [*t["by_fold"].items(), ("all", t["overall"])]:
            rates = r["rates"].get(fold, {}).get("full")
            se_sp = f"{rates['se_out']:.3f} | {rates['sp_out']:.3f}" if rates else " | "
            cells = [f"{100 * stats[q]['mae']:.1f} / {stats[q]['coverage']:.2f} / {100 * stats[q]['width']:.0f}" for q in QUANTIFIER_NAMES]
            lines.append(f"| {fold} | {se_sp} | " + " | ".join(cells) + " |")
        tr = r["transfer"]
        lv = t["levels"]
        lines += ["", f"Chosen default: **{QUANTIFIER_NAMES.get(r['default'], r['default'])}** (smallest error among estimators whose "
                  f"intervals cover ≥ 90% of these audits). Transfer distribution shipped: Se moves by {tr['se_shift']:+.3f} ± "
                  f"{tr['se_sd']:.3f}, Sp by {tr['sp_shift']:+.3f} ± {tr['sp_sd']:.3f} between domains (one standard deviation), spreads "
                  f"×{tr['inflate_se']:g} for Se and ×{tr['inflate_sp']:g} for Sp (the narrowest that cover ≥ {st['target_coverage']:.0%} "
                  f"of these audits; each audit's own held-out domains are left out of the spread it is scored with). Shift levels of the LODO audits: {lv['near']} near, {lv['moderate']} moderate, "
                  f"{lv['far']} far."]
        unf = r["shift_calibration"]["unfamiliar"]
        if unf:
            kinds: dict[str, list[str]] = {}
            for u in unf:
                kinds.setdefault(u["kind"], []).append(u["level"])
            lines.append("Unfamiliar audiences (classify/unfamiliar.py) are called: "
                         + "; ".join(f"{k}: " + ", ".join(f"{lv_} ×{v.count(lv_)}" for lv_ in dict.fromkeys(v)) for k, v in kinds.items()) + ".")
    qc = result.get("quapy_check")
    if qc:
        lines += ["", "### Check against QuaPy", ""]
        if "skipped" in qc:
            lines.append(f"Skipped: {qc['skipped']}.")
        else:
            d = qc["max_abs_difference"]
            lines.append("Largest absolute difference from QuaPy on the same binned posteriors: "
                         + ", ".join(f"{k.upper()} {v:.4f}" for k, v in d.items()) + f" ({qc['note']}).")
    return lines


def render_card_md(card: dict[str, Any]) -> str:
    """``model_card.md``: what the models are, what they were trained on, how well they do."""
    out = [
        "# followaudit model card",
        "",
        f"Built {card['date']} by followaudit {card['followaudit_version']} with LightGBM {card['lightgbm_version']}; "
        "`followaudit train` rebuilds these files bit for bit, `followaudit evaluate` re-measures every figure.",
        "",
        "## Models",
        "",
    ]
    for name, m in card["models"].items():
        er = m["error_rates"]
        out += [
            f"### `{name}` ({m['file']})",
            "",
            f"- Training data: {', '.join(m['training_data'])} — {m['rows']:,} accounts, {m['fakes']:,} fake; "
            f"SHA-256 of the source files `{m['training_sha256'][:16]}…`",
            f"- Features ({len(m['features'])}): {', '.join(m['features'])}",
            f"- LightGBM: {m['num_rounds']} trees, {m['params']['num_leaves']} leaves, learning rate "
            f"{m['params']['learning_rate']}, feature fraction {m['params'].get('feature_fraction', 1.0)}, "
            f"bagging {m['params'].get('bagging_fraction', 1.0)}, monotone constraints "
            f"{ {f: c for f, c in zip(m['features'], m['params']['monotone_constraints'], strict=True) if c} }, seed {m['params']['seed']}",
            f"- Sample weights: {m.get('sample_weights', 'none')}",
            f"- Calibration: {m['calibration']['method']} ({len(m['calibration']['x'])} knots)",
            f"- Threshold: fake when the calibrated probability ≥ {m['threshold']['probability']:.3f} "
            f"(raw score {m['threshold']['raw']:.4f}; policy: {m['threshold']['policy']}"
            + (f", target specificity {m['threshold']['target_specificity']}" if m['threshold']['target_specificity'] else "")
            + ")",
            f"- Cross-validated error at that threshold (used by the prevalence correction): sensitivity "
            f"{er['sensitivity']:.4f} ({er['tp']:,}/{er['tp'] + er['fn']:,}), specificity {er['specificity']:.4f} "
            f"({er['tn']:,}/{er['tn'] + er['fp']:,})",
            "- Transfer: " + ("measured on its own platform's data" if m["transfer_measured"] else
                              "used for Bluesky, Mastodon and other imports, where it is **unmeasured**: there is no labelled data for them"),
            "",
        ]
    ev = card.get("evaluation")
    if ev:
        out += ["## Evaluation", "", evaluation_text(ev)]
        out += ["## Targets", "", *target_lines(ev), ""]
        out += ["### Where a target is not met: what was tried, what limits it", "", LIMITS, ""]
    out += ["## Features that transfer: what was tried", "", FEATURES_TRIED]
    out += [
        "## Caveats and leakage",
        "",
        "- Only fields of one profile object are used (counts, dates, profile completeness, handle and name shape). "
        "`dataset`, `source_file` and the crawl time `updated` are never features. Account age is "
        "`updated − created_at` in days: the crawl time differs per Cresci group by up to 1.6 hours, "
        "which cannot be recovered from an age in days of accounts created at arbitrary seconds.",
        f"- The FSF accounts were all created between 2013-01-25 and 2013-02-13, so any feature using dates "
        f"({', '.join(sorted(AGE_FEATURES))}) separates them trivially; the leave-one-vendor-out figures are also "
        "given without those features.",
        "- FSF and TWT are 59% and 57% random subsets of the published groups (the BAS sample).",
        "- Monotone constraints (more followers, posts, likes, lists, a bio, a location, a website or an avatar can "
        "only lower the fake score; a higher following/followers ratio or a longer consonant run in the handle can only "
        "raise it) keep the model from learning vendor quirks such as 'fakes write bios', which is what lets it "
        "catch a vendor it never saw.",
        "- Instagram: InstaFake is anonymised (no names, dates or handles), so the Instagram model sees counts, "
        "bio length, avatar, privacy and username length/digits only.",
        "- The cross-platform model's behaviour on Bluesky and Mastodon is not measured; reports say so.",
        "- The quantification harness draws audits from held-out Cresci-15 scores, so the audience looks like the "
        "training data; on a real account the classifier's error rates can differ (a new vendor, another "
        "country), and the corrected share is only as good as the sensitivity/specificity it is corrected with. "
        "Its interval treats the audited followers as a draw from the account's audience (a binomial term, as "
        "the Wilson intervals do) plus the uncertainty of Se/Sp; the harness fixes the number of fakes in each "
        "simulated audit, so the measured coverage (1.00) is conservative by construction.",
        "",
    ]
    return "\n".join(out)


def target_lines(ev: dict[str, Any]) -> list[str]:
    """Each target of the issue, the measured figure and whether it is met."""
    lines = []
    tw = ev.get("models", {}).get("twitter", {})

    def check(label: str, value: float | None, target: float) -> None:
        if value is None:
            return
        mark = "met" if value >= target else "**not met**"
        lines.append(f"- {label}: {value:.4f} (target ≥ {target}) — {mark}")

    if "cv" in tw:
        check("Twitter CV MCC", tw["cv"]["mcc"], TARGETS["twitter_cv_mcc"])
        check("Twitter CV F1", tw["cv"]["f1"], TARGETS["twitter_cv_f1"])
    for vendor, target in TARGETS["lovo_recall"].items():
        if "lovo" in tw:
            check(f"leave-one-vendor-out recall {vendor}", tw["lovo"][vendor]["recall"], target)
            check(f"leave-one-vendor-out human specificity ({vendor} held out)", tw["lovo"][vendor]["specificity"], TARGETS["lovo_specificity"])
    ig = ev.get("models", {}).get("instagram", {})
    if "cv" in ig:
        check("Instagram CV F1 (fake class)", ig["cv"]["f1"], TARGETS["instagram_cv_f1"])
    q = ev.get("quantification")
    if q:
        mae = q["mae"]
        lines.append(f"- fake-share MAE of the default estimator: {100 * mae:.2f} points (target ≤ 2) — " + ("met" if mae <= TARGETS["quantification_mae"] else "**not met**"))
        check("95% interval coverage of the default estimator", q["coverage"], TARGETS["quantification_coverage"])
    return lines
