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
    return "\n".join(lines) + "\n"


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
